//! The Axidian-compatible `/core/…` routes for applications holding an access token from
//! `/idp/connect/token`: the permitted accounts, the credential view (reason, confirmation,
//! reset after showing, SSH keys encrypted before showing) and setting credentials.
//!
//! Errors have the ASP.NET Core problem shape; a missing or bad token is a 401 with
//! `WWW-Authenticate: Bearer error="invalid_token"`. An account the application may not see
//! answers exactly like one that does not exist.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::model::{Account, AccountKind};
use latchkey_core::{Action, NewAuditEvent, ObjectType, Reason, TimeSpan};
use latchkey_proto as proto;
use latchkey_store::{AccountPolicy, AppTokenOwner, CredentialView, PrincipalKind, StoreError, ViewOutcome};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::account_keys::store_credentials;
use super::axidian_token::{APP_TOKEN_LABEL, APP_TOKEN_PREFIX};
use crate::error::ApiError;
use crate::extract::{RequestFacts, redact_values};
use crate::state::AppState;
use crate::{ssh_keys, vault};

/// The person an application acts for when it names none.
const NOBODY: &str = "00000000-0000-0000-0000-000000000000";
/// Words of a generated key passphrase (about 77 bits).
const PASSPHRASE_WORDS: usize = 6;
/// Longest bearer token looked up.
const MAX_TOKEN_LEN: usize = 200;
/// Longest password accepted.
const MAX_PASSWORD: usize = 1024;
/// Longest private key accepted.
const MAX_KEY: usize = 16 * 1024;

/// Why a `/core` request is refused.
pub(crate) enum CoreRefusal {
    /// No token, or a token that is unknown, expired, revoked or of a disabled application.
    Token {
        given: bool,
    },
    Problem(Box<proto::AxidianProblem>),
    Api(ApiError),
}

impl CoreRefusal {
    fn problem(status: u16, detail: impl Into<String>, facts: &RequestFacts) -> Self {
        CoreRefusal::Problem(Box::new(proto::AxidianProblem::new(status, detail, trace_id(facts))))
    }

    fn not_found(facts: &RequestFacts) -> Self {
        Self::problem(404, "no such account", facts)
    }

    fn field(field: &str, message: impl Into<String>, facts: &RequestFacts) -> Self {
        let message = message.into();
        let mut p = proto::AxidianProblem::new(400, message.clone(), trace_id(facts));
        p.title = "One or more validation errors occurred.".into();
        p.errors = Some([(field.to_owned(), vec![message])].into_iter().collect());
        CoreRefusal::Problem(Box::new(p))
    }

    fn body(rejection: JsonRejection, facts: &RequestFacts) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                Self::problem(415, "expected Content-Type: application/json", facts)
            }
            other => Self::problem(400, redact_values(&other.body_text()), facts),
        }
    }
}

impl IntoResponse for CoreRefusal {
    fn into_response(self) -> Response {
        let (problem, challenge) = match self {
            CoreRefusal::Api(e) => return e.into_response(),
            CoreRefusal::Token { given } => {
                let p = proto::AxidianProblem::new(
                    401,
                    "a valid access token is required",
                    trace_id(&RequestFacts::default()),
                );
                let challenge = if given {
                    "Bearer error=\"invalid_token\", error_description=\"the access token is not valid\""
                } else {
                    "Bearer"
                };
                (p, Some(challenge))
            }
            CoreRefusal::Problem(p) => (*p, None),
        };
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, bytes).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json; charset=utf-8"));
        if let Some(c) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        resp
    }
}

/// The application holding the request's bearer token.
pub(crate) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<AppTokenOwner, CoreRefusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(CoreRefusal::Token { given: false });
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.len() <= MAX_TOKEN_LEN && t.starts_with(APP_TOKEN_PREFIX))
        .ok_or(CoreRefusal::Token { given: true })?;
    let hash = state.keyring().keyed_hash(APP_TOKEN_LABEL, token.as_bytes());
    let now = state.clock().now();
    if let Some(owner) = state.app_tokens().get(&hash, now) {
        return Ok(owner);
    }
    match state.store().app_token_owner(&hash, now).await {
        Ok(owner) => {
            state.app_tokens().put(hash, owner.clone());
            Ok(owner)
        }
        Err(StoreError::NotFound) => Err(CoreRefusal::Token { given: true }),
        Err(e) => Err(CoreRefusal::Api(ApiError::store("token", e))),
    }
}

