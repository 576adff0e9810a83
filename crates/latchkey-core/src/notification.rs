//! Notifications about privileged access: typed notices, the e-mail addresses they go to, and
//! how each is rendered as an e-mail (subject and plain-text body) and as a webhook body.
//!
//! A notice is written to the outbox as JSON in the same transaction as the audit event it
//! reports, then delivered on its own. A notice never holds a secret: it says who read which
//! device's password, when, from where, with which reason and outcome — never the password.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::Outcome;

/// Longest e-mail address accepted (RFC 5321 path limit less the angle brackets).
const MAX_ADDRESS: usize = 254;
/// Longest local part (before the `@`).
const MAX_LOCAL: usize = 64;
/// Longest text of one field shown in a notice (longer text is cut, with an ellipsis).
const MAX_FIELD: usize = 500;

/// Why an e-mail address was refused. The message never echoes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("e-mail address must not be empty")]
    Empty,
    #[error("e-mail address is longer than {MAX_ADDRESS} characters")]
    TooLong,
    #[error("e-mail address must have the form name@domain")]
    NoAt,
    #[error(
        "e-mail address has an invalid name before the @ (letters, digits, dots not at either end, and !#$%&'*+-/=?^_`{{|}}~; at most 64 characters)"
    )]
    BadLocalPart,
    #[error("e-mail address has an invalid domain after the @ (dot-separated labels of letters, digits and hyphens)")]
    BadDomain,
    #[error("e-mail address {position}: {source}")]
    InList { position: usize, source: Box<EmailError> },
}

/// An e-mail address `local@domain`: a dot-atom local part and a DNS domain name, ASCII only
/// (quoted local parts, address literals and display names are refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parse an address; surrounding white space is removed.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > MAX_ADDRESS {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::NoAt)?;
        if !valid_local(local) {
            return Err(EmailError::BadLocalPart);
        }
        if !valid_domain(domain) {
            return Err(EmailError::BadDomain);
        }
        Ok(Self(s.to_owned()))
    }

    /// Parse a list separated by commas, semicolons or white space (as in Lithnet's
    /// `emailAddresses`); empty entries are skipped, duplicates (ignoring case) dropped. The
    /// error names the 1-based position of the first bad entry.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, EmailError> {
        let mut out: Vec<Self> = Vec::new();
        let entries = raw.split(|c: char| c == ',' || c == ';' || c.is_whitespace()).filter(|e| !e.is_empty());
        for (i, entry) in entries.enumerate() {
            let address =
                Self::parse(entry).map_err(|e| EmailError::InList { position: i + 1, source: Box::new(e) })?;
            if !out.iter().any(|a| a.0.eq_ignore_ascii_case(&address.0)) {
                out.push(address);
            }
        }
        Ok(out)
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        EmailAddress::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn valid_local(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    !local.is_empty()
        && local.len() <= MAX_LOCAL
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || SPECIALS.contains(&b))
}

fn valid_domain(domain: &str) -> bool {
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    // The last label of a domain is never all digits (that would be an IP address).
    let tld_ok = domain.rsplit('.').next().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    !domain.is_empty() && domain.len() <= 253 && labels_ok && tld_ok
}

/// A delivery channel of the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// E-mail over SMTP to the notice's recipients.
    Email,
    /// A signed HTTP POST to the configured webhook.
    Webhook,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::Email, Channel::Webhook].into_iter().find(|c| c.as_str() == s)
    }
}

/// A notice to deliver. Stored as JSON tagged with its `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notification {
    /// Someone read (or was refused) a device's password.
    PasswordRead(PasswordReadNotice),
    /// An approval request to view an account's credentials was decided.
    ApprovalDecided(crate::app_notices::ApprovalDecidedNotice),
    /// An account's credentials were reset after being shown.
    CredentialsReset(crate::app_notices::CredentialsResetNotice),
}

