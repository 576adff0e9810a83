//! Device agents enroll once with a one-time, expiring, tenant-scoped token.

use latchkey_client::AuditQuery;
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;

use crate::both;
use crate::helpers::TestApp;

fn request(token: &str, device_id: &str, key: &DeviceSigningKey) -> proto::AgentEnrollRequest {
    proto::AgentEnrollRequest {
        token: token.to_owned(),
        device_id: device_id.to_owned(),
        hostname: "pc-enrolled".into(),
        os: Some("Debian GNU/Linux 12".into()),
        public_key: key.verifying_key().to_base64url(),
    }
}

both!(a_token_enrolls_one_device_once, |app: TestApp| async move {
    let c = &app.client;
    let agent = app.client_with(None);
    let t = c.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
    assert!(t.token.starts_with("lk_enroll_"));
    let key = DeviceSigningKey::generate();
    let id = uuid::Uuid::new_v4().to_string();
    let enrolled = agent.enroll(&request(&t.token, &id, &key)).await.unwrap();
    assert_eq!(enrolled.device_id, id);
    assert_eq!(enrolled.tenant, "default");
    assert_eq!(enrolled.poll_interval_seconds, 1800);
    assert!(latchkey_crypto::SealingPublicKey::from_base64url(&enrolled.server_sealing_key).is_ok());
    let device = c.device("default", &id).await.unwrap();
    assert_eq!(device.name, "pc-enrolled");
    assert!(device.enrolled_at.is_some());

    // The token is spent, also for another device.
    let again = agent.enroll(&request(&t.token, &uuid::Uuid::new_v4().to_string(), &key)).await.unwrap_err();
    assert_eq!(again.code(), Some(proto::ProblemCode::Unauthenticated));
    // A second token cannot re-enroll the same device with another key.
    let t2 = c.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
    let other = DeviceSigningKey::generate();
    let e = agent.enroll(&request(&t2.token, &id, &other)).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Conflict));
    // ...and a failed enrollment does not spend the token.
    let fresh = uuid::Uuid::new_v4().to_string();
    let mut r = request(&t2.token, &fresh, &other);
    r.hostname = "pc-second".into();
    agent.enroll(&r).await.unwrap();

    let events =
        c.list_audit(&AuditQuery { action: Some("device.enroll".into()), ..Default::default() }).await.unwrap();
    assert_eq!(events.items.len(), 2);
    assert_eq!(events.items[0].object_id.as_deref(), Some(id.as_str()));
    assert_eq!(events.items[0].tenant.as_deref(), Some("default"));
    let all =
        serde_json::to_string(&c.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap())
            .unwrap();
    assert!(!all.contains(&t.token) && !all.contains(&t2.token));
});

both!(pre_registered_device_gets_its_key_and_tenants_stay_apart, |app: TestApp| async move {
    let c = &app.client;
    let agent = app.client_with(None);
    let d = c
        .create_device(
            "default",
            &proto::DeviceCreate {
                device_id: None,
                name: "PC-ADMIN".into(),
                container_dn: Some("OU=X,DC=y".into()),
                os: None,
            },
        )
        .await
        .unwrap();
    let t = c.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
    agent.enroll(&request(&t.token, &d.device_id, &DeviceSigningKey::generate())).await.unwrap();
    let after = c.device("default", &d.device_id).await.unwrap();
    assert_eq!(after.name, "PC-ADMIN", "an admin-registered device keeps its name");
    assert_eq!(after.container_dn.as_deref(), Some("OU=X,DC=y"));
    assert_eq!(after.os.as_deref(), Some("Debian GNU/Linux 12"));

    c.create_tenant(&proto::TenantCreate { slug: "acme".into(), name: None }).await.unwrap();
    let acme = c.create_enrollment_token("acme", &proto::EnrollmentTokenCreate::default()).await.unwrap();
    let e = agent.enroll(&request(&acme.token, &d.device_id, &DeviceSigningKey::generate())).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Conflict));
    assert!(c.device("acme", &d.device_id).await.is_err());
});

both!(expired_and_malformed_enrollments_change_nothing, |app: TestApp| async move {
    let c = &app.client;
    let agent = app.client_with(None);
    let t = c
        .create_enrollment_token("default", &proto::EnrollmentTokenCreate { expires_in_seconds: Some(60) })
        .await
        .unwrap();
    let key = DeviceSigningKey::generate();
    let id = uuid::Uuid::new_v4().to_string();
    for (mutate, code) in [
        (
            Box::new(|r: &mut proto::AgentEnrollRequest| r.device_id = "not-a-uuid".into())
                as Box<dyn Fn(&mut proto::AgentEnrollRequest)>,
            proto::ProblemCode::InvalidField,
        ),
        (Box::new(|r: &mut proto::AgentEnrollRequest| r.public_key = "AAAA".into()), proto::ProblemCode::InvalidField),
        (Box::new(|r: &mut proto::AgentEnrollRequest| r.hostname = " ".into()), proto::ProblemCode::InvalidField),
        (
            Box::new(|r: &mut proto::AgentEnrollRequest| r.token = "lk_enroll_wrong".into()),
            proto::ProblemCode::Unauthenticated,
        ),
        (
            Box::new(|r: &mut proto::AgentEnrollRequest| r.token = "something-else".into()),
            proto::ProblemCode::Unauthenticated,
        ),
    ] {
        let mut r = request(&t.token, &id, &key);
        mutate(&mut r);
        assert_eq!(agent.enroll(&r).await.unwrap_err().code(), Some(code));
    }
    let bad_life = c
        .create_enrollment_token("default", &proto::EnrollmentTokenCreate { expires_in_seconds: Some(5) })
        .await
        .unwrap_err();
    assert_eq!(bad_life.code(), Some(proto::ProblemCode::InvalidField));
    app.clock.advance(time::Duration::seconds(61));
    let e = agent.enroll(&request(&t.token, &id, &key)).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Unauthenticated));
    assert!(c.list_devices("default", None, None).await.unwrap().items.is_empty());
    let enrolls =
        c.list_audit(&AuditQuery { action: Some("device.enroll".into()), ..Default::default() }).await.unwrap();
    assert!(enrolls.items.is_empty());
});

