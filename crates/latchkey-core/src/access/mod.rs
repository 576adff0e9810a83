//! Access targets: who may read which device's password (the Lithnet LAPS model).
//!
//! A tenant keeps an ordered list of [`Target`]s. A target names devices by computer name,
//! by a group the device is a member of (nested), or by a container above the device's DN,
//! and lists its readers (users or groups, nested). [`RuleIndex`] decides a request:
//! Computer targets first, then Group targets, then Container targets; within a kind the
//! first in list order wins, and once a target matches no other is considered. No match,
//! no access.

mod index;

pub use index::{
    Decision, DenyReason, DeviceFacts, GroupEdge, IndexedGroup, MatchVia, Matched, ReaderVia, RuleIndex, UserFacts,
};

use time::OffsetDateTime;

use crate::TimeSpan;
use crate::model::MemberKind;

/// How a target names devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// A computer by name.
    Computer,
    /// Members of a group (nested membership counts).
    Group,
    /// Devices whose DN is below a container (at any depth).
    Container,
}

impl TargetKind {
    /// Every kind, in the order they are considered.
    pub const ALL: [TargetKind; 3] = [TargetKind::Computer, TargetKind::Group, TargetKind::Container];

    /// The name used in Lithnet's config and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Computer => "Computer",
            TargetKind::Group => "Group",
            TargetKind::Container => "Container",
        }
    }

    /// Parse a kind, ignoring case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// What a reader may do on the devices of a matched target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Read the current admin password.
    ReadPassword,
    /// Read earlier versions and the version list.
    ReadHistory,
    /// Request a support account.
    RequestSupportAccount,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 3] = [Operation::ReadPassword, Operation::ReadHistory, Operation::RequestSupportAccount];

    /// The name used in the API and in stored grant lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ReadPassword => "password",
            Operation::ReadHistory => "history",
            Operation::RequestSupportAccount => "support-account",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s.trim())
    }
}

/// The operations a target grants its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grants {
    pub read_password: bool,
    pub read_history: bool,
    pub request_support_account: bool,
}

impl Default for Grants {
    /// Reading the password only, like a Lithnet target.
    fn default() -> Self {
        Self { read_password: true, read_history: false, request_support_account: false }
    }
}

impl Grants {
    /// Whether `op` is granted.
    pub fn allows(self, op: Operation) -> bool {
        match op {
            Operation::ReadPassword => self.read_password,
            Operation::ReadHistory => self.read_history,
            Operation::RequestSupportAccount => self.request_support_account,
        }
    }

    /// The granted operations.
    pub fn operations(self) -> Vec<Operation> {
        Operation::ALL.into_iter().filter(|op| self.allows(*op)).collect()
    }

    /// From a list of operations.
    pub fn from_operations(ops: &[Operation]) -> Self {
        Self {
            read_password: ops.contains(&Operation::ReadPassword),
            read_history: ops.contains(&Operation::ReadHistory),
            request_support_account: ops.contains(&Operation::RequestSupportAccount),
        }
    }

    /// The stored form: operation names joined by commas.
    pub fn to_stored(self) -> String {
        self.operations().iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Parse the stored form.
    pub fn from_stored(s: &str) -> Option<Self> {
        let ops: Option<Vec<Operation>> = s.split(',').filter(|p| !p.trim().is_empty()).map(Operation::parse).collect();
        ops.map(|ops| Self::from_operations(&ops))
    }
}

/// Who is told about reads through a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub email_on_success: bool,
    pub email_on_failure: bool,
    /// Validated e-mail addresses.
    pub email_addresses: Vec<String>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self { email_on_success: true, email_on_failure: true, email_addresses: Vec::new() }
    }
}

/// A reader of a target: as written, and the user or group it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub principal: String,
    pub kind: MemberKind,
    pub id: String,
}

/// An access target.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub tenant_id: String,
    /// Place in the tenant's list, from 1.
    pub position: i64,
    pub kind: TargetKind,
    /// Computer name, group name or container DN.
    pub name: String,
    /// How long a password stays valid after it was read; the agent then rotates it.
    pub expire_after: Option<TimeSpan>,
    pub grants: Grants,
    pub audit: AuditSettings,
    pub enabled: bool,
    pub description: Option<String>,
    pub readers: Vec<Reader>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}
