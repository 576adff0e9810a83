//! The device provider of just-in-time admin, end to end: grants and revocations queued
//! through `local_admin::queue_grant` / `queue_revoke`, carried out by the agent's own code
//! (`latchkey_agent::local_admin`: open the password sealed to the device key, create the
//! account with the real account tools on a private root, record it) and confirmed through the
//! signed agent API; the agent removing an expired account on its own while the server is
//! down; and every kind of bad input refused with nothing created.

use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_agent::local_admin::{Grant, LocalAdmins, Revoked, open_password};
use latchkey_agent::{AccountName, LinuxAccounts, LocalAccounts, prepare_private_root};
use latchkey_client::Client;
use latchkey_core::{Action, Clock, NewAuditEvent, ObjectType};
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;
use latchkey_server::AppState;
use latchkey_server::local_admin::{
    LocalAdminError, LocalAdminGrantRequest, LocalAdminJobState, job_state, queue_grant, queue_revoke,
};
use latchkey_store::StoreError;
use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

use crate::both;
use crate::helpers::TestApp;

/// A device with an agent: its key, a private account root and a state directory.
pub(crate) struct JitDevice {
    http: Client,
    pub(crate) id: String,
    tenant: String,
    pub(crate) tenant_id: String,
    key: DeviceSigningKey,
    root: tempfile::TempDir,
    pub(crate) state_dir: tempfile::TempDir,
    accounts: LinuxAccounts,
    nonces: AtomicU64,
}

/// How one run of the agent went.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// Accounts removed at their end time before the check-in.
    pub(crate) expired: Vec<String>,
    pub(crate) done: Vec<String>,
    pub(crate) failed: Vec<String>,
    /// The check-in's error, when the server could not be reached.
    unreachable: Option<String>,
}

impl JitDevice {
    pub(crate) async fn enroll(app: &TestApp) -> JitDevice {
        let t = app.client.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
        let key = DeviceSigningKey::generate();
        let id = uuid::Uuid::new_v4().to_string();
        let http = app.client_with(None);
        let enrolled = http
            .enroll(&proto::AgentEnrollRequest {
                token: t.token.clone(),
                device_id: id.clone(),
                hostname: format!("pc-{}", &id[..8]),
                os: None,
                public_key: key.verifying_key().to_base64url(),
            })
            .await
            .unwrap();
        let tenant_id = state(app).store().tenant_by_slug(&enrolled.tenant).await.unwrap().id;
        let root = tempfile::tempdir().unwrap();
        prepare_private_root(root.path()).unwrap();
        let accounts = LinuxAccounts::new(root.path()).unwrap();
        JitDevice {
            http,
            id,
            tenant: enrolled.tenant,
            tenant_id,
            key,
            root,
            state_dir: tempfile::tempdir().unwrap(),
            accounts,
            nonces: AtomicU64::new(0),
        }
    }

    async fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        now: OffsetDateTime,
        path: &str,
        body: &B,
    ) -> Result<T, latchkey_client::ClientError> {
        let nonce = format!("jit-agent-nonce-{:016}", self.nonces.fetch_add(1, Ordering::Relaxed));
        self.http.agent_signed_post(&self.key, &self.id, now.unix_timestamp(), &nonce, path, body).await
    }

    /// One run of the agent at `now`, as `latchkey agent --once` does it for local admin jobs:
    /// remove what ended, check in, carry out the jobs, confirm or report failure.
    pub(crate) async fn run(&self, now: OffsetDateTime) -> Run {
        let mut run = Run::default();
        let mut admins = LocalAdmins::load(self.state_dir.path()).unwrap();
        let (expired, errors) = admins.expire(&self.accounts, now);
        assert!(errors.is_empty(), "{errors:?}");
        run.expired = expired;
        let report = proto::AgentCheckIn::default();
        let answer: proto::AgentCheckInResponse = match self.post(now, "/api/agent/v1/check-in", &report).await {
            Ok(a) => a,
            Err(e) => {
                run.unreachable = Some(e.to_string());
                return run;
            }
        };
        for job in &answer.jobs {
            let outcome = match &job.work {
                proto::AgentWork::GrantLocalAdmin { username, grant_id, sealed_password, until } => {
                    open_password(&self.key, (&self.tenant, &self.id), (&job.id, grant_id, username), sealed_password)
                        .and_then(|password| {
                            let name = AccountName::new(username.as_str()).map_err(|e| e.to_string())?;
                            let grant = Grant {
                                name: &name,
                                password: &password,
                                until: *until,
                                job_id: &job.id,
                                admin_group: "sudo",
                                reserved: &["latchkey-admin"],
                            };
                            admins.grant(&self.accounts, &grant, now).map_err(|e| e.to_string())
                        })
                }
                proto::AgentWork::RevokeLocalAdmin { username } => AccountName::new(username.as_str())
                    .map_err(|e| e.to_string())
                    .and_then(|name| admins.revoke(&self.accounts, &name).map_err(|e| e.to_string()))
                    .map(|r| assert_eq!(r, Revoked::Removed)),
                // Rotation and support account jobs are another part of the agent.
                _ => continue,
            };
            match outcome {
                Ok(()) => {
                    let path = format!("/api/agent/v1/jobs/{}/confirm", job.id);
                    let _: proto::AgentJobDone = self.post(now, &path, &proto::AgentConfirm::default()).await.unwrap();
                    run.done.push(job.id.clone());
                }
                Err(why) => {
                    let path = format!("/api/agent/v1/jobs/{}/fail", job.id);
                    let _: proto::AgentJobDone =
                        self.post(now, &path, &proto::AgentFailure { error: why.clone() }).await.unwrap();
                    run.failed.push(why);
                }
            }
        }
        run
    }

    fn etc(&self, file: &str) -> String {
        std::fs::read_to_string(self.root.path().join("etc").join(file)).unwrap()
    }

    /// The account's `/etc/passwd` line exists.
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.etc("passwd").lines().any(|l| l.split(':').next() == Some(name))
    }

    /// The account is a member of `sudo` in `/etc/group`.
    pub(crate) fn is_admin(&self, name: &str) -> bool {
        let group = self.etc("group");
        let line = group.lines().find(|l| l.starts_with("sudo:")).unwrap();
        line.split(':').nth(3).unwrap().split(',').any(|m| m == name)
    }

    pub(crate) fn has_password(&self, name: &str, password: &str) -> bool {
        self.accounts.verify_password(&AccountName::new(name).unwrap(), &SecretString::from(password)).unwrap()
    }
}

