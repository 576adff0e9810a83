//! Just-in-time revocation survives a crash of the real binary: grants fall due, the server is
//! killed with SIGKILL at that moment, and after a restart every grant is revoked within 10 s
//! of the start, against the real Samba AD DC (the tech accounts are disabled and out of
//! Domain Admins). On SQLite and on PostgreSQL.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_client::Client;
use latchkey_ldap::admin::DirectoryAdmin;
use latchkey_ldap::{DirectoryConfig, Flavor};
use latchkey_proto as proto;
use secrecy::SecretString;

/// Grants falling due together.
const GRANTS: usize = 6;
/// Revocation must finish this soon after the restart began.
const RECOVERY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_while_grants_fall_due_sqlite() {
    kill_while_grants_fall_due(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_while_grants_fall_due_postgres() {
    let Some(url) = latchkey_testkit::fresh_postgres_url().await else { return };
    kill_while_grants_fall_due(Some(url)).await;
}

struct Samba {
    url: String,
    bind_dn: String,
    bind_password: String,
    base_dn: String,
    ca_file: String,
}

fn samba() -> Option<Samba> {
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
    Some(Samba {
        url,
        bind_dn: var("BIND_DN"),
        bind_password: var("BIND_PASSWORD"),
        base_dn: var("BASE_DN"),
        ca_file: var("CA_FILE"),
    })
}

/// A TOML basic string.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running `latchkey serve`, killed (SIGKILL) and reaped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start(data_dir: &Path, config: &Path, database_url: Option<&str>, log: &Path) -> Server {
    let port = free_port();
    let out = File::create(log).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    for var in ["LATCHKEY_CONFIG", "LATCHKEY_DATA_DIR", "LATCHKEY_LISTEN", "LATCHKEY_DATABASE_URL", "LATCHKEY_KEY_FILE"]
    {
        cmd.env_remove(var);
    }
    if std::env::var_os("LATCHKEY_LOG").is_none() {
        cmd.env("LATCHKEY_LOG", "warn");
    }
    cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out);
    let mut server = Server { child: cmd.spawn().unwrap(), base: format!("http://127.0.0.1:{port}") };
    let probe = Client::new(&server.base, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe.ready().await.is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited ({status}): {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    server
}

/// Run a client command of the binary; its standard output.
fn cli(base: &str, token: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .arg("--url")
        .arg(base)
        .env("LATCHKEY_TOKEN", token)
        .env_remove("LATCHKEY_TENANT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "latchkey {args:?}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

async fn kill_while_grants_fall_due(database_url: Option<String>) {
    let Some(samba) = samba() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data_dir: PathBuf = dir.path().join("data");
    let prefix = format!("k{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "[[directory]]\ntenant = \"default\"\nurl = {}\nbind_dn = {}\nbind_password = {}\nbase_dn = {}\nca_file = {}\n\
             connect_timeout_secs = 5\noperation_timeout_secs = 20\n\n\
             [[jit]]\ntenant = \"default\"\nprovider = \"directory\"\nmax_minutes = 60\naccounts_ou = {}\n\
             tenant_prefix = \"{prefix}\"\n",
            q(&samba.url),
            q(&samba.bind_dn),
            q(&samba.bind_password),
            q(&samba.base_dn),
            q(&samba.ca_file),
            q(&format!("CN=Users,{}", samba.base_dn)),
        ),
    )
    .unwrap();
    let first = start(&data_dir, &config, database_url.as_deref(), &dir.path().join("first.log")).await;
    let token = std::fs::read_to_string(data_dir.join("admin-token")).unwrap().trim().to_owned();
    let client = Client::new(&first.base, Some(token.clone())).unwrap();
    // The CLI opens the ticket and asks for the first grant.
    let out = cli(&first.base, &token, &["ticket", "create", "crash", "--json"]);
    let ticket: proto::Ticket = serde_json::from_str(&out).unwrap();
    let ticket = ticket.number.to_string();
    let out = cli(
        &first.base,
        &token,
        &[
            "jit",
            "request",
            "--provider",
            "directory",
            "--ticket",
            &ticket,
            "--minutes",
            "1",
            "--reason",
            "crash test",
            "--requester",
            "c0",
        ],
    );
    assert!(out.contains("Copy the password now"), "{out}");
    assert!(out.contains(&format!("c0-{prefix}")), "{out}");
    let mut grants = client.list_jit("default").await.unwrap().grants;
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].state, "active");
    for i in 1..GRANTS {
        let req = proto::JitRequest {
            provider: "directory".into(),
            ticket: ticket.clone(),
            minutes: 1,
            reason: "crash test".into(),
            device_id: None,
            requester: Some(format!("c{i}")),
        };
        let g = client.request_jit("default", &req).await.unwrap();
        assert_eq!(g.grant.state, "active", "{:?}", g.grant.last_error);
        grants.push(g.grant.clone());
    }
    // Kill the server just as the grants fall due (some may be mid-revocation).
    let last_end = grants.iter().map(|g| g.end_at).max().unwrap();
    let first_end = grants.iter().map(|g| g.end_at).min().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let wait = (first_end - now + time::Duration::milliseconds(150)).max(time::Duration::ZERO);
    tokio::time::sleep(Duration::try_from(wait).unwrap()).await;
    drop(first);
    assert!(time::OffsetDateTime::now_utc() <= last_end + time::Duration::seconds(2), "the kill came too late");

    let restart = Instant::now();
    let second = start(&data_dir, &config, database_url.as_deref(), &dir.path().join("second.log")).await;
    let client = Client::new(&second.base, Some(token)).unwrap();
    loop {
        let list = client.list_jit("default").await.unwrap().grants;
        let pending: Vec<&proto::JitGrant> = list.iter().filter(|g| g.state != "revoked").collect();
        if pending.is_empty() {
            break;
        }
        assert!(
            restart.elapsed() < RECOVERY,
            "not revoked within {RECOVERY:?} of the restart: {:?}",
            pending.iter().map(|g| (&g.account, &g.state, &g.last_error)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("all {GRANTS} grants revoked {:?} after the restart began", restart.elapsed());

    let mut directory = DirectoryConfig::new(
        &samba.url,
        &samba.bind_dn,
        SecretString::from(samba.bind_password.clone()),
        &samba.base_dn,
        Flavor::ActiveDirectory,
    );
    directory.ca_file = Some(samba.ca_file.clone().into());
    let mut admin = DirectoryAdmin::connect(&directory).await.unwrap();
    for g in &grants {
        let found = admin.find_account(&g.account).await.unwrap().unwrap();
        assert!(found.disabled, "{found:?}");
        assert!(!found.member_of.iter().any(|m| m.to_lowercase().starts_with("cn=domain admins,")), "{found:?}");
        admin.delete_account(&found.dn).await.unwrap();
    }
    admin.close().await;
}
