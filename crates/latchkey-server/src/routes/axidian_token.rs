//! `POST /idp/connect/token`: the Axidian-compatible OAuth2 token endpoint (resource owner
//! password grant, RFC 6749 §4.3), for applications.
//!
//! The grant is deprecated (RFC 9700) and kept for compatibility, with compensating controls:
//! failures are counted per application and per client address, with a growing delay and a
//! lockout (429 with `Retry-After`); an unknown, disabled or malformed application costs one
//! Argon2id verification like a real one; every success and failure is an audit event (never
//! with the password). Errors follow RFC 6749 §5.2.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::model::Tenant;
use latchkey_core::{Action, ObjectType, Outcome, TenantSlug};
use latchkey_proto as proto;
use latchkey_store::{FailureRule, NewAppToken, StoreError};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::extract::RequestFacts;
use crate::state::AppState;

/// The keyed-hash label of application access tokens.
pub const APP_TOKEN_LABEL: &str = "app-token";
/// Every application access token starts with this (the generator adds the `_`).
pub const APP_TOKEN_PREFIX: &str = "lk_app";
/// The only scope.
const SCOPE: &str = "pam-api";
/// The only client.
const CLIENT_ID: &str = "aapm-tool";
/// Longest user name or password considered.
const MAX_FIELD: usize = 1024;

/// An RFC 6749 §5.2 refusal.
struct OAuthRefusal {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthRefusal {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self { status, error, description: description.into(), retry_after: None }
    }

    fn request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn grant() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", "the user name or password is not right")
    }
}

impl IntoResponse for OAuthRefusal {
    fn into_response(self) -> Response {
        let body = proto::OAuthError { error: self.error.to_owned(), error_description: self.description };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"latchkey\""));
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// The form's fields, each given at most once.
struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<SecretString>,
    scope: Option<String>,
    client_id: Option<String>,
}

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<TokenForm, OAuthRefusal> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthRefusal::request("the body must be application/x-www-form-urlencoded"));
    }
    let pairs: Vec<(String, Zeroizing<String>)> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| OAuthRefusal::request("the body is not a valid form"))?
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect();
    let mut form = TokenForm { grant_type: None, username: None, password: None, scope: None, client_id: None };
    for (key, value) in pairs {
        if value.len() > MAX_FIELD {
            return Err(OAuthRefusal::request(format!("{key} is longer than {MAX_FIELD} bytes")));
        }
        let repeated = match key.as_str() {
            "grant_type" => form.grant_type.replace(value.to_string()).is_some(),
            "username" => form.username.replace(value.to_string()).is_some(),
            "password" => form.password.replace(SecretString::from(value.as_str())).is_some(),
            "scope" => form.scope.replace(value.to_string()).is_some(),
            "client_id" => form.client_id.replace(value.to_string()).is_some(),
            // Other parameters are ignored (RFC 6749 §3.2).
            _ => false,
        };
        if repeated {
            return Err(OAuthRefusal::request(format!("{key} is given more than once")));
        }
    }
    Ok(form)
}

/// The tenant slug and application name of a `username`: `<tenant>\<name>`, or the name alone
/// in the `default` tenant.
fn split_username(username: &str) -> (&str, &str) {
    match username.split_once('\\') {
        Some((tenant, name)) => (tenant, name),
        None => ("default", username),
    }
}

/// The failure-counter scopes of a request.
fn scopes(tenant_slug: &str, name_key: &str, facts: &RequestFacts) -> Vec<String> {
    vec![format!("app:{tenant_slug}:{name_key}"), format!("addr:{}", facts.client_addr.as_deref().unwrap_or("unknown"))]
}

/// Issue an access token to an application.
#[utoipa::path(post, path = "/idp/connect/token", tag = "axidian",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=password&username=<app>&password=<secret>&scope=pam-api&client_id=aapm-tool"),
    responses((status = 200, body = proto::AxidianToken),
        (status = 400, body = proto::OAuthError, description = "invalid_request, invalid_grant, unsupported_grant_type, invalid_scope"),
        (status = 401, body = proto::OAuthError, description = "invalid_client"),
        (status = 429, body = proto::OAuthError, description = "too many failures (see Retry-After)")))]
