//! Request extractors: the signed-in caller (bearer token) and bodies read with the 1 MiB
//! limit and parsed with the path of the first bad field.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::{FieldProblem, User};
use crate::service::{Service, ServiceError};

/// Request bodies are at most 1 MiB.
pub const BODY_LIMIT: usize = 1 << 20;

pub struct Caller(pub User);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(caller_of(req).map(Caller))
    }
}

fn caller_of(req: &HttpRequest) -> Result<User, ApiError> {
    let service = req
        .app_data::<web::Data<Arc<Service>>>()
        .ok_or_else(|| ApiError(ServiceError::Internal("no service".into())))?;
    let header = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .ok_or(ApiError(ServiceError::Unauthorized))?;
    Ok(service.authenticate_token(token.trim())?)
}

/// The raw body, refused past [`BODY_LIMIT`].
pub struct Body(pub web::Bytes);

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared = req
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > BODY_LIMIT) {
                return Err(ApiError(ServiceError::PayloadTooLarge));
            }
            let mut buf = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError(ServiceError::bad_request(format!(
                        "reading the body failed: {e}"
                    )))
                })?;
                if buf.len() + chunk.len() > BODY_LIMIT {
                    return Err(ApiError(ServiceError::PayloadTooLarge));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Body(buf.freeze()))
        })
    }
}

impl Body {
    /// Parses JSON; a body that is not JSON, or has an unknown or mistyped field, is a 400
    /// naming the field.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let de = &mut serde_json::Deserializer::from_slice(&self.0);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            let field = if field == "." { String::new() } else { field };
            ApiError(ServiceError::BadRequest {
                message: if field.is_empty() {
                    format!("the body is not valid: {message}")
                } else {
                    format!("{field}: {message}")
                },
                details: vec![FieldProblem {
                    field,
                    message,
                    line: None,
                    column: None,
                }],
            })
        })
    }

    /// Like [`Self::json`], with an empty body meaning the default.
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            Ok(T::default())
        } else {
            self.json()
        }
    }
}
