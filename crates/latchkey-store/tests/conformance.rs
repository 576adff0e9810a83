//! One conformance suite for both backends. Every case runs twice, as `<case>_sqlite` (a fresh
//! temporary directory) and `<case>_postgres` (a fresh database in the cluster named by
//! `LATCHKEY_TEST_PG_URL`; skipped with a note when it is unset, unless services are required).
//!
//! Run the PostgreSQL variants with:
//!
//! ```text
//! scripts/services/postgres.sh start && eval "$(scripts/services/postgres.sh env)"
//! cargo test -p latchkey-store --test conformance
//! ```

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{Db, T0, both, ev, new_id, new_tenant, new_user};
use latchkey_core::access::{AuditSettings, Grants, Operation, Reader, RuleIndex, Target, TargetKind};
use latchkey_core::model::{
    Account, AccountKind, Device, Group, GroupMember, MemberKind, SecretState, SecretVersion, Tenant,
};
use latchkey_core::{
    Action, AuditEvent, JobCause, JobKind, NewAuditEvent, ObjectType, Outcome, Principal, RotationPolicy,
};
use latchkey_store::{
    AuditFilter, Backend, CheckInWrite, NewAccount, NewAdminToken, NewApiClient, NewDevice, NewGroup, NewTarget,
    Resolution, ScopedPolicy, SealFn, SealedSecret, Store, StoreError, SupportRequest,
};
use sqlx::{Connection, SqliteConnection};
use time::{Duration, OffsetDateTime};

both! {
    migrations_run_once => migrations_run_once_sqlite, migrations_run_once_postgres;
    tenants => tenants_sqlite, tenants_postgres;
    changes_and_events_commit_together => changes_and_events_commit_together_sqlite, changes_and_events_commit_together_postgres;
    devices => devices_sqlite, devices_postgres;
    groups_and_members => groups_and_members_sqlite, groups_and_members_postgres;
    accounts_and_secret_versions => accounts_and_secret_versions_sqlite, accounts_and_secret_versions_postgres;
    rewrap => rewrap_sqlite, rewrap_postgres;
    api_clients_and_admin_tokens => api_clients_and_admin_tokens_sqlite, api_clients_and_admin_tokens_postgres;
    group_commit_under_concurrency => group_commit_under_concurrency_sqlite, group_commit_under_concurrency_postgres;
    failing_change_does_not_undo_its_batch => failing_change_does_not_undo_its_batch_sqlite, failing_change_does_not_undo_its_batch_postgres;
    two_stores_share_one_chain => two_stores_share_one_chain_sqlite, two_stores_share_one_chain_postgres;
    audit_filters => audit_filters_sqlite, audit_filters_postgres;
    tamper_edited_event => tamper_edited_event_sqlite, tamper_edited_event_postgres;
    tamper_deleted_middle_event => tamper_deleted_middle_event_sqlite, tamper_deleted_middle_event_postgres;
    tamper_truncated_tail => tamper_truncated_tail_sqlite, tamper_truncated_tail_postgres;
    tamper_inserted_beyond_head => tamper_inserted_beyond_head_sqlite, tamper_inserted_beyond_head_postgres;
    long_chain_verifies_across_pages => long_chain_verifies_across_pages_sqlite, long_chain_verifies_across_pages_postgres;
    concurrent_opens => concurrent_opens_sqlite, concurrent_opens_postgres;
    failed_commit_keeps_nothing => failed_commit_keeps_nothing_sqlite, failed_commit_keeps_nothing_postgres;
    close_during_writes => close_during_writes_sqlite, close_during_writes_postgres;
    close_finishes_queued_changes => close_finishes_queued_changes_sqlite, close_finishes_queued_changes_postgres;
    rotation_keeps_every_possible_password => rotation_keeps_every_possible_password_sqlite, rotation_keeps_every_possible_password_postgres;
    support_accounts_live_then_go => support_accounts_live_then_go_sqlite, support_accounts_live_then_go_postgres;
    policies_by_group_then_tenant => policies_by_group_then_tenant_sqlite, policies_by_group_then_tenant_postgres;
    targets_keep_their_order => targets_keep_their_order_sqlite, targets_keep_their_order_postgres;
    targets_refuse_unknown_readers => targets_refuse_unknown_readers_sqlite, targets_refuse_unknown_readers_postgres;
    access_snapshot_follows_changes => access_snapshot_follows_changes_sqlite, access_snapshot_follows_changes_postgres;
    device_search => device_search_sqlite, device_search_postgres;
    user_roles => user_roles_sqlite, user_roles_postgres;
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn everything() -> AuditFilter {
    AuditFilter { limit: 1000, ..AuditFilter::default() }
}

async fn all_events(store: &Store) -> Vec<AuditEvent> {
    store.list_audit(&everything()).await.unwrap()
}

/// (action, object type, tenant, object) of each event, oldest first.
fn summary(events: &[AuditEvent]) -> Vec<(&'static str, &'static str, Option<String>, Option<String>)> {
    events
        .iter()
        .map(|e| {
            (e.body.action.as_str(), e.body.object_type.as_str(), e.body.tenant_id.clone(), e.body.object_id.clone())
        })
        .collect()
}

fn row(
    action: Action,
    object_type: ObjectType,
    tenant: &str,
    object: &str,
) -> (&'static str, &'static str, Option<String>, Option<String>) {
    (action.as_str(), object_type.as_str(), Some(tenant.to_owned()), Some(object.to_owned()))
}

/// The chain verifies; returns how many events it holds.
async fn chain_ok(store: &Store) -> u64 {
    match store.verify_audit_chain().await.unwrap() {
        Ok(n) => n,
        Err(brk) => panic!("audit chain unexpectedly broken: {brk}"),
    }
}

async fn try_device(store: &Store, tenant_id: &str, name: &str) -> (String, Result<Device, StoreError>) {
    let id = new_id();
    let r = store
        .create_device(
            NewDevice {
                id: id.clone(),
                tenant_id: tenant_id.to_owned(),
                name: name.to_owned(),
                name_key: name.to_lowercase(),
                container_dn: Some("OU=Workstations,DC=example,DC=com".into()),
                os: Some("windows".into()),
                created_at: T0,
            },
            ev(Action::DeviceCreate, ObjectType::Device, tenant_id, &id),
        )
        .await;
    (id, r)
}

async fn new_device(store: &Store, tenant_id: &str, name: &str) -> Device {
    try_device(store, tenant_id, name).await.1.unwrap()
}

async fn new_group(store: &Store, tenant_id: &str, name: &str) -> Group {
    let id = new_id();
    store
        .create_group(
            NewGroup {
                id: id.clone(),
                tenant_id: tenant_id.to_owned(),
                name: name.to_owned(),
                name_key: name.to_lowercase(),
                description: None,
                created_at: T0,
            },
            ev(Action::GroupCreate, ObjectType::Group, tenant_id, &id),
        )
        .await
        .unwrap()
}

async fn try_account(
    store: &Store,
    tenant_id: &str,
    kind: AccountKind,
    name: &str,
    device_id: Option<&str>,
) -> (String, Result<Account, StoreError>) {
    let id = new_id();
    let r = store
        .create_account(
            NewAccount {
                id: id.clone(),
                tenant_id: tenant_id.to_owned(),
                kind,
                name: name.to_owned(),
                name_key: name.to_lowercase(),
                device_id: device_id.map(str::to_owned),
                description: None,
                created_at: T0,
            },
            ev(Action::AccountCreate, ObjectType::Account, tenant_id, &id),
        )
        .await;
    (id, r)
}

async fn member(store: &Store, tenant_id: &str, group_id: &str, kind: MemberKind, id: &str) -> Result<(), StoreError> {
    store
        .add_group_member(
            tenant_id,
            group_id,
            GroupMember { kind, id: id.to_owned() },
            ev(Action::GroupMemberAdd, ObjectType::Group, tenant_id, group_id),
        )
        .await
}

/// A seal function that records the version number it was given and binds it into the
/// envelope (`pw:<key>:v<n>`), so the stored envelope shows which number sealing saw.
fn recording_seal(key_id: &str, seen: &Arc<Mutex<Vec<i64>>>) -> SealFn {
    let (key_id, seen) = (key_id.to_owned(), Arc::clone(seen));
    Box::new(move |version| {
        seen.lock().unwrap().push(version);
        Ok(SealedSecret { password: Some(format!("pw:{key_id}:v{version}").into_bytes()), ssh_key: None, key_id })
    })
}

async fn add_version(
    store: &Store,
    tenant_id: &str,
    account_id: &str,
    state: SecretState,
    seal: SealFn,
) -> Result<SecretVersion, StoreError> {
    store
        .add_secret_version(
            tenant_id,
            account_id,
            state,
            None,
            seal,
            ev(Action::SecretSet, ObjectType::Account, tenant_id, account_id),
        )
        .await
}

fn count_action(events: &[AuditEvent], action: Action) -> usize {
    events.iter().filter(|e| e.body.action == action).count()
}

// ---------------------------------------------------------------------------------------------
// Cases

/// Opening migrates; opening the same database again (while the first store is open, and
/// after it closed) is a no-op that keeps the data and the chain.
async fn migrations_run_once(db: Db) {
    let first = db.open().await;
    first.ping().await.unwrap();
    let t = new_tenant(&first, "acme").await;
    let head = first.audit_head().await.unwrap();
    assert_eq!(head.seq, 1);

    let second = db.open().await;
    assert_eq!(second.tenant_by_slug("acme").await.unwrap(), t);
    assert_eq!(second.audit_head().await.unwrap(), head);
    // Both stores write into one chain.
    new_tenant(&second, "beta").await;
    assert_eq!(chain_ok(&first).await, 2);
    second.close().await;
    first.close().await;

    let third = db.open().await;
    assert_eq!(third.list_tenants().await.unwrap().len(), 2);
    assert_eq!(chain_ok(&third).await, 2);
    third.close().await;

    // Every migration is recorded once and none is left half-applied.
    let applied = db.raw_i64("SELECT COUNT(*) FROM _sqlx_migrations").await;
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count() as i64;
    assert_eq!(applied, files);
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success").await, 0);
}

/// Several stores opening one database at once (servers starting together, or the CLI while
/// the server runs) all succeed and share it.
async fn concurrent_opens(db: Db) {
    if db.backend == Backend::Sqlite {
        // SQLite's migrator takes no lock: two processes creating the same *new* file at once
        // can race on the first migration ("table tenants already exists"). SQLite is one
        // server per file, so only the already-migrated case is held to this.
        db.open().await.close().await;
    }
    let db = Arc::new(db);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move { Store::open(&db.url).await }));
    }
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.unwrap().unwrap());
    }
    for (i, store) in stores.iter().enumerate() {
        new_tenant(store, &format!("t{i}")).await;
    }
    for store in &stores {
        assert_eq!(store.list_tenants().await.unwrap().len(), 4);
        assert_eq!(chain_ok(store).await, 4);
    }
    // Each migration ran once, whichever store got there first.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM _sqlx_migrations").await, files as i64);
}

