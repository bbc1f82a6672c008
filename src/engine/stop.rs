//! Stopping work: cancelling one run, and shutting the engine down.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError, StopReason};
use crate::domain::{Run, RunState};
use crate::store::RunOp;

impl Engine {
    /// Cancels a run: a queued one at once, a running one by stopping its attempt.
    pub async fn cancel(self: &Arc<Self>, run: &Run) -> Result<(), EngineError> {
        match run.state {
            RunState::Queued => self.cancel_queued(run).await,
            RunState::Running => self.stop_attempt(run, StopReason::Cancel),
            other => Err(EngineError::WrongState(other.as_str())),
        }
    }

    /// A queued run ends `cancelled` in one commit with the hops that fire on it
    /// (`when: always`).
    async fn cancel_queued(self: &Arc<Self>, run: &Run) -> Result<(), EngineError> {
        let waiting = self.admission().remove_waiting(run.id);
        let planned = self.plan_hops(run, RunState::Cancelled, &run.outputs);
        let result = self
            .committer
            .submit(RunOp::CancelQueued {
                run_id: run.id,
                at: self.clock.now(),
                hops: Box::new(planned.hops.clone()),
            })
            .await;
        self.hops_committed(planned, result.is_ok());
        match result {
            Ok(_) => {
                self.admission().finish(run.schedule_id);
                self.metrics.runs_cancelled.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // It was claimed meanwhile: put it back and report its state.
                if let Some(w) = waiting {
                    self.admission().enqueue(w);
                }
                Err(e.into())
            }
        }
    }

    /// Tells a running attempt of this process to stop, saying why.
    fn stop_attempt(&self, run: &Run, reason: StopReason) -> Result<(), EngineError> {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        let a = active.get(&run.id).ok_or(EngineError::WrongState(
            "running in no worker of this process",
        ))?;
        *a.reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        a.token.cancel();
        Ok(())
    }

    /// Stops intake, lets running attempts finish within `grace`, then stops the rest
    /// (they stay `running` on disk and are recovered at the next start).
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.cancel();
        self.workers.close();
        if tokio::time::timeout(grace, self.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace over; stopping the runs still running");
            for a in self
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
            {
                // A cancel asked for before stays a cancel: only a run nobody stopped is
                // left `running` for the next start to pick up again.
                a.reason
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(StopReason::Shutdown);
                a.token.cancel();
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.workers.wait()).await;
        }
    }
}
