//! How schedules and runs are shown: secrets masked, `async-TaskChain` left out below
//! integration. Shared by the JSON API and the pages.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use crate::domain::run::{ChainError, RunParam};
use crate::domain::{
    format_time, CatchUp, Overlap, ParamValue, RetryPolicy, Run, RunRef, Schedule, ScheduleParam,
    Trigger, TASK_CHAIN_PARAM,
};

#[derive(Debug, Clone, Serialize)]
pub struct ParamView {
    pub name: String,
    pub value: Option<String>,
    pub encrypt: bool,
    pub locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_set: Option<bool>,
}

fn param_view(name: &str, value: &ParamValue, locked: bool) -> ParamView {
    match value {
        // The chain text is shown compact, without comments, its sealed literals masked.
        ParamValue::Plain(v) if name == TASK_CHAIN_PARAM => {
            let masked = crate::chain::spec::parse(v, crate::chain::spec::Origin::Stored)
                .map_or_else(|_| v.clone(), |s| s.to_masked());
            ParamView {
                name: name.to_string(),
                value: Some(masked),
                encrypt: false,
                locked,
                is_set: None,
            }
        }
        ParamValue::Plain(v) => ParamView {
            name: name.to_string(),
            value: Some(v.clone()),
            encrypt: false,
            locked,
            is_set: None,
        },
        ParamValue::Sealed(_) => ParamView {
            name: name.to_string(),
            value: None,
            encrypt: true,
            locked,
            is_set: Some(true),
        },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleView {
    pub id: Uuid,
    pub env: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub params: Vec<ParamView>,
    pub retry: RetryPolicy,
    pub timeout_seconds: u64,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub allow_loops: bool,
    pub next_fire_at: Option<String>,
    pub saved_by: String,
    pub updated_at: String,
}

impl ScheduleView {
    pub fn new(s: &Schedule, sees_chain: bool) -> Self {
        let visible = |p: &&ScheduleParam| sees_chain || p.name != TASK_CHAIN_PARAM;
        Self {
            id: s.id,
            env: s.env.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            kind: s.kind.clone(),
            enabled: s.enabled,
            trigger: s.trigger.clone(),
            params: s
                .params
                .iter()
                .filter(visible)
                .map(|p| param_view(&p.name, &p.value, p.locked))
                .collect(),
            retry: s.retry,
            timeout_seconds: s.timeout_seconds,
            overlap: s.overlap,
            catch_up: s.catch_up,
            allow_loops: s.allow_loops,
            next_fire_at: s.next_fire_at.map(format_time),
            saved_by: s.saved_by.clone(),
            updated_at: format_time(s.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainErrorView {
    pub hop: u32,
    pub env: String,
    pub chain: String,
    pub message: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainView {
    pub root: RunRef,
    pub parent: Option<RunRef>,
    pub depth: u32,
    pub children: Vec<RunRef>,
    pub errors: Vec<ChainErrorView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: Uuid,
    pub env: String,
    pub schedule_id: Uuid,
    pub state: &'static str,
    pub origin: crate::domain::Origin,
    pub due_at: Option<String>,
    pub attempts: u32,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub acting_user: String,
    pub params: Vec<ParamView>,
    pub outputs: BTreeMap<String, String>,
    pub error: Option<String>,
    pub chain: ChainView,
}

impl RunView {
    pub fn new(r: &Run, sees_chain: bool) -> Self {
        let visible = |p: &&RunParam| sees_chain || p.name != TASK_CHAIN_PARAM;
        let chain_error = |e: &ChainError| ChainErrorView {
            hop: e.hop,
            env: e.env.clone(),
            chain: e.chain.clone(),
            message: e.message.clone(),
            at: format_time(e.at),
        };
        Self {
            id: r.id,
            env: r.env.clone(),
            schedule_id: r.schedule_id,
            state: r.state.as_str(),
            origin: r.origin,
            due_at: r.due_at.map(format_time),
            attempts: r.attempts,
            queued_at: format_time(r.queued_at),
            started_at: r.started_at.map(format_time),
            finished_at: r.finished_at.map(format_time),
            acting_user: r.acting_user.clone(),
            params: r
                .params
                .iter()
                .filter(visible)
                .map(|p| param_view(&p.name, &p.value, false))
                .collect(),
            outputs: r.outputs.clone(),
            error: r.error.clone(),
            chain: ChainView {
                root: r.root(),
                parent: r.parent.clone(),
                depth: r.depth,
                children: r.children.clone(),
                errors: r.chain_errors.iter().map(chain_error).collect(),
            },
        }
    }
}
