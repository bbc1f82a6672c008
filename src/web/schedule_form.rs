//! Edit Schedule Task (new and edit): General, When, Parameters, Limits, and — for
//! integration users — Run another task. Built from the kind's declared parameters; a
//! refused save re-renders the form with the input kept and each message beside its field.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::{html, see_other};
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{local_time, Nav, SignedIn};
use crate::api::{path_id, State};
use crate::chain::spec::{self, HopValue};
use crate::crypto::{Keyring, Place};
use crate::domain::{
    FieldProblem, ParamValue, Role, Schedule, SealedValue, Trigger, TASK_CHAIN_PARAM,
};
use crate::service::{ChainPreview, ParamInput, RetryInput, ScheduleInput, ServiceError};

/// Blank rows offered for new parameters (JavaScript adds more).
const BLANK_PARAMS: usize = 2;

pub struct ParamRow {
    pub index: usize,
    pub name: String,
    pub value: String,
    pub encrypt: bool,
    pub locked: bool,
    /// A stored secret: shown as set, replaced only when a new value is typed.
    pub sealed: bool,
    /// A secret typed but not saved yet, sealed for this session so a re-rendered form
    /// keeps it without ever sending its text back.
    pub carry: String,
    pub error: String,
}

pub struct HopParamRow {
    pub index: usize,
    pub name: String,
    pub value: String,
    pub encrypt: bool,
    pub sealed: bool,
    pub carry: String,
}

pub struct HopRow {
    pub index: usize,
    pub env: String,
    pub chain: String,
    pub when: String,
    pub params: Vec<HopParamRow>,
}

pub struct ChainOption {
    pub env: String,
    pub name: String,
    pub kind: String,
    pub settable: String,
}

pub struct KindOption {
    pub name: String,
    pub params: String,
    pub outputs: String,
}

/// Everything the form shows; also what a refused save re-renders from.
#[derive(Default)]
pub struct FormState {
    pub name: String,
    pub description: String,
    pub kind: String,
    pub enabled: bool,
    pub trigger_type: String,
    pub cron_expr: String,
    pub cron_zone: String,
    pub interval_seconds: String,
    pub once_at: String,
    pub params: Vec<ParamRow>,
    pub timeout_seconds: String,
    pub max_attempts: String,
    pub backoff_seconds: String,
    pub overlap: String,
    pub catch_up: String,
    pub allow_loops: bool,
    pub hops: Vec<HopRow>,
    pub chain_json: String,
}

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

fn form_from_schedule(s: &Schedule, sees_chain: bool) -> FormState {
    let (trigger_type, cron_expr, cron_zone, interval_seconds, once_at) = match &s.trigger {
        Trigger::Manual => (
            "manual",
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ),
        Trigger::Cron { expr, time_zone } => (
            "cron",
            expr.clone(),
            time_zone.clone().unwrap_or_default(),
            String::new(),
            String::new(),
        ),
        Trigger::Interval { seconds } => (
            "interval",
            String::new(),
            String::new(),
            seconds.to_string(),
            String::new(),
        ),
        Trigger::Once { at } => (
            "once",
            String::new(),
            String::new(),
            String::new(),
            crate::domain::format_time(*at),
        ),
    };
    let mut params: Vec<ParamRow> = s
        .params
        .iter()
        .filter(|p| p.name != TASK_CHAIN_PARAM)
        .enumerate()
        .map(|(i, p)| ParamRow {
            index: i,
            name: p.name.clone(),
            value: match &p.value {
                ParamValue::Plain(v) => v.clone(),
                ParamValue::Sealed(_) => String::new(),
            },
            encrypt: p.value.is_sealed(),
            locked: p.locked,
            sealed: p.value.is_sealed(),
            carry: String::new(),
            error: String::new(),
        })
        .collect();
    add_blank_params(&mut params);
    let (hops, chain_json) = match (sees_chain, s.param(TASK_CHAIN_PARAM).map(|p| &p.value)) {
        (true, Some(ParamValue::Plain(text))) => match spec::parse(text, spec::Origin::Stored) {
            Ok(parsed) => (hop_rows(&parsed, &s.env), pretty(&parsed.to_masked())),
            Err(_) => (Vec::new(), text.clone()),
        },
        _ => (Vec::new(), String::new()),
    };
    FormState {
        name: s.name.clone(),
        description: s.description.clone(),
        kind: s.kind.clone(),
        enabled: s.enabled,
        trigger_type: trigger_type.into(),
        cron_expr,
        cron_zone,
        interval_seconds,
        once_at,
        params,
        timeout_seconds: s.timeout_seconds.to_string(),
        max_attempts: s.retry.max_attempts.to_string(),
        backoff_seconds: s.retry.backoff_seconds.to_string(),
        overlap: format!("{:?}", s.overlap).to_lowercase(),
        catch_up: format!("{:?}", s.catch_up).to_lowercase(),
        allow_loops: s.allow_loops,
        hops: with_blank_hop(hops, &s.env),
        chain_json,
    }
}

