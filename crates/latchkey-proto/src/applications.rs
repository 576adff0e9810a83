//! Native `/api/v1` bodies for the application credential API: applications, account
//! policies, permissions on accounts, approval requests and account SSH keys.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Create an application.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationCreate {
    pub name: String,
}

/// An application (never its password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// What the application sends as `username` to `/idp/connect/token`: the name in the
    /// `default` tenant, `<tenant>\<name>` elsewhere.
    pub username: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A new application and its password, shown once.
#[derive(Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCreated {
    #[zeroize(skip)]
    pub application: Application,
    pub password: String,
}

impl std::fmt::Debug for ApplicationCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationCreated").field("application", &self.application).finish_non_exhaustive()
    }
}

/// Create or replace an account policy. Missing flags are off.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountPolicySpec {
    pub name: String,
    #[serde(default)]
    pub require_reason: bool,
    #[serde(default)]
    pub require_confirmation: bool,
    /// How long an approval allows views (.NET TimeSpan, e.g. `00:07:00`; 1 minute to 7 days).
    /// Required with `requireConfirmation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_timeout: Option<String>,
    #[serde(default)]
    pub reset_after_showing: bool,
    /// Minutes after a view when the credentials are reset (1 to 10080). Required with
    /// `resetAfterShowing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after_minutes: Option<i64>,
    #[serde(default)]
    pub encrypt_key_before_showing: bool,
    #[serde(default)]
    pub can_set_if_not_set: bool,
}

/// An account policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPolicy {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub require_reason: bool,
    pub require_confirmation: bool,
    /// .NET TimeSpan.
    pub confirmation_timeout: String,
    pub reset_after_showing: bool,
    pub reset_after_minutes: i64,
    pub encrypt_key_before_showing: bool,
    pub can_set_if_not_set: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Attach a policy to an account (by id or name), or detach it with `null`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountPolicyAttach {
    pub policy: Option<String>,
}

/// Who a permission is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Application,
    User,
}

/// Grant (or change) a permission on an account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionSet {
    pub principal_kind: PrincipalKind,
    /// The application's or user's id or name.
    pub principal: String,
    #[serde(default)]
    pub view: bool,
    #[serde(default)]
    pub change: bool,
}

/// A permission on an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPermission {
    pub account_id: String,
    pub principal_kind: PrincipalKind,
    pub principal_id: String,
    pub principal_name: String,
    pub view: bool,
    pub change: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Where an approval request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Expired,
    Used,
}

/// A request to view an account whose policy requires confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub id: String,
    pub tenant: String,
    pub account_id: String,
    pub account_name: String,
    pub requester_kind: String,
    pub requester_id: String,
    pub requester_name: String,
    /// The person the requester acts for (the view's `UserId`); never an approver.
    pub on_behalf_of: String,
    pub reason: Option<String>,
    pub state: ApprovalState,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub decided_by: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<OffsetDateTime>,
    pub comment: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<OffsetDateTime>,
    pub views: i64,
}

/// Approve or deny, with an optional comment for the requester.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApprovalDecision {
    #[serde(default)]
    pub comment: Option<String>,
}

/// The algorithm of a generated SSH key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SshKeyAlgorithm {
    Ed25519,
    Rsa3072,
}

/// Set an account's SSH key: generate one, or import an OpenSSH private key (not
/// passphrase-protected). The account's password, if any, is kept.
#[derive(Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshKeySet {
    #[serde(default)]
    #[zeroize(skip)]
    pub generate: Option<SshKeyAlgorithm>,
    #[serde(default)]
    pub private_key: Option<String>,
}

impl std::fmt::Debug for SshKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKeySet").field("generate", &self.generate).finish_non_exhaustive()
    }
}

/// The stored key's public facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SshKeyStored {
    pub account_id: String,
    pub version: i64,
    /// `ssh-ed25519` or `ssh-rsa`.
    pub algorithm: String,
    /// The OpenSSH public key line.
    pub public_key: String,
    /// SHA-256 fingerprint.
    pub fingerprint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_and_unknown_fields_are_refused() {
        let s: SshKeySet = serde_json::from_str(r#"{"privateKey":"-----BEGIN key-secret"}"#).unwrap();
        assert!(!format!("{s:?}").contains("key-secret"));
        assert!(serde_json::from_str::<SshKeySet>(r#"{"generate":"dsa"}"#).is_err());
        assert!(
            serde_json::from_str::<PermissionSet>(r#"{"principalKind":"application","principal":"a","x":1}"#).is_err()
        );
        let spec: AccountPolicySpec = serde_json::from_str(r#"{"name":"p"}"#).unwrap();
        assert!(!spec.require_reason && spec.confirmation_timeout.is_none());
    }
}
