//! Device agents: enrollment tokens (admin API) and enrollment (agent API).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::{Action, DeviceId, DisplayName, ObjectType};
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
    let event = facts.event(now, format!("agent:{device_id}"), Action::DeviceEnroll, ObjectType::Device);
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
