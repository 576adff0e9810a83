//! Notifications from the outbox: e-mail to a real SMTP server (aiosmtpd, started by each test
//! on a free port so it can be stopped and started again) and signed webhooks to a local
//! receiver; retries with backoff while SMTP is down; the admin listing and its bad input.
//!
//! The SMTP tests need Debian's `python3-aiosmtpd` (`scripts/services/smtp.sh install`); they
//! are skipped with a note when it is missing, unless services are required
//! (`LATCHKEY_REQUIRE_SERVICES=1` or `CI=true`). `LATCHKEY_TEST_SMTP_PYTHON` names another
//! Python that has it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use hmac::{Hmac, Mac};
use latchkey_client::Client;
use latchkey_core::{Clock, EmailAddress, ManualClock, Notification, Outcome, PasswordReadNotice, SystemClock};
use latchkey_proto as proto;
use latchkey_server::{Config, ConfigLayer, NotificationsLayer, SmtpLayer, WebhookLayer};
use latchkey_store::Store;
use secrecy::ExposeSecret;
use sha2::Sha256;
use time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Backend, TestApp};

const SMTP_PASSWORD: &str = "smtp-pw-7f3a9c1e5b";
const WEBHOOK_SECRET: &str = "whsec-0123456789abcdef-topsecret";
/// aiosmtpd: every message is written as JSON (envelope, whether the session authenticated
/// and used TLS, and the raw message) to one file in the output directory.
const SINK: &str = r#"
import argparse, json, os, ssl, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--dir", required=True)
p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--user")
p.add_argument("--password")
a = p.parse_args()

