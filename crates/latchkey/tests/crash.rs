//! Crash safety of the real binary: every write the server acknowledged, and its audit event,
//! survives a SIGKILL of the server, on SQLite and on PostgreSQL.
//!
//! Each test starts `latchkey serve`, drives it with concurrent writers and audited readers,
//! kills it with SIGKILL at a random moment, restarts it on the same data (directory or
//! database) and checks everything acknowledged so far, cycle after cycle. A request counts as
//! acknowledged only when its whole 2xx answer arrived; the others may or may not have happened.
//!
//! ```text
//! cargo test -p latchkey --test crash -- --nocapture            # SQLite; PostgreSQL skipped
//! scripts/services/postgres.sh start && eval "$(scripts/services/postgres.sh env)"
//! cargo test -p latchkey --test crash -- --nocapture            # both
//! ```
//!
//! `LATCHKEY_CRASH_CYCLES` changes the number of kill/restart cycles (default 20).

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey_client::{AuditQuery, Client, ClientError};
use latchkey_proto as proto;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const TENANT: &str = "default";
/// Concurrent load tasks per cycle.
const TASKS: usize = 8;
/// Kill/restart cycles unless `LATCHKEY_CRASH_CYCLES` says otherwise.
const DEFAULT_CYCLES: usize = 20;
/// Load before the kill, in milliseconds.
const LOAD_MS: std::ops::RangeInclusive<u64> = 50..=400;
/// How long a (re)start may take to answer `/readyz` (it runs migrations first).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the load tasks may take to notice the kill.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Accounts revealed per verification besides those written in the last cycle (all at the end).
const REVEAL_SAMPLE: usize = 16;
/// Variables of `latchkey serve` that must not leak from the test's environment.
const SERVE_VARS: &[&str] = &[
    "LATCHKEY_CONFIG",
    "LATCHKEY_DATA_DIR",
    "LATCHKEY_LISTEN",
    "LATCHKEY_DATABASE_URL",
    "LATCHKEY_DATABASE_URL_FILE",
    "LATCHKEY_KEY_FILE",
    "LATCHKEY_TLS_CERT",
    "LATCHKEY_TLS_KEY",
    "LATCHKEY_MAX_BODY_BYTES",
    "LATCHKEY_LOG_FORMAT",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sqlite() {
    crash_cycles("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_postgres() {
    let Some(url) = latchkey_testkit::fresh_postgres_url().await else {
        return;
    };
    crash_cycles("postgres", Some(url)).await;
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// A running `latchkey serve`; killed (SIGKILL) and reaped when dropped, so a failing test never
/// leaves a server behind.
struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// SIGKILL (std's `Child::kill` on unix) and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a server runs on: the data directory (key file, admin token, SQLite store) and, for
/// PostgreSQL, the database URL. Survives restarts.
struct Site {
    backend: &'static str,
    data_dir: PathBuf,
    logs: PathBuf,
    database_url: Option<String>,
    starts: usize,
}

impl Site {
    /// Start the server and wait until it is ready. Retries on another port when the one picked
    /// was taken in the meantime.
    async fn start(&mut self) -> Server {
        for _ in 0..5 {
            self.starts += 1;
            let port = free_port();
            let log = self.logs.join(format!("server-{:03}.log", self.starts));
            let out = File::create(&log).expect("create the server log");
            let err = out.try_clone().expect("clone the server log handle");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
            cmd.arg("serve").arg("--data-dir").arg(&self.data_dir).arg("--listen").arg(format!("127.0.0.1:{port}"));
            if let Some(url) = &self.database_url {
                cmd.arg("--database-url").arg(url);
            }
            for var in SERVE_VARS {
                cmd.env_remove(var);
            }
            if std::env::var_os("LATCHKEY_LOG").is_none() {
                cmd.env("LATCHKEY_LOG", "warn");
            }
            cmd.stdin(Stdio::null()).stdout(out).stderr(err);
            let child = cmd.spawn().expect("spawn latchkey serve");
            let mut server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
            match wait_ready(&mut server).await {
                Ok(()) => return server,
                Err(exited) => {
                    let text = log_tail(&server.log);
                    if exited && text.contains("cannot listen") {
                        eprintln!("note: port {port} was taken; starting again on another");
                        continue;
                    }
                    panic!(
                        "[{}] the server did not become ready (start #{}): {}\n--- server log ---\n{text}",
                        self.backend,
                        self.starts,
                        if exited { "it exited" } else { "timed out" }
                    );
                }
            }
        }
        panic!("[{}] no free port after 5 tries", self.backend);
    }

    fn admin_token(&self) -> String {
        let path = self.data_dir.join("admin-token");
        let token = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        token.trim().to_owned()
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Poll `/readyz`. `Err(true)` when the process exited, `Err(false)` on timeout.
async fn wait_ready(server: &mut Server) -> Result<(), bool> {
    let probe = Client::new(&server.base, None).expect("client");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(_)) = server.child.try_wait() {
            return Err(true);
        }
        if probe.ready().await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(false);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The last lines of a server log, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// What the server acknowledged
// ---------------------------------------------------------------------------------------------

/// An account whose creation was acknowledged.
struct AccountModel {
    /// The load task that sets its password (so its sets are sequential).
    owner: usize,
    /// Every password sent for it, in order (acknowledged or not).
    sent: Vec<String>,
    /// Index in `sent` of the newest password known durable (acknowledged, or seen in a
    /// reveal): the current password must be this one or a later one.
    floor: Option<usize>,
    /// The newest acknowledged version.
    acked_version: Option<i64>,
    /// Whether a password was sent since the last verification.
    touched: bool,
}

impl AccountModel {
    /// Check a revealed password against what may be current; on success, it becomes the floor.
    fn observe(&mut self, password: Option<&str>) -> Result<(), String> {
        let floor = self.floor.unwrap_or(0);
        let Some(pw) = password else {
            return Err("the revealed secret has no password".into());
        };
        match self.sent.iter().position(|s| s == pw) {
            Some(i) if i >= floor => {
                self.floor = Some(i);
                Ok(())
            }
            Some(i) => Err(format!(
                "revealed password #{i} of {sent}, older than the last acknowledged #{floor} (lost update)",
                sent = self.sent.len()
            )),
            None => Err(format!("revealed a password that was never sent ({} sent)", self.sent.len())),
        }
    }
}

#[derive(Default)]
struct Model {
    /// Device ids whose creation was acknowledged.
    devices: HashSet<String>,
    /// Accounts whose creation was acknowledged, by id.
    accounts: HashMap<String, AccountModel>,
    /// Acknowledged secret sets: (account id, version).
    secret_sets: HashSet<(String, i64)>,
    /// Acknowledged audited reads: reason → account id.
    reads: HashMap<String, String>,
    /// Requests that got no (complete) answer.
    unacknowledged: u64,
    /// Wrong answers seen during the load.
    violations: Vec<String>,
}

impl Model {
    fn acknowledged_writes(&self) -> usize {
        self.devices.len() + self.accounts.len() + self.secret_sets.len()
    }
}

type Shared = Arc<Mutex<Model>>;

// ---------------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------------

enum Step {
    Device(String),
    Account(String),
    SetPassword { account: String, password: String },
    Read { account: String, reason: String },
}

/// Pick the next request of task `me` (and note a password before it is sent).
fn next_step(me: usize, model: &Shared, rng: &mut StdRng) -> Step {
    let mut m = model.lock().unwrap();
    let own: Vec<&String> = m.accounts.iter().filter(|(_, a)| a.owner == me).map(|(id, _)| id).collect();
    let readable: Vec<&String> =
        m.accounts.iter().filter(|(_, a)| a.owner == me && a.floor.is_some()).map(|(id, _)| id).collect();
    let roll = rng.gen_range(0..100);
    if roll < 20 {
        return Step::Device(Uuid::new_v4().to_string());
    }
    if roll < 40 || own.is_empty() {
        return Step::Account(format!("crash-{}", Uuid::new_v4().simple()));
    }
    if roll < 75 || readable.is_empty() {
        let account = (*own.choose(rng).unwrap()).clone();
        let password = format!("pw-{}", Uuid::new_v4().simple());
        let a = m.accounts.get_mut(&account).unwrap();
        a.sent.push(password.clone());
        a.touched = true;
        return Step::SetPassword { account, password };
    }
    let account = (*readable.choose(rng).unwrap()).clone();
    Step::Read { account, reason: format!("crash-test read {}", Uuid::new_v4()) }
}

/// One load task: requests one after another until the server dies (or `stop`).
async fn load_task(me: usize, client: Client, model: Shared, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::from_entropy();
    while !stop.load(Ordering::Relaxed) {
        let step = next_step(me, &model, &mut rng);
        let (what, result): (String, Result<(), ClientError>) = match step {
            Step::Device(id) => {
                let body = proto::DeviceCreate {
                    device_id: Some(id.clone()),
                    name: format!("crash-dev-{id}"),
                    container_dn: None,
                    os: Some("crash-test".into()),
                };
                let r = client.create_device(TENANT, &body).await.map(|d| {
                    let mut m = model.lock().unwrap();
                    if d.device_id != id {
                        m.violations.push(format!("device {id} was created as {}", d.device_id));
                    }
                    m.devices.insert(d.device_id);
                });
                (format!("create device {id}"), r)
            }
            Step::Account(name) => {
                let body = proto::AccountCreate {
                    kind: proto::AccountKind::Generic,
                    name: name.clone(),
                    device_id: None,
                    description: None,
                };
                let r = client.create_account(TENANT, &body).await.map(|a| {
                    model.lock().unwrap().accounts.insert(
                        a.id,
                        AccountModel { owner: me, sent: Vec::new(), floor: None, acked_version: None, touched: false },
                    );
                });
                (format!("create account {name}"), r)
            }
            Step::SetPassword { account, password } => {
                let body = proto::SecretSetRequest {
                    password: Some(password.clone()),
                    ssh_private_key: None,
                    expires_at: None,
                };
                let r = client.set_secret(TENANT, &account, &body).await.map(|v| {
                    let mut m = model.lock().unwrap();
                    m.secret_sets.insert((account.clone(), v.version));
                    let a = m.accounts.get_mut(&account).unwrap();
                    let i = a.sent.iter().position(|s| *s == password).unwrap();
                    a.floor = Some(i);
                    a.acked_version = Some(a.acked_version.map_or(v.version, |old| old.max(v.version)));
                });
                (format!("set the password of account {account}"), r)
            }
            Step::Read { account, reason } => {
                let body = proto::SecretReadRequest { reason: reason.clone(), ticket: None };
                let r = client.reveal_secret(TENANT, &account, &body).await.map(|s| {
                    let mut m = model.lock().unwrap();
                    m.reads.insert(reason.clone(), account.clone());
                    let a = m.accounts.get_mut(&account).unwrap();
                    let acked = a.acked_version;
                    let checked = a.observe(s.password.as_deref());
                    if let Err(e) = checked {
                        m.violations.push(format!("during load, account {account}: {e}"));
                    }
                    if acked.is_some_and(|v| s.version < v) {
                        m.violations.push(format!(
                            "during load, account {account}: revealed version {} < acknowledged {acked:?}",
                            s.version
                        ));
                    }
                });
                (format!("reveal account {account}"), r)
            }
        };
        match result {
            Ok(()) => {}
            Err(ClientError::Transport(_)) => {
                // No (complete) answer: the server died under it. It may or may not have happened.
                model.lock().unwrap().unacknowledged += 1;
                return;
            }
            Err(e) => {
                model.lock().unwrap().violations.push(format!("{what}: unexpected answer: {e}"));
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checks after a restart
// ---------------------------------------------------------------------------------------------

struct Checked {
    audit_events: usize,
}

/// Check everything acknowledged so far against the restarted server. `full`: reveal every
/// account with a password (else those written in the last cycle and a sample).
async fn verify(client: &Client, model: &Shared, full: bool) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();

    // Devices.
    let mut listed = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = match client.list_devices(TENANT, after.as_deref(), Some(1000)).await {
            Ok(p) => p,
            Err(e) => return Err(vec![format!("list devices: {e}")]),
        };
        listed.extend(page.items.into_iter().map(|d| d.device_id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    {
        let m = model.lock().unwrap();
        let mut lost: Vec<&String> = m.devices.iter().filter(|d| !listed.contains(*d)).collect();
        lost.sort();
        for d in lost {
            problems.push(format!("acknowledged device {d} is gone"));
        }
    }

    // Accounts and their active versions.
    let accounts = match client.list_accounts(TENANT).await {
        Ok(p) => p.items,
        Err(e) => return Err(vec![format!("list accounts: {e}")]),
    };
    let active: HashMap<String, Option<i64>> = accounts.into_iter().map(|a| (a.id, a.active_version)).collect();
    let to_reveal: Vec<String> = {
        let mut m = model.lock().unwrap();
        let mut ids: Vec<&String> = m.accounts.keys().collect();
        ids.sort();
        for id in ids {
            let a = &m.accounts[id];
            match active.get(id) {
                None => problems.push(format!("acknowledged account {id} is gone")),
                Some(v) => {
                    if let Some(acked) = a.acked_version
                        && v.is_none_or(|v| v < acked)
                    {
                        problems
                            .push(format!("account {id}: active version {v:?}, but version {acked} was acknowledged"));
                    }
                }
            }
        }
        let with_password: Vec<&String> =
            m.accounts.iter().filter(|(_, a)| !a.sent.is_empty()).map(|(id, _)| id).collect();
        let mut chosen: Vec<String> = if full {
            with_password.iter().map(|s| (*s).clone()).collect()
        } else {
            let mut rng = StdRng::from_entropy();
            let mut c: Vec<String> =
                with_password.iter().filter(|id| m.accounts[**id].touched).map(|s| (*s).clone()).collect();
            let untouched: Vec<&String> = with_password.iter().copied().filter(|id| !m.accounts[*id].touched).collect();
            c.extend(untouched.choose_multiple(&mut rng, REVEAL_SAMPLE).map(|s| (*s).clone()));
            c
        };
        chosen.sort();
        for a in m.accounts.values_mut() {
            a.touched = false;
        }
        chosen
    };

    // Reveal: the password must be the last acknowledged one or a later one that was sent.
    let mut tasks = tokio::task::JoinSet::new();
    let chunk = to_reveal.len().div_ceil(TASKS).max(1);
    for ids in to_reveal.chunks(chunk) {
        let (client, ids) = (client.clone(), ids.to_vec());
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let reason = format!("crash-test verify {}", Uuid::new_v4());
                let body = proto::SecretReadRequest { reason: reason.clone(), ticket: None };
                let r = client.reveal_secret(TENANT, &id, &body).await.map(|s| (s.password.clone(), s.version));
                out.push((id, reason, r));
            }
            out
        });
    }
    let revealed: Vec<_> = tasks.join_all().await.into_iter().flatten().collect();
    {
        let mut m = model.lock().unwrap();
        for (id, reason, r) in revealed {
            match r {
                Ok((password, version)) => {
                    m.reads.insert(reason, id.clone());
                    let a = m.accounts.get_mut(&id).unwrap();
                    if let Err(e) = a.observe(password.as_deref()) {
                        problems.push(format!("account {id}: {e}"));
                    }
                    if let Some(acked) = a.acked_version
                        && version < acked
                    {
                        problems.push(format!("account {id}: revealed version {version}, acknowledged {acked}"));
                    }
                }
                Err(e) if e.status() == Some(404) => {
                    // No secret: fine only if no password set was acknowledged.
                    if m.accounts[&id].floor.is_some() {
                        problems.push(format!("account {id}: reveal answers 404, but a password set was acknowledged"));
                    }
                }
                Err(e) => problems.push(format!("reveal account {id}: {e}")),
            }
        }
    }

    // The audit log: an event for every acknowledged change and read, in one unbroken chain.
    let mut events: Vec<proto::AuditEvent> = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let q = AuditQuery { after, limit: Some(1000), ..AuditQuery::default() };
        let page = match client.list_audit(&q).await {
            Ok(p) => p,
            Err(e) => return Err(vec![format!("list audit: {e}")]),
        };
        let last = page.items.last().map(|e| e.seq);
        events.extend(page.items);
        match (page.next, last) {
            (Some(_), Some(seq)) => after = Some(seq),
            _ => break,
        }
    }
    for (i, e) in events.iter().enumerate() {
        if e.seq != i as i64 + 1 {
            problems.push(format!("audit seq {} at position {} (gap or disorder)", e.seq, i + 1));
            break;
        }
    }
    let success = |action: &str| -> Vec<&proto::AuditEvent> {
        events.iter().filter(|e| e.action == action && e.outcome == "success").collect()
    };
    let device_events: HashSet<&str> = success("device.create").iter().filter_map(|e| e.object_id.as_deref()).collect();
    let account_events: HashSet<&str> =
        success("account.create").iter().filter_map(|e| e.object_id.as_deref()).collect();
    let set_events: HashSet<(&str, i64)> = success("secret.set")
        .iter()
        .filter_map(|e| Some((e.object_id.as_deref()?, e.details.get("version")?.as_i64()?)))
        .collect();
    let read_events: HashMap<&str, &str> =
        success("secret.read").iter().filter_map(|e| Some((e.reason.as_deref()?, e.object_id.as_deref()?))).collect();
    {
        let m = model.lock().unwrap();
        let mut missing: Vec<String> = Vec::new();
        for d in &m.devices {
            if !device_events.contains(d.as_str()) {
                missing.push(format!("no device.create event for acknowledged device {d}"));
            }
        }
        for a in m.accounts.keys() {
            if !account_events.contains(a.as_str()) {
                missing.push(format!("no account.create event for acknowledged account {a}"));
            }
        }
        for (a, v) in &m.secret_sets {
            if !set_events.contains(&(a.as_str(), *v)) {
                missing.push(format!("no secret.set event for acknowledged version {v} of account {a}"));
            }
        }
        for (reason, a) in &m.reads {
            match read_events.get(reason.as_str()) {
                Some(obj) if *obj == a.as_str() => {}
                Some(obj) => missing.push(format!("secret.read event \"{reason}\" names account {obj}, not {a}")),
                None => missing
                    .push(format!("no successful secret.read event \"{reason}\" for acknowledged read of account {a}")),
            }
        }
        missing.sort();
        problems.extend(missing);
    }
    match client.verify_audit().await {
        Ok(v) if v.ok && v.checked >= events.len() as u64 => {}
        Ok(v) => problems.push(format!(
            "audit chain does not verify: ok={} checked={} of {} listed, broken at {:?}: {:?}",
            v.ok,
            v.checked,
            events.len(),
            v.broken_at,
            v.problem
        )),
        Err(e) => problems.push(format!("verify audit: {e}")),
    }

    if problems.is_empty() { Ok(Checked { audit_events: events.len() }) } else { Err(problems) }
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

fn cycles() -> usize {
    std::env::var("LATCHKEY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CYCLES)
}

fn fail(backend: &str, cycle: usize, context: &str, problems: &[String], logs: &[&Path]) -> ! {
    let mut msg = format!("[{backend}] cycle {cycle}: {context}: {} problem(s)\n", problems.len());
    for p in problems.iter().take(50) {
        msg.push_str(&format!("  - {p}\n"));
    }
    if problems.len() > 50 {
        msg.push_str(&format!("  … and {} more\n", problems.len() - 50));
    }
    for log in logs {
        msg.push_str(&format!("--- {} ---\n{}\n", log.display(), log_tail(log)));
    }
    panic!("{msg}");
}

async fn crash_cycles(backend: &'static str, database_url: Option<String>) {
    let began = Instant::now();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&logs).expect("create the log directory");
    let mut site = Site { backend, data_dir: tmp.path().join("data"), logs, database_url, starts: 0 };
    let cycles = cycles();
    let model: Shared = Arc::default();
    let mut server = site.start().await;
    let token = site.admin_token();
    let mut audit_events = 0;
    let mut rng = StdRng::from_entropy();

    for cycle in 1..=cycles {
        // Load, then SIGKILL with requests in flight.
        let client = Client::new(&server.base, Some(token.clone())).expect("client");
        let stop = Arc::new(AtomicBool::new(false));
        let before = model.lock().unwrap().acknowledged_writes();
        let mut load = tokio::task::JoinSet::new();
        for me in 0..TASKS {
            load.spawn(load_task(me, client.clone(), model.clone(), stop.clone()));
        }
        let delay = rng.gen_range(LOAD_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        stop.store(true, Ordering::Relaxed);
        if tokio::time::timeout(DRAIN_TIMEOUT, load.join_all()).await.is_err() {
            fail(backend, cycle, "load tasks still running after the kill", &[], &[&server.log]);
        }
        drop(client);
        let killed_log = server.log.clone();
        {
            let m = model.lock().unwrap();
            if !m.violations.is_empty() {
                fail(backend, cycle, "wrong answers during the load", &m.violations, &[&killed_log]);
            }
        }

        // Restart on the same data and check everything acknowledged so far.
        server = site.start().await;
        let client = Client::new(&server.base, Some(token.clone())).expect("client");
        match verify(&client, &model, cycle == cycles).await {
            Ok(c) => audit_events = c.audit_events,
            Err(problems) => fail(
                backend,
                cycle,
                &format!("after SIGKILL at {delay} ms of load and a restart"),
                &problems,
                &[&killed_log, &server.log],
            ),
        }
        let m = model.lock().unwrap();
        eprintln!(
            "[{backend}] cycle {cycle}/{cycles}: killed after {delay} ms; +{} acknowledged writes; {} audit events",
            m.acknowledged_writes() - before,
            audit_events
        );
    }
    drop(server);

    let m = model.lock().unwrap();
    assert!(m.acknowledged_writes() > 0, "[{backend}] no write was acknowledged at all");
    println!(
        "crash_{backend}: {cycles} cycles, {} acknowledged writes ({} devices, {} accounts, {} password sets), \
         {} acknowledged reads, {} unacknowledged requests, {} audit events, {:.1} s",
        m.acknowledged_writes(),
        m.devices.len(),
        m.accounts.len(),
        m.secret_sets.len(),
        m.reads.len(),
        m.unacknowledged,
        audit_events,
        began.elapsed().as_secs_f64()
    );
}
