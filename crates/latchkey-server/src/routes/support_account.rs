//! Support accounts on devices: request one (the agent creates it at its next check-in) and
//! reveal the live one. The native routes and the RealmJoin-compatible API share the helpers
//! here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::access::Operation;
use latchkey_core::model::Device;
use latchkey_core::{Action, DeviceId, NewAuditEvent, ObjectType, Outcome, Reason, TimeSpan};
use latchkey_proto as proto;
use latchkey_store::{StoreError, SupportRequest};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::dto;
use super::governed_read::require_grant;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::vault;

/// A device not seen for more than this many poll intervals has no estimated wait.
const STALE_INTERVALS: i32 = 7;

/// The time until the device's next expected check-in (last check-in + poll interval − now,
/// at least zero); `None` when it was never seen or not for more than 7 poll intervals.
pub(crate) fn estimated_wait(device: &Device, now: OffsetDateTime) -> Option<TimeSpan> {
    let seen = device.last_seen_at?;
    let interval = Duration::seconds(device.poll_interval_secs.max(1));
    if now - seen > interval * STALE_INTERVALS {
        return None;
    }
    Some(TimeSpan::from_duration((seen + interval - now).max(Duration::ZERO)))
}

/// Ask for a support account on `device` (audited by the store with `event`); returns the
/// answer and the estimated wait (zero when an account is ready).
pub(crate) async fn request(
    state: &AppState,
    device: &Device,
    event: NewAuditEvent,
) -> Result<(SupportRequest, Option<TimeSpan>), StoreError> {
    let now = state.clock().now();
    let answer = state.store().request_support_account(&device.tenant_id, &device.id, now, event).await?;
    let wait = match answer {
        SupportRequest::Ready => Some(TimeSpan::ZERO),
        _ => estimated_wait(device, now),
    };
    Ok((answer, wait))
}

/// A live support account with its password.
pub(crate) struct LiveSupport {
    pub account_id: String,
    pub username: String,
    pub version: i64,
    pub expires_at: OffsetDateTime,
    pub password: Zeroizing<String>,
}

/// Read the device's live support account through the audited read (`event` gets the
/// account id; the store writes it in the same transaction as the read). `None` when the
/// device has no live support account.
pub(crate) async fn read_live(
    state: &AppState,
    tenant_id: &str,
    device_id: &str,
    event: NewAuditEvent,
) -> Result<Option<LiveSupport>, StoreError> {
    let now = state.clock().now();
    let Some(live) = state.store().live_support_account(tenant_id, device_id, now).await? else {
        return Ok(None);
    };
    let Some(expires_at) = live.account.expires_at else { return Ok(None) };
    let event = event.object(live.account.id.clone());
    let keyring = state.keyring_handle();
    let read = state
        .store()
        .read_secret_audited(tenant_id, &live.account.id, event, move |account, version| {
            let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
            let opened = vault::open_version(&ring, version).map_err(|e| e.to_string())?;
            let password = opened.password.ok_or_else(|| "the support account has no password".to_owned())?;
            Ok(LiveSupport {
                account_id: account.id.clone(),
                username: account.name.clone(),
                version: version.version,
                expires_at,
                password,
            })
        })
        .await;
    match read {
        Ok(live) => {
            state.metrics().secret_read("success");
            Ok(Some(live))
        }
        // Removed between the two reads.
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => {
            state.metrics().secret_read("failed");
            Err(e)
        }
    }
}

/// The device with this id in this tenant; a malformed id is a 400, an unknown one a 404.
pub(crate) async fn tenant_device(state: &AppState, tenant_id: &str, raw: &str) -> Result<Device, ApiError> {
    let id = DeviceId::parse(raw).map_err(|e| ApiError::bad_param(e.to_string()))?;
    state.store().device(tenant_id, &id.to_string()).await.map_err(|e| ApiError::store("device", e))
}

/// Ask for a support account on a device: the agent creates it at its next check-in. A
/// request while a creation job is open or an account is live queues nothing new. A person
/// signed in needs a target granting `support-account`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device_id}/support-account", tag = "devices",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 200, body = proto::SupportAccountRequested, description = "an account is ready"),
        (status = 202, body = proto::SupportAccountRequested, description = "a creation job is queued"),
        (status = 400, body = proto::Problem), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn request_device_support_account(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, device_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<proto::SupportAccountRequested>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let device = tenant_device(&state, &tenant.id, &device_id).await?;
    if let Caller::User(user) = &caller {
        require_grant(&state, user, &device, Operation::RequestSupportAccount).await?;
    }
    let event = caller.event(&state, Action::SupportAccountRequest, ObjectType::Device).tenant(tenant.id.clone());
    let (answer, wait) = request(&state, &device, event).await.map_err(|e| ApiError::store("device", e))?;
    let (status, state_name, job_id) = match answer {
        SupportRequest::Ready => (StatusCode::OK, proto::SupportAccountState::Ready, None),
        SupportRequest::Queued(job) | SupportRequest::AlreadyQueued(job) => {
            (StatusCode::ACCEPTED, proto::SupportAccountState::Queued, Some(job))
        }
    };
    Ok((
        status,
        Json(proto::SupportAccountRequested {
            device_id: device.id,
            state: state_name,
            job_id,
            estimated_wait_time: wait.map(|w| w.to_string()),
        }),
    ))
}

/// Reveal the device's live support account: user name, password and expiry. The reason is
/// required; the read is in the audit log before the password leaves the server. A person
/// signed in needs a target granting `support-account`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device_id}/support-account/reveal", tag = "devices",
    request_body = proto::SecretReadRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 200, body = proto::RevealedSupportAccount), (status = 400, body = proto::Problem),
        (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn reveal_device_support_account(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, device_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::SecretReadRequest>,
) -> Result<Json<proto::RevealedSupportAccount>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let reason = Reason::parse(&body.reason)?;
    let ticket = dto::optional_text("ticket", body.ticket, 100)?;
    let device = tenant_device(&state, &tenant.id, &device_id).await?;
    if let Caller::User(user) = &caller {
        require_grant(&state, user, &device, Operation::RequestSupportAccount).await?;
    }
    let mut event = caller.event(&state, Action::SecretRead, ObjectType::Account).tenant(tenant.id.clone());
    event.reason = Some(reason.as_str().to_owned());
    event.ticket = ticket;
    let read = read_live(&state, &tenant.id, &device.id, event.clone()).await.map_err(|e| match e {
        StoreError::Seal(why) => {
            ApiError::Internal(format!("support account of device {} cannot be opened: {why}", device.id))
        }
        e => ApiError::store("support account", e),
    })?;
    let Some(mut live) = read else {
        let failed = failed_at_device(event, &device.id, "no live support account");
        state.store().append_audit(vec![failed]).await.map_err(|e| ApiError::store("audit", e))?;
        return Err(ApiError::not_found("live support account on this device (request one first)"));
    };
    Ok(Json(proto::RevealedSupportAccount {
        device_id: device.id,
        account_id: std::mem::take(&mut live.account_id),
        username: std::mem::take(&mut live.username),
        password: live.password.as_str().to_owned(),
        version: live.version,
        expires_at: live.expires_at,
    }))
}

/// A failed read event about the device itself (when there is no account to name).
pub(crate) fn failed_at_device(mut event: NewAuditEvent, device_id: &str, problem: &str) -> NewAuditEvent {
    event.object_type = ObjectType::Device;
    event.object_id = Some(device_id.to_owned());
    event.outcome(Outcome::Failed).details(&serde_json::json!({ "problem": problem }))
}
