//! Directory sync through the API with the directory down: the run is recorded as failed, the
//! answer is a 503 problem, and the last good data stays. (Syncs against real Samba AD and
//! OpenLDAP are tested in crates/latchkey-ldap.)

use std::sync::Arc;

use latchkey_client::{AuditQuery, Client};
use latchkey_core::{Action, Clock, ManualClock, NewAuditEvent, ObjectType, SystemClock};
use latchkey_ldap::{DirectoryConfig, Flavor};
use latchkey_proto as proto;
use latchkey_store::{Store, SyncGroup, SyncMember, SyncSnapshot, SyncUser};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{Backend, TestApp, config_for};

/// A server whose `default` tenant has a directory at a port where nothing listens.
async fn spawn_with_unreachable_directory(backend: Backend) -> Option<TestApp> {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("latchkey.db").display()),
        Backend::Postgres => latchkey_testkit::fresh_postgres_url().await?,
    };
    // A CA file is needed (certificate checking is always on); nothing will be reached anyway.
    let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca_file = data_dir.path().join("directory-ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let mut directory = DirectoryConfig::new(
        "ldaps://127.0.0.1:1",
        "CN=latchkey,CN=Users,DC=corp,DC=example",
        SecretString::from("Service-Passw0rd!"),
        "DC=corp,DC=example",
        Flavor::ActiveDirectory,
    );
    directory.ca_file = Some(ca_file);
    directory.connect_timeout_secs = Some(3);
    let mut config = config_for(data_dir.path(), backend, &db_url);
    config.directories = vec![latchkey_server::TenantDirectory { tenant: "default".into(), config: directory }];
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = latchkey_server::start(config, clock.clone()).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, Some(token.clone())).unwrap();
    Some(TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend })
}

/// Good data from an earlier sync, written straight to the store.
async fn earlier_sync(app: &TestApp, tenant_id: &str) -> String {
    let store = Store::open(&app.db_url).await.unwrap();
    let user = |ext: &str, name: &str| SyncUser {
        external_id: ext.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        upn: None,
        upn_key: None,
        display_name: None,
        email: None,
        dn: format!("CN={name},DC=corp,DC=example"),
        disabled: false,
    };
    let snapshot = SyncSnapshot {
        users: vec![user("u1", "alice"), user("u2", "bob")],
        groups: vec![SyncGroup {
            external_id: "g1".into(),
            name: "Helpdesk".into(),
            name_key: "helpdesk".into(),
            dn: "CN=Helpdesk,DC=corp,DC=example".into(),
            members: vec![SyncMember::User("u1".into())],
        }],
        computers: vec![],
        ignored_members: 0,
    };
    let now = app.clock.now();
    let event = NewAuditEvent::new(now, "test", Action::DirectorySync, ObjectType::Directory);
    let run = store.apply_directory_snapshot(tenant_id, snapshot, now, event).await.unwrap();
    store.close().await;
    run.id
}

