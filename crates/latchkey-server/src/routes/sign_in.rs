//! People signing in: a session token for a tenant, user name and password; the caller's own
//! session; signing out; and an admin setting a local user's password.
//!
//! A wrong password, an unknown user, a disabled user and an unknown tenant all answer the same
//! 401 after the same work (one Argon2id verify). Failed sign-ins are counted per account-name
//! key and UTC day (see [`crate::sign_in_throttle`] for the delay and the daily cap).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::{Action, NameError, ObjectType, Outcome, Principal, TenantSlug};
use latchkey_proto::{self as proto, ProblemCode};
use latchkey_store::{NewSession, Session, SignInMethod, SignInRecord, StoreError};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::{Admin, SESSION_TOKEN_PREFIX, SignedInUser, session_token_hash, user_actor};
use crate::error::ApiError;
use crate::extract::{ApiJson, RequestFacts};
use crate::password_check::{CheckError, DirectoryPasswordCheck, LocalPasswordCheck, PasswordCheck};
use crate::sign_in_throttle::{Gate, gate};
use crate::state::AppState;

/// Shortest password an admin may set.
const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted anywhere.
const MAX_PASSWORD_CHARS: usize = 1024;

/// The one answer to every refused sign-in.
fn refused() -> ApiError {
    ApiError::Client(ProblemCode::Unauthenticated, "the tenant, user name or password is not right".into())
}

/// Why a sign-in was refused, for the audit log.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    UnknownUser,
    Disabled,
    NoPassword,
    WrongPassword,
    DirectoryNotConfigured,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown_user",
            Refusal::Disabled => "disabled",
            Refusal::NoPassword => "no_password",
            Refusal::WrongPassword => "wrong_password",
            Refusal::DirectoryNotConfigured => "directory_not_configured",
        }
    }
}

/// A sign-in password: present and at most 1024 characters.
pub(crate) fn sign_in_password(raw: &mut String) -> Result<SecretString, ApiError> {
    let password = SecretString::from(std::mem::take(raw));
    let chars = password.expose_secret().chars().count();
    if chars == 0 {
        return Err(ApiError::invalid("password must not be empty"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid(format!("password is longer than {MAX_PASSWORD_CHARS} characters")));
    }
    Ok(password)
}

/// How a person is checked: local users against their hash; directory users by a bind to
/// their tenant's directory. A person who cannot sign in is checked against the dummy hash, at
/// the cost of a real check of a local user.
fn password_check(
    state: &AppState,
    tenant_slug: &str,
    record: Option<&SignInRecord>,
) -> (Box<dyn PasswordCheck>, Option<Refusal>) {
    let local = Box::new(LocalPasswordCheck::new(state.argon2().clone()));
    match record {
        None => (local, Some(Refusal::UnknownUser)),
        Some(r) if r.disabled_at.is_some() => (local, Some(Refusal::Disabled)),
        Some(r) if r.source == "ldap" => match state.config().directory_for(tenant_slug) {
            Some(directory) => (Box::new(DirectoryPasswordCheck::new(directory.clone())), None),
            None => (local, Some(Refusal::DirectoryNotConfigured)),
        },
        Some(r) if r.password_hash.is_none() => (local, Some(Refusal::NoPassword)),
        Some(_) => (local, None),
    }
}

/// Sign in: a session token for a tenant, a user name (`DOMAIN\name`, `name@suffix` or
/// `name`) and a password.
#[utoipa::path(post, path = "/api/v1/sign-in", tag = "sessions", request_body = proto::SignInRequest,
    responses((status = 200, body = proto::SignInResponse), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem, description = "wrong password, unknown or disabled user, unknown tenant"),
        (status = 429, body = proto::Problem, description = "too many failed sign-ins today (see Retry-After)"),
        (status = 503, body = proto::Problem, description = "the directory did not answer")))]
pub async fn sign_in(
    State(state): State<AppState>,
    facts: RequestFacts,
    ApiJson(mut body): ApiJson<proto::SignInRequest>,
) -> Result<Response, ApiError> {
    let password = sign_in_password(&mut body.password)?;
    match check_sign_in(&state, &facts, &body.tenant, &body.username, password).await? {
        SignInResult::Opened(response) => Ok(Json(response).into_response()),
        SignInResult::Limited { retry_after_secs } => Ok(rate_limited(retry_after_secs)),
    }
}

