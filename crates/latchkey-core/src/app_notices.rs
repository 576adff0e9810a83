//! Notices of the application credential API: an approval request decided (to the person the
//! request was made for), and credentials reset after showing (a webhook for systems that
//! must apply the new credentials out of band). Neither ever holds a credential.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::notification::EmailAddress;

/// An approval request to view an account's credentials was approved or denied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecidedNotice {
    pub tenant_slug: String,
    pub approval_id: String,
    pub account_id: String,
    pub account_name: String,
    /// The application that asked.
    pub requester: String,
    /// The person the application acted for.
    pub on_behalf_of: String,
    pub approved: bool,
    /// Who decided (the audit actor).
    pub decided_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    pub comment: Option<String>,
    /// Until when views are allowed (approved requests).
    #[serde(with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    pub recipients: Vec<EmailAddress>,
}

/// An account's credentials were reset after being shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsResetNotice {
    pub tenant_slug: String,
    pub account_id: String,
    pub account_name: String,
    /// `generic`, `device_admin` or `directory`.
    pub account_kind: String,
    /// The new secret version (stored accounts).
    pub version: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What to do with it, for a person.
    pub action: String,
}

impl ApprovalDecidedNotice {
    pub(crate) fn subject(&self) -> String {
        let verb = if self.approved { "approved" } else { "denied" };
        format!("[Latchkey] Request to view {} {verb}", one_line(&self.account_name))
    }

    pub(crate) fn email_body(&self) -> String {
        let verb = if self.approved { "approved" } else { "denied" };
        let mut body = format!(
            "Latchkey notice\n\nThe request {} by {} to view the credentials of {} was {verb} by {} at {}.\n",
            one_line(&self.approval_id),
            one_line(&self.requester),
            one_line(&self.account_name),
            one_line(&self.decided_by),
            rfc3339(self.decided_at),
        );
        if let Some(until) = self.valid_until {
            body.push_str(&format!("Views are allowed until {}.\n", rfc3339(until)));
        }
        if let Some(c) = &self.comment {
            body.push_str(&format!("Comment: {}\n", one_line(c)));
        }
        body.push_str("\nCredentials are never sent in a notification.\n");
        body
    }

    pub(crate) fn webhook_body(&self, event: &str, delivery_id: &str) -> serde_json::Value {
        serde_json::json!({
            "event": event,
            "deliveryId": delivery_id,
            "tenant": self.tenant_slug,
            "approval": self.approval_id,
            "account": { "id": self.account_id, "name": self.account_name },
            "requester": self.requester,
            "onBehalfOf": self.on_behalf_of,
            "approved": self.approved,
            "decidedBy": self.decided_by,
            "at": rfc3339(self.decided_at),
            "comment": self.comment,
            "validUntil": self.valid_until.map(rfc3339),
        })
    }
}

impl CredentialsResetNotice {
    pub(crate) fn subject(&self) -> String {
        format!("[Latchkey] Credentials of {} were reset", one_line(&self.account_name))
    }

    pub(crate) fn email_body(&self) -> String {
        format!(
            "Latchkey notice\n\nThe credentials of {} were reset at {} after being shown. {}\n",
            one_line(&self.account_name),
            rfc3339(self.at),
            one_line(&self.action)
        )
    }

    pub(crate) fn webhook_body(&self, event: &str, delivery_id: &str) -> serde_json::Value {
        serde_json::json!({
            "event": event,
            "deliveryId": delivery_id,
            "tenant": self.tenant_slug,
            "account": { "id": self.account_id, "name": self.account_name, "kind": self.account_kind },
            "version": self.version,
            "at": rfc3339(self.at),
            "action": self.action,
        })
    }
}

/// One line of at most 500 characters, control characters as spaces.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect::<String>().trim().to_owned()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
