use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::{ApiError, ApiResult, Body, Caller, State};
use crate::domain::{format_time, ApiToken, Environment, User};
use crate::service::{
    EnvironmentInput, PasswordChange, ServiceError, TokenRequest, UserInput, MAX_PAGE,
};
use crate::store::AuditFilter;

#[derive(Serialize)]
struct TokenView {
    id: String,
    label: String,
    created_at: String,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.clone(),
            label: t.label.clone(),
            created_at: format_time(t.created_at),
        }
    }
}

#[derive(Serialize)]
struct EnvironmentView {
    id: String,
    name: String,
    time_zone: String,
    max_concurrent_runs: Option<u32>,
    created_at: String,
}

impl From<&Environment> for EnvironmentView {
    fn from(e: &Environment) -> Self {
        Self {
            id: e.id.clone(),
            name: e.name.clone(),
            time_zone: e.time_zone.clone(),
            max_concurrent_runs: e.max_concurrent_runs,
            created_at: format_time(e.created_at),
        }
    }
}

/// A user as the API shows one: never the password hash.
#[derive(Serialize)]
struct UserView {
    username: String,
    admin: bool,
    roles: std::collections::BTreeMap<String, &'static str>,
    created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            username: u.username.clone(),
            admin: u.admin,
            roles: u
                .roles
                .iter()
                .map(|(e, r)| (e.clone(), r.as_str()))
                .collect(),
            created_at: format_time(u.created_at),
        }
    }
}

pub async fn create_token(
    state: State,
    req: actix_web::HttpRequest,
    body: Body,
) -> ApiResult<HttpResponse> {
    let addr = crate::access_log::peer_ip(&req);
    let (token, text) = state
        .create_token_with_password(body.json::<TokenRequest>()?, &addr)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/tokens/{}", token.id)))
        .json(serde_json::json!({"id": token.id, "token": text, "label": token.label})))
}

pub async fn list_tokens(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    let tokens = state.list_tokens(&caller.0)?;
    Ok(HttpResponse::Ok().json(tokens.iter().map(TokenView::from).collect::<Vec<_>>()))
}

pub async fn revoke_token(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.revoke_token(&caller.0, &id)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn change_password(state: State, caller: Caller, body: Body) -> ApiResult<HttpResponse> {
    state
        .change_password(&caller.0, body.json::<PasswordChange>()?, None)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_environments(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    let envs = state.environments_for(&caller.0)?;
    Ok(HttpResponse::Ok().json(envs.iter().map(EnvironmentView::from).collect::<Vec<_>>()))
}

pub async fn create_environment(
    state: State,
    caller: Caller,
    body: Body,
) -> ApiResult<HttpResponse> {
    let env = state.create_environment(&caller.0, body.json::<EnvironmentInput>()?)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/environments/{}", env.id)))
        .json(EnvironmentView::from(&env)))
}

pub async fn get_environment(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(EnvironmentView::from(&state.environment(&caller.0, &id)?)))
}

pub async fn update_environment(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let env = state.update_environment(&caller.0, &id, body.json::<EnvironmentInput>()?)?;
    Ok(HttpResponse::Ok().json(EnvironmentView::from(&env)))
}

pub async fn list_users(state: State, caller: Caller) -> ApiResult<HttpResponse> {
    let users = state.users(&caller.0)?;
    Ok(HttpResponse::Ok().json(users.iter().map(UserView::from).collect::<Vec<_>>()))
}

pub async fn create_user(state: State, caller: Caller, body: Body) -> ApiResult<HttpResponse> {
    let user = state
        .save_user(&caller.0, body.json::<UserInput>()?, None)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.username)))
        .json(UserView::from(&user)))
}

pub async fn get_user(
    state: State,
    caller: Caller,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(UserView::from(&state.user(&caller.0, &name)?)))
}

pub async fn update_user(
    state: State,
    caller: Caller,
    name: web::Path<String>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let user = state
        .save_user(&caller.0, body.json::<UserInput>()?, Some(&name))
        .await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

pub async fn delete_user(
    state: State,
    caller: Caller,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.delete_user(&caller.0, &name)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn audit(
    state: State,
    caller: Caller,
    q: web::Query<std::collections::HashMap<String, String>>,
) -> ApiResult<HttpResponse> {
    let filter = AuditFilter {
        actor: q.get("actor").cloned(),
        action: q.get("action").cloned(),
        env: q.get("env").cloned(),
        since: super::runs::time_param(&q, "since")?,
        until: super::runs::time_param(&q, "until")?,
        before: q
            .get("before")
            .map(|b| super::path_id(b, "audit entry"))
            .transpose()?,
        limit: super::runs::limit_param(&q)?,
    };
    let entries = state.audit_log(&caller.0, filter)?;
    let view: Vec<_> = entries
        .iter()
        .map(|e| serde_json::json!({"id": e.id, "at": format_time(e.at), "actor": e.actor, "action": e.action, "env": e.env, "target": e.target, "detail": e.detail}))
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

/// `limit` above the page size.
pub fn too_large_limit() -> ApiError {
    ApiError(ServiceError::invalid(
        "limit",
        format!("at most {MAX_PAGE}"),
    ))
}