fn app_event(state: &AppState, app: &AppTokenOwner, facts: &RequestFacts, action: Action) -> NewAuditEvent {
    facts
        .event(state.clock().now(), format!("application:{}", app.application_id), action, ObjectType::Account)
        .tenant(app.tenant_id.clone())
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A W3C trace id (`00-<32 hex>-<16 hex>-00`) built on the request id when it is a UUID.
fn trace_id(facts: &RequestFacts) -> String {
    let trace =
        facts.request_id.as_deref().and_then(|r| uuid::Uuid::parse_str(r).ok()).unwrap_or_else(uuid::Uuid::new_v4);
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{}-{}-00", trace.simple(), &span[..16])
}

/// An account id from the path; anything that is not a UUID is an account that does not exist.
fn account_param(raw: &str, facts: &RequestFacts) -> Result<String, CoreRefusal> {
    uuid::Uuid::parse_str(raw.trim()).map(|u| u.to_string()).map_err(|_| CoreRefusal::not_found(facts))
}

/// The person an application acts for: a GUID, or nobody.
fn user_param(raw: Option<&str>, facts: &RequestFacts) -> Result<String, CoreRefusal> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(NOBODY.to_owned()),
        Some(s) => uuid::Uuid::parse_str(s)
            .map(|u| u.to_string())
            .map_err(|_| CoreRefusal::field("UserId", "UserId must be a GUID", facts)),
    }
}

fn policy_settings(p: Option<&AccountPolicy>) -> proto::AxidianPolicySettings {
    proto::AxidianPolicySettings {
        require_credentials_viewing_reason: p.is_some_and(|p| p.require_reason),
        is_credentials_viewing_confirmation_required: p.is_some_and(|p| p.require_confirmation),
        credentials_viewing_confirmation_timeout: TimeSpan::from_seconds(p.map_or(0, |p| p.confirmation_timeout_secs))
            .to_string(),
        encrypt_key_before_showing: p.is_some_and(|p| p.encrypt_key),
        is_user_can_set_account_credentials_if_not_set: p.is_some_and(|p| p.can_set_if_not_set),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The accounts the application may view or change.
#[utoipa::path(get, path = "/core/users/permitted-accounts", tag = "axidian", security(("bearer" = [])),
    responses((status = 200, body = proto::AxidianPermittedAccounts), (status = 401, body = proto::AxidianProblem)))]
pub async fn axidian_permitted_accounts(
    State(state): State<AppState>,
    facts: RequestFacts,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let app = authenticate(&state, &headers).await?;
        let accounts = state
            .store()
            .permitted_accounts(&app.tenant_id, PrincipalKind::Application, &app.application_id)
            .await
            .map_err(|e| CoreRefusal::Api(ApiError::store("account", e)))?;
        let mut event = app_event(&state, &app, &facts, Action::CredentialsList);
        event.object_type = ObjectType::Application;
        let event =
            event.object(app.application_id.clone()).details(&serde_json::json!({ "accounts": accounts.len() }));
        state.store().append_audit(vec![event]).await.map_err(|e| CoreRefusal::Api(ApiError::store("audit", e)))?;
        let accounts = accounts
            .into_iter()
            .map(|p| proto::AxidianPermittedAccount {
                account: proto::AxidianAccount {
                    id: p.account.id.clone(),
                    display_name: p.account.name.clone(),
                    is_key_supported: p.account.kind == AccountKind::Generic,
                    next_credentials_reset: p.next_reset.map(rfc3339),
                    are_credentials_resetting_now: p.resetting_now,
                    has_password: p.has_password,
                    has_key: p.has_key,
                },
                policy_settings: policy_settings(p.policy.as_ref()),
                permission_settings: proto::AxidianPermissionSettings {
                    is_credentials_view_allowed: p.view,
                    is_credentials_change_allowed: p.change,
                },
            })
            .collect();
        Ok::<_, CoreRefusal>(proto::AxidianPermittedAccounts { accounts })
    }
    .await;
    no_store(match result {
        Ok(body) => Json(body).into_response(),
        Err(r) => r.into_response(),
    })
}

