//! Just-in-time local administrators through the real `latchkey agent --once`: a grant queued
//! on an in-process server (the device provider's `queue_grant`) creates the account on the
//! device's private root, a revoke removes it, and an agent that cannot reach the server still
//! removes an account whose end time passed, before it tries to check in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::device::can_manage_accounts;
use common::{BIN, Out, exec};
use latchkey_agent::{AccountName, LinuxAccounts, LocalAccounts, prepare_private_root};
use latchkey_core::{Action, NewAuditEvent, ObjectType, SystemClock};
use latchkey_server::local_admin::{LocalAdminGrantRequest, LocalAdminJobState, job_state, queue_grant, queue_revoke};
use latchkey_server::{Config, ConfigLayer, RunningServer};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};

/// A server in this process (so the test can call the device provider) on a fresh SQLite
/// store, and a device with a private account root and an agent state directory.
struct Setup {
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    url: String,
    tenant_id: String,
    device_id: String,
    root: PathBuf,
    state_dir: PathBuf,
    accounts: LinuxAccounts,
    _tmp: tempfile::TempDir,
}

impl Setup {
    /// Start the server and enroll the device with a first agent run.
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let config = Config::resolve(ConfigLayer {
            data_dir: Some(tmp.path().join("data")),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        })
        .unwrap();
        let server = rt.block_on(latchkey_server::start(config, Arc::new(SystemClock))).unwrap();
        let url = format!("http://{}", server.addr);
        let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
        let client = latchkey_client::Client::new(&url, Some(token)).unwrap();
        let enroll = rt
            .block_on(client.create_enrollment_token("default", &latchkey_proto::EnrollmentTokenCreate::default()))
            .unwrap();
        let tenant_id = rt.block_on(server.state().store().tenant_by_slug("default")).unwrap().id;
        let root = tmp.path().join("root");
        prepare_private_root(&root).unwrap();
        let device_id = uuid::Uuid::new_v4().to_string();
        let setup = Setup {
            accounts: LinuxAccounts::new(root.canonicalize().unwrap()).unwrap(),
            root,
            state_dir: tmp.path().join("agent"),
            rt,
            server: Some(server),
            url,
            tenant_id,
            device_id: device_id.clone(),
            _tmp: tmp,
        };
        setup.agent(&["--enroll-token", &enroll.token, "--device-id", &device_id]).ok();
        setup
    }

    /// `latchkey agent --once` against `self.url`.
    fn agent(&self, extra: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
            cmd.env_remove(k);
        }
        cmd.args(["agent", "--once", "--server", &self.url, "--state-dir"])
            .arg(&self.state_dir)
            .arg("--root")
            .arg(&self.root)
            .args(extra)
            .current_dir(self.state_dir.parent().unwrap_or(Path::new("/")));
        exec(cmd, None)
    }

    fn grant(&self, grant_id: &str, username: &str, password: &str, until: OffsetDateTime) -> String {
        let state = self.server.as_ref().unwrap().state();
        let password = SecretString::from(password);
        let req = LocalAdminGrantRequest {
            tenant_id: &self.tenant_id,
            device_id: &self.device_id,
            grant_id,
            username,
            password: &password,
            until,
        };
        let event =
            NewAuditEvent::new(OffsetDateTime::now_utc(), "jit-engine", Action::JitActivate, ObjectType::JitGrant);
        self.rt.block_on(queue_grant(state, req, event)).unwrap()
    }

    fn revoke(&self, grant_id: &str, username: &str) -> String {
        let state = self.server.as_ref().unwrap().state();
        let event =
            NewAuditEvent::new(OffsetDateTime::now_utc(), "jit-engine", Action::JitRevoke, ObjectType::JitGrant);
        self.rt.block_on(queue_revoke(state, &self.tenant_id, &self.device_id, grant_id, username, event)).unwrap()
    }

    fn job_state(&self, job: &str) -> LocalAdminJobState {
        self.rt.block_on(job_state(self.server.as_ref().unwrap().state(), job)).unwrap()
    }

    fn is_admin(&self, name: &str) -> bool {
        self.accounts
            .user_info(&AccountName::new(name).unwrap())
            .unwrap()
            .is_some_and(|i| i.groups.iter().any(|g| g == "sudo"))
    }

    fn exists(&self, name: &str) -> bool {
        self.accounts.user_info(&AccountName::new(name).unwrap()).unwrap().is_some()
    }

    fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown()).unwrap();
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop_server();
    }
}

