use actix_web::{web, HttpRequest, HttpResponse};

use super::{path_id, ApiResult, Body, Caller, State};
use crate::service::{RunNowInput, ScheduleInput};

pub async fn list(state: State, caller: Caller, env: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.list_schedules(&caller.0, &env)?))
}

pub async fn create(
    state: State,
    caller: Caller,
    env: web::Path<String>,
    body: Body,
) -> ApiResult<HttpResponse> {
    // Permission first: a caller without a role learns nothing from validation.
    state.require(&caller.0, &env, crate::domain::Role::Operator)?;
    let view = state.create_schedule(&caller.0, &env, body.json::<ScheduleInput>()?)?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/envs/{env}/schedules/{}", view.id),
        ))
        .json(view))
}

pub async fn get(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    Ok(HttpResponse::Ok().json(state.get_schedule(&caller.0, &env, path_id(&id, "schedule")?)?))
}

pub async fn replace(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state.require(&caller.0, &env, crate::domain::Role::Operator)?;
    let id = path_id(&id, "schedule")?;
    state.schedule_in(&env, id)?;
    Ok(HttpResponse::Ok().json(state.replace_schedule(
        &caller.0,
        &env,
        id,
        body.json::<ScheduleInput>()?,
    )?))
}

pub async fn delete(
    state: State,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state.delete_schedule(&caller.0, &env, path_id(&id, "schedule")?)?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn run_now(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Body,
) -> ApiResult<HttpResponse> {
    let (env, id) = path.into_inner();
    state.require(&caller.0, &env, crate::domain::Role::Operator)?;
    let id = path_id(&id, "schedule")?;
    state.schedule_in(&env, id)?;
    let input = body.json_or_default::<RunNowInput>()?;
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let run_id = state
        .run_now(&caller.0, &env, id, input, &body.0, key)
        .await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/envs/{env}/runs/{run_id}")))
        .json(serde_json::json!({"run_id": run_id})))
}
