//! Forms sent from the web UI. Every POST must come from this site (`Sec-Fetch-Site` and
//! `Origin`), carry the session's form token and, when the page gave it one, a form id that
//! is accepted once (a second submit of the same form changes nothing). Only then are the
//! fields parsed; a field of the wrong type or a missing one is a clear 400.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::session::WebUser;

/// The form field holding the session's form token.
pub const CSRF_FIELD: &str = "csrf";
/// The form field holding a page's one-time form id.
pub const FORM_ID_FIELD: &str = "form_id";
/// How long a used form id is remembered.
const FORM_ID_TTL: Duration = Duration::from_secs(3600);
/// Form ids remembered at most; expired ones are dropped when full.
const FORM_ID_MAX: usize = 100_000;

/// A form sent by a signed-in person, checked and parsed.
pub struct WebForm<T> {
    pub user: WebUser,
    pub form: T,
}

/// Refuse a request that did not come from a page of this site.
pub fn check_same_origin(parts: &Parts) -> Result<(), WebError> {
    let refused = || WebError::forbidden("This form was sent from another site and was refused. Nothing was changed.");
    if let Some(site) = parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(refused());
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or_default();
        if origin == "null" || origin_host != host {
            return Err(refused());
        }
    }
    Ok(())
}

/// The form's fields, without the token and the form id, after checking both.
pub fn checked_fields(user: &WebUser, body: &[u8], used: &UsedFormIds) -> Result<Vec<(String, String)>, WebError> {
    let mut fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| WebError::bad_request("The form could not be read. Nothing was changed."))?;
    let token = take(&mut fields, CSRF_FIELD);
    let token_ok = token.as_deref().is_some_and(|t| latchkey_crypto::ct_eq(t.as_bytes(), user.csrf.as_bytes()));
    if !token_ok {
        return Err(WebError::forbidden(
            "This form's security token is missing or out of date. Reload the page and try again. Nothing was changed.",
        ));
    }
    if let Some(id) = take(&mut fields, FORM_ID_FIELD)
        && !used.first_use(&user.user.session_id, &id)
    {
        return Err(WebError::new(
            StatusCode::CONFLICT,
            "This form was already sent; it was not carried out again. Nothing was changed.",
        ));
    }
    Ok(fields)
}

fn take(fields: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let i = fields.iter().position(|(k, _)| k == name)?;
    Some(fields.remove(i).1)
}

/// Parse fields into `T`; the message names the field, never its value.
pub fn parse_fields<T: DeserializeOwned>(fields: &[(String, String)]) -> Result<T, WebError> {
    let encoded = serde_urlencoded::to_string(fields).map_err(WebError::internal)?;
    serde_urlencoded::from_str(&encoded).map_err(|e| {
        WebError::bad_request(format!(
            "The form was not filled in right: {}. Nothing was changed.",
            crate::extract::redact_values(&e.to_string())
        ))
    })
}

/// Rejection of a form: no session (to the sign-in page) or an error page.
pub enum FormRejection {
    NoSession(crate::web::session::NoSession),
    Error(WebError),
}

impl IntoResponse for FormRejection {
    fn into_response(self) -> Response {
        match self {
            FormRejection::NoSession(r) => r.into_response(),
            FormRejection::Error(e) => e.into_response(),
        }
    }
}

impl From<WebError> for FormRejection {
    fn from(e: WebError) -> Self {
        FormRejection::Error(e)
    }
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for WebForm<T> {
    type Rejection = FormRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        check_same_origin(&parts)?;
        let user = WebUser::from_request_parts(&mut parts, state).await.map_err(FormRejection::NoSession)?;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(WebError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Expected a form.").into());
        }
        let req = Request::from_parts(parts, body);
        let body = Bytes::from_request(req, state).await.map_err(|_| {
            WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is larger than the limit. Nothing was changed.")
        })?;
        let fields = checked_fields(&user, &body, state.web().used_form_ids())?;
        let form = parse_fields(&fields)?;
        Ok(WebForm { user, form })
    }
}

/// Form ids already used, per session.
#[derive(Default)]
pub struct UsedFormIds(Mutex<HashMap<(String, String), Instant>>);

impl UsedFormIds {
    /// Record a use; false when this session used this id before.
    pub fn first_use(&self, session_id: &str, form_id: &str) -> bool {
        if form_id.is_empty() || form_id.len() > 64 {
            return false;
        }
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if seen.len() >= FORM_ID_MAX {
            seen.retain(|_, at| now.duration_since(*at) < FORM_ID_TTL);
            if seen.len() >= FORM_ID_MAX {
                // Every entry is recent: forget them rather than refuse every form.
                seen.clear();
            }
        }
        match seen.insert((session_id.to_owned(), form_id.to_owned()), now) {
            None => true,
            Some(at) => now.duration_since(at) >= FORM_ID_TTL,
        }
    }
}

/// A fresh one-time form id for a page.
pub fn new_form_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_id_is_accepted_once_per_session() {
        let used = UsedFormIds::default();
        assert!(used.first_use("s1", "f1"));
        assert!(!used.first_use("s1", "f1"));
        assert!(used.first_use("s2", "f1"));
        assert!(!used.first_use("s1", ""));
    }
}
