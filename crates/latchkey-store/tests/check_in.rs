//! Agent check-ins on both backends: check-ins handled together by the writer (a nonce spent
//! once, even twice in one batch; the last check-in of a device wins; a later check-in of a
//! device decides on what an earlier one in the batch queued), spent nonces kept in the device
//! and forgotten once expired, kept keys checked against the device, and the context a
//! check-in decides on agreeing with the separate reads. Every case runs as `<case>_sqlite`
//! and `<case>_postgres` (the latter skipped with a note when `LATCHKEY_TEST_PG_URL` is unset,
//! unless services are required).

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use common::{Db, T0, both, ev, new_id, new_tenant};
use latchkey_core::model::{Device, GroupMember, MemberKind};
use latchkey_core::{Action, JobCause, JobKind, NewAuditEvent, ObjectType, RotationPolicy};
use latchkey_store::{
    CheckInContext, CheckInWrite, Decide, Enrollment, NewDevice, NewEnrollmentToken, NewGroup, ScopedPolicy, SealFn,
    SealedSecret, Store, StoreError, SupportRequest,
};
use time::{Duration, OffsetDateTime};

/// How long a spent nonce is kept, as the server sets it.
const NONCE_LIFE: Duration = Duration::minutes(10);

both! {
    one_batch_spends_each_nonce_once => one_batch_spends_each_nonce_once_sqlite, one_batch_spends_each_nonce_once_postgres;
    replays_across_batches_are_refused => replays_across_batches_are_refused_sqlite, replays_across_batches_are_refused_postgres;
    expired_nonces_are_forgotten => expired_nonces_are_forgotten_sqlite, expired_nonces_are_forgotten_postgres;
    a_device_spends_a_bounded_number_of_nonces => a_device_spends_a_bounded_number_of_nonces_sqlite, a_device_spends_a_bounded_number_of_nonces_postgres;
    kept_keys_are_checked_against_the_device => kept_keys_are_checked_against_the_device_sqlite, kept_keys_are_checked_against_the_device_postgres;
    keys_asked_for_together_are_each_answered => keys_asked_for_together_are_each_answered_sqlite, keys_asked_for_together_are_each_answered_postgres;
    two_stores_never_accept_a_nonce_twice => two_stores_never_accept_a_nonce_twice_sqlite, two_stores_never_accept_a_nonce_twice_postgres;
    context_agrees_with_the_separate_reads => context_agrees_with_the_separate_reads_sqlite, context_agrees_with_the_separate_reads_postgres;
}

/// The nonces a device's row holds as spent on check-ins, sorted, read on a connection of
/// its own.
async fn nonces(db: &Db, device_id: &str) -> Vec<String> {
    // The id is a UUID the test made.
    let stored = db.raw_strings(format!("SELECT check_in_nonces FROM devices WHERE id = '{device_id}'")).await;
    let pairs: Vec<(String, i64)> = match stored.first().map(String::as_str) {
        None | Some("-") => Vec::new(),
        Some(json) => serde_json::from_str(json).unwrap(),
    };
    let mut nonces: Vec<String> = pairs.into_iter().map(|(n, _)| n).collect();
    nonces.sort();
    nonces
}

fn agent_ev() -> NewAuditEvent {
    NewAuditEvent::new(T0, "agent:test", Action::RotationRequest, ObjectType::DeviceJob)
}

async fn new_device(store: &Store, tenant_id: &str, name: &str) -> Device {
    let id = new_id();
    let d = NewDevice {
        id: id.clone(),
        tenant_id: tenant_id.to_owned(),
        name: name.to_owned(),
        name_key: name.to_lowercase(),
        container_dn: None,
        os: None,
        created_at: T0,
    };
    store.create_device(d, ev(Action::DeviceCreate, ObjectType::Device, tenant_id, &id)).await.unwrap()
}

