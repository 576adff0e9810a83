//! Just-in-time local administrators: named local accounts the agent makes administrators
//! until a time, and removes at that time on its own (also when the server cannot be reached)
//! or when the server revokes them.
//!
//! The agent only ever touches accounts it created for a grant: every one is recorded in
//! [`LocalAdmins::FILE`] in the state directory (JSON, mode 0600, replaced atomically) *before*
//! it is created, so an interrupted creation is still known and removed. A grant for a name
//! that exists on the device without a record (a person's own account, `root`, the managed
//! admin account) is refused, and a revocation of a name without a record changes nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime, Time, UtcOffset};

use crate::{AccountName, LocalAccounts, OsError};

/// A just-in-time administrator this agent created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalAdminRecord {
    pub username: String,
    /// When the agent removes it.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// The admin group it was added to.
    pub group: String,
    /// The job that last granted it.
    pub job_id: String,
}

/// What a grant asks for.
pub struct Grant<'a> {
    pub name: &'a AccountName,
    pub password: &'a SecretString,
    pub until: OffsetDateTime,
    pub job_id: &'a str,
    /// The group that makes an account an administrator.
    pub admin_group: &'a str,
    /// Names never granted besides `root` and support account names (e.g. the managed admin
    /// account).
    pub reserved: &'a [&'a str],
}

/// How a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The account was removed from the group and deleted (or was already gone).
    Removed,
    /// No record of it: this agent did not create it, and left it alone.
    NotRecorded,
}

/// Why a grant or revocation failed. Never holds a password.
#[derive(Debug, thiserror::Error)]
pub enum LocalAdminError {
    /// The grant is refused; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// An account tool failed.
    #[error(transparent)]
    Os(#[from] OsError),
    /// The record file could not be read or written.
    #[error("{}: {reason}", path.display())]
    Records { path: PathBuf, reason: String },
}

/// The just-in-time administrators this agent created, kept in the state directory.
#[derive(Debug)]
pub struct LocalAdmins {
    path: PathBuf,
    records: Vec<LocalAdminRecord>,
}

impl LocalAdmins {
    /// The record file's name in the state directory.
    pub const FILE: &'static str = "local-admins.json";

    /// The records in `state_dir` (none when the file is missing).
    pub fn load(state_dir: &Path) -> Result<Self, LocalAdminError> {
        let path = state_dir.join(Self::FILE);
        let records = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LocalAdminError::Records {
                path: path.clone(),
                reason: format!("not a record list: {e}"),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LocalAdminError::Records { path, reason: e.to_string() }),
        };
        Ok(Self { path, records })
    }

    /// The recorded accounts.
    pub fn records(&self) -> &[LocalAdminRecord] {
        &self.records
    }

    /// Make `g.name` an administrator until `g.until`: record it, create it if missing, set the
    /// password, add it to the admin group and set the account expiry date (the day `until`
    /// falls on, rounded up). A recorded account gets the new password and end time (an
    /// extension). Refused: `root`, support account names, reserved names, an account that
    /// exists without a record, and an end time not after `now`.
    pub fn grant(
        &mut self,
        accounts: &dyn LocalAccounts,
        g: &Grant<'_>,
        now: OffsetDateTime,
    ) -> Result<(), LocalAdminError> {
        let username = g.name.as_str();
        if username.eq_ignore_ascii_case("root") || is_support_name(username) || g.reserved.contains(&username) {
            return Err(LocalAdminError::Refused(format!("{username} is never a just-in-time administrator")));
        }
        if g.until <= now {
            return Err(LocalAdminError::Refused(format!("the grant of {username} already ended at {}", g.until)));
        }
        // Jobs of one grant can arrive out of order: an extension never moves the end time back.
        let until = self.position(username).map_or(g.until, |i| self.records[i].until.max(g.until));
        let g = &Grant { until, ..*g };
        let record = LocalAdminRecord {
            username: username.to_owned(),
            until: g.until,
            group: g.admin_group.to_owned(),
            job_id: g.job_id.to_owned(),
        };
        let recorded = self.position(username).is_some();
        if !recorded {
            if accounts.user_info(g.name)?.is_some() {
                return Err(LocalAdminError::Refused(format!(
                    "{username} exists on this device and was not created by Latchkey: left unchanged"
                )));
            }
            // Recorded before it exists: a crash from here on leaves an account that is known.
            self.records.push(record.clone());
            self.save()?;
        }
        if let Err(e) = apply(accounts, g) {
            if !recorded {
                // Best effort: a leftover is removed at its end time.
                if accounts.delete_user(g.name).is_ok() {
                    self.records.retain(|r| r.username != username);
                    self.save()?;
                }
            }
            return Err(e.into());
        }
        if recorded {
            if let Some(i) = self.position(username) {
                self.records[i] = record;
            }
            self.save()?;
        }
        Ok(())
    }