/// Someone read, or tried to read, a device's local admin password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReadNotice {
    pub tenant_slug: String,
    /// Who read it, as recorded in the audit event.
    pub actor: String,
    pub device_name: String,
    pub device_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The client's address, when known.
    pub client_addr: Option<String>,
    pub reason: Option<String>,
    #[serde(with = "outcome_name")]
    pub outcome: Outcome,
    /// The access target that decided, when one matched.
    pub target_name: Option<String>,
    /// Who gets the e-mail; no e-mail is sent when empty.
    pub recipients: Vec<EmailAddress>,
}

/// A notice that could not be read back from its stored form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored notification is not readable: {0}")]
pub struct PayloadError(String);

impl Notification {
    /// The stored JSON form.
    pub fn to_payload(&self) -> String {
        // Serializing these plain structs cannot fail; an empty object would be refused on read.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Read a stored notice back.
    pub fn from_payload(payload: &str) -> Result<Self, PayloadError> {
        serde_json::from_str(payload).map_err(|e| PayloadError(e.to_string()))
    }

    /// Who gets the e-mail.
    pub fn recipients(&self) -> &[EmailAddress] {
        match self {
            Notification::PasswordRead(n) => &n.recipients,
            Notification::ApprovalDecided(n) => &n.recipients,
            Notification::CredentialsReset(_) => &[],
        }
    }

    /// The event name used in webhook bodies.
    pub fn event_name(&self) -> &'static str {
        match self {
            Notification::PasswordRead(_) => "password.read",
            Notification::ApprovalDecided(_) => "approval.decided",
            Notification::CredentialsReset(_) => "credentials.reset",
        }
    }

    /// The e-mail subject: one line, no control characters.
    pub fn subject(&self) -> String {
        match self {
            Notification::PasswordRead(n) => {
                let (actor, device) = (clean(&n.actor), clean(&n.device_name));
                match n.outcome {
                    Outcome::Success => format!("[Latchkey] {actor} read the password of {device}"),
                    Outcome::Denied => format!("[Latchkey] Denied: {actor} tried to read the password of {device}"),
                    Outcome::Failed => format!("[Latchkey] Failed: {actor} tried to read the password of {device}"),
                }
            }
            Notification::ApprovalDecided(n) => n.subject(),
            Notification::CredentialsReset(n) => n.subject(),
        }
    }

    /// The plain-text e-mail body.
    pub fn email_body(&self) -> String {
        match self {
            Notification::PasswordRead(n) => password_read_body(n),
            Notification::ApprovalDecided(n) => n.email_body(),
            Notification::CredentialsReset(n) => n.email_body(),
        }
    }

    /// The webhook JSON body; `delivery_id` lets a receiver drop a repeated delivery.
    pub fn webhook_body(&self, delivery_id: &str) -> serde_json::Value {
        match self {
            Notification::PasswordRead(n) => serde_json::json!({
                "event": self.event_name(),
                "deliveryId": delivery_id,
                "tenant": n.tenant_slug,
                "actor": n.actor,
                "device": { "id": n.device_id, "name": n.device_name },
                "at": rfc3339(n.at),
                "clientAddr": n.client_addr,
                "reason": n.reason,
                "outcome": n.outcome.as_str(),
                "target": n.target_name,
            }),
            Notification::ApprovalDecided(n) => n.webhook_body(self.event_name(), delivery_id),
            Notification::CredentialsReset(n) => n.webhook_body(self.event_name(), delivery_id),
        }
    }
}

