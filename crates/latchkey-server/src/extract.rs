//! Request extractors whose rejections are problem+json, and request facts for the audit log.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use latchkey_proto::ProblemCode;
use std::net::SocketAddr;

use crate::error::ApiError;

/// A JSON body. Wrong types, missing fields, unknown fields and syntax errors are 400, a
/// wrong content type 415, an oversized body 413.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::Client(ProblemCode::UnsupportedMediaType, "expected Content-Type: application/json".into())
            }
            JsonRejection::JsonDataError(e) => {
                ApiError::Client(ProblemCode::MalformedBody, redact_values(&e.body_text()))
            }
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::Client(ProblemCode::MalformedBody, redact_values(&e.body_text()))
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::Client(ProblemCode::PayloadTooLarge, "the request body is larger than the limit".into())
            }
            other => ApiError::Client(ProblemCode::MalformedBody, other.body_text()),
        }
    }
}

/// Query parameters, rejected as 400 with a clear message.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_param(redact_values(&r.body_text()))
    }
}

/// serde messages quote the offending value (`invalid type: string "…"`); a value may be a
/// secret, so every double-quoted run is replaced before the message is answered.
pub fn redact_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// Facts about the request that go into audit events.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
}

impl RequestFacts {
    /// An audit event by `actor` at `at`, carrying this request's client address and id.
    pub fn event(
        &self,
        at: time::OffsetDateTime,
        actor: String,
        action: latchkey_core::Action,
        object_type: latchkey_core::ObjectType,
    ) -> latchkey_core::NewAuditEvent {
        let mut e = latchkey_core::NewAuditEvent::new(at, actor, action, object_type);
        e.client_addr = self.client_addr.clone();
        e.request_id = self.request_id.clone();
        e
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestFacts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let client_addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0.ip().to_string());
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Self { client_addr, request_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted() {
        let m = redact_values("invalid type: string \"hunter2\", expected i64 at line 1 column 20");
        assert!(!m.contains("hunter2"));
        assert!(m.contains("expected i64"));
        assert_eq!(redact_values("missing field `name`"), "missing field `name`");
    }
}
