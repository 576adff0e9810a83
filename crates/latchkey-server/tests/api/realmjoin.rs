//! The RealmJoin-compatible LAPS API: shapes and status codes of the peer, support accounts
//! end to end with a test-played agent, and bad input that changes nothing.

use latchkey_client::AuditQuery;
use latchkey_proto as proto;
use time::Duration;

use crate::both;
use crate::device_agent::{Agent, Kind, align_clock, job_of};
use crate::helpers::TestApp;

const REQUEST: &str = "RequestSupportAccount";
const RETRIEVE: &str = "RetrieveSupportAccountPassword";

/// An API client's Basic credentials.
struct Creds {
    id: String,
    secret: String,
}

async fn api_client(app: &TestApp, tenant: &str) -> Creds {
    let c = app.client.create_api_client(tenant, &proto::ApiClientCreate { name: "realmjoin".into() }).await.unwrap();
    Creds { id: c.client.id.clone(), secret: c.secret.clone() }
}

/// POST an operation with `query` and Basic credentials.
async fn call(app: &TestApp, op: &str, query: &str, creds: Option<&Creds>) -> reqwest::Response {
    let mut req = app.raw().post(app.url(&format!("/api/external/LocalAdmin/{op}?{query}")));
    if let Some(c) = creds {
        req = req.basic_auth(&c.id, Some(&c.secret));
    }
    req.send().await.unwrap()
}

/// Status, content type and JSON body (Null for an empty body).
async fn answer(resp: reqwest::Response) -> (u16, String, serde_json::Value, String) {
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = resp.text().await.unwrap();
    let json = if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap() };
    (status, ct, json, text)
}

/// `00-<32 hex>-<16 hex>-00`.
fn is_trace_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    parts.len() == 4 && parts[0] == "00" && hex(parts[1], 32) && hex(parts[2], 16) && parts[3] == "00"
}

/// The exact 404 of the peer.
fn assert_not_found(status: u16, ct: &str, body: &serde_json::Value) {
    assert_eq!(status, 404, "{body}");
    assert!(ct.starts_with("application/problem+json"), "{ct}");
    let map = body.as_object().unwrap();
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["status", "title", "traceId", "type"], "{body}");
    assert_eq!(body["type"], "https://tools.ietf.org/html/rfc7231#section-6.5.4");
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["status"], 404);
    assert!(is_trace_id(body["traceId"].as_str().unwrap()), "{body}");
}

