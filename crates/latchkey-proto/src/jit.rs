//! Just-in-time admin elevation (grants) and built-in tickets.
//!
//! The bodies that carry a password ([`JitGrantCreated`], [`JitPassword`]) zeroize it when
//! dropped and redact it from Debug output.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Ask for admin access for a number of minutes against an open ticket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JitRequest {
    /// `directory` (the tenant's Active Directory) or `device` (a device's local admins).
    pub provider: String,
    /// The ticket the work belongs to; it must exist and be open.
    #[serde(default)]
    pub ticket: String,
    /// How long, in minutes (1 to the policy's maximum).
    pub minutes: i64,
    /// Why; required.
    #[serde(default)]
    pub reason: String,
    /// The device (deviceId), for the `device` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Admin tokens only: the person the access is for (their account name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
}

/// A grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JitGrant {
    pub id: String,
    pub tenant: String,
    pub provider: String,
    pub device_id: Option<String>,
    /// The person the access is for.
    pub requester: String,
    /// The account that receives the access (tech account or local account).
    pub account: String,
    pub ticket: String,
    pub reason: String,
    pub minutes: i64,
    /// `requested`, `approved`, `active`, `revoking`, `revoked`, `failed` or `denied`.
    pub state: String,
    /// Whether the access is over (past its end or revoked), even if the revocation has not
    /// finished yet.
    pub expired: bool,
    pub approver: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end_at: OffsetDateTime,
    /// When the revocation finished.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    /// Failed attempts of the current step.
    pub attempts: i64,
    /// Why the last attempt failed, or why the grant failed.
    pub last_error: Option<String>,
    /// Whether the revocation is overdue (reported once).
    pub overdue: bool,
}

/// A new grant with its temporary password, shown this once.
#[derive(Clone, Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct JitGrantCreated {
    #[zeroize(skip)]
    pub grant: JitGrant,
    /// The one-time temporary password of the account.
    pub password: String,
}

impl std::fmt::Debug for JitGrantCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitGrantCreated").field("grant", &self.grant).field("password", &"<redacted>").finish()
    }
}

/// Grants, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JitGrantList {
    pub grants: Vec<JitGrant>,
}

/// Move a grant's end later.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JitExtendRequest {
    /// Minutes added to the current end (the whole grant stays within the policy's maximum).
    pub minutes: i64,
}

/// Recover a grant's temporary password (admins only; audited with the reason).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JitPasswordRecoverRequest {
    #[serde(default)]
    pub reason: String,
}

/// A grant's temporary password.
#[derive(Clone, Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct JitPassword {
    #[zeroize(skip)]
    pub grant_id: String,
    #[zeroize(skip)]
    pub account: String,
    pub password: String,
}

impl std::fmt::Debug for JitPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitPassword").field("grant_id", &self.grant_id).field("password", &"<redacted>").finish()
    }
}

/// Open a built-in ticket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketCreateRequest {
    pub title: String,
}

/// A built-in ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// The number quoted in requests.
    pub number: i64,
    pub title: String,
    pub open: bool,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<OffsetDateTime>,
}

/// Built-in tickets, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketList {
    pub tickets: Vec<Ticket>,
}

/// A comment written to a ticket (built-in or PSA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketComment {
    pub ticket: String,
    pub grant_id: Option<String>,
    /// `builtin` or `psa`.
    pub adapter: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Whether it was delivered (PSA comments wait for the ticket worker).
    pub delivered: bool,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// Comments of a ticket, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketCommentList {
    pub comments: Vec<TicketComment>,
}