/// SQLite runs in WAL mode: the mode is persistent in the file, and a write leaves a `-wal`
/// file next to the database while the store is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_uses_wal_sqlite() {
    let db = Db::sqlite();
    let store = db.open().await;
    new_tenant(&store, "acme").await;
    let wal = PathBuf::from(format!("{}-wal", db.sqlite_path().display()));
    assert!(db.sqlite_path().exists());
    assert!(wal.exists(), "{} missing: not in WAL mode", wal.display());

    let mut c = SqliteConnection::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut c).await.unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    c.close().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    assert!(matches!(Store::open("mysql://localhost/x").await, Err(StoreError::UnsupportedUrl)));
}

async fn tenants(db: Db) {
    let store = db.open().await;
    assert!(store.list_tenants().await.unwrap().is_empty());
    let zeta = new_tenant(&store, "zeta").await;
    let alpha = new_tenant(&store, "alpha").await;
    let mid = new_tenant(&store, "mid").await;

    assert_eq!(store.tenant_by_slug("alpha").await.unwrap(), alpha);
    assert_eq!(store.tenant_by_id(&zeta.id).await.unwrap(), zeta);
    assert_eq!(store.tenant_by_id(&zeta.id).await.unwrap().created_at, T0);
    let slugs: Vec<_> = store.list_tenants().await.unwrap().into_iter().map(|t| t.slug).collect();
    assert_eq!(slugs, ["alpha", "mid", "zeta"]);

    assert!(matches!(store.tenant_by_slug("nope").await, Err(StoreError::NotFound)));
    assert!(matches!(store.tenant_by_id(&new_id()).await, Err(StoreError::NotFound)));

    // A duplicate slug is a conflict, and leaves neither a row nor an event.
    let dup_id = new_id();
    let dup = store
        .create_tenant(
            Tenant { id: dup_id.clone(), slug: "mid".into(), name: "Another".into(), created_at: T0 },
            ev(Action::TenantCreate, ObjectType::Tenant, &dup_id, &dup_id),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(matches!(store.tenant_by_id(&dup_id).await, Err(StoreError::NotFound)));
    assert_eq!(store.tenant_by_slug("mid").await.unwrap(), mid);
    assert_eq!(store.list_tenants().await.unwrap().len(), 3);
    let events = all_events(&store).await;
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.body.object_id.as_deref() != Some(dup_id.as_str())));
    assert_eq!(chain_ok(&store).await, 3);
}

/// Each change writes its event in its own transaction, in order; a failed change writes
/// neither its rows nor its event.
async fn changes_and_events_commit_together(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-01").await;
    let g = new_group(&store, &t.id, "Admins").await;
    let u = new_user(&store, &t.id, "alice").await;
    let (a_id, a) = try_account(&store, &t.id, AccountKind::DeviceAdmin, "Administrator", Some(&d.id)).await;
    a.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    add_version(&store, &t.id, &a_id, SecretState::Active, recording_seal("k1", &seen)).await.unwrap();
    member(&store, &t.id, &g.id, MemberKind::User, &u.id).await.unwrap();

    let events = all_events(&store).await;
    assert_eq!(
        summary(&events),
        vec![
            row(Action::TenantCreate, ObjectType::Tenant, &t.id, &t.id),
            row(Action::DeviceCreate, ObjectType::Device, &t.id, &d.id),
            row(Action::GroupCreate, ObjectType::Group, &t.id, &g.id),
            row(Action::UserCreate, ObjectType::User, &t.id, &u.id),
            row(Action::AccountCreate, ObjectType::Account, &t.id, &a_id),
            row(Action::SecretSet, ObjectType::Account, &t.id, &a_id),
            row(Action::GroupMemberAdd, ObjectType::Group, &t.id, &g.id),
        ]
    );
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e.body.actor == "test" && e.body.outcome == Outcome::Success && e.body.at == T0));
    // The secret event names the version the store allocated.
    let details: serde_json::Value = serde_json::from_str(&events[5].body.details).unwrap();
    assert_eq!(details, serde_json::json!({ "version": 1, "state": "active" }));

    // Failing changes of every kind: no row, no event, head unchanged.
    let head = store.audit_head().await.unwrap();
    let (dup_dev, r) = try_device(&store, &t.id, "pc-01").await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let (dup_acc, r) = try_account(&store, &t.id, AccountKind::DeviceAdmin, "administrator", Some(&d.id)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = member(&store, &t.id, &g.id, MemberKind::User, &u.id).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = member(&store, &t.id, &g.id, MemberKind::Device, &new_id()).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert!(matches!(store.device(&t.id, &dup_dev).await, Err(StoreError::NotFound)));
    assert!(matches!(store.account(&t.id, &dup_acc).await, Err(StoreError::NotFound)));
    assert_eq!(store.group_members(&t.id, &g.id).await.unwrap().len(), 1);
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(all_events(&store).await, events);
    assert_eq!(chain_ok(&store).await, 7);
}