/// The peer's 400 validation problem for deviceID.
fn assert_invalid_device(status: u16, ct: &str, body: &serde_json::Value) {
    assert_eq!(status, 400, "{body}");
    assert!(ct.starts_with("application/problem+json"), "{ct}");
    assert_eq!(body["type"], "https://tools.ietf.org/html/rfc7231#section-6.5.1");
    assert_eq!(body["title"], "One or more validation errors occurred.");
    assert_eq!(body["status"], 400);
    assert!(is_trace_id(body["traceId"].as_str().unwrap()), "{body}");
    let messages = body["errors"]["deviceID"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    assert!(!messages[0].as_str().unwrap().is_empty());
}

fn device_query(id: &str) -> String {
    format!("deviceID={id}")
}

async fn jobs_of(app: &TestApp, tenant: &str, device: &str, kind: proto::DeviceJobKind) -> Vec<proto::DeviceJob> {
    let jobs = app.client.device_jobs(tenant, device, None).await.unwrap();
    jobs.items.into_iter().filter(|j| j.kind == kind).collect()
}

async fn events(app: &TestApp, action: &str) -> Vec<proto::AuditEvent> {
    let q = AuditQuery { action: Some(action.into()), limit: Some(1000), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items
}

both!(support_account_from_request_to_expiry, |app: TestApp| async move {
    let creds = api_client(&app, "default").await;
    let agent = Agent::enroll(&app, "default").await;
    align_clock(&app);
    let v1 = agent.rotate(None, "admin-Password-1").await;
    app.clock.advance(Duration::minutes(10));

    // Request: 200 with the time until the next check-in (seen 10 minutes ago, every 30).
    let resp = call(&app, REQUEST, &device_query(&agent.id), Some(&creds)).await;
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let (status, ct, _, text) = answer(resp).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(text, r#"{"estimatedWaitTime":"00:20:00"}"#);
    let open = jobs_of(&app, "default", &agent.id, proto::DeviceJobKind::CreateSupportAccount).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, proto::DeviceJobState::Open);

    // Not ready yet: the peer's 404.
    let (status, ct, body, _) = answer(call(&app, RETRIEVE, &device_query(&agent.id), Some(&creds)).await).await;
    assert_not_found(status, &ct, &body);

    // A repeated request (parameter name in any case) queues nothing new.
    let (status, _, body, _) =
        answer(call(&app, REQUEST, &format!("deviceid={}", agent.id.to_uppercase()), Some(&creds)).await).await;
    assert_eq!((status, body["estimatedWaitTime"].as_str()), (200, Some("00:20:00")));
    assert_eq!(jobs_of(&app, "default", &agent.id, proto::DeviceJobKind::CreateSupportAccount).await.len(), 1);

    // The agent creates the account at its next check-in.
    let expires = agent.create_support(Some(v1), "ADM-5A2F2169", "support-Pass-42").await;
    assert_eq!(expires, latchkey_core::Clock::now(app.clock.as_ref()) + Duration::hours(24));
    let resp = call(&app, RETRIEVE, &device_query(&agent.id), Some(&creds)).await;
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let (status, _, _, text) = answer(resp).await;
    assert_eq!(status, 200, "{text}");
    let date = proto::realmjoin_time::format(expires);
    assert!(date.ends_with("+00:00") && !date.contains('.'), "{date}");
    assert_eq!(
        text,
        format!(r#"{{"password":"support-Pass-42","username":"ADM-5A2F2169","accountExpirationDate":"{date}"}}"#)
    );

    // While the account is live a request queues nothing and waits for nothing.
    let (_, _, body, _) = answer(call(&app, REQUEST, &device_query(&agent.id), Some(&creds)).await).await;
    assert_eq!(body["estimatedWaitTime"], "00:00:00");
    assert_eq!(jobs_of(&app, "default", &agent.id, proto::DeviceJobKind::CreateSupportAccount).await.len(), 1);

    // Every request and the read are audited as the API client; no event holds the password.
    let actor = format!("api-client:{}", creds.id);
    let requests = events(&app, "support_account.request").await;
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|e| e.actor == actor && e.object_id.as_deref() == Some(agent.id.as_str())));
    let reads = events(&app, "secret.read").await;
    assert_eq!(reads.len(), 1);
    assert_eq!((reads[0].actor.as_str(), reads[0].outcome.as_str()), (actor.as_str(), "success"));
    let all = app.client.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert!(!serde_json::to_string(&all).unwrap().contains("support-Pass-42"));

    // After its lifetime the account is gone for RealmJoin, and the agent is told to remove it.
    app.clock.advance(Duration::hours(24));
    let (status, ct, body, _) = answer(call(&app, RETRIEVE, &device_query(&agent.id), Some(&creds)).await).await;
    assert_not_found(status, &ct, &body);
    let r = agent.check_in(Some(v1)).await;
    assert!(job_of(&r, Kind::RemoveSupport).is_some(), "{r:?}");
    let removal = r.jobs.iter().find(|j| matches!(j.work, proto::AgentWork::RemoveSupportAccount { .. })).unwrap();
    let proto::AgentWork::RemoveSupportAccount { username } = &removal.work else { unreachable!() };
    assert_eq!(username, "ADM-5A2F2169");
    assert_eq!(events(&app, "secret.read").await.len(), 1, "a refused retrieve reads nothing");
});

/// The estimated wait a request answers.
async fn wait_time(app: &TestApp, creds: &Creds, device: &str) -> serde_json::Value {
    let (status, _, body, _) = answer(call(app, REQUEST, &device_query(device), Some(creds)).await).await;
    assert_eq!(status, 200, "{body}");
    body["estimatedWaitTime"].clone()
}

both!(estimated_wait_time_follows_the_last_check_in, |app: TestApp| async move {
    let creds = api_client(&app, "default").await;
    // Never seen: null.
    let d = app
        .client
        .create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: "never-seen".into(), container_dn: None, os: None },
        )
        .await
        .unwrap();
    let (status, _, _, text) = answer(call(&app, REQUEST, &device_query(&d.device_id), Some(&creds)).await).await;
    assert_eq!((status, text.as_str()), (200, r#"{"estimatedWaitTime":null}"#));

    let agent = Agent::enroll(&app, "default").await;
    align_clock(&app);
    agent.check_in(None).await;
    assert_eq!(wait_time(&app, &creds, &agent.id).await, "00:30:00");
    app.clock.advance(Duration::minutes(10) + Duration::milliseconds(500));
    assert_eq!(wait_time(&app, &creds, &agent.id).await, "00:19:59.5000000");
    // Overdue: at least zero.
    app.clock.advance(Duration::minutes(40));
    assert_eq!(wait_time(&app, &creds, &agent.id).await, "00:00:00");
    // Exactly 7 poll intervals since the check-in still counts; 8 do not.
    app.clock.advance(Duration::minutes(7 * 30) - Duration::minutes(50) - Duration::milliseconds(500));
    assert_eq!(wait_time(&app, &creds, &agent.id).await, "00:00:00");
    app.clock.advance(Duration::minutes(30));
    assert_eq!(wait_time(&app, &creds, &agent.id).await, serde_json::Value::Null);
    // One job for all of these requests.
    assert_eq!(jobs_of(&app, "default", &agent.id, proto::DeviceJobKind::CreateSupportAccount).await.len(), 1);
});

both!(bad_requests_are_refused_in_the_peer_shapes_and_change_nothing, |app: TestApp| async move {
    let creds = api_client(&app, "default").await;
    let agent = Agent::enroll(&app, "default").await;
    agent.check_in(None).await;
    app.client.create_tenant(&proto::TenantCreate { slug: "acme".into(), name: None }).await.unwrap();
    let acme_creds = api_client(&app, "acme").await;
    let acme_agent = Agent::enroll(&app, "acme").await;
    acme_agent.check_in(None).await;
    let audit_before = crate::helpers::audit_count(&app).await;
    let q = device_query(&agent.id);

    for op in [REQUEST, RETRIEVE] {
        // Wrong or missing credentials: 401 with a Basic challenge and no body.
        let wrong_secret = Creds { id: creds.id.clone(), secret: format!("{}x", creds.secret) };
        let unknown_client = Creds { id: uuid::Uuid::new_v4().to_string(), secret: creds.secret.clone() };
        let malformed_id = Creds { id: "not-a-uuid".into(), secret: creds.secret.clone() };
        let other_secret = Creds { id: creds.id.clone(), secret: acme_creds.secret.clone() };
        for c in [Some(&wrong_secret), Some(&unknown_client), Some(&malformed_id), Some(&other_secret), None] {
            let resp = call(&app, op, &q, c).await;
            assert_eq!(resp.status().as_u16(), 401, "{op}");
            assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Basic realm=\"latchkey\"");
            assert!(resp.text().await.unwrap().is_empty());
        }
        for header in ["Bearer lk_admin_x", "Basic !!!", "Basic bm8tY29sb24=", "Basic"] {
            let url = app.url(&format!("/api/external/LocalAdmin/{op}?{q}"));
            let resp = app.raw().post(url).header("authorization", header).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{op} {header}");
        }
        // Credentials are checked before the device id.
        assert_eq!(call(&app, op, "deviceID=nope", Some(&wrong_secret)).await.status().as_u16(), 401);

        // Another tenant's device and an unknown device: the peer's 404.
        for id in [acme_agent.id.clone(), uuid::Uuid::new_v4().to_string()] {
            let (status, ct, body, _) = answer(call(&app, op, &device_query(&id), Some(&creds)).await).await;
            assert_not_found(status, &ct, &body);
        }
        // The acme client does not see the default tenant's device either.
        let (status, ct, body, _) = answer(call(&app, op, &q, Some(&acme_creds)).await).await;
        assert_not_found(status, &ct, &body);

        // A malformed, empty, repeated or missing deviceID: the peer's validation problem.
        for query in [
            "deviceID=not-a-guid".to_owned(),
            "deviceID=".to_owned(),
            "deviceID=%ZZ".to_owned(),
            format!("{q}&deviceID={}", acme_agent.id),
            "other=1".to_owned(),
            String::new(),
        ] {
            let (status, ct, body, _) = answer(call(&app, op, &query, Some(&creds)).await).await;
            assert_invalid_device(status, &ct, &body);
        }

        // Any other method: 405.
        let url = app.url(&format!("/api/external/LocalAdmin/{op}?{q}"));
        let resp = app.raw().get(url).basic_auth(&creds.id, Some(&creds.secret)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{op}");
    }

    // Nothing changed: no support job on either device, no audit event.
    for (tenant, id) in [("default", &agent.id), ("acme", &acme_agent.id)] {
        assert!(jobs_of(&app, tenant, id, proto::DeviceJobKind::CreateSupportAccount).await.is_empty());
    }
    assert_eq!(crate::helpers::audit_count(&app).await, audit_before);
});
