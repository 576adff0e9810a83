//! `application/problem+json` bodies with a stable machine-readable code.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable error codes of the native API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The body is not valid JSON, or a field has the wrong type or is missing.
    MalformedBody,
    /// A field has a value that is not allowed.
    InvalidField,
    /// A path or query parameter is not valid.
    InvalidParameter,
    /// No or wrong credentials.
    Unauthenticated,
    /// The credentials are valid but do not allow this.
    Forbidden,
    /// No such object (or not in a tenant the caller may see).
    NotFound,
    /// The object already exists or conflicts with another.
    Conflict,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The request's media type is not JSON.
    UnsupportedMediaType,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    /// Too many requests.
    RateLimited,
    /// The store is not reachable.
    Unavailable,
    /// Something failed on the server; the cause is logged with the request id.
    Internal,
}

impl ProblemCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ProblemCode::MalformedBody | ProblemCode::InvalidField | ProblemCode::InvalidParameter => 400,
            ProblemCode::Unauthenticated => 401,
            ProblemCode::Forbidden => 403,
            ProblemCode::NotFound => 404,
            ProblemCode::MethodNotAllowed => 405,
            ProblemCode::Conflict => 409,
            ProblemCode::PayloadTooLarge => 413,
            ProblemCode::UnsupportedMediaType => 415,
            ProblemCode::RateLimited => 429,
            ProblemCode::Internal => 500,
            ProblemCode::Unavailable => 503,
        }
    }

    /// The problem's short title.
    pub fn title(self) -> &'static str {
        match self {
            ProblemCode::MalformedBody => "Malformed request body",
            ProblemCode::InvalidField => "Invalid field",
            ProblemCode::InvalidParameter => "Invalid parameter",
            ProblemCode::Unauthenticated => "Authentication required",
            ProblemCode::Forbidden => "Forbidden",
            ProblemCode::NotFound => "Not found",
            ProblemCode::Conflict => "Conflict",
            ProblemCode::PayloadTooLarge => "Payload too large",
            ProblemCode::UnsupportedMediaType => "Unsupported media type",
            ProblemCode::MethodNotAllowed => "Method not allowed",
            ProblemCode::RateLimited => "Too many requests",
            ProblemCode::Unavailable => "Service unavailable",
            ProblemCode::Internal => "Internal server error",
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the problem type: `urn:latchkey:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// What was wrong, for a person. Never holds a secret or a database message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: ProblemCode,
    /// The request id, to find the server's log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    /// A problem for `code` with an optional detail.
    pub fn new(code: ProblemCode, detail: Option<String>) -> Self {
        let snake = serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        Self {
            type_uri: format!("urn:latchkey:problem:{snake}"),
            title: code.title().to_owned(),
            status: code.status(),
            detail,
            code,
            request_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_shape() {
        let p = Problem::new(ProblemCode::NotFound, Some("no such device".into()));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:latchkey:problem:not_found");
        assert_eq!(v["status"], 404);
        assert_eq!(v["code"], "not_found");
        assert!(v.get("requestId").is_none());
    }
}
