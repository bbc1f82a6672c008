//! Runs written: the batched lifecycle operations (`run_ops.rs`) applied in one write
//! transaction, every index kept in step.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, Table};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{decode, encode};
use super::run_ops::{
    Completion, Enqueue, Fire, Hops, IdempotencyKey, RunOp, RunOpOutcome, IDEMPOTENCY_WINDOW,
};
use super::schedules::write_schedule;
use super::tables::{
    IDEMPOTENCY, RUNS, RUNS_BY_ENV, RUNS_BY_SCHEDULE, RUNS_BY_STATE, RUN_HOURLY, RUN_LOGS,
    SCHEDULES,
};
use super::{id_key, Store, StoreError};
use crate::domain::run::NewLogLine;
use crate::domain::AuditEntry;
use crate::domain::{LogLine, Run, RunState, Schedule};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyRecord {
    run_id: Uuid,
    body_hash: String,
    at: DateTime<Utc>,
}

/// The run tables, opened once per batch.
struct RunTables<'t> {
    runs: Table<'t, u128, &'static [u8]>,
    by_env: Table<'t, (&'static str, u128), ()>,
    by_schedule: Table<'t, (u128, u128), u8>,
    by_state: Table<'t, (&'static str, u8, u128), ()>,
    logs: Table<'t, (u128, u32), &'static [u8]>,
    hourly: Table<'t, (&'static str, i64, u8), u64>,
    /// Hourly counts gathered over a batch, written once at its end.
    hourly_pending: std::collections::HashMap<(String, i64, u8), u64>,
    /// Opened once per batch: every hop and run-now writes an audit entry.
    audit: Table<'t, u128, &'static [u8]>,
}

impl<'t> RunTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            runs: txn.open_table(RUNS)?,
            by_env: txn.open_table(RUNS_BY_ENV)?,
            by_schedule: txn.open_table(RUNS_BY_SCHEDULE)?,
            by_state: txn.open_table(RUNS_BY_STATE)?,
            logs: txn.open_table(RUN_LOGS)?,
            hourly: txn.open_table(RUN_HOURLY)?,
            hourly_pending: std::collections::HashMap::new(),
            audit: txn.open_table(super::tables::AUDIT)?,
        })
    }

    fn get(&self, id: Uuid) -> Result<Run, StoreError> {
        match self.runs.get(id_key(id))? {
            Some(v) => decode("run", v.value()),
            None => Err(StoreError::NotFound(format!("run {id}"))),
        }
    }

    /// A run that must still be queued (claimed or cancelled meanwhile is a conflict).
    fn get_queued(&self, id: Uuid) -> Result<Run, StoreError> {
        let run = self.get(id)?;
        if run.state != RunState::Queued {
            return Err(StoreError::Conflict(format!(
                "run {id} is {}, not queued",
                run.state.as_str()
            )));
        }
        Ok(run)
    }

    /// Writes a run and keeps every index in step with its state.
    fn put(&mut self, run: &Run, old_state: Option<RunState>) -> Result<(), StoreError> {
        let key = id_key(run.id);
        let code = run.state.code();
        self.runs.insert(key, encode(run).as_slice())?;
        if old_state != Some(run.state) {
            match old_state {
                Some(old) => {
                    self.by_state.remove((run.env.as_str(), old.code(), key))?;
                }
                None => {
                    self.by_env.insert((run.env.as_str(), key), ())?;
                }
            }
            self.by_state.insert((run.env.as_str(), code, key), ())?;
            self.by_schedule
                .insert((id_key(run.schedule_id), key), code)?;
            if run.state.is_final() && !old_state.is_some_and(RunState::is_final) {
                let hour = run
                    .finished_at
                    .unwrap_or(run.queued_at)
                    .timestamp()
                    .div_euclid(3600);
                *self
                    .hourly_pending
                    .entry((run.env.clone(), hour, code))
                    .or_default() += 1;
            }
        }
        Ok(())
    }

    /// Adds the batch's hourly counts to the stored ones: one write per (env, hour, state).
    fn flush_hourly(&mut self) -> Result<(), StoreError> {
        for ((env, hour, code), add) in std::mem::take(&mut self.hourly_pending) {
            let k = (env.as_str(), hour, code);
            let n = self.hourly.get(k)?.map_or(0, |v| v.value());
            self.hourly.insert(k, n + add)?;
        }
        Ok(())
    }

    fn audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.audit
            .insert(entry.id.as_u128(), encode(entry).as_slice())?;
        Ok(())
    }

    fn insert_new(&mut self, run: &Run) -> Result<(), StoreError> {
        self.put(run, None)
    }

    fn append_logs(&mut self, run_id: Uuid, lines: &[NewLogLine]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let key = id_key(run_id);
        let first = match self.logs.range((key, 0)..=(key, u32::MAX))?.next_back() {
            Some(row) => row?.0.value().1 + 1,
            None => 1,
        };
        for (seq, (at, stream, text)) in (first..).zip(lines) {
            let line = LogLine {
                seq,
                at: *at,
                stream: stream.clone(),
                text: text.clone(),
            };
            self.logs.insert((key, seq), encode(&line).as_slice())?;
        }
        Ok(())
    }
}

