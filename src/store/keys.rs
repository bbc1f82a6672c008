//! Key rotation: new or re-wrapped data keys, and every sealed value re-sealed, in one
//! transaction, so a rotation is all or nothing.

use redb::ReadableTable;

use super::codec::{decode, encode};
use super::tables::{DATA_KEYS, META, RUNS, SCHEDULES};
use super::{Store, StoreError};
use crate::crypto::WrappedKey;
use crate::domain::{ParamValue, Run, Schedule, SealedValue, TASK_CHAIN_PARAM};

/// Re-seals one value: (env, record, parameter name, sealed) → sealed anew.
pub type Resealer<'a> = &'a dyn Fn(&str, &str, &str, &SealedValue) -> Result<SealedValue, String>;

/// Re-seals the sealed values inside a schedule's stored `async-TaskChain` text: (env,
/// record, text) → the new text and how many values it re-sealed. The store does not parse
/// chain text itself (that is `chain`'s, which sits above the store).
pub type ChainResealer<'a> = &'a dyn Fn(&str, &str, &str) -> Result<(String, usize), String>;

/// What a data-key rotation re-seals with.
#[derive(Clone, Copy)]
pub struct Reseal<'a> {
    pub value: Resealer<'a>,
    pub chain_text: ChainResealer<'a>,
}

impl Store {
    /// Stores `keys`, replaces the master check when given, and passes every sealed value
    /// through `reseal` when given. Returns how many values were re-sealed.
    pub fn rotate_keys(
        &self,
        keys: &[WrappedKey],
        master_check: Option<&[u8]>,
        reseal: Option<Reseal<'_>>,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let mut count = 0;
        {
            let mut t = txn.open_table(DATA_KEYS)?;
            for k in keys {
                t.insert((k.env.as_str(), k.key_id), encode(k).as_slice())?;
            }
            if let Some(check) = master_check {
                txn.open_table(META)?.insert("master_check", check)?;
            }
            if let Some(reseal) = reseal {
                count += reseal_schedules(&txn, reseal)?;
                count += reseal_runs(&txn, reseal.value)?;
            }
        }
        txn.commit()?;
        Ok(count)
    }
}

fn reseal_value(
    v: &mut ParamValue,
    env: &str,
    record: &str,
    name: &str,
    reseal: Resealer<'_>,
) -> Result<bool, StoreError> {
    if let ParamValue::Sealed(s) = v {
        *s = reseal(env, record, name, s)
            .map_err(|e| StoreError::Corrupt(format!("{record} {name}: {e}")))?;
        return Ok(true);
    }
    Ok(false)
}

fn reseal_schedules(txn: &redb::WriteTransaction, reseal: Reseal<'_>) -> Result<usize, StoreError> {
    let mut t = txn.open_table(SCHEDULES)?;
    let mut changed = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let mut s: Schedule = decode("schedule", v.value())?;
        let record = crate::crypto::schedule_record(s.id);
        let mut n = 0;
        for p in &mut s.params {
            if let (TASK_CHAIN_PARAM, ParamValue::Plain(text)) = (p.name.as_str(), &p.value) {
                let (text, sealed) = (reseal.chain_text)(&s.env, &record, text).map_err(|e| {
                    StoreError::Corrupt(format!("{record} {TASK_CHAIN_PARAM}: {e}"))
                })?;
                p.value = ParamValue::Plain(text);
                n += sealed;
                continue;
            }
            n += usize::from(reseal_value(
                &mut p.value,
                &s.env,
                &record,
                &p.name,
                reseal.value,
            )?);
        }
        if n > 0 {
            changed.push((k.value(), s, n));
        }
    }
    let mut count = 0;
    for (k, s, n) in changed {
        t.insert(k, encode(&s).as_slice())?;
        count += n;
    }
    Ok(count)
}

fn reseal_runs(txn: &redb::WriteTransaction, reseal: Resealer<'_>) -> Result<usize, StoreError> {
    let mut t = txn.open_table(RUNS)?;
    let mut changed = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let mut r: Run = decode("run", v.value())?;
        let record = crate::crypto::run_record(r.id);
        let mut n = 0;
        for p in &mut r.params {
            n += usize::from(reseal_value(
                &mut p.value,
                &r.env,
                &record,
                &p.name,
                reseal,
            )?);
        }
        if n > 0 {
            changed.push((k.value(), r, n));
        }
    }
    let mut count = 0;
    for (k, r, n) in changed {
        t.insert(k, encode(&r).as_slice())?;
        count += n;
    }
    Ok(count)
}
