//! Baton's storage on redb, offered as operations in the product's words (claim a run,
//! complete a run with the runs it starts, page runs of a schedule), so that another backend
//! can implement the same operations later.
//!
//! Every call blocks: async callers run them on a blocking thread. Writes that many workers
//! make at once (enqueue, claim, complete, logs) go through [`Store::apply`], which applies a
//! whole batch in one transaction and one fsync.

mod admin;
mod chains;
mod codec;
mod files;
mod history;
mod keys;
mod migrate;
mod run_ops;
mod runs;
mod schedules;
mod sessions;
pub mod tables;

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable};

pub use admin::AuditFilter;
pub use files::{is_valid_file_name, FileMeta};
pub use keys::Reseal;
pub use run_ops::{
    Completion, Enqueue, Fire, Hops, IdempotencyKey, RunFilter, RunOp, RunOpOutcome,
};

use tables::META;

/// The file inside the data dir.
pub const DB_FILE: &str = "baton.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data dir {0} is in use by another baton process (is a server running?)")]
    InUse(String),
    #[error("the database was written by a newer Baton (schema {found}); this binary reads up to schema {supported}")]
    NewerSchema { found: u32, supported: u32 },
    #[error("the database is damaged: {0}")]
    Corrupt(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Db(String),
    #[error("file store error: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_errors!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The storage of one data dir.
pub struct Store {
    db: Database,
    data_dir: PathBuf,
    epoch: u64,
    /// Declared after `db`, so it drops once the database is closed.
    _open: OpenGuard,
}

/// Stores of this process whose database is still open: a process waits for none before it
/// exits, so that redb closes the file cleanly and the next open needs no repair.
static OPEN_STORES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct OpenGuard;

impl OpenGuard {
    fn new() -> Self {
        OPEN_STORES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OpenGuard
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        OPEN_STORES.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits (up to `timeout`) until every store of this process has closed its database; false
/// if one is still open.
pub fn wait_all_closed(timeout: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    while OPEN_STORES.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl Store {
    /// Opens (creating when new) the database in `data_dir` and refuses a newer schema,
    /// writing nothing to an existing file: the caller checks the master key first, then
    /// calls [`Store::start_epoch`].
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(DB_FILE);
        // Refuse a newer schema through a read-only open first: the writable open below
        // writes to the file even when nothing is committed, so checking only after it left
        // a refused file changed. A read-only open that fails (in use, needs repair, not a
        // database) is ignored here: the writable open reports it.
        if path.exists() {
            if let Ok(ro) = redb::ReadOnlyDatabase::open(&path) {
                migrate::check_version(&ro)?;
            }
        }
        let db = open_db(&path)?;
        migrate::check_version(&db)?;
        if !migrate::has_schema(&db)? {
            let txn = db.begin_write()?;
            tables::create_all(&txn)?;
            migrate::upgrade(&txn)?;
            txn.commit()?;
        }
        Ok(Store {
            db,
            data_dir: data_dir.to_path_buf(),
            epoch: 0,
            _open: OpenGuard::new(),
        })
    }

    /// Migrates an older schema and starts a new process epoch.
    pub fn start_epoch(&mut self) -> Result<u64, StoreError> {
        let txn = self.db.begin_write()?;
        tables::create_all(&txn)?;
        migrate::upgrade(&txn)?;
        let epoch = {
            let mut meta = txn.open_table(META)?;
            let epoch = read_u64(&meta, "epoch")?.unwrap_or(0) + 1;
            meta.insert("epoch", epoch.to_le_bytes().as_slice())?;
            epoch
        };
        txn.commit()?;
        self.epoch = epoch;
        Ok(epoch)
    }

    /// This process's epoch: a `running` run from an older one is an orphan.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(META)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    /// A meta value read through a read-only open, which writes no byte (a writable open
    /// writes even when nothing is committed). `None` when there is no database yet, when it
    /// needs recovery (only a writable open repairs), or on any error the writable open will
    /// report itself.
    pub fn peek_meta(data_dir: &Path, key: &str) -> Option<Vec<u8>> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            return None;
        }
        let db = redb::ReadOnlyDatabase::open(&path).ok()?;
        let txn = db.begin_read().ok()?;
        let t = txn.open_table(META).ok()?;
        let value = t.get(key).ok()??.value().to_vec();
        Some(value)
    }

    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(META)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    /// Rewrites the file without free pages (after bulk deletes; offline only).
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        self.db.compact().map_err(|e| StoreError::Db(e.to_string()))
    }
}

fn open_db(path: &Path) -> Result<Database, StoreError> {
    let result = if path.exists() {
        Database::open(path)
    } else {
        Database::create(path)
    };
    result.map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            StoreError::InUse(path.parent().unwrap_or(path).display().to_string())
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
            StoreError::Corrupt(msg)
        }
        other => StoreError::Corrupt(format!("{}: {other}", path.display())),
    })
}

fn read_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, StoreError> {
    match meta.get(key)? {
        None => Ok(None),
        Some(v) => {
            let arr: [u8; 8] = v
                .value()
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("meta {key} is not a u64")))?;
            Ok(Some(u64::from_le_bytes(arr)))
        }
    }
}

pub(crate) fn id_key(id: uuid::Uuid) -> u128 {
    id.as_u128()
}
