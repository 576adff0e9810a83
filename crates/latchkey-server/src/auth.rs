//! Bearer authentication: admin API tokens and the session tokens of people signed in, their
//! extractors and tenant scoping. Deny by default.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use latchkey_core::model::Tenant;
use latchkey_core::{Action, NewAuditEvent, ObjectType, Outcome, TenantSlug};
use latchkey_store::StoreError;

use crate::error::ApiError;
use crate::extract::RequestFacts;
use crate::state::AppState;

/// The keyed-hash label of admin tokens.
pub const ADMIN_TOKEN_LABEL: &str = "admin-token";
/// Every admin token starts with this.
pub const ADMIN_TOKEN_PREFIX: &str = "lk_admin";
/// The keyed-hash label of session tokens.
pub const SESSION_TOKEN_LABEL: &str = "session-token";
/// Every session token starts with this (the generator adds the `_`).
pub const SESSION_TOKEN_PREFIX: &str = "lk_session";
/// The longest bearer token looked up; longer ones are refused without a lookup.
const MAX_TOKEN_LEN: usize = 200;

/// An authenticated admin token.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who acts: `admin-token:<id>`, or `user:<name>` for a person with the admin role acting
    /// through the web UI.
    actor: String,
    /// The one tenant this token may act on; `None` for a global token.
    pub tenant_id: Option<String>,
    pub facts: RequestFacts,
}

impl Admin {
    /// The actor recorded in audit events.
    pub fn actor(&self) -> String {
        self.actor.clone()
    }

    /// A person acting through the web UI with the rights of a token of their own tenant. The
    /// caller has checked the person's role for what is done with it.
    pub fn person(user: &SignedInUser) -> Admin {
        Admin { actor: user.actor(), tenant_id: Some(user.tenant_id.clone()), facts: user.facts.clone() }
    }

    /// Refuse unless this is a global token.
    pub fn require_global(&self) -> Result<(), ApiError> {
        match self.tenant_id {
            None => Ok(()),
            Some(_) => Err(ApiError::forbidden("this needs a global admin token")),
        }
    }

    /// An audit event by this admin, with the request's facts.
    pub fn event(&self, state: &AppState, action: Action, object_type: ObjectType) -> NewAuditEvent {
        self.facts.event(state.clock().now(), self.actor(), action, object_type)
    }

    /// The tenant named by a path slug, if this token may act on it. A tenant the token may
    /// not see answers exactly like one that does not exist, and the attempt is audited.
    pub async fn tenant(&self, state: &AppState, slug: &str) -> Result<Tenant, ApiError> {
        let slug = TenantSlug::parse(slug).map_err(|_| ApiError::not_found("tenant"))?;
        let tenant = state.tenant_by_slug(slug.as_str()).await.map_err(|e| ApiError::store("tenant", e))?;
        match &self.tenant_id {
            Some(own) if *own != tenant.id => {
                let denied = self
                    .event(state, Action::AccessDenied, ObjectType::Tenant)
                    .tenant(tenant.id.clone())
                    .object(tenant.id.clone())
                    .outcome(Outcome::Denied);
                state.store().append_audit(vec![denied]).await.map_err(|e| ApiError::store("audit", e))?;
                Err(ApiError::not_found("tenant"))
            }
            _ => Ok(tenant),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(facts) = RequestFacts::from_request_parts(parts, state).await;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with(ADMIN_TOKEN_PREFIX) && t.len() <= MAX_TOKEN_LEN)
            .ok_or_else(ApiError::unauthenticated)?;
        let hash = state.keyring().keyed_hash(ADMIN_TOKEN_LABEL, token.as_bytes());
        match state.admin_token(&hash).await {
            Ok(t) => Ok(Admin { actor: format!("admin-token:{}", t.id), tenant_id: t.tenant_id, facts }),
            Err(StoreError::NotFound) => Err(ApiError::unauthenticated()),
            Err(e) => Err(ApiError::store("token", e)),
        }
    }
}

/// A person signed in with a session token.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    pub session_id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub user_name: String,
    pub facts: RequestFacts,
}

