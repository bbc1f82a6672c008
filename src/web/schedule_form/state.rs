//! The form's state: what the page shows and what a post carries back, and how each becomes
//! the service's `ScheduleInput`.

use serde_json::{json, Value};

use super::super::form::PostForm;
use crate::chain::spec::{self, HopValue};
use crate::domain::{ParamValue, Schedule, Trigger, TASK_CHAIN_PARAM};
use crate::service::{ParamInput, RetryInput, ScheduleInput};

/// Blank rows offered for new parameters (JavaScript adds more).
pub(super) const BLANK_PARAMS: usize = 2;

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

pub(super) fn form_from_schedule(s: &Schedule, sees_chain: bool) -> FormState {
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

pub(super) fn pretty(compact: &str) -> String {
    serde_json::from_str::<Value>(compact)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| compact.to_string())
}

pub(super) fn hop_rows(parsed: &spec::ChainSpec, env: &str) -> Vec<HopRow> {
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

pub(super) fn with_blank_hop(mut hops: Vec<HopRow>, env: &str) -> Vec<HopRow> {
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

pub(super) fn blank_param(index: usize) -> ParamRow {
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

pub(super) fn blank_hop_param(index: usize) -> HopParamRow {
    HopParamRow {
        index,
        name: String::new(),
        value: String::new(),
        encrypt: false,
        sealed: false,
        carry: String::new(),
    }
}

pub(super) fn add_blank_params(params: &mut Vec<ParamRow>) {
    let n = params.len();
    params.extend((n..n + BLANK_PARAMS).map(blank_param));
}

/// Reads the posted form back into what the page shows.
pub(super) fn form_from_post(form: &PostForm, env: &str) -> FormState {
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

/// A number typed in a form; anything else becomes a value the service refuses with a
/// clear message for that field.
pub(super) fn number(text: &str, refused: u64) -> u64 {
    text.trim().parse().unwrap_or(refused)
}

/// The `async-TaskChain` text the Run another task fields describe.
pub(super) fn compose_chain(hops: &[HopRow], env: &str) -> Option<String> {
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
pub(super) fn input_from(f: &FormState, chain: Option<String>) -> ScheduleInput {
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
