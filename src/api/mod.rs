//! The JSON API (design §9): one route table; handlers parse, call the service, and present.

mod accounts;
mod chains;
mod error;
mod extract;
pub mod openapi;
mod runs;
mod schedules;
mod system;

use std::sync::Arc;

use actix_web::web;
use uuid::Uuid;

pub use chains::attachment;
pub use error::{ApiError, ApiResult};
pub use extract::{Body, Caller, BODY_LIMIT};

use crate::service::{Service, ServiceError};

pub type State = web::Data<Arc<Service>>;

/// Every route of the API, with the least role each needs checked in the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(system::healthz))
        .route("/metrics", web::get().to(system::metrics))
        .service(
            web::scope("/api/v1")
                .route("/openapi.json", web::get().to(system::openapi))
                .route("/tokens", web::post().to(accounts::create_token))
                .route("/tokens", web::get().to(accounts::list_tokens))
                .route("/tokens/{id}", web::delete().to(accounts::revoke_token))
                .route("/me/password", web::put().to(accounts::change_password))
                .route("/environments", web::get().to(accounts::list_environments))
                .route(
                    "/environments",
                    web::post().to(accounts::create_environment),
                )
                .route(
                    "/environments/{id}",
                    web::get().to(accounts::get_environment),
                )
                .route(
                    "/environments/{id}",
                    web::put().to(accounts::update_environment),
                )
                .route("/users", web::get().to(accounts::list_users))
                .route("/users", web::post().to(accounts::create_user))
                .route("/users/{name}", web::get().to(accounts::get_user))
                .route("/users/{name}", web::put().to(accounts::update_user))
                .route("/users/{name}", web::delete().to(accounts::delete_user))
                .route("/audit", web::get().to(accounts::audit))
                .route("/kinds", web::get().to(system::kinds))
                .route("/trigger-preview", web::post().to(system::trigger_preview))
                .route("/envs/{env}/schedules", web::get().to(schedules::list))
                .route("/envs/{env}/schedules", web::post().to(schedules::create))
                .route("/envs/{env}/schedules/{id}", web::get().to(schedules::get))
                .route(
                    "/envs/{env}/schedules/{id}",
                    web::put().to(schedules::replace),
                )
                .route(
                    "/envs/{env}/schedules/{id}",
                    web::delete().to(schedules::delete),
                )
                .route(
                    "/envs/{env}/schedules/{id}/run",
                    web::post().to(schedules::run_now),
                )
                .route("/envs/{env}/runs", web::get().to(runs::list))
                .route("/envs/{env}/runs/{id}", web::get().to(runs::get))
                .route("/envs/{env}/runs/{id}/log", web::get().to(runs::log))
                .route("/envs/{env}/runs/{id}/cancel", web::post().to(runs::cancel))
                .route("/envs/{env}/runs/{id}/retry", web::post().to(runs::retry))
                .route(
                    "/envs/{env}/schedules/{id}/chain-preview",
                    web::post().to(chains::preview),
                )
                .route(
                    "/envs/{env}/chain-preview",
                    web::post().to(chains::preview_unsaved),
                )
                .route("/envs/{env}/chains", web::get().to(chains::list))
                .route("/envs/{env}/chains", web::post().to(chains::create))
                .route("/envs/{env}/chains/{name}", web::get().to(chains::get))
                .route("/envs/{env}/chains/{name}", web::put().to(chains::replace))
                .route(
                    "/envs/{env}/chains/{name}",
                    web::delete().to(chains::delete),
                )
                .route("/envs/{env}/shared-chains", web::get().to(chains::shared))
                .route(
                    "/envs/{env}/runs/{id}/hops/{n}/refire",
                    web::post().to(chains::refire),
                )
                .route(
                    "/envs/{env}/runs/{id}/params/{name}/file",
                    web::get().to(chains::run_param_file),
                )
                .route(
                    "/envs/{env}/file-tokens",
                    web::get().to(chains::file_tokens),
                )
                .route(
                    "/envs/{env}/file-tokens/{token}",
                    web::get().to(chains::download_by_token),
                )
                .route(
                    "/envs/{env}/file-tokens/{id}",
                    web::delete().to(chains::revoke_token),
                )
                .route("/envs/{env}/uploads", web::get().to(chains::uploads))
                .route(
                    "/envs/{env}/uploads/{image_id}",
                    web::get().to(chains::download_upload),
                )
                .route("/envs/{env}/files", web::get().to(runs::files))
                .route("/envs/{env}/files/{name}", web::get().to(runs::download))
                .default_service(web::to(not_found)),
        );
}

async fn not_found() -> ApiResult<actix_web::HttpResponse> {
    Err(ApiError(ServiceError::NotFound("route".into())))
}

/// An id in a path; a malformed one is simply not found.
pub fn path_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError(ServiceError::NotFound(format!("{what} {text:?}"))))
}
