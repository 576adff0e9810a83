//! Revocation lateness of just-in-time grants against the real Samba AD DC.
//!
//! `./scripts/bench jit` starts the server in process (embedded SQLite, or PostgreSQL with
//! `LATCHKEY_BENCH_PG_URL`) with the Samba DC of `scripts/services/samba-ad.sh env`
//! (`LATCHKEY_TEST_SAMBA_*`) as the tenant's directory, asks for `LATCHKEY_BENCH_GRANTS`
//! (default 1,000) directory grants at concurrency `LATCHKEY_BENCH_CONCURRENCY` (default 8),
//! each for the whole minutes left until `LATCHKEY_BENCH_JIT_MINUTES` (default 3) after the
//! start, so that every end falls within one minute, waits until every one is revoked, and
//! prints the revocation lateness (fully revoked at − end) p50 / p99 / max, target p99 ≤ 1 s,
//! and on a second line the time from the end until the account was seen out of the admin
//! group (the moment the privilege is gone). The latter is measured against the directory: a
//! separate connection reads the group's members every 100 ms (`LATCHKEY_BENCH_POLL_MS`), so it
//! is an upper bound by up to one poll. The grants use an admin group of their own, created with
//! their OU for the run, so the group's history from earlier runs does not weigh on it. The
//! tech accounts, the group and the OU are deleted after.

// A benchmark reports by printing and stops loudly on a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use latchkey_client::Client;
use latchkey_ldap::admin::DirectoryAdmin;
use latchkey_ldap::{DirectoryConfig, Flavor};
use latchkey_proto as proto;
use latchkey_server::jit::JitPolicyLayer;
use latchkey_server::{Config, ConfigLayer, SystemClock};
use secrecy::{ExposeSecret, SecretString};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // Retries and other engine warnings go to stderr (`RUST_LOG` for more).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run());
}

