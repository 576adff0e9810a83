//! A managed device for agent tests: an enrolled agent state directory and a private account
//! root (the real account tools run with `--root`, never on the machine's `/etc`), plus a
//! look into the server's store for every password version it holds.

use std::path::{Path, PathBuf};

use latchkey_agent::{AccountName, LinuxAccounts, LocalAccounts, prepare_private_root};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{Out, Server, exec};

/// The managed admin account the agent uses by default.
pub const ADMIN: &str = "latchkey-admin";

/// An enrolled device with its own account root.
pub struct Device {
    pub id: String,
    /// The private account root (`etc/passwd`, `etc/shadow`, …).
    pub root: PathBuf,
    pub state_dir: PathBuf,
    pub accounts: LinuxAccounts,
}

/// Whether this process runs as root (the account tools need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").ok().is_some_and(|status| {
        status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
    })
}

/// Whether a missing prerequisite must fail the test instead of skipping it.
pub fn services_required() -> bool {
    std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
        || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `true` when the account tools can run here; otherwise a note (or a failure when services
/// are required).
pub fn can_manage_accounts() -> bool {
    if is_root() {
        return true;
    }
    assert!(!services_required(), "agent tests need root (LATCHKEY_REQUIRE_SERVICES=1 or CI=true is set)");
    eprintln!("note: not running as root; skipping the agent test that manages local accounts");
    false
}

impl Device {
    /// A device `name` with a fresh private root, enrolled on `server` by a first agent run
    /// (which also checks in and does the first jobs; its output is returned).
    pub fn enroll(server: &Server, name: &str, env: &[(&str, &str)]) -> (Device, Out) {
        let root = server.tmp_path().join(format!("root-{name}"));
        prepare_private_root(&root).unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        let device = Device {
            id: id.clone(),
            accounts: LinuxAccounts::new(root.canonicalize().unwrap()).unwrap(),
            root,
            state_dir: server.tmp_path().join(format!("agent-{name}")),
        };
        let token = server.run(&["device", "enroll-token"]).ok().stdout.lines().last().unwrap().trim().to_owned();
        let out = device.agent_with(server, &["--enroll-token", &token, "--device-id", &id], env);
        assert!(out.stdout.contains(&format!("enrolled as device {id}")), "{out:#?}");
        (device, out)
    }

    /// `latchkey agent --once` on this device.
    pub fn agent(&self, server: &Server) -> Out {
        self.agent_with(server, &[], &[])
    }

    /// `latchkey agent --once` with extra arguments and environment.
    pub fn agent_with(&self, server: &Server, extra: &[&str], env: &[(&str, &str)]) -> Out {
        let mut cmd = server.bare_command();
        cmd.args(["agent", "--once", "--server", &server.url, "--state-dir"])
            .arg(&self.state_dir)
            .arg("--root")
            .arg(&self.root)
            .args(extra)
            .envs(env.iter().copied());
        exec(cmd, None)
    }

    /// Whether `password` is the local account's password (checked against its shadow hash).
    pub fn has_password(&self, account: &str, password: &str) -> bool {
        let name = AccountName::new(account).unwrap();
        self.accounts.verify_password(&name, &SecretString::from(password)).unwrap()
    }

    /// The agent's state file, parsed.
    pub fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.state_dir.join("agent.json")).unwrap()).unwrap()
    }

    /// Rewrite the agent's state file through `change`.
    pub fn edit_state(&self, change: impl FnOnce(&mut serde_json::Value)) {
        let mut state = self.state();
        change(&mut state);
        std::fs::write(self.state_dir.join("agent.json"), serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    }

    /// The server's account of kind `kind` on this device (the first one listed).
    pub fn server_account(&self, server: &Server, kind: &str) -> Option<serde_json::Value> {
        let list = server.json(&["account", "list"]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["deviceId"] == self.id.as_str() && a["kind"] == kind)
            .cloned()
    }

    /// The id of this device's managed admin account on the server.
    pub fn admin_account_id(&self, server: &Server) -> String {
        let account = self.server_account(server, "device_admin").expect("the device has an admin account");
        account["id"].as_str().unwrap().to_owned()
    }
}

/// `latchkey account get-password ID` (the active version), audited with a reason.
pub fn reveal(server: &Server, account_id: &str) -> Zeroizing<String> {
    let out = server.run(&["account", "get-password", account_id, "--reason", "agent test checks the device"]).ok();
    Zeroizing::new(out.stdout.trim_end_matches('\n').to_owned())
}

/// The versions of an account as the API lists them: (version, state).
pub fn versions(server: &Server, account_id: &str) -> Vec<(i64, String)> {
    let list = server.json(&["account", "versions", account_id]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["state"].as_str().unwrap().to_owned()))
        .collect()
}

/// A password version the server holds, opened from its store.
pub struct HeldVersion {
    pub version: i64,
    /// `pending`, `active` or `retired`.
    pub state: String,
    pub password: Zeroizing<String>,
}

/// Every password version the server's store holds for an account (pending, active and
/// retired), opened with the server's key file: read straight from the SQLite store in
/// `data_dir`, so versions that no API reveals (pending ones) can be checked too.
pub fn held_versions(data_dir: &Path, account_id: &str) -> Vec<HeldVersion> {
    use sqlx::{Connection, Row};
    let ring = latchkey_crypto::Keyring::load(&data_dir.join("latchkey.key")).unwrap();
    let db = data_dir.join("latchkey.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rows = rt.block_on(async {
        let mut conn =
            sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
        let rows = sqlx::query(
            "SELECT tenant_id, version, state, password_envelope FROM secret_versions \
             WHERE account_id = $1 ORDER BY version",
        )
        .bind(account_id)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        rows
    });
    rows.iter()
        .map(|r| {
            let tenant: String = r.get("tenant_id");
            let version: i64 = r.get("version");
            let envelope: Vec<u8> = r.get("password_envelope");
            let binding = latchkey_crypto::Binding {
                tenant: &tenant,
                table: "secret_versions",
                row: account_id,
                field: "password",
                version,
            };
            let plain = latchkey_crypto::open(&ring, &binding, &envelope).unwrap();
            HeldVersion {
                version,
                state: r.get("state"),
                password: Zeroizing::new(String::from_utf8(plain.to_vec()).unwrap()),
            }
        })
        .collect()
}