impl Store {
    /// Applies a batch of run operations in one write transaction and one commit. Each op
    /// checks before it writes, so one refused op leaves the others to commit.
    pub fn apply(
        &self,
        ops: &[RunOp],
    ) -> Result<Vec<Result<RunOpOutcome, StoreError>>, StoreError> {
        let txn = self.db.begin_write()?;
        let mut results = Vec::with_capacity(ops.len());
        {
            let mut t = RunTables::open(&txn)?;
            for op in ops {
                results.push(apply_one(&txn, &mut t, op));
            }
            t.flush_hourly()?;
        }
        txn.commit()?;
        Ok(results)
    }

    /// Writes finished runs in bulk (one transaction per call), indexes included: the path
    /// for imports and for seeding benchmarks with history.
    pub fn import_runs(&self, runs: &[Run]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = RunTables::open(&txn)?;
            for run in runs {
                t.insert_new(run)?;
            }
            t.flush_hourly()?;
        }
        txn.commit()?;
        Ok(())
    }
}

fn apply_one(
    txn: &redb::WriteTransaction,
    t: &mut RunTables<'_>,
    op: &RunOp,
) -> Result<RunOpOutcome, StoreError> {
    match op {
        RunOp::Enqueue(e) => enqueue(txn, t, e),
        RunOp::Claim { run_id, at, epoch } => claim(t, *run_id, *at, *epoch),
        RunOp::Complete(c) => complete(txn, t, c),
        RunOp::AppendLog { run_id, lines } => {
            t.append_logs(*run_id, lines)?;
            Ok(RunOpOutcome::Logged)
        }
        RunOp::CancelQueued { run_id, at, hops } => cancel_queued(txn, t, *run_id, *at, hops),
        RunOp::Refire {
            source_id,
            hop,
            hops,
        } => refire(txn, t, *source_id, *hop, hops),
        RunOp::RecordChainError { run_id, error } => {
            let mut run = t.get(*run_id)?;
            run.chain_errors.push(error.clone());
            t.put(&run, Some(run.state))?;
            Ok(RunOpOutcome::Completed(Box::new(run)))
        }
        RunOp::Advance(fire) => {
            advance_schedule(txn, fire)?;
            Ok(RunOpOutcome::Advanced)
        }
    }
}

/// A queued run's next attempt starts: `running`, its attempt counted.
fn claim(
    t: &mut RunTables<'_>,
    run_id: Uuid,
    at: DateTime<Utc>,
    epoch: u64,
) -> Result<RunOpOutcome, StoreError> {
    let mut run = t.get_queued(run_id)?;
    run.state = RunState::Running;
    run.attempts += 1;
    run.started_at.get_or_insert(at);
    run.not_before = None;
    run.epoch = epoch;
    t.put(&run, Some(RunState::Queued))?;
    Ok(RunOpOutcome::Claimed(Box::new(run)))
}

