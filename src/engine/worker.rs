//! One attempt of a run: open its secrets, resolve its dynamic values, run the task under
//! its timeout, and commit the outcome (with the logs, and a retry when one is due).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::hops::PlannedHops;
use super::{Active, Engine, StopReason, Waiting};
use crate::chain::dynamic::{resolve, Globals};
use crate::crypto::Place;
use crate::domain::{ParamValue, Run, RunState, TASK_CHAIN_PARAM};
use crate::store::{Completion, RunOp, RunOpOutcome};
use crate::tasks::{LogSink, Outputs, TaskContext, TaskError};

/// How an attempt ended.
enum AttemptEnd {
    Done(Outputs),
    Failed { message: String, retryable: bool },
    TimedOut,
    Stopped(StopReason),
}

/// What an attempt's end means for the run: the state it ends in (unless a retry follows),
/// its outputs, its error and whether another attempt may fix it.
struct Ended {
    state: RunState,
    outputs: Outputs,
    error: Option<String>,
    retryable: bool,
}

impl Ended {
    fn from_attempt(end: AttemptEnd, run: &Run) -> Self {
        let (state, outputs, error, retryable) = match end {
            AttemptEnd::Done(o) => (RunState::Succeeded, o, None, false),
            AttemptEnd::Failed { message, retryable } => {
                (RunState::Failed, Outputs::new(), Some(message), retryable)
            }
            AttemptEnd::TimedOut => (
                RunState::TimedOut,
                Outputs::new(),
                Some(format!("timed out after {} s", run.timeout_seconds)),
                true,
            ),
            AttemptEnd::Stopped(_) => (
                RunState::Cancelled,
                Outputs::new(),
                Some("cancelled".into()),
                false,
            ),
        };
        Self {
            state,
            outputs,
            error,
            retryable,
        }
    }

    /// The run log's last line for this attempt.
    fn log(
        &self,
        log: &LogSink,
        now: chrono::DateTime<chrono::Utc>,
        run: &Run,
        retry_at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let state = self.state.as_str();
        match (&retry_at, &self.error) {
            (Some(at), Some(e)) => log.push(
                now,
                "system",
                format!(
                    "attempt {} {state}: {e}; next attempt at {}",
                    run.attempts,
                    crate::domain::format_time(*at)
                ),
            ),
            (None, Some(e)) => log.push(now, "system", format!("run {state}: {e}")),
            _ => log.push(now, "system", "run succeeded"),
        }
    }
}

/// How often a running task's log lines are committed, so the log reads live.
const LOG_FLUSH: Duration = Duration::from_millis(500);
/// How long a stopped task gets to clean up (kill its processes).
const STOP_GRACE: Duration = Duration::from_secs(5);

impl Engine {
    pub(super) async fn execute(self: Arc<Self>, run: Run) {
        self.metrics
            .attempts_started
            .fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let reason = Arc::new(Mutex::new(None));
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                run.id,
                Active {
                    token: token.clone(),
                    reason: reason.clone(),
                },
            );
        let log = LogSink::default();
        log.push(
            self.clock.now(),
            "system",
            format!(
                "attempt {} of {} started",
                run.attempts, run.retry.max_attempts
            ),
        );