class Save:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(session.authenticated),
            "tls": session.ssl is not None or a.mode == "tls",
            "data": envelope.content.decode("utf-8", "replace"),
        }
        tmp = os.path.join(a.dir, ".%06d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(a.dir, "%06d.json" % n))
        return "250 OK"

def check(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == a.user.encode()
          and auth_data.password == a.password.encode())
    # handled=False: aiosmtpd answers 535 itself on failure.
    return AuthResult(success=ok, handled=False)

kw = dict(hostname="127.0.0.1", port=a.port)
if a.mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    if a.mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    else:
        kw.update(ssl_context=ctx)
if a.user:
    kw.update(authenticator=check, auth_required=True, auth_require_tls=(a.mode == "starttls"))
c = Controller(Save(), **kw)
c.start()
print("ready", flush=True)
threading.Event().wait()
"#;

// ---------------------------------------------------------------------------------------------
// The SMTP server

fn services_required() -> bool {
    std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
        || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The Python that has aiosmtpd, or `None` (with a note) when the SMTP tests are skipped.
fn smtp_python() -> Option<String> {
    let python = std::env::var("LATCHKEY_TEST_SMTP_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if services_required() {
        panic!(
            "aiosmtpd is required: run scripts/services/smtp.sh install (LATCHKEY_REQUIRE_SERVICES=1 or CI=true is set)"
        );
    }
    eprintln!("note: {python} cannot import aiosmtpd; skipping (install it with scripts/services/smtp.sh install)");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    StartTls,
    Tls,
}

/// A certificate for 127.0.0.1 and where its PEM files are.
struct TestCert {
    cert: PathBuf,
    key: PathBuf,
}

fn test_cert(dir: &Path) -> TestCert {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    TestCert { cert, key }
}

/// A message the SMTP server received.
#[derive(Debug)]
struct Received {
    mail_from: String,
    rcpt_tos: Vec<String>,
    authenticated: bool,
    tls: bool,
    headers: BTreeMap<String, String>,
    body: String,
    raw: String,
}

/// aiosmtpd on 127.0.0.1, writing what it receives to a directory.
struct SmtpSink {
    python: String,
    port: u16,
    mode: Mode,
    cert: Option<(PathBuf, PathBuf)>,
    auth: Option<(String, String)>,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl SmtpSink {
    fn new(python: &str, mode: Mode, cert: Option<&TestCert>, auth: Option<(&str, &str)>) -> Self {
        Self {
            python: python.to_owned(),
            port: free_port(),
            mode,
            cert: cert.map(|c| (c.cert.clone(), c.key.clone())),
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    /// Start (or start again on the same port) and wait until it is ready.
    async fn start(&mut self) {
        let mut cmd = tokio::process::Command::new(&self.python);
        cmd.args(["-u", "-c", SINK, "--port", &self.port.to_string(), "--dir"]).arg(self.dir.path());
        cmd.args([
            "--mode",
            match self.mode {
                Mode::Plain => "plain",
                Mode::StartTls => "starttls",
                Mode::Tls => "tls",
            },
        ]);
        if let Some((cert, key)) = &self.cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some((user, password)) = &self.auth {
            cmd.args(["--user", user, "--password", password]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(StdDuration::from_secs(20), lines.next_line()).await;
        assert!(matches!(ready, Ok(Ok(Some(ref l))) if l == "ready"), "aiosmtpd did not start: {ready:?}");
        self.child = Some(child);
    }

    /// Stop it (the port then refuses connections).
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    fn messages(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|f| parse_received(&std::fs::read_to_string(f).unwrap())).collect()
    }
}

/// The envelope, the unfolded headers (lower-case names) and the decoded body of a message.
fn parse_received(json: &str) -> Received {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let raw = v["data"].as_str().unwrap().replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap();
    let mut headers = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            let name = last.clone().unwrap();
            headers.entry(name).and_modify(|v: &mut String| {
                v.push(' ');
                v.push_str(line.trim());
            });
        } else {
            let (name, value) = line.split_once(':').unwrap();
            let name = name.trim().to_ascii_lowercase();
            headers.insert(name.clone(), value.trim().to_owned());
            last = Some(name);
        }
    }
    let body = match headers.get("content-transfer-encoding").map(String::as_str) {
        Some("quoted-printable") => decode_qp(body),
        Some("7bit") | Some("8bit") | None => body.to_owned(),
        Some(other) => panic!("unexpected transfer encoding {other}"),
    };
    Received {
        mail_from: v["mail_from"].as_str().unwrap().to_owned(),
        rcpt_tos: v["rcpt_tos"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect(),
        authenticated: v["authenticated"].as_bool().unwrap(),
        tls: v["tls"].as_bool().unwrap(),
        headers,
        body,
        raw,
    }
}

fn decode_qp(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The server

async fn spawn_with(backend: Backend, notifications: NotificationsLayer) -> Option<TestApp> {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("latchkey.db").display()),
        Backend::Postgres => latchkey_testkit::fresh_postgres_url().await?,
    };
    let config = Config::resolve(ConfigLayer {
        data_dir: Some(data_dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        database_url: (backend == Backend::Postgres).then(|| db_url.clone()),
        notifications: Some(notifications),
        ..Default::default()
    })
    .unwrap();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = latchkey_server::start(config, clock.clone()).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, Some(token.clone())).unwrap();
    Some(TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend })
}

fn smtp_layer(port: u16, f: impl FnOnce(&mut SmtpLayer)) -> NotificationsLayer {
    let mut smtp = SmtpLayer {
        host: Some("127.0.0.1".into()),
        port: Some(port),
        security: Some("plain".into()),
        from: Some("latchkey@example.com".into()),
        timeout_secs: Some(5),
        ..Default::default()
    };
    f(&mut smtp);
    NotificationsLayer { smtp: Some(smtp), webhook: None }
}

fn notice(app: &TestApp, recipients: &[&str]) -> Notification {
    Notification::PasswordRead(PasswordReadNotice {
        tenant_slug: "default".into(),
        actor: "DEV1\\alice".into(),
        device_name: "PC-042".into(),
        device_id: "8a3c6f1e-7f0b-4b0e-9f6a-2d1c3b4a5e6f".into(),
        at: app.clock.now(),
        client_addr: Some("203.0.113.7".into()),
        reason: Some("ticket 4711: printer driver".into()),
        outcome: Outcome::Success,
        target_name: Some("Workstations".into()),
        recipients: recipients.iter().map(|r| EmailAddress::parse(r).unwrap()).collect(),
    })
}

/// Queue notices for the default tenant as the rule engine does (through another store on the
/// same database), then nudge the worker.
async fn queue(app: &TestApp, notices: Vec<Notification>) -> String {
    let tenant = app.client.tenant("default").await.unwrap();
    let store = Store::open(&app.db_url).await.unwrap();
    store.enqueue_notifications(Some(&tenant.id), notices, app.clock.now()).await.unwrap();
    store.close().await;
    nudge(app);
    tenant.id
}

fn nudge(app: &TestApp) {
    app.server.as_ref().unwrap().nudge_notifications();
}

async fn outbox(app: &TestApp) -> Vec<proto::OutboxNotification> {
    app.client.list_notifications("default", None, Some(1000)).await.unwrap().items
}

/// Wait (nudging) until the outbox satisfies `done`; fail after 30 s with what it holds.
async fn wait_for(
    app: &TestApp,
    what: &str,
    done: impl Fn(&[proto::OutboxNotification]) -> bool,
) -> Vec<proto::OutboxNotification> {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    loop {
        let rows = outbox(app).await;
        if done(&rows) {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}: {rows:#?}");
        nudge(app);
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

fn channel(rows: &[proto::OutboxNotification], c: proto::NotificationChannel) -> Vec<&proto::OutboxNotification> {
    rows.iter().filter(|r| r.channel == c).collect()
}

/// Whether the PostgreSQL variant runs (the testkit panics later when it is required but
/// not configured).
fn postgres_configured() -> bool {
    if std::env::var(latchkey_testkit::PG_URL_VAR).is_ok() || services_required() {
        return true;
    }
    eprintln!("note: {} is not set; skipping the PostgreSQL variant", latchkey_testkit::PG_URL_VAR);
    false
}

/// Run a case on both backends, when aiosmtpd is there.
macro_rules! with_smtp {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let Some(python) = smtp_python() else { return };
                ($body)(python, Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(python) = smtp_python() else { return };
                if postgres_configured() {
                    ($body)(python, Backend::Postgres).await;
                }
            }
        }
    };
}

/// Run a case on both backends.
macro_rules! each_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if postgres_configured() {
                    ($body)(Backend::Postgres).await;
                }
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Cases

with_smtp!(a_queued_notice_is_mailed_with_who_what_when_where_and_why, |python: String, backend| async move {
    let mut sink = SmtpSink::new(&python, Mode::Plain, None, None);
    sink.start().await;
    let app = spawn_with(backend, smtp_layer(sink.port, |_| {})).await.unwrap();
    let queued_at = app.clock.now();
    queue(&app, vec![notice(&app, &["secops@example.com", "helpdesk@example.com"])]).await;

    let rows = wait_for(&app, "the e-mail is delivered and the webhook row dropped", |rows| {
        rows.len() == 2 && rows.iter().all(|r| r.state != proto::NotificationState::Pending)
    })
    .await;
    let mail = channel(&rows, proto::NotificationChannel::Email)[0];
    assert_eq!(mail.state, proto::NotificationState::Delivered);
    assert_eq!((mail.attempts, mail.last_error.as_deref()), (1, None));
    assert_eq!(mail.created_at, queued_at);
    assert_eq!(mail.subject.as_deref(), Some("[Latchkey] DEV1\\alice read the password of PC-042"));
    assert_eq!(mail.recipients, ["secops@example.com", "helpdesk@example.com"]);
    assert_eq!(mail.event.as_deref(), Some("password.read"));
    let hook = channel(&rows, proto::NotificationChannel::Webhook)[0];
    assert_eq!(hook.state, proto::NotificationState::Dropped);
    assert_eq!(hook.last_error.as_deref(), Some("no webhook is configured"));
    assert_eq!(hook.attempts, 0);

    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let m = &messages[0];
    assert_eq!(m.mail_from, "latchkey@example.com");
    assert_eq!(m.rcpt_tos, ["secops@example.com", "helpdesk@example.com"]);
    assert_eq!(m.headers["to"], "secops@example.com, helpdesk@example.com");
    assert_eq!(m.headers["from"], "Latchkey <latchkey@example.com>");
    assert_eq!(m.headers["subject"], "[Latchkey] DEV1\\alice read the password of PC-042");
    assert!(m.headers["content-type"].starts_with("text/plain"), "{:?}", m.headers);
    assert_eq!(m.headers["message-id"], format!("<{}@latchkey>", mail.id));
    for needle in [
        "DEV1\\alice read the local administrator password of device PC-042.",
        "Tenant:      default",
        "PC-042 (8a3c6f1e-7f0b-4b0e-9f6a-2d1c3b4a5e6f)",
        &format!("When:        {}", queued_at.format(&time::format_description::well_known::Rfc3339).unwrap()),
        "From:        203.0.113.7",
        "Reason:      ticket 4711: printer driver",
        "Outcome:     success (the password was shown)",
        "Access rule: Workstations",
        "The password itself is never sent in a notification.",
    ] {
        assert!(m.body.contains(needle), "missing {needle:?} in\n{}", m.body);
    }
    assert!(!m.authenticated && !m.tls);

    // Delivered rows are not sent again.
    app.clock.advance(Duration::hours(2));
    nudge(&app);
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
    let mut app = app;
    app.stop().await;
    sink.stop().await;
});

with_smtp!(smtp_down_keeps_the_notice_and_backs_off_until_it_is_back, |python: String, backend| async move {
    // Nothing listens on the port yet.
    let mut sink = SmtpSink::new(&python, Mode::Plain, None, None);
    let mut app = spawn_with(backend, smtp_layer(sink.port, |_| {})).await.unwrap();
    let t0 = app.clock.now();
    queue(&app, vec![notice(&app, &["secops@example.com"])]).await;
    let mail_row = |rows: &[proto::OutboxNotification]| channel(rows, proto::NotificationChannel::Email)[0].clone();

    let rows = wait_for(&app, "the first attempt failed", |rows| {
        rows.iter().any(|r| r.channel == proto::NotificationChannel::Email && r.attempts == 1)
    })
    .await;
    let first = mail_row(&rows);
    assert_eq!(first.state, proto::NotificationState::Pending);
    assert_eq!(first.next_attempt_at, Some(t0 + Duration::seconds(5)));
    let error = first.last_error.clone().unwrap();
    assert!(error.starts_with("SMTP: ") && error.to_lowercase().contains("connect"), "{error}");

    // Not due yet: nudging does not try again.
    for _ in 0..5 {
        nudge(&app);
        tokio::time::sleep(StdDuration::from_millis(60)).await;
    }
    assert_eq!(mail_row(&outbox(&app).await).attempts, 1);

    // Due again: the second failure waits twice as long.
    app.clock.advance(Duration::seconds(5));
    let rows = wait_for(&app, "the second attempt failed", |rows| {
        rows.iter().any(|r| r.channel == proto::NotificationChannel::Email && r.attempts == 2)
    })
    .await;
    let second = mail_row(&rows);
    assert_eq!(second.state, proto::NotificationState::Pending);
    assert_eq!(second.next_attempt_at, Some(t0 + Duration::seconds(5) + Duration::seconds(10)));

    // SMTP is back: the next due attempt delivers, once.
    sink.start().await;
    app.clock.advance(Duration::seconds(10));
    let rows = wait_for(&app, "the e-mail is delivered", |rows| {
        rows.iter()
            .any(|r| r.channel == proto::NotificationChannel::Email && r.state == proto::NotificationState::Delivered)
    })
    .await;
    let done = mail_row(&rows);
    assert_eq!((done.attempts, done.last_error.clone(), done.next_attempt_at), (3, None, None));
    assert_eq!(done.finished_at, Some(t0 + Duration::seconds(15)));
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_tos, ["secops@example.com"]);
    app.stop().await;
    sink.stop().await;
});

/// An SMTP server that accepts connections and then says nothing cannot hold the worker: the
/// attempt fails after the delivery deadline and is retried later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_smtp_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut app = spawn_with(Backend::Sqlite, smtp_layer(port, |s| s.timeout_secs = Some(1))).await.unwrap();
    let started = std::time::Instant::now();
    queue(&app, vec![notice(&app, &["secops@example.com"])]).await;
    let rows = wait_for(&app, "the attempt timed out", |rows| {
        rows.iter().any(|r| r.channel == proto::NotificationChannel::Email && r.attempts == 1)
    })
    .await;
    assert!(started.elapsed() < StdDuration::from_secs(10), "took {:?}", started.elapsed());
    let mail = channel(&rows, proto::NotificationChannel::Email)[0];
    assert_eq!(mail.state, proto::NotificationState::Pending);
    assert!(mail.last_error.as_deref().is_some_and(|e| !e.is_empty()), "{mail:?}");
    app.stop().await;
    silent.abort();
}

/// STARTTLS with the certificate checked against the configured CA, and SMTP AUTH with a
/// password from a file; a wrong password fails without the password showing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_auth_reach_the_server_and_the_password_never_shows() {
    let Some(python) = smtp_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(dir.path());
    let mut sink = SmtpSink::new(&python, Mode::StartTls, Some(&cert), Some(("mailer", SMTP_PASSWORD)));
    sink.start().await;
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{SMTP_PASSWORD}\n")).unwrap();
    let layer = |password_file: PathBuf| {
        smtp_layer(sink.port, |s| {
            s.security = Some("starttls".into());
            s.ca_file = Some(cert.cert.clone());
            s.username = Some("mailer".into());
            s.password_file = Some(password_file);
        })
    };

    let mut app = spawn_with(Backend::Sqlite, layer(password_file.clone())).await.unwrap();
    queue(&app, vec![notice(&app, &["secops@example.com"])]).await;
    let rows = wait_for(&app, "the e-mail is delivered", |rows| {
        rows.iter()
            .any(|r| r.channel == proto::NotificationChannel::Email && r.state == proto::NotificationState::Delivered)
    })
    .await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls && messages[0].authenticated, "{messages:#?}");
    assert!(!messages[0].raw.contains(SMTP_PASSWORD));
    let listing = serde_json::to_string(&rows).unwrap();
    assert!(!listing.contains(SMTP_PASSWORD));
    app.stop().await;

    let wrong_file = dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-the-password-42").unwrap();
    let mut app = spawn_with(Backend::Sqlite, layer(wrong_file)).await.unwrap();
    queue(&app, vec![notice(&app, &["secops@example.com"])]).await;
    let rows = wait_for(&app, "the authentication failed", |rows| {
        rows.iter().any(|r| r.channel == proto::NotificationChannel::Email && r.attempts == 1)
    })
    .await;
    let mail = channel(&rows, proto::NotificationChannel::Email)[0];
    assert_eq!(mail.state, proto::NotificationState::Pending);
    let error = mail.last_error.clone().unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("not-the-password-42") && !error.contains(SMTP_PASSWORD), "{error}");
    assert_eq!(sink.messages().len(), 1, "nothing more was accepted");
    app.stop().await;
    sink.stop().await;
}

