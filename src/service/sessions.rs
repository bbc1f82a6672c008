//! Browser sign-in: sessions and login throttling (per account and per address, in memory,
//! never a permanent lockout).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::{Service, ServiceError};
use crate::crypto::{random_token, token_hash};
use crate::domain::{Session, User};

/// How long a session lives.
pub const SESSION_TTL: Duration = Duration::hours(12);
const WINDOW: Duration = Duration::minutes(15);
const ACCOUNT_LIMIT: u32 = 5;
const ADDRESS_LIMIT: u32 = 20;

/// Failed logins per key (`user:NAME`, `addr:IP`) in the current window.
#[derive(Debug, Default)]
pub struct Throttle(Mutex<HashMap<String, (u32, DateTime<Utc>)>>);

impl Throttle {
    /// Seconds to wait when a key is over its limit.
    fn wait(&self, keys: &[(String, u32)], now: DateTime<Utc>) -> Option<i64> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|(k, limit)| {
                map.get(k)
                    .filter(|(n, start)| *n >= *limit && now - *start < WINDOW)
                    .map(|(_, start)| (*start + WINDOW - now).num_seconds().max(1))
            })
            .max()
    }

    fn fail(&self, keys: &[(String, u32)], now: DateTime<Utc>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Old windows are forgotten, so the map stays small.
        map.retain(|_, (_, start)| now - *start < WINDOW);
        for (k, _) in keys {
            let e = map.entry(k.clone()).or_insert((0, now));
            e.0 += 1;
        }
    }

    fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

impl Service {
    /// Signs in: a new session (new id, new CSRF token) or an error that says nothing about
    /// whether the name exists.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        addr: &str,
    ) -> Result<(String, Session), ServiceError> {
        let now = self.clock.now();
        let user = self.throttled_login(username, password, addr).await?;
        let id = random_token(32);
        let session = Session {
            username: user.username.clone(),
            csrf: random_token(32),
            created_at: now,
            expires_at: now + SESSION_TTL,
        };
        let audit = self.audit_entry(
            &user.username,
            "session.start",
            None,
            None,
            format!("from {addr}"),
        );
        self.store
            .create_session(&token_hash(&id), &session, &audit)?;
        Ok((id, session))
    }

    /// Checks a password under the sign-in throttle (per account and per address): every
    /// way in by password (the pages and `POST /api/v1/tokens`) goes through here, so none
    /// can be used to guess without limit.
    pub(super) async fn throttled_login(
        &self,
        username: &str,
        password: &str,
        addr: &str,
    ) -> Result<User, ServiceError> {
        let now = self.clock.now();
        let keys = [
            (format!("user:{username}"), ACCOUNT_LIMIT),
            (format!("addr:{addr}"), ADDRESS_LIMIT),
        ];
        if let Some(secs) = self.throttle.wait(&keys, now) {
            return Err(ServiceError::TooManyRequests(format!(
                "too many failed sign-ins; try again in {secs} s"
            )));
        }
        match self.check_login(username, password).await {
            Ok(user) => {
                self.throttle.forget(&keys[0].0);
                Ok(user)
            }
            Err(e) => {
                self.throttle.fail(&keys, now);
                Err(e)
            }
        }
    }

    /// The user and session behind a session id; expired or ended → unauthorized.
    pub fn session_user(&self, id: &str) -> Result<(User, Session), ServiceError> {
        let hash = token_hash(id);
        let session = self
            .store
            .session(&hash)?
            .ok_or(ServiceError::Unauthorized)?;
        if session.expires_at <= self.clock.now() {
            self.store.delete_session(&hash)?;
            return Err(ServiceError::Unauthorized);
        }
        let user = self
            .store
            .user(&session.username)?
            .ok_or(ServiceError::Unauthorized)?;
        Ok((user, session))
    }

    pub fn logout(&self, id: &str) -> Result<(), ServiceError> {
        Ok(self.store.delete_session(&token_hash(id))?)
    }
}
