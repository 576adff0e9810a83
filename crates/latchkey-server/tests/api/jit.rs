//! Just-in-time admin elevation against the real Samba AD DC: a grant's tech account binds
//! with the temporary password and is in Domain Admins; after the end it is out of the group,
//! disabled, and the password no longer binds. Bad requests change nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use latchkey_client::{Client, ClientError};
use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_ldap::admin::DirectoryAdmin;
use latchkey_ldap::{BindError, DirectoryConfig, Flavor, authenticate};
use latchkey_proto as proto;
use latchkey_server::jit::JitPolicyLayer;
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{Backend, TestApp, config_for};

/// The Samba DC from the environment, or `None` (skipped) unless services are required.
fn samba() -> Option<DirectoryConfig> {
    let url = match std::env::var("LATCHKEY_TEST_SAMBA_URL") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            let required = std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1");
            assert!(!required, "LATCHKEY_TEST_SAMBA_URL is required: scripts/services/samba-ad.sh start");
            eprintln!("note: LATCHKEY_TEST_SAMBA_URL is not set; skipping");
            return None;
        }
    };
    let var = |n: &str| std::env::var(format!("LATCHKEY_TEST_SAMBA_{n}")).unwrap();
    let mut c = DirectoryConfig::new(
        &url,
        &var("BIND_DN"),
        SecretString::from(var("BIND_PASSWORD")),
        &var("BASE_DN"),
        Flavor::ActiveDirectory,
    );
    c.ca_file = Some(var("CA_FILE").into());
    c.connect_timeout_secs = Some(5);
    c.operation_timeout_secs = Some(30);
    Some(c)
}

/// A test's OU for tech accounts, its tenant prefix, and the server.
struct JitApp {
    app: TestApp,
    directory: DirectoryConfig,
    ou: String,
    prefix: String,
}

async fn spawn_jit(backend: Backend, max_minutes: i64) -> Option<JitApp> {
    spawn_jit_via(backend, max_minutes, Options::default()).await
}

/// How a test's server differs from the plain one.
#[derive(Default)]
struct Options {
    /// Reach the directory here (a proxy).
    url: Option<String>,
    tickets: Vec<latchkey_server::jit::TicketsLayer>,
    approval_required: bool,
    on_revoke: Option<&'static str>,
}

/// Like [`spawn_jit`], with `options`.
async fn spawn_jit_via(backend: Backend, max_minutes: i64, options: Options) -> Option<JitApp> {
    let Options { url, tickets, approval_required, on_revoke } = options;
    let directory = samba()?;
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("latchkey.db").display()),
        Backend::Postgres => latchkey_testkit::fresh_postgres_url().await?,
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("j{}", &id[..5]);
    let ou = format!("OU=lk-jit-{},{}", &id[..8], directory.base_dn);
    create_ou(&directory, &ou).await;
    let mut config = config_for(data_dir.path(), backend, &db_url);
    let mut server_directory = directory.clone();
    if let Some(url) = url {
        server_directory.url = url;
    }
    config.directories = vec![latchkey_server::TenantDirectory { tenant: "default".into(), config: server_directory }];
    config.jit = latchkey_server::jit::JitConfig::resolve(
        vec![JitPolicyLayer {
            tenant: "default".into(),
            provider: "directory".into(),
            max_minutes: Some(max_minutes),
            approval_required: Some(approval_required),
            admin_group: None,
            accounts_ou: Some(ou.clone()),
            tenant_prefix: Some(prefix.clone()),
            on_revoke: on_revoke.map(str::to_owned),
        }],
        tickets,
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = latchkey_server::start(config, clock.clone()).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, Some(token.clone())).unwrap();
    let app = TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend };
    Some(JitApp { app, directory, ou, prefix })
}

