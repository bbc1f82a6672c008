use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{path_id, ApiError, ApiResult, Body, Caller, State};
use crate::domain::format_time;
use crate::service::{ChainInput, Download, ServiceError};

pub async fn list(state: State, caller: Caller, env: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.list_chains(&caller.0, &env)?))
}

pub async fn create(
    state: State,
    caller: Caller,
    env: web::Path<String>,
    body: Body,
) -> ApiResult<HttpResponse> {
    state.require(&caller.0, &env, crate::domain::Role::Integration)?;
    let view = state.create_chain(&caller.0, &env, body.json::<ChainInput>()?)?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/envs/{env}/chains/{}", view.name),
        ))
        .json(view))
}

pub async fn get(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, name) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.get_chain(&caller.0, &env, &name)?))
}

pub async fn replace(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let (env, name) = path.into_inner();
    state.get_chain(&caller.0, &env, &name)?;
    Ok(HttpResponse::Ok().json(state.replace_chain(
        &caller.0,
        &env,
        &name,
        body.json::<ChainInput>()?,
    )?))
}

pub async fn delete(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, name) = path.into_inner();
    state.delete_chain(&caller.0, &env, &name)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn shared(
    state: State,
    caller: Caller,
    env: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.shared_chains(&caller.0, &env)?))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewInput {
    #[serde(default)]
    value: Option<String>,
}

pub async fn preview(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state.require(&caller.0, &env, crate::domain::Role::Integration)?;
    let id = path_id(&id, "schedule")?;
    let input: PreviewInput = body.json_or_default()?;
    Ok(HttpResponse::Ok().json(
        state
            .chain_preview(&caller.0, &env, id, input.value)
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsavedPreview {
    kind: Option<String>,
    #[serde(default)]
    params: Vec<crate::service::ParamInput>,
    value: Option<String>,
}

/// `POST …/chain-preview` for a form not saved yet: `{kind, params, value}`.
pub async fn preview_unsaved(
    state: State,
    caller: Caller,
    env: web::Path<String>,
    body: Body,
) -> ApiResult<HttpResponse> {
    state.require(&caller.0, &env, crate::domain::Role::Integration)?;
    let input: UnsavedPreview = body.json()?;
    let mut params = input.params;
    params.retain(|p| p.name != crate::domain::TASK_CHAIN_PARAM);
    if let Some(v) = input.value {
        params.push(crate::service::ParamInput {
            name: crate::domain::TASK_CHAIN_PARAM.into(),
            value: Some(v),
            ..Default::default()
        });
    }
    let schedule = crate::service::ScheduleInput {
        name: Some("(preview)".into()),
        kind: input.kind,
        trigger: Some(serde_json::json!({"type": "manual"})),
        params: Some(params),
        ..Default::default()
    };
    Ok(HttpResponse::Ok().json(
        state
            .preview_unsaved(&caller.0, &env, None, schedule)
            .await?,
    ))
}

pub async fn refire(
    state: State,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id, n) = path.into_inner();
    let n: usize = n
        .parse()
        .map_err(|_| ApiError(ServiceError::NotFound(format!("hop {n:?}"))))?;
    let run_id = state
        .refire_hop(&caller.0, &env, path_id(&id, "run")?, n)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"run_id": run_id})))
}

pub async fn file_tokens(
    state: State,
    caller: Caller,
    env: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.list_file_tokens(&caller.0, &env)?))
}

/// `GET …/file-tokens/{token}` downloads through a token; `DELETE …/file-tokens/{id}`
/// revokes one by id.
pub async fn revoke_token(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state.revoke_file_token(&caller.0, &env, path_id(&id, "file token")?)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn download_by_token(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, token) = path.into_inner();
    Ok(attachment(
        state.download_by_token(&caller.0, &env, &token)?,
    ))
}

pub async fn run_param_file(
    state: State,
    caller: Caller,
    path: web::Path<(String, String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id, name) = path.into_inner();
    Ok(attachment(state.run_param_file(
        &caller.0,
        &env,
        path_id(&id, "run")?,
        &name,
    )?))
}

pub async fn uploads(
    state: State,
    caller: Caller,
    env: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let rows = state.list_uploads(&caller.0, &env)?;
    let view: Vec<_> = rows
        .iter()
        .map(|u| serde_json::json!({"image_id": u.id, "name": u.name, "size": u.size, "sha256": u.sha256, "created_at": format_time(u.created_at), "run_id": u.run_id}))
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

pub async fn download_upload(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    Ok(attachment(state.download_upload(
        &caller.0,
        &env,
        path_id(&id, "upload")?,
    )?))
}

/// A file as a download. The name is cleaned for the header: quotes, backslashes and
/// control characters (a CR or LF would make the header invalid) are dropped.
pub fn attachment(d: Download) -> HttpResponse {
    let name: String = d
        .name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(d.bytes)
}