fn pretty(compact: &str) -> String {
    serde_json::from_str::<Value>(compact)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| compact.to_string())
}

fn hop_rows(parsed: &spec::ChainSpec, env: &str) -> Vec<HopRow> {
    parsed
        .hops
        .iter()
        .enumerate()
        .map(|(j, h)| {
            let mut params: Vec<HopParamRow> = h
                .params
                .iter()
                .enumerate()
                .map(|(k, p)| HopParamRow {
                    index: k,
                    name: p.name.clone(),
                    value: match &p.value {
                        HopValue::Text(t) => t.clone(),
                        HopValue::Sealed(_) | HopValue::Keep => String::new(),
                    },
                    encrypt: p.encrypt,
                    sealed: matches!(p.value, HopValue::Sealed(_) | HopValue::Keep),
                    carry: String::new(),
                })
                .collect();
            let n = params.len();
            params.extend((n..n + BLANK_PARAMS).map(blank_hop_param));
            HopRow {
                index: j,
                env: h.customer_id.clone().unwrap_or_else(|| env.to_string()),
                chain: h.name.clone(),
                when: h.when.as_str().into(),
                params,
            }
        })
        .collect()
}

fn with_blank_hop(mut hops: Vec<HopRow>, env: &str) -> Vec<HopRow> {
    let j = hops.len();
    hops.push(HopRow {
        index: j,
        env: env.to_string(),
        chain: String::new(),
        when: "success".into(),
        params: (0..BLANK_PARAMS + 1).map(blank_hop_param).collect(),
    });
    hops
}

fn blank_param(index: usize) -> ParamRow {
    ParamRow {
        index,
        name: String::new(),
        value: String::new(),
        encrypt: false,
        locked: false,
        sealed: false,
        carry: String::new(),
        error: String::new(),
    }
}

fn blank_hop_param(index: usize) -> HopParamRow {
    HopParamRow {
        index,
        name: String::new(),
        value: String::new(),
        encrypt: false,
        sealed: false,
        carry: String::new(),
    }
}

fn add_blank_params(params: &mut Vec<ParamRow>) {
    let n = params.len();
    params.extend((n..n + BLANK_PARAMS).map(blank_param));
}

