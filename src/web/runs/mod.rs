//! Run history (filters, key-based paging) and run detail (log, lineage graph, chain errors
//! with Refire, Retry and Cancel).

mod detail;
mod history;

use actix_web::{web, HttpResponse};

use super::auth::see_other;
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::SignedIn;
use crate::api::State;
use crate::service::ServiceError;

pub use detail::{detail, log_json};
pub use history::history;

pub async fn cancel(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    let id = super::id(&id, "run")?;
    state.cancel_run(&me.user, &env, id).await?;
    Ok(see_other(format!("/envs/{env}/runs/{id}")))
}

pub async fn retry(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    let new = state
        .retry_run(&me.user, &env, super::id(&id, "run")?)
        .await?;
    Ok(see_other(format!("/envs/{env}/runs/{new}")))
}

pub async fn refire(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String, u32)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id, n) = path.into_inner();
    let id = super::id(&id, "run")?;
    match state.refire_hop(&me.user, &env, id, n as usize).await {
        Ok(_) | Err(ServiceError::Validation(_)) => Ok(see_other(format!("/envs/{env}/runs/{id}"))),
        Err(e) => Err(WebError::Service(e)),
    }
}
