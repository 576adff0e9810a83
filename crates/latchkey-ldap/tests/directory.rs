//! Reading a real directory and checking passwords against it: every case runs against the
//! Samba AD domain controller and against OpenLDAP (see `scripts/services/`). A case is
//! skipped only when its server's variables are absent and services are not required.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{Kind, Service, Tree};
use latchkey_ldap::{BindError, DirectoryError, DirectorySnapshot, Member, authenticate, read_directory};
use secrecy::SecretString;

/// Every case as two tests, `samba` and `openldap`.
macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn samba() {
                let Some(s) = super::Service::samba() else { return };
                super::$case(s).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openldap() {
                let Some(s) = super::Service::openldap() else { return };
                super::$case(s).await;
            }
        }
    )*};
}

both!(
    reads_users_groups_and_computers_with_nested_groups,
    starttls_reads_too,
    authenticate_checks_passwords,
    a_wrong_ca_is_a_tls_error,
    a_wrong_service_password_is_refused,
    a_missing_base_is_a_search_error,
);

const PASSWORD: &str = "Lk-Secret-42!x";

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn user_id(snap: &DirectorySnapshot, name: &str) -> String {
    snap.users.iter().find(|u| u.account_name.eq_ignore_ascii_case(name)).unwrap().external_id.clone()
}

fn group<'a>(snap: &'a DirectorySnapshot, name: &str) -> &'a latchkey_ldap::DirectoryGroup {
    snap.groups.iter().find(|g| g.name.eq_ignore_ascii_case(name)).unwrap_or_else(|| panic!("no group {name}"))
}

/// Users in two OUs, computers in nested OUs, a group holding a user, a computer and another
/// group, and a member outside the subtree.
async fn reads_users_groups_and_computers_with_nested_groups(service: Service) {
    let mut t = Tree::new(&service).await;
    let people = t.add_ou("People", None).await;
    let workstations = t.add_ou("Workstations", None).await;
    let floor = t.add_ou("Floor2", Some(&workstations)).await;
    let (alice, bob, carol) = (t.name("alice"), t.name("bob"), t.name("carol"));
    let alice_dn = t.add_user(&alice, PASSWORD, false, Some(&people)).await;
    let bob_dn = t.add_user(&bob, PASSWORD, false, None).await;
    let carol_dn = t.add_user(&carol, PASSWORD, true, Some(&people)).await;
    let (ws1, ws2) = (t.name("ws1"), t.name("ws2"));
    let ws1_dn = t.add_computer(&ws1, &workstations).await;
    let ws2_dn = t.add_computer(&ws2, &floor).await;
    let (inner, outer) = (t.name("inner"), t.name("outer"));
    let inner_dn = t.add_group(&inner, &[&bob_dn, &ws2_dn]).await;
    // The server's administrator lives outside the tree: a member the snapshot leaves out.
    let admin = service.bind_dn.clone();
    let _outer_dn = t.add_group(&outer, &[&alice_dn, &inner_dn, &ws1_dn, &admin]).await;

    let snap = read_directory(&service.config(&t.dn)).await.unwrap();

    let names: BTreeSet<String> = snap.users.iter().map(|u| u.account_name.to_lowercase()).collect();
    assert_eq!(names, BTreeSet::from([alice.clone(), bob.clone(), carol.clone()]));
    let a = snap.users.iter().find(|u| u.account_name == alice).unwrap();
    assert!(a.dn.eq_ignore_ascii_case(&alice_dn), "{} vs {alice_dn}", a.dn);
    assert_eq!(a.display_name.as_deref(), Some(format!("User {alice}").as_str()));
    assert_eq!(a.email.as_deref(), Some(format!("{alice}@mail.example").as_str()));
    assert!(!a.disabled);
    assert!(uuid::Uuid::parse_str(&a.external_id).is_ok(), "{}", a.external_id);
    let c = snap.users.iter().find(|u| u.account_name == carol).unwrap();
    assert!(c.disabled, "carol is disabled");
    if service.kind == Kind::Samba {
        assert_eq!(a.upn.as_deref(), Some(format!("{alice}@{}", service.realm.as_deref().unwrap()).as_str()));
    }
    assert!(snap.users.iter().all(|u| u.dn != carol_dn || u.disabled));

    let computers: BTreeSet<String> = snap.computers.iter().map(|c| c.name.to_lowercase()).collect();
    assert_eq!(computers, BTreeSet::from([ws1.clone(), ws2.clone()]));
    let w2 = snap.computers.iter().find(|c| c.name.eq_ignore_ascii_case(&ws2)).unwrap();
    assert!(w2.container_dn().unwrap().eq_ignore_ascii_case(&floor), "{:?} vs {floor}", w2.container_dn());
    if service.kind == Kind::Samba {
        assert_eq!(w2.dns_host_name.as_deref(), Some(format!("{ws2}.{}", service.realm.as_deref().unwrap()).as_str()));
    }

    let ws1_id = snap.computers.iter().find(|c| c.name.eq_ignore_ascii_case(&ws1)).unwrap().external_id.clone();
    let inner_g = group(&snap, &inner);
    let outer_g = group(&snap, &outer);
    assert_eq!(
        inner_g.members.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([Member::User(user_id(&snap, &bob)), Member::Computer(w2.external_id.clone())])
    );
    assert_eq!(
        outer_g.members.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            Member::User(user_id(&snap, &alice)),
            Member::Group(inner_g.external_id.clone()),
            Member::Computer(ws1_id),
        ])
    );
    assert_eq!(snap.ignored_members, 1, "the administrator is outside the tree");
    assert_eq!(snap.skipped_entries, 0);
    t.cleanup().await;
}

