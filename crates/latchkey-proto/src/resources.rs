//! Request and response bodies for tenants, devices, groups, users, accounts, API clients,
//! admin tokens, the audit log and the vault.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A list of items.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Create a tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantCreate {
    /// 1–63 lowercase letters, digits and hyphens.
    pub slug: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Register a device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceCreate {
    /// The device's UUID; generated when absent.
    #[serde(default)]
    pub device_id: Option<String>,
    pub name: String,
    /// e.g. `OU=Workstations,DC=dev1,DC=local`
    #[serde(default)]
    pub container_dn: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
}

/// A device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub device_id: String,
    pub tenant: String,
    pub name: String,
    pub container_dn: Option<String>,
    pub os: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub enrolled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<OffsetDateTime>,
    pub poll_interval_seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The password version the agent last reported as set.
    #[serde(default)]
    pub password_version: Option<i64>,
    /// When a password rotation was last confirmed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_rotated_at: Option<OffsetDateTime>,
    /// Jobs queued for the agent and not finished.
    #[serde(default)]
    pub open_jobs: i64,
    /// Enrolled, and not seen within two poll intervals.
    #[serde(default)]
    pub check_in_overdue: bool,
}

/// Create a group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupCreate {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// What a group member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    Device,
    User,
    Group,
}

/// A group member: a device (by deviceId), a user or a group (by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupMember {
    pub kind: MemberKind,
    pub id: String,
}

/// Create a user of the built-in directory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserCreate {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    DeviceAdmin,
    Support,
    Directory,
    Generic,
}

/// Create an account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountCreate {
    pub kind: AccountKind,
    pub name: String,
    /// Required for `device_admin` and `support` accounts.
    #[serde(default)]
    pub device_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// An account (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub tenant: String,
    pub kind: AccountKind,
    pub name: String,
    pub device_id: Option<String>,
    pub description: Option<String>,
    /// The active secret version, if any.
    pub active_version: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// Where a secret version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretState {
    Pending,
    Active,
    Retired,
}

/// A secret version's facts (never its value).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersionInfo {
    pub account_id: String,
    pub version: i64,
    pub state: SecretState,
    pub has_password: bool,
    pub has_ssh_private_key: bool,
    pub key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// Create an API client for the compatible APIs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiClientCreate {
    pub name: String,
}

/// An API client (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiClient {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// A new API client with its secret, shown once.
// Debug output is redacted; the secret is zeroized when dropped.
#[derive(Clone, Serialize, Deserialize, ToSchema, zeroize::ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct ApiClientCreated {
    #[zeroize(skip)]
    pub client: ApiClient,
    /// Shown once; the server keeps only a keyed hash.
    pub secret: String,
}

impl std::fmt::Debug for ApiClientCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClientCreated").field("client", &self.client).finish_non_exhaustive()
    }
}

/// Create an admin API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminTokenCreate {
    pub name: String,
    /// Limit the token to one tenant (slug); absent means every tenant (global tokens only).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Lifetime in seconds; absent means no expiry.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

/// A new admin token, shown once.
// Debug output is redacted; the token is zeroized when dropped.
#[derive(Clone, Serialize, Deserialize, ToSchema, zeroize::ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct AdminTokenCreated {
    #[zeroize(skip)]
    pub id: String,
    #[zeroize(skip)]
    pub name: String,
    #[zeroize(skip)]
    pub tenant: Option<String>,
    /// Shown once; the server keeps only a keyed hash.
    pub token: String,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[zeroize(skip)]
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for AdminTokenCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokenCreated")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// An audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub tenant: Option<String>,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Hex SHA-256 of this event in the chain.
    pub hash: String,
}

/// The result of checking the audit hash chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerification {
    pub ok: bool,
    /// Events that verified.
    pub checked: u64,
    /// The first bad event, when the chain is broken.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// A key-encryption key (never its bytes).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKey {
    pub id: String,
    pub active: bool,
    /// Envelopes still wrapped by this key: secret versions and grants' temporary passwords.
    pub envelopes: i64,
}

/// The vault's keys and how far a re-wrap has come.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultStatus {
    pub active_key_id: String,
    pub keys: Vec<VaultKey>,
    /// Envelopes (secret versions and grants' temporary passwords) not yet wrapped by the
    /// active key.
    pub remaining: i64,
}

/// One step of a re-wrap.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RewrapProgress {
    pub rewrapped: i64,
    pub remaining: i64,
}

/// Liveness and readiness.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
}

/// Create a one-time enrollment token for a device agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollmentTokenCreate {
    /// Lifetime in seconds (60 to 30 days; default 24 hours).
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

/// A new enrollment token, shown once.
#[derive(Clone, Serialize, Deserialize, ToSchema, zeroize::ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentTokenCreated {
    #[zeroize(skip)]
    pub id: String,
    #[zeroize(skip)]
    pub tenant: String,
    /// Shown once; the server keeps only a keyed hash. Good for one enrollment.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    #[zeroize(skip)]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for EnrollmentTokenCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentTokenCreated")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}
