//! Schedules and the due queue.

use redb::{ReadableDatabase, ReadableTable};
use uuid::Uuid;

use super::admin::insert_audit;
use super::codec::{decode, encode};
use super::tables::{DUE, SCHEDULES, SCHEDULES_BY_ENV};
use super::{id_key, Store, StoreError};
use crate::domain::{AuditEntry, Schedule};

impl Store {
    /// Creates or replaces a schedule, keeping its place in the due queue in step.
    pub fn put_schedule(&self, schedule: &Schedule, audit: &AuditEntry) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        write_schedule(&txn, schedule)?;
        insert_audit(&txn, audit)?;
        txn.commit()?;
        Ok(())
    }

    pub fn schedule(&self, id: Uuid) -> Result<Option<Schedule>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(SCHEDULES)?;
        t.get(id_key(id))?
            .map(|v| decode("schedule", v.value()))
            .transpose()
    }

    /// An environment's schedules, oldest first.
    pub fn schedules_of(&self, env: &str) -> Result<Vec<Schedule>, StoreError> {
        let txn = self.db.begin_read()?;
        let idx = txn.open_table(SCHEDULES_BY_ENV)?;
        let t = txn.open_table(SCHEDULES)?;
        let mut out = Vec::new();
        for row in idx.range((env, 0u128)..=(env, u128::MAX))? {
            let (k, _) = row?;
            let (_, id) = k.value();
            if let Some(v) = t.get(id)? {
                out.push(decode("schedule", v.value())?);
            }
        }
        Ok(out)
    }

    /// Every schedule that has a next due time, for the scheduler to load at start.
    pub fn due_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let txn = self.db.begin_read()?;
        let due = txn.open_table(DUE)?;
        let t = txn.open_table(SCHEDULES)?;
        let mut out = Vec::new();
        for row in due.iter()? {
            let (k, _) = row?;
            let (_, id) = k.value();
            if let Some(v) = t.get(id)? {
                out.push(decode("schedule", v.value())?);
            }
        }
        Ok(out)
    }

    pub fn delete_schedule(&self, id: Uuid, audit: &AuditEntry) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(SCHEDULES)?;
            let old: Schedule = match t.remove(id_key(id))? {
                Some(v) => decode("schedule", v.value())?,
                None => return Err(StoreError::NotFound(format!("schedule {id}"))),
            };
            txn.open_table(SCHEDULES_BY_ENV)?
                .remove((old.env.as_str(), id_key(id)))?;
            if let Some(due) = old.next_fire_at {
                txn.open_table(DUE)?
                    .remove((due.timestamp_millis(), id_key(id)))?;
            }
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Writes a schedule and moves its due-queue entry, inside a caller's transaction.
pub(super) fn write_schedule(
    txn: &redb::WriteTransaction,
    schedule: &Schedule,
) -> Result<(), StoreError> {
    let key = id_key(schedule.id);
    let mut t = txn.open_table(SCHEDULES)?;
    let mut due = txn.open_table(DUE)?;
    if let Some(v) = t.get(key)? {
        let old: Schedule = decode("schedule", v.value())?;
        if let Some(at) = old.next_fire_at {
            due.remove((at.timestamp_millis(), key))?;
        }
    }
    if let Some(at) = schedule.next_fire_at {
        due.insert((at.timestamp_millis(), key), ())?;
    }
    t.insert(key, encode(schedule).as_slice())?;
    txn.open_table(SCHEDULES_BY_ENV)?
        .insert((schedule.env.as_str(), key), ())?;
    Ok(())
}