async fn create_ou(directory: &DirectoryConfig, ou: &str) {
    use std::collections::HashSet;
    let (conn, mut ldap) =
        ldap3::LdapConnAsync::with_settings(ldap3::LdapConnSettings::new().set_config(tls(directory)), &directory.url)
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    let pw = directory.bind_password().unwrap();
    ldap.simple_bind(&directory.bind_dn, pw.expose_secret()).await.unwrap().success().unwrap();
    let name = ou.split(',').next().unwrap().trim_start_matches("OU=").to_owned();
    ldap.add(ou, vec![("objectClass", HashSet::from(["organizationalUnit"])), ("ou", HashSet::from([name.as_str()]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = ldap.unbind().await;
}

fn tls(directory: &DirectoryConfig) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(directory.ca_file.as_ref().unwrap()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Remove the test's tech accounts and OU.
async fn cleanup(j: &JitApp) {
    let mut admin = DirectoryAdmin::connect(&j.directory).await.unwrap();
    let group = admin.group_dn("Domain Admins").await.unwrap();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        if let Some(a) = admin.find_account(&format!("{name}-{}", j.prefix)).await.unwrap() {
            admin.remove_member(&group, &a.dn).await.unwrap();
            admin.delete_account(&a.dn).await.unwrap();
        }
    }
    admin.delete_account(&j.ou).await.unwrap();
    admin.close().await;
}

fn request(ticket: &str, minutes: i64, reason: &str, requester: &str) -> proto::JitRequest {
    proto::JitRequest {
        provider: "directory".into(),
        ticket: ticket.into(),
        minutes,
        reason: reason.into(),
        device_id: None,
        requester: Some(requester.into()),
    }
}

/// Wait (up to `secs`) until the grant is in `state`.
async fn wait_state(client: &Client, id: &str, state: &str, secs: u64) -> proto::JitGrant {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(secs);
    loop {
        let g = client.jit_grant("default", id).await.unwrap();
        if g.state == state {
            return g;
        }
        assert!(std::time::Instant::now() < deadline, "grant {id} is {} (not {state}): {:?}", g.state, g.last_error);
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

fn is_domain_admin(member_of: &[String]) -> bool {
    member_of.iter().any(|g| g.to_lowercase().starts_with("cn=domain admins,"))
}

async fn grant_binds_then_revocation_takes_it_away(backend: Backend) {
    let Some(j) = spawn_jit(backend, 60).await else { return };
    let client = &j.app.client;
    let ticket = client.create_ticket("default", "Printer server down").await.unwrap();
    let created = client
        .request_jit("default", &request(&ticket.number.to_string(), 30, "fix the print spooler", "alice"))
        .await
        .unwrap();
    let account = format!("alice-{}", j.prefix);
    assert_eq!(created.grant.account, account);
    assert_eq!(created.grant.state, "active", "{:?}", created.grant.last_error);
    let password = SecretString::from(created.password.clone());

    // The tech account binds with the temporary password and is in Domain Admins.
    authenticate(&j.directory, &account, &password).await.unwrap();
    let mut admin = DirectoryAdmin::connect(&j.directory).await.unwrap();
    let found = admin.find_account(&account).await.unwrap().unwrap();
    assert!(!found.disabled);
    assert!(is_domain_admin(&found.member_of), "{found:?}");
    let comments = client.ticket_comments("default", &ticket.number.to_string()).await.unwrap().comments;
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0]
            .body
            .contains(&format!("The tech account {account} is now enabled and has been added to Domain Admins"))
    );

    // Past the end the API says expired at once, and the engine takes the access away.
    j.app.clock.advance(time::Duration::minutes(31));
    let g = client.jit_grant("default", &created.grant.id).await.unwrap();
    assert!(g.expired);
    let g = wait_state(client, &created.grant.id, "revoked", 10).await;
    assert!(g.revoked_at.is_some());
    let found = admin.find_account(&account).await.unwrap().unwrap();
    assert!(found.disabled);
    assert!(!is_domain_admin(&found.member_of), "{found:?}");
    assert_eq!(authenticate(&j.directory, &account, &password).await.unwrap_err(), BindError::InvalidCredentials);
    let comments = client.ticket_comments("default", &ticket.number.to_string()).await.unwrap().comments;
    assert_eq!(comments.len(), 2);
    assert!(comments[1].body.contains("access has been revoked"), "{}", comments[1].body);

    // Revoking twice is a conflict; the password can be recovered by an admin, audited.
    let again = client.revoke_jit("default", &created.grant.id).await.unwrap_err();
    assert!(again.status() == Some(409), "{again:?}");
    // An absurd extension is refused before any time arithmetic.
    let huge = client.extend_jit("default", &created.grant.id, i64::MAX).await.unwrap_err();
    assert!(huge.status() == Some(400), "{huge:?}");
    let recovered = client.recover_jit_password("default", &created.grant.id, "audit check").await.unwrap();
    assert_eq!(recovered.password, created.password);
    admin.close().await;
    cleanup(&j).await;
}

async fn revocation_deletes_the_account_when_configured(backend: Backend) {
    let options = Options { on_revoke: Some("delete"), ..Options::default() };
    let Some(j) = spawn_jit_via(backend, 60, options).await else { return };
    let client = &j.app.client;
    let ticket = client.create_ticket("default", "Cloud tenant clean-up").await.unwrap().number.to_string();
    let created = client.request_jit("default", &request(&ticket, 15, "rotate the app secret", "carol")).await.unwrap();
    assert_eq!(created.grant.state, "active", "{:?}", created.grant.last_error);
    let account = format!("carol-{}", j.prefix);
    let password = SecretString::from(created.password.clone());
    authenticate(&j.directory, &account, &password).await.unwrap();

    j.app.clock.advance(time::Duration::minutes(16));
    wait_state(client, &created.grant.id, "revoked", 10).await;
    let mut admin = DirectoryAdmin::connect(&j.directory).await.unwrap();
    assert_eq!(admin.find_account(&account).await.unwrap(), None, "the tech account is deleted");
    assert!(authenticate(&j.directory, &account, &password).await.is_err());
    admin.close().await;
    cleanup(&j).await;
}

mod revocation_can_delete_the_account {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        revocation_deletes_the_account_when_configured(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        revocation_deletes_the_account_when_configured(Backend::Postgres).await;
    }
}

async fn bad_requests_are_refused_and_change_nothing(backend: Backend) {
    let Some(j) = spawn_jit(backend, 60).await else { return };
    let client = &j.app.client;
    let open = client.create_ticket("default", "open").await.unwrap().number.to_string();
    let closed = client.create_ticket("default", "closed").await.unwrap().number;
    client.close_ticket("default", closed).await.unwrap();
    let cases: Vec<(proto::JitRequest, u16, &str)> = vec![
        (request("9999", 30, "r", "bob"), 400, "does not exist"),
        (request(&closed.to_string(), 30, "r", "bob"), 400, "closed"),
        (request(&open, 30, "  ", "bob"), 400, "reason"),
        (request(&open, 0, "r", "bob"), 400, "at least 1"),
        (request(&open, -5, "r", "bob"), 400, "at least 1"),
        (request(&open, 61, "r", "bob"), 400, "at most 60"),
        (proto::JitRequest { provider: "cloud".into(), ..request(&open, 30, "r", "bob") }, 400, "unknown provider"),
        (
            proto::JitRequest {
                provider: "device".into(),
                device_id: Some(uuid::Uuid::new_v4().to_string()),
                ..request(&open, 30, "r", "bob")
            },
            400,
            "not set up",
        ),
        (proto::JitRequest { requester: None, ..request(&open, 30, "r", "bob") }, 400, "requester"),
    ];
    for (req, status, text) in cases {
        let e = client.request_jit("default", &req).await.unwrap_err();
        match e {
            ClientError::Api { problem: p } => {
                assert_eq!(p.status, status, "{req:?}: {p:?}");
                assert!(p.detail.as_deref().unwrap_or_default().contains(text), "{req:?}: {p:?}");
            }
            other => panic!("{req:?}: {other:?}"),
        }
    }
    assert!(client.list_jit("default").await.unwrap().grants.is_empty());
    let mut admin = DirectoryAdmin::connect(&j.directory).await.unwrap();
    assert_eq!(admin.find_account(&format!("bob-{}", j.prefix)).await.unwrap(), None);
    admin.close().await;
    // Closing a ticket twice is a conflict.
    let e = client.close_ticket("default", closed).await.unwrap_err();
    assert!(e.status() == Some(409), "{e:?}");
    cleanup(&j).await;
}

mod grant_binds_then_revocation_is_complete {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        grant_binds_then_revocation_takes_it_away(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        grant_binds_then_revocation_takes_it_away(Backend::Postgres).await;
    }
}

mod bad_requests_change_nothing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        bad_requests_are_refused_and_change_nothing(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        bad_requests_are_refused_and_change_nothing(Backend::Postgres).await;
    }
}

/// A TCP proxy to the directory that can be cut (new and open connections are dropped) and
/// restored, so a test can take "the directory" away without stopping the shared DC.
struct Proxy {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: &str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let (flag, target) = (up.clone(), target.to_owned());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = cut_rx.clone();
                // Only cuts after this connection opened end it.
                cut_rx.borrow_and_update();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.port)
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

async fn revocation_outlasts_a_directory_outage(backend: Backend) {
    let Some(directory) = samba() else { return };
    let target = directory.url.trim_start_matches("ldaps://").to_owned();
    let proxy = Proxy::start(&target).await;
    let Some(j) = spawn_jit_via(backend, 60, Options { url: Some(proxy.url()), ..Options::default() }).await else {
        return;
    };
    let client = &j.app.client;
    let ticket = client.create_ticket("default", "outage").await.unwrap().number.to_string();
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let g = client.request_jit("default", &request(&ticket, 5, "work", name)).await.unwrap();
        assert_eq!(g.grant.state, "active", "{:?}", g.grant.last_error);
        ids.push((name, g.grant.id.clone()));
    }
    // The directory goes away, then the grants end.
    proxy.set_up(false);
    j.app.clock.advance(time::Duration::minutes(6));
    tokio::time::sleep(StdDuration::from_secs(4)).await;
    let mut admin = DirectoryAdmin::connect(&j.directory).await.unwrap();
    for (name, id) in &ids {
        let g = client.jit_grant("default", id).await.unwrap();
        // Past the end the API says expired; nothing is reported revoked while it is not.
        assert!(g.expired);
        assert_eq!(g.state, "revoking", "{g:?}");
        assert!(g.attempts >= 1, "{g:?}");
        assert!(g.last_error.is_some());
        assert!(g.overdue, "{g:?}");
        let found = admin.find_account(&format!("{name}-{}", j.prefix)).await.unwrap().unwrap();
        assert!(!found.disabled && is_domain_admin(&found.member_of), "still granted while unreachable: {found:?}");
    }
    // The directory returns: every grant is revoked, each only once it really was.
    proxy.set_up(true);
    // Time moves on (ten times faster than the wall clock) so the backoff runs out.
    let clock = j.app.clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            clock.advance(time::Duration::seconds(1));
        }
    });
    for (name, id) in &ids {
        wait_state(client, id, "revoked", 40).await;
        let found = admin.find_account(&format!("{name}-{}", j.prefix)).await.unwrap().unwrap();
        assert!(found.disabled && !is_domain_admin(&found.member_of), "{found:?}");
    }
    let overdue = client
        .list_audit(&latchkey_client::AuditQuery { action: Some("jit.overdue".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(overdue.items.len(), 3, "one jit.overdue event per grant");
    ticker.abort();
    admin.close().await;
    cleanup(&j).await;
}

mod revocation_outlasts_a_directory_outage {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        revocation_outlasts_a_directory_outage(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        revocation_outlasts_a_directory_outage(Backend::Postgres).await;
    }
}

/// A PSA: tickets `T-1` (open) and `T-2` (closed); comments are recorded, and the first one
/// is refused with a 503 so the retry shows. Requests without the bearer token get a 401.
struct Psa {
    base: String,
    comments: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Psa {
    async fn start() -> Self {
        use axum::extract::{Path, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, post};
        type Shared = (Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>, Arc<std::sync::atomic::AtomicUsize>);
        fn authorized(h: &HeaderMap) -> bool {
            h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer psa-secret")
        }
        async fn ticket(h: HeaderMap, Path(t): Path<String>) -> (StatusCode, axum::Json<serde_json::Value>) {
            if !authorized(&h) {
                return (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({})));
            }
            match t.as_str() {
                "T-1" => (StatusCode::OK, axum::Json(serde_json::json!({ "ticket": { "status": "Open" } }))),
                "T-2" => (StatusCode::OK, axum::Json(serde_json::json!({ "ticket": { "status": "Closed" } }))),
                _ => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({}))),
            }
        }
        async fn note(
            State((comments, calls)): State<Shared>,
            h: HeaderMap,
            Path(t): Path<String>,
            axum::Json(body): axum::Json<serde_json::Value>,
        ) -> StatusCode {
            if !authorized(&h) {
                return StatusCode::UNAUTHORIZED;
            }
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            comments.lock().unwrap().push((t, body));
            StatusCode::CREATED
        }
        let comments = Arc::new(std::sync::Mutex::new(Vec::new()));
        let state: Shared = (comments.clone(), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        let app = axum::Router::new()
            .route("/api/tickets/{t}", get(ticket))
            .route("/api/tickets/{t}/notes", post(note))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, comments }
    }
}

