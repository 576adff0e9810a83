//! Admin API tokens: the bearer extractor and tenant scoping. Deny by default.

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

/// An authenticated admin token.
#[derive(Debug, Clone)]
pub struct Admin {
    pub token_id: String,
    /// The one tenant this token may act on; `None` for a global token.
    pub tenant_id: Option<String>,
    pub facts: RequestFacts,
}

impl Admin {
    /// The actor recorded in audit events.
    pub fn actor(&self) -> String {
        format!("admin-token:{}", self.token_id)
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
            .filter(|t| t.starts_with(ADMIN_TOKEN_PREFIX) && t.len() <= 200)
            .ok_or_else(ApiError::unauthenticated)?;
        let hash = state.keyring().keyed_hash(ADMIN_TOKEN_LABEL, token.as_bytes());
        match state.admin_token(&hash).await {
            Ok(t) => Ok(Admin { token_id: t.id, tenant_id: t.tenant_id, facts }),
            Err(StoreError::NotFound) => Err(ApiError::unauthenticated()),
            Err(e) => Err(ApiError::store("token", e)),
        }
    }
}
