//! Device agents: enrollment tokens (admin API) and enrollment (agent API).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use latchkey_core::model::Device;
use latchkey_core::{Action, DeviceId, DisplayName, NewAuditEvent, ObjectType};
use latchkey_crypto::DeviceVerifyingKey;
use latchkey_proto as proto;
use latchkey_proto::ProblemCode;
use latchkey_store::{Enrollment, NewEnrollmentToken, StoreError};
use secrecy::ExposeSecret;

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{ApiJson, RequestFacts};
use crate::state::AppState;

/// The keyed-hash label of enrollment tokens.
const ENROLLMENT_LABEL: &str = "enrollment-token";
/// Every enrollment token starts with this.
const ENROLLMENT_PREFIX: &str = "lk_enroll";
/// Default lifetime of an enrollment token.
const DEFAULT_LIFETIME_SECS: i64 = 24 * 3600;

/// Create a one-time enrollment token for a device agent in this tenant; shown once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/enrollment-tokens", tag = "devices",
    request_body = proto::EnrollmentTokenCreate, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::EnrollmentTokenCreated), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn create_enrollment_token(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::EnrollmentTokenCreate>,
) -> Result<(StatusCode, Json<proto::EnrollmentTokenCreated>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let lifetime = body.expires_in_seconds.unwrap_or(DEFAULT_LIFETIME_SECS);
    if !(60..=30 * 86_400).contains(&lifetime) {
        return Err(ApiError::invalid("expiresInSeconds must be between 60 and 2592000"));
    }
    let now = state.clock().now();
    let expires_at = now + time::Duration::seconds(lifetime);
    let token = latchkey_crypto::generate_token(ENROLLMENT_PREFIX);
    let token_hash = state.keyring().keyed_hash(ENROLLMENT_LABEL, token.expose_secret().as_bytes());
    let id = uuid::Uuid::new_v4().to_string();
    let event = admin
        .event(&state, Action::EnrollmentTokenCreate, ObjectType::EnrollmentToken)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "expiresInSeconds": lifetime }));
    state
        .store()
        .create_enrollment_token(
            NewEnrollmentToken {
                id: id.clone(),
                tenant_id: tenant.id.clone(),
                token_hash,
                created_at: now,
                expires_at,
            },
            event,
        )
        .await
        .map_err(|e| ApiError::store("enrollment token", e))?;
    Ok((
        StatusCode::CREATED,
        Json(proto::EnrollmentTokenCreated {
            id,
            tenant: tenant.slug,
            token: token.expose_secret().to_owned(),
            expires_at,
        }),
    ))
}

/// Enroll a device agent with a one-time token: registers the device's public signing key
/// and answers the server's sealing key. The token is consumed in the same transaction.
#[utoipa::path(post, path = "/api/agent/v1/enroll", tag = "agent", request_body = proto::AgentEnrollRequest,
    responses((status = 201, body = proto::AgentEnrollResponse), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn enroll(
    State(state): State<AppState>,
    facts: RequestFacts,
    ApiJson(body): ApiJson<proto::AgentEnrollRequest>,
) -> Result<(StatusCode, Json<proto::AgentEnrollResponse>), ApiError> {
    let invalid_token = || {
        ApiError::Client(
            ProblemCode::Unauthenticated,
            "the enrollment token is invalid, expired or already used".into(),
        )
    };
    if !body.token.starts_with(ENROLLMENT_PREFIX) || body.token.len() > 200 {
        return Err(invalid_token());
    }
    let device_id = DeviceId::parse(&body.device_id)?;
    let hostname = DisplayName::parse("hostname", &body.hostname)?;
    let os = dto::optional_text("os", body.os.clone(), 128)?;
    let public_key = DeviceVerifyingKey::from_base64url(&body.public_key)
        .map_err(|_| ApiError::invalid("publicKey is not a base64url Ed25519 public key"))?;
    let token_hash = state.keyring().keyed_hash(ENROLLMENT_LABEL, body.token.as_bytes());
    let now = state.clock().now();
    let mut event = NewAuditEvent::new(now, format!("agent:{device_id}"), Action::DeviceEnroll, ObjectType::Device);
    event.client_addr = facts.client_addr;
    event.request_id = facts.request_id;
    let enrollment = Enrollment {
        device_id: device_id.to_string(),
        hostname_key: hostname.key(),
        hostname: hostname.as_str().to_owned(),
        os,
        public_key: public_key.to_base64url(),
    };
    let device = match state.store().enroll_device(token_hash, now, enrollment, event).await {
        Ok(d) => d,
        Err(StoreError::NotFound) => return Err(invalid_token()),
        Err(e) => return Err(ApiError::store("device", e)),
    };
    let tenant = state.store().tenant_by_id(&device.tenant_id).await.map_err(|e| ApiError::store("tenant", e))?;
    Ok((
        StatusCode::CREATED,
        Json(proto::AgentEnrollResponse {
            device_id: device.id,
            tenant: tenant.slug,
            poll_interval_seconds: device.poll_interval_secs,
            server_sealing_key: state.sealing().public_key().to_base64url(),
        }),
    ))
}

/// How far a signed request's timestamp may be from the server's clock.
const MAX_SKEW_SECS: i64 = 300;

fn unauthenticated(why: &str) -> ApiError {
    ApiError::Client(ProblemCode::Unauthenticated, why.to_owned())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthenticated(&format!("the {name} header is required on agent requests")))
}

