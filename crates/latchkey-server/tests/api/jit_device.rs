//! Just-in-time admin on a device, end to end: a grant asked for through the API is queued by
//! the engine, carried out by the agent's own code on a private root (the account exists, is
//! an administrator and takes the temporary password shown at the request), turns active, and
//! is taken away again (revoked by hand, or at its end) by the agent's next run. A device the
//! server does not know or that has no agent is refused with nothing stored.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use latchkey_client::{Client, ClientError};
use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_proto as proto;
use latchkey_server::jit::{JitConfig, JitPolicyLayer};
use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};

use crate::helpers::{Backend, TestApp, config_for};
use crate::local_admin::{JitDevice, Run, can_manage_accounts};

/// A server whose `default` tenant has the device provider (grants up to `max_minutes`).
pub(crate) async fn spawn_device_jit(backend: Backend, max_minutes: i64) -> Option<TestApp> {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("latchkey.db").display()),
        Backend::Postgres => latchkey_testkit::fresh_postgres_url().await?,
    };
    let mut config = config_for(data_dir.path(), backend, &db_url);
    config.jit = JitConfig::resolve(
        vec![JitPolicyLayer {
            tenant: "default".into(),
            provider: "device".into(),
            max_minutes: Some(max_minutes),
            approval_required: None,
            admin_group: None,
            accounts_ou: None,
            tenant_prefix: None,
            on_revoke: None,
        }],
        vec![],
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = latchkey_server::start(config, clock.clone()).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, Some(token.clone())).unwrap();
    Some(TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend })
}

/// A device grant for `requester` on `device_id`.
pub(crate) fn device_request(ticket: &str, minutes: i64, device_id: &str, requester: &str) -> proto::JitRequest {
    proto::JitRequest {
        provider: "device".into(),
        ticket: ticket.into(),
        minutes,
        reason: "replace the disk driver".into(),
        device_id: Some(device_id.into()),
        requester: Some(requester.into()),
    }
}

fn now(app: &TestApp) -> OffsetDateTime {
    app.clock.now()
}

