//! Edit Schedule Task (new and edit): General, When, Parameters, Limits, and — for
//! integration users — Run another task. Built from the kind's declared parameters; a
//! refused save re-renders the form with the input kept and each message beside its field.

mod carry;
mod from_post;
mod from_schedule;
mod input;
mod state;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::{html, see_other};
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{local_time, Nav, SignedIn};
use crate::api::State;
use crate::domain::{FieldProblem, Role, Trigger};
use crate::service::{ChainPreview, ServiceError};

use carry::{carry_place, masked_chain_text, open_carries, seal_carries};
use from_post::form_from_post;
use from_schedule::form_from_schedule;
use input::{compose_chain, input_from};
use state::{add_blank_params, with_blank_hop, ChainOption, FormState, KindOption};

#[derive(Template)]
#[template(path = "schedule_form.html")]
struct SchedulePage {
    nav: Nav,
    is_new: bool,
    id: String,
    f: FormState,
    kinds: Vec<KindOption>,
    zones: Vec<&'static str>,
    trigger_text: String,
    next_times: Vec<String>,
    show_chain: bool,
    chain_envs: Vec<String>,
    chain_options: Vec<ChainOption>,
    dynamic_values: Vec<String>,
    errors: Vec<FieldProblem>,
    chain_errors: Vec<FieldProblem>,
    preview: Option<ChainPreview>,
    flash: String,
    last_run: String,
}

impl SchedulePage {
    /// The first message for a field, for showing beside it.
    pub fn err(&self, field: &str) -> &str {
        self.errors
            .iter()
            .find(|p| p.field == field || p.field.starts_with(&format!("{field}.")))
            .map_or("", |p| p.message.as_str())
    }

    /// The message for exactly this field (not its sub-fields).
    pub fn err_exact(&self, field: &str) -> &str {
        self.errors
            .iter()
            .find(|p| p.field == field)
            .map_or("", |p| p.message.as_str())
    }

    /// Problems no field shows.
    pub fn other_errors(&self) -> Vec<&FieldProblem> {
        let shown = [
            "name",
            "kind",
            "description",
            "trigger",
            "retry",
            "timeout_seconds",
            "overlap",
            "catch_up",
        ];
        self.errors
            .iter()
            .filter(|p| {
                !shown
                    .iter()
                    .any(|s| p.field == *s || p.field.starts_with(&format!("{s}.")))
                    && !p.field.starts_with("params[")
            })
            .collect()
    }
}

struct PageArgs {
    id: Option<Uuid>,
    f: FormState,
    errors: Vec<FieldProblem>,
    preview: Option<ChainPreview>,
    flash: String,
}