        let end = match self.attempt_with_live_log(&run, &token, &log).await {
            AttemptEnd::Stopped(_) => AttemptEnd::Stopped(
                reason
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .unwrap_or(StopReason::Cancel),
            ),
            other => other,
        };
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run.id);

        if matches!(end, AttemptEnd::Stopped(StopReason::Shutdown)) {
            // Left `running` on disk: the next start recovers it as an orphan.
            self.admission().release_slot(&run.env, run.schedule_id);
            return;
        }
        self.finish_attempt(&run, end, &log).await;
    }

    async fn finish_attempt(self: &Arc<Self>, run: &Run, end: AttemptEnd, log: &LogSink) {
        let now = self.clock.now();
        let ended = Ended::from_attempt(end, run);
        let retry_at = (ended.retryable && run.attempts_left())
            .then(|| now + jittered(run.retry.base_delay(run.attempts)));
        ended.log(log, now, run, retry_at);
        // The task has stopped executing, so its slot is free now: a hop's run (planned
        // next) or a waiting run can take it while this completion commits, instead of
        // queueing behind a slot that only a bookkeeping commit still holds.
        self.admission().release_slot(&run.env, run.schedule_id);
        // Hops are planned only on the final state, after the retries.
        let planned = if retry_at.is_none() {
            self.plan_hops(run, ended.state, &ended.outputs)
        } else {
            PlannedHops::default()
        };
        let state = ended.state;
        let completion = Completion {
            run_id: run.id,
            state,
            outputs: ended.outputs,
            error: ended.error,
            at: now,
            retry_at,
            logs: log.take(),
            hops: planned.hops.clone(),
            run: Some(Box::new(run.clone())),
        };
        let result = self
            .committer
            .submit(RunOp::Complete(Box::new(completion)))
            .await;
        self.hops_committed(planned, result.is_ok());
        self.completion_committed(run, state, result);
    }

    /// After the completion's commit: a retry waits its turn, a final run leaves its
    /// schedule's active count.
    fn completion_committed(
        &self,
        run: &Run,
        state: RunState,
        result: Result<RunOpOutcome, crate::store::StoreError>,
    ) {
        let mut adm = self.admission();
        match result {
            Ok(RunOpOutcome::Completed(done)) if done.state == RunState::Queued => {
                self.metrics
                    .retries_scheduled
                    .fetch_add(1, Ordering::Relaxed);
                adm.enqueue(Waiting {
                    run_id: done.id,
                    env: done.env.clone(),
                    schedule_id: done.schedule_id,
                    overlap: self.overlap_of(done.schedule_id),
                    not_before: done.not_before,
                });
            }
            Ok(_) => {
                adm.finish(run.schedule_id);
                self.count_final(state);
            }
            Err(e) => {
                tracing::error!(run = %run.id, "completing the run failed: {e}");
                adm.finish(run.schedule_id);
            }
        }
        drop(adm);
        self.wake.notify_one();
    }

    fn count_final(&self, state: RunState) {
        let counter = match state {
            RunState::Succeeded => &self.metrics.runs_succeeded,
            RunState::Failed => &self.metrics.runs_failed,
            RunState::TimedOut => &self.metrics.runs_timed_out,
            RunState::Cancelled => &self.metrics.runs_cancelled,
            RunState::Queued | RunState::Running => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn overlap_of(&self, schedule: uuid::Uuid) -> crate::domain::Overlap {
        self.store
            .schedule(schedule)
            .ok()
            .flatten()
            .map(|s| s.overlap)
            .unwrap_or_default()
    }

    async fn attempt(&self, run: &Run, token: &CancellationToken, log: &LogSink) -> AttemptEnd {
        let Some(kind) = self.kinds.get(&self.kind_of(run)).cloned() else {
            return AttemptEnd::Failed {
                message: "the schedule's kind is unknown or the schedule was deleted".into(),
                retryable: false,
            };
        };
        let params = match self.prepare_params(run) {
            Ok(p) => p,
            Err(message) => {
                return AttemptEnd::Failed {
                    message,
                    retryable: false,
                }
            }
        };
        if let Some(missing) = kind
            .spec()
            .params
            .iter()
            .find(|p| p.required && params.get(p.name).is_none_or(|v| v.is_empty()))
        {
            return AttemptEnd::Failed {
                message: format!("required parameter {} has no value", missing.name),
                retryable: false,
            };
        }
        let ctx = TaskContext {
            run_id: run.id,
            env: run.env.clone(),
            params,
            log: log.clone(),
            cancel: token.clone(),
            store: self.store.clone(),
            clock: self.clock.clone(),
            settings: self.settings.clone(),
        };
        let mut fut = kind.run(&ctx);
        let timeout = Duration::from_secs(run.timeout_seconds.max(1));
        let result = tokio::select! {
            r = &mut fut => r,
            () = tokio::time::sleep(timeout) => {
                token.cancel();
                let _ = tokio::time::timeout(STOP_GRACE, &mut fut).await;
                return AttemptEnd::TimedOut;
            }
        };
        match result {
            Ok(outputs) => AttemptEnd::Done(outputs),
            Err(TaskError::Retry(message)) => AttemptEnd::Failed {
                message,
                retryable: true,
            },
            Err(TaskError::Abort(message)) => AttemptEnd::Failed {
                message,
                retryable: false,
            },
            Err(TaskError::Stopped) => AttemptEnd::Stopped(StopReason::Cancel),
        }
    }

    fn kind_of(&self, run: &Run) -> String {
        if !run.kind.is_empty() {
            return run.kind.clone();
        }
        self.store
            .schedule(run.schedule_id)
            .ok()
            .flatten()
            .map(|s| s.kind)
            .unwrap_or_default()
    }

    /// The global dynamic values for `run`, now, in its environment's zone.
    pub(super) fn globals_for(&self, run: &Run) -> Globals {
        let zone = self.zone_of(&run.env);
        Globals::new(
            self.clock.now(),
            &zone,
            &run.acting_user,
            &run.id.to_string(),
            &run.schedule_id.to_string(),
            &run.env,
        )
    }

    /// Opens sealed values and expands the globals in the schedule's own values. Values
    /// given literally (run-now, a hop, a retry) are never expanded.
    fn prepare_params(&self, run: &Run) -> Result<HashMap<String, Zeroizing<String>>, String> {
        let globals = self.globals_for(run);
        let record = crate::crypto::run_record(run.id);
        let mut out = HashMap::with_capacity(run.params.len());
        for p in run.params.iter().filter(|p| p.name != TASK_CHAIN_PARAM) {
            let value = match &p.value {
                ParamValue::Sealed(s) => self
                    .keyring
                    .open(
                        &Place {
                            env: &run.env,
                            record: record.clone(),
                            name: &p.name,
                        },
                        s,
                    )
                    .map_err(|e| format!("parameter {}: {e}", p.name))?,
                ParamValue::Plain(v) if p.literal => Zeroizing::new(v.clone()),
                ParamValue::Plain(v) => Zeroizing::new(
                    resolve(v, &globals)
                        .map_err(|e| format!("parameter {}: {e}", p.name))?
                        .text,
                ),
            };
            out.insert(p.name.clone(), value);
        }
        Ok(out)
    }

    /// Runs the attempt, committing its log lines every [`LOG_FLUSH`] while it runs (so the
    /// log reads live). In the same task: a short attempt costs no extra task or timer wake.
    async fn attempt_with_live_log(
        &self,
        run: &Run,
        token: &CancellationToken,
        log: &LogSink,
    ) -> AttemptEnd {
        let attempt = self.attempt(run, token, log);
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                end = &mut attempt => return end,
                () = tokio::time::sleep(LOG_FLUSH) => {
                    let lines = log.take();
                    if !lines.is_empty() {
                        // Not awaited: the attempt keeps running while the lines commit.
                        self.committer.send(RunOp::AppendLog { run_id: run.id, lines });
                    }
                }
            }
        }
    }
}

/// The longest wait before a retry, jitter included (design §7: at most 1 h).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// ±20 % jitter, so retries of many runs do not arrive together; never past an hour.
fn jittered(base: Duration) -> chrono::Duration {
    let factor = rand::rng().random_range(0.8..=1.2);
    let delay = base.mul_f64(factor).min(MAX_RETRY_DELAY);
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Design §7: ±20 % jitter, never past an hour (the base delay is already capped at an
    /// hour, so the jitter is what could push it over).
    #[test]
    fn a_retry_waits_at_most_an_hour_with_its_jitter() {
        for _ in 0..1000 {
            let long = jittered(Duration::from_secs(3600));
            assert!(long <= chrono::Duration::hours(1), "{long}");
            assert!(long >= chrono::Duration::minutes(48), "{long}");
            let short = jittered(Duration::from_secs(100));
            assert!(
                (80_000..=120_000).contains(&short.num_milliseconds()),
                "{short}"
            );
        }
    }
}
