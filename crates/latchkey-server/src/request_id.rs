//! Request ids: every request gets one (or keeps the caller's `x-request-id`), it is echoed
//! in the response header, named in problem bodies, and recorded on the request's log span,
//! so the one log line of a 5xx can be found from what the client saw.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Largest problem body rewritten (problem documents are small).
const MAX_PROBLEM_BYTES: usize = 16 * 1024;

/// Middleware: run the request inside a span naming its id and add `requestId` to
/// problem+json answers.
pub async fn annotate(req: Request, next: Next) -> Response {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let resp = next.run(req).instrument(span).await;
    let is_problem =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/problem+json");
    if !is_problem || id.is_empty() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PROBLEM_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    map.insert("requestId".into(), serde_json::Value::String(id));
    let out = serde_json::to_vec(&map).unwrap_or_else(|_| bytes.to_vec());
    parts.headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from_str(&out.len().to_string()).unwrap_or(HeaderValue::from_static("0")),
    );
    Response::from_parts(parts, Body::from(out))
}
