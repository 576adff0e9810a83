//! Re-keying the vault covers the temporary passwords of just-in-time grants: they are
//! re-wrapped with the secret versions (resumable, a batch at a time), the old key cannot be
//! retired while a grant password still uses it, every password is recoverable after the
//! re-wrap, after the old key is retired and after a restart, and a server started with a
//! foreign key file refuses to start when only a grant password could tell.

use std::sync::Arc;

use latchkey_client::Client;
use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_proto as proto;

use crate::helpers::{Backend, TestApp, account_with_password};
use crate::jit_device::{device_request, spawn_device_jit};
use crate::local_admin::JitDevice;

/// Two device grants (their agent never runs: the passwords wait sealed in the store).
async fn two_grants(app: &TestApp) -> Vec<(String, String)> {
    let device = JitDevice::enroll(app).await;
    let ticket = app.client.create_ticket("default", "rekey").await.unwrap().number.to_string();
    let mut grants = Vec::new();
    for who in ["alice", "bob"] {
        let g = app.client.request_jit("default", &device_request(&ticket, 30, &device.id, who)).await.unwrap();
        grants.push((g.grant.id.clone(), g.password.clone()));
    }
    grants
}

async fn assert_recoverable(client: &Client, grants: &[(String, String)]) {
    for (id, password) in grants {
        let r = client.recover_jit_password("default", id, "after rekey").await.unwrap();
        assert_eq!(&r.password, password, "grant {id}");
    }
}

fn envelopes(status: &proto::VaultStatus, key: &str) -> i64 {
    status.keys.iter().find(|k| k.id == key).map_or(0, |k| k.envelopes)
}

async fn rekey_covers_grant_passwords(backend: Backend) {
    let Some(mut app) = spawn_device_jit(backend, 60).await else { return };
    let grants = two_grants(&app).await;
    let account = account_with_password(&app, "default", "svc", "pw-svc").await;
    let c = &app.client;
    let before = c.vault_status().await.unwrap();
    let old = before.active_key_id.clone();
    assert_eq!((envelopes(&before, &old), before.remaining), (3, 0));

    let added = c.add_vault_key().await.unwrap();
    assert_eq!(added.remaining, 3);
    // One at a time: the secret version first, then the grant passwords.
    let step = c.rewrap_vault(1).await.unwrap();
    assert_eq!((step.rewrapped, step.remaining), (1, 2));
    let step = c.rewrap_vault(1).await.unwrap();
    assert_eq!((step.rewrapped, step.remaining), (1, 1));
    // One grant password still uses the old key: it cannot be retired.
    let e = c.retire_vault_key(&old).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Conflict), "{e:?}");
    assert!(e.to_string().contains("grant passwords"), "{e}");
    assert_recoverable(c, &grants).await;
    let step = c.rewrap_vault(10).await.unwrap();
    assert_eq!((step.rewrapped, step.remaining), (1, 0));
    let step = c.rewrap_vault(10).await.unwrap();
    assert_eq!((step.rewrapped, step.remaining), (0, 0));
    let status = c.vault_status().await.unwrap();
    assert_eq!(envelopes(&status, &status.active_key_id), 3);
    assert_recoverable(c, &grants).await;

    let retired = c.retire_vault_key(&old).await.unwrap();
    assert_eq!(retired.keys.len(), 1);
    assert_recoverable(c, &grants).await;

    // The start-up key check reads grant passwords too; a restart opens everything.
    app.stop().await;
    let s = latchkey_server::start(app.config(), Arc::new(ManualClock::new(SystemClock.now()))).await.unwrap();
    let client = Client::new(&format!("http://{}", s.addr), Some(app.token.clone())).unwrap();
    assert_recoverable(&client, &grants).await;
    let r = client
        .reveal_secret("default", &account, &proto::SecretReadRequest { reason: "after rekey".into(), ticket: None })
        .await
        .unwrap();
    assert_eq!(r.password.as_deref(), Some("pw-svc"));
    let audit = client
        .list_audit(&latchkey_client::AuditQuery {
            action: Some("vault.rewrap".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.items.len(), 3, "one event per batch that re-wrapped something");
    assert!(client.verify_audit().await.unwrap().ok);
    s.shutdown().await.unwrap();
}

async fn a_foreign_key_file_is_refused_with_only_grant_passwords(backend: Backend) {
    let Some(mut app) = spawn_device_jit(backend, 60).await else { return };
    two_grants(&app).await;
    app.stop().await;
    let key = app.data_dir.path().join("latchkey.key");
    let original = std::fs::read(&key).unwrap();
    let other = tempfile::tempdir().unwrap();
    latchkey_crypto::Keyring::load_or_create(&other.path().join("k")).unwrap();
    std::fs::copy(other.path().join("k"), &key).unwrap();
    let clock = || Arc::new(ManualClock::new(SystemClock.now()));
    let e = latchkey_server::start(app.config(), clock()).await.err().expect("started with a foreign key file");
    assert!(e.to_string().contains("does not open"), "{e}");
    std::fs::write(&key, &original).unwrap();
    let s = latchkey_server::start(app.config(), clock()).await.unwrap();
    s.shutdown().await.unwrap();
}

mod rekey_covers_grant_passwords {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        rekey_covers_grant_passwords(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        rekey_covers_grant_passwords(Backend::Postgres).await;
    }
}

mod a_foreign_key_file_is_refused_with_only_grant_passwords {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_foreign_key_file_is_refused_with_only_grant_passwords(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_foreign_key_file_is_refused_with_only_grant_passwords(Backend::Postgres).await;
    }
}