fn state(app: &TestApp) -> &AppState {
    app.server.as_ref().unwrap().state()
}

fn now(app: &TestApp) -> OffsetDateTime {
    app.clock.now()
}

fn engine_event(app: &TestApp, action: Action, grant_id: &str) -> NewAuditEvent {
    NewAuditEvent::new(now(app), "jit-engine", action, ObjectType::JitGrant).object(grant_id)
}

async fn grant(
    app: &TestApp,
    device: &JitDevice,
    (grant_id, username, password): (&str, &str, &str),
    until: OffsetDateTime,
) -> Result<String, LocalAdminError> {
    let password = SecretString::from(password);
    let req = LocalAdminGrantRequest {
        tenant_id: &device.tenant_id,
        device_id: &device.id,
        grant_id,
        username,
        password: &password,
        until,
    };
    queue_grant(state(app), req, engine_event(app, Action::JitActivate, grant_id)).await
}

async fn audit_actions(app: &TestApp, action: &str) -> usize {
    let q = latchkey_client::AuditQuery { action: Some(action.into()), limit: Some(100), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items.len()
}

/// Not root: the account tools cannot run (skipped with a note unless services are required).
pub(crate) fn can_manage_accounts() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if !root {
        let required = std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
            || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
        assert!(!required, "the local admin tests need root (LATCHKEY_REQUIRE_SERVICES=1 or CI=true is set)");
        eprintln!("note: not running as root; skipping the local admin test");
    }
    root
}