pub async fn axidian_token(
    State(state): State<AppState>,
    facts: RequestFacts,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut resp = match token(&state, &facts, &headers, &body).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

async fn token(
    state: &AppState,
    facts: &RequestFacts,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Result<proto::AxidianToken, OAuthRefusal>, ApiError> {
    let form = match parse_form(headers, body) {
        Ok(f) => f,
        Err(r) => return Ok(Err(r)),
    };
    let Some(grant_type) = form.grant_type.as_deref() else {
        return Ok(Err(OAuthRefusal::request("grant_type is required")));
    };
    if grant_type != "password" {
        return Ok(Err(OAuthRefusal::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=password is supported",
        )));
    }
    let Some(client_id) = form.client_id.as_deref() else {
        return Ok(Err(OAuthRefusal::request("client_id is required")));
    };
    if client_id != CLIENT_ID {
        return Ok(Err(OAuthRefusal::new(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client_id")));
    }
    let Some(scope) = form.scope.as_deref() else {
        return Ok(Err(OAuthRefusal::request("scope is required")));
    };
    if scope.split(' ').any(|s| s != SCOPE) || scope.is_empty() {
        return Ok(Err(OAuthRefusal::new(StatusCode::BAD_REQUEST, "invalid_scope", "the only scope is pam-api")));
    }
    let (Some(username), Some(password)) = (form.username.as_deref(), form.password.as_ref()) else {
        return Ok(Err(OAuthRefusal::request("username and password are required")));
    };
    if username.is_empty() || password.expose_secret().is_empty() {
        return Ok(Err(OAuthRefusal::request("username and password must not be empty")));
    }
    let now = state.clock().now();
    let (tenant_raw, name) = split_username(username);
    let tenant_slug = TenantSlug::parse(tenant_raw).map(|s| s.as_str().to_owned()).unwrap_or_default();
    let name_key = name.trim().to_lowercase();
    let scopes = scopes(&tenant_slug, &name_key, facts);
    let config = &state.config().applications;
    let actor = format!("application:{}", username.chars().filter(|c| !c.is_control()).take(300).collect::<String>());
    let tenant = match state.tenant_by_slug(&tenant_slug).await {
        Ok(t) => Some(t),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(ApiError::store("tenant", e)),
    };
    let event = |outcome: Outcome, details: serde_json::Value| {
        let mut e = facts.event(now, actor.clone(), Action::TokenIssue, ObjectType::Application).outcome(outcome);
        e.tenant_id = tenant.as_ref().map(|t: &Tenant| t.id.clone());
        e.details(&details)
    };

    // Lockout and delay, before any password is checked.
    let counts = state.store().token_failures(&scopes).await.map_err(|e| ApiError::store("token", e))?;
    if let Some(until) = counts.iter().filter_map(|c| c.locked_until).filter(|u| *u > now).max() {
        let secs = (until - now).whole_seconds().max(1) as u64;
        let denied = event(Outcome::Denied, serde_json::json!({ "problem": "locked out", "retryAfter": secs }));
        state.store().append_audit(vec![denied]).await.map_err(|e| ApiError::store("audit", e))?;
        let mut refusal = OAuthRefusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request",
            format!("too many failed requests; try again in {secs} seconds"),
        );
        refusal.retry_after = Some(secs);
        return Ok(Err(refusal));
    }
    let delay = config.delay(counts.iter().map(|c| c.failures).max().unwrap_or(0));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    // The same work for every application name: one Argon2id verify.
    let found = match &tenant {
        Some(t) if !name_key.is_empty() => match state.store().application_secret(&t.id, &name_key).await {
            Ok(s) => Some(s),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(ApiError::store("application", e)),
        },
        _ => None,
    };
    let usable = found.as_ref().filter(|s| s.application.enabled);
    let matched = state
        .argon2()
        .verify(password, usable.map(|s| s.password_hash.as_str()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let problem = match (&found, matched) {
        (Some(s), true) => {
            let app = &s.application;
            let token = latchkey_crypto::generate_token(APP_TOKEN_PREFIX);
            let token_hash = state.keyring().keyed_hash(APP_TOKEN_LABEL, token.expose_secret().as_bytes());
            let lifetime = time::Duration::try_from(config.token_lifetime).unwrap_or(time::Duration::MINUTE);
            let id = uuid::Uuid::new_v4().to_string();
            let issued = facts
                .event(now, format!("application:{}", app.id), Action::TokenIssue, ObjectType::Application)
                .tenant(app.tenant_id.clone())
                .object(app.id.clone())
                .details(&serde_json::json!({ "token": id, "expiresIn": lifetime.whole_seconds() }));
            let new = NewAppToken {
                id,
                token_hash,
                tenant_id: app.tenant_id.clone(),
                application_id: app.id.clone(),
                created_at: now,
                expires_at: now + lifetime,
            };
            match state.store().issue_app_token(new, scopes.clone(), issued).await {
                Ok(()) => {
                    return Ok(Ok(proto::AxidianToken {
                        access_token: token.expose_secret().to_owned(),
                        expires_in: lifetime.whole_seconds(),
                        token_type: "Bearer".into(),
                        scope: SCOPE.into(),
                    }));
                }
                // Disabled or deleted meanwhile.
                Err(StoreError::NotFound) => "disabled",
                Err(e) => return Err(ApiError::store("token", e)),
            }
        }
        (Some(s), false) if !s.application.enabled => "disabled",
        (Some(_), false) => "wrong password",
        (None, _) => "unknown application",
    };
    let rule = FailureRule {
        window: time::Duration::try_from(config.failure_window).unwrap_or(time::Duration::minutes(15)),
        max_failures: i64::from(config.max_failures),
        lockout: time::Duration::try_from(config.lockout).unwrap_or(time::Duration::minutes(15)),
    };
    let denied = event(Outcome::Denied, serde_json::json!({ "problem": problem }));
    state.store().record_token_failure(scopes, now, rule, denied).await.map_err(|e| ApiError::store("token", e))?;
    Ok(Err(OAuthRefusal::grant()))
}
