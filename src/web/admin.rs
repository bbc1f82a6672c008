//! Admin: users and their roles, environments, the audit log with filters.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::auth::{html, see_other};
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{local_time, Nav, SignedIn};
use crate::api::State;
use crate::domain::{AuditEntry, Environment, User};
use crate::service::{EnvironmentInput, ServiceError, UserInput};
use crate::store::AuditFilter;

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<User>,
    envs: Vec<String>,
    error: String,
    /// The user the form edits (its fields filled with their admin flag and roles), or
    /// `None` for a new one: an update sends every field, so it must start from what is
    /// stored, not from blanks that would take the user's roles away.
    editing: Option<User>,
}

impl UsersPage {
    pub fn role_of(&self, u: &User, env: &str) -> &'static str {
        u.roles.get(env).map_or("", |r| r.as_str())
    }

    /// The role the form shows for `env`.
    pub fn form_role(&self, env: &str) -> &'static str {
        self.editing.as_ref().map_or("", |u| self.role_of(u, env))
    }
}

#[derive(Deserialize)]
pub struct UsersQuery {
    edit: Option<String>,
}

pub async fn users(
    state: State,
    me: SignedIn,
    q: web::Query<UsersQuery>,
) -> WebResult<HttpResponse> {
    let editing = match q.edit.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => Some(state.user(&me.user, name)?),
        None => None,
    };
    render_users(&state, &me, String::new(), editing, StatusCode::OK)
}

fn render_users(
    state: &State,
    me: &SignedIn,
    error: String,
    editing: Option<User>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let users = state.users(&me.user)?;
    let envs = state
        .store
        .environments()?
        .into_iter()
        .map(|e| e.id)
        .collect();
    let page = UsersPage {
        nav: Nav::new(state, me, "", "admin"),
        users,
        envs,
        error,
        editing,
    };
    Ok(html(page.render(), status))
}

/// Creates a user, or updates one (`existing` = their name) with roles per environment.
pub async fn save_user(state: State, me: SignedIn, form: PostForm) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    // The Edit form updates (an empty password keeps theirs); the Add form only creates, so
    // a name that exists is refused there rather than overwritten from blank fields.
    let name = form.trimmed("username");
    let existing = (form.text("mode") == "update").then(|| name.clone());
    let mut roles = BTreeMap::new();
    for env in state.store.environments()? {
        let r = form.text(&format!("role_{}", env.id));
        if !r.is_empty() {
            roles.insert(env.id, r);
        }
    }
    let password = form.text("password");
    let input = UserInput {
        username: Some(form.trimmed("username")),
        password: (!password.is_empty()).then_some(password),
        admin: Some(form.checked("admin")),
        roles: Some(roles),
        created_at: None,
    };
    let (msg, status) = match state.save_user(&me.user, input, existing.as_deref()).await {
        Ok(_) => return Ok(see_other("/admin/users")),
        Err(ServiceError::Validation(p)) => {
            let msg =
                p.0.iter()
                    .map(|x| format!("{}: {}", x.field, x.message))
                    .collect::<Vec<_>>()
                    .join("; ");
            (msg, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(ServiceError::Conflict { message, .. }) => (message, StatusCode::CONFLICT),
        Err(e) => return Err(WebError::Service(e)),
    };
    // Shown again as posted: the Edit form for the user it updated, else the Add form.
    let editing = match &existing {
        Some(n) => state.store.user(n)?,
        None => None,
    };
    render_users(&state, &me, msg, editing, status)
}

pub async fn delete_user(
    state: State,
    me: SignedIn,
    name: web::Path<String>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    state.delete_user(&me.user, &name)?;
    Ok(see_other("/admin/users"))
}

#[derive(Template)]
#[template(path = "admin_envs.html")]
struct EnvsPage {
    nav: Nav,
    envs: Vec<Environment>,
    error: String,
}

pub async fn environments(state: State, me: SignedIn) -> WebResult<HttpResponse> {
    state.require_admin(&me.user)?;
    let page = EnvsPage {
        nav: Nav::new(&state, &me, "", "admin"),
        envs: state.store.environments()?,
        error: String::new(),
    };
    Ok(html(page.render(), StatusCode::OK))
}

pub async fn save_environment(
    state: State,
    me: SignedIn,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let max = form.trimmed("max_concurrent_runs");
    let input = EnvironmentInput {
        id: Some(form.trimmed("id")),
        name: Some(form.trimmed("name")),
        time_zone: Some(form.trimmed("time_zone")).filter(|z| !z.is_empty()),
        max_concurrent_runs: Some(if max.is_empty() {
            None
        } else {
            Some(max.parse().unwrap_or(0))
        }),
        created_at: None,
    };
    let result = match form.get("existing").filter(|e| !e.is_empty()) {
        Some(id) => state.update_environment(&me.user, id, input),
        None => state.create_environment(&me.user, input),
    };
    match result {
        Ok(_) => Ok(see_other("/admin/environments")),
        Err(ServiceError::Validation(p)) => {
            let error =
                p.0.iter()
                    .map(|x| format!("{}: {}", x.field, x.message))
                    .collect::<Vec<_>>()
                    .join("; ");
            let page = EnvsPage {
                nav: Nav::new(&state, &me, "", "admin"),
                envs: state.store.environments()?,
                error,
            };
            Ok(html(page.render(), StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(e) => Err(WebError::Service(e)),
    }
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

pub struct AuditRow {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub env: String,
    pub target: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    nav: Nav,
    rows: Vec<AuditRow>,
    actor: String,
    action: String,
    env: String,
    next: String,
}

pub async fn audit(
    state: State,
    me: SignedIn,
    q: web::Query<AuditQuery>,
) -> WebResult<HttpResponse> {
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let filter = AuditFilter {
        actor: nonempty(&q.actor),
        action: nonempty(&q.action),
        env: nonempty(&q.env),
        before: nonempty(&q.before).and_then(|b| uuid::Uuid::parse_str(&b).ok()),
        limit: 100,
        ..Default::default()
    };
    let entries: Vec<AuditEntry> = state.audit_log(&me.user, filter)?;
    let rows: Vec<AuditRow> = entries
        .iter()
        .map(|e| AuditRow {
            id: e.id.to_string(),
            at: local_time(e.at, "UTC"),
            actor: e.actor.clone(),
            action: e.action.clone(),
            env: e.env.clone().unwrap_or_default(),
            target: e.target.clone().unwrap_or_default(),
            detail: e.detail.clone(),
        })
        .collect();
    let next = if rows.len() == 100 {
        format!(
            "/admin/audit?actor={}&action={}&env={}&before={}",
            super::error::urlencode(q.actor.as_deref().unwrap_or("")),
            super::error::urlencode(q.action.as_deref().unwrap_or("")),
            super::error::urlencode(q.env.as_deref().unwrap_or("")),
            rows.last().map_or("", |r| r.id.as_str())
        )
    } else {
        String::new()
    };
    let page = AuditPage {
        nav: Nav::new(&state, &me, "", "admin"),
        rows,
        actor: q.actor.clone().unwrap_or_default(),
        action: q.action.clone().unwrap_or_default(),
        env: q.env.clone().unwrap_or_default(),
        next,
    };
    Ok(html(page.render(), StatusCode::OK))
}
