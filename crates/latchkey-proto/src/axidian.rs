//! The bodies of the Axidian Privilege AAPM-compatible API: the OAuth2 token endpoint
//! (`/idp/connect/token`, RFC 6749 field names), permitted accounts and the credential view
//! (`/core/…`, PascalCase field names as the peer writes them), and the errors of both.
//!
//! The bodies that carry a credential zeroize it when dropped and redact it from Debug output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The token endpoint's answer.
#[derive(Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
pub struct AxidianToken {
    pub access_token: String,
    /// Seconds.
    #[zeroize(skip)]
    pub expires_in: i64,
    /// Always `Bearer`.
    #[zeroize(skip)]
    pub token_type: String,
    /// Always `pam-api`.
    #[zeroize(skip)]
    pub scope: String,
}

impl std::fmt::Debug for AxidianToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AxidianToken").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// An RFC 6749 §5.2 error of the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type` or `invalid_scope`.
    pub error: String,
    pub error_description: String,
}

/// `GET /core/users/permitted-accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AxidianPermittedAccounts {
    pub accounts: Vec<AxidianPermittedAccount>,
}

/// One permitted account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AxidianPermittedAccount {
    pub account: AxidianAccount,
    pub policy_settings: AxidianPolicySettings,
    pub permission_settings: AxidianPermissionSettings,
}

/// An account's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AxidianAccount {
    pub id: String,
    pub display_name: String,
    /// Whether the account can hold an SSH key (generic accounts).
    pub is_key_supported: bool,
    /// When the scheduled reset is due (RFC 3339, UTC), or null.
    pub next_credentials_reset: Option<String>,
    pub are_credentials_resetting_now: bool,
    pub has_password: bool,
    pub has_key: bool,
}

/// The account's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AxidianPolicySettings {
    pub require_credentials_viewing_reason: bool,
    pub is_credentials_viewing_confirmation_required: bool,
    /// .NET TimeSpan, e.g. `00:07:00`.
    pub credentials_viewing_confirmation_timeout: String,
    pub encrypt_key_before_showing: bool,
    pub is_user_can_set_account_credentials_if_not_set: bool,
}

/// What the caller may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct AxidianPermissionSettings {
    pub is_credentials_view_allowed: bool,
    pub is_credentials_change_allowed: bool,
}

/// `POST /core/accounts/{id}/credentials-view`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AxidianViewRequest {
    /// The person the application acts for (a GUID); the all-zero GUID when none.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Why; required when the account's policy says so.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The credentials of an account.
#[derive(Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "PascalCase")]
pub struct AxidianCredentials {
    pub password: Option<String>,
    /// An OpenSSH private key (encrypted with `KeyPassphrase` when the policy says so).
    pub key: Option<String>,
    pub key_passphrase: Option<String>,
    /// `<DisplayName>_<yyyyMMdd_HHmmss>Z.pem`.
    #[zeroize(skip)]
    pub key_file_name: Option<String>,
    #[zeroize(skip)]
    pub reset_credentials_after_showing: bool,
    #[zeroize(skip)]
    pub reset_credentials_after_showing_after_min: Option<i64>,
}

impl std::fmt::Debug for AxidianCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AxidianCredentials").field("key_file_name", &self.key_file_name).finish_non_exhaustive()
    }
}

/// `PUT /core/accounts/{id}/credentials`: set a password and/or an OpenSSH private key.
#[derive(Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AxidianCredentialsSet {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    /// The person the application acts for (a GUID).
    #[serde(default)]
    #[zeroize(skip)]
    pub user_id: Option<String>,
}

impl std::fmt::Debug for AxidianCredentialsSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AxidianCredentialsSet { .. }")
    }
}

/// An error of the `/core/…` routes: the ASP.NET Core problem shape, with what the caller
/// needs to go on (the approval request to wait for, the fields to fix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AxidianProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `00-<32 hex>-<16 hex>-00`.
    #[serde(rename = "traceId")]
    pub trace_id: String,
    /// The approval request the view waits for (403 when confirmation is required).
    #[serde(rename = "approvalRequestId", default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
}

impl AxidianProblem {
    /// A problem with a status, its RFC 7231 section and title, and a detail.
    pub fn new(status: u16, detail: impl Into<String>, trace_id: String) -> Self {
        let (section, title) = match status {
            400 => ("6.5.1", "Bad Request"),
            401 => ("3.1", "Unauthorized"),
            403 => ("6.5.3", "Forbidden"),
            404 => ("6.5.4", "Not Found"),
            409 => ("6.5.8", "Conflict"),
            415 => ("6.5.13", "Unsupported Media Type"),
            _ => ("6.6.1", "Internal Server Error"),
        };
        let kind = if status == 401 {
            "https://tools.ietf.org/html/rfc7235#section-3.1".to_owned()
        } else {
            format!("https://tools.ietf.org/html/rfc7231#section-{section}")
        };
        Self {
            kind,
            title: title.into(),
            status,
            detail: Some(detail.into()),
            trace_id,
            approval_request_id: None,
            errors: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_the_peers() {
        let v = serde_json::to_value(AxidianPermittedAccounts {
            accounts: vec![AxidianPermittedAccount {
                account: AxidianAccount {
                    id: "i".into(),
                    display_name: "d".into(),
                    is_key_supported: true,
                    next_credentials_reset: None,
                    are_credentials_resetting_now: false,
                    has_password: true,
                    has_key: false,
                },
                policy_settings: AxidianPolicySettings {
                    require_credentials_viewing_reason: true,
                    is_credentials_viewing_confirmation_required: false,
                    credentials_viewing_confirmation_timeout: "00:07:00".into(),
                    encrypt_key_before_showing: false,
                    is_user_can_set_account_credentials_if_not_set: false,
                },
                permission_settings: AxidianPermissionSettings {
                    is_credentials_view_allowed: true,
                    is_credentials_change_allowed: false,
                },
            }],
        })
        .unwrap();
        let account = &v["Accounts"][0];
        assert_eq!(account["Account"]["DisplayName"], "d");
        assert_eq!(account["PolicySettings"]["CredentialsViewingConfirmationTimeout"], "00:07:00");
        assert_eq!(account["PermissionSettings"]["IsCredentialsViewAllowed"], true);
        let req: AxidianViewRequest = serde_json::from_str(r#"{"UserId":"u","Reason":"r"}"#).unwrap();
        assert_eq!(req.reason.as_deref(), Some("r"));
        assert!(serde_json::from_str::<AxidianViewRequest>(r#"{"reason":"r"}"#).is_err());
    }

    #[test]
    fn debug_never_shows_credentials() {
        let c = AxidianCredentials {
            password: Some("hunter2-secret".into()),
            key: None,
            key_passphrase: Some("pass-secret".into()),
            key_file_name: None,
            reset_credentials_after_showing: false,
            reset_credentials_after_showing_after_min: None,
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("pass-secret"), "{d}");
        let t = AxidianToken {
            access_token: "tok-secret".into(),
            expires_in: 60,
            token_type: "Bearer".into(),
            scope: "pam-api".into(),
        };
        assert!(!format!("{t:?}").contains("tok-secret"));
    }
}
