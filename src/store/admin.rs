//! Environments with their data keys, users, API tokens and the audit log.

use redb::{ReadableDatabase, ReadableTable};

use super::codec::{decode, encode};
use super::tables::{API_TOKENS, AUDIT, DATA_KEYS, ENVIRONMENTS, USERS};
use super::{Store, StoreError};
use crate::crypto::WrappedKey;
use crate::domain::{ApiToken, AuditEntry, Environment, User};

/// Filters of the audit log; `before` pages by id like runs.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub env: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub before: Option<uuid::Uuid>,
    pub limit: usize,
}

impl Store {
    /// Creates an environment with its first data key, in one transaction.
    pub fn create_environment(
        &self,
        env: &Environment,
        key: &WrappedKey,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut envs = txn.open_table(ENVIRONMENTS)?;
            if envs.get(env.id.as_str())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "environment {:?} already exists",
                    env.id
                )));
            }
            envs.insert(env.id.as_str(), encode(env).as_slice())?;
            txn.open_table(DATA_KEYS)?
                .insert((key.env.as_str(), key.key_id), encode(key).as_slice())?;
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn update_environment(
        &self,
        env: &Environment,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut envs = txn.open_table(ENVIRONMENTS)?;
            if envs.get(env.id.as_str())?.is_none() {
                return Err(StoreError::NotFound(format!("environment {:?}", env.id)));
            }
            envs.insert(env.id.as_str(), encode(env).as_slice())?;
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn environment(&self, id: &str) -> Result<Option<Environment>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ENVIRONMENTS)?;
        t.get(id)?
            .map(|v| decode("environment", v.value()))
            .transpose()
    }

    pub fn environments(&self) -> Result<Vec<Environment>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(ENVIRONMENTS)?;
        t.iter()?
            .map(|row| {
                let (_, v) = row?;
                decode("environment", v.value())
            })
            .collect()
    }

    pub fn data_keys(&self) -> Result<Vec<WrappedKey>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(DATA_KEYS)?;
        t.iter()?
            .map(|row| {
                let (_, v) = row?;
                decode("data key", v.value())
            })
            .collect()
    }

    /// Stores new or re-wrapped data keys, and applies `resealed` in the same transaction so
    /// that a rotation is all or nothing.
    pub fn put_data_keys(
        &self,
        keys: &[WrappedKey],
        reseal: impl FnOnce(&redb::WriteTransaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(DATA_KEYS)?;
            for k in keys {
                t.insert((k.env.as_str(), k.key_id), encode(k).as_slice())?;
            }
        }
        reseal(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// Inserts or replaces a user. `must_be_new` refuses an existing name (409).
    pub fn put_user(
        &self,
        user: &User,
        must_be_new: bool,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(USERS)?;
            if must_be_new && t.get(user.username.as_str())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "user {:?} already exists",
                    user.username
                )));
            }
            t.insert(user.username.as_str(), encode(user).as_slice())?;
            if let Some(a) = audit {
                insert_audit(&txn, a)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn user(&self, username: &str) -> Result<Option<User>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(USERS)?;
        t.get(username)?
            .map(|v| decode("user", v.value()))
            .transpose()
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(USERS)?;
        t.iter()?
            .map(|row| {
                let (_, v) = row?;
                decode("user", v.value())
            })
            .collect()
    }

    /// Deletes a user and every API token they hold.
    pub fn delete_user(&self, username: &str, audit: &AuditEntry) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(USERS)?;
            if t.remove(username)?.is_none() {
                return Err(StoreError::NotFound(format!("user {username:?}")));
            }
            let mut tokens = txn.open_table(API_TOKENS)?;
            let theirs = token_keys(&tokens, |tok| tok.username == username)?;
            for key in theirs {
                tokens.remove(key.as_slice())?;
            }
            // Their browser sessions end too: a user later made with the same name must not
            // inherit them.
            super::sessions::end_sessions_of(&txn, username, None)?;
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn create_api_token(
        &self,
        hash: &[u8; 32],
        token: &ApiToken,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(API_TOKENS)?
                .insert(hash.as_slice(), encode(token).as_slice())?;
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The token whose text hashes to `hash`.
    pub fn api_token(&self, hash: &[u8; 32]) -> Result<Option<ApiToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(API_TOKENS)?;
        t.get(hash.as_slice())?
            .map(|v| decode("api token", v.value()))
            .transpose()
    }

    pub fn api_tokens_of(&self, username: &str) -> Result<Vec<ApiToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(API_TOKENS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            let tok: ApiToken = decode("api token", v.value())?;
            if tok.username == username {
                out.push(tok);
            }
        }
        out.sort_by_key(|t| t.created_at);
        Ok(out)
    }

    /// Revokes one of `username`'s tokens by id.
    pub fn delete_api_token(
        &self,
        username: &str,
        id: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(API_TOKENS)?;
            let keys = token_keys(&t, |tok| tok.username == username && tok.id == id)?;
            if keys.is_empty() {
                return Err(StoreError::NotFound(format!("token {id:?}")));
            }
            for key in keys {
                t.remove(key.as_slice())?;
            }
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        insert_audit(&txn, entry)?;
        txn.commit()?;
        Ok(())
    }

    /// Newest first.
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(AUDIT)?;
        let upper = f.before.map_or(u128::MAX, |b| b.as_u128());
        let mut out = Vec::new();
        for row in t.range(..upper)?.rev() {
            let (_, v) = row?;
            let e: AuditEntry = decode("audit entry", v.value())?;
            if f.since.is_some_and(|s| e.at < s) {
                break;
            }
            let keep = f.actor.as_ref().is_none_or(|a| &e.actor == a)
                && f.action.as_ref().is_none_or(|a| &e.action == a)
                && f.env.as_ref().is_none_or(|x| e.env.as_ref() == Some(x))
                && f.until.is_none_or(|u| e.at < u);
            if keep {
                out.push(e);
                if out.len() >= f.limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

pub(super) fn insert_audit(
    txn: &redb::WriteTransaction,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    txn.open_table(AUDIT)?
        .insert(entry.id.as_u128(), encode(entry).as_slice())?;
    Ok(())
}

fn token_keys(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    pred: impl Fn(&ApiToken) -> bool,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut keys = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let tok: ApiToken = decode("api token", v.value())?;
        if pred(&tok) {
            keys.push(k.value().to_vec());
        }
    }
    Ok(keys)
}
