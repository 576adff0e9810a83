//! Errors of the web UI: an HTML page with a message a person can act on. Server-side causes
//! are logged, never shown.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_proto::ProblemCode;
use latchkey_store::StoreError;

use crate::error::ApiError;
use crate::web::page::html;

/// An error page.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("No such {what}."))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "web UI error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on the server; it has been logged.")
    }

    /// A store failure on `what`.
    pub fn from_store(what: &str, e: StoreError) -> Self {
        ApiError::store(what, e).into()
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Client(code, message) => {
                let status = StatusCode::from_u16(code_status(code)).unwrap_or(StatusCode::BAD_REQUEST);
                WebError::new(status, sentence(&message))
            }
            ApiError::Internal(cause) => WebError::internal(cause),
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "store unavailable");
                WebError::new(StatusCode::SERVICE_UNAVAILABLE, "The store is not reachable; try again.")
            }
        }
    }
}

fn code_status(code: ProblemCode) -> u16 {
    latchkey_proto::Problem::new(code, None).status
}

/// A message as a sentence: capital first letter, full stop.
pub fn sentence(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 1);
    let mut chars = message.trim().chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = ErrorPage { title, message: &self.message };
        let mut resp = html(&page);
        *resp.status_mut() = self.status;
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_become_pages_with_their_status() {
        let e: WebError = ApiError::forbidden("no access target lets you read this device").into();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert_eq!(e.message, "No access target lets you read this device.");
        let e: WebError = ApiError::Internal("disk on fire".into()).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("disk"));
    }
}
