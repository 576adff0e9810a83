//! What the HTTP benchmarks share: settings read from the environment, starting the server,
//! the keep-alive load connection, per-worker results, percentiles and number formats, and the
//! process CPU time per thread group (read from `/proc`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use latchkey_server::{Config, ConfigLayer, RunningServer, SystemClock};

/// The allocator of the `latchkey` binary, so the figures are the shipped server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load before every measured window, not counted.
pub const WARMUP: Duration = Duration::from_secs(1);
/// Error messages kept per scenario (the count is always complete).
pub const MAX_ERROR_SAMPLES: usize = 5;

/// A non-empty environment variable, trimmed.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `LATCHKEY_BENCH_SECS`: measured seconds per scenario (default 5, at most `max`).
pub fn measure_from_env(max: f64) -> Result<Duration, String> {
    let secs: f64 = match env("LATCHKEY_BENCH_SECS") {
        Some(s) => s.parse().map_err(|_| format!("LATCHKEY_BENCH_SECS: `{s}` is not a number of seconds"))?,
        None => 5.0,
    };
    if !(secs > 0.0 && secs <= max) {
        return Err(format!("LATCHKEY_BENCH_SECS must be between 0 and {max}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `LATCHKEY_BENCH_CONCURRENCY`: comma-separated connection counts.
pub fn concurrency_from_env(default: &[usize]) -> Result<Vec<usize>, String> {
    match env("LATCHKEY_BENCH_CONCURRENCY") {
        Some(s) => s
            .split(',')
            .map(|c| match c.trim().parse::<usize>() {
                Ok(n) if (1..=4096).contains(&n) => Ok(n),
                _ => Err(format!("LATCHKEY_BENCH_CONCURRENCY: `{c}` is not a number between 1 and 4096")),
            })
            .collect(),
        None => Ok(default.to_vec()),
    }
}

/// Start the server on loopback port 0 with its data in `data_dir`: the embedded SQLite store,
/// or PostgreSQL when `database_url` is given.
pub async fn start_server(data_dir: &Path, database_url: Option<String>) -> Result<RunningServer, String> {
    let layer = ConfigLayer {
        data_dir: Some(data_dir.to_owned()),
        listen: Some("127.0.0.1:0".into()),
        database_url,
        // Application access tokens outlive any measured window.
        applications: Some(latchkey_server::applications_config::ApplicationsLayer {
            token_lifetime_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let config = Config::resolve(layer).map_err(|e| format!("configuration: {e}"))?;
    latchkey_server::start(config, Arc::new(SystemClock)).await.map_err(|e| format!("the server did not start: {e}"))
}

/// What one load worker saw.
#[derive(Default)]
pub struct WorkerStats {
    /// 200 answers inside the measured window.
    pub measured_ok: u64,
    /// 200 answers including the warm-up.
    pub total_ok: u64,
    /// Latencies of the measured 200 answers, in nanoseconds.
    pub latencies: Vec<u64>,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl WorkerStats {
    /// Empty, with room for this many latencies.
    pub fn with_capacity(latencies: usize) -> Self {
        Self { latencies: Vec::with_capacity(latencies), ..Default::default() }
    }

    pub fn success(&mut self, measured: bool, latency: Duration) {
        self.total_ok += 1;
        if measured {
            self.measured_ok += 1;
            self.latencies.push(latency.as_nanos() as u64);
        }
    }

    pub fn error(&mut self, message: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(message);
        }
    }

    /// Add another worker's results (error samples up to the limit).
    pub fn merge(&mut self, other: WorkerStats) {
        self.measured_ok += other.measured_ok;
        self.total_ok += other.total_ok;
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for s in other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES {
                self.error_samples.push(s);
            }
        }
    }
}

/// The start of a response body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// One keep-alive HTTP/1.1 connection (`TCP_NODELAY`), its driver spawned on the current runtime.
pub async fn hyper_connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Reconnect when the connection is gone (an error closed it); a failed connect is counted
/// and retried after 10 ms by the caller's next turn.
pub async fn reconnect(sender: &mut Option<SendRequest<Full<Bytes>>>, addr: SocketAddr, st: &mut WorkerStats) {
    if sender.is_none() {
        match hyper_connect(addr).await {
            Ok(s) => *sender = Some(s),
            Err(e) => {
                st.error(e);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Send one request and read the whole answer.
pub async fn exchange(
    s: &mut SendRequest<Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, Bytes), hyper::Error> {
    use http_body_util::BodyExt;
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The `p`th percentile (nearest rank) of sorted values; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn fmt_latency(nanos: u64) -> String {
    let us = nanos as f64 / 1000.0;
    if us < 1000.0 { format!("{us:.0} µs") } else { format!("{:.2} ms", us / 1000.0) }
}

/// A whole number with thousands separators.
pub fn fmt_count(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CPU time per thread group, from /proc (Linux only; empty elsewhere).

/// CPU ticks (user, system) per thread id, with the thread's name, and the busy ticks of the
/// whole machine (all CPUs).
pub struct CpuSnapshot(BTreeMap<u32, (String, u64, u64)>, u64);

/// CPU seconds (user + system) per thread group, of which system, and of the busiest single
/// thread over a window.
pub struct CpuDelta {
    pub groups: BTreeMap<String, f64>,
    pub system: f64,
    pub busiest: Option<(String, f64)>,
    /// CPU seconds that other processes (and the kernel outside this process) used.
    pub others: f64,
}

fn clock_ticks_per_sec() -> f64 {
    // USER_HZ is 100 on every Linux architecture Latchkey runs on.
    100.0
}

impl CpuSnapshot {
    pub fn take() -> Self {
        let mut map = BTreeMap::new();
        // The first line of /proc/stat: `cpu user nice system idle iowait irq softirq steal ...`.
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
            .map(|l| {
                let f: Vec<u64> = l.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
                [0, 1, 2, 5, 6, 7].iter().map(|&i| f.get(i).copied().unwrap_or(0)).sum()
            })
            .unwrap_or(0);
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return Self(map, machine) };
        for entry in dir.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // Format: `tid (comm) state ...`; comm may hold spaces, so split at the last ')'.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let comm = stat[open + 1..close].to_owned();
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // After the comm: state is field 3, utime 14, stime 15 (1-based, whole line).
            let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else { continue };
            map.insert(tid, (comm, utime.parse().unwrap_or(0), stime.parse().unwrap_or(0)));
        }
        Self(map, machine)
    }

    pub fn since(&self, before: &CpuSnapshot) -> CpuDelta {
        let mut groups: BTreeMap<String, f64> = BTreeMap::new();
        let mut busiest: Option<(String, f64)> = None;
        let mut system = 0.0;
        for (tid, (comm, user, sys)) in &self.0 {
            let (prev_user, prev_sys) = before.0.get(tid).map(|(_, u, s)| (*u, *s)).unwrap_or((0, 0));
            let sys_secs = sys.saturating_sub(prev_sys) as f64 / clock_ticks_per_sec();
            system += sys_secs;
            let secs = user.saturating_sub(prev_user) as f64 / clock_ticks_per_sec() + sys_secs;
            if secs <= 0.0 {
                continue;
            }
            let group = comm.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-').to_owned();
            *groups.entry(group).or_default() += secs;
            if busiest.as_ref().is_none_or(|(_, b)| secs > *b) {
                busiest = Some((format!("{comm} (tid {tid})"), secs));
            }
        }
        let own: f64 = groups.values().sum();
        let machine = self.1.saturating_sub(before.1) as f64 / clock_ticks_per_sec();
        CpuDelta { groups, system, busiest, others: (machine - own).max(0.0) }
    }
}

impl CpuDelta {
    /// Two lines: CPU µs per request by thread group, then the busiest thread and the other
    /// processes' share. `others_note` follows "other processes" (e.g. what they include).
    pub fn print(&self, label: &str, concurrency: usize, requests: u64, window: Duration, others_note: &str) {
        let total: f64 = self.groups.values().sum();
        let per_req = |secs: f64| if requests > 0 { secs * 1e6 / requests as f64 } else { 0.0 };
        let mut parts: Vec<(String, f64)> = self.groups.iter().map(|(g, s)| (g.clone(), *s)).collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let parts: Vec<String> = parts.iter().map(|(g, s)| format!("{g} {:.1}", per_req(*s))).collect();
        println!(
            "  {:<30} c={:<3} {:>6.1} µs/req ({:.2} cores, {:.0}% system): {}",
            label,
            concurrency,
            per_req(total),
            total / window.as_secs_f64(),
            if total > 0.0 { 100.0 * self.system / total } else { 0.0 },
            parts.join(", ")
        );
        if let Some((name, secs)) = &self.busiest {
            println!(
                "  {:<30}       busiest thread: {name} {:.2} cores; other processes{others_note}: {:.2} cores",
                "",
                secs / window.as_secs_f64(),
                self.others / window.as_secs_f64()
            );
        }
    }
}
