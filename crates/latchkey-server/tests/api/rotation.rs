//! Two-phase rotation through the agent API: jobs from check-ins, pending versions sealed to
//! the server, confirmation, reconciliation from the agent's report, and bad input.

use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_client::{AuditQuery, Client, ClientError};
use latchkey_crypto::{DeviceSigningKey, SealingPublicKey};
use latchkey_proto as proto;
use proto::ProblemCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::both;
use crate::helpers::TestApp;

/// A device agent played by the test, signing with the test clock.
struct Agent<'a> {
    app: &'a TestApp,
    http: Client,
    id: String,
    key: DeviceSigningKey,
    server_key: SealingPublicKey,
    nonces: AtomicU64,
}

impl<'a> Agent<'a> {
    async fn enroll(app: &'a TestApp) -> Agent<'a> {
        let t = app.client.create_enrollment_token("default", &proto::EnrollmentTokenCreate::default()).await.unwrap();
        let key = DeviceSigningKey::generate();
        let id = uuid::Uuid::new_v4().to_string();
        let http = app.client_with(None);
        let enrolled = http
            .enroll(&proto::AgentEnrollRequest {
                token: t.token.clone(),
                device_id: id.clone(),
                hostname: format!("pc-{}", &id[..8]),
                os: None,
                public_key: key.verifying_key().to_base64url(),
            })
            .await
            .unwrap();
        let server_key = SealingPublicKey::from_base64url(&enrolled.server_sealing_key).unwrap();
        Agent { app, http, id, key, server_key, nonces: AtomicU64::new(0) }
    }

    fn nonce(&self) -> String {
        format!("test-nonce-{:016}", self.nonces.fetch_add(1, Ordering::Relaxed))
    }

    async fn post_with_nonce<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        nonce: &str,
    ) -> Result<T, ClientError> {
        let now = latchkey_core::Clock::now(self.app.clock.as_ref()).unix_timestamp();
        self.http.agent_signed_post(&self.key, &self.id, now, nonce, path, body).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.post_with_nonce(path, body, &self.nonce()).await
    }

    async fn check_in(&self, version: Option<i64>) -> proto::AgentCheckInResponse {
        let body = proto::AgentCheckIn { password_version: version, managed_accounts: Vec::new() };
        self.post("/api/agent/v1/check-in", &body).await.unwrap()
    }

    fn seal(&self, job: &str, password: &str) -> String {
        let aad = proto::password_seal_aad(&self.id, job);
        let sealed =
            latchkey_crypto::seal_to(&self.server_key, proto::PASSWORD_SEAL_INFO, &aad, password.as_bytes()).unwrap();
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
    }

    async fn pending(&self, job: &str, account: &str, password: &str) -> Result<proto::AgentPendingAck, ClientError> {
        let body = proto::AgentPending { account: account.into(), sealed_password: self.seal(job, password) };
        self.post(&format!("/api/agent/v1/jobs/{job}/pending"), &body).await
    }

    async fn confirm(&self, job: &str, version: Option<i64>) -> Result<proto::AgentJobDone, ClientError> {
        self.post(&format!("/api/agent/v1/jobs/{job}/confirm"), &proto::AgentConfirm { version }).await
    }

    /// The device's admin account id.
    async fn admin_account(&self) -> String {
        let accounts = self.app.client.list_accounts("default").await.unwrap();
        accounts
            .items
            .into_iter()
            .find(|a| a.device_id.as_deref() == Some(&self.id) && a.kind == proto::AccountKind::DeviceAdmin)
            .map(|a| a.id)
            .unwrap()
    }

    async fn versions(&self) -> Vec<(i64, proto::SecretState)> {
        let account = self.admin_account().await;
        let versions = self.app.client.secret_versions("default", &account).await.unwrap();
        versions.items.into_iter().map(|v| (v.version, v.state)).collect()
    }