impl SignedInUser {
    /// The actor recorded in audit events: `user:<name, lower case>`, the same actor as the
    /// failed sign-ins of that name.
    pub fn actor(&self) -> String {
        user_actor(&self.user_name.to_lowercase())
    }

    /// An audit event by this user in the user's tenant, with the request's facts.
    pub fn event(&self, state: &AppState, action: Action, object_type: ObjectType) -> NewAuditEvent {
        self.facts.event(state.clock().now(), self.actor(), action, object_type).tenant(self.tenant_id.clone())
    }

    /// The tenant named by a path slug, if it is the user's own. Any other tenant answers like
    /// one that does not exist, and the attempt is audited.
    pub async fn tenant(&self, state: &AppState, slug: &str) -> Result<Tenant, ApiError> {
        let slug = TenantSlug::parse(slug).map_err(|_| ApiError::not_found("tenant"))?;
        let tenant = state.tenant_by_slug(slug.as_str()).await.map_err(|e| ApiError::store("tenant", e))?;
        if tenant.id == self.tenant_id {
            return Ok(tenant);
        }
        let denied = self
            .facts
            .event(state.clock().now(), self.actor(), Action::AccessDenied, ObjectType::Tenant)
            .tenant(tenant.id.clone())
            .object(tenant.id.clone())
            .outcome(Outcome::Denied);
        state.store().append_audit(vec![denied]).await.map_err(|e| ApiError::store("audit", e))?;
        Err(ApiError::not_found("tenant"))
    }
}

/// The audit actor of a person by account-name key (also used for failed sign-ins, where the
/// person may not exist).
pub fn user_actor(name_key: &str) -> String {
    format!("user:{name_key}")
}

/// The keyed hash a session token is stored and looked up by.
pub fn session_token_hash(state: &AppState, token: &str) -> [u8; 32] {
    state.keyring().keyed_hash(SESSION_TOKEN_LABEL, token.as_bytes())
}

/// The bearer token of a request, if it has one of a sane length.
fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.len() <= MAX_TOKEN_LEN)
}

/// Whether a bearer token looks like a session token.
fn is_session_token(token: &str) -> bool {
    token.strip_prefix(SESSION_TOKEN_PREFIX).is_some_and(|rest| rest.starts_with('_'))
}

impl FromRequestParts<AppState> for SignedInUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(facts) = RequestFacts::from_request_parts(parts, state).await;
        let token = bearer(parts).filter(|t| is_session_token(t)).ok_or_else(ApiError::unauthenticated)?;
        let hash = session_token_hash(state, token);
        match state.store().session_by_token_hash(&hash, state.clock().now()).await {
            Ok(s) => Ok(SignedInUser {
                session_id: s.id,
                tenant_id: s.tenant_id,
                user_id: s.user_id,
                user_name: s.user_name,
                facts,
            }),
            Err(StoreError::NotFound) => Err(ApiError::unauthenticated()),
            Err(e) => Err(ApiError::store("session", e)),
        }
    }
}

/// Whoever called: an admin token or a person signed in.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin(Admin),
    User(SignedInUser),
}

impl Caller {
    /// An audit event by this caller, with the request's facts (and the user's tenant).
    pub fn event(&self, state: &AppState, action: Action, object_type: ObjectType) -> NewAuditEvent {
        match self {
            Caller::Admin(a) => a.event(state, action, object_type),
            Caller::User(u) => u.event(state, action, object_type),
        }
    }

    /// The tenant named by a path slug, if this caller may act on it (see [`Admin::tenant`]
    /// and [`SignedInUser::tenant`]).
    pub async fn tenant(&self, state: &AppState, slug: &str) -> Result<Tenant, ApiError> {
        match self {
            Caller::Admin(a) => a.tenant(state, slug).await,
            Caller::User(u) => u.tenant(state, slug).await,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(t) if is_session_token(t) => SignedInUser::from_request_parts(parts, state).await.map(Caller::User),
            _ => Admin::from_request_parts(parts, state).await.map(Caller::Admin),
        }
    }
}