/// A device enrolled through a one-time token, as an agent leaves it.
async fn enrolled_device(store: &Store, tenant_id: &str, name: &str) -> Device {
    let token_hash: [u8; 32] = rand_bytes();
    let token = NewEnrollmentToken {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        token_hash,
        created_at: T0,
        expires_at: T0 + Duration::hours(1),
    };
    let token_id = token.id.clone();
    store
        .create_enrollment_token(
            token,
            ev(Action::EnrollmentTokenCreate, ObjectType::EnrollmentToken, tenant_id, &token_id),
        )
        .await
        .unwrap();
    let e = Enrollment {
        device_id: new_id(),
        hostname: name.to_owned(),
        hostname_key: name.to_lowercase(),
        os: Some("linux".into()),
        public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
    };
    store.enroll_device(token_hash, T0, e, ev(Action::DeviceEnroll, ObjectType::Device, tenant_id, "")).await.unwrap()
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

/// A plain check-in (nothing to confirm, queue or remove) at `now`.
fn plain(device: &Device, nonce: &str, now: OffsetDateTime, reported: Option<i64>) -> CheckInWrite {
    CheckInWrite {
        device_id: device.id.clone(),
        tenant_id: device.tenant_id.clone(),
        nonce: nonce.to_owned(),
        nonce_expires_at: now + NONCE_LIFE,
        reported_version: reported,
        poll_interval_secs: 1800,
        confirm: None,
        rotate: None,
        remove_support: Vec::new(),
    }
}

async fn check_in(store: &Store, c: CheckInWrite, now: OffsetDateTime) -> Result<(), StoreError> {
    store
        .record_check_in(now, c, agent_ev())
        .await
        .map(|queued| assert!(queued.is_empty(), "a plain check-in queues nothing"))
}

/// Keep the store's writer busy inside a change until the returned sender is dropped or
/// sent to; returns once the writer is held. Everything queued meanwhile lands in one batch.
async fn hold_writer(store: &Store, device: &Device) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    // A rotation job to post a pending version for: the post runs `seal` inside the writer.
    let queued = store
        .record_check_in(
            T0,
            CheckInWrite { rotate: Some(JobCause::Initial), ..plain(device, "hold-writer-nonce-0", T0, None) },
            agent_ev(),
        )
        .await
        .unwrap();
    assert_eq!(queued[0].0.kind, JobKind::RotatePassword);
    let job = queued[0].0.id.clone();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let seal: Box<dyn FnOnce(&str) -> SealFn + Send> = Box::new(move |_account: &str| {
        Box::new(move |version| {
            let _ = held_tx.send(());
            let _ = release_rx.recv_timeout(StdDuration::from_secs(30));
            Ok(SealedSecret {
                password: Some(format!("pw:v{version}").into_bytes()),
                ssh_key: None,
                key_id: "k1".into(),
            })
        })
    });
    let store2 = store.clone();
    let device_id = device.id.clone();
    let name = ("latchkey-admin".to_owned(), "latchkey-admin".to_owned());
    let post = tokio::spawn(async move {
        store2.post_pending(&device_id, &job, name, Duration::hours(1), T0, seal, agent_ev()).await.unwrap();
    });
    held_rx.await.unwrap();
    (release_tx, post)
}

type Pending<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + 'a>>;

/// A plain check-in through `record_check_in`: jobs queued, or the error.
fn recorded<'a>(store: &'a Store, c: CheckInWrite, now: OffsetDateTime) -> Pending<'a> {
    Box::pin(
        async move { store.record_check_in(now, c, agent_ev()).await.map(|q| q.len()).map_err(|e| format!("{e:?}")) },
    )
}

/// A signed check-in through `Store::check_in` with `key`, deciding with `decide`.
fn signed<'a>(store: &'a Store, device: &Device, key: &str, now: OffsetDateTime, decide: Decide) -> Pending<'a> {
    let (id, key) = (device.id.clone(), key.to_owned());
    Box::pin(async move {
        store.check_in(&id, &key, now, agent_ev(), decide).await.map(|(_, q)| q.len()).map_err(|e| format!("{e:?}"))
    })
}

