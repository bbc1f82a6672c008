use crate::domain::{FieldProblem, Problems};
use crate::engine::EngineError;
use crate::store::StoreError;

/// What a use case can answer besides success. The API and the pages each present it in one
/// place (`api::error`, `web::error`); messages never carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Vec<FieldProblem>,
    },
    #[error("sign in first")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        message: String,
        details: Vec<FieldProblem>,
    },
    #[error("{0}")]
    TooManyRequests(String),
    #[error("the request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("the input has problems")]
    Validation(Problems),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ServiceError::BadRequest {
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// One validation problem.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut p = Problems::new();
        p.push(field, message);
        ServiceError::Validation(p)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            StoreError::Conflict(msg) => ServiceError::conflict(msg),
            // Logged where it is answered (api/error.rs, web/error.rs), once.
            other => ServiceError::Internal(format!("store: {other}")),
        }
    }
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Busy => ServiceError::conflict(e.to_string()),
            EngineError::WrongState(s) => ServiceError::conflict(format!("the run is {s}")),
            EngineError::Store(s) => s.into(),
            EngineError::Crypto(c) => ServiceError::Internal(format!("crypto: {c}")),
        }
    }
}

impl From<Problems> for ServiceError {
    fn from(p: Problems) -> Self {
        ServiceError::Validation(p)
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Internal(format!("background task failed: {e}")))?
}
