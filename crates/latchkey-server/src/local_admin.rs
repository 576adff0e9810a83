//! The device provider of just-in-time admin: a named local account made an administrator on
//! a device through its agent, until a time, and removed again.
//!
//! The engine calls [`queue_grant`] and [`queue_revoke`] and follows the jobs with
//! [`job_state`]. The temporary password is sealed to the device's enrolled key (HPKE to the
//! X25519 form of its Ed25519 key, bound to tenant slug, device, job, grant and account name) before
//! it is stored: only that device can open it, and it is dropped once the job has ended. The
//! agent also removes the account on its own at the end time.

use std::fmt;

use latchkey_core::NewAuditEvent;
use latchkey_crypto::DeviceVerifyingKey;
use latchkey_proto as proto;
use latchkey_store::{NewLocalAdminGrant, StoreError};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::state::AppState;

/// The longest temporary password, in bytes (what the agent's account tools take).
pub const MAX_PASSWORD_BYTES: usize = 256;
/// The longest local account name, in characters.
pub const MAX_USERNAME_LEN: usize = 32;

/// A grant to carry out on a device.
pub struct LocalAdminGrantRequest<'a> {
    /// The tenant's id.
    pub tenant_id: &'a str,
    pub device_id: &'a str,
    pub grant_id: &'a str,
    /// The local account (see [`check_username`]).
    pub username: &'a str,
    /// The one-time temporary password (1-256 bytes, no NUL, CR or LF).
    pub password: &'a SecretString,
    /// When the account stops being an administrator; after now.
    pub until: OffsetDateTime,
}

/// Where a local admin job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAdminJobState {
    /// Handed to the agent at every check-in until it finishes.
    Open,
    /// Carried out on the device and confirmed.
    Done,
    /// The agent could not do it, or a revocation superseded it.
    Failed { error: String },
}

/// Why a local admin job could not be queued or read.
#[derive(Debug)]
pub enum LocalAdminError {
    /// No such device in the tenant.
    UnknownDevice,
    /// The device has no agent key yet: nothing can be sealed to it.
    NotEnrolled,
    /// The account name is unusable on a device (says why).
    InvalidName(String),
    /// The store refused or failed: `Invalid` for a bad password or end time, `Conflict` when
    /// the grant was revoked, names another device or account, or the device's key changed,
    /// `NotFound` for an unknown job.
    Store(StoreError),
}

impl fmt::Display for LocalAdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalAdminError::UnknownDevice => f.write_str("no such device in this tenant"),
            LocalAdminError::NotEnrolled => f.write_str("the device has no enrolled agent"),
            LocalAdminError::InvalidName(why) => write!(f, "invalid local account name: {why}"),
            LocalAdminError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LocalAdminError {}

impl From<StoreError> for LocalAdminError {
    fn from(e: StoreError) -> Self {
        LocalAdminError::Store(e)
    }
}

/// Queue the job that makes `req.username` an administrator on the device until `req.until`.
///
/// Idempotent per (grant_id, until): calling again returns the same job id; a later `until`
/// (extend) queues a new job that moves the agent's own end time. After a failed job, a new one
/// is queued. `event` (its action, actor and object are the caller's; the job's facts are
/// added to its details) is written with the job, and not when an existing job is returned.
pub async fn queue_grant(
    state: &AppState,
    req: LocalAdminGrantRequest<'_>,
    event: NewAuditEvent,
) -> Result<String, LocalAdminError> {
    check_username(req.username).map_err(LocalAdminError::InvalidName)?;
    check_password(req.password)?;
    let now = state.clock().now();
    if req.until <= now {
        return Err(StoreError::Invalid("the end time of a local admin grant must be in the future".into()).into());
    }
    let device_key = enrolled_key(state, req.tenant_id, req.device_id).await?;
    let key = DeviceVerifyingKey::from_base64url(&device_key).map_err(|_| StoreError::Corrupt("agent_public_key"))?;
    // The agent knows its tenant by slug (tenants are never renamed).
    let tenant = state.store().tenant_by_id(req.tenant_id).await.map_err(device_error)?;
    let job_id = uuid::Uuid::new_v4().to_string();
    let aad = proto::local_admin_seal_aad(&tenant.slug, req.device_id, &job_id, req.grant_id, req.username);
    let sealed = latchkey_crypto::seal_to_device(
        &key,
        proto::LOCAL_ADMIN_SEAL_INFO,
        &aad,
        req.password.expose_secret().as_bytes(),
    )
    .map_err(|e| StoreError::Seal(e.to_string()))?;
    let grant = NewLocalAdminGrant {
        job_id,
        tenant_id: req.tenant_id.to_owned(),
        device_id: req.device_id.to_owned(),
        grant_id: req.grant_id.to_owned(),
        username: req.username.to_owned(),
        sealed_password: base64url(&sealed),
        device_key,
        until: req.until,
    };
    state.store().queue_local_admin_grant(grant, now, event).await.map_err(device_error)
}