async fn one_batch_spends_each_nonce_once(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-1").await;
    let other = new_device(&store, &t.id, "PC-2").await;
    let e = enrolled_device(&store, &t.id, "PC-3").await;
    let key = e.agent_public_key.clone().unwrap();
    check_in(&store, plain(&d, "spent-earlier-000001", T0, Some(1)), T0).await.unwrap();

    let (release, post) = hold_writer(&store, &d).await;
    let (t1, t2, t3) = (T0 + Duration::seconds(1), T0 + Duration::seconds(2), T0 + Duration::seconds(3));
    let seen_jobs = Arc::new(Mutex::new(Vec::new()));
    let (e1, e2, seen) = (e.clone(), e.clone(), seen_jobs.clone());
    // Queued in this order while the writer is held, so all of them share the next batch.
    let batch = futures::future::join_all([
        recorded(&store, plain(&d, "batch-nonce-0000001", t1, Some(2)), t1),
        recorded(&store, plain(&d, "batch-nonce-0000001", t2, Some(3)), t2),
        recorded(&store, plain(&other, "batch-nonce-0000001", t2, Some(4)), t2),
        recorded(&store, plain(&d, "spent-earlier-000001", t2, Some(5)), t2),
        recorded(&store, plain(&d, "batch-nonce-0000002", t3, Some(6)), t3),
        recorded(&store, plain(&d, "batch-nonce-0000002", t3, Some(7)), t3),
        // A signed check-in that queues a rotation, then one that sees it, in the same batch.
        signed(
            &store,
            &e,
            &key,
            t1,
            Box::new(move |_ctx| CheckInWrite {
                rotate: Some(JobCause::Initial),
                ..plain(&e1, "signed-nonce-000001", t1, None)
            }),
        ),
        signed(
            &store,
            &e,
            &key,
            t2,
            Box::new(move |ctx| {
                seen.lock().unwrap().push(ctx.snapshot.open_jobs.len());
                plain(&e2, "signed-nonce-000002", t2, Some(8))
            }),
        ),
        // The wrong key, and a nonce the first signed check-in spent.
        signed(&store, &e, "another-key", t2, Box::new(|_| panic!("not decided for a key the device does not hold"))),
        {
            let e3 = e.clone();
            signed(&store, &e, &key, t2, Box::new(move |_| plain(&e3, "signed-nonce-000001", t2, None)))
        },
    ]);
    // Released from a thread of its own: a runtime worker is the one held.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(StdDuration::from_millis(300));
        release.send(()).unwrap();
    });
    let answers = batch.await;
    releaser.join().unwrap();
    post.await.unwrap();
    let replay = Err(format!("{:?}", StoreError::Conflict("replayed request")));
    let not_found = Err(format!("{:?}", StoreError::NotFound));
    assert_eq!(
        answers,
        vec![Ok(0), replay.clone(), Ok(0), replay.clone(), Ok(0), replay.clone(), Ok(1), Ok(0), not_found, replay],
        "the first of each device and nonce is kept; a nonce spent in an earlier batch is refused"
    );
    assert_eq!(*seen_jobs.lock().unwrap(), vec![1], "a later check-in decides on what an earlier one queued");

    // The last accepted check-in of each device is what the device row says.
    let seen = store.device(&t.id, &d.id).await.unwrap();
    assert_eq!((seen.last_seen_at, seen.reported_version), (Some(t3), Some(6)));
    let seen = store.device(&t.id, &other.id).await.unwrap();
    assert_eq!((seen.last_seen_at, seen.reported_version), (Some(t2), Some(4)));
    let seen = store.device(&t.id, &e.id).await.unwrap();
    assert_eq!((seen.last_seen_at, seen.reported_version, seen.open_jobs), (Some(t2), Some(8), 1));
    assert_eq!(
        nonces(&db, &d.id).await,
        vec!["batch-nonce-0000001", "batch-nonce-0000002", "hold-writer-nonce-0", "spent-earlier-000001"]
    );
    assert_eq!(nonces(&db, &other.id).await, vec!["batch-nonce-0000001"]);
    assert_eq!(nonces(&db, &e.id).await, vec!["signed-nonce-000001", "signed-nonce-000002"]);
}

