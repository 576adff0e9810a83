//! Agent check-ins per second against a server holding many enrolled devices.
//!
//! `cargo bench -p latchkey-server --bench checkin` (or `scripts/bench checkin`) starts the
//! server with `latchkey_server::start` on a fresh data directory (embedded SQLite, WAL,
//! `synchronous=FULL`: the server opens and migrates the store as it always does), then,
//! outside any measured time:
//!
//! * generates one Ed25519 key per device (`DeviceSigningKey`, on every core);
//! * inserts the devices straight into the SQLite file in large transactions, as enrollment
//!   leaves them (`agent_public_key` = base64url of the public key, `enrolled_at` set), each
//!   with a `device_admin` account whose version 1 is active and was created now, so no
//!   check-in is due a rotation (the envelope is a placeholder: a check-in never opens it);
//! * checkpoints the write-ahead log, so the measured window does not pay for the set-up.
//!
//! For each concurrency it signs a pool of check-ins before the window opens (signing on the
//! load side would otherwise take a large share of the two cores): each one for a device
//! picked uniformly at random among all of them, with a fresh nonce, the current timestamp and
//! a real signature over `request_signing_bytes`, the body `{"passwordVersion":1,...}` that
//! matches the active version. Every worker owns one keep-alive HTTP/1.1 connection and sends
//! one check-in at a time (closed loop) on the server's own runtime, like `benches/http.rs`:
//! a 1 s warm-up, then `LATCHKEY_BENCH_SECS` measured seconds. The server verifies each
//! signature, reads the device, its policy and password state, and commits the check-in (nonce
//! spent, `last_seen_at` and the reported version recorded) before it answers.
//!
//! Every answer must be 200 with no job (a job would mean a rotation was queued, i.e. not the
//! steady state); anything else is counted, sampled and printed, and the run ends with a loud
//! banner and exit status 1. Afterwards the database is read: exactly the devices that were
//! answered 200 have `last_seen_at` set (at or after the start of the load) and the reported
//! version recorded, one nonce is stored per answered check-in, no job was queued.
//!
//! Environment:
//! * `LATCHKEY_BENCH_DEVICES` enrolled devices (default 100000; the server refuses a device's
//!   65th check-in within 10 minutes, so keep it well above the check-ins of a run / 64);
//! * `LATCHKEY_BENCH_CONCURRENCY` comma-separated connection counts (default `32,64`);
//! * `LATCHKEY_BENCH_SECS` measured seconds per concurrency (default 5, at most 240: every
//!   request is signed before its window and the server refuses timestamps 5 minutes off);
//! * `LATCHKEY_BENCH_MAX_RATE` check-ins per second the pre-signed pool is sized for (default
//!   25000); running out is reported as an error;
//! * `LATCHKEY_BENCH_DATA_DIR` a new or empty directory for the server's data, kept after the
//!   run (to inspect the database); a temporary directory otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto::agent_headers;
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

use common::{
    CpuDelta, CpuSnapshot, WARMUP, WorkerStats, concurrency_from_env, env, exchange, fmt_count, fmt_latency,
    measure_from_env, percentile, reconnect, snippet, start_server,
};

const CHECK_IN_PATH: &str = "/api/agent/v1/check-in";
/// The password version every device's admin account has active.
const ACTIVE_VERSION: i64 = 1;
const CHECK_IN_BODY: &[u8] = br#"{"passwordVersion":1,"managedAccounts":[]}"#;
/// What a steady-state answer holds: no work.
const NO_JOBS: &[u8] = br#""jobs":[]"#;
const ADMIN_NAME: &str = "Administrator";
/// Rows per INSERT statement during the set-up.
const INSERT_ROWS: usize = 1000;
/// Devices per set-up transaction.
const TX_DEVICES: usize = 50_000;

