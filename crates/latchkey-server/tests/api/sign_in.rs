//! People signing in: sessions on `GET /api/v1/me`, expiry by the server's clock, sign-out,
//! refusals that all look alike, one failure counter per name across spellings, the
//! progressive delay, the daily cap, and bad input on every endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_client::{AuditQuery, Client, ClientError};
use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_proto as proto;
use latchkey_server::{Config, ConfigLayer, SignInLayer};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::{AnyConnection, Connection};

use crate::helpers::{Backend, TestApp, audit_count};

const PW: &str = "correct horse battery staple";

/// Every case on both backends, with a server whose sign-in limits are `$limits`.
macro_rules! both_with {
    ($name:ident, $limits:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = spawn(Backend::Sqlite, $limits).await.unwrap();
                let keep = app.data_dir.clone();
                ($body)(app).await;
                drop(keep);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = spawn(Backend::Postgres, $limits).await else { return };
                let keep = app.data_dir.clone();
                ($body)(app).await;
                drop(keep);
            }
        }
    };
}

/// Limits that keep tests fast: three free failures, a 1–4 ms delay, a cap of 8 a day.
fn fast() -> SignInLayer {
    SignInLayer {
        free_failures: Some(3),
        failure_delay_ms: Some(1),
        failure_delay_max_ms: Some(4),
        max_failures_per_day: Some(8),
        ..Default::default()
    }
}

async fn spawn(backend: Backend, limits: SignInLayer) -> Option<TestApp> {
    spawn_with(backend, ConfigLayer { sign_in: Some(limits), ..Default::default() }).await
}

/// A server with `layer` (its data directory, listener and database are filled in).
async fn spawn_with(backend: Backend, layer: ConfigLayer) -> Option<TestApp> {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("latchkey.db").display()),
        Backend::Postgres => latchkey_testkit::fresh_postgres_url().await?,
    };
    let config = Config::resolve(ConfigLayer {
        data_dir: Some(data_dir.path().to_owned()),
        listen: Some("127.0.0.1:0".into()),
        database_url: (backend == Backend::Postgres).then(|| db_url.clone()),
        ..layer
    })
    .unwrap();
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = latchkey_server::start(config, clock.clone()).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, Some(token.clone())).unwrap();
    Some(TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend })
}

/// A user of `tenant` with `password` set; returns the user's id.
async fn user_with_password(app: &TestApp, tenant: &str, name: &str, password: &str) -> String {
    let u = app
        .client
        .create_user(tenant, &proto::UserCreate { name: name.into(), display_name: None, email: None })
        .await
        .unwrap();
    app.client
        .set_user_password(tenant, &u.id, &proto::PasswordSetRequest { password: password.into() })
        .await
        .unwrap();
    u.id
}

async fn sign_in(
    app: &TestApp,
    tenant: &str,
    username: &str,
    password: &str,
) -> Result<proto::SignInResponse, ClientError> {
    let body = proto::SignInRequest { tenant: tenant.into(), username: username.into(), password: password.into() };
    app.client_with(None).sign_in(&body).await
}

/// A raw request: (status, headers, body as JSON).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app.raw().request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn raw_sign_in(app: &TestApp, username: &str, password: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let body = serde_json::json!({ "tenant": "default", "username": username, "password": password }).to_string();
    send(app, Method::POST, "/api/v1/sign-in", None, Some(&body)).await
}

/// A problem body without its per-request id.
fn problem_shape(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("requestId");
    v
}

async fn raw_db(app: &TestApp, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&app.db_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut db).await.unwrap();
    db.close().await.unwrap();
}