async fn devices(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(new_device(&store, &a.id, &format!("PC-{i:02}")).await.id);
    }
    ids.sort();
    let d0 = store.device(&a.id, &ids[0]).await.unwrap();
    assert_eq!(d0.tenant_id, a.id);
    assert_eq!(d0.created_at, T0);
    assert_eq!(d0.poll_interval_secs, 1800);
    assert_eq!(d0.enrolled_at, None);
    assert_eq!(d0.os.as_deref(), Some("windows"));

    // Paging by id: limit and cursor.
    let all: Vec<_> = store.list_devices(&a.id, None, 100).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(all, ids);
    let page1: Vec<_> = store.list_devices(&a.id, None, 2).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(page1, ids[..2]);
    let page2: Vec<_> =
        store.list_devices(&a.id, Some(&page1[1]), 2).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(page2, ids[2..4]);
    let page3: Vec<_> =
        store.list_devices(&a.id, Some(&page2[1]), 2).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(page3, ids[4..]);
    assert!(store.list_devices(&a.id, Some(&ids[4]), 2).await.unwrap().is_empty());
    assert!(store.list_devices(&b.id, None, 100).await.unwrap().is_empty());

    // Names are unique per tenant, case-insensitively (by name_key); other tenants may reuse them.
    let (dup, r) = try_device(&store, &a.id, "pc-00").await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert!(matches!(store.device(&a.id, &dup).await, Err(StoreError::NotFound)));
    let in_b = new_device(&store, &b.id, "PC-00").await;

    // Another tenant's device: invisible and not deletable.
    assert!(matches!(store.device(&b.id, &ids[0]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.device(&a.id, &in_b.id).await, Err(StoreError::NotFound)));
    let r = store.delete_device(&b.id, &ids[0], ev(Action::DeviceDelete, ObjectType::Device, &b.id, &ids[0])).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    store.device(&a.id, &ids[0]).await.unwrap();

    // Deleting a device removes its accounts, their secrets and its memberships.
    let g = new_group(&store, &a.id, "G").await;
    member(&store, &a.id, &g.id, MemberKind::Device, &ids[0]).await.unwrap();
    let (acc, r) = try_account(&store, &a.id, AccountKind::DeviceAdmin, "Administrator", Some(&ids[0])).await;
    r.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    add_version(&store, &a.id, &acc, SecretState::Active, recording_seal("k1", &seen)).await.unwrap();
    assert_eq!(store.envelopes_per_key().await.unwrap(), vec![("k1".to_owned(), 1)]);
    store.delete_device(&a.id, &ids[0], ev(Action::DeviceDelete, ObjectType::Device, &a.id, &ids[0])).await.unwrap();
    assert!(matches!(store.device(&a.id, &ids[0]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.account(&a.id, &acc).await, Err(StoreError::NotFound)));
    assert!(store.envelopes_per_key().await.unwrap().is_empty());
    assert!(store.group_members(&a.id, &g.id).await.unwrap().is_empty());
    assert_eq!(store.list_devices(&a.id, None, 100).await.unwrap().len(), 4);
    let r = store.delete_device(&a.id, &ids[0], ev(Action::DeviceDelete, ObjectType::Device, &a.id, &ids[0])).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");

    let events = all_events(&store).await;
    let deletes: Vec<_> = events.iter().filter(|e| e.body.action == Action::DeviceDelete).collect();
    assert_eq!(deletes.len(), 1, "only the successful delete is audited");
    assert_eq!(deletes[0].body.object_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(count_action(&events, Action::DeviceCreate), 6);
    assert_eq!(chain_ok(&store).await, events.len() as u64);
}

async fn groups_and_members(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let g1 = new_group(&store, &a.id, "G1").await;
    let g2 = new_group(&store, &a.id, "G2").await;
    let g3 = new_group(&store, &a.id, "G3").await;
    let d = new_device(&store, &a.id, "PC").await;
    let u = new_user(&store, &a.id, "alice").await;
    let gb = new_group(&store, &b.id, "GB").await;
    let db_ = new_device(&store, &b.id, "PC").await;
    let ub = new_user(&store, &b.id, "bob").await;

    assert_eq!(store.group(&a.id, &g1.id).await.unwrap(), g1);
    assert!(matches!(store.group(&b.id, &g1.id).await, Err(StoreError::NotFound)));
    let names: Vec<_> = store.list_groups(&a.id).await.unwrap().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["G1", "G2", "G3"]);
    assert_eq!(store.list_users(&a.id).await.unwrap(), vec![u.clone()]);

    member(&store, &a.id, &g1.id, MemberKind::User, &u.id).await.unwrap();
    member(&store, &a.id, &g1.id, MemberKind::Device, &d.id).await.unwrap();
    member(&store, &a.id, &g2.id, MemberKind::Group, &g1.id).await.unwrap();
    assert_eq!(
        store.group_members(&a.id, &g1.id).await.unwrap(),
        vec![
            GroupMember { kind: MemberKind::Device, id: d.id.clone() },
            GroupMember { kind: MemberKind::User, id: u.id.clone() },
        ]
    );
    assert_eq!(
        store.group_members(&a.id, &g2.id).await.unwrap(),
        vec![GroupMember { kind: MemberKind::Group, id: g1.id.clone() }]
    );
    assert!(matches!(store.group_members(&b.id, &g1.id).await, Err(StoreError::NotFound)));
    let head = store.audit_head().await.unwrap();

    // Members (or groups) of another tenant: NotFound, nothing written.
    for (group, kind, id) in [
        (&g1.id, MemberKind::Device, &db_.id),
        (&g1.id, MemberKind::User, &ub.id),
        (&g1.id, MemberKind::Group, &gb.id),
        (&gb.id, MemberKind::Device, &d.id),
    ] {
        let r = member(&store, &a.id, group, kind, id).await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{kind:?} {r:?}");
    }
    // Cycles: directly, through a chain, and a group into itself.
    let r = member(&store, &a.id, &g1.id, MemberKind::Group, &g2.id).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = member(&store, &a.id, &g3.id, MemberKind::Group, &g3.id).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // A duplicate membership.
    let r = member(&store, &a.id, &g1.id, MemberKind::User, &u.id).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(store.group_members(&a.id, &g1.id).await.unwrap().len(), 2);
    assert!(store.group_members(&a.id, &g3.id).await.unwrap().is_empty());
    assert!(store.group_members(&b.id, &gb.id).await.unwrap().is_empty());

    member(&store, &a.id, &g3.id, MemberKind::Group, &g2.id).await.unwrap();
    let r = member(&store, &a.id, &g1.id, MemberKind::Group, &g3.id).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "G1 ⊂ G2 ⊂ G3: {r:?}");

    // Nested membership is transitive.
    let device = GroupMember { kind: MemberKind::Device, id: d.id.clone() };
    let user = GroupMember { kind: MemberKind::User, id: u.id.clone() };
    let of = |m: GroupMember, t: String| {
        let store = store.clone();
        async move { store.groups_of(&t, &m).await.unwrap().into_iter().map(|g| g.id).collect::<Vec<_>>() }
    };
    assert_eq!(of(device.clone(), a.id.clone()).await, [g1.id.clone(), g2.id.clone(), g3.id.clone()]);
    assert_eq!(of(user.clone(), a.id.clone()).await, [g1.id.clone(), g2.id.clone(), g3.id.clone()]);
    assert_eq!(
        of(GroupMember { kind: MemberKind::Group, id: g1.id.clone() }, a.id.clone()).await,
        [g2.id.clone(), g3.id.clone()]
    );
    assert!(of(device.clone(), b.id.clone()).await.is_empty());
    // The kind matters: a device id asked as a user is in no group.
    assert!(of(GroupMember { kind: MemberKind::User, id: d.id.clone() }, a.id.clone()).await.is_empty());

    // Removal.
    let remove = |t: String, g: String, m: GroupMember| {
        let store = store.clone();
        async move { store.remove_group_member(&t, &g, m, ev(Action::GroupMemberRemove, ObjectType::Group, &t, &g)).await }
    };
    remove(a.id.clone(), g1.id.clone(), device.clone()).await.unwrap();
    assert!(of(device.clone(), a.id.clone()).await.is_empty());
    assert_eq!(of(user.clone(), a.id.clone()).await.len(), 3);
    let r = remove(a.id.clone(), g1.id.clone(), device.clone()).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let r = remove(b.id.clone(), g1.id.clone(), user.clone()).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "another tenant's group: {r:?}");
    assert_eq!(store.group_members(&a.id, &g1.id).await.unwrap(), vec![user]);

    let events = all_events(&store).await;
    assert_eq!(count_action(&events, Action::GroupMemberAdd), 4);
    assert_eq!(count_action(&events, Action::GroupMemberRemove), 1);
    assert_eq!(chain_ok(&store).await, events.len() as u64);
}

async fn accounts_and_secret_versions(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let d = new_device(&store, &a.id, "PC").await;
    let d_b = new_device(&store, &b.id, "PC").await;

    let (gen_id, generic) = try_account(&store, &a.id, AccountKind::Generic, "Backup", None).await;
    let generic = generic.unwrap();
    assert_eq!(generic.device_id, None);
    let (adm_id, admin) = try_account(&store, &a.id, AccountKind::DeviceAdmin, "Administrator", Some(&d.id)).await;
    let admin = admin.unwrap();
    assert_eq!(admin.device_id.as_deref(), Some(d.id.as_str()));
    assert_eq!(store.account(&a.id, &adm_id).await.unwrap(), (admin.clone(), None));
    assert!(matches!(store.account(&b.id, &adm_id).await, Err(StoreError::NotFound)));

    // A device of another tenant, or no device at all: NotFound, nothing written.
    let head = store.audit_head().await.unwrap();
    let (x, r) = try_account(&store, &a.id, AccountKind::DeviceAdmin, "Other", Some(&d_b.id)).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert!(matches!(store.account(&a.id, &x).await, Err(StoreError::NotFound)));
    let (_, r) = try_account(&store, &a.id, AccountKind::DeviceAdmin, "Ghost", Some(&new_id())).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    // Names are unique per scope: the generic "Backup" and a device's "Backup" may coexist.
    let (_, r) = try_account(&store, &a.id, AccountKind::Generic, "BACKUP", None).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(store.audit_head().await.unwrap(), head);
    let (_, r) = try_account(&store, &a.id, AccountKind::Support, "Backup", Some(&d.id)).await;
    r.unwrap();
    assert_eq!(store.list_accounts(&a.id).await.unwrap().len(), 3);
    assert!(store.list_accounts(&b.id).await.unwrap().is_empty());

    // Versions: the seal closure gets the allocated number; Active retires the previous one.
    let seen = Arc::new(Mutex::new(Vec::new()));
    assert!(matches!(store.active_secret(&a.id, &adm_id).await, Err(StoreError::NotFound)));
    let v1 = add_version(&store, &a.id, &adm_id, SecretState::Active, recording_seal("k1", &seen)).await.unwrap();
    assert_eq!((v1.version, v1.state), (1, SecretState::Active));
    assert_eq!(v1.password_envelope.as_deref(), Some(&b"pw:k1:v1"[..]));
    let v2 = add_version(&store, &a.id, &adm_id, SecretState::Active, recording_seal("k1", &seen)).await.unwrap();
    assert_eq!((v2.version, v2.state), (2, SecretState::Active));
    assert_eq!(*seen.lock().unwrap(), [1, 2]);

    let (acc, active) = store.active_secret(&a.id, &adm_id).await.unwrap();
    assert_eq!(acc, admin);
    assert_eq!(active, v2);
    assert_eq!(active.password_envelope.as_deref(), Some(&b"pw:k1:v2"[..]));
    assert_eq!(active.ssh_key_envelope, None);
    assert_eq!(active.created_at, T0);
    let versions = store.secret_versions(&a.id, &adm_id).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.state)).collect::<Vec<_>>(),
        [(2, SecretState::Active), (1, SecretState::Retired)]
    );
    assert_eq!(versions[1].password_envelope.as_deref(), Some(&b"pw:k1:v1"[..]));
    assert_eq!(store.account(&a.id, &adm_id).await.unwrap().1, Some(2));
    assert!(matches!(store.active_secret(&b.id, &adm_id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.secret_versions(&b.id, &adm_id).await, Err(StoreError::NotFound)));

    // Sealing fails: StoreError::Seal, nothing stored, no event, the active version stays.
    let head = store.audit_head().await.unwrap();
    let failing: SealFn = Box::new(|_| Err("hsm unavailable".to_owned()));
    let r = add_version(&store, &a.id, &adm_id, SecretState::Active, failing).await;
    assert!(matches!(&r, Err(StoreError::Seal(m)) if m == "hsm unavailable"), "{r:?}");
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(store.secret_versions(&a.id, &adm_id).await.unwrap(), versions);
    assert_eq!(store.active_secret(&a.id, &adm_id).await.unwrap().1, v2);
    // Another tenant's account: NotFound, and sealing is never asked.
    let r = add_version(&store, &b.id, &adm_id, SecretState::Active, recording_seal("k1", &seen)).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(*seen.lock().unwrap(), [1, 2]);
    assert_eq!(store.audit_head().await.unwrap(), head);

    // A Pending version does not retire the active one; its number follows on.
    let v3 = add_version(&store, &a.id, &adm_id, SecretState::Pending, recording_seal("k1", &seen)).await.unwrap();
    assert_eq!((v3.version, v3.state), (3, SecretState::Pending));
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    assert_eq!(store.active_secret(&a.id, &adm_id).await.unwrap().1.version, 2);
    assert_eq!(
        store.secret_versions(&a.id, &adm_id).await.unwrap().iter().map(|v| (v.version, v.state)).collect::<Vec<_>>(),
        [(3, SecretState::Pending), (2, SecretState::Active), (1, SecretState::Retired)]
    );
    // Version numbers are per account.
    let g1 = add_version(&store, &a.id, &gen_id, SecretState::Active, recording_seal("k1", &seen)).await.unwrap();
    assert_eq!(g1.version, 1);

    let events = all_events(&store).await;
    let sets: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.body.action == Action::SecretSet)
        .map(|e| serde_json::from_str(&e.body.details).unwrap())
        .collect();
    assert_eq!(
        sets,
        [
            serde_json::json!({ "version": 1, "state": "active" }),
            serde_json::json!({ "version": 2, "state": "active" }),
            serde_json::json!({ "version": 3, "state": "pending" }),
            serde_json::json!({ "version": 1, "state": "active" }),
        ]
    );
    assert_eq!(chain_ok(&store).await, events.len() as u64);
}

