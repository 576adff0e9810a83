//! Typed audit events and their hash chain.
//!
//! Every event stores the hash of the one before it; the store also keeps the chain head (last
//! sequence number and hash) in the same transaction, so an edited, deleted or reordered event
//! and a truncated tail are all detected by [`ChainVerifier`]. Events never hold a secret value.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The hash before the first event.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// What happened. Stored as its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    TenantCreate,
    DeviceCreate,
    DeviceDelete,
    GroupCreate,
    GroupMemberAdd,
    GroupMemberRemove,
    UserCreate,
    AccountCreate,
    SecretSet,
    SecretRead,
    ApiClientCreate,
    AdminTokenCreate,
    AccessDenied,
    VaultKeyAdd,
    VaultRewrap,
    VaultKeyRetire,
    EnrollmentTokenCreate,
    DeviceEnroll,
    RotationRequest,
    RotationPending,
    RotationConfirm,
    RotationFail,
    RotationPolicySet,
    SupportAccountRequest,
    SupportAccountCreate,
    SupportAccountRemove,
    SupportAccountFail,
    TargetCreate,
    TargetUpdate,
    TargetMove,
    TargetDelete,
    TargetImport,
    DirectorySync,
    UserPasswordSet,
    /// A person's roles were set.
    UserRolesSet,
    SignIn,
    SignOut,
    UserDelete,
    GroupDelete,
    JitRequest,
    JitApprove,
    JitDeny,
    JitActivate,
    JitRevoke,
    JitRevoked,
    JitExtend,
    JitStepFail,
    JitOverdue,
    JitPasswordRecover,
    TicketCreate,
    TicketClose,
    TicketComment,
    LocalAdminGrant,
    LocalAdminRevoke,
    LocalAdminFail,
    ApplicationCreate,
    ApplicationUpdate,
    ApplicationDelete,
    TokenIssue,
    AccountPermissionSet,
    AccountPermissionRemove,
    AccountPolicySet,
    AccountPolicyDelete,
    CredentialsList,
    CredentialsView,
    CredentialsSet,
    CredentialsReset,
    ApprovalRequest,
    ApprovalApprove,
    ApprovalDeny,
}

impl Action {
    /// Every action, for parsing and documentation.
    pub const ALL: [Action; 70] = [
        Action::TenantCreate,
        Action::DeviceCreate,
        Action::DeviceDelete,
        Action::GroupCreate,
        Action::GroupMemberAdd,
        Action::GroupMemberRemove,
        Action::UserCreate,
        Action::AccountCreate,
        Action::SecretSet,
        Action::SecretRead,
        Action::ApiClientCreate,
        Action::AdminTokenCreate,
        Action::AccessDenied,
        Action::VaultKeyAdd,
        Action::VaultRewrap,
        Action::VaultKeyRetire,
        Action::EnrollmentTokenCreate,
        Action::DeviceEnroll,
        Action::RotationRequest,
        Action::RotationPending,
        Action::RotationConfirm,
        Action::RotationFail,
        Action::RotationPolicySet,
        Action::SupportAccountRequest,
        Action::SupportAccountCreate,
        Action::SupportAccountRemove,
        Action::SupportAccountFail,
        Action::TargetCreate,
        Action::TargetUpdate,
        Action::TargetMove,
        Action::TargetDelete,
        Action::TargetImport,
        Action::DirectorySync,
        Action::UserPasswordSet,
        Action::UserRolesSet,
        Action::SignIn,
        Action::SignOut,
        Action::UserDelete,
        Action::GroupDelete,
        Action::JitRequest,
        Action::JitApprove,
        Action::JitDeny,
        Action::JitActivate,
        Action::JitRevoke,
        Action::JitRevoked,
        Action::JitExtend,
        Action::JitStepFail,
        Action::JitOverdue,
        Action::JitPasswordRecover,
        Action::TicketCreate,
        Action::TicketClose,
        Action::TicketComment,
        Action::LocalAdminGrant,
        Action::LocalAdminRevoke,
        Action::LocalAdminFail,
        Action::ApplicationCreate,
        Action::ApplicationUpdate,
        Action::ApplicationDelete,
        Action::TokenIssue,
        Action::AccountPermissionSet,
        Action::AccountPermissionRemove,
        Action::AccountPolicySet,
        Action::AccountPolicyDelete,
        Action::CredentialsList,
        Action::CredentialsView,
        Action::CredentialsSet,
        Action::CredentialsReset,
        Action::ApprovalRequest,
        Action::ApprovalApprove,
        Action::ApprovalDeny,
    ];

