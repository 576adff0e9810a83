//! The admin's pages: access targets (add, move, disable, the Lithnet import), devices and
//! enrollment tokens, applications, users' roles, directory sync, and their refusals.

use latchkey_proto as proto;

use crate::browser::Browser;
use crate::fixture::{HttpSession, PASSWORD, WebApp, hidden_field};

/// A Lithnet web.config with two targets (lines 5 and 8).
const WEB_CONFIG: &str = r#"<?xml version="1.0"?>
<configuration>
  <lithnet-laps>
    <targets>
      <target name="DEV1\PC-7" type="Computer" expire-after="1.00:00:00">
        <readers><reader principal="DEV1\erin"/></readers>
      </target>
      <target name="OU=Computers,DC=dev1,DC=local" type="Container">
        <audit emailOnSuccess="false" emailAddresses="sec@dev1.local,it@dev1.local"/>
        <readers><reader principal="Helpdesk"/><reader principal="erin@dev1.local"/></readers>
      </target>
    </targets>
  </lithnet-laps>
</configuration>"#;

/// The names of the tenant's targets in list order, with whether each is enabled.
async fn targets(web: &WebApp, tenant: &str) -> Vec<(String, bool)> {
    web.app.client.list_targets(tenant).await.unwrap().items.into_iter().map(|t| (t.name, t.enabled)).collect()
}

fn spec(name: &str, readers: &[&str]) -> proto::TargetSpec {
    proto::TargetSpec {
        kind: "Computer".into(),
        name: name.into(),
        expire_after: None,
        readers: readers.iter().map(|r| (*r).to_owned()).collect(),
        grants: None,
        audit: proto::TargetAudit::default(),
        enabled: true,
        description: None,
        position: None,
    }
}

/// Erin and the Helpdesk group, the readers of [`WEB_CONFIG`].
async fn lithnet_readers(web: &mut WebApp) {
    web.person("erin", &[]).await;
    let g = proto::GroupCreate { name: "Helpdesk".into(), description: None };
    web.app.client.create_group(&web.tenant, &g).await.unwrap();
}

/// The text of `css` once it satisfies `want` (the page after a form was sent may take a
/// moment to replace the one before).
pub(crate) async fn text_once(b: &Browser, css: &str, want: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        if let Ok(el) = b.client.find(fantoccini::Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if want(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css} never became what was expected; last: {last:?}");
}

/// A multipart form body with these text fields and a `web_config` file.
fn multipart(fields: &[(&str, &str)], file: &str) -> (String, Vec<u8>) {
    let boundary = "----latchkey-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"web_config\"; filename=\"web.config\"\r\n\
         Content-Type: text/xml\r\n\r\n{file}\r\n--{boundary}--\r\n"
    ));
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

