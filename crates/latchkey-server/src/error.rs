//! The one error type of the native API and its exhaustive mapping to problem+json.
//! 5xx bodies are opaque: the cause is logged once, with the request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::NameError;
use latchkey_proto::{Problem, ProblemCode};
use latchkey_store::StoreError;

/// An error answered to an API client.
#[derive(Debug)]
pub enum ApiError {
    /// A client error with a code and a message safe to show.
    Client(ProblemCode, String),
    /// A server-side failure; the message is logged, never sent.
    Internal(String),
    /// The store is not reachable.
    Unavailable(String),
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        ApiError::Client(ProblemCode::NotFound, format!("no such {what}"))
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::Client(ProblemCode::InvalidField, msg.into())
    }

    pub fn bad_param(msg: impl Into<String>) -> Self {
        ApiError::Client(ProblemCode::InvalidParameter, msg.into())
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Client(ProblemCode::Forbidden, msg.into())
    }

    pub fn unauthenticated() -> Self {
        ApiError::Client(ProblemCode::Unauthenticated, "a valid bearer token is required".into())
    }

    /// Map a store error for an operation on `what`.
    pub fn store(what: &str, e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(what),
            StoreError::Conflict(why) => ApiError::Client(ProblemCode::Conflict, format!("{what}: {why}")),
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::Invalid(why) => ApiError::invalid(why),
            StoreError::CommitFailed => ApiError::Unavailable("commit failed".into()),
            StoreError::UnsupportedUrl
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::Seal(_)
            | StoreError::Database(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<NameError> for ApiError {
    fn from(e: NameError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, detail) = match self {
            ApiError::Client(code, detail) => (code, Some(detail)),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (ProblemCode::Internal, None)
            }
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "store unavailable");
                (ProblemCode::Unavailable, Some("the store is not reachable; try again".into()))
            }
        };
        problem_response(code, detail)
    }
}

/// A problem+json response. The request id is added by the middleware that sees it.
pub fn problem_response(code: ProblemCode, detail: Option<String>) -> Response {
    let problem = Problem::new(code, detail);
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    resp
}