/// Enroll a fresh device; returns its id and key.
async fn enrolled(app: &TestApp) -> (String, DeviceSigningKey) {
    let t = app.client.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
    let key = DeviceSigningKey::generate();
    let id = uuid::Uuid::new_v4().to_string();
    let mut r = request(&t.token, &id, &key);
    r.hostname = format!("pc-{id}");
    app.client_with(None).enroll(&r).await.unwrap();
    (id, key)
}

const CHECK_IN: &str = "/api/agent/v1/check-in";

both!(signed_check_in_records_last_seen, |app: TestApp| async move {
    let (id, key) = enrolled(&app).await;
    assert!(app.client.device("default", &id).await.unwrap().last_seen_at.is_none());
    let agent = app.client_with(None);
    let now = latchkey_core::Clock::now(app.clock.as_ref());
    let body = proto::AgentCheckIn { password_version: None, managed_accounts: vec!["latchkey-admin".into()] };
    let r: proto::AgentCheckInResponse = agent
        .agent_signed_post(&key, &id, now.unix_timestamp(), "nonce-0000000000000001", CHECK_IN, &body)
        .await
        .unwrap();
    assert_eq!(r.device_id, id);
    assert_eq!(r.poll_interval_seconds, 1800);
    assert_eq!(app.client.device("default", &id).await.unwrap().last_seen_at, Some(now));
    // The convenience call signs with the system clock, which the test clock follows.
    agent.agent_check_in(&key, &id, &body).await.unwrap();
});

both!(bad_agent_requests_are_refused_and_change_nothing, |app: TestApp| async move {
    let (id, key) = enrolled(&app).await;
    let (other_id, other_key) = enrolled(&app).await;
    let agent = app.client_with(None);
    let now = latchkey_core::Clock::now(app.clock.as_ref()).unix_timestamp();
    async fn post(
        agent: &latchkey_client::Client,
        key: &DeviceSigningKey,
        device: &str,
        ts: i64,
        nonce: &str,
    ) -> Result<proto::AgentCheckInResponse, latchkey_client::ClientError> {
        agent.agent_signed_post(key, device, ts, nonce, CHECK_IN, &proto::AgentCheckIn::default()).await
    }
    let unauth = |r: Result<proto::AgentCheckInResponse, latchkey_client::ClientError>| {
        assert_eq!(r.unwrap_err().code(), Some(proto::ProblemCode::Unauthenticated));
    };
    // Replay: the same nonce twice.
    post(&agent, &key, &id, now, "replay-nonce-000001").await.unwrap();
    unauth(post(&agent, &key, &id, now, "replay-nonce-000001").await);
    // Skew beyond 5 minutes either way.
    unauth(post(&agent, &key, &id, now - 301, "skew-nonce-00000001").await);
    unauth(post(&agent, &key, &id, now + 301, "skew-nonce-00000002").await);
    // Another device's key, or a device that never enrolled.
    unauth(post(&agent, &other_key, &id, now, "wrong-key-000000001").await);
    unauth(post(&agent, &key, &uuid::Uuid::new_v4().to_string(), now, "unknown-dev-0000001").await);
    // A malformed nonce.
    unauth(post(&agent, &key, &id, now, "short").await);
    // A body changed after signing, and missing headers.
    let signed = latchkey_crypto::request_signing_bytes("POST", CHECK_IN, &id, now, "tamper-nonce-000001", b"{}");
    use base64::Engine;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&signed));
    let resp = app
        .raw()
        .post(app.url(CHECK_IN))
        .header("content-type", "application/json")
        .header("x-latchkey-device", &id)
        .header("x-latchkey-timestamp", now.to_string())
        .header("x-latchkey-nonce", "tamper-nonce-000001")
        .header("x-latchkey-signature", &sig)
        .body(r#"{"passwordVersion":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp =
        app.raw().post(app.url(CHECK_IN)).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // A well-signed body that is not a check-in.
    let bad: Result<proto::AgentCheckInResponse, _> = agent
        .agent_signed_post(
            &key,
            &id,
            now,
            "bad-body-000000001",
            CHECK_IN,
            &serde_json::json!({ "passwordVersion": "seven" }),
        )
        .await;
    assert_eq!(bad.unwrap_err().code(), Some(proto::ProblemCode::MalformedBody));
    // A refused body spends nothing: the same nonce still works with a good body.
    post(&agent, &key, &id, now, "bad-body-000000001").await.unwrap();
    // The other device was never seen: none of the refused requests touched it.
    assert!(app.client.device("default", &other_id).await.unwrap().last_seen_at.is_none());
});
