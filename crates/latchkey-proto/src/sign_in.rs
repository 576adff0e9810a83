//! People signing in: the sign-in request and its session, the signed-in user, and an admin
//! setting a local user's password.
//!
//! The bodies that carry a password or a session token zeroize it when dropped and redact it
//! from Debug output.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Sign in with a tenant, a user name and a password.
#[derive(Deserialize, Serialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInRequest {
    /// The tenant's slug.
    #[zeroize(skip)]
    pub tenant: String,
    /// `DOMAIN\name`, `name@upn.suffix` or `name`.
    #[zeroize(skip)]
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRequest")
            .field("tenant", &self.tenant)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionUser {
    pub id: String,
    /// The tenant's slug.
    pub tenant: String,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
}

/// A new session: the bearer token (shown once), when it expires and who it is for.
#[derive(Deserialize, Serialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct SignInResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    #[zeroize(skip)]
    pub expires_at: OffsetDateTime,
    #[zeroize(skip)]
    pub user: SessionUser,
}

impl std::fmt::Debug for SignInResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInResponse")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The caller's own session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub user: SessionUser,
    /// `local` or `ldap`.
    pub method: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub signed_in_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// Set a local user's password (12 to 1024 characters).
#[derive(Deserialize, Serialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordSetRequest {
    pub password: String,
}

impl std::fmt::Debug for PasswordSetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordSetRequest { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let r = SignInRequest { tenant: "t".into(), username: "alice".into(), password: "hunter2-secret".into() };
        assert!(!format!("{r:?}").contains("hunter2"));
        let p = PasswordSetRequest { password: "hunter2-secret".into() };
        assert!(!format!("{p:?}").contains("hunter2"));
        let s = SignInResponse {
            token: "lk_session_secret".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            user: SessionUser {
                id: "u".into(),
                tenant: "t".into(),
                name: "alice".into(),
                display_name: None,
                email: None,
            },
        };
        assert!(!format!("{s:?}").contains("lk_session_secret"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r = serde_json::from_str::<SignInRequest>(r#"{"tenant":"t","username":"a","password":"p","x":1}"#);
        assert!(r.is_err());
        let r = serde_json::from_str::<PasswordSetRequest>(r#"{"password":"p","x":1}"#);
        assert!(r.is_err());
    }
}

/// The roles a person holds in their tenant: `admin`, `auditor`, `approver`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRoles {
    pub roles: Vec<String>,
}