    async fn active_password(&self) -> Result<String, ClientError> {
        let account = self.admin_account().await;
        let body = proto::SecretReadRequest { reason: "test".into(), ticket: None };
        let r = self.app.client.reveal_secret("default", &account, &body).await?;
        Ok(r.password.clone().unwrap())
    }
}

fn rotate_job(r: &proto::AgentCheckInResponse) -> Option<String> {
    r.jobs.iter().find(|j| matches!(j.work, proto::AgentWork::RotatePassword { .. })).map(|j| j.id.clone())
}

async fn actions(app: &TestApp) -> Vec<String> {
    let q = AuditQuery { limit: Some(1000), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items.into_iter().map(|e| e.action).collect()
}

both!(first_check_in_rotates_in_two_phases, |app: TestApp| async move {
    use proto::SecretState::{Active, Pending};
    let agent = Agent::enroll(&app).await;
    let r = agent.check_in(None).await;
    assert_eq!(r.jobs.len(), 1, "{r:?}");
    let job = rotate_job(&r).unwrap();
    let proto::AgentWork::RotatePassword { policy } = &r.jobs[0].work else { panic!("{r:?}") };
    assert_eq!((policy.length, policy.lower, policy.symbols, policy.passphrase_words), (24, true, true, None));
    // The job is handed out again until it is finished, never twice at once.
    let again = agent.check_in(None).await;
    assert_eq!(again.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), vec![job.clone()]);
    assert_eq!(app.client.device("default", &agent.id).await.unwrap().open_jobs, 1);

    // Phase one: the server holds the password as pending before the device has it.
    let ack = agent.pending(&job, "latchkey-admin", "first-Secret-1").await.unwrap();
    assert_eq!(ack.version, 1);
    assert_eq!(ack.expires_at, None);
    assert_eq!(agent.versions().await, vec![(1, Pending)]);
    let not_yet = agent.active_password().await.unwrap_err();
    assert_eq!(not_yet.code(), Some(ProblemCode::NotFound));

    // Phase two.
    let done = agent.confirm(&job, Some(1)).await.unwrap();
    assert_eq!(done.state, "done");
    assert_eq!(agent.versions().await, vec![(1, Active)]);
    assert_eq!(agent.active_password().await.unwrap(), "first-Secret-1");
    let device = app.client.device("default", &agent.id).await.unwrap();
    assert!(device.last_rotated_at.is_some());
    assert_eq!(device.open_jobs, 0);
    // Nothing more to do once the agent reports the confirmed version.
    let quiet = agent.check_in(Some(1)).await;
    assert!(quiet.jobs.is_empty(), "{quiet:?}");
    assert_eq!(app.client.device("default", &agent.id).await.unwrap().password_version, Some(1));
    // A confirmed job cannot be confirmed again.
    assert_eq!(agent.confirm(&job, Some(1)).await.unwrap_err().code(), Some(ProblemCode::NotFound));

    let seen = actions(&app).await;
    let rotation: Vec<&str> = seen.iter().map(String::as_str).filter(|a| a.starts_with("rotation.")).collect();
    assert_eq!(rotation, ["rotation.request", "rotation.pending", "rotation.confirm"]);
    let all = serde_json::to_string(&app.client.list_audit(&AuditQuery::default()).await.unwrap()).unwrap();
    assert!(!all.contains("first-Secret-1"));
});

