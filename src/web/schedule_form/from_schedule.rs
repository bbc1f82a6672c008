//! A saved schedule as the form shows it.

use super::state::{add_blank_params, blank_hop_param, pretty, with_blank_hop, BLANK_PARAMS};
use super::state::{FormState, HopParamRow, HopRow, ParamRow};
use crate::chain::spec::{self, HopValue};
use crate::domain::{format_time, ParamValue, Schedule, Trigger, TASK_CHAIN_PARAM};

/// The When section's fields for one trigger; those of the other trigger types stay empty.
#[derive(Default)]
struct TriggerFields {
    trigger_type: &'static str,
    cron_expr: String,
    cron_zone: String,
    interval_seconds: String,
    once_at: String,
}

impl TriggerFields {
    fn of(trigger: &Trigger) -> Self {
        match trigger {
            Trigger::Manual => Self {
                trigger_type: "manual",
                ..Default::default()
            },
            Trigger::Cron { expr, time_zone } => Self {
                trigger_type: "cron",
                cron_expr: expr.clone(),
                cron_zone: time_zone.clone().unwrap_or_default(),
                ..Default::default()
            },
            Trigger::Interval { seconds } => Self {
                trigger_type: "interval",
                interval_seconds: seconds.to_string(),
                ..Default::default()
            },
            Trigger::Once { at } => Self {
                trigger_type: "once",
                once_at: format_time(*at),
                ..Default::default()
            },
        }
    }
}

/// The form for a saved schedule. `sees_chain`: the viewer may see the chain it starts.
pub(super) fn form_from_schedule(s: &Schedule, sees_chain: bool) -> FormState {
    let when = TriggerFields::of(&s.trigger);
    let (hops, chain_json) = if sees_chain {
        chain_fields(s)
    } else {
        (Vec::new(), String::new())
    };
    FormState {
        name: s.name.clone(),
        description: s.description.clone(),
        kind: s.kind.clone(),
        enabled: s.enabled,
        trigger_type: when.trigger_type.into(),
        cron_expr: when.cron_expr,
        cron_zone: when.cron_zone,
        interval_seconds: when.interval_seconds,
        once_at: when.once_at,
        params: param_rows(s),
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

/// The schedule's parameters but its chain (which has a section of its own), then blank
/// rows; a sealed value is shown as set, never as text.
fn param_rows(s: &Schedule) -> Vec<ParamRow> {
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
    params
}

/// The chain the schedule starts, as hop rows and as the advanced JSON with encrypted values
/// masked; a stored text that does not parse is shown as it is, without rows.
fn chain_fields(s: &Schedule) -> (Vec<HopRow>, String) {
    match s.param(TASK_CHAIN_PARAM).map(|p| &p.value) {
        Some(ParamValue::Plain(text)) => match spec::parse(text, spec::Origin::Stored) {
            Ok(parsed) => (hop_rows(&parsed, &s.env), pretty(&parsed.to_masked())),
            Err(_) => (Vec::new(), text.clone()),
        },
        _ => (Vec::new(), String::new()),
    }
}

/// A row a hop of a parsed chain, each with blank rows for more parameters.
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
