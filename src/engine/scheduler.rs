//! The scheduler: one loop that sleeps until the earliest due time (no polling tick), fires
//! every due schedule through the engine, and advances each schedule in the same commit as
//! the run it starts. Wall-clock jumps: it re-reads the clock at least every
//! [`MAX_SLEEP`], and due times only move forward, so nothing fires twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Engine, EngineError, Submitted};
use crate::domain::{CatchUp, Origin, Schedule};
use crate::store::{Fire, RunOp, StoreError};

/// The longest the loop sleeps without looking at the wall clock again.
const MAX_SLEEP: Duration = Duration::from_secs(30);

#[derive(Default)]
struct DueSet {
    queue: BTreeSet<(DateTime<Utc>, Uuid)>,
    by_schedule: HashMap<Uuid, DateTime<Utc>>,
}

impl DueSet {
    fn set(&mut self, id: Uuid, at: Option<DateTime<Utc>>) {
        if let Some(old) = self.by_schedule.remove(&id) {
            self.queue.remove(&(old, id));
        }
        if let Some(at) = at {
            self.queue.insert((at, id));
            self.by_schedule.insert(id, at);
        }
    }

    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, Uuid)> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            self.by_schedule.remove(&id);
            due.push((at, id));
        }
        due
    }
}

/// From a due time `from` (not after `now`): the last due time not after `now`, and the
/// first one after it. Walks the trigger's own sequence, bounded (a minutely cron missed for
/// a year is ~500k steps).
fn missed_and_next(
    trigger: &crate::domain::Trigger,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    zone: &str,
) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let mut latest = from;
    for _ in 0..1_000_000 {
        match trigger.next_after(latest, zone) {
            Some(t) if t <= now => latest = t,
            next => return (latest, next),
        }
    }
    (latest, trigger.next_after(now, zone))
}

