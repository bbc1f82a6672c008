//! The file store: each environment's folder under the data dir, with one metadata row per
//! name. Writing a name again stores a new version; the name serves the newest.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{decode, encode};
use super::tables::FILES;
use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub env: String,
    pub name: String,
    pub version: u32,
    pub size: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<Uuid>,
}

/// No `/`, `\`, NUL or leading `.`; at most 255 bytes.
pub fn is_valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

impl Store {
    fn file_path(&self, env: &str, name: &str, version: u32) -> PathBuf {
        self.data_dir
            .join("files")
            .join(env)
            .join(name)
            .join(format!("v{version}"))
    }

    /// Writes a new version of `name` (fsynced before its row commits), returning its row.
    pub fn write_file(
        &self,
        env: &str,
        name: &str,
        bytes: &[u8],
        run_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<FileMeta, StoreError> {
        use sha2::Digest;
        if !is_valid_file_name(name) {
            return Err(StoreError::Conflict(format!("invalid file name {name:?}")));
        }
        let txn = self.db.begin_write()?;
        let meta = {
            let mut t = txn.open_table(FILES)?;
            let version = match t.get((env, name))? {
                Some(v) => decode::<FileMeta>("file", v.value())?.version + 1,
                None => 1,
            };
            let path = self.file_path(env, name, version);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            write_synced(&path, bytes)?;
            let meta = FileMeta {
                env: env.to_string(),
                name: name.to_string(),
                version,
                size: bytes.len() as u64,
                sha256: hex::encode(sha2::Sha256::digest(bytes)),
                created_at: at,
                run_id,
            };
            t.insert((env, name), encode(&meta).as_slice())?;
            meta
        };
        txn.commit()?;
        Ok(meta)
    }

    pub fn file(&self, env: &str, name: &str) -> Result<Option<FileMeta>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(FILES)?;
        t.get((env, name))?
            .map(|v| decode("file", v.value()))
            .transpose()
    }

    pub fn files_of(&self, env: &str) -> Result<Vec<FileMeta>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(FILES)?;
        let mut out = Vec::new();
        for row in t.range((env, "")..)? {
            let (k, v) = row?;
            if k.value().0 != env {
                break;
            }
            out.push(decode("file", v.value())?);
        }
        Ok(out)
    }

    /// One version of a file (what a file token was minted for).
    pub fn read_file_version(
        &self,
        env: &str,
        name: &str,
        version: u32,
    ) -> Result<Vec<u8>, StoreError> {
        Ok(std::fs::read(self.file_path(env, name, version))?)
    }

    pub fn read_file(&self, meta: &FileMeta) -> Result<Vec<u8>, StoreError> {
        Ok(std::fs::read(self.file_path(
            &meta.env,
            &meta.name,
            meta.version,
        ))?)
    }
}

pub(super) fn write_synced(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
