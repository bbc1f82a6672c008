use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for `/metrics` (Prometheus text format).
#[derive(Debug, Default)]
pub struct Metrics {
    pub runs_enqueued: AtomicU64,
    pub attempts_started: AtomicU64,
    pub runs_succeeded: AtomicU64,
    pub runs_failed: AtomicU64,
    pub runs_timed_out: AtomicU64,
    pub runs_cancelled: AtomicU64,
    pub retries_scheduled: AtomicU64,
    pub due_fired: AtomicU64,
    pub hops_fired: AtomicU64,
    pub hops_refused: AtomicU64,
    pub due_dropped: AtomicU64,
    pub commits: AtomicU64,
    pub committed_ops: AtomicU64,
}

impl Metrics {
    /// Renders the counters and the given gauges.
    pub fn render(&self, running: usize, queued: usize, scheduled: usize) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 13] = [
            (
                "baton_runs_enqueued_total",
                "Runs created",
                &self.runs_enqueued,
            ),
            (
                "baton_attempts_started_total",
                "Attempts started",
                &self.attempts_started,
            ),
            (
                "baton_runs_succeeded_total",
                "Runs that ended succeeded",
                &self.runs_succeeded,
            ),
            (
                "baton_runs_failed_total",
                "Runs that ended failed",
                &self.runs_failed,
            ),
            (
                "baton_runs_timed_out_total",
                "Runs that ended timed_out",
                &self.runs_timed_out,
            ),
            (
                "baton_runs_cancelled_total",
                "Runs that ended cancelled",
                &self.runs_cancelled,
            ),
            (
                "baton_retries_scheduled_total",
                "Failed attempts sent back to the queue",
                &self.retries_scheduled,
            ),
            (
                "baton_due_fired_total",
                "Due times that started a run",
                &self.due_fired,
            ),
            (
                "baton_hops_fired_total",
                "Chain hops that started a run",
                &self.hops_fired,
            ),
            (
                "baton_hops_refused_total",
                "Chain hops refused (recorded as chain errors)",
                &self.hops_refused,
            ),
            (
                "baton_due_dropped_total",
                "Due times dropped (overlap skip, catch-up skip)",
                &self.due_dropped,
            ),
            (
                "baton_commits_total",
                "Group commits of run operations",
                &self.commits,
            ),
            (
                "baton_committed_ops_total",
                "Run operations committed",
                &self.committed_ops,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let gauges = [
            ("baton_runs_running", "Runs running now", running),
            ("baton_runs_queued", "Runs waiting for a slot", queued),
            (
                "baton_schedules_due",
                "Schedules with a next due time",
                scheduled,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
