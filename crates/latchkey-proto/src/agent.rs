//! The agent API (`/api/agent/v1`): enrollment, signed check-ins, the jobs the server hands
//! out and the agent's answers to them.
//!
//! A rotation is two-phase: the agent seals the new password to the server's key and posts it
//! as a pending version ([`AgentPending`]); only after the server acknowledged it does the
//! agent set it on the device, record the version locally, and confirm ([`AgentConfirm`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An agent enrolls its device with a one-time token.
#[derive(Clone, Serialize, Deserialize, ToSchema, zeroize::ZeroizeOnDrop)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentEnrollRequest {
    /// The enrollment token.
    pub token: String,
    /// The device's UUID.
    #[zeroize(skip)]
    pub device_id: String,
    #[zeroize(skip)]
    pub hostname: String,
    #[serde(default)]
    #[zeroize(skip)]
    pub os: Option<String>,
    /// The device's Ed25519 public key (base64url, 32 bytes); it signs every later request.
    #[zeroize(skip)]
    pub public_key: String,
}

impl std::fmt::Debug for AgentEnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEnrollRequest")
            .field("device_id", &self.device_id)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// What an enrolled agent needs to know.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentEnrollResponse {
    pub device_id: String,
    pub tenant: String,
    pub poll_interval_seconds: i64,
    /// The server's X25519 public key (base64url): the agent seals passwords to it (HPKE).
    pub server_sealing_key: String,
}

/// Headers of a signed agent request. The signature covers the method, the path with query,
/// the device id, the timestamp, the nonce and the SHA-256 of the body.
pub mod agent_headers {
    /// The device id (UUID).
    pub const DEVICE: &str = "x-latchkey-device";
    /// Unix seconds; refused when more than 5 minutes off the server's clock.
    pub const TIMESTAMP: &str = "x-latchkey-timestamp";
    /// 16–64 characters of `[A-Za-z0-9_-]`, never reused.
    pub const NONCE: &str = "x-latchkey-nonce";
    /// Ed25519 signature, base64url without padding.
    pub const SIGNATURE: &str = "x-latchkey-signature";
}

/// An agent's check-in: what it believes is set on the device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentCheckIn {
    /// The password version the agent last set on the device and recorded; `null` when it
    /// has none.
    #[serde(default)]
    pub password_version: Option<i64>,
    /// The support and temporary accounts present on the device (at most 64).
    #[serde(default)]
    pub managed_accounts: Vec<String>,
}

/// The server's answer to a check-in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCheckInResponse {
    pub device_id: String,
    /// Seconds until the next check-in (the agent adds jitter).
    pub poll_interval_seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub server_time: OffsetDateTime,
    /// Work to do now, oldest first. A job stays here until the agent confirms or fails it.
    pub jobs: Vec<AgentJob>,
}

/// A job for the agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentJob {
    pub id: String,
    #[serde(flatten)]
    pub work: AgentWork,
}

/// What a job asks for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum AgentWork {
    /// Generate a password by this policy, post it as pending, set it on the managed admin
    /// account, confirm.
    RotatePassword { policy: PasswordPolicy },
    /// Create a support account (`ADM-` + 8 upper-case hex digits) with a generated password
    /// by this policy in the admin group: post it as pending (the answer gives its expiry),
    /// create it with that expiry, confirm.
    CreateSupportAccount { policy: PasswordPolicy },
    /// Delete this support account, then confirm.
    RemoveSupportAccount { username: String },
    /// Just-in-time admin: make `username` a local administrator until `until`. Open
    /// `sealedPassword` with the device key ([`LOCAL_ADMIN_SEAL_INFO`],
    /// [`local_admin_seal_aad`]), create the account if missing, set that password, add it to the
    /// admin group, set its expiry, record it, confirm. The agent removes it at `until` on its
    /// own. A later job for the same account moves `until`.
    GrantLocalAdmin {
        username: String,
        /// The just-in-time grant (part of the seal's binding).
        grant_id: String,
        /// HPKE seal of the UTF-8 password to the device's key (base64url).
        sealed_password: String,
        #[serde(with = "time::serde::rfc3339")]
        #[schema(value_type = String, format = DateTime)]
        until: OffsetDateTime,
    },
    /// Just-in-time admin ends: remove `username` from the admin group and delete it (only an
    /// account this agent created for a grant; one already gone is fine), then confirm.
    RevokeLocalAdmin { username: String },
}

/// How to generate a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordPolicy {
    /// Characters (8-256).
    pub length: i64,
    pub lower: bool,
    pub upper: bool,
    pub digits: bool,
    pub symbols: bool,
    /// Make a passphrase of this many words instead.
    #[serde(default)]
    pub passphrase_words: Option<i64>,
}

