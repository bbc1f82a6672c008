//! The form's state: what the page shows and what a post carries back. Reading it from a
//! schedule or a post, and turning it into the service's `ScheduleInput`, live beside it.

use serde_json::Value;

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

/// `hops` and a blank one after them, to choose another chain in.
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

/// An empty parameter row.
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

/// An empty parameter row of a hop.
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

/// Blank rows after `params` for new parameters.
pub(super) fn add_blank_params(params: &mut Vec<ParamRow>) {
    let n = params.len();
    params.extend((n..n + BLANK_PARAMS).map(blank_param));
}

/// Chain JSON as the form shows it: indented (text that is not JSON stays as it is).
pub(super) fn pretty(compact: &str) -> String {
    serde_json::from_str::<Value>(compact)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| compact.to_string())
}