    /// Remove a recorded account: out of its admin group, deleted (already gone is fine),
    /// record dropped. A name without a record is left alone ([`Revoked::NotRecorded`]).
    pub fn revoke(&mut self, accounts: &dyn LocalAccounts, name: &AccountName) -> Result<Revoked, LocalAdminError> {
        let Some(i) = self.position(name.as_str()) else {
            return Ok(Revoked::NotRecorded);
        };
        let group = self.records[i].group.clone();
        accounts.remove_from_group(name, &group)?;
        accounts.delete_user(name)?;
        self.records.retain(|r| r.username != name.as_str());
        self.save()?;
        Ok(Revoked::Removed)
    }

    /// Remove every recorded account whose end time is not after `now` (needs no server).
    /// Returns the names removed and the errors of those that could not be (kept for the next
    /// run).
    pub fn expire(&mut self, accounts: &dyn LocalAccounts, now: OffsetDateTime) -> (Vec<String>, Vec<String>) {
        let due: Vec<String> = self.records.iter().filter(|r| r.until <= now).map(|r| r.username.clone()).collect();
        let (mut removed, mut errors) = (Vec::new(), Vec::new());
        for username in due {
            let result = AccountName::new(username.clone())
                .map_err(|e| LocalAdminError::Refused(format!("recorded name {username:?}: {e}")))
                .and_then(|name| self.revoke(accounts, &name));
            match result {
                Ok(_) => removed.push(username),
                Err(e) => errors.push(format!("cannot remove just-in-time administrator {username}: {e}")),
            }
        }
        (removed, errors)
    }

    fn position(&self, username: &str) -> Option<usize> {
        self.records.iter().position(|r| r.username == username)
    }

    fn save(&self) -> Result<(), LocalAdminError> {
        let text = serde_json::to_vec_pretty(&self.records)
            .map_err(|e| LocalAdminError::Records { path: self.path.clone(), reason: e.to_string() })?;
        latchkey_crypto::replace_private_file(&self.path, &text)
            .map_err(|e| LocalAdminError::Records { path: self.path.clone(), reason: e.to_string() })
    }
}

/// Open the temporary password of a grant job, sealed by the server to this device's key and
/// bound to its tenant (slug), device, job, grant and account name. The error says why it
/// cannot be opened (never anything of the password).
pub fn open_password(
    key: &DeviceSigningKey,
    (tenant, device_id): (&str, &str),
    (job_id, grant_id, username): (&str, &str, &str),
    sealed: &str,
) -> Result<SecretString, String> {
    use base64::Engine;
    if sealed.len() > 4 * latchkey_crypto::MAX_SEALED_LEN / 3 + 4 {
        return Err("the sealed password is larger than 64 KiB".into());
    }
    let blob = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| "the sealed password is not base64url".to_owned())?;
    let aad = proto::local_admin_seal_aad(tenant, device_id, job_id, grant_id, username);
    let plain = latchkey_crypto::open_as_device(key, proto::LOCAL_ADMIN_SEAL_INFO, &aad, &blob)
        .map_err(|_| "the sealed password does not open with this device's key for this job".to_owned())?;
    let text = std::str::from_utf8(&plain).map_err(|_| "the sealed password is not UTF-8".to_owned())?;
    Ok(SecretString::from(text))
}

