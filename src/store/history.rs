//! The run history, read: one run, a page of runs (newest first, by environment, schedule
//! or state), runs in a state, counts, lineage and logs.

use std::ops::Range;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable};
use uuid::Uuid;

use super::codec::decode;
use super::run_ops::RunFilter;
use super::tables::{RUNS, RUNS_BY_ENV, RUNS_BY_SCHEDULE, RUNS_BY_STATE, RUN_HOURLY, RUN_LOGS};
use super::{id_key, Store, StoreError};
use crate::domain::{LogLine, Run, RunState};

impl Store {
    pub fn run(&self, id: Uuid) -> Result<Option<Run>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(RUNS)?;
        t.get(id_key(id))?
            .map(|v| decode("run", v.value()))
            .transpose()
    }

    /// Runs in one state, oldest first per environment (start-up recovery).
    pub fn runs_in_state(&self, state: RunState) -> Result<Vec<Run>, StoreError> {
        let txn = self.db.begin_read()?;
        let envs = txn.open_table(super::tables::ENVIRONMENTS)?;
        let idx = txn.open_table(RUNS_BY_STATE)?;
        let t = txn.open_table(RUNS)?;
        let code = state.code();
        let mut out = Vec::new();
        for env in envs.iter()? {
            let (env, _) = env?;
            let env = env.value();
            for row in idx.range((env, code, 0u128)..=(env, code, u128::MAX))? {
                let (_, _, id) = row?.0.value();
                if let Some(v) = t.get(id)? {
                    out.push(decode("run", v.value())?);
                }
            }
        }
        Ok(out)
    }

    /// How many runs of `env` are in `state`.
    pub fn count_in_state(&self, env: &str, state: RunState) -> Result<usize, StoreError> {
        let txn = self.db.begin_read()?;
        let idx = txn.open_table(RUNS_BY_STATE)?;
        let code = state.code();
        Ok(idx
            .range((env, code, 0u128)..=(env, code, u128::MAX))?
            .count())
    }

    /// One page of an environment's history, newest first.
    pub fn page_runs(&self, env: &str, f: &RunFilter) -> Result<Vec<Run>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(RUNS)?;
        let upper = f.before.map_or(u128::MAX, |b| b.as_u128());
        // Ids are UUIDv7: their millisecond prefix bounds the scan from below for `since`.
        let lower = f.since.map_or(0u128, |s| {
            u128::from(s.timestamp_millis().max(0) as u64) << 80
        });
        let wanted = |code: u8| {
            f.states
                .as_ref()
                .is_none_or(|s| s.iter().any(|st| st.code() == code))
        };
        let mut out = Vec::new();
        let mut take = |id: u128| -> Result<bool, StoreError> {
            let Some(v) = t.get(id)? else { return Ok(true) };
            let run: Run = decode("run", v.value())?;
            if run.env != env
                || f.since.is_some_and(|s| run.queued_at < s)
                || f.until.is_some_and(|u| run.queued_at >= u)
            {
                return Ok(true);
            }
            out.push(run);
            Ok(out.len() < f.limit)
        };
        let ids = lower..upper;
        match (&f.schedule, &f.states) {
            (Some(schedule), _) => newest_of_schedule(&txn, *schedule, ids, &wanted, &mut take)?,
            (None, Some(states)) => newest_in_states(&txn, env, states, ids, &mut take)?,
            (None, None) => newest_of_env(&txn, env, ids, &mut take)?,
        }
        Ok(out)
    }

    /// Runs that ended per hour and final state, for hours `from..=to` (Unix hours).
    pub fn hourly_counts(
        &self,
        env: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, RunState, u64)>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(RUN_HOURLY)?;
        let mut out = Vec::new();
        for row in t.range((env, from, 0u8)..=(env, to, u8::MAX))? {
            let (k, v) = row?;
            let (_, hour, code) = k.value();
            if let Some(state) = RunState::ALL.into_iter().find(|s| s.code() == code) {
                out.push((hour, state, v.value()));
            }
        }
        Ok(out)
    }

    pub fn run_log(&self, id: Uuid, after: u32, limit: usize) -> Result<Vec<LogLine>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(RUN_LOGS)?;
        let k = id_key(id);
        let mut out = Vec::new();
        for row in t.range((k, after.saturating_add(1))..=(k, u32::MAX))? {
            let (_, v) = row?;
            out.push(decode("log line", v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Offers `take` a schedule's run ids in `ids`, newest first, while it asks for more;
/// `wanted` filters by state code (the index holds it, so no run is decoded for nothing).
fn newest_of_schedule(
    txn: &ReadTransaction,
    schedule: Uuid,
    ids: Range<u128>,
    wanted: &dyn Fn(u8) -> bool,
    take: &mut dyn FnMut(u128) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let idx = txn.open_table(RUNS_BY_SCHEDULE)?;
    let s = id_key(schedule);
    for row in idx.range((s, ids.start)..(s, ids.end))?.rev() {
        let (k, code) = row?;
        if wanted(code.value()) && !take(k.value().1)? {
            break;
        }
    }
    Ok(())
}

/// Offers `take` an environment's run ids in any of `states`, newest first across them
/// (a merge of each state's range), while it asks for more.
fn newest_in_states(
    txn: &ReadTransaction,
    env: &str,
    states: &[RunState],
    ids: Range<u128>,
    take: &mut dyn FnMut(u128) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let idx = txn.open_table(RUNS_BY_STATE)?;
    let mut ranges = Vec::new();
    for st in states {
        let range = (env, st.code(), ids.start)..(env, st.code(), ids.end);
        ranges.push(idx.range(range)?.rev().peekable());
    }
    loop {
        for r in ranges.iter_mut() {
            if let Some(Err(_)) = r.peek() {
                r.next().transpose()?;
            }
        }
        let mut best: Option<(usize, u128)> = None;
        for (i, r) in ranges.iter_mut().enumerate() {
            if let Some(Ok((k, _))) = r.peek() {
                let id = k.value().2;
                if best.is_none_or(|(_, b)| id > b) {
                    best = Some((i, id));
                }
            }
        }
        let Some((i, id)) = best else { break };
        ranges[i].next().transpose()?;
        if !take(id)? {
            break;
        }
    }
    Ok(())
}

/// Offers `take` an environment's run ids, newest first, while it asks for more.
fn newest_of_env(
    txn: &ReadTransaction,
    env: &str,
    ids: Range<u128>,
    take: &mut dyn FnMut(u128) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let idx = txn.open_table(RUNS_BY_ENV)?;
    for row in idx.range((env, ids.start)..(env, ids.end))?.rev() {
        let (k, _) = row?;
        if !take(k.value().1)? {
            break;
        }
    }
    Ok(())
}