async fn psa_tickets_are_checked_and_commented(backend: Backend) {
    let psa = Psa::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("psa-token");
    std::fs::write(&token_file, "psa-secret\n").unwrap();
    let tickets = latchkey_server::jit::TicketsLayer {
        tenant: "default".into(),
        adapter: "psa".into(),
        ticket_url: Some(format!("{}/api/tickets/{{ticket}}", psa.base)),
        comment_url: Some(format!("{}/api/tickets/{{ticket}}/notes", psa.base)),
        open_pointer: Some("/ticket/status".into()),
        open_values: Some(vec!["open".into(), "new".into()]),
        comment_field: Some("note".into()),
        bearer_token: None,
        bearer_token_file: Some(token_file),
        username: None,
        password: None,
        password_file: None,
        timeout_secs: Some(5),
    };
    let Some(j) = spawn_jit_via(backend, 60, Options { tickets: vec![tickets], ..Options::default() }).await else {
        return;
    };
    let client = &j.app.client;
    for (ticket, text) in [("T-2", "is closed"), ("T-9", "does not exist")] {
        let e = client.request_jit("default", &request(ticket, 10, "r", "dave")).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{e:?}");
        assert!(e.to_string().contains(text), "{e}");
    }
    let g = client.request_jit("default", &request("T-1", 10, "patch the DC", "dave")).await.unwrap();
    assert_eq!(g.grant.state, "active", "{:?}", g.grant.last_error);
    // The PSA refuses the first comment: it stays queued and is retried after the backoff.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    loop {
        let queued = client.ticket_comments("default", "T-1").await.unwrap().comments;
        assert_eq!(queued.len(), 1);
        if queued[0].delivered {
            assert!(queued[0].attempts >= 2, "{queued:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the comment was never delivered: {queued:?}");
        j.app.clock.advance(time::Duration::seconds(2));
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let posted = psa.comments.lock().unwrap().clone();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].0, "T-1");
    let body = posted[0].1["note"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            "The tech account dave-{} is now enabled and has been added to Domain Admins",
            j.prefix
        )),
        "{body}"
    );
    client.revoke_jit("default", &g.grant.id).await.unwrap();
    wait_state(client, &g.grant.id, "revoked", 20).await;
    cleanup(&j).await;
}

