use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};

use super::{path_id, ApiError, ApiResult, Caller, State};
use crate::domain::format_time;
use crate::service::{parse_states, ServiceError, MAX_PAGE};
use crate::store::RunFilter;

type Query = web::Query<HashMap<String, String>>;

pub fn time_param(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    q.get(name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError(ServiceError::invalid(
                        name,
                        "an RFC 3339 time such as 2026-11-28T00:00:00Z",
                    ))
                })
        })
        .transpose()
}

pub fn limit_param(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(50),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Ok(n) if n > MAX_PAGE => Err(super::accounts::too_large_limit()),
            _ => Err(ApiError(ServiceError::invalid(
                "limit",
                format!("a number from 1 to {MAX_PAGE}"),
            ))),
        },
    }
}

pub async fn list(
    state: State,
    caller: Caller,
    env: web::Path<String>,
    q: Query,
) -> ApiResult<HttpResponse> {
    state.require(&caller.0, &env, crate::domain::Role::Viewer)?;
    let filter = RunFilter {
        schedule: q
            .get("schedule")
            .map(|s| path_id(s, "schedule"))
            .transpose()?,
        states: q.get("state").map(|s| parse_states(s)).transpose()?,
        since: time_param(&q, "since")?,
        until: time_param(&q, "until")?,
        before: q
            .get("before")
            .map(|b| {
                uuid::Uuid::parse_str(b)
                    .map_err(|_| ApiError(ServiceError::invalid("before", "a run id")))
            })
            .transpose()?,
        limit: limit_param(&q)?,
    };
    Ok(HttpResponse::Ok().json(state.page_runs(&caller.0, &env, filter).await?))
}

pub async fn get(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.get_run(&caller.0, &env, path_id(&id, "run")?)?))
}

pub async fn log(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
    q: Query,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let after = match q.get("after") {
        None => 0,
        Some(a) => a
            .parse::<u32>()
            .map_err(|_| ApiError(ServiceError::invalid("after", "a log sequence number")))?,
    };
    let lines = state.run_log(&caller.0, &env, path_id(&id, "run")?, after)?;
    let view: Vec<_> = lines
        .iter()
        .map(|l| serde_json::json!({"seq": l.seq, "at": format_time(l.at), "stream": l.stream, "text": l.text}))
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

pub async fn cancel(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state
        .cancel_run(&caller.0, &env, path_id(&id, "run")?)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({})))
}

pub async fn retry(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    let run_id = state
        .retry_run(&caller.0, &env, path_id(&id, "run")?)
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"run_id": run_id})))
}

pub async fn files(
    state: State,
    caller: Caller,
    env: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let files = state.list_files(&caller.0, &env)?;
    let view: Vec<_> = files
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "version": f.version, "size": f.size, "sha256": f.sha256, "created_at": format_time(f.created_at), "run_id": f.run_id}))
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

pub async fn download(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, name) = path.into_inner();
    let (meta, bytes) = state.download_file(&caller.0, &env, &name)?;
    Ok(super::chains::attachment(crate::service::Download {
        name: meta.name,
        bytes,
    }))
}
