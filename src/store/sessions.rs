//! Browser sessions, stored server-side so that logout and a password change really end them.

use redb::{ReadableDatabase, ReadableTable};

use super::admin::insert_audit;
use super::codec::{decode, encode};
use super::tables::SESSIONS;
use super::{Store, StoreError};
use crate::domain::{AuditEntry, Session};

impl Store {
    pub fn create_session(
        &self,
        hash: &[u8; 32],
        session: &Session,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(SESSIONS)?
            .insert(hash.as_slice(), encode(session).as_slice())?;
        insert_audit(&txn, audit)?;
        txn.commit()?;
        Ok(())
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(SESSIONS)?;
        t.get(hash.as_slice())?
            .map(|v| decode("session", v.value()))
            .transpose()
    }

    pub fn delete_session(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(SESSIONS)?.remove(hash.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Ends every session of `username` but `keep` (a password change keeps the one that
    /// made it).
    pub fn delete_sessions_of(
        &self,
        username: &str,
        keep: Option<&[u8; 32]>,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let n = end_sessions_of(&txn, username, keep)?;
        txn.commit()?;
        Ok(n)
    }
}

/// Ends every session of `username` but `keep`, in `txn`; answers how many.
pub(super) fn end_sessions_of(
    txn: &redb::WriteTransaction,
    username: &str,
    keep: Option<&[u8; 32]>,
) -> Result<usize, StoreError> {
    let mut t = txn.open_table(SESSIONS)?;
    let mut doomed = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let s: Session = decode("session", v.value())?;
        if s.username == username && keep.is_none_or(|h| h.as_slice() != k.value()) {
            doomed.push(k.value().to_vec());
        }
    }
    for k in &doomed {
        t.remove(k.as_slice())?;
    }
    Ok(doomed.len())
}
