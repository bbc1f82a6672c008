//! The one place where a service error becomes an HTTP answer:
//! `{"error": {"code", "message", "details": [{field, message, line, column}]}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::FieldProblem;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'static str,
    message: String,
    details: &'a [FieldProblem],
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &[FieldProblem]) {
        match &self.0 {
            ServiceError::BadRequest { details, .. } => {
                (StatusCode::BAD_REQUEST, "bad_request", details)
            }
            ServiceError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", &[]),
            ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", &[]),
            ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", &[]),
            ServiceError::Conflict { details, .. } => (StatusCode::CONFLICT, "conflict", details),
            ServiceError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &[])
            }
            ServiceError::TooManyRequests(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", &[])
            }
            ServiceError::Validation(p) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", &p.0)
            }
            ServiceError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", &[]),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code, details) = self.parts();
        let message = match &self.0 {
            // The cause goes to the server log; the client gets no internals.
            ServiceError::Internal(cause) => {
                tracing::error!("internal error: {cause}");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(Body {
            error: Inner {
                code,
                message,
                details,
            },
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
