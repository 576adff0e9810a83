//! A typed HTTP client for the Latchkey native API, used by the CLI, the agent and the tests.
//! Errors carry the server's problem document.

mod access;
mod applications;
mod jit;

use latchkey_proto::{self as proto, Problem};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection failed.
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// The server answered with a problem document.
    #[error("{} ({}): {}", .problem.title, .problem.status, .problem.detail.as_deref().unwrap_or(""))]
    Api { problem: Problem },
    /// The server answered something that is not the expected JSON.
    #[error("unexpected answer from the server (HTTP {status}): {message}")]
    Unexpected { status: u16, message: String },
    /// A setting of the client is not usable.
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The problem code, when the server answered with a problem document.
    pub fn code(&self) -> Option<proto::ProblemCode> {
        match self {
            ClientError::Api { problem } => Some(problem.code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { problem } => Some(problem.status),
            ClientError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Filters for the audit list (see `GET /api/v1/audit`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Newest first: events before this sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// A client of one server with one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// Percent-encode one path segment.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str, token: Option<String>) -> Result<Self> {
        Self::builder(base_url, token, None)
    }

    /// A client that also trusts the CA certificate(s) in `ca_pem` (for a private TLS CA).
    pub fn builder(base_url: &str, token: Option<String>, ca_pem: Option<&[u8]>) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Config(format!("server URL must start with http:// or https://, got `{base}`")));
        }
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Config(format!("CA certificate: {e}")))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(Self { http: b.build()?, base, token })
    }

    /// The server URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Send a request and decode a JSON answer (or the problem document).
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Unexpected { status: status.as_u16(), message: e.to_string() })
    }

    /// Send a request that answers with no body (204).
    pub async fn call_empty<B: Serialize + ?Sized>(&self, method: Method, path: &str, body: Option<&B>) -> Result<()> {
        self.send(method, path, body).await.map(|_| ())
    }

    /// Send a request and return the raw response text (for `/metrics` and the OpenAPI document).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let resp = self.send::<()>(Method::GET, path, None).await?;
        Ok(resp.text().await?)
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await?;
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(problem) => Err(ClientError::Api { problem }),
            Err(_) => Err(ClientError::Unexpected {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<proto::Health> {
        self.call::<(), _>(Method::GET, "/healthz", None).await
    }

    /// `GET /readyz`.
    pub async fn ready(&self) -> Result<proto::Health> {
        self.call::<(), _>(Method::GET, "/readyz", None).await
    }

    pub async fn create_tenant(&self, body: &proto::TenantCreate) -> Result<proto::Tenant> {
        self.call(Method::POST, "/api/v1/tenants", Some(body)).await
    }

    pub async fn list_tenants(&self) -> Result<proto::ListResponse<proto::Tenant>> {
        self.call::<(), _>(Method::GET, "/api/v1/tenants", None).await
    }

    pub async fn tenant(&self, tenant: &str) -> Result<proto::Tenant> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}", seg(tenant)), None).await
    }

    pub async fn create_device(&self, tenant: &str, body: &proto::DeviceCreate) -> Result<proto::Device> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/devices", seg(tenant)), Some(body)).await
    }

    pub async fn list_devices(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<proto::ListResponse<proto::Device>> {
        let mut path = format!("/api/v1/tenants/{}/devices?limit={}", seg(tenant), limit.unwrap_or(100));
        if let Some(a) = after {
            path.push_str(&format!("&after={}", seg(a)));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn device(&self, tenant: &str, device_id: &str) -> Result<proto::Device> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/devices/{}", seg(tenant), seg(device_id)), None)
            .await
    }

    pub async fn delete_device(&self, tenant: &str, device_id: &str) -> Result<()> {
        self.call_empty::<()>(
            Method::DELETE,
            &format!("/api/v1/tenants/{}/devices/{}", seg(tenant), seg(device_id)),
            None,
        )
        .await
    }

    /// Create a one-time enrollment token for a device agent.
    pub async fn create_enrollment_token(
        &self,
        tenant: &str,
        body: &proto::EnrollmentTokenCreate,
    ) -> Result<proto::EnrollmentTokenCreated> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/enrollment-tokens", seg(tenant)), Some(body)).await
    }

    /// Enroll this device (agent API; the token in the body is the credential).
    pub async fn enroll(&self, body: &proto::AgentEnrollRequest) -> Result<proto::AgentEnrollResponse> {
        self.call(Method::POST, "/api/agent/v1/enroll", Some(body)).await
    }

    /// Send a signed agent request (`POST`, JSON body) as `device_id` with its key, at
    /// `timestamp` (Unix seconds) with `nonce`. Agents use [`Client::agent_check_in`]; this is
    /// the building block, public so tests can replay and skew requests.
    pub async fn agent_signed_post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        key: &latchkey_crypto::DeviceSigningKey,
        device_id: &str,
        timestamp: i64,
        nonce: &str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        use latchkey_proto::agent_headers as h;
        let bytes =
            serde_json::to_vec(body).map_err(|e| ClientError::Config(format!("cannot encode the body: {e}")))?;
        let signed = latchkey_crypto::request_signing_bytes("POST", path, device_id, timestamp, nonce, &bytes);
        let signature = base64url(&key.sign(&signed));
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(h::DEVICE, device_id)
            .header(h::TIMESTAMP, timestamp.to_string())
            .header(h::NONCE, nonce)
            .header(h::SIGNATURE, signature)
            .body(bytes)
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<Problem>(&bytes) {
                Ok(problem) => ClientError::Api { problem },
                Err(_) => ClientError::Unexpected {
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                },
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Unexpected { status: status.as_u16(), message: e.to_string() })
    }

    /// A signed agent request, timestamped now with a fresh nonce.
    pub async fn agent_post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        key: &latchkey_crypto::DeviceSigningKey,
        device_id: &str,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| ClientError::Config("the system clock is before 1970".into()))?
            .as_secs() as i64;
        let nonce = latchkey_crypto::generate_token("n");
        self.agent_signed_post(key, device_id, now, secrecy::ExposeSecret::expose_secret(&nonce), path, body).await
    }

    /// A signed check-in.
    pub async fn agent_check_in(
        &self,
        key: &latchkey_crypto::DeviceSigningKey,
        device_id: &str,
        body: &proto::AgentCheckIn,
    ) -> Result<proto::AgentCheckInResponse> {
        self.agent_post(key, device_id, "/api/agent/v1/check-in", body).await
    }

    /// Phase one of a job: post the sealed password as a pending version.
    pub async fn agent_post_pending(
        &self,
        key: &latchkey_crypto::DeviceSigningKey,
        device_id: &str,
        job_id: &str,
        body: &proto::AgentPending,
    ) -> Result<proto::AgentPendingAck> {
        self.agent_post(key, device_id, &format!("/api/agent/v1/jobs/{}/pending", seg(job_id)), body).await
    }

    /// Phase two of a job: confirm the version set (or the removal done).
    pub async fn agent_confirm(
        &self,
        key: &latchkey_crypto::DeviceSigningKey,
        device_id: &str,
        job_id: &str,
        version: Option<i64>,
    ) -> Result<proto::AgentJobDone> {
        let body = proto::AgentConfirm { version };
        self.agent_post(key, device_id, &format!("/api/agent/v1/jobs/{}/confirm", seg(job_id)), &body).await
    }

    /// Report that a job could not be done.
    pub async fn agent_fail(
        &self,
        key: &latchkey_crypto::DeviceSigningKey,
        device_id: &str,
        job_id: &str,
        error: &str,
    ) -> Result<proto::AgentJobDone> {
        let body = proto::AgentFailure { error: error.to_owned() };
        self.agent_post(key, device_id, &format!("/api/agent/v1/jobs/{}/fail", seg(job_id)), &body).await
    }

    pub async fn create_group(&self, tenant: &str, body: &proto::GroupCreate) -> Result<proto::Group> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/groups", seg(tenant)), Some(body)).await
    }

    pub async fn list_groups(&self, tenant: &str) -> Result<proto::ListResponse<proto::Group>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/groups", seg(tenant)), None).await
    }

    pub async fn group_members(&self, tenant: &str, group_id: &str) -> Result<proto::ListResponse<proto::GroupMember>> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/tenants/{}/groups/{}/members", seg(tenant), seg(group_id)),
            None,
        )
        .await
    }

    pub async fn add_group_member(&self, tenant: &str, group_id: &str, member: &proto::GroupMember) -> Result<()> {
        self.call_empty(
            Method::POST,
            &format!("/api/v1/tenants/{}/groups/{}/members", seg(tenant), seg(group_id)),
            Some(member),
        )
        .await
    }

    pub async fn remove_group_member(&self, tenant: &str, group_id: &str, member: &proto::GroupMember) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/api/v1/tenants/{}/groups/{}/members", seg(tenant), seg(group_id)),
            Some(member),
        )
        .await
    }

    pub async fn create_user(&self, tenant: &str, body: &proto::UserCreate) -> Result<proto::User> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/users", seg(tenant)), Some(body)).await
    }

    pub async fn list_users(&self, tenant: &str) -> Result<proto::ListResponse<proto::User>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/users", seg(tenant)), None).await
    }

    /// `POST /api/v1/tenants/{tenant}/directory/sync`: sync the tenant's directory now.
    pub async fn directory_sync(&self, tenant: &str) -> Result<proto::DirectorySyncRun> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/tenants/{}/directory/sync", seg(tenant)), None).await
    }

    /// `GET /api/v1/tenants/{tenant}/directory/sync`: the directory and its recent sync runs.
    pub async fn directory_sync_status(&self, tenant: &str) -> Result<proto::DirectorySyncStatus> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/directory/sync", seg(tenant)), None).await
    }

    pub async fn create_account(&self, tenant: &str, body: &proto::AccountCreate) -> Result<proto::Account> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/accounts", seg(tenant)), Some(body)).await
    }

    pub async fn list_accounts(&self, tenant: &str) -> Result<proto::ListResponse<proto::Account>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/accounts", seg(tenant)), None).await
    }

    pub async fn account(&self, tenant: &str, account_id: &str) -> Result<proto::Account> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/accounts/{}", seg(tenant), seg(account_id)), None)
            .await
    }

    pub async fn set_secret(
        &self,
        tenant: &str,
        account_id: &str,
        body: &proto::SecretSetRequest,
    ) -> Result<proto::SecretVersionInfo> {
        self.call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/accounts/{}/secret", seg(tenant), seg(account_id)),
            Some(body),
        )
        .await
    }

    pub async fn secret_versions(
        &self,
        tenant: &str,
        account_id: &str,
    ) -> Result<proto::ListResponse<proto::SecretVersionInfo>> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/tenants/{}/accounts/{}/secret", seg(tenant), seg(account_id)),
            None,
        )
        .await
    }

    /// Read an account's current secret (audited, reason required).
    pub async fn reveal_secret(
        &self,
        tenant: &str,
        account_id: &str,
        body: &proto::SecretReadRequest,
    ) -> Result<proto::RevealedSecret> {
        self.call(
            Method::POST,
            &format!("/api/v1/tenants/{}/accounts/{}/secret/reveal", seg(tenant), seg(account_id)),
            Some(body),
        )
        .await
    }

    pub async fn create_api_client(
        &self,
        tenant: &str,
        body: &proto::ApiClientCreate,
    ) -> Result<proto::ApiClientCreated> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/api-clients", seg(tenant)), Some(body)).await
    }

    pub async fn list_api_clients(&self, tenant: &str) -> Result<proto::ListResponse<proto::ApiClient>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/api-clients", seg(tenant)), None).await
    }

    /// A tenant's notification outbox, newest first.
    pub async fn list_notifications(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<proto::ListResponse<proto::OutboxNotification>> {
        let mut path = format!("/api/v1/tenants/{}/notifications?limit={}", seg(tenant), limit.unwrap_or(100));
        if let Some(a) = after {
            path.push_str(&format!("&after={}", seg(a)));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn create_admin_token(&self, body: &proto::AdminTokenCreate) -> Result<proto::AdminTokenCreated> {
        self.call(Method::POST, "/api/v1/admin-tokens", Some(body)).await
    }

    pub async fn list_audit(&self, q: &AuditQuery) -> Result<proto::ListResponse<proto::AuditEvent>> {
        let query = serde_urlencoded_pairs(q);
        let path = if query.is_empty() { "/api/v1/audit".to_owned() } else { format!("/api/v1/audit?{query}") };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn verify_audit(&self) -> Result<proto::AuditVerification> {
        self.call::<(), _>(Method::GET, "/api/v1/audit/verify", None).await
    }

    pub async fn vault_status(&self) -> Result<proto::VaultStatus> {
        self.call::<(), _>(Method::GET, "/api/v1/vault", None).await
    }

    pub async fn add_vault_key(&self) -> Result<proto::VaultStatus> {
        self.call::<(), _>(Method::POST, "/api/v1/vault/keys", None).await
    }

    pub async fn rewrap_vault(&self, limit: i64) -> Result<proto::RewrapProgress> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/vault/rewrap?limit={limit}"), None).await
    }

    pub async fn retire_vault_key(&self, key_id: &str) -> Result<proto::VaultStatus> {
        self.call::<(), _>(Method::DELETE, &format!("/api/v1/vault/keys/{}", seg(key_id)), None).await
    }
}

/// Base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `key=value&…` for the fields that are set.
fn serde_urlencoded_pairs(q: &AuditQuery) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(q) else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={}", seg(k), seg(&v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether an error is a given HTTP status (for callers that branch on 404 and the like).
pub fn is_status(e: &ClientError, status: StatusCode) -> bool {
    e.status() == Some(status.as_u16())
}

/// Device access: rotation policies, device jobs, the device admin password and support
/// accounts.
impl Client {
    /// Set the tenant's rotation policy (missing fields take the default).
    pub async fn set_tenant_rotation_policy(
        &self,
        tenant: &str,
        body: &proto::RotationPolicySet,
    ) -> Result<proto::RotationPolicy> {
        self.call(Method::PUT, &format!("/api/v1/tenants/{}/rotation-policy", seg(tenant)), Some(body)).await
    }

    /// Set a device group's rotation policy (missing fields take the default).
    pub async fn set_group_rotation_policy(
        &self,
        tenant: &str,
        group_id: &str,
        body: &proto::RotationPolicySet,
    ) -> Result<proto::RotationPolicy> {
        self.call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/groups/{}/rotation-policy", seg(tenant), seg(group_id)),
            Some(body),
        )
        .await
    }

    /// The tenant's rotation policies.
    pub async fn rotation_policies(&self, tenant: &str) -> Result<proto::ListResponse<proto::RotationPolicy>> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/rotation-policies", seg(tenant)), None).await
    }

    /// Queue a rotation of a device's admin password (the open one when one is queued).
    pub async fn rotate_device(&self, tenant: &str, device_id: &str) -> Result<proto::DeviceJob> {
        self.call::<(), _>(
            Method::POST,
            &format!("/api/v1/tenants/{}/devices/{}/rotate", seg(tenant), seg(device_id)),
            None,
        )
        .await
    }

    /// A device's jobs, newest first.
    pub async fn device_jobs(
        &self,
        tenant: &str,
        device_id: &str,
        limit: Option<i64>,
    ) -> Result<proto::ListResponse<proto::DeviceJob>> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/tenants/{}/devices/{}/jobs?limit={}", seg(tenant), seg(device_id), limit.unwrap_or(100)),
            None,
        )
        .await
    }

    /// Read a device's admin password, active or a version from history (audited, reason
    /// required).
    pub async fn reveal_device_password(
        &self,
        tenant: &str,
        device_id: &str,
        body: &proto::DevicePasswordRequest,
    ) -> Result<proto::RevealedSecret> {
        self.call(
            Method::POST,
            &format!("/api/v1/tenants/{}/devices/{}/password/reveal", seg(tenant), seg(device_id)),
            Some(body),
        )
        .await
    }

    /// The versions of a device's admin password (never values).
    pub async fn device_password_history(
        &self,
        tenant: &str,
        device_id: &str,
    ) -> Result<proto::ListResponse<proto::SecretVersionInfo>> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/tenants/{}/devices/{}/password/history", seg(tenant), seg(device_id)),
            None,
        )
        .await
    }

    /// Ask for a support account on a device.
    pub async fn request_support_account(
        &self,
        tenant: &str,
        device_id: &str,
    ) -> Result<proto::SupportAccountRequested> {
        self.call::<(), _>(
            Method::POST,
            &format!("/api/v1/tenants/{}/devices/{}/support-account", seg(tenant), seg(device_id)),
            None,
        )
        .await
    }

    /// Reveal a device's live support account (audited, reason required).
    pub async fn reveal_support_account(
        &self,
        tenant: &str,
        device_id: &str,
        body: &proto::SecretReadRequest,
    ) -> Result<proto::RevealedSupportAccount> {
        self.call(
            Method::POST,
            &format!("/api/v1/tenants/{}/devices/{}/support-account/reveal", seg(tenant), seg(device_id)),
            Some(body),
        )
        .await
    }
}

