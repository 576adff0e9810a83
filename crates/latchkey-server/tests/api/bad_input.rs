//! Bad input gets a clear 4xx problem and changes nothing.

use latchkey_proto as proto;
use reqwest::Method;
use serde_json::Value;

use crate::both;
use crate::helpers::{TestApp, account_with_password, audit_count};

/// Send a raw request; return (status, content type, body as JSON or text).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let mut req = app.raw().request(method, app.url(path)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, ct, json)
}

async fn json(app: &TestApp, method: Method, path: &str, body: &str) -> (u16, Value) {
    let (s, ct, v) =
        send(app, method, path, Some(&app.token), Some("application/json"), body.as_bytes().to_vec()).await;
    if s >= 400 {
        assert_eq!(ct, "application/problem+json", "{path}: {v}");
    }
    (s, v)
}

fn assert_problem(v: &Value, status: u16, code: &str) {
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["title"].is_string(), "{v}");
    assert!(v["requestId"].as_str().is_some_and(|id| id.len() == 36), "{v}");
}

both!(malformed_bodies_are_400_and_change_nothing, |app: TestApp| async move {
    let accounts = "/api/v1/tenants/default/accounts";
    let before = audit_count(&app).await;
    let (s, v) = json(&app, Method::POST, accounts, "{not json").await;
    assert_eq!(s, 400);
    assert_problem(&v, 400, "malformed_body");
    let (s, v) = json(&app, Method::POST, accounts, r#"{"kind":"generic","name":5}"#).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("invalid type"), "{v}");
    let (s, v) = json(&app, Method::POST, accounts, r#"{"kind":"generic"}"#).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("missing field `name`"), "{v}");
    let (s, v) = json(&app, Method::POST, accounts, r#"{"kind":"generic","name":"a","colour":"red"}"#).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("unknown field `colour`"), "{v}");
    let (s, v) = json(&app, Method::POST, accounts, r#"{"kind":"superuser","name":"a"}"#).await;
    assert_eq!(s, 400, "{v}");
    let (s, _, v) =
        send(&app, Method::POST, accounts, Some(&app.token), None, br#"{"kind":"generic","name":"a"}"#.to_vec()).await;
    assert_eq!(s, 415);
    assert_problem(&v, 415, "unsupported_media_type");
    let huge = format!(r#"{{"kind":"generic","name":"a","description":"{}"}}"#, "x".repeat(70 * 1024));
    let (s, v) = json(&app, Method::POST, accounts, &huge).await;
    assert_eq!(s, 413);
    assert_problem(&v, 413, "payload_too_large");
    let long = format!(r#"{{"kind":"generic","name":"{}"}}"#, "n".repeat(300));
    let (s, v) = json(&app, Method::POST, accounts, &long).await;
    assert_eq!(s, 400);
    assert_problem(&v, 400, "invalid_field");
    let (s, v) = json(&app, Method::POST, accounts, r#"{"kind":"generic","name":"a\u0000b"}"#).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) =
        json(&app, Method::POST, "/api/v1/tenants/default/devices", r#"{"name":"pc","deviceId":"not-a-uuid"}"#).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("deviceId"), "{v}");
    let (s, _) =
        json(&app, Method::POST, "/api/v1/tenants/default/devices", r#"{"name":"pc","containerDn":"Workstations"}"#)
            .await;
    assert_eq!(s, 400);
    assert_eq!(audit_count(&app).await, before, "a refused request wrote an audit event");
    assert!(app.client.list_accounts("default").await.unwrap().items.is_empty());
    assert!(app.client.list_devices("default", None, None).await.unwrap().items.is_empty());
});

both!(bad_ids_and_parameters, |app: TestApp| async move {
    let id = account_with_password(&app, "default", "db", "pw-1").await;
    let before = audit_count(&app).await;
    let (s, v) = json(&app, Method::GET, "/api/v1/tenants/default/devices/not-a-uuid", "").await;
    assert_eq!(s, 400);
    assert_problem(&v, 400, "invalid_parameter");
    let (s, v) =
        json(&app, Method::GET, &format!("/api/v1/tenants/default/devices/{}", uuid::Uuid::new_v4()), "").await;
    assert_eq!(s, 404);
    assert_problem(&v, 404, "not_found");
    let (s, _) = json(&app, Method::GET, "/api/v1/tenants/nope/devices", "").await;
    assert_eq!(s, 404);
    let (s, _) = json(&app, Method::GET, "/api/v1/tenants/default/accounts/xyz", "").await;
    assert_eq!(s, 400);
    let (s, v) = json(&app, Method::GET, "/api/v1/tenants/default/devices?limit=abc", "").await;
    assert_eq!(s, 400);
    assert_problem(&v, 400, "invalid_parameter");
    let (s, _) = json(&app, Method::GET, "/api/v1/tenants/default/devices?limit=0", "").await;
    assert_eq!(s, 400);
    let (s, _) = json(&app, Method::GET, "/api/v1/tenants/default/devices?colour=red", "").await;
    assert_eq!(s, 400);
    let (s, _) = json(&app, Method::GET, "/api/v1/audit?since=yesterday", "").await;
    assert_eq!(s, 400);
    let (s, _) = json(&app, Method::GET, "/api/v1/audit?action=secret.steal", "").await;
    assert_eq!(s, 400);
    let (s, v) = json(&app, Method::GET, "/api/v1/nothing-here", "").await;
    assert_eq!(s, 404);
    assert_problem(&v, 404, "not_found");
    let (s, v) = json(&app, Method::PATCH, "/api/v1/tenants", "{}").await;
    assert_eq!(s, 405);
    assert_problem(&v, 405, "method_not_allowed");
    let reveal = format!("/api/v1/tenants/default/accounts/{id}/secret/reveal");
    let (s, v) = json(&app, Method::POST, &reveal, r#"{}"#).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("reason"), "{v}");
    let (s, _) = json(&app, Method::POST, &reveal, r#"{"reason":"   "}"#).await;
    assert_eq!(s, 400);
    let (s, _) = json(&app, Method::POST, &reveal, &format!(r#"{{"reason":"{}"}}"#, "r".repeat(1001))).await;
    assert_eq!(s, 400);
    let set = format!("/api/v1/tenants/default/accounts/{id}/secret");
    let (s, _) = json(&app, Method::PUT, &set, r#"{}"#).await;
    assert_eq!(s, 400);
    let (s, _) = json(&app, Method::PUT, &set, r#"{"password":""}"#).await;
    assert_eq!(s, 400);
    assert_eq!(audit_count(&app).await, before);
    assert_eq!(app.client.account("default", &id).await.unwrap().active_version, Some(1));
});

both!(credentials_are_checked, |app: TestApp| async move {
    let before = audit_count(&app).await;
    for token in [None, Some("lk_admin_wrong"), Some("not-even-a-token")] {
        let (s, _, v) = send(&app, Method::GET, "/api/v1/tenants", token, None, vec![]).await;
        assert_eq!(s, 401, "{token:?}");
        assert_problem(&v, 401, "unauthenticated");
    }
    let resp = app
        .raw()
        .get(app.url("/api/v1/tenants"))
        .header("authorization", format!("Basic {}", app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (s, _, _) = send(
        &app,
        Method::POST,
        "/api/v1/tenants/default/devices",
        Some("lk_admin_wrong"),
        Some("application/json"),
        br#"{"name":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(audit_count(&app).await, before);
    assert!(app.client.list_devices("default", None, None).await.unwrap().items.is_empty());
});

both!(errors_never_echo_secret_values, |app: TestApp| async move {
    let id = account_with_password(&app, "default", "db", "pw-1").await;
    let set = format!("/api/v1/tenants/default/accounts/{id}/secret");
    let (s, v) = json(&app, Method::PUT, &set, r#"{"password":"hunter2-leak","expiresAt":"hunter3-leak"}"#).await;
    assert_eq!(s, 400);
    let text = v.to_string();
    assert!(!text.contains("hunter2-leak") && !text.contains("hunter3-leak"), "{text}");
    let (s, v) = json(&app, Method::PUT, &set, &format!(r#"{{"password":"{}"}}"#, "p".repeat(1025))).await;
    assert_eq!(s, 400);
    assert!(!v.to_string().contains("pppppppp"));
    let acct = app.client.account("default", &id).await.unwrap();
    assert_eq!(acct.active_version, Some(1));
    let _ = proto::ProblemCode::InvalidField;
});