/// Create if missing, set the password, add to the group, set the expiry date.
fn apply(accounts: &dyn LocalAccounts, g: &Grant<'_>) -> Result<(), OsError> {
    accounts.ensure_user(g.name)?;
    accounts.set_password(g.name, g.password)?;
    accounts.add_to_group(g.name, g.admin_group)?;
    accounts.set_expiry(g.name, Some(expiry_date(g.until)))
}

/// The account expiry date for an end at `t`: its UTC date, or the next day unless `t` is
/// exactly midnight, so the account works until `t` (the agent removes it then).
pub fn expiry_date(t: OffsetDateTime) -> Date {
    let t = t.to_offset(UtcOffset::UTC);
    if t.time() == Time::MIDNIGHT { t.date() } else { t.date().next_day().unwrap_or(t.date()) }
}

/// `ADM-` and 8 upper-case hex digits: the form of support account names.
fn is_support_name(name: &str) -> bool {
    name.strip_prefix("ADM-")
        .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn expiry_dates_round_up_to_the_next_day() {
        assert_eq!(expiry_date(datetime!(2030-05-01 10:00 UTC)), date!(2030 - 05 - 02));
        assert_eq!(expiry_date(datetime!(2030-05-02 00:00 UTC)), date!(2030 - 05 - 02));
        assert_eq!(expiry_date(datetime!(2030-05-01 23:30 -02:00)), date!(2030 - 05 - 03));
    }

    #[test]
    fn sealed_passwords_open_only_for_their_device_and_binding() {
        use base64::Engine;
        let key = DeviceSigningKey::generate();
        let aad = proto::local_admin_seal_aad("acme", "d1", "j1", "g1", "alice-jit");
        let blob = latchkey_crypto::seal_to_device(&key.verifying_key(), proto::LOCAL_ADMIN_SEAL_INFO, &aad, b"Temp-1")
            .unwrap();
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob);
        let opened = open_password(&key, ("acme", "d1"), ("j1", "g1", "alice-jit"), &sealed).unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), "Temp-1");
        for (binding, job) in [(("acme", "d2"), ("j1", "g1", "alice-jit")), (("acme", "d1"), ("j1", "g1", "bob-jit"))] {
            assert!(open_password(&key, binding, job, &sealed).is_err());
        }
        let other = DeviceSigningKey::generate();
        let refused = open_password(&other, ("acme", "d1"), ("j1", "g1", "alice-jit"), &sealed).unwrap_err();
        assert!(refused.contains("does not open"), "{refused}");
        assert!(open_password(&key, ("acme", "d1"), ("j1", "g1", "alice-jit"), "not base64!").is_err());
    }

    #[test]
    fn support_names_are_recognised() {
        assert!(is_support_name("ADM-5A2F2169"));
        assert!(!is_support_name("ADM-5a2f2169") && !is_support_name("ADM-5A2F216") && !is_support_name("alice"));
    }

    #[test]
    fn records_round_trip_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut admins = LocalAdmins::load(dir.path()).unwrap();
        assert!(admins.records().is_empty());
        admins.records.push(LocalAdminRecord {
            username: "alice-jit".into(),
            until: datetime!(2030-01-02 03:04:05 UTC),
            group: "sudo".into(),
            job_id: "j1".into(),
        });
        admins.save().unwrap();
        let again = LocalAdmins::load(dir.path()).unwrap();
        assert_eq!(again.records(), admins.records());
        let mode = fs::metadata(dir.path().join(LocalAdmins::FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "a temp file was left behind");
        fs::write(dir.path().join(LocalAdmins::FILE), b"not json").unwrap();
        assert!(matches!(LocalAdmins::load(dir.path()), Err(LocalAdminError::Records { .. })));
    }
}