async fn replays_across_batches_are_refused(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-1").await;
    check_in(&store, plain(&d, "first-nonce-0000001", T0, Some(1)), T0).await.unwrap();
    let later = T0 + Duration::seconds(30);
    // A plain replay and a replay that would queue work are both refused and change nothing.
    let replay = check_in(&store, plain(&d, "first-nonce-0000001", later, Some(9)), later).await;
    assert!(matches!(replay, Err(StoreError::Conflict(_))), "{replay:?}");
    let replay = store
        .record_check_in(
            later,
            CheckInWrite { rotate: Some(JobCause::Age), ..plain(&d, "first-nonce-0000001", later, Some(9)) },
            agent_ev(),
        )
        .await;
    assert!(matches!(replay, Err(StoreError::Conflict(_))), "{replay:?}");
    let seen = store.device(&t.id, &d.id).await.unwrap();
    assert_eq!((seen.last_seen_at, seen.reported_version, seen.open_jobs), (Some(T0), Some(1), 0));
    // A nonce spent by a check-in that queued work is refused on the plain path too.
    let queued = store
        .record_check_in(
            later,
            CheckInWrite { rotate: Some(JobCause::Age), ..plain(&d, "work-nonce-00000001", later, Some(1)) },
            agent_ev(),
        )
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    let replay = check_in(&store, plain(&d, "work-nonce-00000001", later, Some(1)), later).await;
    assert!(matches!(replay, Err(StoreError::Conflict(_))), "{replay:?}");
    // The same nonce from another device is that device's own.
    let other = new_device(&store, &t.id, "PC-2").await;
    check_in(&store, plain(&other, "first-nonce-0000001", later, None), later).await.unwrap();
}

async fn expired_nonces_are_forgotten(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-1").await;
    let t1 = T0 + Duration::minutes(1);
    check_in(&store, plain(&d, "early-nonce-0000001", T0, None), T0).await.unwrap();
    check_in(&store, plain(&d, "later-nonce-0000001", t1, None), t1).await.unwrap();
    assert_eq!(nonces(&db, &d.id).await, vec!["early-nonce-0000001", "later-nonce-0000001"]);

    // Half a minute after the first expired: the next check-in drops it, not the second.
    let t2 = T0 + NONCE_LIFE + Duration::seconds(30);
    check_in(&store, plain(&d, "third-nonce-0000001", t2, None), t2).await.unwrap();
    assert_eq!(nonces(&db, &d.id).await, vec!["later-nonce-0000001", "third-nonce-0000001"]);
    // A nonce still kept is refused, and the refusal changes nothing.
    let replay = check_in(&store, plain(&d, "later-nonce-0000001", t2, Some(3)), t2).await;
    assert!(matches!(replay, Err(StoreError::Conflict(_))), "{replay:?}");
    assert_eq!(store.device(&t.id, &d.id).await.unwrap().reported_version, None);

    // Long after, a check-in keeps only its own nonce.
    let t3 = t2 + NONCE_LIFE + Duration::minutes(1);
    check_in(&store, plain(&d, "fourth-nonce-000001", t3, None), t3).await.unwrap();
    assert_eq!(nonces(&db, &d.id).await, vec!["fourth-nonce-000001"]);
}

async fn a_device_spends_a_bounded_number_of_nonces(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-1").await;
    for i in 0..64 {
        let at = T0 + Duration::seconds(i);
        check_in(&store, plain(&d, &format!("bounded-nonce-{i:05}"), at, None), at).await.unwrap();
    }
    // A 65th check-in inside the replay window is refused and changes nothing...
    let at = T0 + Duration::seconds(64);
    let refused = check_in(&store, plain(&d, "bounded-nonce-00064", at, Some(1)), at).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    assert_eq!(nonces(&db, &d.id).await.len(), 64);
    assert_eq!(store.device(&t.id, &d.id).await.unwrap().last_seen_at, Some(T0 + Duration::seconds(63)));
    // ...until the first of them expires.
    let at = T0 + NONCE_LIFE + Duration::milliseconds(500);
    check_in(&store, plain(&d, "bounded-nonce-00064", at, Some(1)), at).await.unwrap();
    assert_eq!(nonces(&db, &d.id).await.len(), 64);
}

