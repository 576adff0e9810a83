//! Directory sync on both backends: every case runs as `<case>::sqlite` (a fresh temporary
//! directory) and `<case>::postgres` (a fresh database in the cluster named by
//! `LATCHKEY_TEST_PG_URL`; skipped with a note when it is unset, unless services are required).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{Db, T0, both};
use latchkey_core::model::{GroupMember, MemberKind, Tenant};
use latchkey_core::{Action, NewAuditEvent, ObjectType, Outcome};
use latchkey_store::{
    AuditFilter, NewDevice, NewGroup, NewUser, Store, SyncComputer, SyncGroup, SyncMember, SyncOutcome, SyncSnapshot,
    SyncUser,
};
use time::OffsetDateTime;
use uuid::Uuid;

both!(
    creates_users_groups_devices_and_memberships,
    updates_in_place_and_keeps_enrolled_devices,
    removed_objects_disappear_with_their_references,
    cycle_is_refused_and_changes_nothing,
    duplicate_and_built_in_names_are_refused,
    failed_directory_keeps_the_last_good_data,
    renamed_computer_frees_its_name,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

fn sync_event(at: OffsetDateTime) -> NewAuditEvent {
    NewAuditEvent::new(at, "system:directory-sync", Action::DirectorySync, ObjectType::Directory)
}

async fn setup(db: &Db) -> (Store, Tenant) {
    let store = Store::open(&db.url).await.unwrap();
    let id = Uuid::new_v4().to_string();
    let tenant = Tenant { id: id.clone(), slug: "acme".into(), name: "Acme".into(), created_at: T0 };
    let event = NewAuditEvent::new(T0, "test", Action::TenantCreate, ObjectType::Tenant).tenant(&id).object(&id);
    let tenant = store.create_tenant(tenant, event).await.unwrap();
    (store, tenant)
}

fn user(ext: &str, name: &str) -> SyncUser {
    SyncUser {
        external_id: ext.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        upn: Some(format!("{name}@corp.example")),
        upn_key: Some(format!("{}@corp.example", name.to_lowercase())),
        display_name: Some(format!("User {name}")),
        email: Some(format!("{name}@mail.example")),
        dn: format!("CN={name},OU=People,DC=corp,DC=example"),
        disabled: false,
    }
}

fn group(ext: &str, name: &str, members: Vec<SyncMember>) -> SyncGroup {
    SyncGroup {
        external_id: ext.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        dn: format!("CN={name},OU=Groups,DC=corp,DC=example"),
        members,
    }
}

fn computer(ext: &str, name: &str, ou: &str) -> SyncComputer {
    let container = format!("OU={ou},DC=corp,DC=example");
    SyncComputer {
        external_id: ext.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        dn: format!("CN={name},{container}"),
        container_dn: Some(container),
    }
}

/// alice and bob; Admins = {alice, Helpdesk}, Helpdesk = {bob, WS1}; WS1 and WS2.
fn base_snapshot() -> SyncSnapshot {
    SyncSnapshot {
        users: vec![user("u-alice", "alice"), user("u-bob", "Bob")],
        groups: vec![
            group("g-admins", "Admins", vec![SyncMember::User("u-alice".into()), SyncMember::Group("g-help".into())]),
            group("g-help", "Helpdesk", vec![SyncMember::User("u-bob".into()), SyncMember::Computer("c-ws1".into())]),
        ],
        computers: vec![computer("c-ws1", "WS1", "Workstations"), computer("c-ws2", "WS2", "Servers")],
        ignored_members: 3,
    }
}

async fn apply(
    store: &Store,
    tenant: &Tenant,
    snapshot: SyncSnapshot,
    at: OffsetDateTime,
) -> latchkey_store::DirectorySyncRun {
    store.apply_directory_snapshot(&tenant.id, snapshot, at - time::Duration::seconds(2), sync_event(at)).await.unwrap()
}

/// Everything a sync can touch, as sorted text: users, groups, devices, memberships, readers.
async fn state(db: &Db, tenant: &Tenant) -> Vec<String> {
    let t = &tenant.id;
    let mut out = Vec::new();
    out.extend(db.raw_strings(format!(
        "SELECT 'user ' || name || ' ' || source || ' ' || COALESCE(external_id, '-') || ' ' || COALESCE(dn, '-') || ' ' || \
         COALESCE(upn, '-') || ' ' || COALESCE(email, '-') || ' ' || COALESCE(display_name, '-') || ' ' || \
         CASE WHEN disabled_at IS NULL THEN 'enabled' ELSE 'disabled' END FROM users WHERE tenant_id = '{t}'"
    ))
    .await);
    out.extend(
        db.raw_strings(format!(
            "SELECT 'group ' || name || ' ' || source || ' ' || COALESCE(external_id, '-') || ' ' || COALESCE(dn, '-') \
         FROM groups WHERE tenant_id = '{t}'"
        ))
        .await,
    );
    out.extend(db.raw_strings(format!(
        "SELECT 'device ' || name || ' ' || source || ' ' || COALESCE(external_id, '-') || ' ' || COALESCE(container_dn, '-') \
         FROM devices WHERE tenant_id = '{t}'"
    ))
    .await);
    out.extend(db.raw_strings(format!(
        "SELECT 'member ' || g.name || ' ' || m.member_kind || ' ' || COALESCE(u.name, gg.name, d.name, m.member_id) \
         FROM group_members m JOIN groups g ON g.id = m.group_id \
         LEFT JOIN users u ON m.member_kind = 'user' AND u.id = m.member_id \
         LEFT JOIN groups gg ON m.member_kind = 'group' AND gg.id = m.member_id \
         LEFT JOIN devices d ON m.member_kind = 'device' AND d.id = m.member_id WHERE g.tenant_id = '{t}'"
    ))
    .await);
    out.extend(
        db.raw_strings(format!(
            "SELECT 'reader ' || r.principal || ' ' || r.member_kind FROM access_target_readers r \
         JOIN access_targets a ON a.id = r.target_id WHERE a.tenant_id = '{t}'"
        ))
        .await,
    );
    out.sort();
    out
}

async fn generation(db: &Db, tenant: &Tenant) -> i64 {
    db.raw_i64(format!("SELECT access_generation FROM tenants WHERE id = '{}'", tenant.id)).await
}

async fn sync_events(store: &Store) -> Vec<latchkey_core::AuditEvent> {
    store
        .list_audit(&AuditFilter { limit: 1000, ..AuditFilter::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.body.action == Action::DirectorySync)
        .collect()
}

fn set(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn creates_users_groups_devices_and_memberships(db: Db) {
    let (store, tenant) = setup(&db).await;
    let g0 = generation(&db, &tenant).await;
    let run = apply(&store, &tenant, base_snapshot(), T0).await;
    assert_eq!(run.outcome, SyncOutcome::Success, "{:?}", run.error);
    assert_eq!((run.counts.users.created, run.counts.users.total), (2, 2));
    assert_eq!((run.counts.groups.created, run.counts.devices.created), (2, 2));
    assert_eq!(run.counts.memberships_added, 4);
    assert_eq!(run.counts.ignored_members, 3);
    assert_eq!(run.started_at, T0 - time::Duration::seconds(2));
    assert_eq!(run.finished_at, T0);
    assert_eq!(generation(&db, &tenant).await, g0 + 1);

    let dn = |cn: &str, ou: &str| format!("CN={cn},OU={ou},DC=corp,DC=example");
    assert_eq!(
        state(&db, &tenant).await,
        set(&[
            &format!(
                "user alice ldap u-alice {} alice@corp.example alice@mail.example User alice enabled",
                dn("alice", "People")
            ),
            &format!("user Bob ldap u-bob {} Bob@corp.example Bob@mail.example User Bob enabled", dn("Bob", "People")),
            &format!("group Admins ldap g-admins {}", dn("Admins", "Groups")),
            &format!("group Helpdesk ldap g-help {}", dn("Helpdesk", "Groups")),
            "device WS1 ldap c-ws1 OU=Workstations,DC=corp,DC=example",
            "device WS2 ldap c-ws2 OU=Servers,DC=corp,DC=example",
            "member Admins user alice",
            "member Admins group Helpdesk",
            "member Helpdesk user Bob",
            "member Helpdesk device WS1",
        ])
    );
    // Through the store's own API: nested membership resolves.
    let devices = store.list_devices(&tenant.id, None, 100).await.unwrap();
    let ws1 = devices.iter().find(|d| d.name == "WS1").unwrap();
    let groups: BTreeSet<String> = store
        .groups_of(&tenant.id, &GroupMember { kind: MemberKind::Device, id: ws1.id.clone() })
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(groups, BTreeSet::from(["Admins".to_owned(), "Helpdesk".to_owned()]));

    // The run is listed and audited with its counts, in the same transaction.
    let runs = store.directory_sync_runs(&tenant.id, 10).await.unwrap();
    assert_eq!(runs, vec![run.clone()]);
    let events = sync_events(&store).await;
    assert_eq!(events.len(), 1);
    let e = &events[0].body;
    assert_eq!(
        (e.outcome, e.object_id.as_deref(), e.tenant_id.as_deref()),
        (Outcome::Success, Some(run.id.as_str()), Some(tenant.id.as_str()))
    );
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    assert_eq!(details["users"]["created"], 2);
    assert_eq!(details["membershipsAdded"], 4);

    // The same snapshot again changes nothing and leaves the generation alone.
    let again = apply(&store, &tenant, base_snapshot(), T0 + time::Duration::minutes(15)).await;
    assert_eq!(again.outcome, SyncOutcome::Success);
    assert!(!again.counts.changed(), "{:?}", again.counts);
    assert_eq!(generation(&db, &tenant).await, g0 + 1);
    assert_eq!(store.directory_sync_runs(&tenant.id, 10).await.unwrap()[0].id, again.id, "newest first");
    assert_eq!(store.directory_sync_runs(&tenant.id, 1).await.unwrap().len(), 1);
}

async fn updates_in_place_and_keeps_enrolled_devices(db: Db) {
    let (store, tenant) = setup(&db).await;
    // An enrolled device named like a directory computer, before the first sync.
    let enrolled_id = Uuid::new_v4().to_string();
    store
        .create_device(
            NewDevice {
                id: enrolled_id.clone(),
                tenant_id: tenant.id.clone(),
                name: "ws2".into(),
                name_key: "ws2".into(),
                container_dn: None,
                os: Some("linux".into()),
                created_at: T0,
            },
            NewAuditEvent::new(T0, "test", Action::DeviceCreate, ObjectType::Device),
        )
        .await
        .unwrap();
    db.raw_execute(format!(
        "UPDATE devices SET agent_public_key = 'pk', enrolled_at = 1, last_seen_at = 2 WHERE id = '{enrolled_id}'"
    ))
    .await;
    apply(&store, &tenant, base_snapshot(), T0).await;
    let alice_id = db
        .raw_strings(format!("SELECT id FROM users WHERE external_id = 'u-alice' AND tenant_id = '{}'", tenant.id))
        .await;

    // Renames (alice and Bob swap names), a disabled account, a moved computer, new members.
    let mut s = base_snapshot();
    s.users[0].name = "Bob".into();
    s.users[0].name_key = "bob".into();
    s.users[1].name = "alice".into();
    s.users[1].name_key = "alice".into();
    s.users[1].disabled = true;
    s.users[1].email = None;
    s.computers[0].container_dn = Some("OU=Laptops,DC=corp,DC=example".into());
    s.groups[1].members.push(SyncMember::Computer("c-ws2".into()));
    let run = apply(&store, &tenant, s, T0 + time::Duration::minutes(15)).await;
    assert_eq!(run.outcome, SyncOutcome::Success, "{:?}", run.error);
    assert_eq!((run.counts.users.updated, run.counts.users.created, run.counts.users.deleted), (2, 0, 0));
    assert_eq!((run.counts.devices.updated, run.counts.devices.created), (1, 0));
    assert_eq!(run.counts.memberships_added, 1);

    // Same rows (ids kept), new names.
    assert_eq!(
        db.raw_strings(format!("SELECT id FROM users WHERE external_id = 'u-alice' AND tenant_id = '{}'", tenant.id))
            .await,
        alice_id
    );
    let st = state(&db, &tenant).await;
    assert!(st.iter().any(|l| l.starts_with("user Bob ldap u-alice ") && l.ends_with(" enabled")), "{st:#?}");
    assert!(
        st.iter().any(|l| l.starts_with("user alice ldap u-bob ") && l.contains(" - User Bob disabled")),
        "{st:#?}"
    );
    assert!(st.contains(&"device WS1 ldap c-ws1 OU=Laptops,DC=corp,DC=example".to_owned()), "{st:#?}");
    // The enrolled device was matched by name: linked, in its container, still local, agent
    // fields untouched, and a member of the synced group.
    assert!(st.contains(&"device ws2 local c-ws2 OU=Servers,DC=corp,DC=example".to_owned()), "{st:#?}");
    assert!(st.contains(&"member Helpdesk device ws2".to_owned()), "{st:#?}");
    let d = store.device(&tenant.id, &enrolled_id).await.unwrap();
    assert_eq!((d.agent_public_key.as_deref(), d.os.as_deref()), (Some("pk"), Some("linux")));
    assert!(d.enrolled_at.is_some() && d.last_seen_at.is_some());

    // Still disabled one sync later: the first time it was seen disabled is kept.
    let before = db
        .raw_strings(format!(
            "SELECT CAST(disabled_at AS TEXT) FROM users WHERE external_id = 'u-bob' AND tenant_id = '{}'",
            tenant.id
        ))
        .await;
    let mut s = base_snapshot();
    s.users[0].name = "Bob".into();
    s.users[0].name_key = "bob".into();
    s.users[1].name = "alice".into();
    s.users[1].name_key = "alice".into();
    s.users[1].disabled = true;
    s.users[1].email = None;
    apply(&store, &tenant, s, T0 + time::Duration::minutes(30)).await;
    let after = db
        .raw_strings(format!(
            "SELECT CAST(disabled_at AS TEXT) FROM users WHERE external_id = 'u-bob' AND tenant_id = '{}'",
            tenant.id
        ))
        .await;
    assert_eq!(before, after);
}

async fn removed_objects_disappear_with_their_references(db: Db) {
    let (store, tenant) = setup(&db).await;
    apply(&store, &tenant, base_snapshot(), T0).await;
    let id_of = |table: &str, ext: &str| {
        format!("SELECT id FROM {table} WHERE external_id = '{ext}' AND tenant_id = '{}'", tenant.id)
    };
    let bob = db.raw_strings(id_of("users", "u-bob")).await.remove(0);
    let help = db.raw_strings(id_of("groups", "g-help")).await.remove(0);
    let ws2 = db.raw_strings(id_of("devices", "c-ws2")).await.remove(0);
    let ws1 = db.raw_strings(id_of("devices", "c-ws1")).await.remove(0);

    // A built-in group holding synced members, and a target whose readers are synced.
    let local = Uuid::new_v4().to_string();
    store
        .create_group(
            NewGroup {
                id: local.clone(),
                tenant_id: tenant.id.clone(),
                name: "Local".into(),
                name_key: "local".into(),
                description: None,
                created_at: T0,
            },
            NewAuditEvent::new(T0, "test", Action::GroupCreate, ObjectType::Group),
        )
        .await
        .unwrap();
    for (kind, id) in [(MemberKind::User, &bob), (MemberKind::Group, &help), (MemberKind::Device, &ws2)] {
        store
            .add_group_member(
                &tenant.id,
                &local,
                GroupMember { kind, id: id.clone() },
                NewAuditEvent::new(T0, "test", Action::GroupMemberAdd, ObjectType::Group),
            )
            .await
            .unwrap();
    }
    let target = Uuid::new_v4().to_string();
    db.raw_execute(format!(
        "INSERT INTO access_targets (id, tenant_id, position, kind, name, name_key, grants, email_on_success, \
         email_on_failure, email_addresses, enabled, created_at, updated_at) \
         VALUES ('{target}', '{}', 1, 'computer', 'WS1', 'ws1', '[]', 1, 1, '[]', 1, 0, 0)",
        tenant.id
    ))
    .await;
    db.raw_execute(format!(
        "INSERT INTO access_target_readers (target_id, principal, member_kind, member_id) VALUES \
         ('{target}', 'CORP\\bob', 'user', '{bob}'), ('{target}', 'Helpdesk', 'group', '{help}')"
    ))
    .await;
    // WS1 gets enrolled; WS2 stays a directory-only device.
    db.raw_execute(format!("UPDATE devices SET agent_public_key = 'pk', enrolled_at = 1 WHERE id = '{ws1}'")).await;
    let g0 = generation(&db, &tenant).await;

    // bob, Helpdesk, WS1 and WS2 are gone from the directory.
    let s = SyncSnapshot {
        users: vec![user("u-alice", "alice")],
        groups: vec![group("g-admins", "Admins", vec![SyncMember::User("u-alice".into())])],
        computers: vec![],
        ignored_members: 0,
    };
    let run = apply(&store, &tenant, s, T0 + time::Duration::minutes(15)).await;
    assert_eq!(run.outcome, SyncOutcome::Success, "{:?}", run.error);
    assert_eq!((run.counts.users.deleted, run.counts.groups.deleted), (1, 1));
    assert_eq!((run.counts.devices.deleted, run.counts.devices.updated), (1, 1), "WS2 deleted, WS1 unlinked");
    assert_eq!(generation(&db, &tenant).await, g0 + 1);

    let st = state(&db, &tenant).await;
    assert_eq!(
        st,
        set(&[
            "user alice ldap u-alice CN=alice,OU=People,DC=corp,DC=example alice@corp.example alice@mail.example User alice enabled",
            "group Admins ldap g-admins CN=Admins,OU=Groups,DC=corp,DC=example",
            "group Local local - -",
            // Enrolled: kept, no longer linked, out of the synced groups.
            "device WS1 ldap - OU=Workstations,DC=corp,DC=example",
            "member Admins user alice",
        ])
    );
    for (table, id) in [("users", &bob), ("groups", &help), ("devices", &ws2)] {
        assert_eq!(db.raw_i64(format!("SELECT COUNT(*) FROM {table} WHERE id = '{id}'")).await, 0);
    }
    assert_eq!(db.raw_i64(format!("SELECT COUNT(*) FROM group_members WHERE group_id = '{local}'")).await, 0);
    assert_eq!(db.raw_i64(format!("SELECT COUNT(*) FROM access_target_readers WHERE target_id = '{target}'")).await, 0);
    assert!(store.list_users(&tenant.id).await.unwrap().iter().all(|u| u.name != "Bob"));
}

async fn cycle_is_refused_and_changes_nothing(db: Db) {
    let (store, tenant) = setup(&db).await;
    apply(&store, &tenant, base_snapshot(), T0).await;
    let before = state(&db, &tenant).await;
    let g0 = generation(&db, &tenant).await;

    // Helpdesk → Tier2 → Admins → Helpdesk, plus a change that must not be applied.
    let mut s = base_snapshot();
    s.users.push(user("u-carol", "carol"));
    s.groups.push(group("g-tier2", "Tier2", vec![SyncMember::Group("g-admins".into())]));
    s.groups[1].members.push(SyncMember::Group("g-tier2".into()));
    let run = apply(&store, &tenant, s, T0 + time::Duration::minutes(15)).await;
    assert_eq!(run.outcome, SyncOutcome::Failed);
    let error = run.error.clone().unwrap();
    assert!(error.contains("cycle"), "{error}");
    for name in ["Admins", "Helpdesk", "Tier2"] {
        assert!(error.contains(name), "{error}");
    }
    assert_eq!(state(&db, &tenant).await, before);
    assert_eq!(generation(&db, &tenant).await, g0);

    let runs = store.directory_sync_runs(&tenant.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0], run);
    let events = sync_events(&store).await;
    let last = &events.last().unwrap().body;
    assert_eq!(last.outcome, Outcome::Failed);
    assert!(last.details.contains("cycle"));

    // A group that contains itself.
    let mut s = base_snapshot();
    s.groups[0].members.push(SyncMember::Group("g-admins".into()));
    let run = apply(&store, &tenant, s, T0 + time::Duration::minutes(30)).await;
    assert_eq!(run.outcome, SyncOutcome::Failed);
    assert!(run.error.unwrap().contains("Admins → Admins"));
    assert_eq!(state(&db, &tenant).await, before);
}

async fn duplicate_and_built_in_names_are_refused(db: Db) {
    let (store, tenant) = setup(&db).await;
    let empty = state(&db, &tenant).await;
    let refused = |s: SyncSnapshot, expect: &'static str| {
        let store = store.clone();
        let tenant = tenant.clone();
        async move {
            let run = apply(&store, &tenant, s, T0).await;
            assert_eq!(run.outcome, SyncOutcome::Failed, "{expect}");
            let error = run.error.unwrap();
            assert!(error.contains(expect), "{error} should say {expect}");
        }
    };
    let mut s = base_snapshot();
    s.users.push(user("u-other", "ALICE"));
    refused(s, "two users have the same name").await;
    let mut s = base_snapshot();
    s.computers.push(computer("c-other", "ws1", "Elsewhere"));
    refused(s, "two computers have the same name").await;
    let mut s = base_snapshot();
    s.groups.push(group("g-admins", "Other", vec![]));
    refused(s, "two groups have the same identifier").await;
    let mut s = base_snapshot();
    s.groups[0].members.push(SyncMember::User("u-missing".into()));
    refused(s, "not part of the directory snapshot").await;
    assert_eq!(state(&db, &tenant).await, empty);

    // A built-in user with a directory user's name.
    store
        .create_user(
            NewUser {
                id: Uuid::new_v4().to_string(),
                tenant_id: tenant.id.clone(),
                name: "Alice".into(),
                name_key: "alice".into(),
                display_name: None,
                email: None,
                created_at: T0,
            },
            NewAuditEvent::new(T0, "test", Action::UserCreate, ObjectType::User),
        )
        .await
        .unwrap();
    let with_local = state(&db, &tenant).await;
    refused(base_snapshot(), "a built-in user has that name").await;
    assert_eq!(state(&db, &tenant).await, with_local);
    assert_eq!(store.directory_sync_runs(&tenant.id, 10).await.unwrap().len(), 5);
    assert!(store.directory_sync_runs(&tenant.id, 10).await.unwrap().iter().all(|r| r.outcome == SyncOutcome::Failed));
    // An unknown tenant is NotFound and records nothing.
    assert!(matches!(
        store.apply_directory_snapshot(&Uuid::new_v4().to_string(), base_snapshot(), T0, sync_event(T0)).await,
        Err(latchkey_store::StoreError::NotFound)
    ));
}

async fn failed_directory_keeps_the_last_good_data(db: Db) {
    let (store, tenant) = setup(&db).await;
    let good = apply(&store, &tenant, base_snapshot(), T0).await;
    let before = state(&db, &tenant).await;
    let g0 = generation(&db, &tenant).await;
    let at = T0 + time::Duration::minutes(15);
    let run = store
        .record_directory_sync_failure(
            &tenant.id,
            at - time::Duration::seconds(10),
            "cannot reach the directory: ldaps://127.0.0.1:1: connection refused",
            sync_event(at),
        )
        .await
        .unwrap();
    assert_eq!(run.outcome, SyncOutcome::Failed);
    assert_eq!(run.finished_at, at);
    assert!(!run.counts.changed());
    assert_eq!(state(&db, &tenant).await, before);
    assert_eq!(generation(&db, &tenant).await, g0);
    let runs = store.directory_sync_runs(&tenant.id, 10).await.unwrap();
    assert_eq!(runs, vec![run.clone(), good]);
    let last = sync_events(&store).await.pop().unwrap().body;
    assert_eq!((last.outcome, last.object_id.as_deref()), (Outcome::Failed, Some(run.id.as_str())));
    assert!(last.details.contains("connection refused"));
    assert!(store.verify_audit_chain().await.unwrap().is_ok());
}

/// A computer renamed in the directory, and a new computer with its old name: the device sync
/// created follows the rename (same id), and the new computer gets a device of its own.
async fn renamed_computer_frees_its_name(db: Db) {
    let (store, tenant) = setup(&db).await;
    apply(&store, &tenant, base_snapshot(), T0).await;
    let ws1 = db
        .raw_strings(format!("SELECT id FROM devices WHERE external_id = 'c-ws1' AND tenant_id = '{}'", tenant.id))
        .await;
    let mut s = base_snapshot();
    s.computers[0].name = "WS9".into();
    s.computers[0].name_key = "ws9".into();
    s.computers.push(computer("c-new", "WS1", "Workstations"));
    let run = apply(&store, &tenant, s, T0 + time::Duration::minutes(15)).await;
    assert_eq!(run.outcome, SyncOutcome::Success, "{:?}", run.error);
    assert_eq!((run.counts.devices.updated, run.counts.devices.created), (1, 1));
    assert_eq!(
        db.raw_strings(format!("SELECT id FROM devices WHERE name = 'WS9' AND tenant_id = '{}'", tenant.id)).await,
        ws1
    );
    let st = state(&db, &tenant).await;
    assert!(st.contains(&"device WS1 ldap c-new OU=Workstations,DC=corp,DC=example".to_owned()), "{st:#?}");
    assert!(st.contains(&"member Helpdesk device WS9".to_owned()), "{st:#?}");
}
