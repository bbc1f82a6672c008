//! The Edit Schedule Task page: its view, and how a form state becomes one (blank rows
//! added, typed secrets sealed, problems placed beside their fields).

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;
use serde_json::Value;
use uuid::Uuid;

use super::super::auth::html;
use super::super::error::WebResult;
use super::super::layout::{local_time, Nav, SignedIn};
use super::carry::{carry_place, masked_chain_text, seal_carries};
use super::input::{compose_chain, input_from};
use super::state::{add_blank_params, with_blank_hop, ChainOption, FormState, KindOption};
use crate::api::State;
use crate::domain::{FieldProblem, Role, Trigger};
use crate::service::ChainPreview;

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

/// What a handler shows: the form (`id`: the schedule, `None` for a new one) and what
/// happened to it.
pub(super) struct PageArgs {
    pub(super) id: Option<Uuid>,
    pub(super) f: FormState,
    pub(super) errors: Vec<FieldProblem>,
    pub(super) preview: Option<ChainPreview>,
    pub(super) flash: String,
}

impl PageArgs {
    /// The form as it stands: no problems, no preview, no message.
    pub(super) fn form(id: Option<Uuid>, f: FormState) -> Self {
        Self {
            id,
            f,
            errors: Vec::new(),
            preview: None,
            flash: String::new(),
        }
    }
}

/// The page for `args`, answered with `status`.
pub(super) fn render(
    state: &State,
    me: &SignedIn,
    env: &str,
    args: PageArgs,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, env, Role::Viewer)?;
    let show_chain = me.user.role_in(env) >= Some(Role::Integration);
    let mut f = args.f;
    ready_to_show(&mut f, state, me, env);
    let (chain_errors, errors) = place_problems(args.errors, &mut f);
    let (trigger_text, next_times) = trigger_summary(state, &f, &e.time_zone);
    let (chain_envs, chain_options) = if show_chain {
        chain_choices(state, me, env)?
    } else {
        (Vec::new(), Vec::new())
    };
    let dynamic_values = dynamic_values(state, &f);
    let last_run = match args.id {
        Some(id) => last_run_text(state, env, id, &e.time_zone)?,
        None => String::new(),
    };
    let page = SchedulePage {
        nav: Nav::new(state, me, env, "schedules"),
        is_new: args.id.is_none(),
        id: args.id.map(|i| i.to_string()).unwrap_or_default(),
        f,
        kinds: kind_options(state),
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

/// Readies the form for showing: a blank parameter row and a blank hop to type into, typed
/// secrets sealed, and the advanced JSON composed from the fields (or masked, when typed).
fn ready_to_show(f: &mut FormState, state: &State, me: &SignedIn, env: &str) {
    if f.params.last().is_none_or(|p| !p.name.is_empty()) {
        add_blank_params(&mut f.params);
    }
    // A value the kind declares secret is stored sealed whether or not its box was ticked,
    // so it is shown (and carried back sealed) as one.
    if let Some(spec) = state.kinds.get(&f.kind).map(|k| k.spec()) {
        for p in f.params.iter_mut() {
            p.encrypt |= spec.param(&p.name).is_some_and(|d| d.secret);
        }
    }
    seal_carries(f, &state.keyring, &carry_place(env, me));
    f.chain_json = if f.chain_json.trim().is_empty() {
        compose_chain(&f.hops, env).unwrap_or_default()
    } else {
        masked_chain_text(&f.chain_json)
    };
    if f.hops.is_empty() || !f.hops.last().is_some_and(|h| h.chain.is_empty()) {
        f.hops = with_blank_hop(std::mem::take(&mut f.hops), env);
    }
}

/// Splits the problems into the chain's and the rest, and puts each parameter's message on
/// its row.
fn place_problems(
    problems: Vec<FieldProblem>,
    f: &mut FormState,
) -> (Vec<FieldProblem>, Vec<FieldProblem>) {
    let (chain_errors, errors): (Vec<FieldProblem>, Vec<FieldProblem>) = problems
        .into_iter()
        .partition(|p| is_chain_field(&p.field, f));
    for p in &errors {
        if let Some(i) = param_row_of(&p.field) {
            if let Some(row) = f.params.get_mut(i) {
                row.error = p.message.clone();
            }
        }
    }
    (chain_errors, errors)
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

/// The Kind select's options, each with its parameters (`*`: required) and outputs.
fn kind_options(state: &State) -> Vec<KindOption> {
    state
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
        .collect()
}

/// The trigger in words and its next five times, when the When section is valid.
fn trigger_summary(state: &State, f: &FormState, zone: &str) -> (String, Vec<String>) {
    let trigger: Option<Trigger> =
        serde_json::from_value(input_from(f, None).trigger.unwrap_or(Value::Null)).ok();
    match &trigger {
        Some(t) if t.validate_ok() => (
            t.describe(),
            t.upcoming(state.clock.now(), zone, 5)
                .into_iter()
                .map(|x| local_time(x, zone))
                .collect(),
        ),
        _ => (String::new(), Vec::new()),
    }
}

/// The `@…@` dynamic values the form offers: the kind's outputs, this schedule's named
/// parameters, then the global ones.
fn dynamic_values(state: &State, f: &FormState) -> Vec<String> {
    let mut values: Vec<String> = state
        .kinds
        .get(&f.kind)
        .map(|k| k.spec().outputs.iter().map(|o| format!("@{o}@")).collect())
        .unwrap_or_default();
    values.extend(
        f.params
            .iter()
            .filter(|p| !p.name.is_empty())
            .map(|p| format!("@Param.{}@", p.name)),
    );
    values.extend(
        crate::chain::dynamic::GLOBAL_NAMES
            .iter()
            .map(|g| format!("@{g}@")),
    );
    values
}

/// The schedule's last run: its state and when it ended (or was queued), or "never run".
fn last_run_text(state: &State, env: &str, id: Uuid, zone: &str) -> WebResult<String> {
    Ok(state
        .last_run(env, id)?
        .map(|r| {
            format!(
                "{} · {}",
                r.state.as_str(),
                local_time(r.finished_at.unwrap_or(r.queued_at), zone)
            )
        })
        .unwrap_or_else(|| "never run".into()))
}

/// This environment and those that share a chain with it; the chains each offers.
fn chain_choices(
    state: &State,
    me: &SignedIn,
    env: &str,
) -> WebResult<(Vec<String>, Vec<ChainOption>)> {
    let mut options: Vec<ChainOption> = Vec::new();
    for c in state.list_chains(&me.user, env)? {
        let sched = state.store.schedule(c.schedule_id)?;
        let kind = sched.as_ref().map(|s| s.kind.clone()).unwrap_or_default();
        let settable = sched
            .as_ref()
            .map(|s| {
                crate::chain::plan::settable(s, state.kinds.get(&s.kind).map(|k| k.spec()))
                    .join(", ")
            })
            .unwrap_or_default();
        options.push(ChainOption {
            env: env.to_string(),
            name: c.name,
            kind,
            settable,
        });
    }
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
