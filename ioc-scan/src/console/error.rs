//! Errors of the console's operations, each with the HTTP status and the
//! JSON body it becomes: `{"error": CODE, "message": TEXT, ...}`.

use crate::store::{DbError, DecodeError, RunError, TaskError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("sign in first (missing, wrong or expired credentials)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// Uploads over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// IOC files that could not be read, each with line and column.
    #[error("{message}")]
    BadIocFiles { message: String, files: serde_json::Value },
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Unauthorized => StatusCode::UNAUTHORIZED,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::BadIocFiles { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ConsoleError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Db(DbError::Busy { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Db(_) | ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::Unauthorized => "unauthorized",
            ConsoleError::Forbidden(_) => "forbidden",
            ConsoleError::NotFound(_) => "not-found",
            ConsoleError::Conflict(_) => "conflict",
            ConsoleError::Invalid(_) => "invalid",
            ConsoleError::TooLarge(_) => "too-large",
            ConsoleError::BadIocFiles { .. } => "bad-ioc-files",
            ConsoleError::RateLimited { .. } => "rate-limited",
            ConsoleError::Db(DbError::Busy { .. }) => "busy",
            ConsoleError::Db(_) | ConsoleError::Internal(_) => "internal",
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ConsoleError::NotFound(format!("no {what}"))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("console: {self}");
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let ConsoleError::BadIocFiles { files, .. } = &self {
            body["files"] = files.clone();
        }
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ConsoleError::RateLimited { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ConsoleError::Unauthorized => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

macro_rules! via_db {
    ($($t:ty),*) => {$(
        impl From<$t> for ConsoleError { fn from(e: $t) -> Self { ConsoleError::Db(DbError::from(e)) } }
    )*};
}
via_db!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError, DecodeError);

impl From<TaskError> for ConsoleError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound(id) => ConsoleError::NotFound(format!("no task with id {id}")),
            TaskError::NoSuchVersion { .. } => ConsoleError::NotFound(e.to_string()),
            TaskError::Db(db) => ConsoleError::Db(db),
            other => ConsoleError::Invalid(other.to_string()),
        }
    }
}

impl From<RunError> for ConsoleError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NotFound(_) | RunError::TaskNotFound(_) => ConsoleError::NotFound(e.to_string()),
            RunError::Db(db) => ConsoleError::Db(db),
            other => ConsoleError::Invalid(other.to_string()),
        }
    }
}

pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;