struct Settings {
    devices: usize,
    concurrency: Vec<usize>,
    measure: Duration,
    max_rate: f64,
    data_dir: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let devices = match env("LATCHKEY_BENCH_DEVICES") {
            Some(s) => match s.replace('_', "").parse::<usize>() {
                Ok(n) if (1..=u32::MAX as usize).contains(&n) => n,
                _ => return Err(format!("LATCHKEY_BENCH_DEVICES: `{s}` is not a positive number of devices")),
            },
            None => 100_000,
        };
        let max_rate = match env("LATCHKEY_BENCH_MAX_RATE") {
            Some(s) => match s.parse::<f64>() {
                Ok(r) if (1.0..=1e6).contains(&r) => r,
                _ => return Err(format!("LATCHKEY_BENCH_MAX_RATE: `{s}` is not a rate between 1 and 1000000")),
            },
            None => 25_000.0,
        };
        Ok(Self {
            devices,
            concurrency: concurrency_from_env(&[32, 64])?,
            measure: measure_from_env(240.0)?,
            max_rate,
            data_dir: env("LATCHKEY_BENCH_DATA_DIR").map(PathBuf::from),
        })
    }
}

/// An enrolled device as the load side knows it.
struct BenchDevice {
    id: String,
    key: DeviceSigningKey,
}

/// A check-in signed ahead of the window.
struct Signed {
    device: u32,
    request: Request<Full<Bytes>>,
}

/// SplitMix64: a small, fast generator for picking devices (not for anything secret).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `n` devices with fresh keys and random ids, sorted by id (so the set-up inserts append to
/// the indexes).
fn generate_devices(n: usize) -> Vec<BenchDevice> {
    let t = threads();
    let mut devices: Vec<BenchDevice> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..t)
            .map(|i| {
                let count = n / t + usize::from(i < n % t);
                s.spawn(move || {
                    (0..count)
                        .map(|_| BenchDevice {
                            id: uuid::Uuid::new_v4().to_string(),
                            key: DeviceSigningKey::generate(),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a key generation thread panicked")).collect()
    });
    devices.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    devices
}

/// Insert the devices, their admin accounts and active versions; returns the rows written.
async fn insert_devices(
    db: &mut SqliteConnection,
    devices: &[BenchDevice],
    tenant_id: &str,
    key_id: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    // A fixed placeholder: the check-in reads the version's number and times, never the envelope.
    let envelope = vec![0u8; 96];
    let mut rows = 0;
    for (tx_no, tx_devices) in devices.chunks(TX_DEVICES).enumerate() {
        let mut tx = db.begin().await?;
        for (chunk_no, chunk) in tx_devices.chunks(INSERT_ROWS).enumerate() {
            let first = tx_no * TX_DEVICES + chunk_no * INSERT_ROWS;
            let numbered = || chunk.iter().enumerate().map(move |(i, d)| (first + i, d));
            // Account ids follow the device order, so these inserts append as well.
            let account_id = |n: usize| format!("00000000-0000-4000-8000-{n:012x}");
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO devices (id, tenant_id, name, name_key, os, agent_public_key, enrolled_at, created_at) ",
            );
            q.push_values(numbered(), |mut b, (n, d)| {
                b.push_bind(d.id.clone())
                    .push_bind(tenant_id.to_owned())
                    .push_bind(format!("BENCH-{n:08}"))
                    .push_bind(format!("bench-{n:08}"))
                    .push_bind("linux")
                    .push_bind(d.key.verifying_key().to_base64url())
                    .push_bind(now_ms)
                    .push_bind(now_ms);
            });
            rows += q.build().execute(&mut *tx).await?.rows_affected();
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO accounts (id, tenant_id, kind, name, name_key, device_id, scope_key, created_at) ",
            );
            q.push_values(numbered(), |mut b, (n, d)| {
                b.push_bind(account_id(n))
                    .push_bind(tenant_id.to_owned())
                    .push_bind("device_admin")
                    .push_bind(ADMIN_NAME)
                    .push_bind(ADMIN_NAME.to_lowercase())
                    .push_bind(d.id.clone())
                    .push_bind(d.id.clone())
                    .push_bind(now_ms);
            });
            rows += q.build().execute(&mut *tx).await?.rows_affected();
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO secret_versions (tenant_id, account_id, version, state, password_envelope, key_id, \
                 created_at) ",
            );
            q.push_values(numbered(), |mut b, (n, _)| {
                b.push_bind(tenant_id.to_owned())
                    .push_bind(account_id(n))
                    .push_bind(ACTIVE_VERSION)
                    .push_bind("active")
                    .push_bind(envelope.clone())
                    .push_bind(key_id.to_owned())
                    .push_bind(now_ms);
            });
            rows += q.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
    }
    Ok(rows)
}

async fn count(db: &mut SqliteConnection, sql: &'static str) -> Result<i64, String> {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await.map_err(|e| format!("{sql}: {e}"))
}

/// Everything before the load: keys, rows, a checkpoint. Prints what it took.
async fn set_up(db: &mut SqliteConnection, data_dir: &Path, n: usize) -> Result<Vec<BenchDevice>, String> {
    let began = Instant::now();
    let devices = generate_devices(n);
    let keys_took = began.elapsed();

    let tenant_id: String = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'default'")
        .fetch_one(&mut *db)
        .await
        .map_err(|e| format!("the default tenant: {e}"))?;
    let (keyring, _) = latchkey_crypto::Keyring::load_or_create(&data_dir.join("latchkey.key"))
        .map_err(|e| format!("the server's key file: {e}"))?;
    let key_id = keyring.keys().into_iter().find(|k| k.active).map(|k| k.id).ok_or("the key file has no active key")?;

    let insert_began = Instant::now();
    let now_ms = unix_now().as_millis() as i64;
    let rows = insert_devices(db, &devices, &tenant_id, &key_id, now_ms).await.map_err(|e| format!("insert: {e}"))?;
    let insert_took = insert_began.elapsed();
    let checkpoint_began = Instant::now();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *db).await.map_err(|e| format!("checkpoint: {e}"))?;
    let checkpoint_took = checkpoint_began.elapsed();
    let size = std::fs::metadata(data_dir.join("latchkey.db")).map(|m| m.len()).unwrap_or(0);
    println!(
        "  set-up:      {:.1} s: {} keys {:.1} s, {} rows inserted {:.1} s ({} per transaction), \
         WAL checkpoint {:.1} s; database {:.0} MB",
        began.elapsed().as_secs_f64(),
        fmt_count(n as f64),
        keys_took.as_secs_f64(),
        fmt_count(rows as f64),
        insert_took.as_secs_f64(),
        fmt_count(TX_DEVICES as f64),
        checkpoint_took.as_secs_f64(),
        size as f64 / 1e6
    );
    Ok(devices)
}