/// A queued run ends `cancelled` with the hops that fire on it.
fn cancel_queued(
    txn: &redb::WriteTransaction,
    t: &mut RunTables<'_>,
    run_id: Uuid,
    at: DateTime<Utc>,
    hops: &Hops,
) -> Result<RunOpOutcome, StoreError> {
    let mut run = t.get_queued(run_id)?;
    run.state = RunState::Cancelled;
    run.finished_at = Some(at);
    fire_hops(txn, t, &mut run, hops)?;
    t.put(&run, Some(RunState::Queued))?;
    Ok(RunOpOutcome::Cancelled(Box::new(run)))
}

/// Hop `hop` of a finished run fires again, unless it already started a run: checked here,
/// in the write transaction, so two refires cannot both start one.
fn refire(
    txn: &redb::WriteTransaction,
    t: &mut RunTables<'_>,
    source_id: Uuid,
    hop: u32,
    hops: &Hops,
) -> Result<RunOpOutcome, StoreError> {
    let mut run = t.get(source_id)?;
    for child in &run.children {
        if t.get(child.id).is_ok_and(|c| c.parent_hop == Some(hop)) {
            return Err(StoreError::Conflict(format!(
                "hop {hop} already started run {}",
                child.id
            )));
        }
    }
    fire_hops(txn, t, &mut run, hops)?;
    t.put(&run, Some(run.state))?;
    Ok(RunOpOutcome::Completed(Box::new(run)))
}

