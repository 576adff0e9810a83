//! What the agent keeps between runs in `agent.json` (besides its key): its enrollment, the
//! password version it last set on the device, and the support accounts it created.
//!
//! The file is rewritten whole, atomically (temp file, fsync, rename, fsync of the directory,
//! mode 0600) every time it changes, so a crash leaves either the old or the new state.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The agent's state file and its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentState {
    pub device_id: String,
    pub tenant: String,
    /// The server's X25519 public key (base64url): passwords are sealed to it.
    pub server_sealing_key: String,
    pub poll_interval_seconds: i64,
    /// The version of the managed admin password this agent set on the device and recorded;
    /// `None` before the first rotation.
    #[serde(default)]
    pub password_version: Option<i64>,
    /// Support accounts this agent created (or began to create) on the device.
    #[serde(default)]
    pub support_accounts: Vec<SupportRecord>,
}

/// A support account the agent created or is creating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportRecord {
    pub username: String,
    /// The job that asked for it.
    pub job_id: String,
    /// When it stops working (from the server's acknowledgement of its password).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The password version the server acknowledged for it.
    #[serde(default)]
    pub version: Option<i64>,
    /// Created on the device with its password, group and expiry. An unconfirmed account is
    /// removed at the next run: its job comes again and is done afresh.
    pub confirmed: bool,
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file `agent.json` in `dir`.
    pub fn in_dir(dir: &Path) -> StateFile {
        StateFile { path: dir.join("agent.json") }
    }

    /// The state directory.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The recorded state; `None` when the device is not enrolled yet.
    pub fn read(&self) -> Result<Option<AgentState>, String> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is not agent state: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    /// Replace the state durably: when this returns, the new state survives a crash.
    pub fn write(&self, state: &AgentState) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(state).map_err(|e| format!("cannot encode the agent state: {e}"))?;
        latchkey_crypto::replace_private_file(&self.path, &text)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn state() -> AgentState {
        AgentState {
            device_id: "5a2f2169-0000-4000-8000-0000000000aa".into(),
            tenant: "default".into(),
            server_sealing_key: "key".into(),
            poll_interval_seconds: 1800,
            password_version: Some(3),
            support_accounts: vec![SupportRecord {
                username: "ADM-5A2F2169".into(),
                job_id: "j1".into(),
                expires_at: Some(time::macros::datetime!(2030-01-02 03:04:05 UTC)),
                version: Some(1),
                confirmed: true,
            }],
        }
    }

    #[test]
    fn state_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        assert_eq!(file.read().unwrap(), None);
        file.write(&state()).unwrap();
        assert_eq!(file.read().unwrap(), Some(state()));
        let mode = fs::metadata(dir.path().join("agent.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(dir.path().join("agent.json")).unwrap();
        assert!(text.contains("\"passwordVersion\": 3") && text.contains("\"supportAccounts\""), "{text}");
        // No temp file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_state_file_of_an_earlier_agent_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("agent.json"),
            r#"{"deviceId":"d","tenant":"t","serverSealingKey":"k","pollIntervalSeconds":60}"#,
        )
        .unwrap();
        let read = StateFile::in_dir(dir.path()).read().unwrap().unwrap();
        assert_eq!(read.password_version, None);
        assert!(read.support_accounts.is_empty());
    }
}
