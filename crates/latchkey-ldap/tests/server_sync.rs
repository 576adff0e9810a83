//! Directory sync end to end: a real server configured with `[[directory]]` in its TOML file
//! syncs a real Samba AD domain controller and a real OpenLDAP (the scheduled first sync at
//! start-up, then `POST …/directory/sync`), and objects removed from the directory disappear
//! from the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Kind, Service, Tree};
use latchkey_client::Client;
use latchkey_proto as proto;
use latchkey_server::{Config, ConfigLayer, SystemClock};
use secrecy::ExposeSecret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samba() {
    let Some(s) = Service::samba() else { return };
    removed_objects_disappear_after_the_next_sync(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openldap() {
    let Some(s) = Service::openldap() else { return };
    removed_objects_disappear_after_the_next_sync(s).await;
}

const PASSWORD: &str = "Lk-Secret-42!x";

/// The server's config file: the tenant's directory, its password from an environment
/// variable the service script exports.
fn config_file(service: &Service, base_dn: &str, dir: &std::path::Path) -> Config {
    let (flavor, var) = match service.kind {
        Kind::Samba => ("active-directory", "LATCHKEY_TEST_SAMBA_BIND_PASSWORD"),
        Kind::OpenLdap => ("openldap", "LATCHKEY_TEST_OPENLDAP_BIND_PASSWORD"),
    };
    let mut table = toml::Table::new();
    table.insert("tenant".into(), "default".into());
    table.insert("url".into(), service.url.clone().into());
    table.insert("bind_dn".into(), service.bind_dn.clone().into());
    table.insert("bind_password_env".into(), var.into());
    table.insert("base_dn".into(), base_dn.into());
    table.insert("flavor".into(), flavor.into());
    table.insert("ca_file".into(), service.ca_file.display().to_string().into());
    let mut root = toml::Table::new();
    root.insert("directory".into(), toml::Value::Array(vec![toml::Value::Table(table)]));
    let path = dir.join("latchkey.toml");
    std::fs::write(&path, toml::to_string(&root).unwrap()).unwrap();
    let file = ConfigLayer::from_toml_file(&path).unwrap();
    let flags =
        ConfigLayer { data_dir: Some(dir.join("data")), listen: Some("127.0.0.1:0".into()), ..Default::default() };
    Config::resolve(file.merge(flags)).unwrap()
}

async fn removed_objects_disappear_after_the_next_sync(service: Service) {
    let mut t = Tree::new(&service).await;
    let ou = t.add_ou("Workstations", None).await;
    let (alice, bob, carol) = (t.name("alice"), t.name("bob"), t.name("carol"));
    let alice_dn = t.add_user(&alice, PASSWORD, false, None).await;
    let bob_dn = t.add_user(&bob, PASSWORD, false, None).await;
    t.add_user(&carol, PASSWORD, true, None).await;
    let ws1 = t.name("ws1");
    let ws1_dn = t.add_computer(&ws1, &ou).await;
    let (inner, outer) = (t.name("inner"), t.name("outer"));
    let inner_dn = t.add_group(&inner, &[&bob_dn, &ws1_dn]).await;
    t.add_group(&outer, &[&alice_dn, &inner_dn]).await;

    let dir = tempfile::tempdir().unwrap();
    let server = latchkey_server::start(config_file(&service, &t.dn, dir.path()), Arc::new(SystemClock)).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let c = Client::new(&format!("http://{}", server.addr), Some(token)).unwrap();

    // The scheduled sync runs at start-up (no run is on record yet).
    let mut first = None;
    for _ in 0..200 {
        let status = c.directory_sync_status("default").await.unwrap();
        assert!(status.configured);
        if let Some(run) = status.runs.into_iter().next() {
            first = Some(run);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = first.expect("the scheduled sync did not run within 20 s");
    assert_eq!(first.outcome, proto::DirectorySyncOutcome::Success, "{:?}", first.error);
    assert_eq!((first.counts.users.created, first.counts.groups.created, first.counts.devices.created), (3, 2, 1));
    assert_eq!(first.counts.memberships_added, 4);

    let users: BTreeSet<String> =
        c.list_users("default").await.unwrap().items.into_iter().map(|u| u.name.to_lowercase()).collect();
    assert_eq!(users, BTreeSet::from([alice.clone(), bob.clone(), carol.clone()]));
    let groups = c.list_groups("default").await.unwrap().items;
    let group_id = |name: &str| groups.iter().find(|g| g.name.eq_ignore_ascii_case(name)).unwrap().id.clone();
    let devices = c.list_devices("default", None, None).await.unwrap().items;
    assert_eq!(devices.len(), 1);
    assert!(devices[0].name.eq_ignore_ascii_case(&ws1));
    assert!(devices[0].container_dn.as_deref().unwrap().eq_ignore_ascii_case(&ou));
    let kinds = |members: Vec<proto::GroupMember>| -> BTreeSet<String> {
        members.into_iter().map(|m| format!("{:?}", m.kind)).collect()
    };
    let outer_members = c.group_members("default", &group_id(&outer)).await.unwrap().items;
    assert_eq!(kinds(outer_members.clone()), BTreeSet::from(["Group".to_owned(), "User".to_owned()]));
    assert!(outer_members.iter().any(|m| m.id == group_id(&inner)));
    let inner_members = c.group_members("default", &group_id(&inner)).await.unwrap().items;
    assert_eq!(kinds(inner_members.clone()), BTreeSet::from(["Device".to_owned(), "User".to_owned()]));
    assert!(inner_members.iter().any(|m| m.id == devices[0].device_id));

    // bob and the inner group leave the directory; the next sync removes them.
    t.delete(&inner_dn).await;
    t.delete(&bob_dn).await;
    let run = c.directory_sync("default").await.unwrap();
    assert_eq!(run.outcome, proto::DirectorySyncOutcome::Success);
    assert_eq!((run.counts.users.deleted, run.counts.groups.deleted), (1, 1));
    assert_eq!((run.counts.users.total, run.counts.groups.total, run.counts.devices.total), (2, 1, 1));
    let users: BTreeSet<String> =
        c.list_users("default").await.unwrap().items.into_iter().map(|u| u.name.to_lowercase()).collect();
    assert_eq!(users, BTreeSet::from([alice.clone(), carol.clone()]));
    let groups = c.list_groups("default").await.unwrap().items;
    assert_eq!(groups.len(), 1);
    assert!(groups[0].name.eq_ignore_ascii_case(&outer));
    let outer_members = c.group_members("default", &groups[0].id).await.unwrap().items;
    assert_eq!(kinds(outer_members), BTreeSet::from(["User".to_owned()]));
    // The computer stays, out of the deleted group.
    assert_eq!(c.list_devices("default", None, None).await.unwrap().items.len(), 1);

    let status = c.directory_sync_status("default").await.unwrap();
    assert_eq!(status.runs.len(), 2);
    assert_eq!(status.runs[0].id, run.id);
    server.shutdown().await.unwrap();
    t.cleanup().await;
}
