//! Which runs may start now: the global limit, each environment's limit and each
//! schedule's overlap policy, over an in-memory FIFO of queued runs. The store stays the
//! truth; this is rebuilt from it at start.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Overlap;

#[derive(Debug, Clone)]
pub struct Waiting {
    pub run_id: Uuid,
    pub env: String,
    pub schedule_id: Uuid,
    pub overlap: Overlap,
    pub not_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Admission {
    pub global_limit: usize,
    running_total: usize,
    env_limits: HashMap<String, usize>,
    running_by_env: HashMap<String, usize>,
    running_by_schedule: HashMap<Uuid, usize>,
    /// Queued plus running, for overlap `skip`.
    active_by_schedule: HashMap<Uuid, usize>,
    queue: VecDeque<Waiting>,
    /// The `not_before` times of the waiting runs (time → how many), so the next wakeup is
    /// found without scanning the whole queue on every dispatch.
    retry_times: BTreeMap<DateTime<Utc>, usize>,
}

impl Admission {
    pub fn new(global_limit: usize) -> Self {
        Self {
            global_limit: global_limit.max(1),
            ..Self::default()
        }
    }

    pub fn set_env_limit(&mut self, env: &str, limit: Option<u32>) {
        match limit {
            Some(l) => self.env_limits.insert(env.to_string(), l as usize),
            None => self.env_limits.remove(env),
        };
    }

    pub fn active(&self, schedule: Uuid) -> usize {
        self.active_by_schedule.get(&schedule).copied().unwrap_or(0)
    }

    pub fn running_total(&self) -> usize {
        self.running_total
    }

    pub fn queued_total(&self) -> usize {
        self.queue.len()
    }

    fn fits(&self, env: &str, schedule: Uuid, overlap: Overlap) -> bool {
        self.running_total < self.global_limit
            && self
                .env_limits
                .get(env)
                .is_none_or(|l| self.running_by_env.get(env).copied().unwrap_or(0) < *l)
            && (overlap != Overlap::Queue
                || self
                    .running_by_schedule
                    .get(&schedule)
                    .copied()
                    .unwrap_or(0)
                    == 0)
    }

    fn take_slot(&mut self, env: &str, schedule: Uuid) {
        self.running_total += 1;
        *self.running_by_env.entry(env.to_string()).or_default() += 1;
        *self.running_by_schedule.entry(schedule).or_default() += 1;
    }

    /// A new run becomes active; `Some(true)` when it may start at once (nothing waits before
    /// it and a slot is free: the slot is taken), `None` when overlap `skip` refuses it.
    pub fn admit_new(&mut self, env: &str, schedule: Uuid, overlap: Overlap) -> Option<bool> {
        if overlap == Overlap::Skip && self.active(schedule) > 0 {
            return None;
        }
        *self.active_by_schedule.entry(schedule).or_default() += 1;
        let now = self.queue.is_empty() && self.fits(env, schedule, overlap);
        if now {
            self.take_slot(env, schedule);
        }
        Some(now)
    }

    /// Undoes [`Self::admit_new`] when its commit failed or was a replay.
    pub fn forget_new(&mut self, env: &str, schedule: Uuid, started: bool) {
        if started {
            self.release_slot(env, schedule);
        }
        self.finish(schedule);
    }

    /// A run already active (recovered at start, or back for a retry) waits its turn.
    pub fn enqueue(&mut self, w: Waiting) {
        if let Some(t) = w.not_before {
            *self.retry_times.entry(t).or_default() += 1;
        }
        self.queue.push_back(w);
    }

    /// Keeps [`Self::retry_times`] in step when `w` leaves the queue.
    fn left_queue(&mut self, w: &Waiting) {
        if let Some(t) = w.not_before {
            if let Some(n) = self.retry_times.get_mut(&t) {
                *n -= 1;
                if *n == 0 {
                    self.retry_times.remove(&t);
                }
            }
        }
    }

    /// Recovery counts a queued run as active before enqueueing it.
    pub fn count_active(&mut self, schedule: Uuid) {
        *self.active_by_schedule.entry(schedule).or_default() += 1;
    }

