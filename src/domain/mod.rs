//! Pure types and rules of Baton. Nothing in here imports another module of this crate,
//! does I/O or reads the clock: callers pass time in.

pub mod chain;
pub mod clock;
pub mod environment;
pub mod problems;
pub mod run;
pub mod schedule;
pub mod trigger;
pub mod user;

pub use chain::{Chain, FileToken, Upload};
pub use clock::{Clock, SystemClock};
pub use environment::Environment;
pub use problems::{FieldProblem, Problems};
pub use run::{LogLine, Origin, Run, RunRef, RunState};
pub use schedule::{
    CatchUp, Overlap, ParamValue, RetryPolicy, Schedule, ScheduleParam, SealedValue,
};
pub use trigger::Trigger;
pub use user::{ApiToken, AuditEntry, Role, Session, User};

/// The parameter that holds a schedule's chaining rules (design §2).
pub const TASK_CHAIN_PARAM: &str = "async-TaskChain";

/// Formats a time the way the API and the logs show it: RFC 3339, UTC, milliseconds, `Z`.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
