//! The file store, the FileUpload table and the file tokens minted from this environment.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::{html, see_other};
use super::error::WebResult;
use super::form::PostForm;
use super::layout::{local_time, Nav, SignedIn};
use crate::api::State;
use crate::domain::Role;
use crate::service::FileTokenView;

pub struct FileRow {
    pub name: String,
    pub href: String,
    pub version: u32,
    pub size: u64,
    pub at: String,
    pub run: String,
}

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    nav: Nav,
    files: Vec<FileRow>,
    uploads: Vec<FileRow>,
    tokens: Vec<FileTokenView>,
}

pub async fn page(state: State, me: SignedIn, env: web::Path<String>) -> WebResult<HttpResponse> {
    let e = state.require(&me.user, &env, Role::Viewer)?;
    let files = state
        .list_files(&me.user, &env)?
        .into_iter()
        .map(|f| FileRow {
            href: format!("/envs/{env}/files/{}", super::error::urlencode(&f.name)),
            name: f.name,
            version: f.version,
            size: f.size,
            at: local_time(f.created_at, &e.time_zone),
            run: f.run_id.map(|r| r.to_string()).unwrap_or_default(),
        })
        .collect();
    let uploads = state
        .list_uploads(&me.user, &env)?
        .into_iter()
        .map(|u| FileRow {
            href: format!("/envs/{env}/uploads/{}", u.id),
            name: format!("{} ({})", u.name, u.id),
            version: 1,
            size: u.size,
            at: local_time(u.created_at, &e.time_zone),
            run: u.run_id.map(|r| r.to_string()).unwrap_or_default(),
        })
        .collect();
    let tokens = if me.user.role_in(&env) >= Some(Role::Integration) {
        state.list_file_tokens(&me.user, &env)?
    } else {
        Vec::new()
    };
    let page = FilesPage {
        nav: Nav::new(&state, &me, &env, "files"),
        files,
        uploads,
        tokens,
    };
    Ok(html(page.render(), StatusCode::OK))
}

pub async fn download(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
) -> WebResult<HttpResponse> {
    let (env, name) = path.into_inner();
    let (meta, bytes) = state.download_file(&me.user, &env, &name)?;
    Ok(crate::api::attachment(crate::service::Download {
        name: meta.name,
        bytes,
    }))
}

pub async fn download_upload(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
) -> WebResult<HttpResponse> {
    let (env, id) = path.into_inner();
    Ok(crate::api::attachment(state.download_upload(
        &me.user,
        &env,
        super::id(&id, "upload")?,
    )?))
}

pub async fn run_param_file(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String, String)>,
) -> WebResult<HttpResponse> {
    let (env, id, name) = path.into_inner();
    Ok(crate::api::attachment(state.run_param_file(
        &me.user,
        &env,
        super::id(&id, "run")?,
        &name,
    )?))
}

pub async fn revoke_token(
    state: State,
    me: SignedIn,
    path: web::Path<(String, String)>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (env, id) = path.into_inner();
    state.revoke_file_token(&me.user, &env, super::id(&id, "file token")?)?;
    Ok(see_other(format!("/envs/{env}/files")))
}