/// Reads the posted form back into what the page shows.
fn form_from_post(form: &PostForm, env: &str) -> FormState {
    let mut params = Vec::new();
    let mut i = 0;
    while form.get(&format!("p{i}_name")).is_some() {
        params.push(ParamRow {
            index: i,
            name: form.trimmed(&format!("p{i}_name")),
            value: form.text(&format!("p{i}_value")),
            encrypt: form.checked(&format!("p{i}_encrypt")),
            locked: form.checked(&format!("p{i}_locked")),
            sealed: form.checked(&format!("p{i}_sealed")),
            carry: form.text(&format!("p{i}_carry")),
            error: String::new(),
        });
        i += 1;
    }
    let mut hops = Vec::new();
    let mut j = 0;
    while form.get(&format!("h{j}_chain")).is_some() {
        let mut hp = Vec::new();
        let mut k = 0;
        while form.get(&format!("h{j}_p{k}_name")).is_some() {
            hp.push(HopParamRow {
                index: k,
                name: form.trimmed(&format!("h{j}_p{k}_name")),
                value: form.text(&format!("h{j}_p{k}_value")),
                encrypt: form.checked(&format!("h{j}_p{k}_encrypt")),
                sealed: form.checked(&format!("h{j}_p{k}_sealed")),
                carry: form.text(&format!("h{j}_p{k}_carry")),
            });
            k += 1;
        }
        hops.push(HopRow {
            index: j,
            env: form
                .get(&format!("h{j}_env"))
                .filter(|e| !e.is_empty())
                .unwrap_or(env)
                .to_string(),
            chain: form.trimmed(&format!("h{j}_chain")),
            when: form
                .get(&format!("h{j}_when"))
                .unwrap_or("success")
                .to_string(),
            params: hp,
        });
        j += 1;
    }
    FormState {
        name: form.text("name"),
        description: form.text("description"),
        kind: form.text("kind"),
        enabled: form.checked("enabled"),
        trigger_type: form.get("trigger_type").unwrap_or("manual").to_string(),
        cron_expr: form.trimmed("cron_expr"),
        cron_zone: form.trimmed("cron_zone"),
        interval_seconds: form.trimmed("interval_seconds"),
        once_at: form.trimmed("once_at"),
        params,
        timeout_seconds: form.trimmed("timeout_seconds"),
        max_attempts: form.trimmed("max_attempts"),
        backoff_seconds: form.trimmed("backoff_seconds"),
        overlap: form.get("overlap").unwrap_or("allow").to_string(),
        catch_up: form.get("catch_up").unwrap_or("skip").to_string(),
        allow_loops: form.checked("allow_loops"),
        hops,
        chain_json: form.text("chain_json"),
    }
}

/// Where a carried secret is sealed: bound to this environment and this session.
fn carry_place<'a>(env: &'a str, me: &SignedIn) -> Place<'a> {
    let session = hex::encode(&crate::crypto::token_hash(&me.session_id)[..16]);
    Place {
        env,
        record: format!("form:{session}"),
        name: "carry",
    }
}

/// Opens the secrets a re-rendered form carried back (typed earlier, not saved yet).
fn open_carries(f: &mut FormState, keyring: &Keyring, place: &Place<'_>) {
    let open = |carry: &str| -> Option<String> {
        let sealed: SealedValue = serde_json::from_str(carry).ok()?;
        keyring.open(place, &sealed).ok().map(|v| v.to_string())
    };
    for p in f
        .params
        .iter_mut()
        .filter(|p| !p.carry.is_empty() && p.value.is_empty())
    {
        p.value = open(&p.carry).unwrap_or_default();
    }
    for p in f
        .hops
        .iter_mut()
        .flat_map(|h| h.params.iter_mut())
        .filter(|p| !p.carry.is_empty() && p.value.is_empty())
    {
        p.value = open(&p.carry).unwrap_or_default();
    }
}

/// Before a re-render: typed secrets go back sealed, never as text.
fn seal_carries(f: &mut FormState, keyring: &Keyring, place: &Place<'_>) {
    let seal = |value: &mut String, carry: &mut String| {
        if value.is_empty() {
            return;
        }
        *carry = keyring
            .seal(place, value)
            .ok()
            .and_then(|s| serde_json::to_string(&s).ok())
            .unwrap_or_default();
        value.clear();
    };
    for p in f.params.iter_mut().filter(|p| p.encrypt) {
        seal(&mut p.value, &mut p.carry);
    }
    for p in f
        .hops
        .iter_mut()
        .flat_map(|h| h.params.iter_mut())
        .filter(|p| p.encrypt)
    {
        seal(&mut p.value, &mut p.carry);
    }
}

/// The advanced JSON as a re-rendered form shows it: encrypted literals masked.
fn masked_chain_text(text: &str) -> String {
    match spec::parse(text, spec::Origin::User) {
        Ok(mut parsed) => {
            for hp in parsed.hops.iter_mut().flat_map(|h| h.params.iter_mut()) {
                if hp.encrypt
                    && matches!(&hp.value, HopValue::Text(t) if crate::chain::dynamic::tokens(t).is_empty())
                {
                    hp.value = HopValue::Keep;
                }
            }
            pretty(&parsed.to_masked())
        }
        // Not valid JSON: nothing can be told apart, so nothing is echoed.
        Err(_) if text.contains("encrypt") => String::new(),
        Err(_) => text.to_string(),
    }
}

