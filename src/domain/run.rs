use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ParamValue, RetryPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 6] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::TimedOut,
        RunState::Cancelled,
    ];

    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::TimedOut => "timed_out",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A small stable number for index keys.
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Manual,
    Schedule,
    Chain,
    Retry,
    Refire,
}

/// Points at a run in some environment (lineage crosses environments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    pub env: String,
    pub id: Uuid,
}

/// A parameter as the run received it: its own copy, taken when the run was queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunParam {
    pub name: String,
    pub value: ParamValue,
    /// Values from run-now, a hop or a retry are taken literally: dynamic values in them are
    /// never expanded.
    #[serde(default)]
    pub literal: bool,
    /// The file token this parameter holds (sealed), so a retry can mint a fresh one.
    #[serde(default)]
    pub file_token: Option<Uuid>,
}

/// A hop that did not fire, kept on the source run with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainError {
    pub hop: u32,
    pub env: String,
    pub chain: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A schedule's default timeout; stored runs leave it out.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

fn is_default_timeout(t: &u64) -> bool {
    *t == DEFAULT_TIMEOUT_SECONDS
}

/// One execution of a schedule. Stored as sparse JSON: times in Unix milliseconds, empty and
/// default fields left out (a finished no-op run is a few hundred bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: Uuid,
    pub env: String,
    pub schedule_id: Uuid,
    /// The task kind, copied from the schedule when the run was made (its own copy, like
    /// its parameters). Empty in runs stored before it was recorded: read the schedule.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub state: RunState,
    pub origin: Origin,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub due_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "RetryPolicy::is_default")]
    pub retry: RetryPolicy,
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout"
    )]
    pub timeout_seconds: u64,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub queued_at: DateTime<Utc>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub finished_at: Option<DateTime<Utc>>,
    /// A retry waits in `queued` until this time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "chrono::serde::ts_milliseconds_option"
    )]
    pub not_before: Option<DateTime<Utc>>,
    pub acting_user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<RunParam>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run that started this lineage; `None` when this run is its own root (the
    /// common case, so it is not stored). Read it with [`Run::root`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RunRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RunRef>,
    /// Which hop of the parent's `async-TaskChain` started this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_hop: Option<u32>,
    pub depth: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<RunRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain_errors: Vec<ChainError>,
    /// The process epoch that claimed the current attempt; a `running` run from an older
    /// epoch is an orphan.
    #[serde(default)]
    pub epoch: u64,
}

impl Run {
    pub fn root(&self) -> RunRef {
        self.root.clone().unwrap_or_else(|| self.as_ref())
    }

    pub fn as_ref(&self) -> RunRef {
        RunRef {
            env: self.env.clone(),
            id: self.id,
        }
    }

    pub fn attempts_left(&self) -> bool {
        self.attempts < self.retry.max_attempts
    }
}

/// A log line before it is stored: (time, stream, text).
pub type NewLogLine = (DateTime<Utc>, String, String);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u32,
    pub at: DateTime<Utc>,
    /// `system`, `stdout`, `stderr`, `task`.
    pub stream: String,
    pub text: String,
}