async fn two_stores_never_accept_a_nonce_twice(db: Db) {
    // Two stores on one database, as two servers sharing PostgreSQL (or two processes on one
    // SQLite file): the same check-in sent to both at once is accepted by exactly one.
    let (a, b) = (db.open().await, db.open().await);
    let t = new_tenant(&a, "acme").await;
    let d = enrolled_device(&a, &t.id, "PC-1").await;
    let key = d.agent_public_key.clone().unwrap();
    for round in 0..20 {
        let at = T0 + Duration::seconds(round);
        let nonce = format!("shared-nonce-{round:06}");
        let send = |store: &Store| {
            let (d, nonce, store, key) = (d.clone(), nonce.clone(), store.clone(), key.clone());
            async move {
                let id = d.id.clone();
                let decide: Decide = Box::new(move |_| plain(&d, &nonce, at, Some(round)));
                store.check_in(&id, &key, at, agent_ev(), decide).await.map(|_| ())
            }
        };
        let (x, y) = tokio::join!(tokio::spawn(send(&a)), tokio::spawn(send(&b)));
        let outcomes = [x.unwrap(), y.unwrap()];
        let accepted = outcomes.iter().filter(|r| r.is_ok()).count();
        let replays = outcomes.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count();
        assert_eq!((accepted, replays), (1, 1), "round {round}: {outcomes:?}");
    }
    assert_eq!(nonces(&db, &d.id).await.len(), 20);
    assert_eq!(a.device(&t.id, &d.id).await.unwrap().reported_version, Some(19));
}

/// Keys not kept yet are read together: many asked for at once, the same device several times
/// among them, an unknown device and one not enrolled, each get their own answer.
async fn keys_asked_for_together_are_each_answered(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let mut enrolled = Vec::new();
    for i in 0..20 {
        enrolled.push(enrolled_device(&store, &t.id, &format!("PC-{i}")).await);
    }
    let plain = new_device(&store, &t.id, "NOT-ENROLLED").await;
    let mut asks: Vec<String> = enrolled.iter().flat_map(|d| [d.id.clone(), d.id.clone(), d.id.clone()]).collect();
    asks.push(plain.id.clone());
    asks.push(new_id());
    let answers = futures::future::join_all(asks.iter().map(|id| store.agent_key(id))).await;
    for (id, answer) in asks.iter().zip(&answers) {
        match enrolled.iter().find(|d| &d.id == id) {
            Some(d) => {
                let key = answer.as_ref().unwrap_or_else(|e| panic!("{id}: {e:?}"));
                assert_eq!(&*key.tenant_id, t.id.as_str());
                assert_eq!(Some(&*key.public_key), d.agent_public_key.as_deref());
            }
            None => assert!(matches!(answer, Err(StoreError::NotFound)), "{id}: {answer:?}"),
        }
    }
    // Each enrolled key is kept now; the others are still read, and still not found.
    for d in &enrolled {
        assert!(store.agent_key(&d.id).await.unwrap().cached);
    }
    assert!(matches!(store.agent_key(&plain.id).await, Err(StoreError::NotFound)));
}

