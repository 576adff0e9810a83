//! The helpdesk pages: searching devices, the device page, showing a device's password with a
//! reason through the access targets (audited), re-authentication, history and support
//! accounts.

use latchkey_client::AuditQuery;
use latchkey_proto as proto;

use crate::browser::Browser;
use crate::fixture::{PASSWORD, WebApp};
use crate::helpers::TestApp;

#[path = "../api/device_agent.rs"]
#[allow(dead_code)]
mod device_agent;

use device_agent::{Agent, align_clock};

/// The password the test agent escrows.
const ESCROWED: &str = "Kq7-zR!p2wXe";

/// An access target for one device (by name) listing `readers`, granting `grants`.
fn target(device_name: &str, readers: &[&str], grants: &[&str]) -> proto::TargetSpec {
    proto::TargetSpec {
        kind: "Computer".into(),
        name: device_name.into(),
        expire_after: Some("1:00:00".into()),
        readers: readers.iter().map(|r| (*r).to_owned()).collect(),
        grants: Some(grants.iter().map(|g| (*g).to_owned()).collect()),
        audit: proto::TargetAudit::default(),
        enabled: true,
        description: None,
        position: None,
    }
}

/// An enrolled device of `acme` with [`ESCROWED`] as its admin password, readable by helen
/// through a target granting `grants`; returns the agent, its password version and its name.
async fn helens_device<'a>(web: &'a WebApp, grants: &[&str]) -> (Agent<'a>, i64, String) {
    align_clock(&web.app);
    let agent = Agent::enroll(&web.app, &web.tenant).await;
    let version = agent.rotate(None, ESCROWED).await;
    let name = web.app.client.device(&web.tenant, &agent.id).await.unwrap().name;
    web.app.client.create_target(&web.tenant, &target(&name, &["helen"], grants)).await.unwrap();
    (agent, version, name)
}