/// Check a signed agent request: the device is enrolled, the timestamp is within 5 minutes and
/// the signature over the request verifies with the device's key. Nothing is written yet: see
/// [`SignedRequest::accept`].
async fn verify_agent(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignedRequest, ApiError> {
    use latchkey_proto::agent_headers as h;
    let device_id =
        DeviceId::parse(header(headers, h::DEVICE)?).map_err(|_| unauthenticated("the device id is not a UUID"))?;
    let timestamp: i64 =
        header(headers, h::TIMESTAMP)?.parse().map_err(|_| unauthenticated("the timestamp is not Unix seconds"))?;
    let nonce = header(headers, h::NONCE)?;
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unauthenticated("the nonce must be 16-64 characters of A-Z, a-z, 0-9, - and _"));
    }
    let signature =
        base64_url(header(headers, h::SIGNATURE)?).ok_or_else(|| unauthenticated("the signature is not base64url"))?;
    let now = state.clock().now();
    if (now.unix_timestamp() - timestamp).abs() > MAX_SKEW_SECS {
        return Err(unauthenticated("the request timestamp is more than 5 minutes off the server's clock"));
    }
    let device = match state.store().device_for_agent(&device_id.to_string()).await {
        Ok(d) => d,
        Err(StoreError::NotFound) => return Err(unauthenticated("the signature does not verify")),
        Err(e) => return Err(ApiError::store("device", e)),
    };
    let key = device
        .agent_public_key
        .as_deref()
        .and_then(|k| DeviceVerifyingKey::from_base64url(k).ok())
        .ok_or_else(|| ApiError::Internal(format!("device {device_id} has an unreadable public key")))?;
    let path = uri.path_and_query().map_or_else(|| uri.path(), |pq| pq.as_str());
    let signed =
        latchkey_crypto::request_signing_bytes(method.as_str(), path, &device_id.to_string(), timestamp, nonce, body);
    if !key.verify(&signed, &signature) {
        return Err(unauthenticated("the signature does not verify"));
    }
    Ok(SignedRequest { device, nonce: nonce.to_owned() })
}

/// A request whose signature verified; its nonce is not yet spent.
struct SignedRequest {
    device: Device,
    nonce: String,
}

impl SignedRequest {
    /// Spend the nonce (a replay is refused) and record the device's check-in time. Called
    /// after the body is validated, so a refused request changes nothing.
    async fn accept(self, state: &AppState) -> Result<Device, ApiError> {
        let now = state.clock().now();
        let nonce_expiry = now + time::Duration::seconds(2 * MAX_SKEW_SECS);
        match state.store().record_agent_request(&self.device.id, &self.nonce, now, nonce_expiry).await {
            Ok(()) => Ok(self.device),
            Err(StoreError::Conflict(_)) => Err(unauthenticated("replayed request: the nonce was used before")),
            Err(e) => Err(ApiError::store("device", e)),
        }
    }
}

fn base64_url(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// A signed check-in: the agent reports its state; the server records the time and answers
/// when to come back.
#[utoipa::path(post, path = "/api/agent/v1/check-in", tag = "agent", request_body = proto::AgentCheckIn,
    params(
        ("x-latchkey-device" = String, Header, description = "device id"),
        ("x-latchkey-timestamp" = i64, Header, description = "Unix seconds"),
        ("x-latchkey-nonce" = String, Header, description = "single-use nonce"),
        ("x-latchkey-signature" = String, Header, description = "Ed25519 signature (base64url)"),
    ),
    responses((status = 200, body = proto::AgentCheckInResponse), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 413, body = proto::Problem)))]
pub async fn check_in(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<proto::AgentCheckInResponse>, ApiError> {
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::Client(ProblemCode::PayloadTooLarge, "the request body is larger than the limit".into())
        } else {
            ApiError::Client(ProblemCode::MalformedBody, r.body_text())
        }
    })?;
    let signed = verify_agent(&state, &method, &uri, &headers, &body).await?;
    let report: proto::AgentCheckIn = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Client(ProblemCode::MalformedBody, crate::extract::redact_values(&e.to_string())))?;
    if report.managed_accounts.len() > 64 || report.managed_accounts.iter().any(|a| a.is_empty() || a.len() > 64) {
        return Err(ApiError::invalid("managedAccounts holds at most 64 names of 1-64 characters"));
    }
    let device = signed.accept(&state).await?;
    Ok(Json(proto::AgentCheckInResponse {
        device_id: device.id,
        poll_interval_seconds: device.poll_interval_secs,
        server_time: state.clock().now(),
    }))
}
