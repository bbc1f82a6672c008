//! The pages (design §8–§9): server-rendered with askama, over the same service layer as the
//! JSON API. They work without JavaScript; `static/baton.js` only makes them nicer.

mod account;
mod admin;
mod assets;
mod auth;
mod chains;
mod dashboard;
mod error;
mod files;
mod form;
mod layout;
mod runs;
mod schedule_form;
mod schedules;
mod svg;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web;
use futures_util::FutureExt;

pub use error::WebError;
pub use layout::SignedIn;

/// An id in a page's path; a malformed one is simply not found.
fn id(text: &str, what: &str) -> Result<uuid::Uuid, WebError> {
    crate::api::path_id(text, what).map_err(|e| WebError::Service(e.0))
}

/// Every page route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{file:.*}", web::get().to(assets::serve))
        .route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/account", web::get().to(account::page))
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route("/account/tokens", web::post().to(account::create_token))
        .route(
            "/account/tokens/{id}/revoke",
            web::post().to(account::revoke_token),
        )
        .route(
            "/trigger-preview",
            web::post().to(schedule_form::trigger_preview),
        )
        .route("/envs/{env}", web::get().to(dashboard::page))
        .route("/envs/{env}/dashboard", web::get().to(dashboard::page))
        .route("/envs/{env}/schedules", web::get().to(schedules::list))
        .route(
            "/envs/{env}/schedules/new",
            web::get().to(schedule_form::new_form),
        )
        .route(
            "/envs/{env}/schedules/new",
            web::post().to(schedule_form::submit_new),
        )
        .route(
            "/envs/{env}/schedules/{id}",
            web::get().to(schedule_form::edit_form),
        )
        .route(
            "/envs/{env}/schedules/{id}",
            web::post().to(schedule_form::submit_edit),
        )
        .route(
            "/envs/{env}/schedules/{id}/run",
            web::post().to(schedules::run_now),
        )
        .route(
            "/envs/{env}/schedules/{id}/delete",
            web::post().to(schedules::delete),
        )
        .route("/envs/{env}/chains", web::get().to(chains::list))
        .route("/envs/{env}/chains", web::post().to(chains::create))
        .route("/envs/{env}/chains/{name}", web::get().to(chains::edit))
        .route("/envs/{env}/chains/{name}", web::post().to(chains::save))
        .route(
            "/envs/{env}/chains/{name}/delete",
            web::post().to(chains::delete),
        )
        .route("/envs/{env}/runs", web::get().to(runs::history))
        .route("/envs/{env}/runs/{id}", web::get().to(runs::detail))
        .route(
            "/envs/{env}/runs/{id}/log.json",
            web::get().to(runs::log_json),
        )
        .route("/envs/{env}/runs/{id}/cancel", web::post().to(runs::cancel))
        .route("/envs/{env}/runs/{id}/retry", web::post().to(runs::retry))
        .route(
            "/envs/{env}/runs/{id}/hops/{n}/refire",
            web::post().to(runs::refire),
        )
        .route(
            "/envs/{env}/runs/{id}/params/{name}/file",
            web::get().to(files::run_param_file),
        )
        .route("/envs/{env}/files", web::get().to(files::page))
        .route("/envs/{env}/files/{name}", web::get().to(files::download))
        .route(
            "/envs/{env}/uploads/{id}",
            web::get().to(files::download_upload),
        )
        .route(
            "/envs/{env}/file-tokens/{id}/revoke",
            web::post().to(files::revoke_token),
        )
        .route("/admin/users", web::get().to(admin::users))
        .route("/admin/users", web::post().to(admin::save_user))
        .route(
            "/admin/users/{name}/delete",
            web::post().to(admin::delete_user),
        )
        .route("/admin/environments", web::get().to(admin::environments))
        .route(
            "/admin/environments",
            web::post().to(admin::save_environment),
        )
        .route("/admin/audit", web::get().to(admin::audit));
}

/// Security headers on every answer: a CSP without inline script, no sniffing, no framing.
pub fn security_headers<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: actix_web::dev::Service<
        actix_web::dev::ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    // Pages and answers can hold a new API token or typed values: never kept in a cache.
    // The embedded static files may be.
    let cacheable = req.path().starts_with("/static/");
    srv.call(req).map(move |res| {
        res.map(|mut r| {
            let h = r.headers_mut();
            if !cacheable {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            let set = |h: &mut header::HeaderMap, k: &'static str, v: &'static str| {
                h.insert(header::HeaderName::from_static(k), HeaderValue::from_static(v));
            };
            set(h, "content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
            set(h, "x-content-type-options", "nosniff");
            set(h, "x-frame-options", "DENY");
            set(h, "referrer-policy", "same-origin");
            r
        })
    })
}
