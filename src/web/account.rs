//! My account: change password, API tokens (shown once).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::auth::{html, see_other};
use super::error::{WebError, WebResult};
use super::form::PostForm;
use super::layout::{Nav, SignedIn};
use crate::api::State;
use crate::domain::{format_time, ApiToken};
use crate::service::{PasswordChange, ServiceError};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
    tokens: Vec<ApiToken>,
    new_token: String,
    message: String,
    error: String,
}

impl AccountPage {
    pub fn created(&self, t: &ApiToken) -> String {
        format_time(t.created_at)
    }
}

fn render(
    state: &State,
    me: &SignedIn,
    new_token: String,
    message: String,
    error: String,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let tokens = state.list_tokens(&me.user)?;
    let page = AccountPage {
        nav: Nav::new(state, me, "", "account"),
        tokens,
        new_token,
        message,
        error,
    };
    Ok(html(page.render(), status))
}

pub async fn page(state: State, me: SignedIn) -> WebResult<HttpResponse> {
    render(
        &state,
        &me,
        String::new(),
        String::new(),
        String::new(),
        StatusCode::OK,
    )
}

pub async fn change_password(
    state: State,
    me: SignedIn,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let req = PasswordChange {
        current: Some(form.text("current")),
        new: Some(form.text("new")),
    };
    match state
        .change_password(&me.user, req, Some(&me.session_id))
        .await
    {
        Ok(()) => render(
            &state,
            &me,
            String::new(),
            "Password changed; your other sessions were ended.".into(),
            String::new(),
            StatusCode::OK,
        ),
        Err(ServiceError::Validation(p)) => {
            let msg =
                p.0.iter()
                    .map(|x| x.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
            render(
                &state,
                &me,
                String::new(),
                String::new(),
                msg,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
        Err(e) => Err(WebError::Service(e)),
    }
}

pub async fn create_token(state: State, me: SignedIn, form: PostForm) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    let (_, text) = state.create_token(&me.user.username, form.trimmed("label"))?;
    render(
        &state,
        &me,
        text,
        String::new(),
        String::new(),
        StatusCode::OK,
    )
}

pub async fn revoke_token(
    state: State,
    me: SignedIn,
    id: web::Path<String>,
    form: PostForm,
) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    state.revoke_token(&me.user, &id)?;
    Ok(see_other("/account"))
}