    /// The dotted name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::TenantCreate => "tenant.create",
            Action::DeviceCreate => "device.create",
            Action::DeviceDelete => "device.delete",
            Action::GroupCreate => "group.create",
            Action::GroupMemberAdd => "group.member.add",
            Action::GroupMemberRemove => "group.member.remove",
            Action::UserCreate => "user.create",
            Action::AccountCreate => "account.create",
            Action::SecretSet => "secret.set",
            Action::SecretRead => "secret.read",
            Action::ApiClientCreate => "api_client.create",
            Action::AdminTokenCreate => "admin_token.create",
            Action::AccessDenied => "access.denied",
            Action::VaultKeyAdd => "vault.key.add",
            Action::VaultRewrap => "vault.rewrap",
            Action::VaultKeyRetire => "vault.key.retire",
            Action::EnrollmentTokenCreate => "enrollment_token.create",
            Action::DeviceEnroll => "device.enroll",
            Action::RotationRequest => "rotation.request",
            Action::RotationPending => "rotation.pending",
            Action::RotationConfirm => "rotation.confirm",
            Action::RotationFail => "rotation.fail",
            Action::RotationPolicySet => "rotation_policy.set",
            Action::SupportAccountRequest => "support_account.request",
            Action::SupportAccountCreate => "support_account.create",
            Action::SupportAccountRemove => "support_account.remove",
            Action::SupportAccountFail => "support_account.fail",
            Action::TargetCreate => "target.create",
            Action::TargetUpdate => "target.update",
            Action::TargetMove => "target.move",
            Action::TargetDelete => "target.delete",
            Action::TargetImport => "target.import",
            Action::DirectorySync => "directory.sync",
            Action::UserPasswordSet => "user.password.set",
            Action::UserRolesSet => "user.roles.set",
            Action::SignIn => "sign_in",
            Action::SignOut => "sign_out",
            Action::UserDelete => "user.delete",
            Action::GroupDelete => "group.delete",
            Action::JitRequest => "jit.request",
            Action::JitApprove => "jit.approve",
            Action::JitDeny => "jit.deny",
            Action::JitActivate => "jit.activate",
            Action::JitRevoke => "jit.revoke",
            Action::JitRevoked => "jit.revoked",
            Action::JitExtend => "jit.extend",
            Action::JitStepFail => "jit.step.fail",
            Action::JitOverdue => "jit.overdue",
            Action::JitPasswordRecover => "jit.password.recover",
            Action::TicketCreate => "ticket.create",
            Action::TicketClose => "ticket.close",
            Action::TicketComment => "ticket.comment",
            Action::LocalAdminGrant => "local_admin.grant",
            Action::LocalAdminRevoke => "local_admin.revoke",
            Action::LocalAdminFail => "local_admin.fail",
            Action::ApplicationCreate => "application.create",
            Action::ApplicationUpdate => "application.update",
            Action::ApplicationDelete => "application.delete",
            Action::TokenIssue => "token.issue",
            Action::AccountPermissionSet => "account.permission.set",
            Action::AccountPermissionRemove => "account.permission.remove",
            Action::AccountPolicySet => "account_policy.set",
            Action::AccountPolicyDelete => "account_policy.delete",
            Action::CredentialsList => "credentials.list",
            Action::CredentialsView => "credentials.view",
            Action::CredentialsSet => "credentials.set",
            Action::CredentialsReset => "credentials.reset",
            Action::ApprovalRequest => "approval.request",
            Action::ApprovalApprove => "approval.approve",
            Action::ApprovalDeny => "approval.deny",
        }
    }

    /// Parse a dotted name.
    pub fn parse(s: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    Tenant,
    Device,
    Group,
    User,
    Account,
    ApiClient,
    AdminToken,
    Vault,
    EnrollmentToken,
    RotationPolicy,
    DeviceJob,
    Target,
    Directory,
    Session,
    JitGrant,
    Ticket,
    Application,
    AccountPolicy,
    Approval,
}