/// People signing in: sessions and local passwords.
impl Client {
    /// Sign in; the answer holds the session token (shown once).
    pub async fn sign_in(&self, body: &proto::SignInRequest) -> Result<proto::SignInResponse> {
        self.call(Method::POST, "/api/v1/sign-in", Some(body)).await
    }

    /// End this client's session.
    pub async fn sign_out(&self) -> Result<()> {
        self.call_empty::<()>(Method::POST, "/api/v1/sign-out", None).await
    }

    /// This client's session and who it belongs to.
    pub async fn me(&self) -> Result<proto::Me> {
        self.call::<(), _>(Method::GET, "/api/v1/me", None).await
    }

    /// Set a local user's password (admin).
    pub async fn set_user_password(&self, tenant: &str, user_id: &str, body: &proto::PasswordSetRequest) -> Result<()> {
        self.call_empty(
            Method::PUT,
            &format!("/api/v1/tenants/{}/users/{}/password", seg(tenant), seg(user_id)),
            Some(body),
        )
        .await
    }

    /// A user's roles (admin).
    pub async fn user_roles(&self, tenant: &str, user_id: &str) -> Result<proto::UserRoles> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/users/{}/roles", seg(tenant), seg(user_id)), None)
            .await
    }

    /// Replace a user's roles (admin).
    pub async fn set_user_roles(&self, tenant: &str, user_id: &str, roles: &[&str]) -> Result<proto::UserRoles> {
        let body = proto::UserRoles { roles: roles.iter().map(|r| (*r).to_owned()).collect() };
        self.call(Method::PUT, &format!("/api/v1/tenants/{}/users/{}/roles", seg(tenant), seg(user_id)), Some(&body))
            .await
    }
}