both!(check_ins_reconcile_from_the_reported_version, |app: TestApp| async move {
    use proto::SecretState::{Active, Pending, Retired};
    let agent = Agent::enroll(&app).await;
    let job = rotate_job(&agent.check_in(None).await).unwrap();
    agent.pending(&job, "latchkey-admin", "pw-one-1").await.unwrap();
    agent.confirm(&job, Some(1)).await.unwrap();

    // Past the maximum age (30 days by default) the next check-in queues a rotation.
    app.clock.advance(time::Duration::days(31));
    let job = rotate_job(&agent.check_in(Some(1)).await).unwrap();
    agent.pending(&job, "latchkey-admin", "pw-two-2").await.unwrap();
    // The agent set version 2 and recorded it, then died before confirming: the next
    // check-in that reports version 2 confirms it.
    let r = agent.check_in(Some(2)).await;
    assert!(r.jobs.is_empty(), "{r:?}");
    assert_eq!(agent.versions().await, vec![(2, Active), (1, Retired)]);
    assert_eq!(agent.active_password().await.unwrap(), "pw-two-2");

    // Next rotation: the agent dies after the pending post and before recording anything.
    // The device may hold 3 or 2; the server keeps both and rotates again.
    app.clock.advance(time::Duration::days(31));
    let job = rotate_job(&agent.check_in(Some(2)).await).unwrap();
    agent.pending(&job, "latchkey-admin", "pw-three-3").await.unwrap();
    let r = agent.check_in(Some(2)).await;
    assert_eq!(rotate_job(&r), Some(job.clone()), "the open job is sent again");
    assert_eq!(agent.versions().await, vec![(3, Pending), (2, Active), (1, Retired)]);
    agent.pending(&job, "latchkey-admin", "pw-four-4").await.unwrap();
    agent.confirm(&job, Some(4)).await.unwrap();
    assert_eq!(agent.versions().await, vec![(4, Active), (3, Retired), (2, Retired), (1, Retired)]);

    // An agent that lost its state (reports nothing) gets a rotation to a known password.
    let job = rotate_job(&agent.check_in(None).await).unwrap();
    let e = agent.confirm(&job, Some(4)).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound), "version 4 was not posted for this job");
    agent.pending(&job, "latchkey-admin", "pw-five-5").await.unwrap();
    agent.confirm(&job, Some(5)).await.unwrap();
    assert!(agent.check_in(Some(5)).await.jobs.is_empty());
});