/// `ldap://` with StartTLS reads the same directory.
async fn starttls_reads_too(service: Service) {
    let mut t = Tree::new(&service).await;
    let dave = t.name("dave");
    t.add_user(&dave, PASSWORD, false, None).await;
    let mut config = service.config(&t.dn);
    config.url = service.starttls_url.clone();
    config.starttls = true;
    let snap = read_directory(&config).await.unwrap();
    assert_eq!(snap.users.len(), 1);
    assert_eq!(snap.users[0].account_name, dave);
    let user = authenticate(&config, &dave, &secret(PASSWORD)).await.unwrap();
    assert_eq!(user.account_name, dave);
    t.cleanup().await;
}

async fn authenticate_checks_passwords(service: Service) {
    let mut t = Tree::new(&service).await;
    let (erin, frank) = (t.name("erin"), t.name("frank"));
    let erin_dn = t.add_user(&erin, PASSWORD, false, None).await;
    t.add_user(&frank, PASSWORD, true, None).await;
    let config = service.config(&t.dn);

    let user = authenticate(&config, &erin, &secret(PASSWORD)).await.unwrap();
    assert_eq!(user.account_name, erin);
    assert!(user.dn.eq_ignore_ascii_case(&erin_dn));
    // Any case, and the down-level form.
    let user = authenticate(&config, &format!("SOMEDOMAIN\\{}", erin.to_uppercase()), &secret(PASSWORD)).await.unwrap();
    assert_eq!(user.account_name, erin);
    if let Some(realm) = &service.realm {
        let user = authenticate(&config, &format!("{erin}@{realm}"), &secret(PASSWORD)).await.unwrap();
        assert_eq!(user.account_name, erin);
    }

    assert_eq!(authenticate(&config, &erin, &secret("Wrong-Passw0rd!")).await, Err(BindError::InvalidCredentials));
    assert_eq!(authenticate(&config, &erin, &secret("")).await, Err(BindError::InvalidCredentials));
    assert_eq!(authenticate(&config, &frank, &secret(PASSWORD)).await, Err(BindError::InvalidCredentials));
    assert_eq!(authenticate(&config, &t.name("nobody"), &secret(PASSWORD)).await, Err(BindError::NotFound));
    assert_eq!(authenticate(&config, "", &secret(PASSWORD)).await, Err(BindError::NotFound));
    // Filter syntax in a name is matched literally, never as a wildcard.
    assert_eq!(authenticate(&config, "*", &secret(PASSWORD)).await, Err(BindError::NotFound));
    assert_eq!(authenticate(&config, &format!("{erin})(uid=*"), &secret(PASSWORD)).await, Err(BindError::NotFound));

    // Disabling and enabling again takes effect at once.
    t.set_disabled(&erin_dn, true).await;
    assert_eq!(authenticate(&config, &erin, &secret(PASSWORD)).await, Err(BindError::InvalidCredentials));
    t.set_disabled(&erin_dn, false).await;
    authenticate(&config, &erin, &secret(PASSWORD)).await.unwrap();

    // A server that is not there.
    let mut down = config.clone();
    down.url = "ldaps://127.0.0.1:1".into();
    down.connect_timeout_secs = Some(3);
    match authenticate(&down, &erin, &secret(PASSWORD)).await {
        Err(BindError::Unavailable(m)) => assert!(!m.contains(PASSWORD), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    t.cleanup().await;
}

/// Certificate checking is on: a CA that did not sign the server's certificate fails the
/// handshake, for reading and for sign-in.
async fn a_wrong_ca_is_a_tls_error(service: Service) {
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(&other_ca, ca.cert.pem()).unwrap();
    let mut config = service.config(&service.base_dn);
    config.ca_file = Some(other_ca);
    match read_directory(&config).await {
        Err(e @ DirectoryError::Tls(_)) => assert!(e.is_unavailable()),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(matches!(authenticate(&config, "someone", &secret(PASSWORD)).await, Err(BindError::Unavailable(_))));

    // StartTLS checks the certificate too.
    config.url = service.starttls_url.clone();
    config.starttls = true;
    assert!(matches!(read_directory(&config).await, Err(DirectoryError::Tls(_))));
}

async fn a_wrong_service_password_is_refused(service: Service) {
    let mut config = service.config(&service.base_dn);
    config.bind_password = Some(secret("Not-The-Passw0rd!"));
    match read_directory(&config).await {
        Err(DirectoryError::ServiceBind(m)) => assert!(!m.contains("Not-The-Passw0rd!"), "{m}"),
        other => panic!("expected ServiceBind, got {other:?}"),
    }
}

async fn a_missing_base_is_a_search_error(service: Service) {
    let base = match service.kind {
        Kind::Samba => format!("OU=lk-missing-{},{}", uuid::Uuid::new_v4().simple(), service.base_dn),
        Kind::OpenLdap => format!("ou=lk-missing-{},{}", uuid::Uuid::new_v4().simple(), service.base_dn),
    };
    match read_directory(&service.config(&base)).await {
        Err(DirectoryError::Search(m)) => assert!(m.contains("result 32"), "{m}"),
        other => panic!("expected a search error, got {other:?}"),
    }
}

/// No server listens: Unavailable, without any service running.
#[tokio::test]
async fn a_directory_that_is_down_is_unavailable() {
    let mut config = latchkey_ldap::DirectoryConfig::new(
        "ldaps://127.0.0.1:1",
        "CN=svc,DC=x",
        secret("pw"),
        "DC=x",
        latchkey_ldap::Flavor::ActiveDirectory,
    );
    config.connect_timeout_secs = Some(3);
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    config.ca_file = Some(ca_file);
    match read_directory(&config).await {
        Err(e @ DirectoryError::Unavailable(_)) => {
            assert!(e.is_unavailable());
            assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(authenticate(&config, "alice", &secret("pw")).await, Err(BindError::Unavailable(_))));
}

/// A port that accepts the connection and never answers: the connect timeout ends it.
#[tokio::test]
async fn a_directory_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut config = latchkey_ldap::DirectoryConfig::new(
        &format!("ldaps://127.0.0.1:{port}"),
        "CN=svc,DC=x",
        secret("pw"),
        "DC=x",
        latchkey_ldap::Flavor::Openldap,
    );
    config.connect_timeout_secs = Some(1);
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    config.ca_file = Some(ca_file);
    let started = std::time::Instant::now();
    match read_directory(&config).await {
        Err(DirectoryError::Unavailable(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    keep.abort();
}

/// Active Directory keeps a user's primary group (Domain Users) out of the group's `member`
/// attribute; the sync adds it from `primaryGroupID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_group_membership_is_resolved_samba() {
    let Some(service) = Service::samba() else { return };
    let mut t = Tree::new(&service).await;
    let gina = t.name("gina");
    t.add_user(&gina, PASSWORD, false, None).await;
    let mut config = service.config(&service.base_dn);
    config.users_base_dn = Some(t.dn.clone());
    config.computers_base_dn = Some(t.dn.clone());
    config.groups_base_dn = Some(format!("CN=Users,{}", service.base_dn));
    config.groups_filter = Some("(&(objectClass=group)(sAMAccountName=Domain Users))".into());
    let snap = read_directory(&config).await.unwrap();
    assert_eq!(snap.groups.len(), 1);
    let domain_users = &snap.groups[0];
    assert_eq!(domain_users.name, "Domain Users");
    assert_eq!(domain_users.members, vec![Member::User(user_id(&snap, &gina))]);
    t.cleanup().await;
}
