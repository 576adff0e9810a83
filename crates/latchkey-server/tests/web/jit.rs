//! The requester's page of just-in-time access: a request against an open built-in ticket,
//! the temporary password shown once, the approver's decision, the grant active on the
//! device, and an early revoke; bad forms are refused with nothing created.

use std::time::Duration as StdDuration;

use latchkey_client::Client;
use latchkey_core::Clock;
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;
use latchkey_server::jit::{JitConfig, JitPolicyLayer};

use crate::browser::Browser;
use crate::fixture::{HttpSession, PASSWORD, WebApp, hidden_field};

/// The longest grant of the test policy.
pub(crate) const MAX_MINUTES: i64 = 60;

/// A device policy needing approval, for `acme` and another tenant `globex`.
pub(crate) async fn start() -> WebApp {
    WebApp::start_with(|config| {
        let policy = |tenant: &str| JitPolicyLayer {
            tenant: tenant.into(),
            provider: "device".into(),
            max_minutes: Some(MAX_MINUTES),
            approval_required: Some(true),
            admin_group: None,
            accounts_ou: None,
            tenant_prefix: None,
            on_revoke: None,
        };
        config.jit = JitConfig::resolve(vec![policy("acme"), policy("globex")], vec![]).unwrap();
    })
    .await
}

/// An enrolled device whose agent confirms every local admin job it is given (the account
/// work itself is the agent's tests' business).
pub(crate) struct Agent {
    http: Client,
    pub id: String,
    key: DeviceSigningKey,
}

impl Agent {
    pub(crate) async fn enroll(web: &WebApp, tenant: &str) -> Agent {
        let c = &web.app.client;
        let t = c.create_enrollment_token(tenant, &proto::EnrollmentTokenCreate::default()).await.unwrap();
        let key = DeviceSigningKey::generate();
        let id = uuid::Uuid::new_v4().to_string();
        let http = web.app.client_with(None);
        http.enroll(&proto::AgentEnrollRequest {
            token: t.token.clone(),
            device_id: id.clone(),
            hostname: format!("pc-{}", &id[..8]),
            os: None,
            public_key: key.verifying_key().to_base64url(),
        })
        .await
        .unwrap();
        Agent { http, id, key }
    }

    async fn post<B: serde::Serialize, T: serde::de::DeserializeOwned>(&self, web: &WebApp, path: &str, body: &B) -> T {
        let nonce = format!("web-test-nonce-{}", uuid::Uuid::new_v4().simple());
        let now = web.app.clock.now().unix_timestamp();
        self.http.agent_signed_post(&self.key, &self.id, now, &nonce, path, body).await.unwrap()
    }

    /// Check in and confirm every local admin job.
    async fn confirm_jobs(&self, web: &WebApp) {
        let answer: proto::AgentCheckInResponse =
            self.post(web, "/api/agent/v1/check-in", &proto::AgentCheckIn::default()).await;
        let local_admin = |w: &proto::AgentWork| {
            matches!(w, proto::AgentWork::GrantLocalAdmin { .. } | proto::AgentWork::RevokeLocalAdmin { .. })
        };
        // Other work (password rotation and the like) is another part of the agent.
        for job in answer.jobs.iter().filter(|j| local_admin(&j.work)) {
            let path = format!("/api/agent/v1/jobs/{}/confirm", job.id);
            let _: proto::AgentJobDone = self.post(web, &path, &proto::AgentConfirm::default()).await;
        }
    }