fn password_read_body(n: &PasswordReadNotice) -> String {
    let (actor, device) = (clean(&n.actor), clean(&n.device_name));
    let headline = match n.outcome {
        Outcome::Success => format!("{actor} read the local administrator password of device {device}."),
        Outcome::Denied => {
            format!("{actor} tried to read the local administrator password of device {device} and was denied.")
        }
        Outcome::Failed => {
            format!("{actor} tried to read the local administrator password of device {device}; the read failed.")
        }
    };
    let outcome = match n.outcome {
        Outcome::Success => "success (the password was shown)",
        Outcome::Denied => "denied (no password was shown)",
        Outcome::Failed => "failed (no password was shown)",
    };
    let none = || "(not given)".to_owned();
    let lines = [
        ("Tenant", clean(&n.tenant_slug)),
        ("Device", format!("{device} ({})", clean(&n.device_id))),
        ("Who", actor.clone()),
        ("When", rfc3339(n.at)),
        ("From", n.client_addr.as_deref().map_or_else(|| "(unknown)".to_owned(), clean)),
        ("Reason", n.reason.as_deref().map_or_else(none, clean)),
        ("Outcome", outcome.to_owned()),
        ("Access rule", n.target_name.as_deref().map_or_else(|| "(none matched)".to_owned(), clean)),
    ];
    let mut body = format!("Latchkey audit notice\n\n{headline}\n\n");
    for (label, value) in lines {
        body.push_str(&format!("{:<12} {value}\n", format!("{label}:")));
    }
    body.push_str("\nThe password itself is never sent in a notification.\n");
    body
}