    /// Takes every waiting run that may start now, taking their slots.
    pub fn take_ready(&mut self, now: DateTime<Utc>) -> Vec<Waiting> {
        let mut ready = Vec::new();
        let mut i = 0;
        while i < self.queue.len() && self.running_total < self.global_limit {
            let w = &self.queue[i];
            if w.not_before.is_none_or(|t| t <= now) && self.fits(&w.env, w.schedule_id, w.overlap)
            {
                if let Some(w) = self.queue.remove(i) {
                    self.left_queue(&w);
                    self.take_slot(&w.env, w.schedule_id);
                    ready.push(w);
                }
            } else {
                i += 1;
            }
        }
        ready
    }

    /// The earliest time a waiting retry becomes due.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        self.retry_times.keys().next().copied()
    }

    /// Removes a queued run (cancelled); true when it was waiting here.
    pub fn remove_waiting(&mut self, run_id: Uuid) -> Option<Waiting> {
        let pos = self.queue.iter().position(|w| w.run_id == run_id)?;
        let w = self.queue.remove(pos)?;
        self.left_queue(&w);
        Some(w)
    }

    pub fn release_slot(&mut self, env: &str, schedule: Uuid) {
        self.running_total = self.running_total.saturating_sub(1);
        if let Some(n) = self.running_by_env.get_mut(env) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = self.running_by_schedule.get_mut(&schedule) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.running_by_schedule.remove(&schedule);
            }
        }
    }

    /// A run reached its final state.
    pub fn finish(&mut self, schedule: Uuid) {
        if let Some(n) = self.active_by_schedule.get_mut(&schedule) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active_by_schedule.remove(&schedule);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(env: &str, schedule: Uuid, overlap: Overlap) -> Waiting {
        Waiting {
            run_id: Uuid::now_v7(),
            env: env.into(),
            schedule_id: schedule,
            overlap,
            not_before: None,
        }
    }

    #[test]
    fn the_global_and_environment_limits_hold() {
        let mut a = Admission::new(3);
        a.set_env_limit("a", Some(1));
        let s = Uuid::now_v7();
        assert_eq!(a.admit_new("a", s, Overlap::Allow), Some(true));
        assert_eq!(
            a.admit_new("a", s, Overlap::Allow),
            Some(false),
            "env a is full"
        );
        a.enqueue(waiting("a", s, Overlap::Allow));
        assert_eq!(
            a.admit_new("b", s, Overlap::Allow),
            Some(false),
            "someone waits: no jumping the queue"
        );
        a.enqueue(waiting("b", s, Overlap::Allow));
        let ready = a.take_ready(Utc::now());
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].env, "b");
        a.release_slot("a", s);
        assert_eq!(a.take_ready(Utc::now()).len(), 1);
    }

    #[test]
    fn overlap_skip_refuses_while_active_and_queue_runs_one_at_a_time() {
        let mut a = Admission::new(10);
        let s = Uuid::now_v7();
        assert_eq!(a.admit_new("a", s, Overlap::Skip), Some(true));
        assert_eq!(a.admit_new("a", s, Overlap::Skip), None);
        a.release_slot("a", s);
        a.finish(s);
        assert_eq!(a.admit_new("a", s, Overlap::Skip), Some(true));

        let q = Uuid::now_v7();
        assert_eq!(a.admit_new("a", q, Overlap::Queue), Some(true));
        assert_eq!(a.admit_new("a", q, Overlap::Queue), Some(false));
        a.enqueue(waiting("a", q, Overlap::Queue));
        assert!(a.take_ready(Utc::now()).is_empty());
        a.release_slot("a", q);
        assert_eq!(a.take_ready(Utc::now()).len(), 1);
    }

    #[test]
    fn a_retry_waits_for_its_time() {
        let mut a = Admission::new(10);
        let now = Utc::now();
        let mut w = waiting("a", Uuid::now_v7(), Overlap::Allow);
        w.not_before = Some(now + chrono::Duration::seconds(5));
        a.enqueue(w);
        assert!(a.take_ready(now).is_empty());
        assert_eq!(a.next_wakeup(), Some(now + chrono::Duration::seconds(5)));
        assert_eq!(a.take_ready(now + chrono::Duration::seconds(5)).len(), 1);
        assert_eq!(
            a.next_wakeup(),
            None,
            "a run that left the queue no longer wakes anyone"
        );
    }
}
