//! Sign in and out.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::WebResult;
use super::form::PostForm;
use super::layout::{SignedIn, SESSION_COOKIE};
use crate::api::State;
use crate::service::ServiceError;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    username: String,
    error: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only a local path is followed after sign-in (no open redirect). Browsers drop tabs and
/// newlines from a `Location` and read `\\` as `/`, so `/\t/evil.example` would become
/// `//evil.example`: any whitespace, control character or backslash sends the user home.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n
                    .chars()
                    .any(|c| c == '\\' || c.is_whitespace() || c.is_control()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

pub async fn home(state: State, me: SignedIn) -> WebResult<HttpResponse> {
    let envs = state.environments_for(&me.user)?;
    let to = envs.first().map_or_else(
        || "/account".to_string(),
        |e| format!("/envs/{}/dashboard", e.id),
    );
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish())
}

pub async fn login_form(q: web::Query<NextQuery>) -> WebResult<HttpResponse> {
    let page = LoginPage {
        next: safe_next(q.next.as_deref()),
        username: String::new(),
        error: String::new(),
    };
    Ok(html(page.render(), actix_web::http::StatusCode::OK))
}

pub async fn login(state: State, req: HttpRequest, form: PostForm) -> WebResult<HttpResponse> {
    form.same_site()?;
    let username = form.trimmed("username");
    let addr = crate::access_log::peer_ip(&req);
    match state.login(&username, &form.text("password"), &addr).await {
        Ok((id, _)) => {
            let secure = req.connection_info().scheme() == "https";
            let cookie = Cookie::build(SESSION_COOKIE, id)
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(secure)
                .finish();
            Ok(HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header(("Location", safe_next(form.get("next"))))
                .finish())
        }
        Err(e) => {
            let (status, error) = match e {
                ServiceError::TooManyRequests(m) => {
                    (actix_web::http::StatusCode::TOO_MANY_REQUESTS, m)
                }
                ServiceError::Unauthorized | ServiceError::Validation(_) => (
                    actix_web::http::StatusCode::UNAUTHORIZED,
                    "wrong user name or password".to_string(),
                ),
                other => return Err(other.into()),
            };
            let page = LoginPage {
                next: safe_next(form.get("next")),
                username,
                error,
            };
            Ok(html(page.render(), status))
        }
    }
}

pub async fn logout(state: State, me: SignedIn, form: PostForm) -> WebResult<HttpResponse> {
    form.verify(&me)?;
    state.logout(&me.session_id)?;
    let mut gone = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .finish();
    gone.make_removal();
    Ok(HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header(("Location", "/login"))
        .finish())
}

/// A rendered page, or a 500 if the template failed.
pub fn html(rendered: askama::Result<String>, status: actix_web::http::StatusCode) -> HttpResponse {
    match rendered {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!("rendering a page failed: {e}");
            HttpResponse::InternalServerError().body("rendering failed")
        }
    }
}

/// 303 to `to` after a POST.
pub fn see_other(to: impl Into<String>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to.into()))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_a_plain_local_path_is_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/envs/production/runs?state=failed")),
            "/envs/production/runs?state=failed"
        );
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "/ /x",
            "/\u{7f}/x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
