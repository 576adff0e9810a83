//! Device access: rotation policies, device jobs, reading a device's admin password, support
//! accounts, and the bodies of the RealmJoin-compatible LAPS API
//! (`/api/external/LocalAdmin/…`).
//!
//! The bodies that carry a password ([`RevealedSupportAccount`],
//! [`RealmJoinSupportPassword`]) zeroize it when dropped and redact it from Debug output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Set the tenant's rotation policy or a device group's. A missing field takes the default
/// (30 days, 24 characters of every class, 12 in history, support accounts for 24 hours,
/// check-in every 30 minutes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotationPolicySet {
    /// Rotate when the password is older than this (3600 to 31622400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i64>,
    /// Characters of a generated password (8 to 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<i64>,
    /// Character classes, separated by commas: `lower,upper,digits,symbols`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<String>,
    /// Make a passphrase of this many words instead (4 to 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_words: Option<i64>,
    /// Retired versions kept besides the active one (1 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<i64>,
    /// Lifetime of a support account (300 to 2592000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_lifetime_seconds: Option<i64>,
    /// How often the agent checks in (30 to 604800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_seconds: Option<i64>,
    /// Group policies only: among the group policies that apply to a device, the lowest
    /// priority wins (-1000000 to 1000000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

/// A stored rotation policy: the tenant's (no group) or a device group's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationPolicy {
    pub tenant: String,
    /// The device group; `null` for the tenant's policy.
    pub group_id: Option<String>,
    /// Group policies only.
    pub priority: Option<i64>,
    pub max_age_seconds: i64,
    pub length: i64,
    /// `lower,upper,digits,symbols` or a subset.
    pub classes: String,
    pub passphrase_words: Option<i64>,
    pub history: i64,
    pub support_lifetime_seconds: i64,
    pub poll_interval_seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// What a device job asks the agent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceJobKind {
    RotatePassword,
    CreateSupportAccount,
    RemoveSupportAccount,
    /// Make a named local account an administrator until a time (just-in-time admin).
    GrantLocalAdmin,
    /// Remove a just-in-time local administrator.
    RevokeLocalAdmin,
}

/// Where a device job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceJobState {
    /// Handed to the agent at every check-in until it finishes.
    Open,
    Done,
    Failed,
}

/// Why a device job was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceJobCause {
    Initial,
    Age,
    Expired,
    Requested,
    Reconcile,
    Lifetime,
}

/// A job for a device's agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceJob {
    pub id: String,
    pub device_id: String,
    pub kind: DeviceJobKind,
    pub state: DeviceJobState,
    pub cause: DeviceJobCause,
    /// The support account a create or remove job is about, once known.
    pub account_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The agent's message when the job failed.
    pub error: Option<String>,
}

/// Read a device's admin password: the active one, or a version from its history. The reason
/// (and ticket) go into the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicePasswordRequest {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// A version number from the password history (retired, active, or pending
    /// confirmation); absent for the active password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// Where a support account request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupportAccountState {
    /// A creation job is queued for the device's agent.
    Queued,
    /// A live support account exists: reveal it.
    Ready,
}

/// The answer to a support account request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportAccountRequested {
    pub device_id: String,
    pub state: SupportAccountState,
    /// The open creation job.
    pub job_id: Option<String>,
    /// .NET TimeSpan "c" format (`[d.]hh:mm:ss[.fffffff]`): the time until the device's next
    /// expected check-in; `00:00:00` when ready; `null` when the device was never seen or not
    /// for more than 7 poll intervals.
    pub estimated_wait_time: Option<String>,
}

/// A device's live support account with its password.
#[derive(Serialize, Deserialize, ToSchema, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
pub struct RevealedSupportAccount {
    #[zeroize(skip)]
    pub device_id: String,
    #[zeroize(skip)]
    pub account_id: String,
    #[zeroize(skip)]
    pub username: String,
    pub password: String,
    #[zeroize(skip)]
    pub version: i64,
    /// When the account stops working; the agent removes it after that.
    #[serde(with = "time::serde::rfc3339")]
    #[zeroize(skip)]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for RevealedSupportAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedSupportAccount")
            .field("device_id", &self.device_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// RealmJoin `RequestSupportAccount`: the time until the device's next expected check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmJoinSupportRequested {
    /// .NET TimeSpan "c" format; `null` when the device has not been seen for a long time.
    #[serde(rename = "estimatedWaitTime")]
    pub estimated_wait_time: Option<String>,
}

/// RealmJoin `RetrieveSupportAccountPassword`: the live support account.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct RealmJoinSupportPassword {
    pub password: String,
    #[zeroize(skip)]
    pub username: String,
    /// UTC, whole seconds, offset written as `+00:00`: `2021-12-21T02:14:07+00:00`.
    #[serde(rename = "accountExpirationDate", with = "realmjoin_time")]
    #[zeroize(skip)]
    pub account_expiration_date: OffsetDateTime,
}