mod psa_tickets_are_checked_and_commented {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        psa_tickets_are_checked_and_commented(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        psa_tickets_are_checked_and_commented(Backend::Postgres).await;
    }
}

/// An admin LDAP connection of the test (for arranging what the product does not create).
async fn raw_admin(directory: &DirectoryConfig) -> ldap3::Ldap {
    let (conn, mut ldap) =
        ldap3::LdapConnAsync::with_settings(ldap3::LdapConnSettings::new().set_config(tls(directory)), &directory.url)
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    let pw = directory.bind_password().unwrap();
    ldap.simple_bind(&directory.bind_dn, pw.expose_secret()).await.unwrap().success().unwrap();
    ldap
}

async fn a_refused_password_leaves_nothing_behind(backend: Backend) {
    use std::collections::HashSet;
    let Some(j) = spawn_jit(backend, 60).await else { return };
    let client = &j.app.client;
    // The tech account exists already, and a fine-grained password policy that applies to it
    // wants 100 characters: the directory refuses the temporary password.
    let account = format!("erin-{}", j.prefix);
    let mut admin = DirectoryAdmin::connect(&j.directory).await.unwrap();
    let dn = admin.create_account(&j.ou, &account, "arranged by the test").await.unwrap();
    let pso = format!("CN=lk-{},CN=Password Settings Container,CN=System,{}", j.prefix, j.directory.base_dn);
    let mut ldap = raw_admin(&j.directory).await;
    let set = |v: &str| HashSet::from([v.to_owned()]);
    let attrs: Vec<(String, HashSet<String>)> = vec![
        ("objectClass".into(), set("msDS-PasswordSettings")),
        ("msDS-PasswordSettingsPrecedence".into(), set("1")),
        ("msDS-PasswordReversibleEncryptionEnabled".into(), set("FALSE")),
        ("msDS-PasswordHistoryLength".into(), set("0")),
        ("msDS-PasswordComplexityEnabled".into(), set("TRUE")),
        ("msDS-MinimumPasswordLength".into(), set("100")),
        ("msDS-MinimumPasswordAge".into(), set("0")),
        ("msDS-MaximumPasswordAge".into(), set("-37108517437440")),
        ("msDS-LockoutThreshold".into(), set("0")),
        ("msDS-LockoutObservationWindow".into(), set("-18000000000")),
        ("msDS-LockoutDuration".into(), set("-18000000000")),
        ("msDS-PSOAppliesTo".into(), set(&dn)),
    ];
    ldap.add(&pso, attrs).await.unwrap().success().unwrap();
    let ticket = client.create_ticket("default", "policy").await.unwrap().number.to_string();
    let e = client.request_jit("default", &request(&ticket, 10, "r", "erin")).await.unwrap_err();
    let _ = ldap.delete(&pso).await;
    assert_eq!(e.status(), Some(409), "{e:?}");
    assert!(e.to_string().contains("password policy"), "{e}");
    // Nothing half-done: the account is disabled and not in Domain Admins; the grant is failed
    // with the reason, and nothing was written to the ticket.
    let found = admin.find_account(&account).await.unwrap().unwrap();
    assert!(found.disabled, "{found:?}");
    assert!(!is_domain_admin(&found.member_of), "{found:?}");
    let grants = client.list_jit("default").await.unwrap().grants;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].state, "failed");
    assert!(grants[0].last_error.as_deref().unwrap_or_default().contains("password policy"));
    assert!(client.ticket_comments("default", &ticket).await.unwrap().comments.is_empty());
    // A failed grant holds no open slot: revoking it is a conflict, asking again is possible.
    assert_eq!(client.revoke_jit("default", &grants[0].id).await.unwrap_err().status(), Some(409));
    let _ = ldap.unbind().await;
    admin.close().await;
    cleanup(&j).await;
}