/// Queue (once per grant) the job that removes the account. Returns the job id.
///
/// The grant's jobs the device has not finished are ended as failed (superseded): the device
/// never creates an account that is already revoked. A failed removal is queued afresh when
/// called again. `event` is written with the job, and not when an existing job is returned.
pub async fn queue_revoke(
    state: &AppState,
    tenant_id: &str,
    device_id: &str,
    grant_id: &str,
    username: &str,
    event: NewAuditEvent,
) -> Result<String, LocalAdminError> {
    check_username(username).map_err(LocalAdminError::InvalidName)?;
    let now = state.clock().now();
    state
        .store()
        .queue_local_admin_revoke((tenant_id, device_id), grant_id, username, now, event)
        .await
        .map_err(device_error)
}

/// Where a local admin job is. `Store(NotFound)` for an unknown id or another kind of job.
pub async fn job_state(state: &AppState, job_id: &str) -> Result<LocalAdminJobState, LocalAdminError> {
    let job = state.store().local_admin_job(job_id).await?;
    Ok(match job.job.state {
        latchkey_core::JobState::Open => LocalAdminJobState::Open,
        latchkey_core::JobState::Done => LocalAdminJobState::Done,
        latchkey_core::JobState::Failed => LocalAdminJobState::Failed { error: job.job.error.unwrap_or_default() },
    })
}

/// Check a local account name by the agent's rules: 1 to 32 characters from
/// `[a-zA-Z0-9._-]`, not starting with `-`, not all digits, not `.` or `..`. Support account
/// names (`ADM-` and 8 upper-case hex digits) are kept for support accounts, and `root` is
/// never granted. The error says why.
pub fn check_username(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("account name is empty".into());
    }
    if let Some((index, ch)) =
        name.chars().enumerate().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("account name has {ch:?} at position {index} (allowed: a-z A-Z 0-9 . _ -)"));
    }
    if name.len() > MAX_USERNAME_LEN {
        return Err(format!("account name has {} characters (at most {MAX_USERNAME_LEN})", name.len()));
    }
    if name.starts_with('-') {
        return Err("account name starts with '-'".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err("account name is all digits".into());
    }
    if name == "." || name == ".." {
        return Err("account name is '.' or '..'".into());
    }
    if latchkey_core::rotation::is_support_account_name(name) {
        return Err("ADM- and 8 hex digits is the form of support account names".into());
    }
    if name.eq_ignore_ascii_case("root") {
        return Err("root is never a just-in-time account".into());
    }
    Ok(())
}

fn check_password(password: &SecretString) -> Result<(), LocalAdminError> {
    let text = password.expose_secret();
    if text.is_empty() || text.len() > MAX_PASSWORD_BYTES || text.contains(['\0', '\r', '\n']) {
        return Err(
            StoreError::Invalid("the temporary password must be 1-256 bytes without NUL, CR or LF".into()).into()
        );
    }
    Ok(())
}

/// The device's enrolled public key (base64url).
async fn enrolled_key(state: &AppState, tenant_id: &str, device_id: &str) -> Result<String, LocalAdminError> {
    let device = state.store().device(tenant_id, device_id).await.map_err(device_error)?;
    device.agent_public_key.ok_or(LocalAdminError::NotEnrolled)
}

fn device_error(e: StoreError) -> LocalAdminError {
    match e {
        StoreError::NotFound => LocalAdminError::UnknownDevice,
        e => LocalAdminError::Store(e),
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_agent_rules() {
        for ok in ["alice-jit", "a", "a.b_c-d", "x1", "_svc", "ADM-1234", &"a".repeat(32)] {
            assert_eq!(check_username(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "-rf",
            &"a".repeat(33),
            "a b",
            "x;y",
            "1234",
            ".",
            "..",
            "a:b",
            "a/b",
            "a\nb",
            "é",
            "a,b",
            "a$",
            "\0",
            "ADM-5A2F2169",
            "root",
            "ROOT",
        ] {
            assert!(check_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_the_device_cannot_take_are_refused() {
        for bad in ["", "a\nb", "a\rb", "a\0b", &"x".repeat(257)] {
            assert!(check_password(&SecretString::from(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(check_password(&SecretString::from("x".repeat(256))).is_ok());
    }

    #[test]
    fn errors_say_what_went_wrong() {
        assert_eq!(LocalAdminError::UnknownDevice.to_string(), "no such device in this tenant");
        assert!(LocalAdminError::InvalidName("account name is empty".into()).to_string().contains("empty"));
    }
}