async fn kept_keys_are_checked_against_the_device(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = enrolled_device(&store, &t.id, "PC-1").await;
    let key = d.agent_public_key.clone().unwrap();
    let first = store.agent_key(&d.id).await.unwrap();
    assert_eq!((&*first.tenant_id, &*first.public_key, first.cached), (t.id.as_str(), key.as_str(), false));
    assert!(store.agent_key(&d.id).await.unwrap().cached, "the second read comes from memory");
    store.forget_agent_key(&d.id);
    assert!(!store.agent_key(&d.id).await.unwrap().cached);

    // A check-in verified with a key the device does not hold writes nothing and drops the key.
    assert!(store.agent_key(&d.id).await.unwrap().cached);
    let decide: Decide = Box::new(|_| panic!("not decided for a key the device does not hold"));
    let refused = store.check_in(&d.id, "not-the-device-key", T0, agent_ev(), decide).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert!(!store.agent_key(&d.id).await.unwrap().cached, "read again after a refusal");
    assert!(nonces(&db, &d.id).await.is_empty());
    assert_eq!(store.device(&t.id, &d.id).await.unwrap().last_seen_at, None);

    // Once the device is gone, its kept key gets nothing written either.
    store.delete_device(&t.id, &d.id, ev(Action::DeviceDelete, ObjectType::Device, &t.id, &d.id)).await.unwrap();
    let d2 = d.clone();
    let decide: Decide = Box::new(move |_| plain(&d2, "after-delete-nonce-1", T0, None));
    let refused = store.check_in(&d.id, &key, T0, agent_ev(), decide).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert!(matches!(store.agent_key(&d.id).await, Err(StoreError::NotFound)));
}

/// The context a signed check-in of `device` decides on at `at`; the check-in itself writes
/// nothing but the time.
async fn context_of(store: &Store, device: &Device, at: OffsetDateTime) -> Result<CheckInContext, StoreError> {
    static NONCES: AtomicU64 = AtomicU64::new(0);
    let nonce = format!("context-nonce-{:08}", NONCES.fetch_add(1, Ordering::Relaxed));
    let key = device.agent_public_key.clone().unwrap_or_default();
    let device2 = device.clone();
    let decide: Decide = Box::new(move |ctx| CheckInWrite {
        reported_version: ctx.device.reported_version,
        poll_interval_secs: ctx.device.poll_interval_secs,
        ..plain(&device2, &nonce, at, None)
    });
    let (ctx, queued) = store.check_in(&device.id, &key, at, agent_ev(), decide).await?;
    assert!(queued.is_empty());
    Ok(ctx)
}

