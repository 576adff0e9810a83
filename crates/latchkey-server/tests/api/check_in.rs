//! Agent check-ins under concurrency and after a device changes: a nonce is accepted once
//! however many copies arrive together, and a key the server kept in memory never outlives
//! the device it belonged to.

use latchkey_client::ClientError;
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;

use crate::both;
use crate::helpers::TestApp;

const CHECK_IN: &str = "/api/agent/v1/check-in";

/// Enroll device `id` with a fresh key; returns the key.
async fn enroll(app: &TestApp, id: &str) -> DeviceSigningKey {
    let t = app.client.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
    let key = DeviceSigningKey::generate();
    let request = proto::AgentEnrollRequest {
        token: t.token.clone(),
        device_id: id.to_owned(),
        hostname: format!("pc-{id}"),
        os: None,
        public_key: key.verifying_key().to_base64url(),
    };
    app.client_with(None).enroll(&request).await.unwrap();
    key
}

async fn check_in(
    app: &TestApp,
    key: &DeviceSigningKey,
    id: &str,
    nonce: &str,
) -> Result<proto::AgentCheckInResponse, ClientError> {
    let now = latchkey_core::Clock::now(app.clock.as_ref()).unix_timestamp();
    app.client_with(None).agent_signed_post(key, id, now, nonce, CHECK_IN, &proto::AgentCheckIn::default()).await
}

both!(copies_of_a_check_in_sent_together_are_accepted_once, |app: TestApp| async move {
    let id = uuid::Uuid::new_v4().to_string();
    let key = enroll(&app, &id).await;
    for round in 0..5 {
        let nonce = format!("together-nonce-{round:04}");
        let sends = (0..8).map(|_| check_in(&app, &key, &id, &nonce));
        let answers = futures::future::join_all(sends).await;
        let accepted = answers.iter().filter(|a| a.is_ok()).count();
        let replays = answers
            .iter()
            .filter(|a| matches!(a, Err(e) if e.code() == Some(proto::ProblemCode::Unauthenticated)))
            .count();
        assert_eq!((accepted, replays), (1, 7), "round {round}");
    }
    // Different nonces sent together are all accepted.
    let sends = (0..8).map(|i| {
        let nonce = format!("distinct-nonce-{i:04}");
        let (app, key, id) = (&app, &key, &id);
        async move { check_in(app, key, id, &nonce).await }
    });
    assert!(futures::future::join_all(sends).await.iter().all(Result::is_ok));
});

both!(a_removed_device_is_refused_and_its_new_key_accepted, |app: TestApp| async move {
    let id = uuid::Uuid::new_v4().to_string();
    let old_key = enroll(&app, &id).await;
    check_in(&app, &old_key, &id, "before-removal-0001").await.unwrap();
    app.client.delete_device("default", &id).await.unwrap();
    // The key the server read for the first check-in is of no use once the device is gone.
    let refused = check_in(&app, &old_key, &id, "after-removal-00001").await.unwrap_err();
    assert_eq!(refused.code(), Some(proto::ProblemCode::Unauthenticated));
    assert_eq!(app.client.device("default", &id).await.unwrap_err().code(), Some(proto::ProblemCode::NotFound));

    // Enrolled again under the same id with a new key: the new key works, the old one does not.
    let new_key = enroll(&app, &id).await;
    check_in(&app, &new_key, &id, "new-key-nonce-00001").await.unwrap();
    let refused = check_in(&app, &old_key, &id, "old-key-nonce-00001").await.unwrap_err();
    assert_eq!(refused.code(), Some(proto::ProblemCode::Unauthenticated));
    assert!(app.client.device("default", &id).await.unwrap().last_seen_at.is_some());

    // The same without a request in between: the server still holds the old key when the first
    // request signed with the new one arrives, and reads the key again rather than refusing.
    let id = uuid::Uuid::new_v4().to_string();
    let old_key = enroll(&app, &id).await;
    check_in(&app, &old_key, &id, "kept-key-nonce-0001").await.unwrap();
    app.client.delete_device("default", &id).await.unwrap();
    let new_key = enroll(&app, &id).await;
    check_in(&app, &new_key, &id, "kept-key-nonce-0002").await.unwrap();
    let refused = check_in(&app, &old_key, &id, "kept-key-nonce-0003").await.unwrap_err();
    assert_eq!(refused.code(), Some(proto::ProblemCode::Unauthenticated));
});

both!(a_device_checking_in_too_often_is_slowed_down, |app: TestApp| async move {
    let id = uuid::Uuid::new_v4().to_string();
    let key = enroll(&app, &id).await;
    for i in 0..64 {
        check_in(&app, &key, &id, &format!("often-nonce-{i:08}")).await.unwrap();
    }
    let seen = app.client.device("default", &id).await.unwrap().last_seen_at;
    // The 65th within the replay window is refused and changes nothing.
    let refused = check_in(&app, &key, &id, "often-nonce-00000064").await.unwrap_err();
    assert_eq!(refused.code(), Some(proto::ProblemCode::RateLimited));
    assert_eq!(app.client.device("default", &id).await.unwrap().last_seen_at, seen);
});
