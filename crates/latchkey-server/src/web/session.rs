//! Who is using the web UI: the session cookie, its idle and absolute timeouts, the person's
//! roles and the form token that goes with the session.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use latchkey_core::model::Tenant;
use latchkey_core::{Action, ObjectType, Role};
use latchkey_store::{SignInMethod, StoreError};
use time::OffsetDateTime;

use crate::auth::{Admin, SignedInUser, session_token_hash};
use crate::extract::RequestFacts;
use crate::state::AppState;
use crate::web::error::WebError;

/// The session cookie without TLS.
pub const COOKIE: &str = "lk_session";
/// The session cookie with TLS (the `__Host-` prefix pins it to this origin, Secure, path /).
pub const COOKIE_TLS: &str = "__Host-lk_session";
/// A session's last use is written at most this often.
const TOUCH_EVERY: time::Duration = time::Duration::seconds(60);

/// The session cookie's name for this server.
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config().tls.is_some() { COOKIE_TLS } else { COOKIE }
}

/// The cookie that carries a session token: HttpOnly, SameSite=Strict, Secure with TLS.
pub fn session_cookie(state: &AppState, token: String) -> Cookie<'static> {
    let mut c = Cookie::new(cookie_name(state), token);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_path("/");
    c.set_secure(state.config().tls.is_some());
    c
}

/// The cookie that removes the session cookie.
pub fn cleared_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = session_cookie(state, String::new());
    c.make_removal();
    c
}

/// A person signed in to the web UI.
#[derive(Debug, Clone)]
pub struct WebUser {
    /// The session as the API handlers know it.
    pub user: SignedInUser,
    pub tenant: Tenant,
    pub roles: Vec<Role>,
    /// The token every form of this session carries.
    pub csrf: String,
    pub signed_in_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub method: SignInMethod,
}

impl WebUser {
    /// Whether the person holds a role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Refuse unless the person holds `role`.
    pub fn require(&self, role: Role) -> Result<(), WebError> {
        if self.has(role) { Ok(()) } else { Err(WebError::forbidden(format!("this page needs the {role} role"))) }
    }

    /// The rights of an admin token of the person's tenant, acting as the person, once the
    /// person is known to hold `role`.
    pub fn acting_as(&self, role: Role) -> Result<Admin, WebError> {
        self.require(role)?;
        Ok(Admin::person(&self.user))
    }

    /// The person's display name, or user name.
    pub fn name(&self) -> &str {
        &self.user.user_name
    }
}

/// The form token of a session token: a keyed hash only the server can compute.
pub fn csrf_token(state: &AppState, session_token: &str) -> String {
    hex::encode(state.keyring().keyed_hash("web-csrf", session_token.as_bytes()))
}

/// Why a request has no usable session.
#[derive(Debug)]
pub enum NoSession {
    /// Not signed in (or the cookie names no live session).
    Missing { next: String },
    /// The session ended after being idle.
    Idle { next: String, cookie: Cookie<'static> },
    /// The cookie names a session that has ended (its lifetime is over, or it was revoked).
    Ended { next: String, cookie: Cookie<'static> },
    /// The store failed.
    Failed(WebError),
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            NoSession::Missing { next } => Redirect::to(&sign_in_url(&next, None)).into_response(),
            NoSession::Idle { next, cookie } => {
                (CookieJar::new().add(cookie), Redirect::to(&sign_in_url(&next, Some("idle")))).into_response()
            }
            NoSession::Ended { next, cookie } => {
                (CookieJar::new().add(cookie), Redirect::to(&sign_in_url(&next, Some("expired")))).into_response()
            }
            NoSession::Failed(e) => e.into_response(),
        }
    }
}

/// The sign-in page, coming back to `next` (a path of this site) afterwards.
pub fn sign_in_url(next: &str, why: Option<&str>) -> String {
    let mut url = String::from("/sign-in?");
    let mut q: Vec<(&str, String)> = Vec::with_capacity(2);
    if is_local_path(next) && next != "/" {
        q.push(("next", next.to_owned()));
    }
    if let Some(why) = why {
        q.push(("ended", why.to_owned()));
    }
    url.push_str(&serde_urlencoded::to_string(&q).unwrap_or_default());
    url
}

/// Whether `next` is a path on this site (never another origin: `//host` and `/\host` are).
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && next.len() <= 512
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = NoSession;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let next = match parts.extensions.get::<OriginalUri>() {
            Some(uri) if parts.method == axum::http::Method::GET => {
                uri.0.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into())
            }
            _ => "/".to_owned(),
        };
        let Ok(facts) = RequestFacts::from_request_parts(parts, state).await;
        let Ok(jar) = CookieJar::from_request_parts(parts, state).await;
        let token = jar
            .get(cookie_name(state))
            .map(|c| c.value().to_owned())
            .filter(|t| t.starts_with("lk_session_") && t.len() <= 200)
            .ok_or_else(|| NoSession::Missing { next: next.clone() })?;
        let now = state.clock().now();
        let hash = session_token_hash(state, &token);
        let session = match state.store().session_by_token_hash(&hash, now).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Err(NoSession::Ended { next, cookie: cleared_cookie(state) }),
            Err(e) => return Err(NoSession::Failed(WebError::from_store("session", e))),
        };
        let user = SignedInUser {
            session_id: session.id.clone(),
            tenant_id: session.tenant_id.clone(),
            user_id: session.user_id.clone(),
            user_name: session.user_name.clone(),
            facts,
        };
        let last = session.last_seen_at.unwrap_or(session.created_at);
        let idle = time::Duration::try_from(state.config().web.idle_timeout).unwrap_or(time::Duration::MINUTE * 15);
        if now - last > idle {
            let event = user
                .event(state, Action::SignOut, ObjectType::Session)
                .object(session.id.clone())
                .details(&serde_json::json!({ "reason": "idle" }));
            match state.store().revoke_session(&session.id, now, event).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(NoSession::Failed(WebError::from_store("session", e))),
            }
            return Err(NoSession::Idle { next, cookie: cleared_cookie(state) });
        }
        if now - last >= TOUCH_EVERY {
            state
                .store()
                .touch_session(&session.id, now)
                .await
                .map_err(|e| NoSession::Failed(WebError::from_store("session", e)))?;
        }
        let tenant = state
            .store()
            .tenant_by_id(&session.tenant_id)
            .await
            .map_err(|e| NoSession::Failed(WebError::from_store("tenant", e)))?;
        let roles = state
            .store()
            .user_roles(&session.tenant_id, &session.user_id)
            .await
            .map_err(|e| NoSession::Failed(WebError::from_store("user", e)))?;
        Ok(WebUser {
            csrf: csrf_token(state, &token),
            user,
            tenant,
            roles,
            signed_in_at: session.created_at,
            expires_at: session.expires_at,
            method: session.method,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        assert!(is_local_path("/devices?q=a"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("/\\evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
        assert_eq!(sign_in_url("//evil.example/", None), "/sign-in?");
        assert_eq!(sign_in_url("/devices?q=a b", Some("idle")), "/sign-in?next=%2Fdevices%3Fq%3Da+b&ended=idle");
    }
}