/// Wait (up to 20 s) until the grant is in `state`, moving the clock past the engine's wait
/// for the agent's job on every look.
async fn wait_state(app: &TestApp, id: &str, state: &str) -> proto::JitGrant {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let g = app.client.jit_grant("default", id).await.unwrap();
        if g.state == state {
            return g;
        }
        assert!(std::time::Instant::now() < deadline, "grant {id} is {} (not {state}): {:?}", g.state, g.last_error);
        app.clock.advance(Duration::seconds(3));
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

/// Run the agent at `at` until it has carried out a job (the engine queues it on its own),
/// moving the clock past the engine's wait between runs.
async fn run_until_done(app: &TestApp, device: &JitDevice, at: impl Fn() -> OffsetDateTime) -> Run {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let run = device.run(at()).await;
        assert!(run.failed.is_empty(), "{run:?}");
        if !run.done.is_empty() {
            return run;
        }
        assert!(std::time::Instant::now() < deadline, "the engine queued no job for the device");
        app.clock.advance(Duration::seconds(3));
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

async fn audit_actions(app: &TestApp, action: &str) -> usize {
    let q = latchkey_client::AuditQuery { action: Some(action.into()), limit: Some(100), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items.len()
}

async fn a_device_grant_runs_through_the_agent(backend: Backend) {
    if !can_manage_accounts() {
        return;
    }
    let Some(app) = spawn_device_jit(backend, 60).await else { return };
    let device = JitDevice::enroll(&app).await;
    let ticket = app.client.create_ticket("default", "driver update").await.unwrap().number.to_string();

    // Revoked by hand.
    let created = app.client.request_jit("default", &device_request(&ticket, 30, &device.id, "Alice")).await.unwrap();
    assert_eq!(created.grant.provider, "device");
    assert_eq!(created.grant.device_id.as_deref(), Some(device.id.as_str()));
    assert_eq!(created.grant.account, "jit_alice");
    // The device has not run yet: the grant waits for its agent.
    assert_eq!(created.grant.state, "approved", "{:?}", created.grant.last_error);
    let id = created.grant.id.clone();
    assert!(!device.exists("jit_alice"));

    let run = run_until_done(&app, &device, || now(&app)).await;
    assert_eq!(run.done.len(), 1, "{run:?}");
    assert!(device.exists("jit_alice"));
    assert!(device.is_admin("jit_alice"));
    assert!(device.has_password("jit_alice", &created.password));
    assert!(!device.has_password("jit_alice", "not-the-password"));
    let active = wait_state(&app, &id, "active").await;
    assert!(active.start_at.is_some());
    assert!(!active.expired);
    let comments = app.client.ticket_comments("default", &ticket).await.unwrap().comments;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].body.contains("The local account jit_alice is now enabled"), "{}", comments[0].body);
    assert!(comments[0].body.contains(&device.id), "{}", comments[0].body);

    let revoking = app.client.revoke_jit("default", &id).await.unwrap();
    assert!(revoking.expired);
    assert_eq!(revoking.state, "revoking");
    let run = run_until_done(&app, &device, || now(&app)).await;
    assert_eq!(run.done.len(), 1, "{run:?}");
    assert!(!device.exists("jit_alice"));
    assert!(!device.is_admin("jit_alice"));
    let revoked = wait_state(&app, &id, "revoked").await;
    assert!(revoked.revoked_at.is_some());
    let comments = app.client.ticket_comments("default", &ticket).await.unwrap().comments;
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(comments[1].body.contains("has been revoked"), "{}", comments[1].body);
    assert_eq!(app.client.revoke_jit("default", &id).await.unwrap_err().status(), Some(409));

    // Ended by time: the engine queues the removal at the end. The agent runs just before its
    // own end time (within the signature's clock skew), so the removal is the server's.
    let created = app.client.request_jit("default", &device_request(&ticket, 10, &device.id, "bob")).await.unwrap();
    let id = created.grant.id.clone();
    run_until_done(&app, &device, || now(&app)).await;
    assert!(device.exists("jit_bob") && device.is_admin("jit_bob"));
    assert!(device.has_password("jit_bob", &created.password));
    let active = wait_state(&app, &id, "active").await;
    app.clock.advance(active.end_at - now(&app) + Duration::seconds(1));
    assert!(app.client.jit_grant("default", &id).await.unwrap().expired);
    let end = active.end_at;
    let run = run_until_done(&app, &device, || end - Duration::seconds(60)).await;
    assert!(run.expired.is_empty(), "{run:?}");
    assert!(!device.exists("jit_bob"));
    assert!(!device.is_admin("jit_bob"));
    wait_state(&app, &id, "revoked").await;

    // Extended while it waits for the agent: the agent carries out the first job, the engine
    // then queues one with the new end, and the grant is active once the device has it.
    let created = app.client.request_jit("default", &device_request(&ticket, 10, &device.id, "carol")).await.unwrap();
    let id = created.grant.id.clone();
    let extended = app.client.extend_jit("default", &id, 20).await.unwrap();
    assert_eq!(extended.state, "approved");
    assert_eq!(extended.end_at, created.grant.end_at + Duration::minutes(20));
    run_until_done(&app, &device, || now(&app)).await;
    let second = run_until_done(&app, &device, || now(&app)).await;
    assert_eq!(second.done.len(), 1, "{second:?}");
    let active = wait_state(&app, &id, "active").await;
    assert_eq!(active.end_at, extended.end_at);
    let records = latchkey_agent::local_admin::LocalAdmins::load(device.state_dir.path()).unwrap();
    let record = records.records().iter().find(|r| r.username == "jit_carol").unwrap();
    assert_eq!(record.until, extended.end_at);
    assert!(device.has_password("jit_carol", &created.password));
    app.client.revoke_jit("default", &id).await.unwrap();
    run_until_done(&app, &device, || now(&app)).await;
    assert!(!device.exists("jit_carol"));
    wait_state(&app, &id, "revoked").await;

    // Each job once when queued by the engine and once when the agent confirmed it.
    assert_eq!(audit_actions(&app, "local_admin.grant").await, 8);
    assert_eq!(audit_actions(&app, "local_admin.revoke").await, 6);
    assert_eq!(audit_actions(&app, "jit.revoked").await, 3);
    assert!(app.client.verify_audit().await.unwrap().ok);
}

async fn a_device_grant_needs_a_known_enrolled_device(backend: Backend) {
    let Some(app) = spawn_device_jit(backend, 60).await else { return };
    let ticket = app.client.create_ticket("default", "device checks").await.unwrap().number.to_string();
    let bare = app
        .client
        .create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: "no-agent".into(), container_dn: None, os: None },
        )
        .await
        .unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(proto::JitRequest, u16, &str)> = vec![
        (device_request(&ticket, 30, &unknown, "carol"), 404, "device"),
        (device_request(&ticket, 30, "not-a-device-id", "carol"), 400, ""),
        (device_request(&ticket, 30, &bare.device_id, "carol"), 400, "no enrolled agent"),
        (proto::JitRequest { device_id: None, ..device_request(&ticket, 30, &unknown, "carol") }, 400, "deviceId"),
        (device_request(&ticket, 61, &bare.device_id, "carol"), 400, "at most 60"),
    ];
    for (req, status, text) in cases {
        match app.client.request_jit("default", &req).await.unwrap_err() {
            ClientError::Api { problem: p } => {
                assert_eq!(p.status, status, "{req:?}: {p:?}");
                assert!(p.detail.as_deref().unwrap_or_default().contains(text), "{req:?}: {p:?}");
            }
            other => panic!("{req:?}: {other:?}"),
        }
    }
    // Nothing stored: no grant, no job, no request in the audit log.
    assert!(app.client.list_jit("default").await.unwrap().grants.is_empty());
    assert!(app.client.device_jobs("default", &bare.device_id, None).await.unwrap().items.is_empty());
    assert_eq!(audit_actions(&app, "jit.request").await, 0);
}

mod a_device_grant_runs_through_the_agent {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_device_grant_runs_through_the_agent(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_device_grant_runs_through_the_agent(Backend::Postgres).await;
    }
}

mod a_device_grant_needs_a_known_enrolled_device {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_device_grant_needs_a_known_enrolled_device(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_device_grant_needs_a_known_enrolled_device(Backend::Postgres).await;
    }
}