#[test]
fn the_agent_grants_and_revokes_a_local_administrator() {
    if !can_manage_accounts() {
        return;
    }
    let setup = Setup::new();
    let job = setup.grant("g1", "alice-jit", "Temp-Pass-9q!", OffsetDateTime::now_utc() + Duration::hours(1));
    let run = setup.agent(&[]).ok();
    assert!(run.stdout.contains("alice-jit is a local administrator until"), "{run:#?}");
    assert!(!run.stdout.contains("Temp-Pass-9q!") && !run.stderr.contains("Temp-Pass-9q!"));
    assert!(setup.is_admin("alice-jit"));
    let name = AccountName::new("alice-jit").unwrap();
    assert!(setup.accounts.verify_password(&name, &SecretString::from("Temp-Pass-9q!")).unwrap());
    assert_eq!(setup.job_state(&job), LocalAdminJobState::Done);
    let records = std::fs::read_to_string(setup.state_dir.join("local-admins.json")).unwrap();
    assert!(records.contains("alice-jit") && !records.contains("Temp-Pass"), "{records}");

    let revoke = setup.revoke("g1", "alice-jit");
    let run = setup.agent(&[]).ok();
    assert!(run.stdout.contains("removed just-in-time administrator alice-jit"), "{run:#?}");
    assert!(!setup.exists("alice-jit"));
    assert_eq!(setup.job_state(&revoke), LocalAdminJobState::Done);
}

#[test]
fn the_agent_removes_an_ended_grant_without_the_server() {
    if !can_manage_accounts() {
        return;
    }
    let mut setup = Setup::new();
    // Ends in two seconds: the account's expiry date is set, and the agent records the end.
    setup.grant("g1", "bob-jit", "Temp-Pass-4", OffsetDateTime::now_utc() + Duration::seconds(2));
    setup.agent(&[]).ok();
    assert!(setup.is_admin("bob-jit"));

    setup.stop_server();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = setup.agent(&[]);
    assert_eq!(run.code, 1, "the check-in cannot succeed: {run:#?}");
    assert!(run.stderr.contains("check-in failed"), "{run:#?}");
    assert!(run.stdout.contains("removed just-in-time administrator bob-jit"), "{run:#?}");
    assert!(!setup.exists("bob-jit"));
}

#[test]
fn the_agent_refuses_an_existing_account_it_did_not_create() {
    if !can_manage_accounts() {
        return;
    }
    let setup = Setup::new();
    let carol = AccountName::new("carol").unwrap();
    setup.accounts.ensure_user(&carol).unwrap();
    let job = setup.grant("g1", "carol", "Temp-Pass-5", OffsetDateTime::now_utc() + Duration::hours(1));
    let run = setup.agent(&[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("not created by Latchkey"), "{run:#?}");
    assert!(!setup.is_admin("carol"));
    match setup.job_state(&job) {
        LocalAdminJobState::Failed { error } => assert!(error.contains("not created by Latchkey"), "{error}"),
        other => panic!("the job is {other:?}"),
    }
    // A revoke of it leaves the account alone.
    setup.revoke("g1", "carol");
    let run = setup.agent(&[]).ok();
    assert!(run.stdout.contains("not a just-in-time administrator here"), "{run:#?}");
    assert!(setup.exists("carol"));
}