impl std::fmt::Debug for RealmJoinSupportPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealmJoinSupportPassword").field("username", &self.username).finish_non_exhaustive()
    }
}

/// An ASP.NET Core problem body, as the RealmJoin API answers errors: `404` with
/// `{"type", "title", "status", "traceId"}`, `400` with `errors` by parameter name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AspNetProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// `00-<32 hex>-<16 hex>-00`.
    #[serde(rename = "traceId")]
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<BTreeMap<String, Vec<String>>>,
}

impl AspNetProblem {
    /// `404 Not Found`.
    pub fn not_found(trace_id: String) -> Self {
        Self {
            kind: "https://tools.ietf.org/html/rfc7231#section-6.5.4".into(),
            title: "Not Found".into(),
            status: 404,
            trace_id,
            errors: None,
        }
    }

    /// `400` validation problem with messages for one parameter.
    pub fn validation(trace_id: String, parameter: &str, messages: Vec<String>) -> Self {
        Self {
            kind: "https://tools.ietf.org/html/rfc7231#section-6.5.1".into(),
            title: "One or more validation errors occurred.".into(),
            status: 400,
            trace_id,
            errors: Some(BTreeMap::from([(parameter.to_owned(), messages)])),
        }
    }
}

/// `accountExpirationDate`: written in UTC to the second with a `+00:00` offset, read as any
/// RFC 3339 time.
pub mod realmjoin_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// The text form, e.g. `2021-12-21T02:14:07+00:00`.
    pub fn format(t: OffsetDateTime) -> String {
        let t = t.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    /// Serialize as [`format`] gives.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format(*t))
    }

    /// Parse an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realmjoin_password_has_the_peer_shape_and_hides_the_password() {
        let at = OffsetDateTime::from_unix_timestamp(1_640_052_847).unwrap() + time::Duration::milliseconds(640);
        let p = RealmJoinSupportPassword {
            password: "hunter2-secret".into(),
            username: "ADM-5A2F2169".into(),
            account_expiration_date: at,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"password":"hunter2-secret","username":"ADM-5A2F2169","accountExpirationDate":"2021-12-21T02:14:07+00:00"}"#
        );
        assert!(!format!("{p:?}").contains("hunter2"));
        let back: RealmJoinSupportPassword = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.account_expiration_date.unix_timestamp(), 1_640_052_847);
    }

    #[test]
    fn wait_time_is_null_when_unknown() {
        let r = RealmJoinSupportRequested { estimated_wait_time: None };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"estimatedWaitTime":null}"#);
    }

    #[test]
    fn problems_have_the_aspnet_shape() {
        let nf = serde_json::to_value(AspNetProblem::not_found("00-a-b-00".into())).unwrap();
        assert_eq!(
            nf,
            serde_json::json!({"type": "https://tools.ietf.org/html/rfc7231#section-6.5.4", "title": "Not Found",
                "status": 404, "traceId": "00-a-b-00"})
        );
        let bad = serde_json::to_value(AspNetProblem::validation("t".into(), "deviceID", vec!["x".into()])).unwrap();
        assert_eq!(bad["errors"]["deviceID"][0], "x");
        assert_eq!(bad["title"], "One or more validation errors occurred.");
    }

    #[test]
    fn revealed_support_account_debug_hides_the_password() {
        let r = RevealedSupportAccount {
            device_id: "d".into(),
            account_id: "a".into(),
            username: "ADM-00000000".into(),
            password: "hunter2-secret".into(),
            version: 1,
            expires_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn policy_set_refuses_unknown_fields() {
        assert!(serde_json::from_str::<RotationPolicySet>(r#"{"lenght": 20}"#).is_err());
        let p: RotationPolicySet = serde_json::from_str(r#"{"length": 20}"#).unwrap();
        assert_eq!(p.length, Some(20));
    }
}
