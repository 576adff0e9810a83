//! Single sign-on with OpenID Connect against a real provider (npm oidc-provider, started by
//! `scripts/services/oidc.sh`; skipped only when `LATCHKEY_TEST_OIDC_ISSUER` is unset and
//! services are not required). Its login page takes any user name with any password; names
//! starting with "admin" are in the group `pam-admins`.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_proto as proto;
use latchkey_server::web::WebLayer;
use latchkey_server::{Config, ConfigLayer};
use secrecy::ExposeSecret;
use sqlx::Connection;

use crate::browser::Browser;
use crate::fixture::WebApp;
use crate::helpers::{Backend, TestApp};

/// The provider's issuer, or `None` to skip (only when services are not required).
fn issuer() -> Option<String> {
    match std::env::var("LATCHKEY_TEST_OIDC_ISSUER") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("LATCHKEY_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "LATCHKEY_TEST_OIDC_ISSUER is not set but LATCHKEY_REQUIRE_SERVICES=1 (start scripts/services/oidc.sh)"
            );
            eprintln!("skipping: LATCHKEY_TEST_OIDC_ISSUER is not set");
            None
        }
    }
}

/// The `[web]` table with provider `corp` of tenant `acme`, its callback on `port`.
fn web_layer(issuer: &str, port: u16) -> WebLayer {
    toml::from_str(&format!(
        r#"
        [[oidc]]
        id = "corp"
        label = "Corp SSO"
        tenant = "acme"
        issuer = "{issuer}"
        client_id = "pam-web"
        client_secret = "pam-web-secret"
        redirect_url = "http://127.0.0.1:{port}/sign-in/oidc/callback"
        scopes = ["openid", "profile", "email", "groups"]
        admin_groups = ["pam-admins"]
        "#
    ))
    .unwrap()
}

/// A free port on this machine (the callback URL must be known before the server starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The fixture's server and people, with single sign-on through provider `corp`.
async fn start(issuer: &str) -> WebApp {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = format!("sqlite://{}", data_dir.path().join("latchkey.db").display());
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let mut tries = 0;
    let server = loop {
        let port = free_port();
        let config = Config::resolve(ConfigLayer {
            data_dir: Some(data_dir.path().to_owned()),
            listen: Some(format!("127.0.0.1:{port}")),
            web: Some(web_layer(issuer, port)),
            ..Default::default()
        })
        .unwrap();
        match latchkey_server::start(config, clock.clone()).await {
            Ok(server) => break server,
            // Another test took the port in between.
            Err(e) if tries < 3 => {
                tries += 1;
                eprintln!("retrying on another port: {e}");
            }
            Err(e) => panic!("server did not start: {e}"),
        }
    };
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = latchkey_client::Client::new(&base, Some(token.clone())).unwrap();
    let app = TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend: Backend::Sqlite };
    app.client
        .create_tenant(&proto::TenantCreate { slug: "acme".into(), name: Some("Acme Ltd".into()) })
        .await
        .unwrap();
    let mut web = WebApp { app, tenant: "acme".into(), users: Default::default() };
    web.person("helen", &[]).await;
    web
}

/// The user of the tenant with this name.
async fn user(web: &WebApp, name: &str) -> Option<proto::User> {
    web.app.client.list_users(&web.tenant).await.unwrap().items.into_iter().find(|u| u.name == name)
}

/// Where a user came from (`local`, `ldap`, `oidc`), read from the store.
async fn user_source(web: &WebApp, id: &str) -> String {
    let mut c = sqlx::SqliteConnection::connect(&web.app.db_url).await.unwrap();
    sqlx::query_scalar("SELECT source FROM users WHERE id = $1").bind(id).fetch_one(&mut c).await.unwrap()
}

async fn roles(web: &WebApp, user_id: &str) -> Vec<String> {
    web.app.client.user_roles(&web.tenant, user_id).await.unwrap().roles
}

/// Audit events of an action.
async fn events(web: &WebApp, action: &str) -> Vec<proto::AuditEvent> {
    let q = latchkey_client::AuditQuery { action: Some(action.into()), limit: Some(1000), ..Default::default() };
    web.app.client.list_audit(&q).await.unwrap().items
}

