//! The records the store keeps. Ids are UUID strings; times are UTC.

use time::OffsetDateTime;

/// An MSP's customer, or the one company of a single-company install.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// A managed device. The agent fields are filled in by enrollment and check-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub container_dn: Option<String>,
    pub os: Option<String>,
    pub agent_public_key: Option<String>,
    pub enrolled_at: Option<OffsetDateTime>,
    pub last_seen_at: Option<OffsetDateTime>,
    /// The poll interval last given to the agent.
    pub poll_interval_secs: i64,
    pub created_at: OffsetDateTime,
    /// The password version the agent last reported as set.
    pub reported_version: Option<i64>,
    /// When a password rotation was last confirmed.
    pub last_rotated_at: Option<OffsetDateTime>,
    /// Jobs queued for the agent and not finished.
    pub open_jobs: i64,
}

/// A group of devices, users and other groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
}

/// What a group member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberKind {
    Device,
    User,
    Group,
}

impl MemberKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Device => "device",
            MemberKind::User => "user",
            MemberKind::Group => "group",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(MemberKind::Device),
            "user" => Some(MemberKind::User),
            "group" => Some(MemberKind::Group),
            _ => None,
        }
    }
}

/// One membership of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupMember {
    pub kind: MemberKind,
    pub id: String,
}

/// A person.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub created_at: OffsetDateTime,
}

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// The LAPS-managed local administrator of a device.
    DeviceAdmin,
    /// A temporary support account on a device.
    Support,
    /// An LDAP / Active Directory account the server rotates.
    Directory,
    /// A stored password and/or SSH key.
    Generic,
}

impl AccountKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::DeviceAdmin => "device_admin",
            AccountKind::Support => "support",
            AccountKind::Directory => "directory",
            AccountKind::Generic => "generic",
        }
    }

    /// Parse a stored or wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device_admin" => Some(AccountKind::DeviceAdmin),
            "support" => Some(AccountKind::Support),
            "directory" => Some(AccountKind::Directory),
            "generic" => Some(AccountKind::Generic),
            _ => None,
        }
    }

    /// Whether accounts of this kind belong to a device.
    pub fn needs_device(self) -> bool {
        matches!(self, AccountKind::DeviceAdmin | AccountKind::Support)
    }
}

/// A privileged credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub tenant_id: String,
    pub kind: AccountKind,
    pub name: String,
    pub device_id: Option<String>,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
    /// When the account stops working (support accounts).
    pub expires_at: Option<OffsetDateTime>,
}

/// Where a secret version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretState {
    /// Stored, not yet confirmed set on the device.
    Pending,
    /// The current secret.
    Active,
    /// History.
    Retired,
}

impl SecretState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretState::Pending => "pending",
            SecretState::Active => "active",
            SecretState::Retired => "retired",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(SecretState::Pending),
            "active" => Some(SecretState::Active),
            "retired" => Some(SecretState::Retired),
            _ => None,
        }
    }
}

/// Which encrypted field of a secret version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    Password,
    SshPrivateKey,
}

impl SecretField {
    /// The name bound into the ciphertext's associated data.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretField::Password => "password",
            SecretField::SshPrivateKey => "ssh_private_key",
        }
    }
}

/// One version of an account's secret: envelopes only, never plaintext.
#[derive(Clone, PartialEq)]
pub struct SecretVersion {
    pub tenant_id: String,
    pub account_id: String,
    pub version: i64,
    pub state: SecretState,
    pub password_envelope: Option<Vec<u8>>,
    pub ssh_key_envelope: Option<Vec<u8>>,
    pub key_id: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersion")
            .field("account_id", &self.account_id)
            .field("version", &self.version)
            .field("state", &self.state)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A machine client of the compatible APIs. Its secret is stored as a keyed hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiClient {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
}

/// An admin API token (bearer). Tenant-scoped, or global when `tenant_id` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminToken {
    pub id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}
