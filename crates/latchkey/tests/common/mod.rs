//! A real `latchkey serve` on a free port with a temporary data directory, and helpers to
//! run the CLI against it.

// Test code: helpers outside `#[test]` functions fail loudly too; not every test binary
// uses every helper.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod device;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

/// Every variable the binary reads, so the caller's environment cannot leak in.
const VARS: &[&str] = &[
    "LATCHKEY_URL",
    "LATCHKEY_TOKEN",
    "LATCHKEY_TENANT",
    "LATCHKEY_CA_CERT",
    "LATCHKEY_DATA_DIR",
    "LATCHKEY_CONFIG",
    "LATCHKEY_LISTEN",
    "LATCHKEY_DATABASE_URL",
    "LATCHKEY_DATABASE_URL_FILE",
    "LATCHKEY_KEY_FILE",
    "LATCHKEY_TLS_CERT",
    "LATCHKEY_TLS_KEY",
    "LATCHKEY_MAX_BODY_BYTES",
    "LATCHKEY_LOG_FORMAT",
    "LATCHKEY_CRASH_AT",
    "LATCHKEY_SERVER",
    "LATCHKEY_ENROLL_TOKEN",
    "LATCHKEY_AGENT_STATE_DIR",
    "LATCHKEY_DEVICE_ID",
    "LATCHKEY_AGENT_ACCOUNT",
    "LATCHKEY_AGENT_ADMIN_GROUP",
    "LATCHKEY_AGENT_ROOT",
    "LATCHKEY_SESSION_FILE",
];

/// A running server; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// `<tmp>/latchkey-data`, the server's data directory.
    pub data_dir: PathBuf,
    /// The first admin token, from `data_dir/admin-token`.
    pub token: String,
    /// An empty directory the CLI runs in (so no `./latchkey-data` is found by accident).
    pub work_dir: PathBuf,
    /// With TLS: the PEM certificate the server presents (self-signed, for 127.0.0.1).
    pub ca_cert: Option<PathBuf>,
    /// Extra environment of the next (re)start of the server, e.g. a crash point.
    pub serve_env: Vec<(String, String)>,
    tmp: tempfile::TempDir,
}