both!(a_grant_creates_the_administrator_and_a_revoke_removes_it, |app: TestApp| async move {
    if !can_manage_accounts() {
        return;
    }
    let device = JitDevice::enroll(&app).await;
    let until = now(&app) + Duration::hours(1);
    let job = grant(&app, &device, ("g1", "alice-jit", "Temp-Pass-7x!"), until).await.unwrap();
    // A retried step gets the same job.
    assert_eq!(grant(&app, &device, ("g1", "alice-jit", "Temp-Pass-7x!"), until).await.unwrap(), job);
    assert_eq!(job_state(state(&app), &job).await.unwrap(), LocalAdminJobState::Open);

    let run = device.run(now(&app)).await;
    assert_eq!((run.done.as_slice(), run.failed.len()), (std::slice::from_ref(&job), 0), "{run:?}");
    assert!(device.exists("alice-jit"));
    assert!(device.is_admin("alice-jit"));
    assert!(device.has_password("alice-jit", "Temp-Pass-7x!"));
    assert!(!device.has_password("alice-jit", "Temp-Pass-7x?"));
    assert_eq!(job_state(state(&app), &job).await.unwrap(), LocalAdminJobState::Done);
    assert_eq!(audit_actions(&app, "local_admin.grant").await, 1);
    // Done: the next run has nothing to do.
    assert!(device.run(now(&app)).await.done.is_empty());

    let revoke = queue_revoke(
        state(&app),
        &device.tenant_id,
        &device.id,
        "g1",
        "alice-jit",
        engine_event(&app, Action::JitRevoke, "g1"),
    )
    .await
    .unwrap();
    let again = queue_revoke(
        state(&app),
        &device.tenant_id,
        &device.id,
        "g1",
        "alice-jit",
        engine_event(&app, Action::JitRevoke, "g1"),
    )
    .await
    .unwrap();
    assert_eq!(revoke, again);
    let run = device.run(now(&app)).await;
    assert_eq!(run.done, std::slice::from_ref(&revoke), "{run:?}");
    assert!(!device.exists("alice-jit"));
    assert!(!device.is_admin("alice-jit"));
    assert_eq!(job_state(state(&app), &revoke).await.unwrap(), LocalAdminJobState::Done);
    assert_eq!(audit_actions(&app, "local_admin.revoke").await, 1);
    // The jobs show in the device's job list; the audit chain holds.
    let jobs = app.client.device_jobs("default", &device.id, None).await.unwrap();
    let kinds: Vec<_> = jobs.items.iter().map(|j| (j.kind, j.state)).collect();
    assert!(kinds.contains(&(proto::DeviceJobKind::GrantLocalAdmin, proto::DeviceJobState::Done)), "{kinds:?}");
    assert!(kinds.contains(&(proto::DeviceJobKind::RevokeLocalAdmin, proto::DeviceJobState::Done)), "{kinds:?}");
    assert!(app.client.verify_audit().await.unwrap().ok);
});

both!(an_extension_moves_the_end_time_on_the_device, |app: TestApp| async move {
    if !can_manage_accounts() {
        return;
    }
    let device = JitDevice::enroll(&app).await;
    let until = now(&app) + Duration::hours(1);
    let first = grant(&app, &device, ("g1", "bob-jit", "Temp-Pass-1"), until).await.unwrap();
    device.run(now(&app)).await;
    let later = until + Duration::days(2);
    let extended = grant(&app, &device, ("g1", "bob-jit", "Temp-Pass-1"), later).await.unwrap();
    assert_ne!(first, extended);
    let run = device.run(now(&app)).await;
    assert_eq!(run.done, [extended], "{run:?}");
    let records = LocalAdmins::load(device.state_dir.path()).unwrap();
    assert_eq!(records.records()[0].until, later);
    let info = device.accounts.user_info(&AccountName::new("bob-jit").unwrap()).unwrap().unwrap();
    assert_eq!(info.expires, Some(latchkey_agent::local_admin::expiry_date(later)));
    // Past the first end time, the account stays; past the second, the agent removes it.
    assert!(device.run(until + Duration::hours(1)).await.expired.is_empty());
    assert_eq!(device.run(later + Duration::minutes(1)).await.expired, ["bob-jit"]);
    assert!(!device.exists("bob-jit"));
});

both!(an_expired_grant_is_removed_by_the_agent_while_the_server_is_down, |mut app: TestApp| async move {
    if !can_manage_accounts() {
        return;
    }
    let device = JitDevice::enroll(&app).await;
    let until = now(&app) + Duration::minutes(30);
    grant(&app, &device, ("g1", "carol-jit", "Temp-Pass-2"), until).await.unwrap();
    assert_eq!(device.run(now(&app)).await.done.len(), 1);
    assert!(device.exists("carol-jit") && device.is_admin("carol-jit"));

    app.stop().await;
    // Before the end: unreachable, the account stays.
    let early = device.run(until - Duration::minutes(1)).await;
    assert!(early.unreachable.is_some() && early.expired.is_empty(), "{early:?}");
    assert!(device.exists("carol-jit"));
    // After it: the agent removes it on its own.
    let late = device.run(until + Duration::seconds(1)).await;
    assert!(late.unreachable.is_some(), "{late:?}");
    assert_eq!(late.expired, ["carol-jit"]);
    assert!(!device.exists("carol-jit"));
    assert!(!device.is_admin("carol-jit"));
    assert!(LocalAdmins::load(device.state_dir.path()).unwrap().records().is_empty());
});

