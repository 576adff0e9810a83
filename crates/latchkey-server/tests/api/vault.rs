//! The vault: a ciphertext moved to another row does not open; a corrupt or wrong key file
//! stops the server from starting; re-keying re-wraps every secret and retires the old key.

use std::sync::Arc;

use latchkey_client::AuditQuery;
use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_proto as proto;
use sqlx::{AnyConnection, Connection};

use crate::both;
use crate::helpers::{Backend, TestApp, account_with_password};

async fn raw_db(app: &TestApp) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.db_url).await.unwrap()
}

both!(ciphertext_copied_to_another_row_fails_to_open, |app: TestApp| async move {
    let a = account_with_password(&app, "default", "a", "password-of-a").await;
    let b = account_with_password(&app, "default", "b", "password-of-b").await;
    let mut db = raw_db(&app).await;
    let row: (Vec<u8>,) = sqlx::query_as("SELECT password_envelope FROM secret_versions WHERE account_id = $1")
        .bind(a.clone())
        .fetch_one(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE secret_versions SET password_envelope = $1 WHERE account_id = $2")
        .bind(row.0)
        .bind(b.clone())
        .execute(&mut db)
        .await
        .unwrap();
    let e = app
        .client
        .reveal_secret("default", &b, &proto::SecretReadRequest { reason: "swap".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    let text = e.to_string();
    assert!(!text.contains("password-of-a"), "{text}");
    let failed =
        app.client.list_audit(&AuditQuery { outcome: Some("failed".into()), ..Default::default() }).await.unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(failed.items[0].object_id.as_deref(), Some(b.as_str()));
    // The untouched row still opens.
    let ok = app
        .client
        .reveal_secret("default", &a, &proto::SecretReadRequest { reason: "ok".into(), ticket: None })
        .await
        .unwrap();
    assert_eq!(ok.password.as_deref(), Some("password-of-a"));
});

both!(corrupt_or_wrong_key_file_refuses_to_start, |mut app: TestApp| async move {
    account_with_password(&app, "default", "a", "pw").await;
    app.stop().await;
    let key = app.data_dir.path().join("latchkey.key");
    let original = std::fs::read(&key).unwrap();
    let clock = || Arc::new(ManualClock::new(SystemClock.now()));

    std::fs::write(&key, b"{ this is not a key file").unwrap();
    let e = latchkey_server::start(app.config(), clock()).await.err().expect("started with a corrupt key file");
    assert!(e.to_string().contains("key file"), "{e}");

    // A valid key file that belongs to another installation.
    std::fs::remove_file(&key).unwrap();
    let other = tempfile::tempdir().unwrap();
    latchkey_crypto::Keyring::load_or_create(&other.path().join("k")).unwrap();
    std::fs::copy(other.path().join("k"), &key).unwrap();
    let e = latchkey_server::start(app.config(), clock()).await.err().expect("started with a foreign key file");
    assert!(e.to_string().contains("does not open"), "{e}");

    std::fs::write(&key, &original).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = latchkey_server::start(app.config(), clock()).await.err().expect("started with a world-readable key file");
    assert!(e.to_string().contains("key file"), "{e}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = latchkey_server::start(app.config(), clock()).await.unwrap();
    s.shutdown().await.unwrap();
});

both!(rekey_rewraps_everything_and_retires_the_old_key, |mut app: TestApp| async move {
    let c = &app.client;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(account_with_password(&app, "default", &format!("acct-{i}"), &format!("pw-{i}")).await);
    }
    let before = c.vault_status().await.unwrap();
    let old = before.active_key_id.clone();
    assert_eq!(before.remaining, 0);
    let after_add = c.add_vault_key().await.unwrap();
    assert_ne!(after_add.active_key_id, old);
    assert_eq!(after_add.remaining, 7);
    let e = c.retire_vault_key(&old).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Conflict), "retired a key still in use");
    let step = c.rewrap_vault(3).await.unwrap();
    assert_eq!((step.rewrapped, step.remaining), (3, 4));
    // New secrets use the new key at once, during the re-wrap.
    let fresh = account_with_password(&app, "default", "fresh", "pw-fresh").await;
    let mut last = step;
    while last.remaining > 0 {
        last = c.rewrap_vault(3).await.unwrap();
    }
    let retired = c.retire_vault_key(&old).await.unwrap();
    assert_eq!(retired.keys.len(), 1);
    let e = c.retire_vault_key(&retired.active_key_id).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Conflict));
    for (i, id) in ids.iter().enumerate() {
        let r = c
            .reveal_secret("default", id, &proto::SecretReadRequest { reason: "after rekey".into(), ticket: None })
            .await
            .unwrap();
        assert_eq!(r.password.as_deref(), Some(format!("pw-{i}").as_str()));
    }
    // The key file on disk holds the new key only, and a restart opens everything.
    app.stop().await;
    let s = latchkey_server::start(app.config(), Arc::new(ManualClock::new(SystemClock.now()))).await.unwrap();
    let client = latchkey_client::Client::new(&format!("http://{}", s.addr), Some(app.token.clone())).unwrap();
    let r = client
        .reveal_secret("default", &fresh, &proto::SecretReadRequest { reason: "after restart".into(), ticket: None })
        .await
        .unwrap();
    assert_eq!(r.password.as_deref(), Some("pw-fresh"));
    let audit = client.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"vault.key.add")
            && actions.contains(&"vault.rewrap")
            && actions.contains(&"vault.key.retire")
    );
    assert!(client.verify_audit().await.unwrap().ok);
    s.shutdown().await.unwrap();
    let _ = Backend::Sqlite;
});
