//! A device agent played by a test: enrolls, checks in and carries out jobs with signed
//! requests timestamped by the test clock.

use std::sync::atomic::{AtomicU64, Ordering};

use latchkey_client::{Client, ClientError};
use latchkey_crypto::{DeviceSigningKey, SealingPublicKey};
use latchkey_proto as proto;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::helpers::TestApp;

/// The local name of the managed admin account.
pub const ADMIN_ACCOUNT: &str = "latchkey-admin";

pub struct Agent<'a> {
    app: &'a TestApp,
    http: Client,
    pub id: String,
    key: DeviceSigningKey,
    server_key: SealingPublicKey,
    nonces: AtomicU64,
}

impl<'a> Agent<'a> {
    /// Enroll a fresh device in `tenant`.
    pub async fn enroll(app: &'a TestApp, tenant: &str) -> Agent<'a> {
        let t = app.client.create_enrollment_token(tenant, &proto::EnrollmentTokenCreate::default()).await.unwrap();
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

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        let now = latchkey_core::Clock::now(self.app.clock.as_ref()).unix_timestamp();
        let nonce = format!("agent-nonce-{:016}", self.nonces.fetch_add(1, Ordering::Relaxed));
        self.http.agent_signed_post(&self.key, &self.id, now, &nonce, path, body).await
    }

    pub async fn check_in(&self, version: Option<i64>) -> proto::AgentCheckInResponse {
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

    pub async fn pending(&self, job: &str, account: &str, password: &str) -> proto::AgentPendingAck {
        let body = proto::AgentPending { account: account.into(), sealed_password: self.seal(job, password) };
        self.post(&format!("/api/agent/v1/jobs/{job}/pending"), &body).await.unwrap()
    }

    pub async fn confirm(&self, job: &str, version: Option<i64>) {
        let _: proto::AgentJobDone =
            self.post(&format!("/api/agent/v1/jobs/{job}/confirm"), &proto::AgentConfirm { version }).await.unwrap();
    }

    /// Check in reporting `version` and carry out the rotation it hands out with `password`;
    /// returns the version set.
    pub async fn rotate(&self, version: Option<i64>, password: &str) -> i64 {
        let r = self.check_in(version).await;
        let job = job_of(&r, Kind::Rotate).unwrap_or_else(|| panic!("no rotation job: {r:?}"));
        let ack = self.pending(&job, ADMIN_ACCOUNT, password).await;
        self.confirm(&job, Some(ack.version)).await;
        ack.version
    }

    /// Check in and create the support account a job asks for, named `username` with
    /// `password`; returns its expiry.
    pub async fn create_support(&self, version: Option<i64>, username: &str, password: &str) -> time::OffsetDateTime {
        let r = self.check_in(version).await;
        let job = job_of(&r, Kind::CreateSupport).unwrap_or_else(|| panic!("no support job: {r:?}"));
        let ack = self.pending(&job, username, password).await;
        self.confirm(&job, Some(ack.version)).await;
        ack.expires_at.unwrap()
    }
}

/// A kind of agent job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rotate,
    CreateSupport,
    RemoveSupport,
}

/// The id of the first job of a kind in a check-in answer.
pub fn job_of(r: &proto::AgentCheckInResponse, kind: Kind) -> Option<String> {
    r.jobs
        .iter()
        .find(|j| {
            matches!(
                (&j.work, kind),
                (proto::AgentWork::RotatePassword { .. }, Kind::Rotate)
                    | (proto::AgentWork::CreateSupportAccount { .. }, Kind::CreateSupport)
                    | (proto::AgentWork::RemoveSupportAccount { .. }, Kind::RemoveSupport)
            )
        })
        .map(|j| j.id.clone())
}

/// Move the test clock forward to the next whole second, so times the store keeps in
/// milliseconds compare exactly.
pub fn align_clock(app: &TestApp) {
    let now = latchkey_core::Clock::now(app.clock.as_ref());
    let nanos = now.nanosecond();
    if nanos != 0 {
        app.clock.advance(time::Duration::nanoseconds(i64::from(1_000_000_000 - nanos)));
    }
}
