//! The bodies that carry secret values. [`RevealedSecret`] is the one type that serializes a
//! secret; it zeroizes its fields when dropped and its Debug output is redacted.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Set a new secret version on an account. At least one of the two fields is required.
#[derive(Deserialize, Serialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSetRequest {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub ssh_private_key: Option<String>,
    /// When the secret should be rotated (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[zeroize(skip)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SecretSetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSetRequest { .. }")
    }
}

/// Read an account's current secret. The reason (and ticket) go into the audit log.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretReadRequest {
    pub reason: String,
    #[serde(default)]
    pub ticket: Option<String>,
}

/// A revealed secret: the only body that carries secret values out of the server.
#[derive(Deserialize, Serialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct RevealedSecret {
    #[zeroize(skip)]
    pub account_id: String,
    #[zeroize(skip)]
    pub account_name: String,
    #[zeroize(skip)]
    pub version: i64,
    pub password: Option<String>,
    pub ssh_private_key: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[zeroize(skip)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    /// For a device's admin password with an expiry: when the agent is expected to rotate it
    /// (its first check-in after the expiry).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[zeroize(skip)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotation_expected_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for RevealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedSecret")
            .field("account_id", &self.account_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_values() {
        let r = RevealedSecret {
            account_id: "a".into(),
            account_name: "n".into(),
            version: 1,
            password: Some("hunter2-secret".into()),
            ssh_private_key: None,
            expires_at: None,
            rotation_expected_at: None,
        };
        assert!(!format!("{r:?}").contains("hunter2"));
        let s: SecretSetRequest = serde_json::from_str(r#"{"password":"hunter2-secret"}"#).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<SecretReadRequest>(r#"{"reason":"x","extra":1}"#).is_err());
        assert!(serde_json::from_str::<SecretReadRequest>(r#"{}"#).is_err());
    }
}