async fn rewrap(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut accounts = Vec::new();
    for name in ["one", "two"] {
        let (id, r) = try_account(&store, &t.id, AccountKind::Generic, name, None).await;
        r.unwrap();
        accounts.push(id);
    }
    accounts.sort();
    for acc in &accounts {
        for _ in 0..2 {
            add_version(&store, &t.id, acc, SecretState::Active, recording_seal("k1", &seen)).await.unwrap();
        }
    }
    let (fresh, r) = try_account(&store, &t.id, AccountKind::Generic, "fresh", None).await;
    r.unwrap();
    add_version(&store, &t.id, &fresh, SecretState::Active, recording_seal("k2", &seen)).await.unwrap();
    assert_eq!(store.envelopes_per_key().await.unwrap(), [("k1".to_owned(), 4), ("k2".to_owned(), 1)]);

    // Everything not under k2, oldest first per account; the limit applies.
    let todo = store.versions_to_rewrap("k2", 100).await.unwrap();
    assert_eq!(
        todo.iter().map(|v| (v.account_id.clone(), v.version)).collect::<Vec<_>>(),
        [(accounts[0].clone(), 1), (accounts[0].clone(), 2), (accounts[1].clone(), 1), (accounts[1].clone(), 2),]
    );
    assert!(todo.iter().all(|v| v.key_id == "k1"));
    assert_eq!(store.versions_to_rewrap("k2", 3).await.unwrap().len(), 3);
    assert_eq!(store.versions_to_rewrap("k9", 100).await.unwrap().len(), 5);

    // Meanwhile another rewrap moved one version to k3: the stale replacement is skipped.
    let mut moved = todo[0].clone();
    moved.key_id = "k3".into();
    moved.password_envelope = Some(b"pw:k3".to_vec());
    let n = store
        .replace_envelopes(vec![(moved, "k1".into())], ev(Action::VaultRewrap, ObjectType::Vault, &t.id, "k3"))
        .await
        .unwrap();
    assert_eq!(n, 1);

    let rewrapped: Vec<_> = todo
        .iter()
        .map(|v| {
            let mut w = v.clone();
            w.key_id = "k2".into();
            w.password_envelope = Some(format!("pw:k2:v{}", v.version).into_bytes());
            (w, v.key_id.clone())
        })
        .collect();
    let n = store.replace_envelopes(rewrapped, ev(Action::VaultRewrap, ObjectType::Vault, &t.id, "k2")).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(store.envelopes_per_key().await.unwrap(), [("k2".to_owned(), 4), ("k3".to_owned(), 1)]);
    let kept = store.secret_versions(&t.id, &accounts[0]).await.unwrap();
    assert_eq!(kept[1].version, 1);
    assert_eq!(kept[1].key_id, "k3");
    assert_eq!(kept[1].password_envelope.as_deref(), Some(&b"pw:k3"[..]));
    assert_eq!(kept[0].key_id, "k2");
    assert_eq!(kept[0].password_envelope.as_deref(), Some(&b"pw:k2:v2"[..]));
    // Re-wrapping does not change states.
    assert_eq!(kept[0].state, SecretState::Active);
    assert_eq!(kept[1].state, SecretState::Retired);
    assert_eq!(store.versions_to_rewrap("k2", 100).await.unwrap().len(), 1);

    let rewraps: Vec<serde_json::Value> = store
        .list_audit(&AuditFilter { action: Some(Action::VaultRewrap.as_str().into()), ..everything() })
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&e.body.details).unwrap())
        .collect();
    assert_eq!(rewraps, [serde_json::json!({ "rewrapped": 1 }), serde_json::json!({ "rewrapped": 3 })]);
    assert_eq!(chain_ok(&store).await, all_events(&store).await.len() as u64);
}

async fn api_clients_and_admin_tokens(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;

    let client_id = new_id();
    let client = store
        .create_api_client(
            NewApiClient {
                id: client_id.clone(),
                tenant_id: t.id.clone(),
                name: "RMM".into(),
                name_key: "rmm".into(),
                secret_hash: [7; 32],
                created_at: T0,
            },
            ev(Action::ApiClientCreate, ObjectType::ApiClient, &t.id, &client_id),
        )
        .await
        .unwrap();
    assert_eq!(store.api_client_by_secret(&client_id, &[7; 32]).await.unwrap(), client);
    assert!(matches!(store.api_client_by_secret(&client_id, &[8; 32]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.api_client_by_secret(&new_id(), &[7; 32]).await, Err(StoreError::NotFound)));
    assert_eq!(store.list_api_clients(&t.id).await.unwrap(), vec![client]);
    let dup_id = new_id();
    let r = store
        .create_api_client(
            NewApiClient {
                id: dup_id.clone(),
                tenant_id: t.id.clone(),
                name: "rmm".into(),
                name_key: "rmm".into(),
                secret_hash: [9; 32],
                created_at: T0,
            },
            ev(Action::ApiClientCreate, ObjectType::ApiClient, &t.id, &dup_id),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");

    assert_eq!(store.count_admin_tokens().await.unwrap(), 0);
    let token = |hash: u8, tenant: Option<String>, expires_at: Option<OffsetDateTime>| {
        let store = store.clone();
        async move {
            let id = new_id();
            let event = NewAuditEvent::new(T0, "test", Action::AdminTokenCreate, ObjectType::AdminToken).object(&id);
            store
                .create_admin_token(
                    NewAdminToken {
                        id,
                        tenant_id: tenant,
                        name: format!("token {hash}"),
                        token_hash: [hash; 32],
                        created_at: T0,
                        expires_at,
                    },
                    event,
                )
                .await
        }
    };
    let global = token(1, None, None).await.unwrap();
    let scoped = token(2, Some(t.id.clone()), Some(T0 + Duration::hours(1))).await.unwrap();
    assert_eq!(store.count_admin_tokens().await.unwrap(), 2);

    assert_eq!(store.admin_token_by_hash(&[1; 32], T0 + Duration::days(3650)).await.unwrap(), global);
    assert_eq!(store.admin_token_by_hash(&[2; 32], T0).await.unwrap(), scoped);
    assert_eq!(scoped.tenant_id.as_deref(), Some(t.id.as_str()));
    assert_eq!(scoped.expires_at, Some(T0 + Duration::hours(1)));
    // Expired at `now` (the bound is exclusive) and later: not found.
    assert!(matches!(store.admin_token_by_hash(&[2; 32], T0 + Duration::hours(1)).await, Err(StoreError::NotFound)));
    assert!(matches!(store.admin_token_by_hash(&[2; 32], T0 + Duration::hours(2)).await, Err(StoreError::NotFound)));
    assert!(matches!(store.admin_token_by_hash(&[3; 32], T0).await, Err(StoreError::NotFound)));
    // A token for a tenant that does not exist, or a reused hash: refused, nothing written.
    let r = token(4, Some(new_id()), None).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = token(1, None, None).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(store.count_admin_tokens().await.unwrap(), 2);

    let events = all_events(&store).await;
    assert_eq!(count_action(&events, Action::ApiClientCreate), 1);
    assert_eq!(count_action(&events, Action::AdminTokenCreate), 2);
    assert_eq!(chain_ok(&store).await, events.len() as u64);
}

/// 200 concurrent writers (audit-only appends and device creations) all succeed and leave one
/// gapless, verifiable chain.
async fn group_commit_under_concurrency(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        let tenant = t.id.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let object = format!("read-{i}");
                store
                    .append_audit(vec![ev(Action::SecretRead, ObjectType::Account, &tenant, &object)])
                    .await
                    .map(|()| object)
            } else {
                let (id, r) = try_device(&store, &tenant, &format!("PC-{i:03}")).await;
                r.map(|d| {
                    assert_eq!(d.id, id);
                    id
                })
            }
        }));
    }
    let mut objects = BTreeSet::new();
    for task in tasks {
        objects.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(objects.len(), 200);

    let n = chain_ok(&store).await;
    assert_eq!(n, 201);
    let events = all_events(&store).await;
    assert_eq!(events.len() as u64, n);
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=201).collect::<Vec<_>>());
    assert_eq!(store.audit_head().await.unwrap().seq, 201);
    let audited: BTreeSet<String> = events[1..].iter().filter_map(|e| e.body.object_id.clone()).collect();
    assert_eq!(audited, objects);
    assert_eq!(store.list_devices(&t.id, None, 1000).await.unwrap().len(), 100);
}