async fn audit(app: &TestApp, action: &str) -> Vec<proto::AuditEvent> {
    let q = AuditQuery { action: Some(action.into()), limit: Some(1000), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items
}

fn is_401(r: Result<impl std::fmt::Debug, ClientError>) -> bool {
    matches!(r, Err(ClientError::Api { ref problem }) if problem.status == 401)
}

// ---------------------------------------------------------------------------------------------

both_with!(sign_in_use_the_session_and_sign_out, fast(), |app: TestApp| async move {
    let alice = user_with_password(&app, "default", "Alice", PW).await;
    let now = app.clock.now();
    let s = sign_in(&app, "default", "alice", PW).await.unwrap();
    assert!(s.token.starts_with("lk_session_"), "token shape");
    assert_eq!(s.expires_at, now + time::Duration::hours(1), "default lifetime is one hour");
    assert_eq!(s.user.id, alice);
    assert_eq!(s.user.name, "Alice");
    assert_eq!(s.user.tenant, "default");

    let me = app.client_with(Some(&s.token)).me().await.unwrap();
    assert_eq!(me.user, s.user);
    assert_eq!(me.method, "local");
    assert_eq!(me.signed_in_at, now);
    assert_eq!(me.expires_at, s.expires_at);

    // The session is not an admin token, and the admin token is not a session.
    assert!(is_401(app.client_with(Some(&s.token)).list_tenants().await));
    assert!(is_401(app.client.me().await));
    assert!(app.client.list_tenants().await.is_ok(), "the admin token still works");

    let events = audit(&app, "sign_in").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.actor.as_str(), e.outcome.as_str(), e.object_type.as_str()), ("user:alice", "success", "session"));
    assert_eq!(e.details["userId"], alice.as_str());
    assert_eq!(e.details["method"], "local");
    let session_id = e.object_id.clone().unwrap();

    app.client_with(Some(&s.token)).sign_out().await.unwrap();
    assert!(is_401(app.client_with(Some(&s.token)).me().await), "revoked");
    assert!(is_401(app.client_with(Some(&s.token)).sign_out().await), "signing out twice");
    let out = audit(&app, "sign_out").await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].object_id.as_deref(), Some(session_id.as_str()));
    assert_eq!(out[0].actor, "user:alice");

    // A second sign-in is a new, independent session.
    let again = sign_in(&app, "default", "DEV1\\ALICE", PW).await.unwrap();
    assert_ne!(again.token, s.token);
    assert!(app.client_with(Some(&again.token)).me().await.is_ok());
});

both_with!(sessions_expire_by_the_server_clock, fast(), |app: TestApp| async move {
    user_with_password(&app, "default", "alice", PW).await;
    let s = sign_in(&app, "default", "alice", PW).await.unwrap();
    let me = app.client_with(Some(&s.token));
    app.clock.advance(time::Duration::minutes(59) + time::Duration::seconds(59));
    assert!(me.me().await.is_ok());
    app.clock.advance(time::Duration::seconds(1));
    assert!(is_401(me.me().await), "expired at exactly one hour");
    assert!(is_401(me.sign_out().await));
});

both_with!(
    session_lifetime_is_configurable,
    SignInLayer { session_lifetime_seconds: Some(120), ..fast() },
    |app: TestApp| async move {
        user_with_password(&app, "default", "alice", PW).await;
        let now = app.clock.now();
        let s = sign_in(&app, "default", "alice", PW).await.unwrap();
        assert_eq!(s.expires_at, now + time::Duration::seconds(120));
        app.clock.advance(time::Duration::seconds(120));
        assert!(is_401(app.client_with(Some(&s.token)).me().await));
    }
);

