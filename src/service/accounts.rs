//! Passwords, API tokens, password changes and the audit log.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use serde::Deserialize;

use super::{blocking, Service, ServiceError};
use crate::crypto::{random_token, token_hash};
use crate::domain::{ApiToken, AuditEntry, Problems, User};
use crate::store::AuditFilter;

/// argon2id with the crate's defaults (19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, ServiceError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing failed: {e}")))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A password typed by a person or generated for them: at least 8 characters.
pub(super) fn check_password(field: &str, pw: &str, problems: &mut Problems) {
    if pw.chars().count() < 8 {
        problems.push(field, "a password has at least 8 characters");
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current: Option<String>,
    pub new: Option<String>,
}

impl Service {
    /// A bearer token's user.
    pub fn authenticate_token(&self, token: &str) -> Result<User, ServiceError> {
        let tok = self
            .store
            .api_token(&token_hash(token))?
            .ok_or(ServiceError::Unauthorized)?;
        self.store
            .user(&tok.username)?
            .ok_or(ServiceError::Unauthorized)
    }

    /// Checks a password (argon2 on a blocking thread); a wrong name or password read the same.
    pub async fn check_login(&self, username: &str, password: &str) -> Result<User, ServiceError> {
        let user = self.store.user(username)?;
        let pw = password.to_string();
        let ok_user = blocking(move || {
            Ok(match user {
                Some(u) if verify_password(&u.password_hash, &pw) => Some(u),
                Some(_) => None,
                None => {
                    // Spend the same time as a real check so names cannot be probed.
                    let _ = verify_password("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", &pw);
                    None
                }
            })
        })
        .await?;
        let audit = self.audit_entry(
            username,
            if ok_user.is_some() {
                "login"
            } else {
                "login.failed"
            },
            None,
            None,
            "",
        );
        self.store.append_audit(&audit)?;
        ok_user.ok_or(ServiceError::Unauthorized)
    }

    /// `POST /tokens`: a new token for the user whose password is given (under the sign-in
    /// throttle; `addr` is the caller's address); its text is returned once.
    pub async fn create_token_with_password(
        &self,
        req: TokenRequest,
        addr: &str,
    ) -> Result<(ApiToken, String), ServiceError> {
        let mut p = Problems::new();
        if req.username.as_deref().unwrap_or("").is_empty() {
            p.push("username", "required");
        }
        if req.password.as_deref().unwrap_or("").is_empty() {
            p.push("password", "required");
        }
        p.into_result()?;
        let user = self
            .throttled_login(
                req.username.as_deref().unwrap_or(""),
                req.password.as_deref().unwrap_or(""),
                addr,
            )
            .await?;
        self.create_token(&user.username, req.label.unwrap_or_default())
    }

    pub fn create_token(
        &self,
        username: &str,
        label: String,
    ) -> Result<(ApiToken, String), ServiceError> {
        let text = format!("bat_{}", random_token(32));
        let token = ApiToken {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.to_string(),
            label,
            created_at: self.clock.now(),
        };
        let audit = self.audit_entry(
            username,
            "token.create",
            None,
            Some(token.id.clone()),
            token.label.clone(),
        );
        self.store
            .create_api_token(&token_hash(&text), &token, &audit)?;
        Ok((token, text))
    }

    pub fn list_tokens(&self, caller: &User) -> Result<Vec<ApiToken>, ServiceError> {
        Ok(self.store.api_tokens_of(&caller.username)?)
    }

    pub fn revoke_token(&self, caller: &User, id: &str) -> Result<(), ServiceError> {
        let audit = self.audit_entry(
            &caller.username,
            "token.revoke",
            None,
            Some(id.to_string()),
            "",
        );
        Ok(self.store.delete_api_token(&caller.username, id, &audit)?)
    }

    /// Changes the caller's password and ends their other sessions (`keep`: the session id of
    /// the page that asked, if any).
    pub async fn change_password(
        &self,
        caller: &User,
        req: PasswordChange,
        keep: Option<&str>,
    ) -> Result<(), ServiceError> {
        let mut p = Problems::new();
        let current = req.current.unwrap_or_default();
        let new = req.new.unwrap_or_default();
        check_password("new", &new, &mut p);
        p.into_result()?;
        if self.check_login(&caller.username, &current).await.is_err() {
            return Err(ServiceError::invalid(
                "current",
                "the current password is wrong",
            ));
        }
        let hash = blocking(move || hash_password(&new)).await?;
        let mut user = self
            .store
            .user(&caller.username)?
            .ok_or(ServiceError::Unauthorized)?;
        user.password_hash = hash;
        let audit = self.audit_entry(
            &caller.username,
            "user.password",
            None,
            Some(caller.username.clone()),
            "",
        );
        self.store.put_user(&user, false, Some(&audit))?;
        let keep = keep.map(crate::crypto::token_hash);
        self.store
            .delete_sessions_of(&caller.username, keep.as_ref())?;
        Ok(())
    }

    pub fn audit_log(
        &self,
        caller: &User,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        self.require_admin(caller)?;
        Ok(self.store.audit(&filter)?)
    }
}
