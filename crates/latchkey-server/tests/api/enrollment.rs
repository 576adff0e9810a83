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