mod a_refused_password_leaves_nothing_behind {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_refused_password_leaves_nothing_behind(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_refused_password_leaves_nothing_behind(Backend::Postgres).await;
    }
}

const USER_PW: &str = "correct horse battery staple";

/// A person of the tenant's built-in directory, signed in.
async fn person(app: &TestApp, name: &str) -> Client {
    let u = app
        .client
        .create_user("default", &proto::UserCreate { name: name.into(), display_name: None, email: None })
        .await
        .unwrap();
    app.client
        .set_user_password("default", &u.id, &proto::PasswordSetRequest { password: USER_PW.into() })
        .await
        .unwrap();
    let req = proto::SignInRequest { tenant: "default".into(), username: name.into(), password: USER_PW.into() };
    let session = app.client_with(None).sign_in(&req).await.unwrap();
    app.client_with(Some(&session.token))
}

async fn approval_by_another_person(backend: Backend) {
    let Some(j) = spawn_jit_via(backend, 60, Options { approval_required: true, ..Options::default() }).await else {
        return;
    };
    let alice = person(&j.app, "alice").await;
    let bob = person(&j.app, "bob").await;
    let ticket = j.app.client.create_ticket("default", "approval").await.unwrap().number.to_string();
    let mine = |minutes| proto::JitRequest { requester: None, ..request(&ticket, minutes, "patch", "-") };
    // People ask for themselves only.
    let e = alice.request_jit("default", &request(&ticket, 10, "patch", "bob")).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    let created = alice.request_jit("default", &mine(10)).await.unwrap();
    assert_eq!(created.grant.state, "requested");
    assert_eq!(created.grant.requester, "alice");
    let id = created.grant.id.clone();
    // Nobody approves their own request; others do not see it.
    let own = alice.approve_jit("default", &id).await.unwrap_err();
    assert_eq!(own.status(), Some(403), "{own:?}");
    assert!(bob.list_jit("default").await.unwrap().grants.is_empty());
    assert_eq!(bob.jit_grant("default", &id).await.unwrap_err().status(), Some(404));
    assert_eq!(alice.list_jit("default").await.unwrap().grants.len(), 1);
    // Another person approves: the access starts now, and the password shown at the request works.
    let approved = bob.approve_jit("default", &id).await.unwrap();
    assert_eq!(approved.state, "active", "{:?}", approved.last_error);
    assert_eq!(approved.approver.as_deref(), Some("user:bob"));
    authenticate(&j.directory, &approved.account, &SecretString::from(created.password.clone())).await.unwrap();
    // Extending stays within the policy's maximum.
    let extended = alice.extend_jit("default", &id, 20).await.unwrap();
    assert_eq!(extended.end_at, approved.end_at + time::Duration::minutes(20));
    assert_eq!(alice.extend_jit("default", &id, 31).await.unwrap_err().status(), Some(400));
    assert_eq!(alice.extend_jit("default", &id, 0).await.unwrap_err().status(), Some(400));
    // The requester ends it; a second revoke is a conflict.
    let revoking = alice.revoke_jit("default", &id).await.unwrap();
    assert!(revoking.expired);
    wait_state(&alice, &id, "revoked", 20).await;
    assert_eq!(alice.revoke_jit("default", &id).await.unwrap_err().status(), Some(409));
    // A denied request is final.
    let again = alice.request_jit("default", &mine(10)).await.unwrap();
    let denied = bob.deny_jit("default", &again.grant.id).await.unwrap();
    assert_eq!(denied.state, "denied");
    assert_eq!(bob.approve_jit("default", &again.grant.id).await.unwrap_err().status(), Some(409));
    // Only admins recover passwords.
    assert_eq!(alice.recover_jit_password("default", &id, "why").await.unwrap_err().status(), Some(401));
    cleanup(&j).await;
}

mod approval_by_another_person {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        approval_by_another_person(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        approval_by_another_person(Backend::Postgres).await;
    }
}