async fn directory_down_keeps_the_last_good_data(backend: Backend) {
    let Some(app) = spawn_with_unreachable_directory(backend).await else { return };
    let c = &app.client;
    let tenant = c.tenant("default").await.unwrap();
    let good = earlier_sync(&app, &tenant.id).await;
    let users_before = c.list_users("default").await.unwrap().items;
    assert_eq!(users_before.len(), 2);

    let e = c.directory_sync("default").await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert_eq!(e.code(), Some(proto::ProblemCode::Unavailable));
    let detail = match &e {
        latchkey_client::ClientError::Api { problem } => problem.detail.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(detail.contains("ldaps://127.0.0.1:1"), "{detail}");
    assert!(detail.contains("last good data was kept"), "{detail}");
    assert!(!detail.contains("Service-Passw0rd!"));

    // Nothing changed, and the run is on record as failed with its reason.
    let users_after = c.list_users("default").await.unwrap().items;
    assert_eq!(
        users_after.iter().map(|u| &u.name).collect::<Vec<_>>(),
        users_before.iter().map(|u| &u.name).collect::<Vec<_>>()
    );
    assert_eq!(c.list_groups("default").await.unwrap().items.len(), 1);
    let status = c.directory_sync_status("default").await.unwrap();
    assert!(status.configured);
    assert_eq!(status.url.as_deref(), Some("ldaps://127.0.0.1:1"));
    assert_eq!(status.interval_minutes, Some(15));
    let failed: Vec<&proto::DirectorySyncRun> =
        status.runs.iter().filter(|r| r.outcome == proto::DirectorySyncOutcome::Failed).collect();
    assert!(!failed.is_empty());
    assert!(detail.contains(&failed.iter().find(|r| detail.contains(&r.id)).unwrap().id));
    for r in &failed {
        let error = r.error.as_deref().unwrap();
        assert!(error.contains("cannot reach the directory"), "{error}");
        assert!(!error.contains("Service-Passw0rd!"));
        assert_eq!(r.counts, proto::DirectorySyncCounts::default());
    }
    let success: Vec<&proto::DirectorySyncRun> =
        status.runs.iter().filter(|r| r.outcome == proto::DirectorySyncOutcome::Success).collect();
    assert_eq!(success.len(), 1);
    assert_eq!(success[0].id, good);
    assert_eq!(success[0].counts.users.created, 2);
    assert_eq!(success[0].counts.memberships_added, 1);

    // The admin's attempt is audited as a failed directory.sync.
    let events = c
        .list_audit(&AuditQuery { action: Some("directory.sync".into()), limit: Some(100), ..Default::default() })
        .await
        .unwrap()
        .items;
    assert!(events.iter().any(|e| e.actor.starts_with("admin-token:") && e.outcome == "failed"), "{events:#?}");
    let verify = c.verify_audit().await.unwrap();
    assert!(verify.ok, "{verify:?}");
}

async fn sync_needs_an_admin_and_a_directory(backend: Backend) {
    let Some(app) = spawn_with_unreachable_directory(backend).await else { return };
    let c = &app.client;
    // No token, a wrong token.
    for client in [app.client_with(None), app.client_with(Some("lk_admin_wrong"))] {
        assert_eq!(client.directory_sync("default").await.unwrap_err().status(), Some(401));
        assert_eq!(client.directory_sync_status("default").await.unwrap_err().status(), Some(401));
    }
    // A tenant without a directory: 404 for a sync, "not configured" for the status.
    c.create_tenant(&proto::TenantCreate { slug: "acme".into(), name: None }).await.unwrap();
    let e = c.directory_sync("acme").await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::NotFound), "{e}");
    let status = c.directory_sync_status("acme").await.unwrap();
    assert!(!status.configured && status.runs.is_empty() && status.url.is_none());
    // Unknown tenant, and a tenant another tenant's token may not see.
    assert_eq!(c.directory_sync("nope").await.unwrap_err().status(), Some(404));
    let t = c
        .create_admin_token(&proto::AdminTokenCreate {
            name: "acme".into(),
            tenant: Some("acme".into()),
            expires_in_seconds: None,
        })
        .await
        .unwrap();
    let acme = app.client_with(Some(&t.token));
    assert_eq!(acme.directory_sync("default").await.unwrap_err().status(), Some(404));
    assert_eq!(acme.directory_sync_status("default").await.unwrap_err().status(), Some(404));
    // Wrong method.
    let r = app
        .raw()
        .delete(app.url("/api/v1/tenants/default/directory/sync"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

mod directory_down_keeps_the_last_good_data {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::directory_down_keeps_the_last_good_data(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::directory_down_keeps_the_last_good_data(crate::helpers::Backend::Postgres).await;
    }
}

mod sync_needs_an_admin_and_a_directory {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::sync_needs_an_admin_and_a_directory(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::sync_needs_an_admin_and_a_directory(crate::helpers::Backend::Postgres).await;
    }
}
