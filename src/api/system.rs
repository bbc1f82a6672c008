use actix_web::HttpResponse;
use serde::Deserialize;

use super::{ApiResult, Body, Caller, State};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub async fn metrics(state: State) -> HttpResponse {
    let e = &state.engine;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            e.metrics
                .render(e.running_total(), e.queued_total(), state.scheduler.len()),
        )
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(super::openapi::document())
}

pub async fn kinds(state: State, _caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(state.kinds.specs().collect::<Vec<_>>())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewInput {
    trigger: Option<serde_json::Value>,
}

pub async fn trigger_preview(state: State, _caller: Caller, body: Body) -> ApiResult<HttpResponse> {
    let input: PreviewInput = body.json()?;
    let (description, next) = state.trigger_preview(input.trigger)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"description": description, "next": next})))
}