/// `<DisplayName>_<yyyyMMdd_HHmmss>Z.pem`, with characters that cannot be in a file name
/// replaced by `_`.
fn key_file_name(display_name: &str, at: time::OffsetDateTime) -> String {
    let safe: String =
        display_name
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
    let t = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{safe}_{:04}{:02}{:02}_{:02}{:02}{:02}Z.pem",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// View an account's credentials (audited with the reason). When the account's policy
/// requires confirmation and no approval allows the view, the answer is 403 naming the
/// approval request to wait for.
#[utoipa::path(post, path = "/core/accounts/{id}/credentials-view", tag = "axidian", security(("bearer" = [])),
    request_body = proto::AxidianViewRequest, params(("id" = String, Path, description = "account id")),
    responses((status = 200, body = proto::AxidianCredentials),
        (status = 400, body = proto::AxidianProblem, description = "malformed body, bad UserId, or a required reason missing"),
        (status = 401, body = proto::AxidianProblem),
        (status = 403, body = proto::AxidianProblem, description = "confirmation required: approvalRequestId names the request"),
        (status = 404, body = proto::AxidianProblem, description = "no such account, not permitted, or no credentials set"),
        (status = 415, body = proto::AxidianProblem)))]
pub async fn axidian_credentials_view(
    State(state): State<AppState>,
    facts: RequestFacts,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<proto::AxidianViewRequest>, JsonRejection>,
) -> Response {
    no_store(match view(&state, &facts, &headers, &id, body).await {
        Ok(body) => Json(body).into_response(),
        Err(r) => r.into_response(),
    })
}

async fn view(
    state: &AppState,
    facts: &RequestFacts,
    headers: &HeaderMap,
    id: &str,
    body: Result<Json<proto::AxidianViewRequest>, JsonRejection>,
) -> Result<proto::AxidianCredentials, CoreRefusal> {
    let app = authenticate(state, headers).await?;
    let account_id = account_param(id, facts)?;
    let Json(body) = body.map_err(|r| CoreRefusal::body(r, facts))?;
    let on_behalf_of = user_param(body.user_id.as_deref(), facts)?;
    let reason = match body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(Reason::parse(r).map_err(|e| CoreRefusal::field("Reason", e.to_string(), facts))?),
    };
    let now = state.clock().now();
    let mut event = app_event(state, &app, facts, Action::CredentialsView).object(account_id.clone());
    event.reason = reason.as_ref().map(|r| r.as_str().to_owned());
    // A view that needs nothing but the permission (no confirmation, no reset after showing,
    // the reason given when one is required, on behalf of nobody) joins the store's batched
    // audited reads; anything else is decided in one transaction by `view_credentials`.
    if on_behalf_of == NOBODY {
        let found = state.store().view_rule(&app.tenant_id, &app.application_id, &account_id).await;
        match found {
            Ok(p) if p.view && needs_only_permission(p.policy.as_ref(), reason.is_some()) => {
                return quick_view(state, facts, &app.tenant_id, &account_id, p, event, now).await;
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(CoreRefusal::Api(ApiError::store("account", e))),
        }
    }
    let keyring = state.keyring_handle();
    let outcome = state
        .store()
        .view_credentials(
            CredentialView {
                tenant_id: app.tenant_id.clone(),
                account_id: account_id.clone(),
                application_id: app.application_id.clone(),
                on_behalf_of,
                reason: reason.map(|r| r.as_str().to_owned()),
                now,
                event,
            },
            move |_, version| {
                let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
                vault::open_version(&ring, version).map_err(|e| e.to_string())
            },
        )
        .await;
    let viewed = match outcome {
        Ok(ViewOutcome::Viewed(v)) => *v,
        Ok(ViewOutcome::NotPermitted) => return Err(CoreRefusal::not_found(facts)),
        Ok(ViewOutcome::NoCredentials) => {
            return Err(CoreRefusal::problem(404, "the account has no credentials set", facts));
        }
        Ok(ViewOutcome::ReasonRequired) => {
            return Err(CoreRefusal::field(
                "Reason",
                "this account's policy requires a reason to view its credentials",
                facts,
            ));
        }
        Ok(ViewOutcome::ApprovalRequired { request_id, created }) => {
            let detail = if created {
                format!(
                    "this account's policy requires confirmation: approval request {request_id} was created; view again once it is approved"
                )
            } else {
                format!(
                    "this account's policy requires confirmation: approval request {request_id} is waiting for a decision"
                )
            };
            let mut p = proto::AxidianProblem::new(403, detail, trace_id(facts));
            p.approval_request_id = Some(request_id);
            return Err(CoreRefusal::Problem(Box::new(p)));
        }
        Err(StoreError::Seal(why)) => {
            state.metrics().secret_read("failed");
            return Err(CoreRefusal::Api(ApiError::Internal(format!("account {account_id} cannot be opened: {why}"))));
        }
        Err(e) => return Err(CoreRefusal::Api(ApiError::store("account", e))),
    };
    state.metrics().secret_read("success");
    credentials(viewed.value, &viewed.account.name, viewed.policy.as_ref(), now, &account_id).await
}