both_with!(garbage_tokens_are_401, fast(), |app: TestApp| async move {
    user_with_password(&app, "default", "alice", PW).await;
    let real = sign_in(&app, "default", "alice", PW).await.unwrap().token.clone();
    let forged = format!("lk_session_{}", "A".repeat(43));
    let long = format!("{real}{}", "x".repeat(300));
    let flipped = {
        let mut t = real.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    for token in
        [None, Some("garbage"), Some(""), Some("lk_session"), Some(forged.as_str()), Some(&long), Some(&flipped)]
    {
        let (status, _, v) = send(&app, Method::GET, "/api/v1/me", token, None).await;
        assert_eq!(status, 401, "{token:?}: {v}");
        assert_eq!(v["code"], "unauthenticated");
    }
    assert!(app.client_with(Some(&real)).me().await.is_ok());
});

both_with!(refusals_look_alike_and_are_audited, fast(), |app: TestApp| async move {
    user_with_password(&app, "default", "alice", PW).await;
    let dave = user_with_password(&app, "default", "dave", PW).await;
    raw_db(&app, &format!("UPDATE users SET disabled_at = 1 WHERE id = '{dave}'")).await;
    let eve = user_with_password(&app, "default", "eve", PW).await;
    raw_db(&app, &format!("UPDATE users SET source = 'ldap' WHERE id = '{eve}'")).await;
    app.client
        .create_user("default", &proto::UserCreate { name: "nopw".into(), display_name: None, email: None })
        .await
        .unwrap();

    let mut shapes = Vec::new();
    for (tenant, user, pw) in [
        ("default", "alice", "wrong password 1"),
        ("default", "zed", PW),
        ("default", "dave", PW),
        ("default", "eve", PW),
        ("default", "nopw", PW),
        ("nosuchtenant", "alice", PW),
    ] {
        let body = serde_json::json!({ "tenant": tenant, "username": user, "password": pw }).to_string();
        let (status, headers, v) = send(&app, Method::POST, "/api/v1/sign-in", None, Some(&body)).await;
        assert_eq!(status, 401, "{user}@{tenant}: {v}");
        assert_eq!(headers["content-type"], "application/problem+json");
        shapes.push(problem_shape(&v));
    }
    assert!(shapes.windows(2).all(|w| w[0] == w[1]), "refusals differ: {shapes:#?}");
    assert_eq!(shapes[0]["code"], "unauthenticated");

    // Each refusal in a known tenant is a denied sign_in event naming why; never a password.
    let denied: Vec<(String, String)> = audit(&app, "sign_in")
        .await
        .into_iter()
        .map(|e| {
            assert_eq!(e.outcome, "denied");
            (e.actor, e.details["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    let want = [
        ("user:alice", "wrong_password"),
        ("user:zed", "unknown_user"),
        ("user:dave", "disabled"),
        ("user:eve", "directory_not_configured"),
        ("user:nopw", "no_password"),
    ];
    assert_eq!(denied, want.map(|(a, r)| (a.to_owned(), r.to_owned())));
    let page = app.client.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let text = serde_json::to_string(&page).unwrap();
    assert!(!text.contains("horse") && !text.contains("wrong password"), "a password is in the audit log");
    assert!(!text.contains("argon2"), "a password hash is in the audit log");
});

both_with!(failures_share_one_counter_across_spellings, fast(), |app: TestApp| async move {
    user_with_password(&app, "default", "alice", PW).await;
    user_with_password(&app, "default", "bob", PW).await;
    // Eight failures (the cap) under four spellings of one name.
    for name in ["alice", "DEV1\\Alice", "ALICE@dev1.local", " Alice "].iter().cycle().take(8) {
        assert!(is_401(sign_in(&app, "default", name, "wrong").await), "{name}");
    }
    // Now every spelling is refused, even with the right password.
    for name in ["alice", "OTHER\\ALICE", "alice@elsewhere.example"] {
        let (status, _, v) = raw_sign_in(&app, name, PW).await;
        assert_eq!(status, 429, "{name}: {v}");
    }
    // Another name is not affected.
    assert!(sign_in(&app, "default", "bob", PW).await.is_ok());
    // Unknown names count the same way (no way to tell who exists from the cap).
    for _ in 0..8 {
        assert!(is_401(sign_in(&app, "default", "ghost", PW).await));
    }
    assert_eq!(raw_sign_in(&app, "ghost", PW).await.0, 429);
});

both_with!(
    daily_cap_until_the_next_utc_day,
    SignInLayer { max_failures_per_day: Some(3), ..fast() },
    |app: TestApp| async move {
        user_with_password(&app, "default", "alice", PW).await;
        // Start early in a UTC day so the failures below all fall on it.
        let now = app.clock.now();
        let into_day = now - now.replace_time(time::Time::MIDNIGHT);
        app.clock.advance(time::Duration::days(1) - into_day + time::Duration::hours(1));
        for _ in 0..3 {
            assert!(is_401(sign_in(&app, "default", "alice", "wrong").await));
        }
        let before = audit(&app, "sign_in").await.len();
        let (status, headers, v) = raw_sign_in(&app, "alice", PW).await;
        assert_eq!(status, 429, "{v}");
        assert_eq!(v["code"], "rate_limited");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(retry, 23 * 3600, "seconds until the next UTC midnight");
        let events = audit(&app, "sign_in").await;
        assert_eq!(events.len(), before + 1, "the refusal is audited");
        assert_eq!(events.last().unwrap().details["reason"], "daily_limit");

        app.clock.advance(time::Duration::hours(22) + time::Duration::minutes(59));
        assert_eq!(raw_sign_in(&app, "alice", PW).await.0, 429, "still today");
        app.clock.advance(time::Duration::minutes(1));
        assert!(sign_in(&app, "default", "alice", PW).await.is_ok(), "a new UTC day");
    }
);

both_with!(
    progressive_delay_before_the_check,
    SignInLayer {
        free_failures: Some(1),
        failure_delay_ms: Some(300),
        failure_delay_max_ms: Some(600),
        max_failures_per_day: Some(100),
        ..Default::default()
    },
    |app: TestApp| async move {
        user_with_password(&app, "default", "alice", PW).await;
        let timed = |pw: &'static str| {
            let app = &app;
            async move {
                let start = Instant::now();
                let r = sign_in(app, "default", "alice", pw).await;
                (start.elapsed(), r.is_ok())
            }
        };
        let (_, ok) = timed("wrong").await;
        assert!(!ok);
        // One failure so far (= free_failures): 300 ms, then 600 ms, then capped at 600 ms.
        for want in [300, 600, 600] {
            let (took, ok) = timed("wrong").await;
            assert!(!ok);
            assert!(took >= Duration::from_millis(want), "took {took:?}, expected at least {want} ms");
        }
        // The right password waits as long, then succeeds.
        let (took, ok) = timed(PW).await;
        assert!(ok);
        assert!(took >= Duration::from_millis(600), "took {took:?}");
    }
);

both_with!(setting_a_password_ends_sessions, fast(), |app: TestApp| async move {
    let alice = user_with_password(&app, "default", "alice", PW).await;
    let s = sign_in(&app, "default", "alice", PW).await.unwrap();
    let new_pw = "a completely new passphrase";
    app.client
        .set_user_password("default", &alice, &proto::PasswordSetRequest { password: new_pw.into() })
        .await
        .unwrap();
    assert!(is_401(app.client_with(Some(&s.token)).me().await), "old session ended");
    assert!(is_401(sign_in(&app, "default", "alice", PW).await), "old password");
    assert!(sign_in(&app, "default", "alice", new_pw).await.is_ok(), "new password");
    let set = audit(&app, "user.password.set").await;
    assert_eq!(set.len(), 2);
    assert_eq!(set[1].object_id.as_deref(), Some(alice.as_str()));
    assert!(set[1].actor.starts_with("admin-token:"));
    let text = serde_json::to_string(&set).unwrap();
    assert!(!text.contains("passphrase") && !text.contains("horse") && !text.contains("argon2"));
});

both_with!(
    sign_in_bad_input_is_400_and_counts_nothing,
    SignInLayer { max_failures_per_day: Some(1), ..fast() },
    |app: TestApp| async move {
        user_with_password(&app, "default", "alice", PW).await;
        let before = audit_count(&app).await;
        let long_pw = "p".repeat(1025);
        let long_name = "a".repeat(257);
        let cases: Vec<(String, u16)> = vec![
            ("{not json".into(), 400),
            (r#"{"tenant":"default","username":"alice"}"#.into(), 400),
            (r#"{"tenant":"default","password":"x"}"#.into(), 400),
            (r#"{"username":"alice","password":"x"}"#.into(), 400),
            (r#"{"tenant":"default","username":"alice","password":5}"#.into(), 400),
            (r#"{"tenant":"default","username":["alice"],"password":"x"}"#.into(), 400),
            (r#"{"tenant":"default","username":"alice","password":"x","remember":true}"#.into(), 400),
            (r#"{"tenant":"default","username":"alice","password":""}"#.into(), 400),
            (format!(r#"{{"tenant":"default","username":"alice","password":"{long_pw}"}}"#), 400),
            (format!(r#"{{"tenant":"default","username":"{long_name}","password":"x"}}"#), 400),
            (r#"{"tenant":"default","username":"","password":"x"}"#.into(), 400),
            (r#"{"tenant":"default","username":"a\\b\\c","password":"x"}"#.into(), 400),
            (r#"{"tenant":"default","username":"al\u0007ice","password":"x"}"#.into(), 400),
            (r#"{"tenant":"Not A Slug!","username":"alice","password":"x"}"#.into(), 400),
            (r#"{"tenant":"","username":"alice","password":"x"}"#.into(), 400),
            (format!(r#"{{"tenant":"default","username":"alice","password":"{}"}}"#, "x".repeat(70 * 1024)), 413),
        ];
        for (body, want) in &cases {
            let (status, _, v) = send(&app, Method::POST, "/api/v1/sign-in", None, Some(body)).await;
            assert_eq!(status, *want, "{}: {v}", &body[..body.len().min(80)]);
            assert!(!v.to_string().contains("hunter") && !v.to_string().contains(&long_pw[..50]), "echoed: {v}");
        }
        let resp = app
            .raw()
            .post(app.url("/api/v1/sign-in"))
            .body(r#"{"tenant":"default","username":"alice","password":"x"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 415);
        assert_eq!(audit_count(&app).await, before, "bad input wrote audit events");
        // None of it counted as a failure: the cap is one, and the right password still works.
        assert!(sign_in(&app, "default", "alice", PW).await.is_ok());
    }
);

both_with!(set_password_bad_input_is_refused_and_changes_nothing, fast(), |app: TestApp| async move {
    let alice = user_with_password(&app, "default", "alice", PW).await;
    app.client.create_tenant(&proto::TenantCreate { slug: "other".into(), name: None }).await.unwrap();
    let bob = user_with_password(&app, "other", "bob", PW).await;
    let eve = user_with_password(&app, "default", "eve", PW).await;
    raw_db(&app, &format!("UPDATE users SET source = 'ldap' WHERE id = '{eve}'")).await;
    let session = sign_in(&app, "default", "alice", PW).await.unwrap().token.clone();
    let scoped = app
        .client
        .create_admin_token(&proto::AdminTokenCreate {
            name: "other-only".into(),
            tenant: Some("other".into()),
            expires_in_seconds: None,
        })
        .await
        .unwrap();
    let before = audit_count(&app).await;

    let path = format!("/api/v1/tenants/default/users/{alice}/password");
    let ok_pw = "twelve chars";
    let cases: Vec<(String, Option<&str>, String, u16, &str)> = vec![
        (path.clone(), Some(&app.token), "{}".into(), 400, "malformed_body"),
        (path.clone(), Some(&app.token), r#"{"password":12345678901234}"#.into(), 400, "malformed_body"),
        (path.clone(), Some(&app.token), r#"{"password":"long enough pw","x":1}"#.into(), 400, "malformed_body"),
        (path.clone(), Some(&app.token), r#"{"password":"eleven char"}"#.into(), 400, "invalid_field"),
        (path.clone(), Some(&app.token), format!(r#"{{"password":"{}"}}"#, "p".repeat(1025)), 400, "invalid_field"),
        (path.clone(), Some(&app.token), r#"{"password":"twelve\nchars"}"#.into(), 400, "invalid_field"),
        (
            "/api/v1/tenants/default/users/not-a-uuid/password".to_owned(),
            Some(&app.token),
            format!(r#"{{"password":"{ok_pw}"}}"#),
            400,
            "invalid_parameter",
        ),
        (
            format!("/api/v1/tenants/default/users/{}/password", uuid::Uuid::new_v4()),
            Some(&app.token),
            format!(r#"{{"password":"{ok_pw}"}}"#),
            404,
            "not_found",
        ),
        (
            format!("/api/v1/tenants/default/users/{bob}/password"),
            Some(&app.token),
            format!(r#"{{"password":"{ok_pw}"}}"#),
            404,
            "not_found",
        ),
        (
            format!("/api/v1/tenants/nosuch/users/{alice}/password"),
            Some(&app.token),
            format!(r#"{{"password":"{ok_pw}"}}"#),
            404,
            "not_found",
        ),
        (
            format!("/api/v1/tenants/default/users/{eve}/password"),
            Some(&app.token),
            format!(r#"{{"password":"{ok_pw}"}}"#),
            409,
            "conflict",
        ),
        (path.clone(), None, format!(r#"{{"password":"{ok_pw}"}}"#), 401, "unauthenticated"),
        (path.clone(), Some(&session), format!(r#"{{"password":"{ok_pw}"}}"#), 401, "unauthenticated"),
        (
            path.clone(),
            Some(&app.token),
            format!(r#"{{"password":"{}"}}"#, "x".repeat(70 * 1024)),
            413,
            "payload_too_large",
        ),
    ];
    for (path, token, body, status, code) in &cases {
        let (s, _, v) = send(&app, Method::PUT, path, *token, Some(body)).await;
        assert_eq!(
            (s, v["code"].as_str().unwrap_or("")),
            (*status, *code),
            "{path} {}: {v}",
            &body[..body.len().min(60)]
        );
        assert!(!v.to_string().contains("eleven") && !v.to_string().contains("twelve"), "echoed: {v}");
    }
    // The tenant-scoped token of another tenant sees no such tenant (that attempt is audited).
    let (s, _, _) =
        send(&app, Method::PUT, &path, Some(scoped.token.as_str()), Some(&format!(r#"{{"password":"{ok_pw}"}}"#)))
            .await;
    assert_eq!(s, 404);
    assert_eq!(audit_count(&app).await, before + 1, "only the cross-tenant denial was audited");
    assert_eq!(audit(&app, "user.password.set").await.len(), 3, "no refused change was recorded");
    // Nothing changed: the old password works, the attempted ones do not, the session lives.
    assert!(app.client_with(Some(&session)).me().await.is_ok());
    for name_pw in [("alice", ok_pw), ("bob", ok_pw)] {
        assert!(is_401(
            sign_in(&app, if name_pw.0 == "bob" { "other" } else { "default" }, name_pw.0, name_pw.1).await
        ));
    }
    assert!(sign_in(&app, "default", "alice", PW).await.is_ok());
    // Exactly 12 characters is accepted.
    let (s, _, v) =
        send(&app, Method::PUT, &path, Some(&app.token), Some(&format!(r#"{{"password":"{ok_pw}"}}"#))).await;
    assert_eq!(s, 204, "{v}");
    assert!(sign_in(&app, "default", "alice", ok_pw).await.is_ok());
});

both_with!(me_and_sign_out_need_a_session, fast(), |app: TestApp| async move {
    for (method, path) in [(Method::GET, "/api/v1/me"), (Method::POST, "/api/v1/sign-out")] {
        for token in [None, Some(app.token.as_str())] {
            let (s, _, v) = send(&app, method.clone(), path, token, None).await;
            assert_eq!(s, 401, "{path} {token:?}: {v}");
        }
    }
    let (s, _, _) = send(&app, Method::GET, "/api/v1/sign-in", None, None).await;
    assert_eq!(s, 405);
});

/// A server whose default tenant's directory does not answer (nothing listens on its port).
async fn spawn_with_unreachable_directory(backend: Backend) -> Option<TestApp> {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let mut directory = latchkey_ldap::DirectoryConfig::new(
        "ldaps://127.0.0.1:1",
        "CN=svc,DC=corp,DC=example",
        secrecy::SecretString::from("service password"),
        "DC=corp,DC=example",
        latchkey_ldap::Flavor::ActiveDirectory,
    );
    directory.ca_file = Some(ca_file);
    directory.connect_timeout_secs = Some(2);
    let layer = ConfigLayer {
        sign_in: Some(SignInLayer { max_failures_per_day: Some(1), ..fast() }),
        directory: Some(vec![latchkey_server::TenantDirectory { tenant: "default".into(), config: directory }]),
        ..Default::default()
    };
    let app = spawn_with(backend, layer).await;
    // The CA file was read when the configuration was checked.
    drop(ca_dir);
    app
}

mod directory_outage_is_503_and_not_counted {
    use super::*;

    async fn case(app: TestApp) {
        let eve = user_with_password(&app, "default", "eve", PW).await;
        raw_db(&app, &format!("UPDATE users SET source = 'ldap' WHERE id = '{eve}'")).await;
        for _ in 0..3 {
            let (status, _, v) = raw_sign_in(&app, "eve", PW).await;
            assert_eq!(status, 503, "{v}");
            assert_eq!(v["code"], "unavailable");
            assert!(!v.to_string().contains("127.0.0.1"), "the directory's address leaked: {v}");
        }
        let events = audit(&app, "sign_in").await;
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| e.outcome == "failed" && e.details["reason"] == "directory_unavailable"));
        // Not counted: with a cap of one failure a day, eve (now local) still signs in.
        raw_db(&app, &format!("UPDATE users SET source = 'local' WHERE id = '{eve}'")).await;
        let s = sign_in(&app, "default", "eve", PW).await.unwrap();
        assert_eq!(app.client_with(Some(&s.token)).me().await.unwrap().method, "local");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = spawn_with_unreachable_directory(Backend::Sqlite).await.unwrap();
        case(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(app) = spawn_with_unreachable_directory(Backend::Postgres).await else { return };
        case(app).await;
    }
}
