//! The schema version and forward migrations. A file from a newer Baton is refused before
//! anything is written to it.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::tables::META;
use super::StoreError;

/// The schema this binary writes. Add a step to `upgrade` when it grows.
pub const SCHEMA_VERSION: u32 = 1;

fn stored_version(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<u32>, StoreError> {
    match t.get("schema_version")? {
        None => Ok(None),
        Some(v) => {
            let arr: [u8; 4] = v
                .value()
                .try_into()
                .map_err(|_| StoreError::Corrupt("schema_version is not a u32".into()))?;
            Ok(Some(u32::from_le_bytes(arr)))
        }
    }
}

/// True when the file already holds Baton's tables.
pub fn has_schema(db: &Database) -> Result<bool, StoreError> {
    let txn = db.begin_read()?;
    match txn.open_table(META) {
        Ok(t) => Ok(stored_version(&t)?.is_some()),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Read-only check, before the first write transaction (on a read-only open too).
pub fn check_version(db: &impl ReadableDatabase) -> Result<(), StoreError> {
    let txn = db.begin_read()?;
    let t = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    match stored_version(&t)? {
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        }),
        _ => Ok(()),
    }
}

/// Brings an older schema up to [`SCHEMA_VERSION`], one step at a time, in the open-time
/// transaction.
pub fn upgrade(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META)?;
    let version = stored_version(&meta)?.unwrap_or(0);
    // Version 0 is a new file: the tables were just created; nothing to convert.
    if version < SCHEMA_VERSION {
        meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())?;
    }
    Ok(())
}