/// Sign in at the provider's pages: its login form, then its consent page.
async fn sign_in_at_provider(b: &Browser, name: &str) {
    b.fill("input[name=login]", name).await;
    b.fill("input[name=password]", "any password").await;
    b.click_and_wait("button[type=submit]").await;
    let consent = b.find("button[type=submit]").await;
    assert_eq!(consent.text().await.unwrap(), "Continue");
    consent.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_with_single_sign_on_in_a_browser() {
    let Some(issuer) = issuer() else { return };
    let web = start(&issuer).await;
    let Some(b) = Browser::open(&web.app.base).await else { return };

    // A page asks to sign in; the sign-in page offers the provider and comes back afterwards.
    b.go("/?from=sso").await;
    assert_eq!(b.text("#oidc-corp").await, "Sign in with Corp SSO");
    b.screenshot("sign-in-sso").await;
    b.click_and_wait("#oidc-corp").await;
    b.find("input[name=login]").await;
    assert!(b.client.current_url().await.unwrap().as_str().starts_with(&issuer), "at the provider");
    sign_in_at_provider(&b, "sso-carol").await;
    assert_eq!(b.text("#signed-in-as").await, "sso-carol · acme");
    assert_eq!(b.path().await, "/?from=sso", "back where the person started");
    let nav = b.text("header nav").await;
    assert!(!nav.contains("Admin"), "not in an admin group: {nav}");
    b.close().await;

    // The person is a user of the tenant now, from single sign-on, without roles.
    let carol = user(&web, "sso-carol").await.expect("the user was created");
    assert_eq!(carol.email.as_deref(), Some("sso-carol@pam.test"));
    assert_eq!(user_source(&web, &carol.id).await, "oidc");
    assert!(roles(&web, &carol.id).await.is_empty());
    let created = events(&web, "user.create").await;
    assert!(created.iter().any(|e| e.object_id.as_deref() == Some(carol.id.as_str()) && e.actor == "oidc:corp"));
    let signed_in = events(&web, "sign_in").await;
    let carol_in = signed_in.iter().find(|e| e.actor == "user:sso-carol").expect("a sign_in event");
    assert_eq!(carol_in.outcome, "success");
    assert_eq!(carol_in.details["method"], "oidc");

    // A member of pam-admins is an admin.
    let Some(b) = Browser::open(&web.app.base).await else { return };
    b.go("/sign-in").await;
    b.click_and_wait("#oidc-corp").await;
    sign_in_at_provider(&b, "admin-dana").await;
    assert_eq!(b.text("#signed-in-as").await, "admin-dana · acme");
    let nav = b.text("header nav").await;
    assert!(nav.contains("Admin"), "{nav}");
    b.close().await;
    let dana = user(&web, "admin-dana").await.unwrap();
    assert_eq!(roles(&web, &dana.id).await, ["admin"]);
}

/// A browser's side of the flow over plain HTTP: the app's pending cookie and the provider's
/// cookies, redirects followed by hand.
struct HttpFlow {
    http: reqwest::Client,
    base: String,
    pending: String,
    provider_cookies: HashMap<String, String>,
}

impl HttpFlow {
    /// Start a sign-in through provider `corp`: the pending cookie and the provider's URL.
    async fn start(web: &WebApp) -> (HttpFlow, String) {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let resp = http.get(format!("{}/sign-in/oidc/corp?next=/devices", web.app.base)).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let pending = set_cookie(&resp, "lk_oidc").expect("the pending cookie");
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/sign-in/oidc") && cookie.contains("Max-Age=600"), "{cookie}");
        let to = location(&resp);
        assert!(to.contains("code_challenge_method=S256") && to.contains("nonce="), "{to}");
        let flow = HttpFlow { http, base: web.app.base.clone(), pending, provider_cookies: HashMap::new() };
        (flow, to)
    }

    /// Sign in as `name` at the provider; the callback URL it sends the browser to.
    async fn provider_sign_in(&mut self, mut url: String, name: &str) -> String {
        for _ in 0..10 {
            if url.starts_with(&self.base) {
                return url;
            }
            let resp = if url.contains("/interaction/") {
                let page = self.provider_get(&url).await.text().await.unwrap();
                let prompt = crate::fixture::hidden_field(&page, "prompt").unwrap();
                let fields: Vec<(&str, &str)> = if prompt == "login" {
                    vec![("prompt", "login"), ("login", name), ("password", "any password")]
                } else {
                    vec![("prompt", "consent")]
                };
                let req = self.http.post(&url).header("cookie", self.provider_cookie_header()).form(&fields);
                req.send().await.unwrap()
            } else {
                self.provider_get(&url).await
            };
            self.keep_provider_cookies(&resp);
            // The provider's redirects may be relative to the page.
            url = reqwest::Url::parse(&url).unwrap().join(&location(&resp)).unwrap().to_string();
        }
        panic!("the provider did not send the browser back: {url}");
    }

    async fn provider_get(&mut self, url: &str) -> reqwest::Response {
        let resp = self.http.get(url).header("cookie", self.provider_cookie_header()).send().await.unwrap();
        self.keep_provider_cookies(&resp);
        resp
    }

    fn keep_provider_cookies(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                self.provider_cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn provider_cookie_header(&self) -> String {
        self.provider_cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// The callback as the browser would call it, with this pending cookie (or none).
    async fn callback(&self, url: &str, pending: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(p) = pending {
            req = req.header("cookie", format!("lk_oidc={p}"));
        }
        req.send().await.unwrap()
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").unwrap_or_else(|| panic!("no redirect: {}", resp.status())).to_str().unwrap().into()
}

/// The value a response sets for a cookie.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().find_map(|v| {
        let pair = v.to_str().ok()?.split(';').next()?;
        let (n, value) = pair.split_once('=')?;
        (n == name).then(|| value.to_owned())
    })
}

/// `url` with its `state` parameter replaced.
fn with_state(url: &str, state: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { state.to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

async fn sessions_opened(web: &WebApp) -> usize {
    events(web, "sign_in").await.iter().filter(|e| e.outcome == "success").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_with_a_forged_state_or_without_the_pending_cookie_opens_no_session() {
    let Some(issuer) = issuer() else { return };
    let web = start(&issuer).await;

    // A real code from the provider, but the state is not the one this browser was given.
    let (mut flow, to) = HttpFlow::start(&web).await;
    let back = flow.provider_sign_in(to, "sso-mallory").await;
    let resp = flow.callback(&with_state(&back, "forged-state"), Some(&flow.pending)).await;
    assert_eq!(resp.status(), 400);
    assert!(set_cookie(&resp, "lk_session").is_none(), "no session cookie");
    assert_eq!(set_cookie(&resp, "lk_oidc").as_deref(), Some(""), "the pending sign-in is used up");
    let body = resp.text().await.unwrap();
    assert!(body.contains("does not belong to the sign-in started in this browser"), "{body}");
    assert!(user(&web, "sso-mallory").await.is_none(), "no user was created");
    assert_eq!(sessions_opened(&web).await, 0);
    let denied = events(&web, "sign_in").await;
    let denied = denied.iter().find(|e| e.outcome == "denied").expect("the refusal is audited");
    assert_eq!(denied.details["reason"], "state_mismatch");
    assert_eq!(denied.tenant.as_deref(), Some("acme"));

    // The provider's real answer, but without the pending cookie (another browser).
    let (mut flow, to) = HttpFlow::start(&web).await;
    let back = flow.provider_sign_in(to, "sso-mallory").await;
    let resp = flow.callback(&back, None).await;
    assert_eq!(resp.status(), 400);
    assert!(set_cookie(&resp, "lk_session").is_none());
    assert!(resp.text().await.unwrap().contains("No single sign-on was started in this browser"));

    // A pending cookie changed by the browser is no cookie at all.
    let mut forged = flow.pending.clone();
    forged.insert(3, if forged.as_bytes()[3] == b'A' { 'B' } else { 'A' });
    let resp = flow.callback(&back, Some(&forged)).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("No single sign-on was started in this browser"));
    assert!(user(&web, "sso-mallory").await.is_none());
    assert_eq!(sessions_opened(&web).await, 0);

    // The same answer with the browser's own cookie signs in and continues to `next`.
    let resp = flow.callback(&back, Some(&flow.pending)).await;
    assert_eq!(resp.status(), 200);
    let session = set_cookie(&resp, "lk_session").expect("a session cookie");
    assert!(session.starts_with("lk_session_"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("content=\"0; url=/devices\""), "{page}");
    assert_eq!(sessions_opened(&web).await, 1);
    let me = web.app.client_with(Some(&session)).me().await.unwrap();
    assert_eq!(me.user.name, "sso-mallory");
    assert_eq!(me.method, "oidc");

    // The code was used: a replay (with the cookie as it was) opens nothing more.
    let resp = flow.callback(&back, Some(&flow.pending)).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(sessions_opened(&web).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_left_at_the_provider_for_too_long_is_refused() {
    let Some(issuer) = issuer() else { return };
    let web = start(&issuer).await;
    let (mut flow, to) = HttpFlow::start(&web).await;
    let back = flow.provider_sign_in(to, "sso-slow").await;
    web.app.clock.advance(time::Duration::minutes(11));
    let resp = flow.callback(&back, Some(&flow.pending)).await;
    assert_eq!(resp.status(), 400);
    assert!(set_cookie(&resp, "lk_session").is_none());
    assert!(resp.text().await.unwrap().contains("longer than ten minutes"));
    assert!(user(&web, "sso-slow").await.is_none());
    let refused = events(&web, "sign_in").await;
    assert!(refused.iter().any(|e| e.outcome == "denied" && e.details["reason"] == "expired"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_the_provider_is_shown_and_audited() {
    let Some(issuer) = issuer() else { return };
    let web = start(&issuer).await;
    let (flow, to) = HttpFlow::start(&web).await;
    let state = reqwest::Url::parse(&to).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let url = format!("{}/sign-in/oidc/callback?error=access_denied&state={state}", web.app.base);
    let resp = flow.callback(&url, Some(&flow.pending)).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("Corp SSO did not sign you in (access_denied)"));
    let refused = events(&web, "sign_in").await;
    let e = refused.iter().find(|e| e.outcome == "denied").unwrap();
    assert_eq!(e.details["reason"], "provider_error");
    assert_eq!(e.details["error"], "access_denied");
    assert_eq!(e.details["provider"], "corp");
}