both!(bad_input_is_refused_and_creates_nothing, |app: TestApp| async move {
    if !can_manage_accounts() {
        return;
    }
    let device = JitDevice::enroll(&app).await;
    let until = now(&app) + Duration::hours(1);
    let long = "a".repeat(33);
    for bad in ["", "-rf", "1234", "a b", "x;y", "root", "ADM-5A2F2169", "..", long.as_str()] {
        let name = bad;
        let refused = grant(&app, &device, ("g-bad", name, "Temp-Pass-1"), until).await;
        assert!(matches!(refused, Err(LocalAdminError::InvalidName(_))), "{bad:?}: {refused:?}");
        let revoke = queue_revoke(
            state(&app),
            &device.tenant_id,
            &device.id,
            "g-bad",
            name,
            engine_event(&app, Action::JitRevoke, "g"),
        )
        .await;
        assert!(matches!(revoke, Err(LocalAdminError::InvalidName(_))), "{bad:?}: {revoke:?}");
    }
    for bad_password in ["", "two\nlines"] {
        let refused = grant(&app, &device, ("g-bad", "dave-jit", bad_password), until).await;
        assert!(matches!(refused, Err(LocalAdminError::Store(StoreError::Invalid(_)))), "{refused:?}");
    }
    let ended = grant(&app, &device, ("g-bad", "dave-jit", "Temp-Pass-1"), now(&app) - Duration::seconds(1)).await;
    assert!(matches!(ended, Err(LocalAdminError::Store(StoreError::Invalid(_)))), "{ended:?}");

    // An unknown device, one in another tenant's reach, and one without an agent.
    let mut unknown = JitDevice::enroll(&app).await;
    unknown.id = uuid::Uuid::new_v4().to_string();
    assert!(matches!(
        grant(&app, &unknown, ("g-bad", "dave-jit", "Temp-Pass-1"), until).await,
        Err(LocalAdminError::UnknownDevice)
    ));
    let revoke = queue_revoke(
        state(&app),
        &device.tenant_id,
        &unknown.id,
        "g-bad",
        "dave-jit",
        engine_event(&app, Action::JitRevoke, "g"),
    )
    .await;
    assert!(matches!(revoke, Err(LocalAdminError::UnknownDevice)), "{revoke:?}");
    let mut elsewhere = JitDevice::enroll(&app).await;
    elsewhere.tenant_id = uuid::Uuid::new_v4().to_string();
    assert!(matches!(
        grant(&app, &elsewhere, ("g-bad", "dave-jit", "Temp-Pass-1"), until).await,
        Err(LocalAdminError::UnknownDevice)
    ));
    let bare = app
        .client
        .create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: "no-agent".into(), container_dn: None, os: None },
        )
        .await
        .unwrap();
    let mut not_enrolled = JitDevice::enroll(&app).await;
    not_enrolled.id = bare.device_id.clone();
    assert!(matches!(
        grant(&app, &not_enrolled, ("g-bad", "dave-jit", "Temp-Pass-1"), until).await,
        Err(LocalAdminError::NotEnrolled)
    ));
    assert!(matches!(
        job_state(state(&app), &uuid::Uuid::new_v4().to_string()).await,
        Err(LocalAdminError::Store(StoreError::NotFound))
    ));

    // Nothing was queued or audited by any of these.
    assert!(app.client.device_jobs("default", &device.id, None).await.unwrap().items.is_empty());
    for action in ["jit.activate", "jit.revoke"] {
        assert_eq!(audit_actions(&app, action).await, 0, "{action}");
    }
    assert!(device.run(now(&app)).await.done.is_empty());

    // A password sealed to another device: the agent refuses it, reports the job failed, and
    // creates nothing.
    let other = JitDevice::enroll(&app).await;
    let job_id = uuid::Uuid::new_v4().to_string();
    let aad = proto::local_admin_seal_aad(&device.tenant, &device.id, &job_id, "g2", "erin-jit");
    let blob =
        latchkey_crypto::seal_to_device(&other.key.verifying_key(), proto::LOCAL_ADMIN_SEAL_INFO, &aad, b"Temp-Pass-3")
            .unwrap();
    use base64::Engine;
    let stored = state(&app)
        .store()
        .queue_local_admin_grant(
            latchkey_store::NewLocalAdminGrant {
                job_id: job_id.clone(),
                tenant_id: device.tenant_id.clone(),
                device_id: device.id.clone(),
                grant_id: "g2".into(),
                username: "erin-jit".into(),
                sealed_password: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(blob),
                device_key: device.key.verifying_key().to_base64url(),
                until,
            },
            now(&app),
            engine_event(&app, Action::JitActivate, "g2"),
        )
        .await
        .unwrap();
    assert_eq!(stored, job_id);
    let run = device.run(now(&app)).await;
    assert!(run.done.is_empty(), "{run:?}");
    assert_eq!(run.failed.len(), 1, "{run:?}");
    assert!(run.failed[0].contains("does not open with this device's key"), "{run:?}");
    assert!(!device.exists("erin-jit"));
    assert!(LocalAdmins::load(device.state_dir.path()).unwrap().records().is_empty());
    match job_state(state(&app), &job_id).await.unwrap() {
        LocalAdminJobState::Failed { error } => assert!(error.contains("does not open"), "{error}"),
        other => panic!("the job is {other:?}"),
    }
    assert_eq!(audit_actions(&app, "local_admin.fail").await, 1);
});
