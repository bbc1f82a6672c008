//! Edit Schedule Task (new and edit): General, When, Parameters, Limits, and — for
//! integration users — Run another task. Built from the kind's declared parameters; a
//! refused save re-renders the form with the input kept and each message beside its field.

mod carry;
mod from_post;
mod from_schedule;
mod input;
mod page;
mod state;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::see_other;
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{local_time, SignedIn};
use crate::api::State;
use crate::domain::{Role, Trigger};
use crate::service::{ScheduleInput, ServiceError};

use carry::{carry_place, open_carries};
use from_post::form_from_post;
use from_schedule::form_from_schedule;
use input::{compose_chain, input_from};
use page::{render, PageArgs};
use state::{add_blank_params, FormState};

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
    render(&state, &me, &env, PageArgs::form(None, f), StatusCode::OK)
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
    let args = PageArgs {
        flash,
        ..PageArgs::form(Some(id), f)
    };
    render(&state, &me, &env, args, StatusCode::OK)
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
    let mut f = form_from_post(&form, &env);
    open_carries(&mut f, &state.keyring, &carry_place(&env, &me));
    let chain = chain_to_save(&form, &f, &env, &me)?;
    let input = input_from(&f, chain);
    if json_edited(&form) {
        rows_from_json(&mut f, &env);
    }
    if form.get("action") == Some("preview") {
        let preview = state.preview_unsaved(&me.user, &env, id, input).await?;
        let args = PageArgs {
            preview: Some(preview),
            ..PageArgs::form(id, f)
        };
        return render(&state, &me, &env, args, StatusCode::OK);
    }
    save(&state, &me, &env, id, f, input)
}

/// The chain text to save: only integration users may set one, and a post from anyone else
/// that carries chain fields is refused.
fn chain_to_save(
    form: &PostForm,
    f: &FormState,
    env: &str,
    me: &SignedIn,
) -> WebResult<Option<String>> {
    if me.user.role_in(env) >= Some(Role::Integration) {
        return Ok(chosen_chain(form, f, env));
    }
    if form.has_prefix("h0_chain") || !form.text("chain_json").trim().is_empty() {
        return Err(
            ServiceError::Forbidden("Run another task needs the integration role".into()).into(),
        );
    }
    Ok(None)
}

/// Creates or replaces the schedule, then shows it saved; a refused save shows the form
/// again, each problem beside its field.
fn save(
    state: &State,
    me: &SignedIn,
    env: &str,
    id: Option<Uuid>,
    f: FormState,
    input: ScheduleInput,
) -> WebResult<HttpResponse> {
    let saved = match id {
        None => state.create_schedule(&me.user, env, input),
        Some(id) => state.replace_schedule(&me.user, env, id, input),
    };
    match saved {
        Ok(view) => Ok(see_other(format!(
            "/envs/{env}/schedules/{}?saved=1",
            view.id
        ))),
        Err(ServiceError::Validation(p)) => {
            let args = PageArgs {
                errors: p.0,
                ..PageArgs::form(id, f)
            };
            render(state, me, env, args, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(other) => Err(WebError::Service(other)),
    }
}

/// Whether the advanced JSON was changed from what the page showed.
fn json_edited(form: &PostForm) -> bool {
    form.text("chain_json").trim() != form.text("chain_json_original").trim()
}

/// For showing the form again after the advanced JSON was edited: the fields are rebuilt
/// from that JSON (and the JSON composed from them), so fields and JSON agree and a second
/// submit sends what the first one did. Secrets typed in the JSON become field values,
/// which are carried back sealed like any typed secret. JSON that does not parse stays as
/// it was.
fn rows_from_json(f: &mut FormState, env: &str) {
    if let Ok(parsed) = crate::chain::spec::parse(&f.chain_json, crate::chain::spec::Origin::User) {
        f.hops = from_schedule::hop_rows(&parsed, env);
        f.chain_json.clear();
    }
}

/// The advanced JSON wins when it was edited; otherwise the fields describe the chain.
fn chosen_chain(form: &PostForm, f: &FormState, env: &str) -> Option<String> {
    if json_edited(form) {
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
    if !crate::web::form::csrf_matches(sent, &me) {
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