/// A number typed in a form; anything else becomes a value the service refuses with a
/// clear message for that field.
fn number(text: &str, refused: u64) -> u64 {
    text.trim().parse().unwrap_or(refused)
}

/// The `async-TaskChain` text the Run another task fields describe.
fn compose_chain(hops: &[HopRow], env: &str) -> Option<String> {
    let objects: Vec<Value> = hops
        .iter()
        .filter(|h| !h.chain.is_empty())
        .map(|h| {
            let mut o = serde_json::Map::new();
            if h.env != env {
                o.insert("customerId".into(), json!(h.env));
            }
            o.insert("name".into(), json!(h.chain));
            let params: Vec<Value> = h
                .params
                .iter()
                .filter(|p| !p.name.is_empty())
                .map(|p| {
                    let kept = (p.sealed || !p.carry.is_empty()) && p.value.is_empty();
                    let value = if kept { Value::Null } else { json!(p.value) };
                    let mut po = serde_json::Map::new();
                    po.insert("name".into(), json!(p.name));
                    po.insert("value".into(), value);
                    if p.encrypt || p.sealed {
                        po.insert("encrypt".into(), json!(true));
                    }
                    if kept {
                        po.insert("is_set".into(), json!(true));
                    }
                    Value::Object(po)
                })
                .collect();
            if !params.is_empty() {
                o.insert("params".into(), Value::Array(params));
            }
            if h.when != "success" {
                o.insert("when".into(), json!(h.when));
            }
            Value::Object(o)
        })
        .collect();
    match objects.len() {
        0 => None,
        1 => serde_json::to_string_pretty(&objects[0]).ok(),
        _ => serde_json::to_string_pretty(&Value::Array(objects)).ok(),
    }
}

/// The service's input for what was posted. `chain`: the chain text to save, if any.
fn input_from(f: &FormState, chain: Option<String>) -> ScheduleInput {
    let trigger = match f.trigger_type.as_str() {
        "cron" => {
            json!({"type": "cron", "expr": f.cron_expr, "time_zone": if f.cron_zone.is_empty() { Value::Null } else { json!(f.cron_zone) }})
        }
        "interval" => json!({"type": "interval", "seconds": number(&f.interval_seconds, 0)}),
        "once" => json!({"type": "once", "at": f.once_at}),
        _ => json!({"type": "manual"}),
    };
    let mut params: Vec<ParamInput> = f
        .params
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| ParamInput {
            name: p.name.clone(),
            value: if p.sealed && p.value.is_empty() {
                None
            } else {
                Some(p.value.clone())
            },
            encrypt: p.encrypt || p.sealed,
            locked: p.locked,
            is_set: None,
        })
        .collect();
    if let Some(text) = chain {
        params.push(ParamInput {
            name: TASK_CHAIN_PARAM.into(),
            value: Some(text),
            ..Default::default()
        });
    }
    ScheduleInput {
        name: Some(f.name.clone()),
        description: Some(f.description.clone()),
        kind: Some(f.kind.clone()),
        enabled: Some(f.enabled),
        trigger: Some(trigger),
        params: Some(params),
        retry: Some(RetryInput {
            max_attempts: Some(u32::try_from(number(&f.max_attempts, 0)).unwrap_or(0)),
            backoff_seconds: Some(number(&f.backoff_seconds, u64::MAX)),
        }),
        timeout_seconds: Some(number(&f.timeout_seconds, 0)),
        overlap: serde_json::from_value(json!(f.overlap)).ok(),
        catch_up: serde_json::from_value(json!(f.catch_up)).ok(),
        allow_loops: Some(f.allow_loops),
        ..Default::default()
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
            .store
            .page_runs(
                env,
                &crate::store::RunFilter {
                    schedule: Some(id),
                    limit: 1,
                    ..Default::default()
                },
            )?
            .first()
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
    let id = path_id(&id, "schedule").map_err(|e| e.0)?;
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
    let id = path_id(&id, "schedule").map_err(|e| e.0)?;
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