fn samba() -> Option<DirectoryConfig> {
    let url = std::env::var("LATCHKEY_TEST_SAMBA_URL").ok().filter(|v| !v.trim().is_empty())?;
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

async fn connect(directory: &DirectoryConfig) -> ldap3::Ldap {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(directory.ca_file.as_ref().unwrap()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = ldap3::LdapConnSettings::new().set_config(Arc::new(tls));
    let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings, &directory.url).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    let pw = directory.bind_password().unwrap();
    ldap.simple_bind(&directory.bind_dn, pw.expose_secret()).await.unwrap().success().unwrap();
    ldap
}

/// The run's OU and its admin group (a global security group named `sam`).
async fn create_ou_and_group(directory: &DirectoryConfig, ou: &str, group: &str, sam: &str) {
    let mut ldap = connect(directory).await;
    let name = ou.split(',').next().unwrap().trim_start_matches("OU=").to_owned();
    ldap.add(ou, vec![("objectClass", HashSet::from(["organizationalUnit"])), ("ou", HashSet::from([name.as_str()]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    ldap.add(group, vec![("objectClass", HashSet::from(["top", "group"])), ("sAMAccountName", HashSet::from([sam]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = ldap.unbind().await;
}

/// The lower-cased first RDN value of a DN (`CN=bx-u1,OU=…` → `bx-u1`).
fn first_rdn(dn: &str) -> String {
    dn.split(',').next().unwrap_or_default().split_once('=').map(|(_, v)| v).unwrap_or_default().to_lowercase()
}

/// Read the group's members every `every` until `stop`; returns when each of `accounts` was
/// first seen out of it (the reply's arrival).
async fn watch_group(
    directory: DirectoryConfig,
    group: String,
    accounts: Vec<String>,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::collections::HashMap<String, time::OffsetDateTime> {
    let mut ldap = connect(&directory).await;
    let mut out = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let last = *stop.borrow();
        let (entries, _) = ldap
            .search(&group, ldap3::Scope::Base, "(objectClass=*)", vec!["member"])
            .await
            .unwrap()
            .success()
            .unwrap();
        let seen = time::OffsetDateTime::now_utc();
        let members: HashSet<String> = entries
            .into_iter()
            .flat_map(|e| ldap3::SearchEntry::construct(e).attrs.remove("member").unwrap_or_default())
            .map(|dn| first_rdn(&dn))
            .collect();
        for a in &accounts {
            if !members.contains(&a.to_lowercase()) {
                out.entry(a.clone()).or_insert(seen);
            }
        }
        if last || out.len() == accounts.len() {
            break;
        }
    }
    let _ = ldap.unbind().await;
    out
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run() {
    let Some(directory) = samba() else {
        eprintln!("LATCHKEY_TEST_SAMBA_URL is not set: run `scripts/services/samba-ad.sh start` and eval its `env`");
        std::process::exit(2);
    };
    let grants: usize = env_or("LATCHKEY_BENCH_GRANTS", 1000);
    let minutes: i64 = env_or("LATCHKEY_BENCH_JIT_MINUTES", 3);
    let concurrency: usize = env_or("LATCHKEY_BENCH_CONCURRENCY", 8);
    let dir = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("b{}", &id[..4]);
    let ou = format!("OU=lk-bench-{},{}", &id[..8], directory.base_dn);
    let group_sam = format!("lkb-{}", &id[..8]);
    let group = format!("CN={group_sam},{ou}");
    create_ou_and_group(&directory, &ou, &group, &group_sam).await;
    let poll = Duration::from_millis(env_or("LATCHKEY_BENCH_POLL_MS", 100));
    let mut config = Config::resolve(ConfigLayer {
        data_dir: Some(dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        database_url: std::env::var("LATCHKEY_BENCH_PG_URL").ok(),
        ..Default::default()
    })
    .unwrap();
    config.directories = vec![latchkey_server::TenantDirectory { tenant: "default".into(), config: directory.clone() }];
    config.jit = latchkey_server::jit::JitConfig::resolve(
        vec![JitPolicyLayer {
            tenant: "default".into(),
            provider: "directory".into(),
            max_minutes: Some(60),
            approval_required: None,
            admin_group: Some(group.clone()),
            accounts_ou: Some(ou.clone()),
            tenant_prefix: Some(prefix.clone()),
            on_revoke: None,
        }],
        vec![],
    )
    .unwrap();
    let server = latchkey_server::start(config, Arc::new(SystemClock)).await.unwrap();
    let base = format!("http://{}", server.addr);
    let client =
        Client::new(&base, Some(server.first_admin_token.as_ref().unwrap().expose_secret().to_owned())).unwrap();
    let ticket = client.create_ticket("default", "benchmark").await.unwrap().number.to_string();

    println!("jit: {grants} directory grants of {minutes} min, requested at concurrency {concurrency}");
    let started = Instant::now();
    // Every grant ends in the minute after `target`: each asks for the whole minutes left.
    let target = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes);
    let created: Vec<proto::JitGrant> = futures::stream::iter(0..grants)
        .map(|i| {
            let client = client.clone();
            let ticket = ticket.clone();
            async move {
                let left = (target - time::OffsetDateTime::now_utc()).whole_seconds();
                let req = proto::JitRequest {
                    provider: "directory".into(),
                    ticket,
                    minutes: (left + 59) / 60,
                    reason: "benchmark".into(),
                    device_id: None,
                    requester: Some(format!("u{i}")),
                };
                let g = client.request_jit("default", &req).await.unwrap().grant.clone();
                assert_eq!(g.state, "active", "{:?}", g.last_error);
                g
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let first_end = created.iter().map(|g| g.end_at).min().unwrap();
    let last_end = created.iter().map(|g| g.end_at).max().unwrap();
    println!(
        "  granted in {:.1} s; ends fall within {:.1} s",
        started.elapsed().as_secs_f64(),
        (last_end - first_end).as_seconds_f64()
    );
    assert!(
        time::OffsetDateTime::now_utc() < first_end,
        "granting took longer than the grants last: raise LATCHKEY_BENCH_JIT_MINUTES"
    );

    let (stop_watch, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(watch_group(
        directory.clone(),
        group.clone(),
        created.iter().map(|g| g.account.clone()).collect(),
        poll,
        stop_rx,
    ));
    let deadline = Instant::now() + Duration::from_secs(60 * (minutes as u64 + 10));
    let done = loop {
        let list = client.list_jit("default").await.unwrap().grants;
        let revoked = list.iter().filter(|g| g.state == "revoked").count();
        if revoked == grants {
            break list;
        }
        assert!(Instant::now() < deadline, "only {revoked} of {grants} revoked");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut late: Vec<i64> =
        done.iter().map(|g| (g.revoked_at.unwrap() - g.end_at).whole_milliseconds() as i64).collect();
    // Where the late ones fall: the worst lateness of each tenth of the grants in end order.
    let mut by_end: Vec<&proto::JitGrant> = done.iter().collect();
    by_end.sort_by_key(|g| g.end_at);
    let tenths: Vec<String> = by_end
        .chunks(by_end.len().div_ceil(10))
        .map(|c| {
            let worst = c.iter().map(|g| (g.revoked_at.unwrap() - g.end_at).whole_milliseconds()).max().unwrap();
            worst.to_string()
        })
        .collect();
    late.sort_unstable();
    println!(
        "  revocation lateness: p50 {} ms, p99 {} ms, max {} ms (target p99 <= 1000 ms) [{}]",
        percentile(&late, 0.50),
        percentile(&late, 0.99),
        late[late.len() - 1],
        if percentile(&late, 0.99) <= 1000 { "ok" } else { "MISSED" }
    );
    println!("  worst lateness per tenth of the grants in end order (ms): {}", tenths.join(" "));
    let _ = stop_watch.send(true);
    let out_at = watcher.await.unwrap();
    let mut out: Vec<i64> = done.iter().map(|g| (out_at[&g.account] - g.end_at).whole_milliseconds() as i64).collect();
    out.sort_unstable();
    println!(
        "  out of the admin group after the end: p50 {} ms, p99 {} ms, max {} ms (seen by a {} ms poll)",
        percentile(&out, 0.50),
        percentile(&out, 0.99),
        out[out.len() - 1],
        poll.as_millis()
    );
    server.shutdown().await.unwrap();

    let mut admin = DirectoryAdmin::connect(&directory).await.unwrap();
    for g in &done {
        if let Some(a) = admin.find_account(&g.account).await.unwrap() {
            admin.delete_account(&a.dn).await.unwrap();
        }
    }
    admin.delete_account(&group).await.unwrap();
    admin.delete_account(&ou).await.unwrap();
    admin.close().await;
}