/// Concurrent creations where some are duplicates: each duplicate fails alone; the others in
/// the same batches are kept with their events.
async fn failing_change_does_not_undo_its_batch(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let store = store.clone();
        let tenant = t.id.clone();
        // 80 distinct names; 40 of them asked for twice, in another case.
        let name = if i < 80 { format!("pc-{i}") } else { format!("PC-{}", i - 80) };
        tasks.push(tokio::spawn(async move { try_device(&store, &tenant, &name).await }));
    }
    let (mut created, mut refused) = (BTreeSet::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(d)) => {
                assert_eq!(d.id, id);
                created.insert(id);
            }
            (id, Err(StoreError::Conflict(_))) => refused.push(id),
            (_, Err(e)) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(created.len(), 80);
    assert_eq!(refused.len(), 40);
    let listed: BTreeSet<String> =
        store.list_devices(&t.id, None, 1000).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(listed, created);
    for id in &refused {
        assert!(matches!(store.device(&t.id, id).await, Err(StoreError::NotFound)));
    }
    let events = all_events(&store).await;
    let audited: BTreeSet<String> = events[1..].iter().filter_map(|e| e.body.object_id.clone()).collect();
    assert_eq!(audited, created);
    assert_eq!(chain_ok(&store).await, 81);
}

/// Two stores on one database (two servers) append to one chain.
async fn two_stores_share_one_chain(db: Db) {
    let first = db.open().await;
    let second = db.open().await;
    let t = new_tenant(&first, "a").await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        let tenant = t.id.clone();
        tasks.push(tokio::spawn(async move {
            if i % 4 < 2 {
                store
                    .append_audit(vec![
                        ev(Action::SecretRead, ObjectType::Account, &tenant, &format!("r-{i}")),
                        ev(Action::AccessDenied, ObjectType::Account, &tenant, &format!("d-{i}")),
                    ])
                    .await
            } else {
                try_device(&store, &tenant, &format!("pc-{i}")).await.1.map(|_| ())
            }
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // 1 tenant + 50 × 2 audit-only + 50 devices.
    assert_eq!(chain_ok(&first).await, 151);
    assert_eq!(chain_ok(&second).await, 151);
    assert_eq!(first.list_devices(&t.id, None, 1000).await.unwrap().len(), 50);
}

async fn audit_filters(db: Db) {
    let store = db.open().await;
    let at = |ms: i64| T0 + Duration::milliseconds(ms);
    let e = |ms: i64, tenant: &str, actor: &str, action: Action, object: &str, outcome: Outcome| {
        NewAuditEvent::new(at(ms), actor, action, ObjectType::Account).tenant(tenant).object(object).outcome(outcome)
    };
    store
        .append_audit(vec![
            e(0, "ta", "alice", Action::SecretRead, "acc-1", Outcome::Success), // 1
            e(10, "ta", "bob", Action::SecretRead, "acc-2", Outcome::Denied),   // 2
            e(20, "tb", "alice", Action::SecretSet, "acc-1", Outcome::Success), // 3
            e(30, "tb", "carol", Action::AccessDenied, "acc-3", Outcome::Denied), // 4
        ])
        .await
        .unwrap();
    store
        .append_audit(vec![
            e(40, "ta", "alice", Action::SecretSet, "acc-2", Outcome::Failed), // 5
            e(50, "ta", "bob", Action::SecretRead, "acc-1", Outcome::Success), // 6
            NewAuditEvent::new(at(60), "system", Action::VaultKeyAdd, ObjectType::Vault), // 7: no tenant
        ])
        .await
        .unwrap();

    let seqs = |f: AuditFilter| {
        let store = store.clone();
        async move { store.list_audit(&f).await.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>() }
    };
    assert_eq!(seqs(everything()).await, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(seqs(AuditFilter { tenant_id: Some("ta".into()), ..everything() }).await, [1, 2, 5, 6]);
    assert_eq!(seqs(AuditFilter { tenant_id: Some("nope".into()), ..everything() }).await, [0; 0]);
    assert_eq!(seqs(AuditFilter { actor: Some("alice".into()), ..everything() }).await, [1, 3, 5]);
    assert_eq!(seqs(AuditFilter { action: Some("secret.read".into()), ..everything() }).await, [1, 2, 6]);
    assert_eq!(seqs(AuditFilter { outcome: Some("denied".into()), ..everything() }).await, [2, 4]);
    assert_eq!(seqs(AuditFilter { outcome: Some("failed".into()), ..everything() }).await, [5]);
    assert_eq!(seqs(AuditFilter { object_id: Some("acc-1".into()), ..everything() }).await, [1, 3, 6]);
    // Time range: since inclusive, until exclusive.
    let ms = |d: i64| Some(latchkey_core::clock::to_millis(at(d)));
    assert_eq!(seqs(AuditFilter { since_ms: ms(10), until_ms: ms(40), ..everything() }).await, [2, 3, 4]);
    assert_eq!(seqs(AuditFilter { since_ms: ms(60), ..everything() }).await, [7]);
    assert_eq!(seqs(AuditFilter { until_ms: ms(0), ..everything() }).await, [0; 0]);
    // Combined.
    assert_eq!(
        seqs(AuditFilter {
            tenant_id: Some("ta".into()),
            action: Some("secret.read".into()),
            outcome: Some("success".into()),
            ..everything()
        })
        .await,
        [1, 6]
    );
    // Limit, and paging with after_seq.
    assert_eq!(seqs(AuditFilter { limit: 3, ..everything() }).await, [1, 2, 3]);
    assert_eq!(seqs(AuditFilter { after_seq: Some(5), ..everything() }).await, [6, 7]);
    // Newest first with before_seq, with the filters.
    assert_eq!(seqs(AuditFilter { before_seq: Some(7), limit: 3, ..everything() }).await, [6, 5, 4]);
    let newest_reads = AuditFilter {
        tenant_id: Some("ta".into()),
        action: Some("secret.read".into()),
        outcome: Some("success".into()),
        before_seq: Some(i64::MAX),
        ..everything()
    };
    assert_eq!(seqs(newest_reads).await, [6, 1]);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = seqs(AuditFilter { tenant_id: Some("ta".into()), after_seq: after, limit: 3, ..everything() }).await;
        if page.is_empty() {
            break;
        }
        after = page.last().copied();
        paged.extend(page);
    }
    assert_eq!(paged, [1, 2, 5, 6]);

    // Events read back exactly as written.
    let events = all_events(&store).await;
    assert_eq!(events[1].body, e(10, "ta", "bob", Action::SecretRead, "acc-2", Outcome::Denied));
    assert_eq!(events[6].body.tenant_id, None);
    assert_eq!(events[6].body.object_id, None);
    assert_eq!(chain_ok(&store).await, 7);
}

/// Five events through the store, verified intact.
async fn five_events(db: &Db) -> Store {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    new_device(&store, &t.id, "pc").await;
    store
        .append_audit(vec![
            ev(Action::SecretRead, ObjectType::Account, &t.id, "x"),
            ev(Action::SecretRead, ObjectType::Account, &t.id, "y"),
            ev(Action::AccessDenied, ObjectType::Account, &t.id, "z"),
        ])
        .await
        .unwrap();
    assert_eq!(chain_ok(&store).await, 5);
    store
}

async fn chain_break(store: &Store) -> latchkey_core::ChainBreak {
    match store.verify_audit_chain().await.unwrap() {
        Ok(n) => panic!("tampering not detected ({n} events verified)"),
        Err(brk) => brk,
    }
}

async fn tamper_edited_event(db: Db) {
    let store = five_events(&db).await;
    assert_eq!(db.raw_execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3").await, 1);
    let brk = chain_break(&store).await;
    assert_eq!(brk.seq, 3, "{brk}");
}

async fn tamper_deleted_middle_event(db: Db) {
    let store = five_events(&db).await;
    assert_eq!(db.raw_execute("DELETE FROM audit_events WHERE seq = 3").await, 1);
    let brk = chain_break(&store).await;
    assert_eq!(brk.seq, 3, "{brk}");
}

async fn tamper_truncated_tail(db: Db) {
    let store = five_events(&db).await;
    assert_eq!(db.raw_execute("DELETE FROM audit_events WHERE seq = 5").await, 1);
    let brk = chain_break(&store).await;
    assert_eq!(brk.seq, 5, "{brk}");
}

async fn tamper_inserted_beyond_head(db: Db) {
    let store = five_events(&db).await;
    assert_eq!(
        db.raw_execute(
            "INSERT INTO audit_events (seq, at, actor, action, object_type, outcome, details, prev_hash, hash) \
             SELECT 6, at, 'mallory', action, object_type, outcome, details, hash, hash FROM audit_events WHERE seq = 5"
        )
        .await,
        1
    );
    let brk = chain_break(&store).await;
    assert_eq!(brk.seq, 6, "{brk}");
}

/// More events than one verification page (2000) and one INSERT statement (32 rows): the chain
/// verifies across page boundaries, and a deletion right after a page boundary is found.
async fn long_chain_verifies_across_pages(db: Db) {
    let store = db.open().await;
    let events: Vec<_> =
        (0..2100).map(|i| ev(Action::SecretRead, ObjectType::Account, "t", &format!("obj-{i}"))).collect();
    store.append_audit(events).await.unwrap();
    store.append_audit(vec![ev(Action::SecretRead, ObjectType::Account, "t", "last")]).await.unwrap();
    assert_eq!(chain_ok(&store).await, 2101);
    let listed =
        store.list_audit(&AuditFilter { after_seq: Some(1999), limit: 3, ..AuditFilter::default() }).await.unwrap();
    assert_eq!(
        listed.iter().map(|e| (e.seq, e.body.object_id.clone().unwrap())).collect::<Vec<_>>(),
        [(2000, "obj-1999".to_owned()), (2001, "obj-2000".to_owned()), (2002, "obj-2001".to_owned())]
    );
    assert_eq!(db.raw_execute("DELETE FROM audit_events WHERE seq = 2001").await, 1);
    let brk = chain_break(&store).await;
    assert_eq!(brk.seq, 2001, "{brk}");
}

/// When a batch cannot commit (here: a stray row occupies the next sequence number, so
/// appending the events fails), the caller gets an error and none of the change is kept;
/// the writer carries on once the obstacle is gone.
async fn failed_commit_keeps_nothing(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    let head = store.audit_head().await.unwrap();
    assert_eq!(head.seq, 1);
    let stray = match db.backend {
        Backend::Sqlite => {
            "INSERT INTO audit_events (seq, at, actor, action, object_type, outcome, details, prev_hash, hash) \
             VALUES (2, 0, 'stray', 'secret.read', 'account', 'success', '{}', zeroblob(32), zeroblob(32))"
        }
        Backend::Postgres => {
            "INSERT INTO audit_events (seq, at, actor, action, object_type, outcome, details, prev_hash, hash) \
             VALUES (2, 0, 'stray', 'secret.read', 'account', 'success', '{}', \
             decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))"
        }
    };
    assert_eq!(db.raw_execute(stray).await, 1);

    let (id, r) = try_device(&store, &t.id, "pc").await;
    assert!(matches!(r, Err(StoreError::CommitFailed)), "{r:?}");
    assert!(matches!(store.device(&t.id, &id).await, Err(StoreError::NotFound)));
    assert!(store.list_devices(&t.id, None, 100).await.unwrap().is_empty());
    assert_eq!(store.audit_head().await.unwrap(), head);
    let r = store.append_audit(vec![ev(Action::SecretRead, ObjectType::Account, &t.id, "x")]).await;
    assert!(matches!(r, Err(StoreError::CommitFailed)), "{r:?}");

    assert_eq!(db.raw_execute("DELETE FROM audit_events WHERE seq = 2").await, 1);
    let d = new_device(&store, &t.id, "pc").await;
    assert_eq!(store.list_devices(&t.id, None, 100).await.unwrap(), vec![d.clone()]);
    let events = all_events(&store).await;
    assert_eq!(
        summary(&events),
        vec![
            row(Action::TenantCreate, ObjectType::Tenant, &t.id, &t.id),
            row(Action::DeviceCreate, ObjectType::Device, &t.id, &d.id),
        ]
    );
    assert_eq!(chain_ok(&store).await, 2);
}

/// Closing while changes are in flight: every change answered Ok is stored with its event,
/// every change answered with an error left nothing behind.
async fn close_during_writes(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        let tenant = t.id.clone();
        tasks.push(tokio::spawn(async move { try_device(&store, &tenant, &format!("pc-{i}")).await }));
    }
    tokio::task::yield_now().await;
    store.close().await;
    let (mut ok, mut failed) = (BTreeSet::new(), BTreeSet::new());
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(_)) => {
                ok.insert(id);
            }
            (id, Err(StoreError::CommitFailed | StoreError::Unavailable(_))) => {
                failed.insert(id);
            }
            (_, Err(e)) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok.len() + failed.len(), 100);

    let store = db.open().await;
    let stored: BTreeSet<String> =
        store.list_devices(&t.id, None, 1000).await.unwrap().into_iter().map(|d| d.id).collect();
    assert!(ok.is_subset(&stored), "a change answered Ok is missing");
    assert!(stored.is_disjoint(&failed), "a change answered with an error was stored");
    let audited: BTreeSet<String> =
        all_events(&store).await[1..].iter().filter_map(|e| e.body.object_id.clone()).collect();
    assert_eq!(audited, stored);
    assert_eq!(chain_ok(&store).await, 1 + stored.len() as u64);
}

/// `close` finishes the changes already queued (they are answered Ok and stored), and changes
/// asked for after it fail without storing anything.
async fn close_finishes_queued_changes(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "a").await;
    let mut queued = Vec::new();
    for i in 0..50 {
        let (store, tenant) = (store.clone(), t.id.clone());
        let mut change = Box::pin(async move { try_device(&store, &tenant, &format!("pc-{i}")).await });
        // One poll queues the change with the writer; the answer comes after its commit.
        assert!(futures::poll!(change.as_mut()).is_pending());
        queued.push(change);
    }
    store.close().await;
    let mut ids = BTreeSet::new();
    for change in queued {
        let (id, r) = change.await;
        let d = r.unwrap_or_else(|e| panic!("a change queued before close failed: {e:?}"));
        assert_eq!(d.id, id);
        ids.insert(id);
    }
    let (late, r) = try_device(&store, &t.id, "late").await;
    assert!(r.is_err(), "a change after close succeeded");

    let store = db.open().await;
    let stored: BTreeSet<String> =
        store.list_devices(&t.id, None, 1000).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(stored, ids);
    assert!(!stored.contains(&late));
    assert_eq!(chain_ok(&store).await, 51);
}

