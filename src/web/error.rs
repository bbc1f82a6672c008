//! How a service error reads as a page: one `match` from error to status and message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::service::ServiceError;

#[derive(Debug)]
pub enum WebError {
    Service(ServiceError),
    /// Not signed in: back to the login page, then to `next`.
    SignIn {
        next: String,
    },
    /// A POST without the session's CSRF token, or from another site.
    Csrf,
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        WebError::Service(e)
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError::Service(e.into())
    }
}

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebError::Service(e) => e.fmt(f),
            WebError::SignIn { .. } => f.write_str("sign in first"),
            WebError::Csrf => f.write_str(
                "this form is out of date or came from another site; reload the page and try again",
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: String,
}

impl WebError {
    fn status_and_title(&self) -> (StatusCode, &'static str) {
        match self {
            WebError::SignIn { .. } => (StatusCode::SEE_OTHER, "Sign in"),
            WebError::Csrf => (StatusCode::FORBIDDEN, "Forbidden"),
            WebError::Service(e) => match e {
                ServiceError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "Bad request"),
                ServiceError::Unauthorized => (StatusCode::UNAUTHORIZED, "Sign in"),
                ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
                ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
                ServiceError::Conflict { .. } => (StatusCode::CONFLICT, "Conflict"),
                ServiceError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Too large"),
                ServiceError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "Slow down"),
                ServiceError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Check the form"),
                ServiceError::Internal(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
                }
            },
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.status_and_title().0
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::SignIn { next } = self {
            let to = format!("/login?next={}", urlencode(next));
            return HttpResponse::SeeOther()
                .insert_header(("Location", to))
                .finish();
        }
        let (status, title) = self.status_and_title();
        let message = match self {
            WebError::Service(ServiceError::Internal(cause)) => {
                tracing::error!("internal error: {cause}");
                "internal error; see the server log".to_string()
            }
            WebError::Service(ServiceError::Validation(p)) => {
                p.0.iter()
                    .map(|x| format!("{}: {}", x.field, x.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            WebError::Service(ServiceError::Conflict { message, details })
                if !details.is_empty() =>
            {
                format!(
                    "{message}: {}",
                    details
                        .iter()
                        .map(|d| d.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
            other => other.to_string(),
        };
        let body = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        }
        .render()
        .unwrap_or_else(|_| title.to_string());
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

/// Percent-encodes `s` for a query value (`/` kept, as in a `next=/path`).
pub fn urlencode(s: &str) -> String {
    percent_encode(s, true)
}

/// Percent-encodes `s` as one path segment (`/` encoded too).
pub fn path_segment(s: &str) -> String {
    percent_encode(s, false)
}

fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub type WebResult<T> = Result<T, WebError>;