/// What a sign-in with the right checks came to.
pub(crate) enum SignInResult {
    /// A session was opened.
    Opened(proto::SignInResponse),
    /// Too many failures of this name today.
    Limited { retry_after_secs: u64 },
}

/// Check a tenant, user name and password and open a session (the API's and the web UI's
/// sign-in). Refusals are audited, counted and answered as one 401.
pub(crate) async fn check_sign_in(
    state: &AppState,
    facts: &RequestFacts,
    tenant: &str,
    username: &str,
    password: SecretString,
) -> Result<SignInResult, ApiError> {
    let state = state.clone();
    let slug = TenantSlug::parse(tenant)?;
    let principal = Principal::parse(username).map_err(|e| match e {
        NameError::BadChar { .. } => {
            ApiError::invalid("username must be written DOMAIN\\name, name@suffix or name, without control characters")
        }
        other => ApiError::invalid(other.to_string().replace("principal", "username")),
    })?;
    let now = state.clock().now();
    let tenant = match state.tenant_by_slug(slug.as_str()).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => {
            state.argon2().verify(&password, None).await.map_err(|e| ApiError::Internal(e.to_string()))?;
            return Err(refused());
        }
        Err(e) => return Err(ApiError::store("tenant", e)),
    };
    let key = principal.name_key().to_owned();
    let actor = user_actor(&key);
    let event = |outcome: Outcome| {
        facts.event(now, actor.clone(), Action::SignIn, ObjectType::Session).tenant(tenant.id.clone()).outcome(outcome)
    };

    let failures =
        state.store().sign_in_failures(&tenant.id, &key, now).await.map_err(|e| ApiError::store("sign-in", e))?;
    match gate(&state.config().sign_in, failures.failures, now) {
        Gate::Capped { retry_after_secs } => {
            let denied = event(Outcome::Denied).details(&serde_json::json!({ "reason": "daily_limit" }));
            state.store().append_audit(vec![denied]).await.map_err(|e| ApiError::store("audit", e))?;
            return Ok(SignInResult::Limited { retry_after_secs });
        }
        Gate::Proceed(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Gate::Proceed(_) => {}
    }

    let record = match state.store().sign_in_record(&tenant.id, &principal).await {
        Ok(r) => Some(r),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(ApiError::store("user", e)),
    };
    let (check, refusal) = password_check(&state, &tenant.slug, record.as_ref());
    let candidate = if refusal.is_none() { record.as_ref() } else { None };
    let matched = match check.check(candidate, &password).await {
        Ok(m) => m,
        // A directory outage is not the person's failure: 503, not counted.
        Err(CheckError::DirectoryUnavailable(cause)) => {
            tracing::warn!(%cause, tenant = %tenant.slug, "directory did not answer a sign-in");
            let failed = event(Outcome::Failed)
                .details(&serde_json::json!({ "reason": "directory_unavailable", "method": check.method().as_str() }));
            state.store().append_audit(vec![failed]).await.map_err(|e| ApiError::store("audit", e))?;
            return Err(ApiError::Client(ProblemCode::Unavailable, "the directory did not answer; try again".into()));
        }
        Err(CheckError::Hashing(cause)) => return Err(ApiError::Internal(cause)),
    };
    drop(password);

    let refusal = match (record, matched) {
        (Some(user), true) => {
            match open_session(&state, facts, now, &tenant.id, &actor, &user, check.method()).await {
                Ok(response) => return Ok(SignInResult::Opened(response)),
                // Disabled or removed while signing in.
                Err(StoreError::NotFound) => Refusal::Disabled,
                Err(e) => return Err(ApiError::store("session", e)),
            }
        }
        (_, _) => refusal.unwrap_or(Refusal::WrongPassword),
    };
    let denied = event(Outcome::Denied)
        .details(&serde_json::json!({ "reason": refusal.as_str(), "method": check.method().as_str() }));
    state
        .store()
        .record_sign_in_failure(&tenant.id, &key, now, denied)
        .await
        .map_err(|e| ApiError::store("sign-in", e))?;
    Err(refused())
}

