//! Start-up after a stop or a crash: orphaned attempts end (or go back to the queue) and
//! queued runs wait their turn again.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::hops::PlannedHops;
use super::{Engine, EngineError, Waiting};
use crate::domain::{Overlap, Run, RunState};
use crate::store::{Completion, RunOp, RunOpOutcome, StoreError};

impl Engine {
    /// Start-up: orphans from an older epoch go back to the queue (or fail as interrupted
    /// when no attempt is left); queued runs wait their turn again. Answers (orphans found,
    /// runs waiting).
    pub async fn recover(
        self: &Arc<Self>,
        overlaps: &HashMap<Uuid, Overlap>,
    ) -> Result<(usize, usize), EngineError> {
        let store = self.store.clone();
        let (running, queued) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((
                store.runs_in_state(RunState::Running)?,
                store.runs_in_state(RunState::Queued)?,
            ))
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))??;
        let now = self.clock.now();
        let orphans = running.len();
        // The queued runs wait first, so hops fired by ending orphans are admitted behind
        // them (overlap `skip` sees them active; the queue keeps its order).
        self.wait_again(queued, overlaps);
        let mut requeued = Vec::new();
        for run in running.into_iter().filter(|r| r.epoch < self.store.epoch()) {
            if let Some(again) = self.end_orphan(&run, now).await? {
                requeued.push(again);
            }
        }
        self.wait_again(requeued, overlaps);
        let waiting = self.admission().queued_total();
        self.wake.notify_one();
        Ok((orphans, waiting))
    }

    /// Stored `queued` runs, active again and back in the queue, in the order given.
    fn wait_again(&self, runs: Vec<Run>, overlaps: &HashMap<Uuid, Overlap>) {
        let mut adm = self.admission();
        for run in runs {
            adm.count_active(run.schedule_id);
            adm.enqueue(Waiting {
                run_id: run.id,
                env: run.env.clone(),
                schedule_id: run.schedule_id,
                overlap: overlaps.get(&run.schedule_id).copied().unwrap_or_default(),
                not_before: run.not_before,
            });
        }
    }

    /// Ends an attempt a stopped process left `running`: another attempt follows at once
    /// when one is left (the run is answered, queued), else the run fails as interrupted and
    /// its hops fire.
    async fn end_orphan(
        self: &Arc<Self>,
        run: &Run,
        now: DateTime<Utc>,
    ) -> Result<Option<Run>, EngineError> {
        let again = run.attempts_left();
        let planned = if again {
            PlannedHops::default()
        } else {
            self.plan_hops(run, RunState::Failed, &run.outputs)
        };
        let completion = Completion {
            run_id: run.id,
            state: RunState::Failed,
            outputs: Default::default(),
            error: Some("interrupted".into()),
            at: now,
            retry_at: again.then_some(now),
            logs: vec![(
                now,
                "system".into(),
                format!("attempt {} interrupted by a restart", run.attempts),
            )],
            hops: planned.hops.clone(),
            run: None,
        };
        let result = self
            .committer
            .submit(RunOp::Complete(Box::new(completion)))
            .await;
        self.hops_committed(planned, result.is_ok());
        match result? {
            RunOpOutcome::Completed(r) if r.state == RunState::Queued => Ok(Some(*r)),
            _ => Ok(None),
        }
    }
}