// ---------------------------------------------------------------------------------------------
// Rotation: jobs, two-phase versions, history, support accounts, policies

fn agent_seal(password: &str) -> Box<dyn FnOnce(&str) -> SealFn + Send> {
    let password = password.to_owned();
    Box::new(move |_account: &str| {
        Box::new(move |version| {
            Ok(SealedSecret {
                password: Some(format!("{password}:v{version}").into_bytes()),
                ssh_key: None,
                key_id: "k1".into(),
            })
        })
    })
}

fn check_in(device: &Device, nonce: &str, rotate: Option<JobCause>, remove: Vec<String>) -> CheckInWrite {
    CheckInWrite {
        device_id: device.id.clone(),
        tenant_id: device.tenant_id.clone(),
        nonce: nonce.to_owned(),
        nonce_expires_at: T0 + Duration::minutes(10),
        reported_version: None,
        poll_interval_secs: 1800,
        confirm: None,
        rotate,
        remove_support: remove,
    }
}

fn agent_ev() -> NewAuditEvent {
    NewAuditEvent::new(T0, "agent:test", Action::RotationRequest, ObjectType::DeviceJob)
}

async fn version_states(store: &Store, tenant_id: &str, account_id: &str) -> Vec<(i64, SecretState)> {
    store.secret_versions(tenant_id, account_id).await.unwrap().into_iter().map(|v| (v.version, v.state)).collect()
}

/// Post and confirm one rotation for the open job; returns the version.
async fn rotate_once(store: &Store, device: &Device, job: &str, history: i64) -> i64 {
    let name = ("latchkey-admin".to_owned(), "latchkey-admin".to_owned());
    let p =
        store.post_pending(&device.id, job, name, Duration::hours(1), T0, agent_seal("pw"), agent_ev()).await.unwrap();
    store.confirm_job(&device.id, job, Some(p.version), history, T0, agent_ev()).await.unwrap();
    p.version
}