/// Whether a policy asks nothing of a view beyond the permission (and the reason, when given).
fn needs_only_permission(policy: Option<&AccountPolicy>, has_reason: bool) -> bool {
    policy.is_none_or(|p| !p.require_confirmation && !p.reset_after_showing && (has_reason || !p.require_reason))
}

/// A view through the store's batched audited read (see [`view`]).
async fn quick_view(
    state: &AppState,
    facts: &RequestFacts,
    tenant_id: &str,
    account_id: &str,
    rule: latchkey_store::ViewRule,
    event: NewAuditEvent,
    now: time::OffsetDateTime,
) -> Result<proto::AxidianCredentials, CoreRefusal> {
    let keyring = state.keyring_handle();
    let read = state
        .store()
        .read_secret_audited(tenant_id, account_id, event, move |_, version| {
            let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
            vault::open_version(&ring, version).map_err(|e| e.to_string())
        })
        .await;
    let opened = match read {
        Ok(o) => o,
        Err(StoreError::NotFound) => {
            return Err(CoreRefusal::problem(404, "the account has no credentials set", facts));
        }
        Err(StoreError::Seal(why)) => {
            state.metrics().secret_read("failed");
            return Err(CoreRefusal::Api(ApiError::Internal(format!("account {account_id} cannot be opened: {why}"))));
        }
        Err(e) => return Err(CoreRefusal::Api(ApiError::store("account", e))),
    };
    state.metrics().secret_read("success");
    credentials(opened, &rule.account_name, rule.policy.as_ref(), now, account_id).await
}

/// The answer to a view: the key encrypted with a fresh passphrase when the policy says so.
async fn credentials(
    opened: vault::Opened,
    account_name: &str,
    policy: Option<&AccountPolicy>,
    now: time::OffsetDateTime,
    account_id: &str,
) -> Result<proto::AxidianCredentials, CoreRefusal> {
    let encrypt = policy.is_some_and(|p| p.encrypt_key);
    let (key, key_passphrase) = match opened.ssh_key {
        Some(pem) if encrypt => {
            let passphrase = latchkey_crypto::generate_passphrase(PASSPHRASE_WORDS)
                .ok_or_else(|| CoreRefusal::Api(ApiError::Internal("passphrase generation failed".into())))?;
            let phrase = Zeroizing::new(passphrase.expose_secret().to_owned());
            let encrypted = tokio::task::spawn_blocking(move || ssh_keys::encrypt(&pem, &phrase))
                .await
                .map_err(|e| CoreRefusal::Api(ApiError::Internal(e.to_string())))?
                .map_err(|e| CoreRefusal::Api(ApiError::Internal(format!("key of account {account_id}: {e}"))))?;
            (Some(encrypted.as_str().to_owned()), Some(passphrase.expose_secret().to_owned()))
        }
        Some(pem) => (Some(pem.as_str().to_owned()), None),
        None => (None, None),
    };
    let reset = policy.filter(|p| p.reset_after_showing);
    Ok(proto::AxidianCredentials {
        password: opened.password.as_ref().map(|p| p.as_str().to_owned()),
        key_file_name: key.as_ref().map(|_| key_file_name(account_name, now)),
        key,
        key_passphrase,
        reset_credentials_after_showing: reset.is_some(),
        reset_credentials_after_showing_after_min: reset.map(|p| p.reset_after_minutes),
    })
}