pub struct Scheduler {
    engine: Arc<Engine>,
    due: Mutex<DueSet>,
    wake: Notify,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            due: Mutex::new(DueSet::default()),
            wake: Notify::new(),
        })
    }

    fn due(&self) -> std::sync::MutexGuard<'_, DueSet> {
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.due().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Called after a schedule is saved or deleted.
    pub fn update(&self, id: Uuid, next: Option<DateTime<Utc>>) {
        self.due().set(id, next);
        self.wake.notify_one();
    }

    /// Start-up: loads every due schedule; those whose time passed while Baton was down get
    /// their catch-up policy (skip, or one run for the latest missed time).
    pub async fn load(&self) -> Result<(), EngineError> {
        let store = self.engine.store.clone();
        let schedules = tokio::task::spawn_blocking(move || store.due_schedules())
            .await
            .map_err(|e| StoreError::Db(e.to_string()))??;
        let now = self.engine.clock.now();
        for s in schedules {
            let Some(next) = s.next_fire_at else { continue };
            if next > now {
                self.due().set(s.id, Some(next));
                continue;
            }
            if let Err(e) = self.catch_up(&s, next, now).await {
                tracing::warn!(schedule = %s.id, "catch-up failed: {e}");
            }
        }
        Ok(())
    }

    async fn catch_up(
        &self,
        s: &Schedule,
        stored: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let zone = self.env_zone(&s.env);
        let (latest, next) = missed_and_next(&s.trigger, stored, now, &zone);
        let fire = Fire {
            schedule_id: s.id,
            due_at: stored,
            next_fire_at: next,
        };
        if s.catch_up == CatchUp::Once && s.enabled {
            tracing::info!(schedule = %s.id, "catching up once for {latest}");
            self.fire(s, latest, fire).await?;
        } else {
            self.engine.submit_op(RunOp::Advance(fire)).await?;
            self.engine
                .metrics
                .due_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.due().set(s.id, next);
        Ok(())
    }

    fn env_zone(&self, env: &str) -> String {
        self.engine.zone_of(env)
    }

    /// The loop. Stops when the engine stops taking work.
    pub async fn run(self: Arc<Self>) {
        loop {
            if self.engine.is_stopping() {
                return;
            }
            let now = self.engine.clock.now();
            let due = self.due().take_due(now);
            if !due.is_empty() {
                let mut fires = tokio::task::JoinSet::new();
                for (at, id) in due {
                    let me = self.clone();
                    fires.spawn(async move { me.fire_due(id, at).await });
                }
                while fires.join_next().await.is_some() {}
                continue;
            }
            let wait = self.due().queue.first().map_or(MAX_SLEEP, |(at, _)| {
                (*at - now).to_std().unwrap_or_default().min(MAX_SLEEP)
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Fires one due time of one schedule, as stored now.
    async fn fire_due(&self, id: Uuid, at: DateTime<Utc>) {
        let store = self.engine.store.clone();
        let schedule = match tokio::task::spawn_blocking(move || store.schedule(id)).await {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                return tracing::error!(schedule = %id, "reading the schedule failed: {e}")
            }
            Err(e) => return tracing::error!(schedule = %id, "reading the schedule failed: {e}"),
        };
        if schedule.next_fire_at != Some(at) {
            // Changed since it was queued here: follow the stored time.
            self.due().set(id, schedule.next_fire_at);
            return;
        }
        let zone = self.env_zone(&schedule.env);
        let now = self.engine.clock.now();
        // The next due time after this one; times already past (a long stall) are dropped,
        // staying on the trigger's own grid (an interval keeps counting from its due times).
        let (_, next) = missed_and_next(&schedule.trigger, at, now, &zone);
        let fire = Fire {
            schedule_id: id,
            due_at: at,
            next_fire_at: next,
        };
        let result = if schedule.enabled {
            self.fire(&schedule, at, fire).await
        } else {
            self.engine
                .submit_op(RunOp::Advance(fire))
                .await
                .map(|_| ())
                .map_err(Into::into)
        };
        self.after_fire(id, at, next, result).await;
    }

    /// Keeps the due queue in step with what the fire came to: on to the next time, or a
    /// dropped due time (overlap `skip`) advanced past, or the stored time re-read after an
    /// error.
    async fn after_fire(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        result: Result<(), EngineError>,
    ) {
        match result {
            Ok(()) => self.due().set(id, next),
            Err(EngineError::Busy) => {
                tracing::info!(schedule = %id, "due time {at} dropped: a run is still active (overlap: skip)");
                self.engine
                    .metrics
                    .due_dropped
                    .fetch_add(1, Ordering::Relaxed);
                let fire = Fire {
                    schedule_id: id,
                    due_at: at,
                    next_fire_at: next,
                };
                if self.engine.submit_op(RunOp::Advance(fire)).await.is_ok() {
                    self.due().set(id, next);
                }
            }
            Err(e) => {
                tracing::error!(schedule = %id, "firing {at} failed: {e}");
                // Re-read what is stored and try again from there.
                let stored = self
                    .engine
                    .store
                    .schedule(id)
                    .ok()
                    .flatten()
                    .and_then(|s| s.next_fire_at);
                self.due().set(id, stored);
            }
        }
    }

    async fn fire(
        &self,
        schedule: &Schedule,
        due_at: DateTime<Utc>,
        fire: Fire,
    ) -> Result<(), EngineError> {
        let run = self.engine.new_run(
            schedule,
            Origin::Schedule,
            &schedule.saved_by,
            Some(due_at),
            None,
        )?;
        match self
            .engine
            .submit(
                run,
                super::Submit {
                    overlap: schedule.overlap,
                    fire: Some(fire),
                    ..Default::default()
                },
            )
            .await?
        {
            Submitted::Started(_) | Submitted::Queued(_) | Submitted::Replayed(_) => {}
        }
        self.engine
            .metrics
            .due_fired
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wakes the loop (tests that move a manual clock).
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Trigger;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_late_interval_stays_on_its_grid() {
        let every_hour = Trigger::Interval { seconds: 3600 };
        let (latest, next) = missed_and_next(
            &every_hour,
            t("2030-01-01T01:00:00Z"),
            t("2030-01-01T03:30:00Z"),
            "UTC",
        );
        assert_eq!(latest, t("2030-01-01T03:00:00Z"));
        assert_eq!(next, Some(t("2030-01-01T04:00:00Z")));
    }

    #[test]
    fn on_time_nothing_is_skipped() {
        let cron = Trigger::Cron {
            expr: "0 * * * *".into(),
            time_zone: None,
        };
        let (latest, next) = missed_and_next(
            &cron,
            t("2030-01-01T01:00:00Z"),
            t("2030-01-01T01:00:00.005Z"),
            "UTC",
        );
        assert_eq!(latest, t("2030-01-01T01:00:00Z"));
        assert_eq!(next, Some(t("2030-01-01T02:00:00Z")));
    }
}