/// Phase one of a rotation or support account: the new password, sealed to the server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentPending {
    /// The local account: the managed admin account of a rotation, or the new support account.
    pub account: String,
    /// HPKE seal of the UTF-8 password to the server's sealing key (base64url), with info
    /// [`PASSWORD_SEAL_INFO`] and the associated data from [`password_seal_aad`].
    pub sealed_password: String,
}

/// The server stored the pending version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentPendingAck {
    pub version: i64,
    /// When a support account stops working (set it on the device).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// Phase two: the version is set on the device (rotation, support account), or the support
/// account is gone (removal: no version).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentConfirm {
    #[serde(default)]
    pub version: Option<i64>,
}

/// The agent could not do a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentFailure {
    /// What went wrong (at most 500 characters; never a secret).
    pub error: String,
}

/// The server's record of a finished job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentJobDone {
    pub id: String,
    /// `done` or `failed`.
    pub state: String,
}

/// The HPKE `info` of a sealed password.
pub const PASSWORD_SEAL_INFO: &[u8] = b"latchkey/agent/password/v1";

/// The HPKE associated data of a sealed password: it binds the seal to one device and one
/// job, so a sealed blob cannot be replayed for another.
pub fn password_seal_aad(device_id: &str, job_id: &str) -> Vec<u8> {
    format!("latchkey/agent/v1\n{device_id}\n{job_id}").into_bytes()
}

/// The HPKE `info` of a just-in-time admin password sealed to a device.
pub const LOCAL_ADMIN_SEAL_INFO: &[u8] = b"latchkey/device/local-admin-password/v1";

/// The HPKE associated data of a just-in-time admin password sealed to a device: it binds the
/// seal to one tenant (its slug, as the agent knows it), device, job, grant and account name. Each part is length-prefixed, so
/// no two different bindings give the same bytes.
pub fn local_admin_seal_aad(tenant: &str, device_id: &str, job_id: &str, grant_id: &str, username: &str) -> Vec<u8> {
    let mut out = b"latchkey/device/local-admin/v1".to_vec();
    for part in [tenant, device_id, job_id, grant_id, username] {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_tagged_by_kind() {
        let job =
            AgentJob { id: "j1".into(), work: AgentWork::RemoveSupportAccount { username: "ADM-5A2F2169".into() } };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json, serde_json::json!({"id": "j1", "kind": "removeSupportAccount", "username": "ADM-5A2F2169"}));
        let back: AgentJob = serde_json::from_value(json).unwrap();
        assert!(matches!(back.work, AgentWork::RemoveSupportAccount { username } if username == "ADM-5A2F2169"));
    }

    #[test]
    fn the_seal_binding_names_device_and_job() {
        assert_ne!(password_seal_aad("d1", "j1"), password_seal_aad("d1", "j2"));
        assert_ne!(password_seal_aad("d1", "j1"), password_seal_aad("d2", "j1"));
    }

    #[test]
    fn local_admin_jobs_carry_a_sealed_password_and_an_end() {
        let job = AgentJob {
            id: "j1".into(),
            work: AgentWork::GrantLocalAdmin {
                username: "alice-jit".into(),
                grant_id: "g1".into(),
                sealed_password: "c2VhbGVk".into(),
                until: time::macros::datetime!(2030-01-02 03:04:05 UTC),
            },
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "j1", "kind": "grantLocalAdmin", "username": "alice-jit", "grantId": "g1",
                "sealedPassword": "c2VhbGVk", "until": "2030-01-02T03:04:05Z"})
        );
        let back: AgentJob = serde_json::from_value(json).unwrap();
        assert!(matches!(back.work, AgentWork::GrantLocalAdmin { .. }));
        let revoke = serde_json::to_value(AgentWork::RevokeLocalAdmin { username: "alice-jit".into() }).unwrap();
        assert_eq!(revoke, serde_json::json!({"kind": "revokeLocalAdmin", "username": "alice-jit"}));
    }

    #[test]
    fn the_local_admin_binding_names_every_part() {
        let base = local_admin_seal_aad("t", "d", "j", "g", "u");
        for other in [
            local_admin_seal_aad("t2", "d", "j", "g", "u"),
            local_admin_seal_aad("t", "d2", "j", "g", "u"),
            local_admin_seal_aad("t", "d", "j2", "g", "u"),
            local_admin_seal_aad("t", "d", "j", "g2", "u"),
            local_admin_seal_aad("t", "d", "j", "g", "u2"),
            // Moving a boundary changes the bytes too.
            local_admin_seal_aad("td", "", "j", "g", "u"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn agent_bodies_refuse_unknown_fields() {
        assert!(serde_json::from_str::<AgentConfirm>(r#"{"version":1,"x":2}"#).is_err());
        assert!(serde_json::from_str::<AgentPending>(r#"{"account":"a"}"#).is_err());
        assert!(serde_json::from_str::<AgentCheckIn>(r#"{"passwordVersion":"one"}"#).is_err());
    }
}
