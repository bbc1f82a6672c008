//! What every page shares: the signed-in caller, the navigation, times in the
//! environment's zone.

use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use chrono::{DateTime, Utc};

use super::error::WebError;
use crate::domain::{Role, Session, User};
use crate::service::Service;

pub const SESSION_COOKIE: &str = "baton_session";

/// The caller of a page, from the session cookie. Absent or ended → the login page.
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub session_id: String,
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = std::future::Ready<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(signed_in(req))
    }
}

fn signed_in(req: &HttpRequest) -> Result<SignedIn, WebError> {
    let next = || WebError::SignIn {
        next: req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
    };
    let service = req.app_data::<web::Data<Arc<Service>>>().ok_or_else(next)?;
    let id = req
        .cookie(SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .ok_or_else(next)?;
    let (user, session) = service.session_user(&id).map_err(|_| next())?;
    Ok(SignedIn {
        user,
        session,
        session_id: id,
    })
}

/// The bar at the top of every page.
pub struct Nav {
    pub user: String,
    pub admin: bool,
    pub envs: Vec<String>,
    /// The environment the page is in; empty outside one.
    pub env: String,
    pub section: &'static str,
    pub csrf: String,
    /// The caller's role here, for showing only what they may do.
    pub role: Option<Role>,
}

impl Nav {
    pub fn new(service: &Service, me: &SignedIn, env: &str, section: &'static str) -> Self {
        let envs = service
            .environments_for(&me.user)
            .map(|v| v.into_iter().map(|e| e.id).collect())
            .unwrap_or_default();
        Self {
            user: me.user.username.clone(),
            admin: me.user.admin,
            envs,
            env: env.to_string(),
            section,
            csrf: me.session.csrf.clone(),
            role: if env.is_empty() {
                None
            } else {
                me.user.role_in(env)
            },
        }
    }

    pub fn can_operate(&self) -> bool {
        self.role >= Some(Role::Operator)
    }

    pub fn is_integration(&self) -> bool {
        self.role >= Some(Role::Integration)
    }

    pub fn active(&self, section: &str) -> &'static str {
        if self.section == section {
            "active"
        } else {
            ""
        }
    }
}

/// A time for people: in the environment's zone, with the zone's abbreviation.
pub fn local_time(t: DateTime<Utc>, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    t.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

pub fn local_opt(t: Option<DateTime<Utc>>, zone: &str) -> String {
    t.map_or_else(|| "—".to_string(), |t| local_time(t, zone))
}

/// Seconds between two times, for durations shown on pages.
pub fn duration(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => {
            let ms = (b - a).num_milliseconds().max(0);
            if ms < 1000 {
                format!("{ms} ms")
            } else {
                format!("{:.1} s", ms as f64 / 1000.0)
            }
        }
        _ => String::new(),
    }
}
