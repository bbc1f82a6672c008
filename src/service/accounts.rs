//! Users, API tokens, passwords, environments and the audit log.

use std::collections::BTreeMap;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use serde::Deserialize;

use super::{blocking, Service, ServiceError};
use crate::crypto::{random_token, token_hash};
use crate::domain::environment::{is_known_time_zone, is_valid_env_id};
use crate::domain::user::is_valid_username;
use crate::domain::{ApiToken, AuditEntry, Environment, Problems, Role, User};
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
fn check_password(field: &str, pw: &str, problems: &mut Problems) {
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInput {
    pub id: Option<String>,
    pub name: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default, deserialize_with = "super::schedule_input::explicit_null")]
    pub max_concurrent_runs: Option<Option<u32>>,
    /// Read-only; accepted so GET → PUT round-trips.
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub admin: Option<bool>,
    #[serde(default)]
    pub roles: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
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

    /// `POST /tokens`: a new token for the user whose password is given; its text is
    /// returned once.
    pub async fn create_token_with_password(
        &self,
        req: TokenRequest,
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
            .check_login(
                req.username.as_deref().unwrap_or(""),
                req.password.as_deref().unwrap_or(""),
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

    pub fn environments_for(&self, caller: &User) -> Result<Vec<Environment>, ServiceError> {
        Ok(self
            .store
            .environments()?
            .into_iter()
            .filter(|e| caller.role_in(&e.id).is_some())
            .collect())
    }

    pub fn environment(&self, caller: &User, id: &str) -> Result<Environment, ServiceError> {
        self.require_admin(caller)?;
        self.store
            .environment(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("environment {id:?}")))
    }

    pub fn create_environment(
        &self,
        caller: &User,
        input: EnvironmentInput,
    ) -> Result<Environment, ServiceError> {
        self.require_admin(caller)?;
        let env = self.environment_from(input, None)?;
        let key = self.keyring.new_data_key(&env.id);
        let audit = self.audit_entry(
            &caller.username,
            "environment.create",
            Some(&env.id),
            Some(env.id.clone()),
            "",
        );
        self.store.create_environment(&env, &key, &audit)?;
        self.engine.set_environment(&env);
        Ok(env)
    }

    pub fn update_environment(
        &self,
        caller: &User,
        id: &str,
        input: EnvironmentInput,
    ) -> Result<Environment, ServiceError> {
        self.require_admin(caller)?;
        let old = self
            .store
            .environment(id)?
            .ok_or_else(|| ServiceError::NotFound(format!("environment {id:?}")))?;
        if input.id.as_deref().is_some_and(|i| i != id) {
            return Err(ServiceError::invalid(
                "id",
                "an environment's id cannot change",
            ));
        }
        let env = self.environment_from(
            EnvironmentInput {
                id: Some(id.to_string()),
                ..input
            },
            Some(&old),
        )?;
        let audit = self.audit_entry(
            &caller.username,
            "environment.update",
            Some(id),
            Some(id.to_string()),
            "",
        );
        self.store.update_environment(&env, &audit)?;
        self.engine.set_environment(&env);
        Ok(env)
    }

    fn environment_from(
        &self,
        input: EnvironmentInput,
        old: Option<&Environment>,
    ) -> Result<Environment, ServiceError> {
        let mut p = Problems::new();
        let id = input.id.unwrap_or_default();
        if id.is_empty() {
            p.push("id", "required");
        } else if !is_valid_env_id(&id) {
            p.push("id", "an environment id is a lowercase letter, then up to 31 lowercase letters, digits or -");
        }
        let time_zone = input.time_zone.unwrap_or_else(|| "UTC".into());
        if !is_known_time_zone(&time_zone) {
            p.push(
                "time_zone",
                format!("unknown time zone {time_zone:?} (use an IANA name such as Europe/Paris)"),
            );
        }
        let max = input.max_concurrent_runs.unwrap_or(None);
        if max == Some(0) {
            p.push(
                "max_concurrent_runs",
                "at least 1, or null for the global limit only",
            );
        }
        p.into_result()?;
        Ok(Environment {
            name: input
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| id.clone()),
            id,
            time_zone,
            max_concurrent_runs: max,
            created_at: old.map_or_else(|| self.clock.now(), |o| o.created_at),
        })
    }

    pub fn users(&self, caller: &User) -> Result<Vec<User>, ServiceError> {
        self.require_admin(caller)?;
        Ok(self.store.users()?)
    }

    pub fn user(&self, caller: &User, name: &str) -> Result<User, ServiceError> {
        self.require_admin(caller)?;
        self.store
            .user(name)?
            .ok_or_else(|| ServiceError::NotFound(format!("user {name:?}")))
    }

    /// Creates (`existing` = None) or replaces a user; a PUT without a password keeps it.
    pub async fn save_user(
        &self,
        caller: &User,
        input: UserInput,
        existing: Option<&str>,
    ) -> Result<User, ServiceError> {
        self.require_admin(caller)?;
        let old = match existing {
            Some(name) => Some(
                self.store
                    .user(name)?
                    .ok_or_else(|| ServiceError::NotFound(format!("user {name:?}")))?,
            ),
            None => None,
        };
        let mut p = Problems::new();
        let username = input
            .username
            .or_else(|| existing.map(str::to_string))
            .unwrap_or_default();
        if username.is_empty() {
            p.push("username", "required");
        } else if !is_valid_username(&username) {
            p.push(
                "username",
                "letters, digits, . _ - (at most 64), starting with a letter or digit",
            );
        }
        if existing.is_some_and(|e| e != username) {
            p.push("username", "a user's name cannot change");
        }
        match (&input.password, &old) {
            (Some(pw), _) => check_password("password", pw, &mut p),
            (None, None) => p.push("password", "required"),
            (None, Some(_)) => {}
        }
        let roles = self.parse_roles(input.roles.unwrap_or_default(), &mut p)?;
        p.into_result()?;
        let password_hash = match input.password {
            Some(pw) => blocking(move || hash_password(&pw)).await?,
            None => old
                .as_ref()
                .map(|o| o.password_hash.clone())
                .unwrap_or_default(),
        };
        let user = User {
            username: username.clone(),
            password_hash,
            admin: input.admin.unwrap_or(false),
            roles,
            created_at: old
                .as_ref()
                .map_or_else(|| self.clock.now(), |o| o.created_at),
        };
        let action = if old.is_some() {
            "user.update"
        } else {
            "user.create"
        };
        let audit = self.audit_entry(&caller.username, action, None, Some(username), "");
        self.store.put_user(&user, old.is_none(), Some(&audit))?;
        Ok(user)
    }

    fn parse_roles(
        &self,
        roles: BTreeMap<String, String>,
        p: &mut Problems,
    ) -> Result<BTreeMap<String, Role>, ServiceError> {
        let mut out = BTreeMap::new();
        for (env, role) in roles {
            match Role::parse(&role) {
                None => p.push(
                    format!("roles.{env}"),
                    "a role is viewer, operator or integration",
                ),
                Some(r) => {
                    if self.store.environment(&env)?.is_none() {
                        p.push(format!("roles.{env}"), format!("no environment {env:?}"));
                    }
                    out.insert(env, r);
                }
            }
        }
        Ok(out)
    }

    pub fn delete_user(&self, caller: &User, name: &str) -> Result<(), ServiceError> {
        self.require_admin(caller)?;
        if caller.username == name {
            return Err(ServiceError::conflict("you cannot delete yourself"));
        }
        let audit = self.audit_entry(
            &caller.username,
            "user.delete",
            None,
            Some(name.to_string()),
            "",
        );
        Ok(self.store.delete_user(name, &audit)?)
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