/// Open a session for a person whose password was right, with its `sign_in` event.
async fn open_session(
    state: &AppState,
    facts: &RequestFacts,
    now: time::OffsetDateTime,
    tenant_id: &str,
    actor: &str,
    user: &SignInRecord,
    method: SignInMethod,
) -> Result<proto::SignInResponse, StoreError> {
    let token = latchkey_crypto::generate_token(SESSION_TOKEN_PREFIX);
    let token_hash = session_token_hash(state, token.expose_secret());
    let lifetime = time::Duration::try_from(state.config().sign_in.session_lifetime).unwrap_or(time::Duration::HOUR);
    let id = uuid::Uuid::new_v4().to_string();
    let event = facts
        .event(now, actor.to_owned(), Action::SignIn, ObjectType::Session)
        .tenant(tenant_id.to_owned())
        .object(id.clone())
        .details(&serde_json::json!({ "method": method.as_str(), "userId": user.id }));
    let session = NewSession {
        id,
        tenant_id: tenant_id.to_owned(),
        user_id: user.id.clone(),
        token_hash,
        method,
        created_at: now,
        expires_at: now + lifetime,
    };
    let session = state.store().create_session(session, event).await?;
    let tenant = state.store().tenant_by_id(tenant_id).await?;
    Ok(proto::SignInResponse {
        token: token.expose_secret().to_owned(),
        expires_at: session.expires_at,
        user: session_user(&session, &tenant.slug),
    })
}

fn session_user(s: &Session, tenant_slug: &str) -> proto::SessionUser {
    proto::SessionUser {
        id: s.user_id.clone(),
        tenant: tenant_slug.to_owned(),
        name: s.user_name.clone(),
        display_name: s.display_name.clone(),
        email: s.email.clone(),
    }
}

/// 429 with `Retry-After` (seconds).
pub(crate) fn rate_limited(retry_after_secs: u64) -> Response {
    let mut resp = ApiError::Client(
        ProblemCode::RateLimited,
        "too many failed sign-ins for this user today; try again after midnight UTC".into(),
    )
    .into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    resp
}

/// The caller's own session.
#[utoipa::path(get, path = "/api/v1/me", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = proto::Me), (status = 401, body = proto::Problem)))]
pub async fn me(State(state): State<AppState>, user: SignedInUser) -> Result<Json<proto::Me>, ApiError> {
    let session = match state.store().live_session(&user.session_id, state.clock().now()).await {
        Ok(s) => s,
        Err(StoreError::NotFound) => return Err(ApiError::unauthenticated()),
        Err(e) => return Err(ApiError::store("session", e)),
    };
    let tenant = state.store().tenant_by_id(&session.tenant_id).await.map_err(|e| ApiError::store("tenant", e))?;
    Ok(Json(proto::Me {
        user: session_user(&session, &tenant.slug),
        method: session.method.as_str().to_owned(),
        signed_in_at: session.created_at,
        expires_at: session.expires_at,
    }))
}

/// Sign out: the caller's session token stops working.
#[utoipa::path(post, path = "/api/v1/sign-out", tag = "sessions", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = proto::Problem)))]
pub async fn sign_out(State(state): State<AppState>, user: SignedInUser) -> Result<StatusCode, ApiError> {
    let event = user.event(&state, Action::SignOut, ObjectType::Session).object(user.session_id.clone());
    match state.store().revoke_session(&user.session_id, state.clock().now(), event).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(ApiError::unauthenticated()),
        Err(e) => Err(ApiError::store("session", e)),
    }
}

/// Set a local user's password (12 to 1024 characters). The user's sessions end.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/users/{user_id}/password", tag = "directory",
    request_body = proto::PasswordSetRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("user_id" = String, Path, description = "user id")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem, description = "the user's password is kept by a directory")))]
pub async fn set_user_password(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, user_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<proto::PasswordSetRequest>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let user_id = uuid::Uuid::parse_str(user_id.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param("user id is not a valid UUID"))?;
    let password = SecretString::from(std::mem::take(&mut body.password));
    let chars = password.expose_secret().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(format!("password must be at least {MIN_PASSWORD_CHARS} characters")));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid(format!("password is longer than {MAX_PASSWORD_CHARS} characters")));
    }
    if password.expose_secret().chars().any(char::is_control) {
        return Err(ApiError::invalid("password must not contain control characters"));
    }
    let phc = state.argon2().hash(&password).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    drop(password);
    let now = state.clock().now();
    let event = admin
        .event(&state, Action::UserPasswordSet, ObjectType::User)
        .tenant(tenant.id.clone())
        .object(user_id.clone());
    state
        .store()
        .set_user_password(&tenant.id, &user_id, phc, now, event)
        .await
        .map_err(|e| ApiError::store("user", e))?;
    Ok(StatusCode::NO_CONTENT)
}