async fn context_agrees_with_the_separate_reads(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let never = new_device(&store, &t.id, "PC-0").await;
    let missing = context_of(&store, &never, T0).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "a device that never enrolled has no context");
    assert!(matches!(store.agent_key(&never.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.agent_key(&new_id()).await, Err(StoreError::NotFound)));
    assert!(nonces(&db, &never.id).await.is_empty(), "a refused check-in spends nothing");

    let d = enrolled_device(&store, &t.id, "PC-1").await;
    assert_eq!(&*store.agent_key(&d.id).await.unwrap().public_key, d.agent_public_key.as_deref().unwrap());
    // Fresh: the default policy, no admin account, nothing open.
    let before = store.device(&t.id, &d.id).await.unwrap();
    let ctx = context_of(&store, &d, T0).await.unwrap();
    assert_eq!((ctx.device, ctx.policy), (before, RotationPolicy::default()));
    assert!(
        ctx.snapshot.admin.is_none() && ctx.snapshot.open_jobs.is_empty() && ctx.snapshot.expired_support.is_empty()
    );

    // Policies: the tenant's, then a group's through nested membership.
    let group = |name: &str| {
        let id = new_id();
        let g = NewGroup {
            id: id.clone(),
            tenant_id: t.id.clone(),
            name: name.to_owned(),
            name_key: name.to_lowercase(),
            description: None,
            created_at: T0,
        };
        let event = ev(Action::GroupCreate, ObjectType::Group, &t.id, &id);
        let store = store.clone();
        async move { store.create_group(g, event).await.unwrap() }
    };
    let (inner, outer) = (group("Laptops").await, group("All clients").await);
    let add = |group: String, kind: MemberKind, id: String| {
        let event = ev(Action::GroupMemberAdd, ObjectType::Group, &t.id, &group);
        let (store, tenant) = (store.clone(), t.id.clone());
        async move { store.add_group_member(&tenant, &group, GroupMember { kind, id }, event).await.unwrap() }
    };
    add(inner.id.clone(), MemberKind::Device, d.id.clone()).await;
    add(outer.id.clone(), MemberKind::Group, inner.id.clone()).await;
    let set = |group: Option<String>, priority: i64, length: i64| {
        let policy = RotationPolicy { length, ..RotationPolicy::default() };
        store.set_policy(
            &t.id,
            ScopedPolicy { group_id: group, priority, policy, updated_at: T0 },
            ev(Action::RotationPolicySet, ObjectType::RotationPolicy, &t.id, &t.id),
        )
    };
    let (st, tenant_id, device) = (&store, t.id.as_str(), &d);
    let expect_policy = |length: i64| async move {
        let ctx = context_of(st, device, T0).await.unwrap();
        let separate = st.effective_policy(tenant_id, &device.id).await.unwrap();
        assert_eq!(ctx.policy, separate);
        assert_eq!(ctx.policy.length, length);
    };
    set(None, 0, 30).await.unwrap();
    expect_policy(30).await;
    set(Some(outer.id.clone()), 5, 40).await.unwrap();
    expect_policy(40).await;
    set(Some(inner.id.clone()), 1, 50).await.unwrap();
    expect_policy(50).await;
    // Another device of the tenant, in no group, gets the tenant's policy in the same read.
    let lone = enrolled_device(&store, &t.id, "PC-2").await;
    assert_eq!(context_of(&store, &lone, T0).await.unwrap().policy.length, 30);

    // Each state of the admin password and of jobs: the context's snapshot is the full one.
    let expect_snapshot = |at: OffsetDateTime| async move {
        let full = st.agent_snapshot(&device.id, at).await.unwrap();
        let before = st.device(tenant_id, &device.id).await.unwrap();
        let ctx = context_of(st, device, at).await.unwrap();
        assert_eq!(ctx.snapshot.admin, full.admin);
        assert_eq!(ctx.snapshot.expired_support, full.expired_support);
        assert_eq!(ctx.snapshot.open_jobs, full.open_jobs);
        assert_eq!(ctx.device, before);
        ctx.snapshot
    };
    let queued = store
        .record_check_in(
            T0,
            CheckInWrite { rotate: Some(JobCause::Initial), ..plain(&d, "ctx-nonce-000000001", T0, None) },
            agent_ev(),
        )
        .await
        .unwrap();
    let job = queued[0].0.id.clone();
    assert_eq!(expect_snapshot(T0).await.open_jobs.len(), 1);
    let seal = |pw: &'static str| -> Box<dyn FnOnce(&str) -> SealFn + Send> {
        Box::new(move |_account: &str| {
            Box::new(move |_version| {
                Ok(SealedSecret { password: Some(pw.as_bytes().to_vec()), ssh_key: None, key_id: "k1".into() })
            })
        })
    };
    let name = || ("latchkey-admin".to_owned(), "latchkey-admin".to_owned());
    let p = store.post_pending(&d.id, &job, name(), Duration::hours(1), T0, seal("a"), agent_ev()).await.unwrap();
    assert_eq!(expect_snapshot(T0).await.admin.unwrap().pending, vec![p.version]);
    store.confirm_job(&d.id, &job, Some(p.version), 12, T0, agent_ev()).await.unwrap();
    // The steady state: the active version and nothing else.
    let steady = expect_snapshot(T0).await;
    assert_eq!(steady.admin.unwrap().active.map(|a| a.0), Some(p.version));
    assert!(steady.open_jobs.is_empty());

    // A support account past its lifetime is due for removal.
    let support = match store.request_support_account(&t.id, &d.id, T0, agent_ev()).await.unwrap() {
        SupportRequest::Queued(job) => job,
        other => panic!("{other:?}"),
    };
    let account = ("ADM-5A2F2169".to_owned(), "adm-5a2f2169".to_owned());
    let s = store.post_pending(&d.id, &support, account, Duration::hours(1), T0, seal("s"), agent_ev()).await.unwrap();
    store.confirm_job(&d.id, &support, Some(s.version), 0, T0, agent_ev()).await.unwrap();
    assert!(expect_snapshot(T0).await.expired_support.is_empty());
    assert_eq!(expect_snapshot(T0 + Duration::hours(2)).await.expired_support.len(), 1);
}