fn render(
    state: &State,
    me: &SignedIn,
    env: &str,
    args: PageArgs,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, env, Role::Viewer)?;
    let show_chain = me.user.role_in(env) >= Some(Role::Integration);
    let kinds: Vec<KindOption> = state
        .kinds
        .specs()
        .map(|k| KindOption {
            name: k.name.into(),
            params: k
                .params
                .iter()
                .map(|p| format!("{}{}", p.name, if p.required { "*" } else { "" }))
                .collect::<Vec<_>>()
                .join(", "),
            outputs: k.outputs.join(", "),
        })
        .collect();
    let mut f = args.f;
    if f.params.last().is_none_or(|p| !p.name.is_empty()) {
        add_blank_params(&mut f.params);
    }
    let place = carry_place(env, me);
    seal_carries(&mut f, &state.keyring, &place);
    f.chain_json = if f.chain_json.trim().is_empty() {
        compose_chain(&f.hops, env).unwrap_or_default()
    } else {
        masked_chain_text(&f.chain_json)
    };
    let (chain_errors, errors): (Vec<FieldProblem>, Vec<FieldProblem>) = args
        .errors
        .into_iter()
        .partition(|p| is_chain_field(&p.field, &f));
    for p in &errors {
        if let Some(i) = param_row_of(&p.field) {
            if let Some(row) = f.params.get_mut(i) {
                row.error = p.message.clone();
            }
        }
    }
    let trigger: Option<Trigger> =
        serde_json::from_value(input_from(&f, None).trigger.unwrap_or(Value::Null)).ok();
    let (trigger_text, next_times) = match &trigger {
        Some(t) if t.validate_ok() => (
            t.describe(),
            t.upcoming(state.clock.now(), &e.time_zone, 5)
                .into_iter()
                .map(|x| local_time(x, &e.time_zone))
                .collect(),
        ),
        _ => (String::new(), Vec::new()),
    };
    let (chain_envs, chain_options) = if show_chain {
        chain_choices(state, me, env)?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut dynamic_values: Vec<String> = state
        .kinds
        .get(&f.kind)
        .map(|k| k.spec().outputs.iter().map(|o| format!("@{o}@")).collect())
        .unwrap_or_default();
    dynamic_values.extend(
        f.params
            .iter()
            .filter(|p| !p.name.is_empty())
            .map(|p| format!("@Param.{}@", p.name)),
    );
    dynamic_values.extend(
        crate::chain::dynamic::GLOBAL_NAMES
            .iter()
            .map(|g| format!("@{g}@")),
    );
    let last_run = match args.id {
        Some(id) => state
            .last_run(env, id)?
            .map(|r| {
                format!(
                    "{} · {}",
                    r.state.as_str(),
                    local_time(r.finished_at.unwrap_or(r.queued_at), &e.time_zone)
                )
            })
            .unwrap_or_else(|| "never run".into()),
        None => String::new(),
    };
    if f.hops.is_empty() || !f.hops.last().is_some_and(|h| h.chain.is_empty()) {
        f.hops = with_blank_hop(std::mem::take(&mut f.hops), env);
    }
    let page = SchedulePage {
        nav: Nav::new(state, me, env, "schedules"),
        is_new: args.id.is_none(),
        id: args.id.map(|i| i.to_string()).unwrap_or_default(),
        f,
        kinds,
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect(),
        trigger_text,
        next_times,
        show_chain,
        chain_envs,
        chain_options,
        dynamic_values,
        errors,
        chain_errors,
        preview: args.preview,
        flash: args.flash,
        last_run,
    };
    Ok(html(page.render(), status))
}

/// The chain text is sent after the named parameters, so its problems start with
/// `params[N]` where N counts them.
fn is_chain_field(field: &str, f: &FormState) -> bool {
    let chain_index = f.params.iter().filter(|p| !p.name.is_empty()).count();
    field.starts_with(&format!("params[{chain_index}]")) || field.starts_with("value")
}

/// `params[3].value` → the row of the third named parameter.
fn param_row_of(field: &str) -> Option<usize> {
    field
        .strip_prefix("params[")?
        .split(']')
        .next()?
        .parse()
        .ok()
}

/// This environment and those that share a chain with it; the chains each offers.
fn chain_choices(
    state: &State,
    me: &SignedIn,
    env: &str,
) -> WebResult<(Vec<String>, Vec<ChainOption>)> {
    let mut options: Vec<ChainOption> = state
        .list_chains(&me.user, env)?
        .into_iter()
        .map(|c| {
            let sched = state.store.schedule(c.schedule_id).ok().flatten();
            let kind = sched.as_ref().map(|s| s.kind.clone()).unwrap_or_default();
            let settable = sched
                .as_ref()
                .map(|s| {
                    crate::chain::plan::settable(s, state.kinds.get(&s.kind).map(|k| k.spec()))
                        .join(", ")
                })
                .unwrap_or_default();
            ChainOption {
                env: env.to_string(),
                name: c.name,
                kind,
                settable,
            }
        })
        .collect();
    options.extend(
        state
            .shared_chains(&me.user, env)?
            .into_iter()
            .map(|c| ChainOption {
                env: c.env,
                name: c.name,
                kind: c.kind,
                settable: c.settable.join(", "),
            }),
    );
    let mut envs = vec![env.to_string()];
    for o in &options {
        if !envs.contains(&o.env) {
            envs.push(o.env.clone());
        }
    }
    Ok((envs, options))
}

pub async fn new_form(
    state: State,
    me: SignedIn,
    env: web::Path<String>,
) -> WebResult<HttpResponse> {
    state.require(&me.user, &env, Role::Operator)?;
    let mut f = FormState {
        enabled: true,
        trigger_type: "manual".into(),
        kind: "noop".into(),
        timeout_seconds: "3600".into(),
        max_attempts: "1".into(),
        backoff_seconds: "30".into(),
        overlap: "allow".into(),
        catch_up: "skip".into(),
        ..Default::default()
    };
    add_blank_params(&mut f.params);
    render(
        &state,
        &me,
        &env,
        PageArgs {
            id: None,
            f,
            errors: Vec::new(),
            preview: None,
            flash: String::new(),
        },
        StatusCode::OK,
    )
}