async fn upload(s: &HttpSession, csrf: &str, file: &str) -> reqwest::Response {
    let (content_type, body) = multipart(&[("csrf", csrf)], file);
    s.http
        .post(format!("{}/admin/targets/import", s.base))
        .header("cookie", &s.cookie)
        .header("origin", &s.base)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_moves_disables_targets_and_imports_a_lithnet_file_in_a_browser() {
    let mut web = WebApp::start().await;
    lithnet_readers(&mut web).await;
    let Some(b) = Browser::open(&web.app.base).await else { return };
    b.sign_in("acme", "alice", PASSWORD).await;

    b.go("/admin/targets").await;
    b.find("#no-targets").await;
    for (i, (name, reader)) in [("PC-1", "alice"), ("PC-2", "erin")].into_iter().enumerate() {
        b.fill("#target-name", name).await;
        b.fill("#target-readers", reader).await;
        b.click_and_wait("#add-target-submit").await;
        text_once(&b, &format!("#target-{} .target-name", i + 1), |t| t == name).await;
        assert_eq!(b.text(".notice").await, "Target added.");
    }
    assert_eq!(targets(&web, "acme").await, [("PC-1".to_owned(), true), ("PC-2".to_owned(), true)]);

    b.click_and_wait("#target-2 .move-up").await;
    text_once(&b, ".notice", |t| t == "Target moved.").await;
    assert_eq!(b.text("#target-1 .target-name").await, "PC-2");
    assert_eq!(targets(&web, "acme").await[0].0, "PC-2");

    b.click_and_wait("#target-1 .toggle").await;
    text_once(&b, ".notice", |t| t.starts_with("Target disabled")).await;
    assert_eq!(b.text("#target-1 .target-state").await, "disabled");
    assert_eq!(targets(&web, "acme").await, [("PC-2".to_owned(), false), ("PC-1".to_owned(), true)]);
    b.screenshot("admin-targets").await;

    // The Lithnet import: upload, see the dry run, then import.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.config");
    std::fs::write(&file, WEB_CONFIG).unwrap();
    b.go("/admin/targets/import").await;
    b.find("#web-config-file").await.send_keys(&file.display().to_string()).await.unwrap();
    b.click_and_wait("#preview").await;
    let preview = b.text("#import-preview").await;
    assert!(preview.starts_with("Preview: 2 targets would be added"), "{preview}");
    assert!(preview.contains("DEV1\\PC-7") && preview.contains("OU=Computers,DC=dev1,DC=local"), "{preview}");
    assert!(preview.contains("sec@dev1.local, it@dev1.local"), "{preview}");
    assert_eq!(targets(&web, "acme").await.len(), 2, "a dry run changes nothing");
    b.screenshot("admin-import").await;
    b.click_and_wait("#import").await;
    text_once(&b, ".notice", |t| t == "Targets imported.").await;
    let names: Vec<String> = targets(&web, "acme").await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["PC-2", "PC-1", "DEV1\\PC-7", "OU=Computers,DC=dev1,DC=local"]);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lithnet_file_with_problems_is_reported_by_line_and_not_imported() {
    let mut web = WebApp::start().await;
    lithnet_readers(&mut web).await;
    let s = web.http_session("alice").await;
    let bad = WEB_CONFIG.replace("DEV1\\erin", "DEV1\\zed");
    let resp = upload(&s, &s.csrf, &bad).await;
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Line 5: reader `DEV1\\zed` is not a user or group of this tenant"), "{page}");
    assert!(!page.contains("id=\"confirm-import\""), "no Import button");

    // The preview carries the text to import; importing it once works, a second time not.
    let page = upload(&s, &s.csrf, WEB_CONFIG).await.text().await.unwrap();
    let form_id = hidden_field(&page, "form_id").unwrap();
    let text = hidden_field(&page, "web_config").unwrap();
    assert!(text.contains("&#60;target name=&#34;DEV1\\PC-7&#34;"), "the file is escaped in the page: {text}");
    assert!(!text.contains('<'));
    let fields = [("form_id", form_id.as_str()), ("web_config", WEB_CONFIG)];
    let resp = s.post("/admin/targets/import/confirm", &fields).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(targets(&web, "acme").await.len(), 2);
    let again = s.post("/admin/targets/import/confirm", &fields).await;
    assert_eq!(again.status(), 409);
    assert_eq!(targets(&web, "acme").await.len(), 2);

    // An upload without the form token, or from another site, is refused.
    assert_eq!(upload(&s, "not-the-token", WEB_CONFIG).await.status(), 403);
    let (content_type, body) = multipart(&[("csrf", &s.csrf)], WEB_CONFIG);
    let resp = s
        .http
        .post(format!("{}/admin/targets/import", s.base))
        .header("cookie", &s.cookie)
        .header("origin", "http://evil.example")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_without_the_role_get_403_on_every_admin_and_audit_page_and_change_nothing() {
    let mut web = WebApp::start().await;
    let target = web.app.client.create_target(&web.tenant, &spec("PC-1", &["alice"])).await.unwrap();
    let app = web.app.client.create_application(&web.tenant, "backup").await.unwrap().application.clone();
    let alice = web.users["alice"].clone();
    web.person("auditor-ann", &["auditor"]).await;
    let helen = web.http_session("helen").await;
    let bob = web.http_session("bob").await;
    let ann = web.http_session("auditor-ann").await;

    let admin_pages = [
        "/admin".to_owned(),
        "/admin/targets".to_owned(),
        format!("/admin/targets/{}", target.id),
        "/admin/targets/import".to_owned(),
        "/admin/devices".to_owned(),
        "/admin/applications".to_owned(),
        "/admin/users".to_owned(),
        "/admin/directory".to_owned(),
    ];
    let audit_pages = ["/audit", "/audit.csv", "/audit/who-can-read"];
    for s in [&helen, &bob] {
        for path in admin_pages.iter().map(String::as_str).chain(audit_pages) {
            let resp = s.get(path).await;
            assert_eq!(resp.status(), 403, "{path}");
            assert!(resp.text().await.unwrap().contains("id=\"error-message\""), "{path}");
        }
    }
    // An auditor opens the audit pages, and no admin page.
    for path in audit_pages {
        assert_eq!(ann.get(path).await.status(), 200, "{path}");
    }
    for path in &admin_pages {
        assert_eq!(ann.get(path).await.status(), 403, "{path}");
    }

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/admin/targets".into(), vec![("kind", "Computer"), ("name", "PC-9"), ("enabled", "on")]),
        (format!("/admin/targets/{}", target.id), vec![("kind", "Computer"), ("name", "PC-X"), ("enabled", "on")]),
        (format!("/admin/targets/{}/move", target.id), vec![("direction", "down")]),
        (format!("/admin/targets/{}/disable", target.id), vec![]),
        (format!("/admin/targets/{}/delete", target.id), vec![]),
        ("/admin/targets/import/confirm".into(), vec![("web_config", WEB_CONFIG)]),
        ("/admin/devices".into(), vec![("name", "PC-NEW")]),
        ("/admin/enrollment-tokens".into(), vec![("hours", "24")]),
        ("/admin/applications".into(), vec![("name", "sneaky")]),
        (format!("/admin/applications/{}/disable", app.id), vec![]),
        (format!("/admin/users/{alice}/roles"), vec![]),
        ("/admin/directory/sync".into(), vec![]),
    ];
    for s in [&helen, &ann] {
        for (path, fields) in &posts {
            assert_eq!(s.post(path, fields).await.status(), 403, "{path}");
        }
        assert_eq!(upload(s, &s.csrf, WEB_CONFIG).await.status(), 403);
    }
    assert_eq!(targets(&web, "acme").await, [("PC-1".to_owned(), true)]);
    let c = &web.app.client;
    assert!(c.list_applications("acme").await.unwrap().items.iter().all(|a| a.enabled && a.name == "backup"));
    assert_eq!(c.list_devices("acme", None, None).await.unwrap().items.len(), 0);
    assert_eq!(c.user_roles("acme", &alice).await.unwrap().roles, ["admin", "auditor", "approver"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn things_of_another_tenant_are_not_found_and_stay_unchanged() {
    let web = WebApp::start().await;
    let c = &web.app.client;
    c.create_tenant(&proto::TenantCreate { slug: "globex".into(), name: None }).await.unwrap();
    let theirs = c.create_target("globex", &spec("GLOBEX-PC", &[])).await.unwrap();
    let their_app = c.create_application("globex", "their-app").await.unwrap().application.clone();
    let gus = c
        .create_user("globex", &proto::UserCreate { name: "gus".into(), display_name: None, email: None })
        .await
        .unwrap();
    let s = web.http_session("alice").await;

    let resp = s.get(&format!("/admin/targets/{}", theirs.id)).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("No such target."));
    let edit = [("kind", "Computer"), ("name", "HIJACKED"), ("readers", "alice"), ("enabled", "on")];
    for (path, fields) in [
        (format!("/admin/targets/{}", theirs.id), &edit[..]),
        (format!("/admin/targets/{}/move", theirs.id), &[("direction", "down")][..]),
        (format!("/admin/targets/{}/disable", theirs.id), &[][..]),
        (format!("/admin/targets/{}/delete", theirs.id), &[][..]),
        (format!("/admin/applications/{}/disable", their_app.id), &[][..]),
        (format!("/admin/users/{}/roles", gus.id), &[("admin", "on")][..]),
    ] {
        let resp = s.post(&path, fields).await;
        assert_eq!(resp.status(), 404, "{path}");
        assert!(resp.text().await.unwrap().contains("id=\"error-message\""), "{path}");
    }
    assert_eq!(targets(&web, "globex").await, [("GLOBEX-PC".to_owned(), true)]);
    assert!(c.list_applications("globex").await.unwrap().items[0].enabled);
    assert!(c.user_roles("globex", &gus.id).await.unwrap().roles.is_empty());
    // A target id that is no id at all.
    assert_eq!(s.post("/admin/targets/not-a-uuid/delete", &[]).await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_or_wrong_fields_are_a_400_page_and_change_nothing() {
    let web = WebApp::start().await;
    let s = web.http_session("alice").await;
    let long = "P".repeat(2000);
    for fields in [
        vec![("kind", "Computer"), ("name", long.as_str()), ("enabled", "on")],
        vec![("kind", "Computer"), ("name", "PC-1"), ("description", &long[..1001])],
        vec![("kind", "Printer"), ("name", "PC-1")],
        vec![("kind", "Computer"), ("name", "PC-1"), ("expire_after", "forever")],
        vec![("kind", "Computer"), ("name", "PC-1"), ("readers", "nobody-here")],
        vec![("kind", "Computer"), ("name", "PC-1"), ("colour", "red")],
    ] {
        let resp = s.post("/admin/targets", &fields).await;
        assert_eq!(resp.status(), 400, "{fields:?}");
        assert!(resp.text().await.unwrap().contains("id=\"error-message\""));
    }
    let resp = s.post("/admin/devices", &[("name", long.as_str())]).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("Name is longer than 256 characters."));
    assert_eq!(s.post("/admin/enrollment-tokens", &[("hours", "0")]).await.status(), 400);
    assert_eq!(s.post("/admin/enrollment-tokens", &[("hours", "lots")]).await.status(), 400);
    assert_eq!(s.post("/admin/applications", &[("name", long.as_str())]).await.status(), 400);
    assert!(targets(&web, "acme").await.is_empty());
    assert!(web.app.client.list_devices("acme", None, None).await.unwrap().items.is_empty());
    assert!(web.app.client.list_applications("acme").await.unwrap().items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_devices_and_applications_sets_roles_and_sees_the_directory() {
    let web = WebApp::start().await;
    let s = web.http_session("alice").await;

    // Devices and a one-time enrollment token.
    let page = s.get("/admin/devices").await.text().await.unwrap();
    let form_id = hidden_field(&page, "form_id").unwrap();
    let fields = [("form_id", form_id.as_str()), ("name", "PC-<7>"), ("os", "Windows 11")];
    assert_eq!(s.post("/admin/devices", &fields).await.status(), 303);
    let page = s.get("/admin/devices?done=added").await.text().await.unwrap();
    assert!(page.contains("Device registered.") && page.contains("PC-&#60;7&#62;") && page.contains("Windows 11"));
    let resp = s.post("/admin/enrollment-tokens", &[("hours", "2")]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"enrollment-token\">lk_enroll_"), "the token is shown once");

    // Applications: the password once, then disable and enable.
    let resp = s.post("/admin/applications", &[("name", "backup")]).await;
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"application-username\">acme\\backup<"), "{page}");
    assert!(page.contains("id=\"application-password\">lkp_"));
    let app = web.app.client.list_applications("acme").await.unwrap().items.remove(0);
    let list = s.get("/admin/applications").await.text().await.unwrap();
    assert!(list.contains("acme\\backup") && !list.contains("lkp_"), "the password is not listed");
    assert_eq!(s.post(&format!("/admin/applications/{}/disable", app.id), &[]).await.status(), 303);
    assert!(!web.app.client.list_applications("acme").await.unwrap().items[0].enabled);
    assert_eq!(s.post(&format!("/admin/applications/{}/enable", app.id), &[]).await.status(), 303);
    assert!(web.app.client.list_applications("acme").await.unwrap().items[0].enabled);

    // Roles: helen becomes an auditor and opens the audit log.
    let helen_id = web.users["helen"].clone();
    let page = s.get("/admin/users").await.text().await.unwrap();
    assert!(page.contains("id=\"user-helen\"") && page.contains("helen@acme.test"));
    let resp = s.post(&format!("/admin/users/{helen_id}/roles"), &[("auditor", "on")]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(web.app.client.user_roles("acme", &helen_id).await.unwrap().roles, ["auditor"]);
    let helen = web.http_session("helen").await;
    assert_eq!(helen.get("/audit").await.status(), 200);
    assert_eq!(helen.get("/admin").await.status(), 403);
    let found = s.get("/admin/users?q=HEL").await.text().await.unwrap();
    assert!(found.contains("id=\"user-helen\"") && !found.contains("id=\"user-bob\""));

    // The tenant's facts, policies, and directory sync without a directory.
    let home = s.get("/admin").await.text().await.unwrap();
    assert!(home.contains("Acme Ltd") && home.contains("id=\"no-policies\""));
    let dir = s.get("/admin/directory").await.text().await.unwrap();
    assert!(dir.contains("id=\"no-directory\"") && !dir.contains("id=\"sync-now\""));
    let resp = s.post("/admin/directory/sync", &[]).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("No directory is configured for this tenant."));
}
