//! Users: listing, creating, changing (a PUT without a password keeps it) and deleting
//! them, with their roles per environment (admins only).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::accounts::{check_password, hash_password};
use super::{blocking, Service, ServiceError};
use crate::domain::user::is_valid_username;
use crate::domain::{Problems, Role, User};

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
        check_username(&username, existing, &mut p);
        match (&input.password, &old) {
            (Some(pw), _) => check_password("password", pw, &mut p),
            (None, None) => p.push("password", "required"),
            (None, Some(_)) => {}
        }
        let roles = self.parse_roles(input.roles.unwrap_or_default(), &mut p)?;
        p.into_result()?;
        let password_reset = input.password.is_some();
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
        if old.as_ref().is_some_and(|o| o.admin) && !user.admin {
            self.refuse_last_admin(&user.username)?;
        }
        let action = if old.is_some() {
            "user.update"
        } else {
            "user.create"
        };
        let audit = self.audit_entry(&caller.username, action, None, Some(username), "");
        self.store.put_user(&user, old.is_none(), Some(&audit))?;
        if old.is_some() && password_reset {
            // A new password ends the sessions opened with the old one.
            self.store.delete_sessions_of(&user.username, None)?;
        }
        Ok(user)
    }

    /// Refuses taking admin from `username` when no other admin would be left.
    fn refuse_last_admin(&self, username: &str) -> Result<(), ServiceError> {
        let others = self
            .store
            .users()?
            .iter()
            .any(|u| u.admin && u.username != username);
        if others {
            return Ok(());
        }
        Err(ServiceError::conflict(
            "this is the last admin: make another user admin first",
        ))
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
}

/// A user's name: required, well formed, and unchanged by a replace.
fn check_username(username: &str, existing: Option<&str>, p: &mut Problems) {
    if username.is_empty() {
        p.push("username", "required");
    } else if !is_valid_username(username) {
        p.push(
            "username",
            "letters, digits, . _ - (at most 64), starting with a letter or digit",
        );
    }
    if existing.is_some_and(|e| e != username) {
        p.push("username", "a user's name cannot change");
    }
}