async fn rotation_keeps_every_possible_password(db: Db) {
    use SecretState::{Active, Pending, Retired};
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-1").await;

    let queued =
        store.record_check_in(T0, check_in(&d, "nonce-1", Some(JobCause::Initial), vec![]), agent_ev()).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].0.kind, JobKind::RotatePassword);
    // A second check-in does not queue a second rotation, and a replayed nonce is refused.
    let again =
        store.record_check_in(T0, check_in(&d, "nonce-2", Some(JobCause::Age), vec![]), agent_ev()).await.unwrap();
    assert!(again.is_empty());
    let replay = store.record_check_in(T0, check_in(&d, "nonce-2", None, vec![]), agent_ev()).await;
    assert!(matches!(replay, Err(StoreError::Conflict(_))), "{replay:?}");

    let first = rotate_once(&store, &d, &queued[0].0.id, 2).await;
    assert_eq!(first, 1);
    let admin = store.admin_password_state(&d.id).await.unwrap().unwrap();
    assert_eq!(
        (admin.account_name.as_str(), admin.active.map(|a| a.0), admin.pending.len()),
        ("latchkey-admin", Some(1), 0)
    );
    for _ in 0..4 {
        let job = store.request_rotation(&t.id, &d.id, T0, agent_ev()).await.unwrap();
        rotate_once(&store, &d, &job.id, 2).await;
    }
    // History 2: the active version and the two before it.
    assert_eq!(version_states(&store, &t.id, &admin.account_id).await, vec![(5, Active), (4, Retired), (3, Retired)]);

    // Two pending posts for one job (the agent died after the first): both are kept until a
    // later one is confirmed; then the earlier pending one is history like any other.
    let job = store.request_rotation(&t.id, &d.id, T0, agent_ev()).await.unwrap();
    let again = store.request_rotation(&t.id, &d.id, T0, agent_ev()).await.unwrap();
    assert_eq!(again.id, job.id, "one open rotation at a time");
    let name = || ("latchkey-admin".to_owned(), "latchkey-admin".to_owned());
    store.post_pending(&d.id, &job.id, name(), Duration::hours(1), T0, agent_seal("a"), agent_ev()).await.unwrap();
    store.post_pending(&d.id, &job.id, name(), Duration::hours(1), T0, agent_seal("b"), agent_ev()).await.unwrap();
    assert_eq!(
        version_states(&store, &t.id, &admin.account_id).await,
        vec![(7, Pending), (6, Pending), (5, Active), (4, Retired), (3, Retired)]
    );
    // A confirmation naming a version that is not pending changes nothing.
    let wrong = store.confirm_job(&d.id, &job.id, Some(5), 2, T0, agent_ev()).await;
    assert!(matches!(wrong, Err(StoreError::NotFound)), "{wrong:?}");
    store.confirm_job(&d.id, &job.id, Some(7), 2, T0, agent_ev()).await.unwrap();
    assert_eq!(version_states(&store, &t.id, &admin.account_id).await, vec![(7, Active), (6, Retired), (5, Retired)]);
    assert_eq!(store.device(&t.id, &d.id).await.unwrap().open_jobs, 0);

    // Another tenant cannot queue work on the device.
    let other = new_tenant(&store, "other").await;
    let denied = store.request_rotation(&other.id, &d.id, T0, agent_ev()).await;
    assert!(matches!(denied, Err(StoreError::NotFound)), "{denied:?}");
    chain_ok(&store).await;
}

async fn support_accounts_live_then_go(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let d = new_device(&store, &t.id, "PC-1").await;
    let ask = || store.request_support_account(&t.id, &d.id, T0, agent_ev());
    let SupportRequest::Queued(job) = ask().await.unwrap() else { panic!("first request queues") };
    assert_eq!(ask().await.unwrap(), SupportRequest::AlreadyQueued(job.clone()));
    assert!(store.live_support_account(&t.id, &d.id, T0).await.unwrap().is_none());

    let name = ("ADM-5A2F2169".to_owned(), "adm-5a2f2169".to_owned());
    let p = store.post_pending(&d.id, &job, name, Duration::hours(1), T0, agent_seal("s"), agent_ev()).await.unwrap();
    assert_eq!(p.expires_at, Some(T0 + Duration::hours(1)));
    assert!(store.live_support_account(&t.id, &d.id, T0).await.unwrap().is_none(), "not live before confirmation");
    store.confirm_job(&d.id, &job, Some(p.version), 12, T0, agent_ev()).await.unwrap();
    let live = store.live_support_account(&t.id, &d.id, T0).await.unwrap().unwrap();
    assert_eq!((live.account.name.as_str(), live.version), ("ADM-5A2F2169", 1));
    assert!(store.live_support_account("other-tenant", &d.id, T0).await.unwrap().is_none());
    assert_eq!(ask().await.unwrap(), SupportRequest::Ready);

    // After its lifetime the account is due for removal, once.
    let later = T0 + Duration::hours(2);
    assert!(store.live_support_account(&t.id, &d.id, later).await.unwrap().is_none());
    let snap = store.agent_snapshot(&d.id, later).await.unwrap();
    assert_eq!(snap.expired_support, vec![live.account.id.clone()]);
    let queued = store
        .record_check_in(later, check_in(&d, "nonce-r1", None, snap.expired_support.clone()), agent_ev())
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!((queued[0].0.kind, queued[0].1.as_deref()), (JobKind::RemoveSupportAccount, Some("ADM-5A2F2169")));
    assert!(store.agent_snapshot(&d.id, later).await.unwrap().expired_support.is_empty());
    let removal = queued[0].0.id.clone();
    let bad = store.confirm_job(&d.id, &removal, Some(1), 12, later, agent_ev()).await;
    assert!(matches!(bad, Err(StoreError::Conflict(_))), "{bad:?}");
    store.confirm_job(&d.id, &removal, None, 12, later, agent_ev()).await.unwrap();
    assert!(store.secret_versions(&t.id, &live.account.id).await.unwrap().is_empty(), "its secrets are gone");
    // A new request starts over, and the name may be used again.
    assert!(matches!(
        store.request_support_account(&t.id, &d.id, later, agent_ev()).await.unwrap(),
        SupportRequest::Queued(_)
    ));
    chain_ok(&store).await;
}

async fn policies_by_group_then_tenant(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let in_group = new_device(&store, &t.id, "PC-1").await;
    let outside = new_device(&store, &t.id, "PC-2").await;
    assert_eq!(store.effective_policy(&t.id, &in_group.id).await.unwrap(), RotationPolicy::default());
    let inner = new_group(&store, &t.id, "Laptops").await;
    let outer = new_group(&store, &t.id, "All clients").await;
    member(&store, &t.id, &inner.id, MemberKind::Device, &in_group.id).await.unwrap();
    member(&store, &t.id, &outer.id, MemberKind::Group, &inner.id).await.unwrap();
    let set = |group: Option<String>, priority: i64, length: i64| {
        let policy = RotationPolicy { length, ..RotationPolicy::default() };
        store.set_policy(
            &t.id,
            ScopedPolicy { group_id: group, priority, policy, updated_at: T0 },
            ev(Action::RotationPolicySet, ObjectType::RotationPolicy, &t.id, &t.id),
        )
    };
    set(None, 0, 30).await.unwrap();
    set(Some(outer.id.clone()), 5, 40).await.unwrap();
    assert_eq!(store.effective_policy(&t.id, &in_group.id).await.unwrap().length, 40, "nested membership counts");
    assert_eq!(store.effective_policy(&t.id, &outside.id).await.unwrap().length, 30);
    set(Some(inner.id.clone()), 1, 50).await.unwrap();
    assert_eq!(store.effective_policy(&t.id, &in_group.id).await.unwrap().length, 50, "lowest priority wins");
    set(None, 0, 32).await.unwrap();
    let listed = store.list_policies(&t.id).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.policy.length).collect::<Vec<_>>(), vec![32, 50, 40]);
    // A group of another tenant is refused.
    let other = new_tenant(&store, "other").await;
    let foreign = new_group(&store, &other.id, "Foreign").await;
    assert!(matches!(set(Some(foreign.id), 0, 20).await, Err(StoreError::NotFound)));
}

// ---------------------------------------------------------------------------------------------
// Access targets

fn new_target(kind: TargetKind, name: &str, readers: &[&str]) -> NewTarget {
    NewTarget {
        kind,
        name: name.to_owned(),
        expire_after: None,
        grants: Grants::default(),
        audit: AuditSettings::default(),
        enabled: true,
        description: None,
        readers: readers.iter().map(|r| Principal::parse(r).unwrap()).collect(),
    }
}

async fn add_target(store: &Store, tenant_id: &str, t: NewTarget, position: Option<i64>) -> Target {
    let id = new_id();
    let event = ev(Action::TargetCreate, ObjectType::Target, tenant_id, &id);
    store.create_target(tenant_id, id, t, position, T0, event).await.unwrap()
}

fn order(targets: &[Target]) -> Vec<(i64, String)> {
    targets.iter().map(|t| (t.position, t.name.clone())).collect()
}

