//! Re-wrapping grants' temporary passwords on both backends: listed by key a batch at a
//! time, replaced only when still under the key they were read with, counted per key with
//! the secret versions, and each batch audited with the change.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Db, T0, both, ev, new_tenant};
use latchkey_core::jit::{GrantState, Provider};
use latchkey_core::{Action, ObjectType};
use latchkey_store::{GrantPasswordEnvelope, NewJitGrant, Store};
use time::Duration;

both! {
    grant_passwords_are_rewrapped_by_key => grant_passwords_are_rewrapped_by_key_sqlite, grant_passwords_are_rewrapped_by_key_postgres;
}

async fn grant(store: &Store, tenant_id: &str, who: &str, key_id: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let g = NewJitGrant {
        id: id.clone(),
        tenant_id: tenant_id.to_owned(),
        provider: Provider::Directory,
        device_id: None,
        requester: who.to_owned(),
        requester_key: format!("user:{who}"),
        account_name: format!("{who}-acme"),
        ticket: "7".into(),
        reason: "fix it".into(),
        minutes: 30,
        state: GrantState::Approved,
        created_at: T0,
        end_at: T0 + Duration::minutes(30),
        password_envelope: format!("sealed-{who}").into_bytes(),
        key_id: key_id.to_owned(),
    };
    store.create_jit_grant(g, ev(Action::JitRequest, ObjectType::JitGrant, tenant_id, &id)).await.unwrap();
    id
}

async fn grant_passwords_are_rewrapped_by_key(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let mut ids = Vec::new();
    for who in ["alice", "bob", "carol"] {
        ids.push(grant(&store, &t.id, who, "k1").await);
    }
    grant(&store, &t.id, "dave", "k2").await;
    assert_eq!(store.envelopes_per_key().await.unwrap(), [("k1".to_owned(), 3), ("k2".to_owned(), 1)]);

    let todo = store.grant_passwords_to_rewrap("k2", 100).await.unwrap();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(todo.iter().map(|g| g.grant_id.clone()).collect::<Vec<_>>(), expected);
    assert!(todo.iter().all(|g| g.key_id == "k1" && g.tenant_id == t.id));
    assert_eq!(store.grant_passwords_to_rewrap("k2", 2).await.unwrap().len(), 2);
    // `""` samples any grant (the start-up key check).
    assert_eq!(store.grant_passwords_to_rewrap("", 1).await.unwrap().len(), 1);

    // A batch read under k1; one of them moved to k3 meanwhile and is skipped.
    let moved = GrantPasswordEnvelope { envelope: b"by-k3".to_vec(), key_id: "k3".into(), ..todo[0].clone() };
    let n = store
        .replace_grant_password_envelopes(
            vec![(moved, "k1".into())],
            ev(Action::VaultRewrap, ObjectType::Vault, &t.id, "k3"),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let rewrapped: Vec<_> = todo
        .iter()
        .map(|g| {
            (GrantPasswordEnvelope { envelope: b"by-k2".to_vec(), key_id: "k2".into(), ..g.clone() }, "k1".to_owned())
        })
        .collect();
    let n = store
        .replace_grant_password_envelopes(rewrapped, ev(Action::VaultRewrap, ObjectType::Vault, &t.id, "k2"))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(store.envelopes_per_key().await.unwrap(), [("k2".to_owned(), 3), ("k3".to_owned(), 1)]);
    let g = store.jit_grant(&t.id, &todo[1].grant_id).await.unwrap();
    assert_eq!((g.password_envelope.as_slice(), g.key_id.as_str()), (b"by-k2".as_slice(), "k2"));
    let kept = store.jit_grant(&t.id, &todo[0].grant_id).await.unwrap();
    assert_eq!((kept.password_envelope.as_slice(), kept.key_id.as_str()), (b"by-k3".as_slice(), "k3"));
    // Each batch is one audited change.
    let details = db.raw_strings("SELECT details FROM audit_events WHERE action = 'vault.rewrap' ORDER BY seq").await;
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(
        details[0].contains("\"grant_passwords\":1") && details[1].contains("\"grant_passwords\":2"),
        "{details:?}"
    );
}
