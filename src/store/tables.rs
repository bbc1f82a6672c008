//! Every redb table Baton has, in one place. Values are [`super::codec`] bytes (a format byte,
//! then JSON); ids are UUIDv7 as `u128`, so key order is creation order.
//!
//! Changing a key or value layout means a new schema version and a migration in
//! `super::migrate`.

use redb::TableDefinition;

/// `schema_version`, `epoch`, `master_check`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// env id → Environment
pub const ENVIRONMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("environments");
/// (env id, key id) → WrappedKey (sealed under the master key)
pub const DATA_KEYS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("data_keys");

/// username → User
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// SHA-256 of the token text → ApiToken
pub const API_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("api_tokens");

/// schedule id → Schedule
pub const SCHEDULES: TableDefinition<u128, &[u8]> = TableDefinition::new("schedules");
/// (env, schedule id) → ()
pub const SCHEDULES_BY_ENV: TableDefinition<(&str, u128), ()> =
    TableDefinition::new("schedules_by_env");
/// (due time in Unix ms, schedule id) → (): the scheduler's due queue.
pub const DUE: TableDefinition<(i64, u128), ()> = TableDefinition::new("due");

/// run id → Run
pub const RUNS: TableDefinition<u128, &[u8]> = TableDefinition::new("runs");
/// (env, run id) → (): an environment's history, newest last (written once, at creation).
pub const RUNS_BY_ENV: TableDefinition<(&str, u128), ()> = TableDefinition::new("runs_by_env");
/// (schedule id, run id) → state code: a schedule's runs.
pub const RUNS_BY_SCHEDULE: TableDefinition<(u128, u128), u8> =
    TableDefinition::new("runs_by_schedule");
/// (env, state code, run id) → (): runs by state (start-up finds queued and running ones
/// here; state-filtered history pages read it newest first).
pub const RUNS_BY_STATE: TableDefinition<(&str, u8, u128), ()> =
    TableDefinition::new("runs_by_env_state");
/// (env, hour since the Unix epoch, final state code) → runs that ended then (the
/// dashboard's chart, without scanning history).
pub const RUN_HOURLY: TableDefinition<(&str, i64, u8), u64> = TableDefinition::new("run_hourly");
/// (run id, seq) → LogLine
pub const RUN_LOGS: TableDefinition<(u128, u32), &[u8]> = TableDefinition::new("run_logs");
/// (schedule id, Idempotency-Key) → IdempotencyRecord
pub const IDEMPOTENCY: TableDefinition<(u128, &str), &[u8]> = TableDefinition::new("idempotency");

/// (env, file name) → FileMeta (the newest version)
pub const FILES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("files");

/// image id → Upload (the FileUpload table)
pub const UPLOADS: TableDefinition<u128, &[u8]> = TableDefinition::new("uploads");
/// (env, image id) → (): an environment's uploads.
pub const UPLOADS_BY_ENV: TableDefinition<(&str, u128), ()> =
    TableDefinition::new("uploads_by_env");

/// (env, chain name) → Chain (with its share grants)
pub const CHAINS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("chains");

/// SHA-256 of the token text → FileToken. The text itself is never stored.
pub const FILE_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("file_tokens");
/// token id → token hash: finding a token by id (revoke, retry).
pub const FILE_TOKEN_IDS: TableDefinition<u128, &[u8]> = TableDefinition::new("file_token_ids");

/// SHA-256 of the session id → Session (browser sign-ins; logout deletes the row)
pub const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");

/// audit id → AuditEntry
pub const AUDIT: TableDefinition<u128, &[u8]> = TableDefinition::new("audit");

/// Opens every table once so readers never meet a missing one.
pub fn create_all(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(META)?;
    txn.open_table(ENVIRONMENTS)?;
    txn.open_table(DATA_KEYS)?;
    txn.open_table(USERS)?;
    txn.open_table(API_TOKENS)?;
    txn.open_table(SCHEDULES)?;
    txn.open_table(SCHEDULES_BY_ENV)?;
    txn.open_table(DUE)?;
    txn.open_table(RUNS)?;
    txn.open_table(RUNS_BY_ENV)?;
    txn.open_table(RUNS_BY_SCHEDULE)?;
    txn.open_table(RUNS_BY_STATE)?;
    txn.open_table(RUN_HOURLY)?;
    txn.open_table(RUN_LOGS)?;
    txn.open_table(IDEMPOTENCY)?;
    txn.open_table(FILES)?;
    txn.open_table(UPLOADS)?;
    txn.open_table(UPLOADS_BY_ENV)?;
    txn.open_table(CHAINS)?;
    txn.open_table(FILE_TOKENS)?;
    txn.open_table(FILE_TOKEN_IDS)?;
    txn.open_table(SESSIONS)?;
    txn.open_table(AUDIT)?;
    Ok(())
}

/// Tables older schemas wrote and `migrate::upgrade` deletes.
pub mod retired {
    use redb::TableDefinition;

    /// (parent run id, child run id) → (): schema 1's lineage index, never read (the run
    /// record's `children` holds lineage, written in the same transaction). Dropped in 2.
    pub const RUN_CHILDREN: TableDefinition<(u128, u128), ()> =
        TableDefinition::new("run_children");
}
