//! The schema version and forward migrations. A file from a newer Baton is refused before
//! anything is written to it.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::tables::META;
use super::StoreError;

/// The schema this binary writes. Add a step to `upgrade` when it grows.
pub const SCHEMA_VERSION: u32 = 2;

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
    if version == 1 {
        // 1 → 2: the unread lineage index goes (runs keep their children themselves).
        txn.delete_table(super::tables::retired::RUN_CHILDREN)?;
    }
    if version < SCHEMA_VERSION {
        meta.insert("schema_version", SCHEMA_VERSION.to_le_bytes().as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::retired::RUN_CHILDREN;
    use crate::store::Store;

    /// A schema-1 file (with its lineage index) opens, loses that table and says schema 2;
    /// what else it held is kept.
    #[test]
    fn schema_1_upgrades_to_2_dropping_the_lineage_index() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open(dir.path()).unwrap();
            store.start_epoch().unwrap();
            store
                .set_meta("schema_version", &1u32.to_le_bytes())
                .unwrap();
            store.set_meta("kept", b"yes").unwrap();
            let txn = store.db.begin_write().unwrap();
            txn.open_table(RUN_CHILDREN)
                .unwrap()
                .insert((1, 2), ())
                .unwrap();
            txn.commit().unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        store.start_epoch().unwrap();
        assert_eq!(
            store.meta("schema_version").unwrap(),
            Some(SCHEMA_VERSION.to_le_bytes().to_vec())
        );
        assert_eq!(store.meta("kept").unwrap(), Some(b"yes".to_vec()));
        let txn = store.db.begin_read().unwrap();
        assert!(matches!(
            txn.open_table(RUN_CHILDREN),
            Err(redb::TableError::TableDoesNotExist(_))
        ));
    }
}