impl ObjectType {
    const ALL: [ObjectType; 19] = [
        ObjectType::Tenant,
        ObjectType::Device,
        ObjectType::Group,
        ObjectType::User,
        ObjectType::Account,
        ObjectType::ApiClient,
        ObjectType::AdminToken,
        ObjectType::Vault,
        ObjectType::EnrollmentToken,
        ObjectType::RotationPolicy,
        ObjectType::DeviceJob,
        ObjectType::Target,
        ObjectType::Directory,
        ObjectType::Session,
        ObjectType::JitGrant,
        ObjectType::Ticket,
        ObjectType::Application,
        ObjectType::AccountPolicy,
        ObjectType::Approval,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Tenant => "tenant",
            ObjectType::Device => "device",
            ObjectType::Group => "group",
            ObjectType::User => "user",
            ObjectType::Account => "account",
            ObjectType::ApiClient => "api_client",
            ObjectType::AdminToken => "admin_token",
            ObjectType::Vault => "vault",
            ObjectType::EnrollmentToken => "enrollment_token",
            ObjectType::RotationPolicy => "rotation_policy",
            ObjectType::DeviceJob => "device_job",
            ObjectType::Target => "target",
            ObjectType::Directory => "directory",
            ObjectType::Session => "session",
            ObjectType::JitGrant => "jit_grant",
            ObjectType::Ticket => "ticket",
            ObjectType::Application => "application",
            ObjectType::AccountPolicy => "account_policy",
            ObjectType::Approval => "approval",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<ObjectType> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Denied,
    Failed,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::Denied, Outcome::Failed].into_iter().find(|o| o.as_str() == s)
    }
}

/// An event about to be appended. The store assigns its sequence number and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    /// Tenant id, when the event belongs to one.
    pub tenant_id: Option<String>,
    /// Who acted, e.g. `admin-token:<id>`.
    pub actor: String,
    pub action: Action,
    pub object_type: ObjectType,
    pub object_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    /// Extra facts as a JSON object text. Never a secret.
    pub details: String,
}

impl NewAuditEvent {
    /// A successful event with no reason, ticket, request facts or details.
    pub fn new(at: OffsetDateTime, actor: impl Into<String>, action: Action, object_type: ObjectType) -> Self {
        Self {
            at,
            tenant_id: None,
            actor: actor.into(),
            action,
            object_type,
            object_id: None,
            outcome: Outcome::Success,
            reason: None,
            ticket: None,
            client_addr: None,
            request_id: None,
            details: "{}".to_owned(),
        }
    }

    /// Set the tenant.
    /// A new event by the same actor, from the same request, at the same time, for another
    /// action (one request often records several).
    pub fn sibling(&self, action: Action, object_type: ObjectType) -> Self {
        let mut e = NewAuditEvent::new(self.at, self.actor.clone(), action, object_type);
        e.tenant_id = self.tenant_id.clone();
        e.client_addr = self.client_addr.clone();
        e.request_id = self.request_id.clone();
        e
    }

    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Set the object id.
    pub fn object(mut self, id: impl Into<String>) -> Self {
        self.object_id = Some(id.into());
        self
    }

    /// Set the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Set the details (a JSON object; never a secret).
    pub fn details(mut self, details: &serde_json::Value) -> Self {
        self.details = details.to_string();
        self
    }

    /// Seal this event into the chain after `prev` with sequence number `seq`.
    pub fn into_event(self, seq: i64, prev_hash: [u8; 32]) -> AuditEvent {
        let mut event = AuditEvent { seq, prev_hash, hash: [0; 32], body: self };
        event.hash = event.compute_hash();
        event
    }
}

/// An event in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub seq: i64,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
    pub body: NewAuditEvent,
}

impl AuditEvent {
    /// The hash this event should carry: SHA-256 over a domain label, the previous hash, the
    /// sequence number and every field, each length-prefixed so no two events encode alike.
    pub fn compute_hash(&self) -> [u8; 32] {
        let b = &self.body;
        let mut h = Sha256::new();
        h.update(b"latchkey-audit-v1");
        h.update(self.prev_hash);
        h.update(self.seq.to_be_bytes());
        h.update(crate::clock::to_millis(b.at).to_be_bytes());
        for field in [
            b.tenant_id.as_deref(),
            Some(b.actor.as_str()),
            Some(b.action.as_str()),
            Some(b.object_type.as_str()),
            b.object_id.as_deref(),
            Some(b.outcome.as_str()),
            b.reason.as_deref(),
            b.ticket.as_deref(),
            b.client_addr.as_deref(),
            b.request_id.as_deref(),
            Some(b.details.as_str()),
        ] {
            match field {
                Some(s) => {
                    h.update((s.len() as u32).to_be_bytes());
                    h.update(s.as_bytes());
                }
                None => h.update(u32::MAX.to_be_bytes()),
            }
        }
        h.finalize().into()
    }
}

/// The last event of the chain as the store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty chain.
    pub const EMPTY: ChainHead = ChainHead { seq: 0, hash: GENESIS_HASH };
}

/// Where and why the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event {seq}: {problem}")]
pub struct ChainBreak {
    /// The first event that does not verify (for a truncated tail: the first missing one).
    pub seq: i64,
    pub problem: &'static str,
}

