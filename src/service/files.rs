//! The file store as users see it: listings and downloads.

use super::{Service, ServiceError};
use crate::domain::{Role, User};
use crate::store::FileMeta;

impl Service {
    pub fn list_files(&self, caller: &User, env: &str) -> Result<Vec<FileMeta>, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        Ok(self.store.files_of(env)?)
    }

    /// The newest version of a file, with its bytes.
    pub fn download_file(
        &self,
        caller: &User,
        env: &str,
        name: &str,
    ) -> Result<(FileMeta, Vec<u8>), ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let meta = self
            .store
            .file(env, name)?
            .ok_or_else(|| ServiceError::NotFound(format!("file {name:?}")))?;
        let bytes = self.store.read_file(&meta)?;
        Ok((meta, bytes))
    }
}

use serde::Serialize;
use uuid::Uuid;

use crate::crypto::{token_hash, Place};
use crate::domain::chain::TokenRefusal;
use crate::domain::{format_time, FileToken, ParamValue, Upload};

#[derive(Debug, Clone, Serialize)]
pub struct FileTokenView {
    pub id: Uuid,
    pub file_name: String,
    pub file_version: u32,
    pub target_env: String,
    pub run_id: Uuid,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

impl FileTokenView {
    pub fn new(t: &FileToken, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            id: t.id,
            file_name: t.file_name.clone(),
            file_version: t.file_version,
            target_env: t.target_env.clone(),
            run_id: t.run_id,
            created_at: format_time(t.created_at),
            expires_at: format_time(t.expires_at),
            revoked_at: t.revoked_at.map(format_time),
            state: match t.check(now) {
                Ok(()) => "active",
                Err(TokenRefusal::Expired) => "expired",
                Err(TokenRefusal::Revoked) => "revoked",
            },
        }
    }
}

/// A file handed out: its name and bytes.
pub struct Download {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Service {
    pub fn list_file_tokens(
        &self,
        caller: &User,
        env: &str,
    ) -> Result<Vec<FileTokenView>, ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let now = self.clock.now();
        Ok(self
            .store
            .file_tokens_of(env)?
            .iter()
            .map(|t| FileTokenView::new(t, now))
            .collect())
    }

    pub fn revoke_file_token(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        self.require(caller, env, Role::Integration)?;
        let audit = self.audit_entry(
            &caller.username,
            "file_token.revoke",
            Some(env),
            Some(id.to_string()),
            "",
        );
        self.store
            .revoke_file_token(env, id, self.clock.now(), &audit)?;
        Ok(())
    }

    /// Reads a file through a token granted to `env`. Unknown or foreign → 404; expired or
    /// revoked → 403 with the reason. Every use and refusal is audited (by token id, never
    /// its text).
    pub fn download_by_token(
        &self,
        caller: &User,
        env: &str,
        token: &str,
    ) -> Result<Download, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        self.open_token(&caller.username, env, token)
    }

    fn open_token(&self, actor: &str, env: &str, token: &str) -> Result<Download, ServiceError> {
        let record = self.store.file_token(&token_hash(token))?;
        let Some(tok) = record.filter(|t| t.target_env == env) else {
            let audit = self.audit_entry(
                actor,
                "file_token.refused",
                Some(env),
                None,
                "unknown or foreign token",
            );
            self.store.append_audit(&audit)?;
            return Err(ServiceError::NotFound("file token".into()));
        };
        if let Err(why) = tok.check(self.clock.now()) {
            let reason = match why {
                TokenRefusal::Expired => "the file token has expired",
                TokenRefusal::Revoked => "the file token was revoked",
            };
            let audit = self.audit_entry(
                actor,
                "file_token.refused",
                Some(env),
                Some(tok.id.to_string()),
                reason,
            );
            self.store.append_audit(&audit)?;
            return Err(ServiceError::Forbidden(reason.into()));
        }
        let bytes =
            self.store
                .read_file_version(&tok.source_env, &tok.file_name, tok.file_version)?;
        let audit = self.audit_entry(
            actor,
            "file_token.use",
            Some(env),
            Some(tok.id.to_string()),
            format!("{}/{} v{}", tok.source_env, tok.file_name, tok.file_version),
        );
        self.store.append_audit(&audit)?;
        Ok(Download {
            name: tok.file_name,
            bytes,
        })
    }

    /// The file a token parameter of a run grants, for users of the run's environment.
    pub fn run_param_file(
        &self,
        caller: &User,
        env: &str,
        run_id: Uuid,
        name: &str,
    ) -> Result<Download, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let run = self.run_in(env, run_id)?;
        let param = run
            .params
            .iter()
            .find(|p| p.name == name && p.file_token.is_some())
            .ok_or_else(|| ServiceError::NotFound(format!("file parameter {name:?}")))?;
        let ParamValue::Sealed(sealed) = &param.value else {
            return Err(ServiceError::NotFound(format!("file parameter {name:?}")));
        };
        let place = Place {
            env,
            record: crate::crypto::run_record(run_id),
            name,
        };
        let token = self
            .keyring
            .open(&place, sealed)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.open_token(&caller.username, env, &token)
    }

    pub fn list_uploads(&self, caller: &User, env: &str) -> Result<Vec<Upload>, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        Ok(self.store.uploads_of(env)?)
    }

    pub fn download_upload(
        &self,
        caller: &User,
        env: &str,
        id: Uuid,
    ) -> Result<Download, ServiceError> {
        self.require(caller, env, Role::Viewer)?;
        let upload = self
            .store
            .upload(id)?
            .filter(|u| u.env == env)
            .ok_or_else(|| ServiceError::NotFound(format!("upload {id}")))?;
        let bytes = self.store.read_upload(&upload)?;
        Ok(Download {
            name: upload.name,
            bytes,
        })
    }
}
