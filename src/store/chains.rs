//! Chains with their share grants, file tokens, and the FileUpload table.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};
use uuid::Uuid;

use super::admin::insert_audit;
use super::codec::{decode, encode};
use super::tables::{CHAINS, FILE_TOKENS, FILE_TOKEN_IDS, UPLOADS, UPLOADS_BY_ENV};
use super::{Store, StoreError};
use crate::domain::{AuditEntry, Chain, FileToken, Upload};

impl Store {
    /// Creates a chain, or replaces the one named `old_name` (a rename when the names differ),
    /// in one transaction.
    pub fn put_chain(
        &self,
        chain: &Chain,
        old_name: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = txn.open_table(CHAINS)?;
            let env = chain.env.as_str();
            match old_name {
                None => {
                    if t.get((env, chain.name.as_str()))?.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "a chain named {:?} already exists",
                            chain.name
                        )));
                    }
                }
                Some(old) => {
                    if old != chain.name && t.get((env, chain.name.as_str()))?.is_some() {
                        return Err(StoreError::Conflict(format!(
                            "a chain named {:?} already exists",
                            chain.name
                        )));
                    }
                    if t.remove((env, old))?.is_none() {
                        return Err(StoreError::NotFound(format!("chain {old:?}")));
                    }
                }
            }
            t.insert((env, chain.name.as_str()), encode(chain).as_slice())?;
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn chain(&self, env: &str, name: &str) -> Result<Option<Chain>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(CHAINS)?;
        t.get((env, name))?
            .map(|v| decode("chain", v.value()))
            .transpose()
    }

    /// Every chain of every environment (share lookups and the cycle check).
    pub fn all_chains(&self) -> Result<Vec<Chain>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(CHAINS)?;
        t.iter()?
            .map(|row| {
                let (_, v) = row?;
                decode("chain", v.value())
            })
            .collect()
    }

    pub fn delete_chain(
        &self,
        env: &str,
        name: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            if txn.open_table(CHAINS)?.remove((env, name))?.is_none() {
                return Err(StoreError::NotFound(format!("chain {name:?}")));
            }
            insert_audit(&txn, audit)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The token whose text hashes to `hash`.
    pub fn file_token(&self, hash: &[u8; 32]) -> Result<Option<FileToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(FILE_TOKENS)?;
        t.get(hash.as_slice())?
            .map(|v| decode("file token", v.value()))
            .transpose()
    }

    pub fn file_token_by_id(&self, id: Uuid) -> Result<Option<FileToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let ids = txn.open_table(FILE_TOKEN_IDS)?;
        let Some(hash) = ids.get(id.as_u128())? else {
            return Ok(None);
        };
        let t = txn.open_table(FILE_TOKENS)?;
        let hash = hash.value().to_vec();
        t.get(hash.as_slice())?
            .map(|v| decode("file token", v.value()))
            .transpose()
    }

    /// Tokens minted from `source_env`'s files, newest first.
    pub fn file_tokens_of(&self, source_env: &str) -> Result<Vec<FileToken>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(FILE_TOKENS)?;
        let mut out: Vec<FileToken> = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            let tok: FileToken = decode("file token", v.value())?;
            if tok.source_env == source_env {
                out.push(tok);
            }
        }
        out.sort_by_key(|t| std::cmp::Reverse(t.id));
        Ok(out)
    }

    pub fn revoke_file_token(
        &self,
        source_env: &str,
        id: Uuid,
        at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<FileToken, StoreError> {
        let txn = self.db.begin_write()?;
        let tok = {
            let ids = txn.open_table(FILE_TOKEN_IDS)?;
            let hash = ids
                .get(id.as_u128())?
                .map(|h| h.value().to_vec())
                .ok_or_else(|| StoreError::NotFound(format!("file token {id}")))?;
            let mut t = txn.open_table(FILE_TOKENS)?;
            let mut tok: FileToken = match t.get(hash.as_slice())? {
                Some(v) => decode("file token", v.value())?,
                None => return Err(StoreError::NotFound(format!("file token {id}"))),
            };
            if tok.source_env != source_env {
                return Err(StoreError::NotFound(format!("file token {id}")));
            }
            tok.revoked_at.get_or_insert(at);
            t.insert(hash.as_slice(), encode(&tok).as_slice())?;
            insert_audit(&txn, audit)?;
            tok
        };
        txn.commit()?;
        Ok(tok)
    }

    fn upload_path(&self, u: &Upload) -> std::path::PathBuf {
        self.data_dir
            .join("uploads")
            .join(&u.env)
            .join(u.id.to_string())
    }

    /// Adds a row to the FileUpload table with its bytes.
    pub fn write_upload(
        &self,
        env: &str,
        name: &str,
        bytes: &[u8],
        run_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<Upload, StoreError> {
        use sha2::Digest;
        let upload = Upload {
            id: Uuid::now_v7(),
            env: env.to_string(),
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            created_at: at,
            run_id,
        };
        let path = self.upload_path(&upload);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        super::files::write_synced(&path, bytes)?;
        let txn = self.db.begin_write()?;
        txn.open_table(UPLOADS)?
            .insert(upload.id.as_u128(), encode(&upload).as_slice())?;
        txn.open_table(UPLOADS_BY_ENV)?
            .insert((env, upload.id.as_u128()), ())?;
        txn.commit()?;
        Ok(upload)
    }

    pub fn upload(&self, id: Uuid) -> Result<Option<Upload>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(UPLOADS)?;
        t.get(id.as_u128())?
            .map(|v| decode("upload", v.value()))
            .transpose()
    }

    pub fn uploads_of(&self, env: &str) -> Result<Vec<Upload>, StoreError> {
        let txn = self.db.begin_read()?;
        let idx = txn.open_table(UPLOADS_BY_ENV)?;
        let t = txn.open_table(UPLOADS)?;
        let mut out = Vec::new();
        for row in idx.range((env, 0u128)..=(env, u128::MAX))?.rev() {
            let (_, id) = row?.0.value();
            if let Some(v) = t.get(id)? {
                out.push(decode("upload", v.value())?);
            }
        }
        Ok(out)
    }

    pub fn read_upload(&self, u: &Upload) -> Result<Vec<u8>, StoreError> {
        Ok(std::fs::read(self.upload_path(u))?)
    }
}

/// Inserts minted tokens inside a completion's transaction.
pub(super) fn insert_file_tokens(
    txn: &redb::WriteTransaction,
    tokens: &[([u8; 32], FileToken)],
) -> Result<(), StoreError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let mut t = txn.open_table(FILE_TOKENS)?;
    let mut ids = txn.open_table(FILE_TOKEN_IDS)?;
    for (hash, tok) in tokens {
        t.insert(hash.as_slice(), encode(tok).as_slice())?;
        ids.insert(tok.id.as_u128(), hash.as_slice())?;
    }
    Ok(())
}
