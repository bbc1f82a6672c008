//! The form as the service's `ScheduleInput`, and the Run another task fields as the
//! `async-TaskChain` text.

use serde_json::{json, Map, Value};

use super::state::{FormState, HopParamRow, HopRow};
use crate::domain::TASK_CHAIN_PARAM;
use crate::service::{ParamInput, RetryInput, ScheduleInput};

/// A number typed in a form; anything else becomes a value the service refuses with a
/// clear message for that field.
fn number(text: &str, refused: u64) -> u64 {
    text.trim().parse().unwrap_or(refused)
}

/// The `async-TaskChain` text the Run another task fields describe.
pub(super) fn compose_chain(hops: &[HopRow], env: &str) -> Option<String> {
    let objects: Vec<Value> = hops
        .iter()
        .filter(|h| !h.chain.is_empty())
        .map(|h| hop_json(h, env))
        .collect();
    match objects.len() {
        0 => None,
        1 => serde_json::to_string_pretty(&objects[0]).ok(),
        _ => serde_json::to_string_pretty(&Value::Array(objects)).ok(),
    }
}

/// One hop of the chain text; `customerId` only when it starts a chain in another
/// environment, `when` only when it is not the default.
fn hop_json(h: &HopRow, env: &str) -> Value {
    let mut o = Map::new();
    if h.env != env {
        o.insert("customerId".into(), json!(h.env));
    }
    o.insert("name".into(), json!(h.chain));
    let params: Vec<Value> = h
        .params
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(hop_param_json)
        .collect();
    if !params.is_empty() {
        o.insert("params".into(), Value::Array(params));
    }
    if h.when != "success" {
        o.insert("when".into(), json!(h.when));
    }
    Value::Object(o)
}

/// One parameter of a hop. A secret already set and not retyped goes as `"value": null`,
/// which keeps the stored one, with `"is_set": true` as the masked chain shows it.
fn hop_param_json(p: &HopParamRow) -> Value {
    let kept = (p.sealed || !p.carry.is_empty()) && p.value.is_empty();
    let value = if kept { Value::Null } else { json!(p.value) };
    let mut po = Map::new();
    po.insert("name".into(), json!(p.name));
    po.insert("value".into(), value);
    if p.encrypt || p.sealed {
        po.insert("encrypt".into(), json!(true));
    }
    if kept {
        po.insert("is_set".into(), json!(true));
    }
    Value::Object(po)
}

/// The service's input for what was posted. `chain`: the chain text to save, if any.
pub(super) fn input_from(f: &FormState, chain: Option<String>) -> ScheduleInput {
    ScheduleInput {
        name: Some(f.name.clone()),
        description: Some(f.description.clone()),
        kind: Some(f.kind.clone()),
        enabled: Some(f.enabled),
        trigger: Some(trigger_json(f)),
        params: Some(param_inputs(f, chain)),
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

/// The trigger the When section describes, as the service reads it.
fn trigger_json(f: &FormState) -> Value {
    match f.trigger_type.as_str() {
        "cron" => {
            json!({"type": "cron", "expr": f.cron_expr, "time_zone": if f.cron_zone.is_empty() { Value::Null } else { json!(f.cron_zone) }})
        }
        "interval" => json!({"type": "interval", "seconds": number(&f.interval_seconds, 0)}),
        "once" => json!({"type": "once", "at": f.once_at}),
        _ => json!({"type": "manual"}),
    }
}

/// The named parameters, then the chain text. A sealed value not retyped is sent without a
/// value, so the service keeps it.
fn param_inputs(f: &FormState, chain: Option<String>) -> Vec<ParamInput> {
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
    params
}
