//! People signing in, on both backends: local password hashes, the sign-in record of a
//! principal, sessions (live, expired, revoked, of disabled or removed users) and the failed
//! sign-in counter. Every case runs as `<case>_sqlite` and `<case>_postgres` (skipped with a
//! note when `LATCHKEY_TEST_PG_URL` is unset, unless services are required).

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Db, T0, both, ev, new_id, new_tenant, new_user};
use latchkey_core::{Action, AuditEvent, NewAuditEvent, ObjectType, Outcome, Principal};
use latchkey_store::{AuditFilter, NewSession, SignInFailures, SignInMethod, Store, StoreError, sign_in_day};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

both! {
    password_hashes => password_hashes_sqlite, password_hashes_postgres;
    sign_in_record_by_principal => sign_in_record_by_principal_sqlite, sign_in_record_by_principal_postgres;
    sessions_live_then_gone => sessions_live_then_gone_sqlite, sessions_live_then_gone_postgres;
    sessions_need_an_enabled_user => sessions_need_an_enabled_user_sqlite, sessions_need_an_enabled_user_postgres;
    failure_counter_per_name_and_day => failure_counter_per_name_and_day_sqlite, failure_counter_per_name_and_day_postgres;
    concurrent_failures_all_count => concurrent_failures_all_count_sqlite, concurrent_failures_all_count_postgres;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

async fn events(store: &Store) -> Vec<AuditEvent> {
    store.list_audit(&AuditFilter { limit: 1000, ..AuditFilter::default() }).await.unwrap()
}

fn count(events: &[AuditEvent], action: Action) -> usize {
    events.iter().filter(|e| e.body.action == action).count()
}

async fn chain_ok(store: &Store) {
    if let Err(brk) = store.verify_audit_chain().await.unwrap() {
        panic!("audit chain broken: {brk}");
    }
}

fn principal(raw: &str) -> Principal {
    Principal::parse(raw).unwrap()
}

fn session(tenant_id: &str, user_id: &str, token_byte: u8, expires_at: OffsetDateTime) -> NewSession {
    NewSession {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        user_id: user_id.to_owned(),
        token_hash: [token_byte; 32],
        method: SignInMethod::Local,
        created_at: T0,
        expires_at,
    }
}

fn sign_in_ev(tenant_id: &str, session_id: &str) -> NewAuditEvent {
    ev(Action::SignIn, ObjectType::Session, tenant_id, session_id)
}

fn failure_ev(tenant_id: &str, key: &str, at: OffsetDateTime) -> NewAuditEvent {
    NewAuditEvent::new(at, format!("user:{key}"), Action::SignIn, ObjectType::Session)
        .tenant(tenant_id)
        .outcome(Outcome::Denied)
}

// ---------------------------------------------------------------------------------------------
// Cases

/// A local user's password hash is set with its event and read back by the sign-in record;
/// setting it ends the user's sessions. Unknown users, another tenant's users and directory
/// users are refused, and a refusal changes nothing.
async fn password_hashes(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let alice = new_user(&store, &a.id, "alice").await;
    let bob = new_user(&store, &b.id, "bob").await;

    let rec = store.sign_in_record(&a.id, &principal("alice")).await.unwrap();
    assert_eq!(rec.password_hash, None);
    assert_eq!(rec.source, "local");

    let s = session(&a.id, &alice.id, 1, T0 + Duration::hours(1));
    let sid = s.id.clone();
    store.create_session(s, sign_in_ev(&a.id, &sid)).await.unwrap();
    assert!(store.session_by_token_hash(&[1; 32], T0).await.is_ok());

    let before = events(&store).await.len();
    store
        .set_user_password(
            &a.id,
            &alice.id,
            PHC.into(),
            T0,
            ev(Action::UserPasswordSet, ObjectType::User, &a.id, &alice.id),
        )
        .await
        .unwrap();
    let rec = store.sign_in_record(&a.id, &principal("alice")).await.unwrap();
    assert_eq!(rec.password_hash.as_deref(), Some(PHC));
    assert!(!format!("{rec:?}").contains(PHC), "Debug shows the hash");
    assert_eq!(store.session_by_token_hash(&[1; 32], T0).await.unwrap_err().to_string(), "not found");
    let after = events(&store).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(count(&after, Action::UserPasswordSet), 1);

    // Refused: unknown user, another tenant's user, a directory user. Nothing changes.
    let refuse = |tenant: String, user: String| {
        let store = store.clone();
        async move {
            store
                .set_user_password(
                    &tenant,
                    &user,
                    "x".into(),
                    T0,
                    ev(Action::UserPasswordSet, ObjectType::User, &tenant, &user),
                )
                .await
        }
    };
    assert!(matches!(refuse(a.id.clone(), new_id()).await, Err(StoreError::NotFound)));
    assert!(matches!(refuse(a.id.clone(), bob.id.clone()).await, Err(StoreError::NotFound)));
    let carol = new_user(&store, &a.id, "carol").await;
    db.raw_execute(format!("UPDATE users SET source = 'ldap' WHERE id = '{}'", carol.id)).await;
    assert!(matches!(refuse(a.id.clone(), carol.id.clone()).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.sign_in_record(&b.id, &principal("bob")).await.unwrap().password_hash, None);
    assert_eq!(store.sign_in_record(&a.id, &principal("carol")).await.unwrap().password_hash, None);
    assert_eq!(count(&events(&store).await, Action::UserPasswordSet), 1);
    chain_ok(&store).await;
}

/// `name@suffix` resolves by UPN first, then every form by the account-name key; disabled users
/// are returned with `disabled_at`; other tenants are never searched.
async fn sign_in_record_by_principal(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let alice = new_user(&store, &a.id, "Alice").await;
    // Bob's UPN uses Alice's account name: the UPN wins for that exact UPN.
    let bob = new_user(&store, &a.id, "bob").await;
    db.raw_execute(format!(
        "UPDATE users SET upn = 'alice@Corp.Example', upn_key = 'alice@corp.example', source = 'ldap' WHERE id = '{}'",
        bob.id
    ))
    .await;
    let dave = new_user(&store, &a.id, "dave").await;
    db.raw_execute(format!("UPDATE users SET disabled_at = 1 WHERE id = '{}'", dave.id)).await;
    new_user(&store, &b.id, "erin").await;

    for (raw, want) in [
        ("alice", &alice.id),
        ("ALICE", &alice.id),
        ("CORP\\alice", &alice.id),
        ("alice@other.example", &alice.id),
        ("Alice@CORP.example", &bob.id),
        ("bob", &bob.id),
    ] {
        let rec = store.sign_in_record(&a.id, &principal(raw)).await.unwrap();
        assert_eq!(&rec.id, want, "{raw}");
        assert_eq!(rec.tenant_id, a.id);
    }
    let bob_rec = store.sign_in_record(&a.id, &principal("bob")).await.unwrap();
    assert_eq!(bob_rec.source, "ldap");
    assert_eq!(bob_rec.upn.as_deref(), Some("alice@Corp.Example"));
    assert_eq!(bob_rec.display_name.as_deref(), Some("User bob"));

    let dave_rec = store.sign_in_record(&a.id, &principal("dave")).await.unwrap();
    assert!(dave_rec.disabled_at.is_some());
    assert!(store.sign_in_record(&a.id, &principal("alice")).await.unwrap().disabled_at.is_none());

    for (tenant, raw) in [(&a.id, "carol"), (&a.id, "erin"), (&b.id, "alice"), (&a.id, "alice.x@corp.example")] {
        assert!(matches!(store.sign_in_record(tenant, &principal(raw)).await, Err(StoreError::NotFound)), "{raw}");
    }
}

/// A session is found by its token hash until it expires or is revoked; revoking writes its
/// event, and revoking twice is not found. Each session belongs to its token only.
async fn sessions_live_then_gone(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let alice = new_user(&store, &a.id, "Alice").await;
    let expires = T0 + Duration::hours(1);

    let s = session(&a.id, &alice.id, 7, expires);
    let sid = s.id.clone();
    let created = store.create_session(s, sign_in_ev(&a.id, &sid)).await.unwrap();
    assert_eq!(created.user_name, "Alice");
    assert_eq!(created.user_name_key, "alice");
    assert_eq!(created.email.as_deref(), Some("Alice@example.com"));
    assert_eq!(created.expires_at, expires);

    let found = store.session_by_token_hash(&[7; 32], T0).await.unwrap();
    assert_eq!(found, created);
    assert_eq!(store.live_session(&sid, T0).await.unwrap(), created);
    assert_eq!(found.method, SignInMethod::Local);
    assert!(matches!(store.session_by_token_hash(&[8; 32], T0).await, Err(StoreError::NotFound)));

    // Expiry: live one millisecond before, gone at the instant.
    assert!(store.session_by_token_hash(&[7; 32], expires - Duration::milliseconds(1)).await.is_ok());
    assert!(matches!(store.session_by_token_hash(&[7; 32], expires).await, Err(StoreError::NotFound)));
    assert!(matches!(store.live_session(&sid, expires).await, Err(StoreError::NotFound)));

    // The same token hash cannot open a second session.
    let dup = session(&a.id, &alice.id, 7, expires);
    let dup_id = dup.id.clone();
    assert!(matches!(store.create_session(dup, sign_in_ev(&a.id, &dup_id)).await, Err(StoreError::Conflict(_))));

    // A second session (LDAP) stays live when the first is revoked.
    let mut s2 = session(&a.id, &alice.id, 9, expires);
    s2.method = SignInMethod::Ldap;
    let sid2 = s2.id.clone();
    store.create_session(s2, sign_in_ev(&a.id, &sid2)).await.unwrap();

    let out = ev(Action::SignOut, ObjectType::Session, &a.id, &sid);
    store.revoke_session(&sid, T0, out.clone()).await.unwrap();
    assert!(matches!(store.session_by_token_hash(&[7; 32], T0).await, Err(StoreError::NotFound)));
    assert!(matches!(store.revoke_session(&sid, T0, out).await, Err(StoreError::NotFound)));
    assert_eq!(store.session_by_token_hash(&[9; 32], T0).await.unwrap().method, SignInMethod::Ldap);

    let all = events(&store).await;
    assert_eq!(count(&all, Action::SignIn), 2, "the refused duplicate wrote no event");
    assert_eq!(count(&all, Action::SignOut), 1, "the second revoke wrote no event");
    chain_ok(&store).await;
}

/// No session for a disabled user, an unknown user or another tenant's user; a session ends
/// when its user is disabled or removed.
async fn sessions_need_an_enabled_user(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let alice = new_user(&store, &a.id, "alice").await;
    let dave = new_user(&store, &a.id, "dave").await;
    let bob = new_user(&store, &b.id, "bob").await;
    db.raw_execute(format!("UPDATE users SET disabled_at = 1 WHERE id = '{}'", dave.id)).await;
    let later = T0 + Duration::hours(1);

    for (tenant, user, byte) in [(&a.id, &dave.id, 1u8), (&a.id, &new_id(), 2), (&a.id, &bob.id, 3)] {
        let s = session(tenant, user, byte, later);
        let sid = s.id.clone();
        assert!(matches!(store.create_session(s, sign_in_ev(tenant, &sid)).await, Err(StoreError::NotFound)));
    }
    assert_eq!(count(&events(&store).await, Action::SignIn), 0);

    let s = session(&a.id, &alice.id, 4, later);
    let sid = s.id.clone();
    store.create_session(s, sign_in_ev(&a.id, &sid)).await.unwrap();
    assert!(store.session_by_token_hash(&[4; 32], T0).await.is_ok());
    db.raw_execute(format!("UPDATE users SET disabled_at = 1 WHERE id = '{}'", alice.id)).await;
    assert!(matches!(store.session_by_token_hash(&[4; 32], T0).await, Err(StoreError::NotFound)));
    db.raw_execute(format!("UPDATE users SET disabled_at = NULL WHERE id = '{}'", alice.id)).await;
    assert!(store.session_by_token_hash(&[4; 32], T0).await.is_ok());
    db.raw_execute(format!("DELETE FROM user_sessions WHERE user_id = '{}'", alice.id)).await;
    db.raw_execute(format!("DELETE FROM users WHERE id = '{}'", alice.id)).await;
    assert!(matches!(store.session_by_token_hash(&[4; 32], T0).await, Err(StoreError::NotFound)));
}

/// Failures count per tenant, name key and UTC day, each with its denied event; a new UTC day
/// starts from zero.
async fn failure_counter_per_name_and_day(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let late = datetime!(2030-01-02 23:59:59.999 UTC);

    assert_eq!(store.sign_in_failures(&a.id, "alice", late).await.unwrap(), SignInFailures::default());
    for n in 1..=3 {
        let at = late - Duration::minutes(10 - n);
        let got = store.record_sign_in_failure(&a.id, "alice", at, failure_ev(&a.id, "alice", at)).await.unwrap();
        assert_eq!(got, n);
    }
    let today = store.sign_in_failures(&a.id, "alice", late).await.unwrap();
    assert_eq!(today.failures, 3);
    assert_eq!(today.last_failure_at, Some(late - Duration::minutes(7)));
    assert_eq!(store.sign_in_failures(&a.id, "bob", late).await.unwrap().failures, 0);
    assert_eq!(store.sign_in_failures(&b.id, "alice", late).await.unwrap().failures, 0);

    // The next UTC day starts again; yesterday's count stays yesterday's.
    let tomorrow = late + Duration::milliseconds(1);
    assert_eq!(sign_in_day(tomorrow), sign_in_day(late) + 1);
    assert_eq!(store.sign_in_failures(&a.id, "alice", tomorrow).await.unwrap().failures, 0);
    let got =
        store.record_sign_in_failure(&a.id, "alice", tomorrow, failure_ev(&a.id, "alice", tomorrow)).await.unwrap();
    assert_eq!(got, 1);
    assert_eq!(store.sign_in_failures(&a.id, "alice", late).await.unwrap().failures, 3);

    let all = events(&store).await;
    let denied: Vec<&AuditEvent> =
        all.iter().filter(|e| e.body.action == Action::SignIn && e.body.outcome == Outcome::Denied).collect();
    assert_eq!(denied.len(), 4);
    assert!(denied.iter().all(|e| e.body.actor == "user:alice" && e.body.tenant_id.as_deref() == Some(&*a.id)));
    chain_ok(&store).await;
}

/// Failures recorded at the same time all count (the increment is one statement).
async fn concurrent_failures_all_count(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (store, tenant) = (store.clone(), a.id.clone());
        tasks.push(tokio::spawn(async move {
            let at = T0 + Duration::milliseconds(i);
            store.record_sign_in_failure(&tenant, "alice", at, failure_ev(&tenant, "alice", at)).await.unwrap()
        }));
    }
    let mut seen: Vec<i64> = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<i64>>(), "each failure saw its own count");
    assert_eq!(store.sign_in_failures(&a.id, "alice", T0).await.unwrap().failures, 40);
    chain_ok(&store).await;
}
