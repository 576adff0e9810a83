//! The auditor's pages: the audit log with filters, the CSV export, the hash chain's state,
//! tenant scope, and "who can read this device".

use latchkey_proto as proto;

use crate::admin::text_once;
use crate::browser::Browser;
use crate::fixture::{PASSWORD, WebApp};

/// A reason that a spreadsheet would run as a formula, with markup in it.
const FORMULA_REASON: &str = "=HYPERLINK(\"http://evil.example\",\"<b>click</b>\")";

/// The `href` of the link with this id, as the browser reads it.
fn link_href(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind("href=\"")? + "href=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&#38;", "&").replace("&amp;", "&"))
}

/// Register a device in the fixture's tenant.
async fn device(web: &WebApp, name: &str) -> String {
    let body = proto::DeviceCreate { device_id: None, name: name.into(), container_dn: None, os: None };
    web.app.client.create_device(&web.tenant, &body).await.unwrap().device_id
}

/// `name` tries to read a device's password with `reason`; no target lets them: a denied
/// `secret.read` event with the reason.
async fn denied_read(web: &WebApp, name: &str, device_id: &str, reason: &str) {
    let signed = web
        .app
        .client_with(None)
        .sign_in(&proto::SignInRequest { tenant: web.tenant.clone(), username: name.into(), password: PASSWORD.into() })
        .await
        .unwrap();
    let body = proto::DevicePasswordRequest { reason: reason.into(), ticket: Some("T-9".into()), version: None };
    let err = web.app.client_with(Some(&signed.token)).reveal_device_password(&web.tenant, device_id, &body).await;
    assert!(err.is_err(), "no target lets {name} read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_filters_the_log_exports_it_and_sees_the_chain_verified_in_a_browser() {
    let web = WebApp::start().await;
    let pc = device(&web, "PC-7").await;
    denied_read(&web, "helen", &pc, "printer driver, ticket T-9").await;
    let Some(b) = Browser::open(&web.app.base).await else { return };
    b.sign_in("acme", "alice", PASSWORD).await;

    b.go("/audit").await;
    assert!(b.text("#chain-status").await.starts_with("Verified"), "{}", b.text("#chain-status").await);
    let all = b.text("#audit-events").await;
    assert!(all.contains("secret.read") && all.contains("sign_in") && all.contains("device.create"), "{all}");

    b.find("#filter-action").await.select_by_value("sign_in").await.unwrap();
    b.click_and_wait("#apply-filters").await;
    text_once(&b, "#filter-action option[selected]", |t| t == "sign_in").await;
    assert!(b.path().await.contains("action=sign_in"), "{}", b.path().await);
    let rows = b.client.find_all(fantoccini::Locator::Css("#audit-events tbody tr")).await.unwrap();
    assert!(rows.len() >= 2, "alice's and helen's sign-ins");
    for row in &rows {
        assert!(row.text().await.unwrap().contains("sign_in"));
    }
    let shown = b.text("#audit-events").await;
    assert!(shown.contains("user:alice") && !shown.contains("secret.read"), "{shown}");

    b.find("#filter-action").await.select_by_value("secret.read").await.unwrap();
    b.click_and_wait("#apply-filters").await;
    text_once(&b, "#filter-action option[selected]", |t| t == "secret.read").await;
    let shown = b.text("#audit-events").await;
    assert!(shown.contains("user:helen") && shown.contains("printer driver, ticket T-9"), "{shown}");
    assert!(shown.contains("denied"), "{shown}");
    let export = b.find("#export-csv").await.attr("href").await.unwrap().unwrap();
    assert_eq!(export, "/audit.csv?action=secret.read");
    b.screenshot("audit").await;
    b.close().await;

    // The export link over HTTP with alice's session.
    let s = web.http_session("alice").await;
    let resp = s.get(&export).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment;") && disposition.contains("audit-acme.csv"), "{disposition}");
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "\"seq\",\"at\",\"tenant\",\"actor\",\"action\",\"object_type\",\"object_id\",\"outcome\",\"reason\",\
         \"ticket\",\"client_addr\",\"request_id\",\"details\",\"hash\""
    );
    let row = lines.next().unwrap();
    assert!(row.contains("\"acme\",\"user:helen\",\"secret.read\""), "{row}");
    assert!(row.contains("\"denied\",\"printer driver, ticket T-9\",\"T-9\""), "{row}");
    assert_eq!(lines.next(), None, "only the one read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_defuses_formulas_and_the_page_escapes_what_people_typed() {
    let web = WebApp::start().await;
    let pc = device(&web, "PC-8").await;
    denied_read(&web, "helen", &pc, FORMULA_REASON).await;
    let s = web.http_session("alice").await;

    let csv = s.get("/audit.csv?action=secret.read").await.text().await.unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.contains(r#","'=HYPERLINK(""http://evil.example"",""<b>click</b>"")","#),
        "quoted, quotes doubled, and a ' before the =: {row}"
    );
    assert!(!row.contains(",\"=HYPERLINK"), "{row}");

    let page = s.get("/audit?action=secret.read").await.text().await.unwrap();
    assert!(page.contains("&#60;b&#62;click&#60;/b&#62;"), "the reason is escaped");
    assert!(!page.contains("<b>click</b>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_s_auditor_sees_only_the_tenant_s_events() {
    let web = WebApp::start().await;
    // Another tenant with a person who signs in and a device.
    let c = &web.app.client;
    c.create_tenant(&proto::TenantCreate { slug: "globex".into(), name: None }).await.unwrap();
    let gus = c
        .create_user("globex", &proto::UserCreate { name: "gus".into(), display_name: None, email: None })
        .await
        .unwrap();
    c.set_user_password("globex", &gus.id, &proto::PasswordSetRequest { password: PASSWORD.into() }).await.unwrap();
    web.app
        .client_with(None)
        .sign_in(&proto::SignInRequest { tenant: "globex".into(), username: "gus".into(), password: PASSWORD.into() })
        .await
        .unwrap();
    let body = proto::DeviceCreate { device_id: None, name: "GLOBEX-PC".into(), container_dn: None, os: None };
    let foreign = c.create_device("globex", &body).await.unwrap().device_id;

    let s = web.http_session("alice").await;
    let page = s.get("/audit").await.text().await.unwrap();
    assert!(page.contains("user:alice"), "alice's own sign-in is there");
    assert!(!page.contains("user:gus") && !page.contains("GLOBEX-PC") && !page.contains(&foreign), "{page}");
    // Filters cannot reach the other tenant either.
    let page = s.get("/audit?who=gus").await.text().await.unwrap();
    assert!(page.contains("No events match."), "{page}");
    let page = s.get(&format!("/audit?object={foreign}")).await.text().await.unwrap();
    assert!(page.contains("No events match."));
    let csv = s.get("/audit.csv").await.text().await.unwrap();
    assert!(csv.contains("user:alice") && !csv.contains("user:gus") && !csv.contains("globex"), "{csv}");
    // Nor does "who can read".
    let resp = s.get(&format!("/audit/who-can-read?device={foreign}")).await;
    assert_eq!(resp.status(), 404);
    let resp = s.get("/audit/who-can-read?device=GLOBEX-PC").await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pages_newest_first_and_bad_filters_are_a_400_page() {
    let web = WebApp::start().await;
    for i in 0..60 {
        device(&web, &format!("PC-{i:02}")).await;
    }
    let s = web.http_session("alice").await;
    let page = s.get("/audit?action=device.create").await.text().await.unwrap();
    let first = page.find("PC-59").expect("the newest device on the first page");
    assert!(page.find("PC-58").unwrap() > first, "newest first");
    assert!(!page.contains("PC-09"), "50 a page");
    let older = link_href(&page, "older").expect("a link to older events");
    assert!(older.starts_with("/audit?action=device.create&before="), "{older}");
    let page = s.get(&older).await.text().await.unwrap();
    assert!(page.contains("PC-09") && page.contains("PC-00") && !page.contains("PC-10"), "the ten oldest");
    assert!(!page.contains("id=\"older\""), "nothing older");
    assert!(!page.contains("chain-status"), "the chain is checked on the first page");

    for bad in ["/audit?action=secret.burn", "/audit?from=yesterday", "/audit?outcome=maybe", "/audit?nonsense=1"] {
        let resp = s.get(bad).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(resp.text().await.unwrap().contains("id=\"error-message\""), "{bad}");
    }
    let long = "x".repeat(300);
    assert_eq!(s.get(&format!("/audit?who={long}")).await.status(), 400);
    assert_eq!(s.get(&format!("/audit.csv?who={long}")).await.status(), 400);
    // A time range in the browser's format.
    let page = s.get("/audit?action=device.create&from=2000-01-01T00:00&to=2000-01-02T00:00").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("No events match."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_can_read_names_the_deciding_target_its_readers_and_explains_a_user() {
    let web = WebApp::start().await;
    device(&web, "PC-7").await;
    let spec = proto::TargetSpec {
        kind: "Computer".into(),
        name: "PC-7".into(),
        expire_after: None,
        readers: vec!["alice".into()],
        grants: None,
        audit: proto::TargetAudit::default(),
        enabled: true,
        description: None,
        position: None,
    };
    web.app.client.create_target(&web.tenant, &spec).await.unwrap();
    let s = web.http_session("alice").await;
    let page = s.get("/audit/who-can-read?device=pc-7&user=helen&operation=password").await.text().await.unwrap();
    assert!(page.contains("#1 Computer “PC-7”"), "{page}");
    assert!(page.contains("it names the device"));
    assert!(page.contains("<li>alice <span class=\"muted\">(user)</span></li>"), "{page}");
    assert!(page.contains("Denied: target 1"), "helen is no reader: {page}");
    let page = s.get("/audit/who-can-read?device=PC-7&user=alice").await.text().await.unwrap();
    assert!(page.contains("Allowed: target 1"), "{page}");
    // No such device, or a device nobody can read.
    assert_eq!(s.get("/audit/who-can-read?device=PC-404").await.status(), 404);
    device(&web, "PC-8").await;
    let page = s.get("/audit/who-can-read?device=PC-8").await.text().await.unwrap();
    assert!(page.contains("id=\"who-nobody\""));
}