/// Implicit TLS: delivered when the server's certificate is trusted, refused when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_checks_the_certificate() {
    let Some(python) = smtp_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert(dir.path());
    let mut sink = SmtpSink::new(&python, Mode::Tls, Some(&cert), None);
    sink.start().await;

    let mut untrusting =
        spawn_with(Backend::Sqlite, smtp_layer(sink.port, |s| s.security = Some("tls".into()))).await.unwrap();
    queue(&untrusting, vec![notice(&untrusting, &["secops@example.com"])]).await;
    let rows = wait_for(&untrusting, "the TLS handshake failed", |rows| {
        rows.iter().any(|r| r.channel == proto::NotificationChannel::Email && r.attempts == 1)
    })
    .await;
    let error = channel(&rows, proto::NotificationChannel::Email)[0].last_error.clone().unwrap();
    assert!(error.to_lowercase().contains("tls") || error.to_lowercase().contains("certificate"), "{error}");
    assert!(sink.messages().is_empty());
    untrusting.stop().await;

    let mut trusting = spawn_with(
        Backend::Sqlite,
        smtp_layer(sink.port, |s| {
            s.security = Some("tls".into());
            s.ca_file = Some(cert.cert.clone());
        }),
    )
    .await
    .unwrap();
    queue(&trusting, vec![notice(&trusting, &["secops@example.com"])]).await;
    wait_for(&trusting, "the e-mail is delivered", |rows| {
        rows.iter()
            .any(|r| r.channel == proto::NotificationChannel::Email && r.state == proto::NotificationState::Delivered)
    })
    .await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls);
    trusting.stop().await;
    sink.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Webhooks