/// One line of text: control characters become spaces, long text is cut.
fn clean(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_FIELD).collect::<String>().trim().to_owned();
    if s.chars().count() > MAX_FIELD {
        out.push('…');
    }
    out
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Outcomes by their stored names (`success`, `denied`, `failed`).
mod outcome_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::audit::Outcome;

    pub fn serialize<S: Serializer>(o: &Outcome, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(o.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        let raw = String::deserialize(d)?;
        Outcome::parse(&raw).ok_or_else(|| serde::de::Error::custom("outcome must be success, denied or failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn notice(outcome: Outcome) -> Notification {
        Notification::PasswordRead(PasswordReadNotice {
            tenant_slug: "acme".into(),
            actor: "DEV1\\alice".into(),
            device_name: "PC-042".into(),
            device_id: "8a3c6f1e-7f0b-4b0e-9f6a-2d1c3b4a5e6f".into(),
            at: datetime!(2030-01-02 03:04:05 UTC),
            client_addr: Some("203.0.113.7".into()),
            reason: Some("ticket 4711".into()),
            outcome,
            target_name: Some("Workstations".into()),
            recipients: vec![EmailAddress::parse("secops@example.com").unwrap()],
        })
    }

    #[test]
    fn good_addresses_parse() {
        for a in ["a@example.com", "first.last+tag@mail.example.co.uk", "x_y-z@localhost", "o'brien@example.org"] {
            assert_eq!(EmailAddress::parse(a).unwrap().as_str(), a);
        }
        assert_eq!(EmailAddress::parse("  a@b.c  ").unwrap().as_str(), "a@b.c");
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        assert_eq!(EmailAddress::parse(""), Err(EmailError::Empty));
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
        assert_eq!(EmailAddress::parse("alice"), Err(EmailError::NoAt));
        assert_eq!(EmailAddress::parse("@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse(".a@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse("a..b@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse("a b@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse("a@b@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse("\"q\"@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse("a\r\nBcc: x@example.com"), Err(EmailError::BadLocalPart));
        assert_eq!(EmailAddress::parse("a@"), Err(EmailError::BadDomain));
        assert_eq!(EmailAddress::parse("a@-x.com"), Err(EmailError::BadDomain));
        assert_eq!(EmailAddress::parse("a@x..com"), Err(EmailError::BadDomain));
        assert_eq!(EmailAddress::parse("a@exa_mple.com"), Err(EmailError::BadDomain));
        assert_eq!(EmailAddress::parse("a@[127.0.0.1]"), Err(EmailError::BadDomain));
        assert_eq!(EmailAddress::parse("a@127.0.0.1"), Err(EmailError::BadDomain));
        assert_eq!(EmailAddress::parse("a@exämple.com"), Err(EmailError::BadDomain));
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(EmailAddress::parse(&long_local), Err(EmailError::BadLocalPart));
        let long = format!("a@{}.com", "b".repeat(260));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn errors_do_not_echo_the_input() {
        let e = EmailAddress::parse("not-an-address-xyz").unwrap_err();
        assert!(!e.to_string().contains("xyz"), "{e}");
    }

    #[test]
    fn lists_split_dedupe_and_name_the_bad_entry() {
        let list = EmailAddress::parse_list("a@example.com; b@example.com,\nA@EXAMPLE.COM  c@example.com").unwrap();
        let got: Vec<&str> = list.iter().map(EmailAddress::as_str).collect();
        assert_eq!(got, ["a@example.com", "b@example.com", "c@example.com"]);
        assert!(EmailAddress::parse_list("").unwrap().is_empty());
        let e = EmailAddress::parse_list("a@example.com, nope").unwrap_err();
        assert_eq!(e, EmailError::InList { position: 2, source: Box::new(EmailError::NoAt) });
        assert_eq!(e.to_string(), "e-mail address 2: e-mail address must have the form name@domain");
    }

    #[test]
    fn payload_round_trips() {
        for outcome in [Outcome::Success, Outcome::Denied, Outcome::Failed] {
            let n = notice(outcome);
            let payload = n.to_payload();
            assert!(payload.contains("\"kind\":\"password_read\""), "{payload}");
            assert_eq!(Notification::from_payload(&payload).unwrap(), n);
        }
    }

    #[test]
    fn bad_payloads_are_refused() {
        assert!(Notification::from_payload("{}").is_err());
        assert!(Notification::from_payload("not json").is_err());
        let mut v: serde_json::Value = serde_json::from_str(&notice(Outcome::Success).to_payload()).unwrap();
        v["recipients"] = serde_json::json!(["nope"]);
        assert!(Notification::from_payload(&v.to_string()).is_err());
        v["recipients"] = serde_json::json!([]);
        v["outcome"] = serde_json::json!("maybe");
        assert!(Notification::from_payload(&v.to_string()).is_err());
    }

    #[test]
    fn email_says_who_what_when_where_why_and_how() {
        let n = notice(Outcome::Success);
        assert_eq!(n.subject(), "[Latchkey] DEV1\\alice read the password of PC-042");
        let body = n.email_body();
        for needle in [
            "DEV1\\alice read the local administrator password of device PC-042.",
            "acme",
            "8a3c6f1e-7f0b-4b0e-9f6a-2d1c3b4a5e6f",
            "2030-01-02T03:04:05Z",
            "203.0.113.7",
            "ticket 4711",
            "success (the password was shown)",
            "Workstations",
        ] {
            assert!(body.contains(needle), "missing {needle:?} in\n{body}");
        }
        let denied = notice(Outcome::Denied);
        assert!(denied.subject().starts_with("[Latchkey] Denied: "));
        assert!(denied.email_body().contains("denied (no password was shown)"));
    }

    #[test]
    fn control_characters_cannot_break_the_subject() {
        let Notification::PasswordRead(mut n) = notice(Outcome::Success) else { unreachable!() };
        n.actor = "eve\r\nBcc: all@example.com".into();
        n.device_name = "x".repeat(2000);
        let n = Notification::PasswordRead(n);
        let subject = n.subject();
        assert!(!subject.contains('\r') && !subject.contains('\n'), "{subject:?}");
        assert!(subject.chars().count() < 1100);
    }

    #[test]
    fn webhook_body_names_the_event_and_delivery() {
        let body = notice(Outcome::Denied).webhook_body("d-1");
        assert_eq!(body["event"], "password.read");
        assert_eq!(body["deliveryId"], "d-1");
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["device"]["name"], "PC-042");
        assert_eq!(body["outcome"], "denied");
        assert_eq!(body["at"], "2030-01-02T03:04:05Z");
        assert!(body.get("recipients").is_none());
    }

    #[test]
    fn channels_round_trip() {
        for c in [Channel::Email, Channel::Webhook] {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("sms"), None);
    }
}