/// Checks events one by one in sequence order, so the store can page through a long log.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    last: ChainHead,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { last: ChainHead::EMPTY, checked: 0 }
    }
}

impl ChainVerifier {
    /// Check the next event.
    pub fn check(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        let expected = self.last.seq + 1;
        if event.seq != expected {
            return Err(ChainBreak {
                seq: expected,
                problem: if event.seq > expected { "event missing (deleted)" } else { "event out of order" },
            });
        }
        if event.prev_hash != self.last.hash {
            return Err(ChainBreak { seq: event.seq, problem: "previous-hash link does not match" });
        }
        if event.compute_hash() != event.hash {
            return Err(ChainBreak { seq: event.seq, problem: "event content does not match its hash (edited)" });
        }
        self.last = ChainHead { seq: event.seq, hash: event.hash };
        self.checked += 1;
        Ok(())
    }

    /// After the last event: compare with the recorded head. Returns how many events verified.
    pub fn finish(self, head: ChainHead) -> Result<u64, ChainBreak> {
        if head.seq > self.last.seq {
            return Err(ChainBreak { seq: self.last.seq + 1, problem: "events missing at the end (tail truncated)" });
        }
        if head.seq < self.last.seq || head.hash != self.last.hash {
            return Err(ChainBreak { seq: head.seq.max(1), problem: "chain head does not match the last event" });
        }
        Ok(self.checked)
    }
}

/// Verify a whole chain held in memory against its head.
pub fn verify_chain<'a>(events: impl IntoIterator<Item = &'a AuditEvent>, head: ChainHead) -> Result<u64, ChainBreak> {
    let mut v = ChainVerifier::default();
    for e in events {
        v.check(e)?;
    }
    v.finish(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain(n: usize) -> (Vec<AuditEvent>, ChainHead) {
        let mut head = ChainHead::EMPTY;
        let mut out = Vec::new();
        for i in 0..n {
            let ev = NewAuditEvent::new(
                OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i as i64),
                format!("actor-{i}"),
                Action::ALL[i % Action::ALL.len()],
                ObjectType::Account,
            )
            .object(format!("obj-{i}"))
            .into_event(head.seq + 1, head.hash);
            head = ChainHead { seq: ev.seq, hash: ev.hash };
            out.push(ev);
        }
        (out, head)
    }

    #[test]
    fn intact_chain_verifies() {
        let (events, head) = chain(5);
        assert_eq!(verify_chain(&events, head), Ok(5));
        assert_eq!(verify_chain(&[], ChainHead::EMPTY), Ok(0));
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for o in ObjectType::ALL {
            assert_eq!(ObjectType::parse(o.as_str()), Some(o));
        }
        assert_eq!(Action::parse("nope"), None);
    }

    proptest! {
        #[test]
        fn any_edit_is_detected(n in 1usize..20, pick in 0usize..20, field in 0u8..6) {
            let (mut events, head) = chain(n);
            let i = pick % n;
            let b = &mut events[i].body;
            match field {
                0 => b.actor.push('x'),
                1 => b.reason = Some("changed".into()),
                2 => b.outcome = if b.outcome == Outcome::Denied { Outcome::Success } else { Outcome::Denied },
                3 => b.at += time::Duration::milliseconds(1),
                4 => b.details = "{\"x\":1}".into(),
                _ => b.object_id = None,
            }
            let err = verify_chain(&events, head).unwrap_err();
            prop_assert_eq!(err.seq, events[i].seq);
        }

        #[test]
        fn deletion_is_detected(n in 2usize..20, pick in 0usize..20) {
            let (mut events, head) = chain(n);
            let i = pick % n;
            events.remove(i);
            let err = verify_chain(&events, head).unwrap_err();
            prop_assert_eq!(err.seq, (i + 1) as i64);
        }

        #[test]
        fn reordering_is_detected(n in 2usize..20, a in 0usize..20, b in 0usize..20) {
            let (mut events, head) = chain(n);
            let (a, b) = (a % n, b % n);
            prop_assume!(a != b);
            events.swap(a, b);
            let err = verify_chain(&events, head).unwrap_err();
            prop_assert_eq!(err.seq, (a.min(b) + 1) as i64);
        }

        #[test]
        fn truncation_is_detected(n in 1usize..20, cut in 1usize..20) {
            let (mut events, head) = chain(n);
            let cut = cut.min(n);
            events.truncate(n - cut);
            let err = verify_chain(&events, head).unwrap_err();
            prop_assert_eq!(err.seq, (n - cut + 1) as i64);
        }
    }
}