/// What the receiver got: timestamp header, signature header, raw body.
type Posts = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A local webhook receiver answering each POST with the next status of `answers` (then 200).
async fn receiver(answers: Vec<u16>) -> (String, Posts, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    let posts: Posts = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let (p, a) = (posts.clone(), answers.clone());
    let app = axum::Router::new().route(
        "/hooks/latchkey",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (p, a) = (p.clone(), a.clone());
            async move {
                let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                p.lock().unwrap().push((h("x-latchkey-timestamp"), h("x-latchkey-signature"), body.to_vec()));
                let status = a.lock().unwrap().next().unwrap_or(200);
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/latchkey?token=receiver-token", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, posts, task)
}

/// The receiver's check: HMAC-SHA256(secret, timestamp + "." + body), hex, after `sha256=`.
fn signature_verifies(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else { return false };
    let Ok(given) = hex::decode(hex_sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

each_backend!(webhooks_are_signed_retried_and_delivered, |backend| async move {
    let (url, posts, receiver_task) = receiver(vec![503]).await;
    let layer = NotificationsLayer {
        smtp: None,
        webhook: Some(WebhookLayer {
            url: Some(url),
            secret: Some(WEBHOOK_SECRET.into()),
            timeout_secs: Some(5),
            ..Default::default()
        }),
    };
    let mut app = spawn_with(backend, layer).await.unwrap();
    let t0 = app.clock.now();
    let mut denied = notice(&app, &["secops@example.com"]);
    let Notification::PasswordRead(n) = &mut denied else { unreachable!() };
    n.outcome = Outcome::Denied;
    queue(&app, vec![denied]).await;

    // The receiver answers 503 first: a failed attempt with the status, retried after 5 s.
    let rows = wait_for(&app, "the first webhook attempt failed", |rows| {
        rows.iter().any(|r| r.channel == proto::NotificationChannel::Webhook && r.attempts == 1)
    })
    .await;
    let hook = channel(&rows, proto::NotificationChannel::Webhook)[0].clone();
    assert_eq!(hook.state, proto::NotificationState::Pending);
    let error = hook.last_error.clone().unwrap();
    assert!(error.contains("HTTP 503"), "{error}");
    assert!(!error.contains("receiver-token"), "the URL's query stays out of errors: {error}");
    assert_eq!(hook.next_attempt_at, Some(t0 + Duration::seconds(5)));
    // No SMTP server is configured: the e-mail row is dropped with the reason.
    let mail = channel(&rows, proto::NotificationChannel::Email)[0].clone();
    assert_eq!(mail.state, proto::NotificationState::Dropped);
    assert_eq!(mail.last_error.as_deref(), Some("no SMTP server is configured"));

    app.clock.advance(Duration::seconds(5));
    wait_for(&app, "the webhook is delivered", |rows| {
        rows.iter()
            .any(|r| r.channel == proto::NotificationChannel::Webhook && r.state == proto::NotificationState::Delivered)
    })
    .await;

    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 2);
    for (i, (timestamp, signature, body)) in posts.iter().enumerate() {
        let signed_at = if i == 0 { t0 } else { t0 + Duration::seconds(5) };
        assert_eq!(timestamp, &signed_at.unix_timestamp().to_string());
        assert!(signature_verifies(WEBHOOK_SECRET, timestamp, body, signature), "post {i}: {signature}");
        assert!(latchkey_server::notify::webhook::verify(
            WEBHOOK_SECRET.as_bytes(),
            signed_at.unix_timestamp(),
            body,
            signature
        ));
        // A wrong secret, another timestamp or an edited body do not verify.
        assert!(!signature_verifies("whsec-another-secret-0000000000", timestamp, body, signature));
        let other_ts = (signed_at.unix_timestamp() + 1).to_string();
        assert!(!signature_verifies(WEBHOOK_SECRET, &other_ts, body, signature));
        let mut edited = body.clone();
        edited[10] ^= 1;
        assert!(!signature_verifies(WEBHOOK_SECRET, timestamp, &edited, signature));

        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["event"], "password.read");
        assert_eq!(json["deliveryId"], hook.id);
        assert_eq!(json["tenant"], "default");
        assert_eq!(json["actor"], "DEV1\\alice");
        assert_eq!(json["device"]["name"], "PC-042");
        assert_eq!(json["outcome"], "denied");
        assert_eq!(json["reason"], "ticket 4711: printer driver");
        assert_eq!(json["clientAddr"], "203.0.113.7");
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains(WEBHOOK_SECRET) && !text.contains("secops@example.com"), "{text}");
    }
    app.stop().await;
    receiver_task.abort();
});

// ---------------------------------------------------------------------------------------------
// The listing and bad input

crate::both!(the_listing_pages_is_tenant_scoped_and_refuses_bad_input, |app: TestApp| async move {
    let tenant_id = queue(&app, (0..5).map(|_| notice(&app, &["a@example.com"])).collect()).await;
    // Nothing is configured: every row ends dropped, with the reason.
    let rows = wait_for(&app, "every row is dropped", |rows| {
        rows.len() == 10 && rows.iter().all(|r| r.state == proto::NotificationState::Dropped)
    })
    .await;
    assert!(rows.iter().all(|r| r.finished_at.is_some() && r.next_attempt_at.is_none()));

    // Paging: three pages of four, four and two, no row twice.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app.client.list_notifications("default", after.as_deref(), Some(4)).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen.iter().collect::<std::collections::HashSet<_>>().len(), 10);

    // Bad parameters are 400 problems.
    let get = |query: &'static str| {
        let (raw, url, token) =
            (app.raw(), app.url(&format!("/api/v1/tenants/default/notifications{query}")), app.token.clone());
        async move {
            let resp = raw.get(url).bearer_auth(token).send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            (status, ct, resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    for (query, code) in [
        ("?limit=0", "invalid_parameter"),
        ("?limit=1001", "invalid_parameter"),
        ("?limit=ten", "invalid_parameter"),
        ("?after=nonsense", "invalid_parameter"),
        ("?after=12_not-hex!", "invalid_parameter"),
        ("?after=x_0000", "invalid_parameter"),
        ("?colour=blue", "invalid_parameter"),
    ] {
        let (status, ct, body) = get(query).await;
        assert_eq!((status, ct.as_str()), (400, "application/problem+json"), "{query}: {body}");
        assert_eq!(body["code"], code, "{query}: {body}");
    }

    // Unknown tenant, no token, another tenant's token.
    let e = app.client.list_notifications("nope", None, None).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::NotFound));
    let anonymous = app.client_with(None);
    assert_eq!(
        anonymous.list_notifications("default", None, None).await.unwrap_err().code(),
        Some(proto::ProblemCode::Unauthenticated)
    );
    app.client.create_tenant(&proto::TenantCreate { slug: "other".into(), name: None }).await.unwrap();
    let other = app
        .client
        .create_admin_token(&proto::AdminTokenCreate {
            name: "other".into(),
            tenant: Some("other".into()),
            expires_in_seconds: None,
        })
        .await
        .unwrap();
    let scoped = app.client_with(Some(&other.token));
    assert_eq!(
        scoped.list_notifications("default", None, None).await.unwrap_err().code(),
        Some(proto::ProblemCode::NotFound)
    );
    assert!(scoped.list_notifications("other", None, None).await.unwrap().items.is_empty());
    assert_eq!(outbox(&app).await.len(), 10, "reading changed nothing");

    // A stored notice that cannot be read (here: a malformed recipient written behind the
    // store's back) is dropped with a clear reason, not retried for ever.
    let payload = notice(&app, &["a@example.com"]).to_payload().replace("a@example.com", "not an address");
    raw_insert(&app, &tenant_id, &payload).await;
    nudge(&app);
    let rows = wait_for(&app, "the unreadable row is dropped", |rows| {
        rows.len() == 11 && rows.iter().all(|r| r.state == proto::NotificationState::Dropped)
    })
    .await;
    let bad = rows.iter().find(|r| r.id == "00000000-0000-0000-0000-0000000000aa").unwrap();
    let why = bad.last_error.clone().unwrap();
    assert!(why.starts_with("stored notification is not readable") && why.contains("e-mail address"), "{why}");
    assert_eq!((bad.subject.clone(), bad.event.clone()), (None, None));
});

/// Insert an outbox row directly into the database.
async fn raw_insert(app: &TestApp, tenant_id: &str, payload: &str) {
    use sqlx::Connection;
    let now = latchkey_core::clock::to_millis(app.clock.now());
    let sql = "INSERT INTO outbox (id, tenant_id, channel, payload, created_at, attempts, next_attempt_at) \
               VALUES ('00000000-0000-0000-0000-0000000000aa', $1, 'email', $2, $3, 0, $3)";
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
            sqlx::query(sql).bind(tenant_id).bind(payload).bind(now).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
            sqlx::query(sql).bind(tenant_id).bind(payload).bind(now).execute(&mut c).await.unwrap();
        }
    }
}

