//! The run operations the committer applies in batches (enqueue, claim, complete, log,
//! cancel, refire), what each answers, and the history filter. `runs.rs` applies them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::run::{ChainError, NewLogLine};
use crate::domain::{AuditEntry, FileToken, Run, RunState};

/// How long an `Idempotency-Key` answers with its first run.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    /// A digest of the request body: the same key with another body is refused.
    pub body_hash: String,
}

/// Advances a schedule past a due time. Committed with the run it fires (or alone, when the
/// due time is dropped), and refused unless the stored next due time is still `due_at`: that
/// is what keeps one due time from firing twice.
#[derive(Debug, Clone)]
pub struct Fire {
    pub schedule_id: Uuid,
    pub due_at: DateTime<Utc>,
    pub next_fire_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Enqueue {
    /// `queued`, or already `running` with its first attempt claimed when a worker was free.
    pub run: Run,
    pub idempotency: Option<IdempotencyKey>,
    pub fire: Option<Fire>,
    /// File tokens the run receives (a retry's fresh ones), committed with it.
    pub tokens: Vec<([u8; 32], FileToken)>,
    /// Who started it, audited in the same commit.
    pub audit: Option<AuditEntry>,
}

/// A run's attempt ended.
#[derive(Debug, Clone)]
pub struct Completion {
    pub run_id: Uuid,
    pub state: RunState,
    pub outputs: BTreeMap<String, String>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// Another attempt follows at this time: the run goes back to `queued`.
    pub retry_at: Option<DateTime<Utc>>,
    pub logs: Vec<NewLogLine>,
    /// The hops this completion fires, committed with it.
    pub hops: Hops,
    /// The run as its worker holds it (what the claim stored): spares decoding it again.
    /// `None` reads it from the store.
    pub run: Option<Box<Run>>,
}

/// What a run's end starts: the runs its hops start, the hops refused (with their reason),
/// the file tokens minted for the started runs, and the audit entries. All of it commits in
/// the same transaction as the source run's final state.
#[derive(Debug, Clone, Default)]
pub struct Hops {
    pub started: Vec<Run>,
    pub chain_errors: Vec<ChainError>,
    /// (SHA-256 of the token text, token)
    pub tokens: Vec<([u8; 32], FileToken)>,
    pub audit: Vec<AuditEntry>,
}

impl Hops {
    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
            && self.chain_errors.is_empty()
            && self.tokens.is_empty()
            && self.audit.is_empty()
    }
}

#[derive(Debug, Clone)]
pub enum RunOp {
    Enqueue(Box<Enqueue>),
    /// Starts the next attempt of a queued run: the attempt count is durable before it runs.
    Claim {
        run_id: Uuid,
        at: DateTime<Utc>,
        epoch: u64,
    },
    Complete(Box<Completion>),
    AppendLog {
        run_id: Uuid,
        lines: Vec<NewLogLine>,
    },
    /// A queued run becomes `cancelled` at once (its `always` hops fire).
    CancelQueued {
        run_id: Uuid,
        at: DateTime<Utc>,
        hops: Box<Hops>,
    },
    /// Fires hop `hop` of a finished run again; refused when that hop already started a run.
    Refire {
        source_id: Uuid,
        hop: u32,
        hops: Box<Hops>,
    },
    /// A hop refused outside a completion (a failed refire).
    RecordChainError {
        run_id: Uuid,
        error: ChainError,
    },
    /// A due time dropped (overlap `skip`, catch-up `skip`).
    Advance(Fire),
}

#[derive(Debug, Clone)]
pub enum RunOpOutcome {
    Enqueued(Box<Run>),
    /// An `Idempotency-Key` replay: the run it first started.
    Replayed(Uuid),
    Claimed(Box<Run>),
    Completed(Box<Run>),
    Logged,
    Cancelled(Box<Run>),
    Advanced,
}

/// History filters; `before` is the last id seen (exclusive).
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub schedule: Option<Uuid>,
    pub states: Option<Vec<RunState>>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before: Option<Uuid>,
    pub limit: usize,
}