#[derive(serde::Deserialize)]
pub struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn edit_form(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    q: web::Query<SavedQuery>,
) -> WebResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state.require(&me.user, &env, Role::Viewer)?;
    let id = super::id(&id, "schedule")?;
    let s = state.schedule_in(&env, id)?;
    let f = form_from_schedule(&s, me.user.role_in(&env) >= Some(Role::Integration));
    let flash = if q.saved.is_some() {
        "Saved.".to_string()
    } else {
        String::new()
    };
    render(
        &state,
        &me,
        &env,
        PageArgs {
            id: Some(id),
            f,
            errors: Vec::new(),
            preview: None,
            flash,
        },
        StatusCode::OK,
    )
}

pub async fn submit_new(
    state: State,
    me: SignedIn,
    env: web::Path<String>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    submit(state, me, env.into_inner(), None, form).await
}

pub async fn submit_edit(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let id = super::id(&id, "schedule")?;
    submit(state, me, env, Some(id), form).await
}

async fn submit(
    state: State,
    me: SignedIn,
    env: String,
    id: Option<Uuid>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    state.require(&me.user, &env, Role::Operator)?;
    let integration = me.user.role_in(&env) >= Some(Role::Integration);
    let mut f = form_from_post(&form, &env);
    open_carries(&mut f, &state.keyring, &carry_place(&env, &me));
    let chain = if integration {
        chosen_chain(&form, &f, &env)
    } else {
        if form.has_prefix("h0_chain") || !form.text("chain_json").trim().is_empty() {
            return Err(ServiceError::Forbidden(
                "Run another task needs the integration role".into(),
            )
            .into());
        }
        None
    };
    let input = input_from(&f, chain);
    if form.get("action") == Some("preview") {
        let preview = state.preview_unsaved(&me.user, &env, id, input).await?;
        return render(
            &state,
            &me,
            &env,
            PageArgs {
                id,
                f,
                errors: Vec::new(),
                preview: Some(preview),
                flash: String::new(),
            },
            StatusCode::OK,
        );
    }
    let saved = match id {
        None => state.create_schedule(&me.user, &env, input),
        Some(id) => state.replace_schedule(&me.user, &env, id, input),
    };
    match saved {
        Ok(view) => Ok(see_other(format!(
            "/envs/{env}/schedules/{}?saved=1",
            view.id
        ))),
        Err(ServiceError::Validation(p)) => render(
            &state,
            &me,
            &env,
            PageArgs {
                id,
                f,
                errors: p.0,
                preview: None,
                flash: String::new(),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(other) => Err(WebError::Service(other)),
    }
}

/// The advanced JSON wins when it was edited; otherwise the fields describe the chain.
fn chosen_chain(form: &PostForm, f: &FormState, env: &str) -> Option<String> {
    let edited = form.text("chain_json").trim() != form.text("chain_json_original").trim();
    if edited {
        let text = form.text("chain_json");
        return (!text.trim().is_empty()).then_some(text);
    }
    compose_chain(&f.hops, env)
}

#[derive(serde::Deserialize)]
pub struct TriggerPreviewInput {
    trigger: Value,
    #[serde(default)]
    env: Option<String>,
}

/// The When section's next five times, for the script (session and CSRF header checked).
pub async fn trigger_preview(
    state: State,
    me: SignedIn,
    req: actix_web::HttpRequest,
    body: web::Json<TriggerPreviewInput>,
) -> WebResult<HttpResponse> {
    let sent = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sent != me.session.csrf {
        return Err(WebError::Csrf);
    }
    let zone = match &body.env {
        Some(env) => state.require(&me.user, env, Role::Viewer)?.time_zone,
        None => "UTC".into(),
    };
    let t: Trigger = match serde_json::from_value(body.trigger.clone()) {
        Ok(t) => t,
        Err(e) => {
            return Ok(HttpResponse::Ok()
                .json(json!({"description": "", "next": [], "error": e.to_string()})))
        }
    };
    let mut p = crate::domain::Problems::new();
    t.validate("trigger", &mut p);
    if let Some(first) = p.0.first() {
        return Ok(
            HttpResponse::Ok().json(json!({"description": "", "next": [], "error": first.message}))
        );
    }
    let next: Vec<String> = t
        .upcoming(state.clock.now(), &zone, 5)
        .into_iter()
        .map(|x| local_time(x, &zone))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"description": t.describe(), "next": next})))
}