#[test]
fn bad_notification_settings_are_refused_with_a_clear_error() {
    let resolve = |n: NotificationsLayer| {
        Config::resolve(ConfigLayer { notifications: Some(n), ..Default::default() }).unwrap_err().to_string()
    };
    let e = resolve(smtp_layer(25, |s| s.from = Some("latchkey at example.com".into())));
    assert!(e.contains("notifications.smtp: from: e-mail address"), "{e}");
    let e = resolve(smtp_layer(25, |s| s.security = Some("ssl".into())));
    assert!(e.contains("security must be"), "{e}");
    let e = resolve(NotificationsLayer {
        smtp: None,
        webhook: Some(WebhookLayer { url: Some("https://h.example/x".into()), ..Default::default() }),
    });
    assert!(e.contains("notifications.webhook: secret"), "{e}");

    // The same in a config file, with an unknown key named.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, "[notifications.smtp]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\nsecurity = \"starttls\"\nhots = 1\n").unwrap();
    let e = ConfigLayer::from_toml_file(&path).unwrap_err().to_string();
    assert!(e.contains("hots"), "{e}");
    std::fs::write(&path, "[notifications.smtp]\nhost = \"mail.example.com\"\nfrom = \"a@example.com\"\nport = 2525\n\n[notifications.webhook]\nurl = \"https://hooks.example.com/x\"\nsecret = \"0123456789abcdef\"\n").unwrap();
    let config = Config::resolve(ConfigLayer::from_toml_file(&path).unwrap()).unwrap();
    let smtp = config.notifications.smtp.unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port, smtp.from.as_str()), ("mail.example.com", 2525, "a@example.com"));
    assert!(config.notifications.webhook.is_some());
}