/// Set an account's credentials: with the change permission, or with the view permission
/// while none are set when the policy allows it. Fields not given keep their value. Only
/// stored (generic) accounts; the answer is 204.
#[utoipa::path(put, path = "/core/accounts/{id}/credentials", tag = "axidian", security(("bearer" = [])),
    request_body = proto::AxidianCredentialsSet, params(("id" = String, Path, description = "account id")),
    responses((status = 204), (status = 400, body = proto::AxidianProblem), (status = 401, body = proto::AxidianProblem),
        (status = 403, body = proto::AxidianProblem, description = "neither allowed by the permission nor by the policy"),
        (status = 404, body = proto::AxidianProblem), (status = 409, body = proto::AxidianProblem,
            description = "the account's credentials are managed elsewhere (device or directory accounts)")))]
pub async fn axidian_set_credentials(
    State(state): State<AppState>,
    facts: RequestFacts,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<proto::AxidianCredentialsSet>, JsonRejection>,
) -> Response {
    no_store(match set(&state, &facts, &headers, &id, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    })
}

async fn set(
    state: &AppState,
    facts: &RequestFacts,
    headers: &HeaderMap,
    id: &str,
    body: Result<Json<proto::AxidianCredentialsSet>, JsonRejection>,
) -> Result<(), CoreRefusal> {
    let app = authenticate(state, headers).await?;
    let account_id = account_param(id, facts)?;
    let Json(mut body) = body.map_err(|r| CoreRefusal::body(r, facts))?;
    let on_behalf_of = user_param(body.user_id.as_deref(), facts)?;
    let password = body.password.take().map(Zeroizing::new);
    let key = body.key.take().map(Zeroizing::new);
    if password.is_none() && key.is_none() {
        return Err(CoreRefusal::field("Password", "set Password, Key or both", facts));
    }
    if let Some(p) = &password
        && (p.is_empty() || p.chars().count() > MAX_PASSWORD || p.contains('\0'))
    {
        return Err(CoreRefusal::field("Password", format!("Password must be 1 to {MAX_PASSWORD} characters"), facts));
    }
    let key = match key {
        Some(k) if k.len() > MAX_KEY => {
            return Err(CoreRefusal::field("Key", "Key is longer than 16 KiB", facts));
        }
        Some(k) => Some(ssh_keys::import(&k).map_err(|e| CoreRefusal::field("Key", e.to_string(), facts))?),
        None => None,
    };
    let permitted = match state
        .store()
        .permitted_account(&app.tenant_id, PrincipalKind::Application, &app.application_id, &account_id)
        .await
    {
        Ok(p) => p,
        Err(StoreError::NotFound) => return Err(CoreRefusal::not_found(facts)),
        Err(e) => return Err(CoreRefusal::Api(ApiError::store("account", e))),
    };
    let unset = !permitted.has_password && !permitted.has_key;
    let by_policy = unset && permitted.view && permitted.policy.as_ref().is_some_and(|p| p.can_set_if_not_set);
    let event = app_event(state, &app, facts, Action::CredentialsSet).object(account_id.clone());
    if !(permitted.change || by_policy) {
        let denied = event
            .outcome(latchkey_core::Outcome::Denied)
            .details(&serde_json::json!({ "problem": "not allowed", "onBehalfOf": on_behalf_of }));
        state.store().append_audit(vec![denied]).await.map_err(|e| CoreRefusal::Api(ApiError::store("audit", e)))?;
        return Err(CoreRefusal::problem(403, "this application may not change the account's credentials", facts));
    }
    require_stored(&permitted.account, facts)?;
    let event = event.details(&serde_json::json!({
        "onBehalfOf": on_behalf_of, "password": password.is_some(), "key": key.is_some(), "byPolicy": !permitted.change
    }));
    store_credentials(state, &app.tenant_id, &account_id, password, key, event).await.map_err(CoreRefusal::Api)?;
    Ok(())
}

/// Only generic accounts keep their credentials in the store alone.
fn require_stored(account: &Account, facts: &RequestFacts) -> Result<(), CoreRefusal> {
    if account.kind == AccountKind::Generic {
        Ok(())
    } else {
        Err(CoreRefusal::problem(
            409,
            format!("the credentials of {} accounts are managed by Latchkey itself", account.kind.as_str()),
            facts,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_names() {
        let at = time::macros::datetime!(2030-01-02 03:04:05 UTC);
        assert_eq!(key_file_name("db-root", at), "db-root_20300102_030405Z.pem");
        assert_eq!(key_file_name("a/b\\c", at), "a_b_c_20300102_030405Z.pem");
    }
}
