//! The approver's inbox: only for approvers, never deciding one's own request (no buttons, and
//! a forged form gets the API's 403 with nothing changed), and a denial the requester sees.

use crate::fixture::hidden_field;
use crate::jit::{Agent, grants, open_ticket, request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_cannot_approve_their_own_request_and_another_can() {
    let web = start().await;
    let agent = Agent::enroll(&web, "acme").await;
    let ticket = open_ticket(&web, "acme", "Server patching").await;
    let bob = web.http_session("bob").await;
    let resp = request(&bob, &ticket, &agent.id, "15").await;
    assert_eq!(resp.status(), 200);
    let id = grants(&web).await[0].id.clone();

    // Bob's own request is listed without buttons.
    let page = bob.get("/approvals").await.text().await.unwrap();
    assert!(page.contains(&format!("data-grant=\"{id}\"")), "{page}");
    assert!(page.contains("Your own request: another approver decides."));
    assert!(!page.contains(&format!("/approvals/jit/{id}/approve")), "no approve button on one's own");

    // A forged approval of his own is the API's 403; nothing changed.
    for decision in ["approve", "deny"] {
        let resp = bob.post(&format!("/approvals/jit/{id}/{decision}"), &[]).await;
        assert_eq!(resp.status(), 403, "{decision}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("A request cannot be approved or denied by its requester."), "{html}");
    }
    let g = web.app.client.jit_grant("acme", &id).await.unwrap();
    assert_eq!(g.state, "requested");
    assert!(g.approver.is_none());

    // Alice sees buttons on it and approves.
    let alice = web.http_session("alice").await;
    let page = alice.get("/approvals").await.text().await.unwrap();
    assert!(page.contains(&format!("action=\"/approvals/jit/{id}/approve\"")), "{page}");
    let resp = alice.post(&format!("/approvals/jit/{id}/approve"), &[]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/approvals?done=approved");
    let g = web.app.client.jit_grant("acme", &id).await.unwrap();
    assert_eq!((g.state.as_str(), g.approver.as_deref()), ("approved", Some("user:alice")));
    // Deciding twice is the API's conflict.
    let resp = alice.post(&format!("/approvals/jit/{id}/deny"), &[]).await;
    assert_eq!(resp.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_without_the_approver_role_gets_403_and_decides_nothing() {
    let web = start().await;
    let agent = Agent::enroll(&web, "acme").await;
    let ticket = open_ticket(&web, "acme", "Network outage").await;
    let bob = web.http_session("bob").await;
    assert_eq!(request(&bob, &ticket, &agent.id, "10").await.status(), 200);
    let id = grants(&web).await[0].id.clone();

    let helen = web.http_session("helen").await;
    let resp = helen.get("/approvals").await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("needs the approver role"));
    let home = helen.get("/").await.text().await.unwrap();
    assert!(!home.contains("href=\"/approvals\""), "no link to the inbox");
    for decision in ["approve", "deny"] {
        let resp = helen.post(&format!("/approvals/jit/{id}/{decision}"), &[]).await;
        assert_eq!(resp.status(), 403, "{decision}");
    }
    let resp = helen.post("/approvals/view/3f1c3d5e-0000-4000-8000-000000000000/approve", &[("comment", "ok")]).await;
    assert_eq!(resp.status(), 403);
    let g = web.app.client.jit_grant("acme", &id).await.unwrap();
    assert_eq!(g.state, "requested", "unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_shows_as_denied_to_its_requester() {
    let web = start().await;
    let agent = Agent::enroll(&web, "acme").await;
    let ticket = open_ticket(&web, "acme", "Unneeded access").await;
    let helen = web.http_session("helen").await;
    assert_eq!(request(&helen, &ticket, &agent.id, "10").await.status(), 200);
    let id = grants(&web).await[0].id.clone();
    let page = helen.get("/jit").await.text().await.unwrap();
    assert!(page.contains("id=\"jit-pending\""), "the request waits for approval");

    let bob = web.http_session("bob").await;
    // An unknown decision, a form with extra fields and an over-long comment are refused.
    assert_eq!(bob.post(&format!("/approvals/jit/{id}/maybe"), &[]).await.status(), 404);
    assert_eq!(bob.post(&format!("/approvals/jit/{id}/deny"), &[("extra", "no")]).await.status(), 400);
    let long = "x".repeat(1001);
    assert_eq!(bob.post(&format!("/approvals/jit/{id}/deny"), &[("comment", &long)]).await.status(), 400);
    assert_eq!(web.app.client.jit_grant("acme", &id).await.unwrap().state, "requested", "unchanged");
    let resp = bob.post(&format!("/approvals/jit/{id}/deny"), &[("comment", "not needed for a driver")]).await;
    assert_eq!(resp.status(), 303);
    // The comment is kept in the decision's audit event.
    let events = web
        .app
        .client
        .list_audit(&latchkey_client::AuditQuery { action: Some("jit.deny".into()), ..Default::default() })
        .await
        .unwrap()
        .items;
    let denial = events.iter().find(|e| e.object_id.as_deref() == Some(id.as_str())).expect("the deny event");
    assert_eq!(
        (denial.actor.as_str(), &denial.details["comment"]),
        ("user:bob", &serde_json::json!("not needed for a driver"))
    );
    let page = bob.get("/approvals?done=denied").await.text().await.unwrap();
    assert!(page.contains("Denied."));
    assert!(!page.contains(&format!("data-grant=\"{id}\"")), "decided requests leave the inbox");

    let page = helen.get("/jit").await.text().await.unwrap();
    assert!(page.contains("None of your requests waits for approval."));
    assert!(page.contains("state-denied"), "{page}");
    assert!(hidden_field(&page, "grant_id").is_none(), "a denied grant cannot be revoked");
    let g = web.app.client.jit_grant("acme", &id).await.unwrap();
    assert_eq!((g.state.as_str(), g.approver.as_deref()), ("denied", Some("user:bob")));
}