both!(bad_job_posts_are_refused_and_change_nothing, |app: TestApp| async move {
    let agent = Agent::enroll(&app).await;
    let other = Agent::enroll(&app).await;
    let job = rotate_job(&agent.check_in(None).await).unwrap();
    let other_job = rotate_job(&other.check_in(None).await).unwrap();
    let before = crate::helpers::audit_count(&app).await;
    let code = |r: Result<proto::AgentPendingAck, ClientError>| r.unwrap_err().code();
    let pending_body =
        |sealed: String| proto::AgentPending { account: "latchkey-admin".into(), sealed_password: sealed };

    // Unknown, malformed and another device's job ids.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(code(agent.pending(&unknown, "latchkey-admin", "pw-123456").await), Some(ProblemCode::NotFound));
    assert_eq!(
        code(agent.pending("not-a-uuid", "latchkey-admin", "pw-123456").await),
        Some(ProblemCode::InvalidParameter)
    );
    assert_eq!(code(agent.pending(&other_job, "latchkey-admin", "pw-123456").await), Some(ProblemCode::NotFound));
    // The other device's own seal does not open for this device.
    let path = format!("/api/agent/v1/jobs/{other_job}/pending");
    let r: Result<proto::AgentPendingAck, _> =
        agent.post(&path, &pending_body(other.seal(&other_job, "pw-123456"))).await;
    assert_eq!(code(r), Some(ProblemCode::InvalidField));
    // A blob sealed for another job, tampered, truncated, not base64url, or too large.
    let path = format!("/api/agent/v1/jobs/{job}/pending");
    let r: Result<proto::AgentPendingAck, _> =
        agent.post(&path, &pending_body(agent.seal(&unknown, "pw-123456"))).await;
    assert_eq!(code(r), Some(ProblemCode::InvalidField));
    let mut tampered = agent.seal(&job, "pw-123456").into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let r: Result<proto::AgentPendingAck, _> =
        agent.post(&path, &pending_body(String::from_utf8(tampered).unwrap())).await;
    assert_eq!(code(r), Some(ProblemCode::InvalidField));
    for bad in ["AAAA".to_owned(), "not base64!".to_owned(), "A".repeat(90_000)] {
        let r: Result<proto::AgentPendingAck, _> = agent.post(&path, &pending_body(bad)).await;
        let c = code(r);
        assert!(matches!(c, Some(ProblemCode::InvalidField | ProblemCode::PayloadTooLarge)), "{c:?}");
    }
    // Passwords the device's tools cannot take, and bad account names.
    for pw in ["", "line\nbreak", &"x".repeat(257)] {
        let r: Result<proto::AgentPendingAck, _> = agent.post(&path, &pending_body(agent.seal(&job, pw))).await;
        assert_eq!(code(r), Some(ProblemCode::InvalidField), "{pw:?}");
    }
    for name in ["", "-rf", "root:x", "1234", &"a".repeat(33)] {
        assert_eq!(code(agent.pending(&job, name, "pw-123456").await), Some(ProblemCode::InvalidField), "{name:?}");
    }
    // Unknown fields, confirmations of versions never posted, bad versions, empty failures.
    let r: Result<proto::AgentJobDone, _> = agent
        .post(&format!("/api/agent/v1/jobs/{job}/confirm"), &serde_json::json!({"version": 1, "extra": true}))
        .await;
    assert_eq!(r.unwrap_err().code(), Some(ProblemCode::MalformedBody));
    assert_eq!(agent.confirm(&job, Some(7)).await.unwrap_err().code(), Some(ProblemCode::NotFound));
    assert_eq!(agent.confirm(&job, Some(0)).await.unwrap_err().code(), Some(ProblemCode::InvalidField));
    assert_eq!(agent.confirm(&job, None).await.unwrap_err().code(), Some(ProblemCode::Conflict));
    let r: Result<proto::AgentJobDone, _> =
        agent.post(&format!("/api/agent/v1/jobs/{job}/fail"), &proto::AgentFailure { error: " ".into() }).await;
    assert_eq!(r.unwrap_err().code(), Some(ProblemCode::InvalidField));

    // Nothing was stored: no account, no version, no audit event; the job is still open.
    assert!(app.client.list_accounts("default").await.unwrap().items.is_empty());
    assert_eq!(crate::helpers::audit_count(&app).await, before);
    assert_eq!(rotate_job(&agent.check_in(None).await), Some(job.clone()));

    // A replayed pending post is refused and stores no second version.
    let body = pending_body(agent.seal(&job, "pw-replayed-1"));
    let first: proto::AgentPendingAck = agent.post_with_nonce(&path, &body, "replay-nonce-00000001").await.unwrap();
    let replay: Result<proto::AgentPendingAck, _> = agent.post_with_nonce(&path, &body, "replay-nonce-00000001").await;
    assert_eq!(code(replay), Some(ProblemCode::Unauthenticated));
    assert_eq!(agent.versions().await, vec![(first.version, proto::SecretState::Pending)]);
});

both!(a_failed_rotation_is_audited_and_queued_again, |app: TestApp| async move {
    let agent = Agent::enroll(&app).await;
    let job = rotate_job(&agent.check_in(None).await).unwrap();
    let r: proto::AgentJobDone = agent
        .post(
            &format!("/api/agent/v1/jobs/{job}/fail"),
            &proto::AgentFailure { error: "chpasswd exited with 1".into() },
        )
        .await
        .unwrap();
    assert_eq!(r.state, "failed");
    let q = AuditQuery { action: Some("rotation.fail".into()), ..Default::default() };
    let events = app.client.list_audit(&q).await.unwrap().items;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, "failed");
    // A failed job takes no more posts; the next check-in queues a new rotation.
    assert_eq!(
        agent.pending(&job, "latchkey-admin", "pw-123456").await.unwrap_err().code(),
        Some(ProblemCode::NotFound)
    );
    let next = rotate_job(&agent.check_in(None).await).unwrap();
    assert_ne!(next, job);
});