    /// Run the agent (moving the clock past the engine's wait) until the grant is `state`.
    pub(crate) async fn until(&self, web: &WebApp, tenant: &str, grant: &str, state: &str) -> proto::JitGrant {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
        loop {
            self.confirm_jobs(web).await;
            let g = web.app.client.jit_grant(tenant, grant).await.unwrap();
            if g.state == state {
                return g;
            }
            assert!(std::time::Instant::now() < deadline, "grant is {} (not {state}): {:?}", g.state, g.last_error);
            web.app.clock.advance(time::Duration::seconds(3));
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }
}

/// An open built-in ticket's number.
pub(crate) async fn open_ticket(web: &WebApp, tenant: &str, title: &str) -> String {
    web.app.client.create_ticket(tenant, title).await.unwrap().number.to_string()
}

/// Grants of `acme`, seen by the admin token.
pub(crate) async fn grants(web: &WebApp) -> Vec<proto::JitGrant> {
    web.app.client.list_jit("acme").await.unwrap().grants
}

/// Send the request form of `/jit` (with the page's fresh form id) with `minutes`.
pub(crate) async fn request(s: &HttpSession, ticket: &str, device: &str, minutes: &str) -> reqwest::Response {
    let page = s.get("/jit").await.text().await.unwrap();
    let form_id = hidden_field(&page, "form_id").expect("a form id on the request form");
    let fields = [
        ("form_id", form_id.as_str()),
        ("provider", "device"),
        ("ticket", ticket),
        ("device", device),
        ("minutes", minutes),
        ("reason", "replace the printer driver"),
    ];
    s.post("/jit", &fields).await
}

/// The temporary password of an answer page.
pub(crate) fn password_of(html: &str) -> String {
    let marker = "id=\"temporary-password\">";
    let start = html.find(marker).expect("the temporary password") + marker.len();
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_requests_access_an_approver_approves_and_the_person_revokes_it_early_in_a_browser() {
    let web = start().await;
    let agent = Agent::enroll(&web, "acme").await;
    let ticket = open_ticket(&web, "acme", "Printer driver on the second floor").await;
    let Some(helen) = Browser::open(&web.app.base).await else { return };
    helen.sign_in("acme", "helen", PASSWORD).await;

    helen.go("/jit").await;
    assert_eq!(helen.find("#jit-tenant").await.prop("value").await.unwrap().as_deref(), Some("acme"));
    assert!(helen.text("#jit-max").await.contains("At most 60 minutes for device access"));
    assert_eq!(helen.text("#jit-grants-none").await, "You have no grants yet.");
    helen.click(&format!("#jit-ticket option[value=\"{ticket}\"]")).await;
    helen.fill("#jit-device", &agent.id).await;
    helen.fill("#jit-minutes", "30").await;
    helen.fill("#jit-reason", "replace the printer driver").await;
    helen.screenshot("jit-request").await;
    helen.click_and_wait("#jit-submit").await;

    // The password, once, with the warning; the request waits for an approver.
    assert_eq!(helen.text("#password-warning").await, "Copy it now: it is not shown again.");
    let password = helen.text("#temporary-password").await;
    assert!(password.len() >= 16, "{password}");
    assert_eq!(helen.text("#jit-account").await, "jit_helen");
    assert_eq!(helen.text("#jit-state").await, "requested");
    assert!(helen.find("button[data-copy=\"temporary-password\"]").await.is_displayed().await.unwrap());
    helen.screenshot("jit-password").await;
    let all = grants(&web).await;
    assert_eq!(all.len(), 1);
    let id = all[0].id.clone();
    assert_eq!((all[0].state.as_str(), all[0].requester.as_str()), ("requested", "helen"));

    helen.go("/jit").await;
    assert!(!helen.source().await.contains(&password), "the password is not shown again");
    let pending = helen.text("#jit-pending").await;
    assert!(pending.contains("jit_helen") && pending.contains(&ticket), "{pending}");

    // Bob approves it in his inbox.
    let Some(bob) = Browser::open(&web.app.base).await else { return };
    bob.sign_in("acme", "bob", PASSWORD).await;
    bob.go("/approvals").await;
    let row = format!("#approvals-jit tr[data-grant=\"{id}\"]");
    let text = bob.text(&row).await;
    assert!(text.contains("helen") && text.contains("replace the printer driver") && text.contains(&ticket), "{text}");
    bob.screenshot("approvals").await;
    bob.click_and_wait(&format!("{row} button.approve")).await;
    assert_eq!(bob.text("p.notice").await, "Approved.");
    assert_eq!(bob.text("#approvals-jit-none").await, "No just-in-time request waits for a decision.");
    bob.close().await;

    // Once the device's agent has carried it out, helen's grant is active.
    let active = agent.until(&web, "acme", &id, "active").await;
    assert_eq!(active.approver.as_deref(), Some("user:bob"));
    helen.go("/jit").await;
    let row = format!("#jit-grants tr[data-grant=\"{id}\"]");
    let text = helen.text(&row).await;
    assert!(text.contains("active") && text.contains("min"), "{text}");
    assert_eq!(helen.text("#jit-pending-none").await, "None of your requests waits for approval.");

    // Helen ends it early.
    helen.click_and_wait(&format!("{row} button.danger")).await;
    // The notice appears once the answer page has loaded.
    assert!(helen.text("p.notice").await.contains("being ended"));
    assert_eq!(helen.path().await, "/jit?done=revoked");
    let g = web.app.client.jit_grant("acme", &id).await.unwrap();
    assert!(g.expired && g.state == "revoking", "{g:?}");
    assert!(!helen.source().await.contains(&format!("name=\"grant_id\" value=\"{id}\"")), "no revoke button any more");
    helen.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_submit_of_the_same_form_creates_one_grant() {
    let web = start().await;
    let agent = Agent::enroll(&web, "acme").await;
    let ticket = open_ticket(&web, "acme", "Disk replacement").await;
    let s = web.http_session("helen").await;
    let page = s.get("/jit").await.text().await.unwrap();
    let form_id = hidden_field(&page, "form_id").unwrap();
    let fields = [
        ("form_id", form_id.as_str()),
        ("provider", "device"),
        ("ticket", ticket.as_str()),
        ("device", agent.id.as_str()),
        ("minutes", "20"),
        ("reason", "swap the disk"),
    ];
    let first = s.post("/jit", &fields).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let html = first.text().await.unwrap();
    assert!(html.contains("Copy it now: it is not shown again."));
    assert!(!password_of(&html).is_empty());
    let again = s.post("/jit", &fields).await;
    assert_eq!(again.status(), 409);
    let html = again.text().await.unwrap();
    assert!(html.contains("already sent"), "{html}");
    assert!(!html.contains("temporary-password"));
    assert_eq!(grants(&web).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_minutes_long_fields_and_closed_tickets_are_refused_with_nothing_created() {
    let web = start().await;
    let agent = Agent::enroll(&web, "acme").await;
    let ticket = open_ticket(&web, "acme", "Driver update").await;
    let s = web.http_session("helen").await;

    for minutes in ["ten", "", "0", "61", "1.5", "99999999999999999999999"] {
        let resp = request(&s, &ticket, &agent.id, minutes).await;
        assert_eq!(resp.status(), 400, "{minutes:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Minutes must be a whole number from 1 to 60"), "{minutes:?}: {html}");
    }
    let page = s.get("/jit").await.text().await.unwrap();
    let form_id = hidden_field(&page, "form_id").unwrap();
    let long = "x".repeat(501);
    let fields = [
        ("form_id", form_id.as_str()),
        ("provider", "device"),
        ("ticket", ticket.as_str()),
        ("device", agent.id.as_str()),
        ("minutes", "5"),
        ("reason", long.as_str()),
    ];
    let resp = s.post("/jit", &fields).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("The reason is longer than 500 characters"));

    // The API's own refusals: a ticket that does not exist, or one that is closed.
    let resp = request(&s, "424242", &agent.id, "5").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("Ticket 424242 does not exist."));
    web.app.client.close_ticket("acme", ticket.parse().unwrap()).await.unwrap();
    let resp = request(&s, &ticket, &agent.id, "5").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains(&format!("Ticket {ticket} is closed.")));
    // A closed ticket is no longer offered.
    let page = s.get("/jit").await.text().await.unwrap();
    assert!(!page.contains(&format!("<option value=\"{ticket}\">")), "closed tickets are not offered");

    assert!(grants(&web).await.is_empty(), "nothing was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_grant_id_in_a_form_is_not_found_and_unchanged() {
    let web = start().await;
    let c = &web.app.client;
    c.create_tenant(&proto::TenantCreate { slug: "globex".into(), name: None }).await.unwrap();
    let agent = Agent::enroll(&web, "globex").await;
    let ticket = open_ticket(&web, "globex", "Their ticket").await;
    let theirs = c
        .request_jit(
            "globex",
            &proto::JitRequest {
                provider: "device".into(),
                ticket,
                minutes: 10,
                reason: "their work".into(),
                device_id: Some(agent.id.clone()),
                requester: Some("helen".into()),
            },
        )
        .await
        .unwrap()
        .grant
        .clone();

    // Helen of acme, same user name: the revoke form with the other tenant's grant id.
    let s = web.http_session("helen").await;
    let resp = s.post("/jit/revoke", &[("grant_id", theirs.id.as_str())]).await;
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("No such grant"));
    // Bob, an approver of acme, cannot decide it either.
    let bob = web.http_session("bob").await;
    for decision in ["approve", "deny"] {
        let resp = bob.post(&format!("/approvals/jit/{}/{decision}", theirs.id), &[]).await;
        assert_eq!(resp.status(), 404, "{decision}");
    }
    let g = c.jit_grant("globex", &theirs.id).await.unwrap();
    assert_eq!((g.state.as_str(), g.expired), ("requested", false), "unchanged");
    assert!(g.approver.is_none());
}