/// The run an `Idempotency-Key` already started for `schedule` within the window (a
/// replay), or `None`; the same key with another body is a conflict.
fn replay_of(
    table: &impl ReadableTable<(u128, &'static str), &'static [u8]>,
    schedule: Uuid,
    idem: &IdempotencyKey,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let Some(v) = table.get((id_key(schedule), idem.key.as_str()))? else {
        return Ok(None);
    };
    let rec: IdempotencyRecord = decode("idempotency record", v.value())?;
    if at - rec.at >= IDEMPOTENCY_WINDOW {
        return Ok(None);
    }
    if rec.body_hash != idem.body_hash {
        return Err(StoreError::Conflict(
            "this Idempotency-Key was used with a different body".into(),
        ));
    }
    Ok(Some(rec.run_id))
}

impl Store {
    /// The run an `Idempotency-Key` already started (see [`replay_of`]), read before
    /// admission so that a replay answers with its run even while that run is active. The
    /// enqueue's own check, in its write transaction, stays the one that counts.
    pub fn idempotent_replay(
        &self,
        schedule: Uuid,
        idem: &IdempotencyKey,
        at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(IDEMPOTENCY)?;
        replay_of(&table, schedule, idem, at)
    }
}

fn enqueue(
    txn: &redb::WriteTransaction,
    t: &mut RunTables<'_>,
    e: &Enqueue,
) -> Result<RunOpOutcome, StoreError> {
    if let Some(idem) = &e.idempotency {
        let mut table = txn.open_table(IDEMPOTENCY)?;
        if let Some(first) = replay_of(&table, e.run.schedule_id, idem, e.run.queued_at)? {
            return Ok(RunOpOutcome::Replayed(first));
        }
        let key = (id_key(e.run.schedule_id), idem.key.as_str());
        let rec = IdempotencyRecord {
            run_id: e.run.id,
            body_hash: idem.body_hash.clone(),
            at: e.run.queued_at,
        };
        table.insert(key, encode(&rec).as_slice())?;
    }
    if let Some(fire) = &e.fire {
        advance_schedule(txn, fire)?;
    }
    t.insert_new(&e.run)?;
    super::chains::insert_file_tokens(txn, &e.tokens)?;
    if let Some(a) = &e.audit {
        t.audit(a)?;
    }
    Ok(RunOpOutcome::Enqueued(Box::new(e.run.clone())))
}

/// Commits a source run's hops: the started runs (with lineage both ways), refused hops,
/// minted tokens and audit entries.
fn fire_hops(
    txn: &redb::WriteTransaction,
    t: &mut RunTables<'_>,
    run: &mut Run,
    hops: &Hops,
) -> Result<(), StoreError> {
    run.chain_errors.extend(hops.chain_errors.iter().cloned());
    for child in &hops.started {
        t.insert_new(child)?;
        run.children.push(child.as_ref());
    }
    super::chains::insert_file_tokens(txn, &hops.tokens)?;
    for a in &hops.audit {
        t.audit(a)?;
    }
    Ok(())
}

fn complete(
    txn: &redb::WriteTransaction,
    t: &mut RunTables<'_>,
    c: &Completion,
) -> Result<RunOpOutcome, StoreError> {
    let mut run = match &c.run {
        // Only the claiming worker changes a running run's record, so its copy is current;
        // the state index says whether it is still running.
        Some(r)
            if t.by_state
                .get((r.env.as_str(), RunState::Running.code(), id_key(r.id)))?
                .is_some() =>
        {
            (**r).clone()
        }
        Some(_) => t.get(c.run_id)?,
        None => t.get(c.run_id)?,
    };
    if run.state != RunState::Running {
        return Err(StoreError::Conflict(format!(
            "run {} is {}, not running",
            c.run_id,
            run.state.as_str()
        )));
    }
    t.append_logs(c.run_id, &c.logs)?;
    run.error = c.error.clone();
    if let Some(at) = c.retry_at {
        run.state = RunState::Queued;
        run.not_before = Some(at);
    } else {
        run.state = c.state;
        run.finished_at = Some(c.at);
        run.outputs = c.outputs.clone();
        fire_hops(txn, t, &mut run, &c.hops)?;
    }
    t.put(&run, Some(RunState::Running))?;
    Ok(RunOpOutcome::Completed(Box::new(run)))
}

fn advance_schedule(txn: &redb::WriteTransaction, fire: &Fire) -> Result<(), StoreError> {
    let mut schedule: Schedule = {
        let t = txn.open_table(SCHEDULES)?;
        let v = t
            .get(id_key(fire.schedule_id))?
            .ok_or_else(|| StoreError::NotFound(format!("schedule {}", fire.schedule_id)))?;
        decode("schedule", v.value())?
    };
    if schedule.next_fire_at != Some(fire.due_at) {
        return Err(StoreError::Conflict(format!(
            "schedule {} was already fired for {} or changed",
            fire.schedule_id, fire.due_at
        )));
    }
    schedule.next_fire_at = fire.next_fire_at;
    write_schedule(txn, &schedule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Origin, RetryPolicy};

    #[test]
    fn a_finished_run_is_stored_sparse_and_reads_back_the_same() {
        let at = chrono::DateTime::from_timestamp_millis(1_795_000_000_123).unwrap();
        let id = Uuid::now_v7();
        let run = Run {
            id,
            env: "production".into(),
            schedule_id: Uuid::now_v7(),
            kind: "noop".into(),
            state: RunState::Succeeded,
            origin: Origin::Schedule,
            due_at: Some(at),
            attempts: 1,
            retry: RetryPolicy::default(),
            timeout_seconds: crate::domain::run::DEFAULT_TIMEOUT_SECONDS,
            queued_at: at,
            started_at: Some(at),
            finished_at: Some(at),
            not_before: None,
            acting_user: "admin".into(),
            params: Vec::new(),
            outputs: Default::default(),
            error: None,
            root: None,
            parent: None,
            parent_hop: None,
            depth: 0,
            children: Vec::new(),
            chain_errors: Vec::new(),
            epoch: 1,
        };
        let bytes = encode(&run);
        assert!(
            bytes.len() < 400,
            "{} bytes: {}",
            bytes.len(),
            String::from_utf8_lossy(&bytes)
        );
        let back: Run = decode("run", &bytes).unwrap();
        assert_eq!(back, run);
    }
}