/// Sign `per_worker` check-ins for each of `workers` workers, on every core.
fn presign(devices: &[BenchDevice], host: &str, workers: usize, per_worker: usize, seed: u64) -> Vec<Vec<Signed>> {
    let timestamp = unix_now().as_secs() as i64;
    let timestamp_text = timestamp.to_string();
    let t = threads().min(workers);
    let mut pools: Vec<(usize, Vec<Signed>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..t)
            .map(|thread| {
                let timestamp_text = timestamp_text.as_str();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for worker in (thread..workers).step_by(t) {
                        let mut rng = SplitMix(seed ^ (worker as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
                        let pool = (0..per_worker)
                            .map(|i| {
                                let n = rng.below(devices.len());
                                let device = &devices[n];
                                let nonce = format!("{seed:016x}{worker:05x}{i:011x}");
                                let signed = latchkey_crypto::request_signing_bytes(
                                    "POST",
                                    CHECK_IN_PATH,
                                    &device.id,
                                    timestamp,
                                    &nonce,
                                    CHECK_IN_BODY,
                                );
                                let signature = URL_SAFE_NO_PAD.encode(device.key.sign(&signed));
                                let request = Request::builder()
                                    .method(Method::POST)
                                    .uri(CHECK_IN_PATH)
                                    .header(header::HOST, host)
                                    .header(header::CONTENT_TYPE, "application/json")
                                    .header(agent_headers::DEVICE, device.id.as_str())
                                    .header(agent_headers::TIMESTAMP, timestamp_text)
                                    .header(agent_headers::NONCE, nonce)
                                    .header(agent_headers::SIGNATURE, signature)
                                    .body(Full::new(Bytes::from_static(CHECK_IN_BODY)))
                                    .expect("a valid request");
                                Signed { device: n as u32, request }
                            })
                            .collect();
                        out.push((worker, pool));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a signing thread panicked")).collect()
    });
    pools.sort_unstable_by_key(|(w, _)| *w);
    pools.into_iter().map(|(_, p)| p).collect()
}

/// One worker: its own connection, its own pre-signed check-ins, one at a time. Returns what
/// it saw and the devices answered 200 (warm-up included).
async fn worker(
    addr: std::net::SocketAddr,
    mut pool: Vec<Signed>,
    warm_end: Instant,
    end: Instant,
) -> (WorkerStats, Vec<u32>) {
    let mut st = WorkerStats::with_capacity(pool.len());
    let mut seen = Vec::with_capacity(pool.len());
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        reconnect(&mut sender, addr, &mut st).await;
        let start = Instant::now();
        if start >= end {
            break;
        }
        let Some(s) = sender.as_mut() else { continue };
        let Some(next) = pool.pop() else {
            st.error("the pre-signed check-ins ran out before the window ended: raise LATCHKEY_BENCH_MAX_RATE".into());
            break;
        };
        let outcome = exchange(s, next.request).await;
        let latency = start.elapsed();
        match outcome {
            Ok((StatusCode::OK, body)) => {
                seen.push(next.device);
                if body.windows(NO_JOBS.len()).any(|w| w == NO_JOBS) {
                    st.success(start >= warm_end, latency);
                } else {
                    st.error(format!("HTTP 200 with work (not the steady state): {}", snippet(&body)));
                }
            }
            Ok((status, body)) => st.error(format!("HTTP {status}: {}", snippet(&body))),
            Err(e) => {
                st.error(format!("transport: {e}"));
                sender = None;
            }
        }
    }
    (st, seen)
}

struct LevelResult {
    concurrency: usize,
    signed: usize,
    sign_secs: f64,
    requests: u64,
    /// 200 answers without work, warm-up included.
    total_ok: u64,
    /// Every 200 answer, warm-up included (each one committed a nonce).
    answered: u64,
    rate: f64,
    p50: u64,
    p99: u64,
    errors: u64,
    error_samples: Vec<String>,
    cpu: CpuDelta,
}

async fn run_level(
    settings: &Settings,
    addr: std::net::SocketAddr,
    devices: &[BenchDevice],
    answered: &mut [bool],
    concurrency: usize,
    seed: u64,
) -> LevelResult {
    let window = (WARMUP + settings.measure).as_secs_f64();
    let per_worker = (settings.max_rate * window / concurrency as f64).ceil() as usize + 1;
    let sign_began = Instant::now();
    let pools = presign(devices, &addr.to_string(), concurrency, per_worker, seed);
    let sign_secs = sign_began.elapsed().as_secs_f64();

    let begin = Instant::now();
    let warm_end = begin + WARMUP;
    let end = warm_end + settings.measure;
    let handles: Vec<_> = pools.into_iter().map(|pool| tokio::spawn(worker(addr, pool, warm_end, end))).collect();
    tokio::time::sleep_until(warm_end.into()).await;
    // A marker for profilers attached from outside: the measured window starts now.
    eprintln!("  measuring {} s at concurrency {concurrency} ...", settings.measure.as_secs_f64());
    let cpu_start = CpuSnapshot::take();
    tokio::time::sleep_until(end.into()).await;
    let cpu_end = CpuSnapshot::take();
    let mut all = WorkerStats::default();
    let mut answered_200 = 0;
    for h in handles {
        let (st, seen) = h.await.expect("a load worker panicked");
        all.merge(st);
        answered_200 += seen.len() as u64;
        for d in seen {
            answered[d as usize] = true;
        }
    }
    all.latencies.sort_unstable();
    LevelResult {
        concurrency,
        signed: concurrency * per_worker,
        sign_secs,
        requests: all.measured_ok,
        total_ok: all.total_ok,
        answered: answered_200,
        rate: all.measured_ok as f64 / settings.measure.as_secs_f64(),
        p50: percentile(&all.latencies, 50.0),
        p99: percentile(&all.latencies, 99.0),
        errors: all.errors,
        error_samples: all.error_samples,
        cpu: cpu_end.since(&cpu_start),
    }
}

/// Read the database after the load: exactly the answered devices were seen (since the load
/// began) with the reported version, one nonce per answered check-in, no job queued, no audit
/// event written. Prints the findings; returns whether they hold.
async fn check_database(
    db: &mut SqliteConnection,
    devices: &[BenchDevice],
    answered: &[bool],
    answers: u64,
    load_began_ms: i64,
    audit_before: i64,
) -> Result<bool, String> {
    let rows: Vec<(String, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, last_seen_at, reported_version FROM devices WHERE last_seen_at IS NOT NULL")
            .fetch_all(&mut *db)
            .await
            .map_err(|e| format!("read devices: {e}"))?;
    let expected = answered.iter().filter(|a| **a).count();
    let (mut updated, mut stale, mut wrong_version, mut unexpected) = (0usize, 0usize, 0usize, 0usize);
    for (id, seen_at, version) in &rows {
        match devices.binary_search_by(|d| d.id.as_str().cmp(id)) {
            Ok(i) if answered[i] => {
                updated += 1;
                stale += usize::from(*seen_at < load_began_ms);
                wrong_version += usize::from(*version != Some(ACTIVE_VERSION));
            }
            _ => unexpected += 1,
        }
    }
    // Each device's row keeps the nonces of its check-ins until they expire (10 minutes).
    let nonces = count(db, "SELECT COALESCE(SUM(json_array_length(check_in_nonces)), 0) FROM devices").await?;
    let jobs = count(db, "SELECT COUNT(*) FROM device_jobs").await?;
    let audit = count(db, "SELECT COUNT(*) FROM audit_events").await?;
    let seen_ok = updated == expected && stale == 0 && wrong_version == 0 && unexpected == 0;
    let rest_ok = nonces == answers as i64 && jobs == 0 && audit == audit_before;
    println!(
        "database check: {} devices answered 200 (of {}), last_seen_at set since the load began on {} \
         ({} missing, {} older, {} with another reported version, {} never answered); \
         {} nonces stored for {} answered check-ins; {} jobs queued; {} audit events written => {}",
        fmt_count(expected as f64),
        fmt_count(devices.len() as f64),
        fmt_count((updated - stale) as f64),
        expected - updated,
        stale,
        wrong_version,
        unexpected,
        fmt_count(nonces as f64),
        fmt_count(answers as f64),
        jobs,
        audit - audit_before,
        if seen_ok && rest_ok { "OK" } else { "MISMATCH" }
    );
    Ok(seen_ok && rest_ok)
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server-rt")
        .enable_all()
        .build()
        .expect("server runtime");
    rt.block_on(run(&settings))
}

/// The data directory: the one named (new or empty, kept) or a temporary one.
fn data_dir(settings: &Settings) -> Result<(PathBuf, Option<tempfile::TempDir>), String> {
    match &settings.data_dir {
        Some(dir) => {
            let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true);
            if !empty {
                return Err(format!("LATCHKEY_BENCH_DATA_DIR {} is not empty", dir.display()));
            }
            Ok((dir.clone(), None))
        }
        None => {
            let temp = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
            Ok((temp.path().to_owned(), Some(temp)))
        }
    }
}

async fn run(settings: &Settings) -> ExitCode {
    match run_inner(settings).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("RESULT: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_inner(settings: &Settings) -> Result<bool, String> {
    let (dir, _temp) = data_dir(settings)?;
    let server = start_server(&dir, None).await?;
    let addr = server.addr;
    println!("latchkey agent check-in benchmark");
    println!("  store:       SQLite (embedded, WAL, synchronous=FULL) in {}", dir.display());
    println!(
        "  load client: hyper http1 connection on the server's tokio runtime (2 worker threads), \
         one keep-alive connection per worker, closed loop, check-ins signed before each window"
    );
    println!(
        "  timing:      {:.0} s warm-up + {} s measured per concurrency; {} cores",
        WARMUP.as_secs_f64(),
        settings.measure.as_secs_f64(),
        threads()
    );

    let mut db = SqliteConnection::connect(&format!("sqlite://{}", dir.join("latchkey.db").display()))
        .await
        .map_err(|e| format!("open the database: {e}"))?;
    // The set-up's own connection: nothing of it is measured, so it need not wait for the disk.
    for pragma in ["PRAGMA busy_timeout = 10000", "PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144"] {
        sqlx::query(pragma).execute(&mut db).await.map_err(|e| format!("{pragma}: {e}"))?;
    }
    let devices = set_up(&mut db, &dir, settings.devices).await?;
    let audit_before = count(&mut db, "SELECT COUNT(*) FROM audit_events").await?;
    // Close the set-up's connection: its large page cache would stay in the process during
    // the load (SQLite's page caches share one pool) and weigh on the server's commits.
    db.close().await.map_err(|e| format!("close the set-up connection: {e}"))?;
    println!();

    let load_began_ms = unix_now().as_millis() as i64;
    let mut answered = vec![false; devices.len()];
    let mut results = Vec::new();
    let seed = unix_now().as_nanos() as u64;
    for (i, &concurrency) in settings.concurrency.iter().enumerate() {
        eprintln!("signing and running check-ins at concurrency {concurrency} ...");
        let level_seed = SplitMix(seed.wrapping_add(i as u64)).next();
        results.push(run_level(settings, addr, &devices, &mut answered, concurrency, level_seed).await);
    }

    println!(
        "{:>10} {:>5} {:>10} {:>12} {:>10} {:>10} {:>7}",
        "devices", "conc", "requests", "check-ins/s", "p50", "p99", "errors"
    );
    println!("{}", "-".repeat(11 * 4 + 6 + 13 + 8));
    for r in &results {
        println!(
            "{:>10} {:>5} {:>10} {:>12} {:>10} {:>10} {:>7}",
            fmt_count(devices.len() as f64),
            r.concurrency,
            fmt_count(r.requests as f64),
            fmt_count(r.rate),
            fmt_latency(r.p50),
            fmt_latency(r.p99),
            r.errors
        );
    }
    println!();
    for r in &results {
        println!(
            "concurrency {:>3}: {} check-ins signed in {:.1} s before the window; {} answered 200 incl. warm-up",
            r.concurrency,
            fmt_count(r.signed as f64),
            r.sign_secs,
            fmt_count(r.total_ok as f64)
        );
    }

    println!();
    println!("CPU time per check-in over the measured window (all threads of this process; 2 cores = 2 s per s):");
    for r in &results {
        r.cpu.print("POST /api/agent/v1/check-in", r.concurrency, r.requests, settings.measure, "");
    }
    let disturbed: Vec<String> = results
        .iter()
        .filter(|r| r.cpu.others / settings.measure.as_secs_f64() > 0.2)
        .map(|r| format!("c={} ({:.2} cores)", r.concurrency, r.cpu.others / settings.measure.as_secs_f64()))
        .collect();
    if !disturbed.is_empty() {
        println!();
        println!("WARNING: other processes used CPU during: {}; rerun on an idle machine", disturbed.join(", "));
    }

    let total_errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut good = true;
    if total_errors > 0 {
        good = false;
        println!();
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("!!! THIS RUN HAD {total_errors} FAILED CHECK-INS: THE FIGURES ABOVE ARE NOT VALID");
        for r in results.iter().filter(|r| r.errors > 0) {
            println!("!!! concurrency {}: {} errors, e.g.:", r.concurrency, r.errors);
            for s in &r.error_samples {
                println!("!!!     {s}");
            }
        }
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }

    // Every answered check-in has been committed (the server answers after the commit).
    println!();
    let answers: u64 = results.iter().map(|r| r.answered).sum();
    let mut db = SqliteConnection::connect(&format!("sqlite://{}", dir.join("latchkey.db").display()))
        .await
        .map_err(|e| format!("open the database: {e}"))?;
    good &= check_database(&mut db, &devices, &answered, answers, load_began_ms, audit_before).await?;
    drop(db);

    if let Err(e) = server.shutdown().await {
        eprintln!("warning: shutdown: {e}");
    }
    if settings.data_dir.is_some() {
        println!("data kept in {}", dir.display());
    }
    Ok(good)
}
