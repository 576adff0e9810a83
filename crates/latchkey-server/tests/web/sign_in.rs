//! Signing in and out, sessions, the form token and the security headers.

use crate::browser::Browser;
use crate::fixture::{PASSWORD, WebApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_sees_their_pages_and_signs_out_in_a_browser() {
    let web = WebApp::start().await;
    let Some(b) = Browser::open(&web.app.base).await else { return };

    // Not signed in: every page leads to the sign-in page, which comes back afterwards.
    b.go("/?from=bookmark").await;
    assert_eq!(b.path().await, "/sign-in?next=%2F%3Ffrom%3Dbookmark");

    // A wrong password is refused with one message for every reason.
    b.fill("#tenant", "acme").await;
    b.fill("#username", "helen").await;
    b.fill("#password", "not her password").await;
    b.click("#sign-in").await;
    assert_eq!(b.text("#sign-in-message").await, "The tenant, user name or password is not right.");
    b.screenshot("sign-in").await;

    b.fill("#password", PASSWORD).await;
    b.click("#sign-in").await;
    assert_eq!(b.text("#signed-in-as").await, "helen · acme");
    assert_eq!(b.path().await, "/?from=bookmark", "back where the person started");
    // A person without roles sees neither the admin, audit nor approvals sections.
    let nav = b.text("header nav").await;
    assert!(nav.contains("Devices") && nav.contains("Just-in-time access"), "{nav}");
    assert!(!nav.contains("Admin") && !nav.contains("Audit") && !nav.contains("Approvals"), "{nav}");

    b.click_and_wait("form.who button").await;
    assert_eq!(b.path().await, "/sign-in?ended=signed-out");
    b.go("/").await;
    assert!(b.path().await.starts_with("/sign-in"), "signed out, the home page asks to sign in again");
    b.close().await;

    // Alice holds every role and sees every section.
    let Some(b) = Browser::open(&web.app.base).await else { return };
    b.sign_in("acme", "alice", PASSWORD).await;
    let nav = b.text("header nav").await;
    assert!(nav.contains("Admin") && nav.contains("Audit") && nav.contains("Approvals"), "{nav}");
    b.screenshot("home").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_the_security_headers() {
    let web = WebApp::start().await;
    let s = web.http_session("helen").await;
    for path in ["/", "/sign-in"] {
        let resp = if path == "/sign-in" {
            s.http.get(format!("{}{path}", s.base)).send().await.unwrap()
        } else {
            s.get(path).await
        };
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
    }
    let login = s.http.get(format!("{}/sign-in", s.base)).send().await.unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_token_or_from_another_site_are_refused_and_change_nothing() {
    let web = WebApp::start().await;
    let s = web.http_session("helen").await;

    // Sign-out from another site: refused, the session lives on.
    let resp = s.post_raw("/sign-out", &[("csrf", &s.csrf)], Some("http://evil.example")).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("sent from another site"));
    assert_eq!(s.get("/").await.status(), 200);

    // Without the token, or with another session's token: refused.
    for token in [None, Some("0".repeat(64))] {
        let fields: Vec<(&str, &str)> = token.as_deref().map(|t| vec![("csrf", t)]).unwrap_or_default();
        let resp = s.post_raw("/sign-out", &fields, Some(&s.base)).await;
        assert_eq!(resp.status(), 403);
        assert!(resp.text().await.unwrap().contains("security token is missing or out of date"));
        assert_eq!(s.get("/").await.status(), 200, "the session was not ended");
    }
    let other = web.http_session("bob").await;
    let resp = s.post_raw("/sign-out", &[("csrf", &other.csrf)], Some(&s.base)).await;
    assert_eq!(resp.status(), 403);

    // An unknown field is a clear 400.
    let resp = s.post("/sign-out", &[("surprise", "1")]).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("surprise"));

    // The right token signs out; the cookie no longer works.
    let resp = s.post("/sign-out", &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/sign-in?ended=signed-out");
    let resp = s.get("/").await;
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().starts_with("/sign-in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_is_audited() {
    let web = WebApp::start().await;
    let s = web.http_session("helen").await;
    // Used within the idle timeout (15 min): still fine.
    web.app.clock.advance(time::Duration::minutes(14));
    assert_eq!(s.get("/").await.status(), 200);
    web.app.clock.advance(time::Duration::minutes(14));
    assert_eq!(s.get("/").await.status(), 200, "each use restarts the idle time");
    web.app.clock.advance(time::Duration::minutes(16));
    let resp = s.get("/").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/sign-in?ended=idle");
    assert_eq!(s.get("/").await.status(), 303, "the session stays ended");
    let events = web.app.client.list_audit(&Default::default()).await.unwrap();
    let idle = events.items.iter().find(|e| e.action == "sign_out" && e.details["reason"] == "idle");
    assert!(idle.is_some(), "the idle sign-out is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_lifetime_even_when_used() {
    let web = WebApp::start().await;
    let s = web.http_session("helen").await;
    // Used every 14 minutes, it is never idle; the one-hour lifetime still ends it.
    for _ in 0..4 {
        web.app.clock.advance(time::Duration::minutes(14));
        assert_eq!(s.get("/").await.status(), 200);
    }
    web.app.clock.advance(time::Duration::minutes(5));
    let resp = s.get("/?page=2").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/sign-in?next=%2F%3Fpage%3D2&ended=expired");
    let cleared = resp.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("lk_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    // A form sent with the ended session changes nothing and leads to the sign-in page.
    let resp = s.post("/sign-out", &[]).await;
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().starts_with("/sign-in?"));
    let page = s.http.get(format!("{}/sign-in?ended=expired", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Your session has ended. Sign in again."));
}