async fn targets_keep_their_order(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    new_user(&store, &t.id, "alice").await;
    let helpdesk = new_group(&store, &t.id, "Helpdesk").await;
    let a = add_target(&store, &t.id, new_target(TargetKind::Computer, "PC1", &["DEV1\\Alice"]), None).await;
    let b = add_target(&store, &t.id, new_target(TargetKind::Group, "Helpdesk", &["helpdesk"]), None).await;
    let c = add_target(&store, &t.id, new_target(TargetKind::Container, "OU=X,DC=dev1", &["alice"]), Some(1)).await;
    let list = store.list_targets(&t.id).await.unwrap();
    assert_eq!(order(&list), vec![(1, "OU=X,DC=dev1".into()), (2, "PC1".into()), (3, "Helpdesk".into())]);
    let b_read = list.iter().find(|x| x.id == b.id).unwrap();
    assert_eq!(b_read.readers, vec![Reader { principal: "helpdesk".into(), kind: MemberKind::Group, id: helpdesk.id }]);
    assert_eq!(a.readers[0].kind, MemberKind::User);
    assert_eq!(a.readers[0].principal, "DEV1\\Alice");

    let moved =
        store.move_target(&t.id, &c.id, 3, T0, ev(Action::TargetMove, ObjectType::Target, &t.id, &c.id)).await.unwrap();
    assert_eq!(moved.position, 3);
    assert_eq!(
        order(&store.list_targets(&t.id).await.unwrap()),
        vec![(1, "PC1".into()), (2, "Helpdesk".into()), (3, "OU=X,DC=dev1".into())]
    );
    let mut changed = new_target(TargetKind::Computer, "PC2", &["alice@unknown.example"]);
    changed.expire_after = Some(latchkey_core::TimeSpan::parse("6:12").unwrap());
    changed.enabled = false;
    let updated = store
        .update_target(&t.id, &a.id, changed, T0, ev(Action::TargetUpdate, ObjectType::Target, &t.id, &a.id))
        .await
        .unwrap();
    assert_eq!((updated.position, updated.name.as_str(), updated.enabled), (1, "PC2", false));
    assert_eq!(updated.expire_after.unwrap().to_duration(), Duration::minutes(6 * 60 + 12));
    store.delete_target(&t.id, &b.id, ev(Action::TargetDelete, ObjectType::Target, &t.id, &b.id)).await.unwrap();
    assert_eq!(order(&store.list_targets(&t.id).await.unwrap()), vec![(1, "PC2".into()), (2, "OU=X,DC=dev1".into())]);
    let missing = store.delete_target(&t.id, &b.id, ev(Action::TargetDelete, ObjectType::Target, &t.id, &b.id)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
    // Another tenant sees none of them.
    let other = new_tenant(&store, "other").await;
    assert!(store.list_targets(&other.id).await.unwrap().is_empty());
    assert!(matches!(store.target(&other.id, &a.id).await, Err(StoreError::NotFound)));
    let events = all_events(&store).await;
    assert_eq!(count_action(&events, Action::TargetCreate), 3);
    assert_eq!(count_action(&events, Action::TargetMove), 1);
    assert_eq!(count_action(&events, Action::TargetUpdate), 1);
    assert_eq!(count_action(&events, Action::TargetDelete), 1);
    chain_ok(&store).await;
}

async fn targets_refuse_unknown_readers(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    new_user(&store, &t.id, "bob").await;
    new_group(&store, &t.id, "bob").await;
    let before = all_events(&store).await.len();
    let id = new_id();
    let unknown = store
        .create_target(
            &t.id,
            id.clone(),
            new_target(TargetKind::Computer, "PC1", &["nobody"]),
            None,
            T0,
            ev(Action::TargetCreate, ObjectType::Target, &t.id, &id),
        )
        .await;
    match unknown {
        Err(StoreError::Invalid(why)) => assert!(why.contains("nobody"), "{why}"),
        other => panic!("unknown reader accepted: {other:?}"),
    }
    let ambiguous = store
        .import_targets(
            &t.id,
            vec![
                (new_id(), new_target(TargetKind::Computer, "PC1", &[])),
                (new_id(), new_target(TargetKind::Computer, "PC2", &["bob"])),
            ],
            false,
            T0,
            ev(Action::TargetImport, ObjectType::Target, &t.id, &t.id),
        )
        .await;
    assert!(matches!(ambiguous, Err(StoreError::Invalid(_))), "{ambiguous:?}");
    // Nothing was stored, not even the first target of the import, and no event was written.
    assert!(store.list_targets(&t.id).await.unwrap().is_empty());
    assert_eq!(all_events(&store).await.len(), before);
    let resolved = store
        .resolve_principals(&t.id, &[Principal::parse("bob").unwrap(), Principal::parse("x").unwrap()])
        .await
        .unwrap();
    assert_eq!(resolved, vec![Resolution::Ambiguous, Resolution::Unknown]);
}

async fn access_snapshot_follows_changes(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let g0 = store.access_generation(&t.id).await.unwrap();
    let outer = new_group(&store, &t.id, "Outer").await;
    let inner = new_group(&store, &t.id, "Inner").await;
    let member = GroupMember { kind: MemberKind::Group, id: inner.id.clone() };
    store
        .add_group_member(&t.id, &outer.id, member, ev(Action::GroupMemberAdd, ObjectType::Group, &t.id, &outer.id))
        .await
        .unwrap();
    let g1 = store.access_generation(&t.id).await.unwrap();
    assert!(g1 > g0, "group changes move the generation");
    add_target(&store, &t.id, new_target(TargetKind::Group, "Outer", &["Inner"]), None).await;
    let snap = store.access_snapshot(&t.id).await.unwrap();
    assert!(snap.generation > g1);
    assert_eq!(snap.groups.len(), 2);
    assert_eq!(snap.edges.len(), 1);
    assert_eq!((snap.edges[0].child.as_str(), snap.edges[0].parent.as_str()), (inner.id.as_str(), outer.id.as_str()));
    assert_eq!(snap.targets.len(), 1);

    let device = new_device(&store, &t.id, "PC-7").await;
    let user = new_user(&store, &t.id, "carol").await;
    for (group, kind, id) in [(&inner, MemberKind::Device, &device.id), (&inner, MemberKind::User, &user.id)] {
        let m = GroupMember { kind, id: id.clone() };
        store
            .add_group_member(&t.id, &group.id, m, ev(Action::GroupMemberAdd, ObjectType::Group, &t.id, &group.id))
            .await
            .unwrap();
    }
    let facts = store.device_access_facts(&t.id, &device.id).await.unwrap();
    assert_eq!(facts.name_key, "pc-7");
    assert_eq!(facts.container_key.as_deref(), Some("ou=workstations,dc=example,dc=com"));
    assert_eq!(facts.groups, vec![inner.id.clone()]);
    let user_facts = store.user_access_facts(&t.id, &user.id).await.unwrap();
    assert_eq!(user_facts.groups, vec![inner.id.clone()]);
    let other = new_tenant(&store, "other").await;
    assert!(matches!(store.device_access_facts(&other.id, &device.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.user_access_facts(&other.id, &user.id).await, Err(StoreError::NotFound)));

    // The index built from the snapshot decides: the device is in Inner, nested in Outer.
    let snap = store.access_snapshot(&t.id).await.unwrap();
    let index = RuleIndex::build(snap.groups, &snap.edges, snap.targets);
    let decision = index.decide(&user_facts, &facts, Operation::ReadPassword);
    assert!(decision.allowed(), "{decision:?}");
}

async fn device_search(db: Db) {
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let laptop = new_device(&store, &a.id, "Laptop-Anna").await;
    new_device(&store, &a.id, "desk_50%").await;
    new_device(&store, &b.id, "Laptop-Other").await;
    let names = |found: Vec<Device>| found.into_iter().map(|d| d.name).collect::<Vec<_>>();

    // Part of the name, any case; never another tenant's devices.
    assert_eq!(names(store.search_devices(&a.id, "LAPTOP", 100).await.unwrap()), ["Laptop-Anna"]);
    // Part of the deviceId, in either case.
    let part = laptop.id[9..18].to_uppercase();
    assert_eq!(names(store.search_devices(&a.id, &part, 100).await.unwrap()), ["Laptop-Anna"]);
    // Part of the container.
    assert_eq!(store.search_devices(&a.id, "ou=workstations", 100).await.unwrap().len(), 2);
    // Wildcards are plain characters.
    assert_eq!(names(store.search_devices(&a.id, "50%", 100).await.unwrap()), ["desk_50%"]);
    assert!(store.search_devices(&a.id, "p_a", 100).await.unwrap().is_empty());
    assert!(store.search_devices(&a.id, "%", 100).await.unwrap().len() == 1);
    // Ordered by name, at most `limit`.
    assert_eq!(names(store.search_devices(&a.id, "", 100).await.unwrap()), ["Laptop-Anna", "desk_50%"]);
    assert_eq!(store.search_devices(&a.id, "", 1).await.unwrap().len(), 1);
}

async fn user_roles(db: Db) {
    use latchkey_core::Role;
    let store = db.open().await;
    let a = new_tenant(&store, "a").await;
    let b = new_tenant(&store, "b").await;
    let user = store
        .create_user(
            latchkey_store::NewUser {
                id: new_id(),
                tenant_id: a.id.clone(),
                name: "Alice".into(),
                name_key: "alice".into(),
                display_name: None,
                email: None,
                created_at: T0,
            },
            ev(Action::UserCreate, ObjectType::User, &a.id, "alice"),
        )
        .await
        .unwrap();
    assert!(store.user_roles(&a.id, &user.id).await.unwrap().is_empty());
    let set = |roles: Vec<Role>, tenant: String| {
        let (store, user_id) = (&store, user.id.clone());
        async move {
            store
                .set_user_roles(&tenant, &user_id, roles, ev(Action::UserRolesSet, ObjectType::User, &tenant, &user_id))
                .await
        }
    };
    set(vec![Role::Approver, Role::Admin, Role::Approver], a.id.clone()).await.unwrap();
    assert_eq!(store.user_roles(&a.id, &user.id).await.unwrap(), [Role::Admin, Role::Approver]);
    // Another tenant cannot set them; nothing changes and nothing is audited.
    let events = all_events(&store).await.len();
    assert!(matches!(set(vec![Role::Auditor], b.id.clone()).await, Err(StoreError::NotFound)));
    assert_eq!(store.user_roles(&a.id, &user.id).await.unwrap(), [Role::Admin, Role::Approver]);
    assert_eq!(all_events(&store).await.len(), events);
    assert!(matches!(store.user_in_tenant(&b.id, &user.id).await, Err(StoreError::NotFound)));
    store.user_in_tenant(&a.id, &user.id).await.unwrap();
    set(vec![], a.id.clone()).await.unwrap();
    assert!(store.user_roles(&a.id, &user.id).await.unwrap().is_empty());
    let last = all_events(&store).await.pop().unwrap();
    assert_eq!(last.body.action, Action::UserRolesSet);
}