/// What a CLI run did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Panics with the whole output unless the exit code was 0.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "command failed: {self:#?}");
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn healthz(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

impl Server {
    /// A server on plain HTTP.
    pub fn start() -> Server {
        Self::start_with(false)
    }

    /// A server on HTTPS with a self-signed certificate for 127.0.0.1 (see `ca_cert`).
    pub fn start_tls() -> Server {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("latchkey-data");
        let work_dir = tmp.path().join("work");
        std::fs::create_dir_all(&work_dir).expect("work dir");
        let ca_cert = tls.then(|| {
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("certificate");
            std::fs::write(tmp.path().join("cert.pem"), cert.cert.pem()).expect("write cert");
            std::fs::write(tmp.path().join("key.pem"), cert.key_pair.serialize_pem()).expect("write key");
            tmp.path().join("cert.pem")
        });
        let mut server = Server {
            child: None,
            url: String::new(),
            data_dir,
            token: String::new(),
            work_dir,
            ca_cert,
            serve_env: Vec::new(),
            tmp,
        };
        server.boot();
        server.token = std::fs::read_to_string(server.data_dir.join("admin-token"))
            .expect("admin-token written on first start")
            .trim()
            .to_owned();
        assert!(server.token.starts_with("lk_admin"), "unexpected token {:?}", server.token);
        server
    }

    /// Start `latchkey serve` on a free port and wait for `/healthz`. Retries on another port
    /// if the chosen one was taken in the meantime.
    fn boot(&mut self) {
        let log_path = self.tmp.path().join("serve.log");
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("log file");
            let mut cmd = Command::new(BIN);
            for v in VARS {
                cmd.env_remove(v);
            }
            cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(&self.data_dir);
            if self.ca_cert.is_some() {
                cmd.arg("--tls-cert")
                    .arg(self.tmp.path().join("cert.pem"))
                    .arg("--tls-key")
                    .arg(self.tmp.path().join("key.pem"));
            }
            cmd.envs(self.serve_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut child = cmd
                .env("LATCHKEY_LOG", "warn")
                .current_dir(self.tmp.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log clone"))
                .stderr(log)
                .spawn()
                .expect("spawn latchkey serve");
            let deadline = Instant::now() + Duration::from_secs(60);
            let scheme = if self.ca_cert.is_some() { "https" } else { "http" };
            let url = format!("{scheme}://127.0.0.1:{port}");
            loop {
                if self.is_up(port, &url) {
                    self.child = Some(child);
                    self.url = url;
                    return;
                }
                if child.try_wait().expect("try_wait").is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("latchkey serve did not come up; log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    }

    /// `/healthz` answers: a raw HTTP request, or `latchkey health` over HTTPS.
    fn is_up(&self, port: u16, url: &str) -> bool {
        match &self.ca_cert {
            None => healthz(port),
            Some(ca) => {
                let mut cmd = Command::new(BIN);
                for v in VARS {
                    cmd.env_remove(v);
                }
                cmd.args(["health", "--url", url, "--ca-cert"]).arg(ca);
                exec(cmd, None).code == 0
            }
        }
    }

    /// Stop the server (the data directory stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop and start again on the same data directory (possibly another port).
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    /// Restart with `LATCHKEY_CRASH_AT=point` (or without a crash point for `None`).
    pub fn restart_with_crash_point(&mut self, point: Option<&str>) {
        self.serve_env.retain(|(k, _)| k != "LATCHKEY_CRASH_AT");
        if let Some(p) = point {
            self.serve_env.push(("LATCHKEY_CRASH_AT".into(), p.into()));
        }
        self.restart();
    }

    /// Whether the server process has ended (e.g. aborted at a crash point).
    pub fn has_exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().expect("try_wait").is_some())
    }

    /// The temporary directory holding `latchkey-data` and `work`.
    pub fn tmp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The CLI with a clean environment, the server's URL, and no token.
    pub fn bare_command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for v in VARS {
            cmd.env_remove(v);
        }
        cmd.env("LATCHKEY_URL", &self.url).current_dir(&self.work_dir);
        // A session saved by `latchkey login --save` stays inside the test's directory.
        cmd.env("LATCHKEY_SESSION_FILE", self.tmp.path().join("session.json"));
        // An agent run without `--root` must never reach the machine's own accounts.
        cmd.env("LATCHKEY_AGENT_ROOT", self.tmp.path().join("no-account-root"));
        cmd
    }

    /// The CLI with the server's URL and the first admin token.
    pub fn command(&self) -> Command {
        let mut cmd = self.bare_command();
        cmd.env("LATCHKEY_TOKEN", &self.token);
        cmd
    }

    /// Run the CLI with the admin token and no stdin.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut cmd = self.command();
        cmd.args(args);
        exec(cmd, None)
    }

    /// Run the CLI with the admin token and `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Out {
        let mut cmd = self.command();
        cmd.args(args);
        exec(cmd, Some(input))
    }

    /// `run(args + --json)`, which must succeed, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        self.run(&all).ok().json()
    }
}

impl Server {
    /// A request to the native API with the admin token (plain HTTP only): the status and the
    /// body parsed as JSON (`null` when empty).
    pub fn api(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
        let host = self.url.strip_prefix("http://").expect("api() needs a plain HTTP server");
        let mut stream = TcpStream::connect(host).expect("connect to the server");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        let payload = body.map(|b| serde_json::to_vec(b).expect("encode the body")).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.token,
            payload.len()
        );
        stream.write_all(head.as_bytes()).expect("send the request");
        stream.write_all(&payload).expect("send the body");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read the answer");
        let text = String::from_utf8(answer).expect("utf-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked answer: {head}");
        let json =
            if body.trim().is_empty() { serde_json::Value::Null } else { serde_json::from_str(body).expect("JSON") };
        (status, json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run a prepared command to the end.
pub fn exec(mut cmd: Command, input: Option<&str>) -> Out {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn latchkey");
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for latchkey");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}