async fn events(app: &TestApp, action: &str) -> Vec<proto::AuditEvent> {
    let q = AuditQuery { action: Some(action.into()), limit: Some(1000), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helen_finds_a_device_and_shows_its_password_with_a_reason_in_a_browser() {
    let web = WebApp::start().await;
    let (agent, version, name) = helens_device(&web, &["password"]).await;
    let Some(b) = Browser::open(&web.app.base).await else { return };
    b.sign_in("acme", "helen", PASSWORD).await;

    // Search by part of the deviceId, upper-cased: case does not matter.
    b.go("/devices").await;
    b.fill("#device-search", &agent.id[..8].to_uppercase()).await;
    b.click_and_wait("#device-search-go").await;
    assert_eq!(b.text("#device-results a.device-link").await, name);
    b.click_and_wait("#device-results a.device-link").await;
    assert_eq!(b.path().await, format!("/devices/{}", agent.id));
    assert_eq!(b.text("#device-name").await, name);
    assert_eq!(b.text("#device-id").await, agent.id);
    assert!(b.text("#agent-status").await.starts_with("enrolled "));
    let rotated = b.text("#last-rotated").await;
    assert!(rotated.ends_with("UTC"), "the confirmed rotation of version {version}: {rotated}");
    assert!(b.text("#next-check-in").await.contains("UTC"), "a next check-in after the last one");
    b.screenshot("device").await;

    b.fill("#reason", "user locked out of the laptop").await;
    b.fill("#ticket", "INC-4711").await;
    b.click_and_wait("#show-password").await;
    assert_eq!(b.text(".secret#password").await, ESCROWED, "the escrowed password, exactly");
    let spelled = b.text("#phonetic").await;
    let first: Vec<&str> = spelled.lines().take(3).collect();
    assert_eq!(first, ["upper-case KILO", "lower-case quebec", "digit 7"], "{spelled}");
    assert!(spelled.contains("exclamation mark"), "{spelled}");
    assert!(b.text("#expires-at").await.ends_with("UTC"), "the target's expire-after sets an expiry");
    assert!(b.text("#rotation-expected-at").await.ends_with("UTC"));
    b.find("button[data-copy=password]").await;
    assert!(!b.path().await.contains(ESCROWED), "never a secret in the URL");
    b.screenshot("reveal").await;
    b.close().await;

    let reads = events(&web.app, "secret.read").await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    let read = &reads[0];
    assert_eq!((read.actor.as_str(), read.outcome.as_str()), ("user:helen", "success"));
    assert_eq!(read.reason.as_deref(), Some("user locked out of the laptop"));
    assert_eq!(read.ticket.as_deref(), Some("INC-4711"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_name_with_markup_renders_as_text_in_a_browser() {
    let web = WebApp::start().await;
    let payload = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let device = proto::DeviceCreate {
        name: payload.into(),
        device_id: None,
        container_dn: Some("OU=Kiosks,DC=acme,DC=test".into()),
        os: None,
    };
    let device = web.app.client.create_device(&web.tenant, &device).await.unwrap();
    let Some(b) = Browser::open(&web.app.base).await else { return };
    b.sign_in("acme", "helen", PASSWORD).await;

    b.go("/devices?q=kiosks").await;
    assert_eq!(b.text("#device-results a.device-link").await, payload);
    b.go(&format!("/devices/{}", device.device_id)).await;
    assert_eq!(b.text("#device-name").await, payload);
    assert!(b.body().await.contains(payload), "the name shows literally");
    assert!(b.client.get_alert_text().await.is_err(), "no script ran");
    let source = b.source().await;
    assert!(!source.contains("<img src=x"), "the markup was escaped");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_is_bounded_and_scoped_to_the_tenant() {
    let web = WebApp::start().await;
    let c = &web.app.client;
    for (tenant, name) in
        [("acme", "FIN-LAPTOP-01"), ("acme", "fin-laptop-02"), ("acme", "HR-DESK"), ("default", "FIN-OTHER")]
    {
        let body = proto::DeviceCreate { name: name.into(), device_id: None, container_dn: None, os: None };
        c.create_device(tenant, &body).await.unwrap();
    }
    let s = web.http_session("helen").await;

    let page = s.get("/devices?q=Fin-Lap").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("FIN-LAPTOP-01") && html.contains("fin-laptop-02"), "{html}");
    assert!(!html.contains("HR-DESK"), "only matches");
    let all = s.get("/devices?q=fin").await.text().await.unwrap();
    assert!(!all.contains("FIN-OTHER"), "never another tenant's device");
    // Wildcards are literal.
    let none = s.get("/devices?q=%25").await.text().await.unwrap();
    assert!(none.contains("id=\"no-devices\""), "{none}");

    let long = "a".repeat(257);
    let resp = s.get(&format!("/devices?q={long}")).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("longer than 256 characters"));
    assert_eq!(s.get(&format!("/devices?q={}", "a".repeat(256))).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveals_need_a_reason_a_target_the_tenant_and_a_recent_sign_in() {
    let mut web = WebApp::start().await;
    web.person("carol", &[]).await;
    let (agent, _, _) = helens_device(&web, &["password"]).await;
    let reveal_path = format!("/devices/{}/password", agent.id);
    let helen = web.http_session("helen").await;

    // No reason (missing or blank): 400 with the API's message, nothing read or recorded.
    for fields in [vec![], vec![("reason", "   ")]] {
        let resp = helen.post(&reveal_path, &fields).await;
        assert_eq!(resp.status(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("Reason must not be empty."), "{html}");
        assert!(!html.contains(ESCROWED));
    }
    assert!(events(&web.app, "secret.read").await.is_empty());

    // A person no target names: 403 with the API's message, recorded as denied.
    let carol = web.http_session("carol").await;
    let resp = carol.post(&reveal_path, &[("reason", "curious")]).await;
    assert_eq!(resp.status(), 403);
    let html = resp.text().await.unwrap();
    assert!(html.contains("You may not read this device") && !html.contains(ESCROWED), "{html}");
    let reads = events(&web.app, "secret.read").await;
    let seen: Vec<(&str, &str)> = reads.iter().map(|e| (e.actor.as_str(), e.outcome.as_str())).collect();
    assert_eq!(seen, [("user:carol", "denied")]);

    // Another tenant's device: the same 404 as an unknown one, nothing recorded.
    let elsewhere = Agent::enroll(&web.app, "default").await;
    elsewhere.rotate(None, "other-tenant-Pass-1").await;
    for id in [elsewhere.id.clone(), uuid::Uuid::new_v4().to_string(), "not-a-device".into()] {
        assert_eq!(helen.get(&format!("/devices/{id}")).await.status(), 404, "{id}");
        let resp = helen.post(&format!("/devices/{id}/password"), &[("reason", "x")]).await;
        assert_eq!(resp.status(), 404, "{id}");
        assert!(!resp.text().await.unwrap().contains("other-tenant-Pass-1"));
    }
    assert_eq!(events(&web.app, "secret.read").await.len(), 1);

    // Helen's reveal works while her sign-in is recent.
    let resp = helen.post(&reveal_path, &[("reason", "printer setup"), ("ticket", "")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.text().await.unwrap().contains(&format!("id=\"password\">{ESCROWED}<")));

    // Past reauthenticate_after (600 s by default), but within the idle timeout: the reveal
    // sends her to sign in again and reads nothing.
    web.app.clock.advance(time::Duration::seconds(601));
    let resp = helen.post(&reveal_path, &[("reason", "again")]).await;
    assert_eq!(resp.status(), 303);
    let expected = format!("/sign-in?next=%2Fdevices%2F{}&ended=reauth", agent.id);
    assert_eq!(resp.headers()["location"], expected.as_str());
    assert_eq!(events(&web.app, "secret.read").await.len(), 2);
    // The device page still opens and says a sign-in comes first.
    let page = helen.get(&format!("/devices/{}", agent.id)).await.text().await.unwrap();
    assert!(page.contains("id=\"reauth-hint\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_needs_its_grant() {
    let web = WebApp::start().await;
    let (agent, version, name) = helens_device(&web, &["password"]).await;
    let helen = web.http_session("helen").await;
    let history = format!("/devices/{}/history", agent.id);

    // The target grants no history: the API's 403, as a page.
    let resp = helen.get(&history).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("You may not do this on this device"));
    let resp = helen.post(&format!("/devices/{}/password", agent.id), &[("reason", "old"), ("version", "1")]).await;
    assert_eq!(resp.status(), 403);

    // With history granted: the versions, and a version shown on request.
    let targets = web.app.client.list_targets(&web.tenant).await.unwrap().items;
    web.app
        .client
        .replace_target(&web.tenant, &targets[0].id, &target(&name, &["helen"], &["password", "history"]))
        .await
        .unwrap();
    let page = helen.get(&history).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("<option value=\"{version}\">")), "{html}");
    assert!(!html.contains(ESCROWED), "the list shows facts only");
    let resp = helen
        .post(&format!("/devices/{}/password", agent.id), &[("reason", "restore"), ("version", &version.to_string())])
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("(from the history)"));
    let resp = helen.post(&format!("/devices/{}/password", agent.id), &[("reason", "x"), ("version", "two")]).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_account_is_requested_awaited_and_shown() {
    let mut web = WebApp::start().await;
    web.person("dora", &[]).await;
    let (agent, version, _) = helens_device(&web, &["password", "support-account"]).await;
    let helen = web.http_session("helen").await;
    let status_path = format!("/devices/{}/support-account", agent.id);

    let page = helen.get(&status_path).await.text().await.unwrap();
    assert!(page.contains("No support account is requested"), "{page}");
    assert!(!page.contains("http-equiv=\"refresh\""));

    let resp = helen.post(&status_path, &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], status_path.as_str());
    let page = helen.get(&status_path).await.text().await.unwrap();
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"), "{page}");
    assert!(page.contains("Waiting for the device"), "{page}");
    assert!(page.contains("id=\"support-wait\">until the device") && page.contains("next check-in at"), "{page}");
    let requested = events(&web.app, "support_account.request").await;
    assert_eq!(requested.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(), ["user:helen"]);

    // The agent creates it; the page offers to show it and stops refreshing.
    agent.create_support(Some(version), "ADM-0000BEEF", "Support-Pass-9").await;
    let page = helen.get(&status_path).await.text().await.unwrap();
    assert!(page.contains("The account is ready") && !page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(!page.contains("Support-Pass-9"));

    let resp = helen.post(&format!("{status_path}/reveal"), &[("reason", "")]).await;
    assert_eq!(resp.status(), 400);
    let resp = helen.post(&format!("{status_path}/reveal"), &[("reason", "install a driver")]).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"password\">Support-Pass-9<") && html.contains("ADM-0000BEEF"), "{html}");
    let reads = events(&web.app, "secret.read").await;
    let last = reads.last().unwrap();
    assert_eq!((last.actor.as_str(), last.reason.as_deref()), ("user:helen", Some("install a driver")));

    // Without a target granting it, the request is the API's 403.
    let dora = web.http_session("dora").await;
    assert_eq!(dora.post(&status_path, &[]).await.status(), 403);
}
