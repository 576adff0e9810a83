//! A device's managed admin password: queue a rotation, list the device's jobs, read the
//! password (active or a version from history, audited) and list its versions (facts only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::access::Operation;
use latchkey_core::{Action, ObjectType, Reason};
use latchkey_proto as proto;
use latchkey_store::StoreError;
use serde::Deserialize;

use super::dto;
use super::governed_read::{ReadRequest, read_as_user, require_grant};
use super::support_account::{failed_at_device, tenant_device};
use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::vault;

/// How many jobs to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Most jobs to return, newest first (1–1000, default 100).
    pub limit: Option<i64>,
}

/// Queue a rotation of the device's admin password; the agent carries it out at its next
/// check-in. While a rotation is open, the open job is answered and nothing new is queued.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device_id}/rotate", tag = "devices",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 202, body = proto::DeviceJob), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn rotate_device(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, device_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<proto::DeviceJob>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let device = tenant_device(&state, &tenant.id, &device_id).await?;
    let event = admin.event(&state, Action::RotationRequest, ObjectType::DeviceJob).tenant(tenant.id.clone());
    let job = state
        .store()
        .request_rotation(&tenant.id, &device.id, state.clock().now(), event)
        .await
        .map_err(|e| ApiError::store("device", e))?;
    Ok((StatusCode::ACCEPTED, Json(dto::device_job(job))))
}

/// A device's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device_id}/jobs", tag = "devices",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)"),
        JobsQuery),
    responses((status = 200, body = proto::ListResponse<proto::DeviceJob>), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn list_device_jobs(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, device_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<JobsQuery>,
) -> Result<Json<proto::ListResponse<proto::DeviceJob>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_param("limit must be between 1 and 1000"));
    }
    let device = tenant_device(&state, &tenant.id, &device_id).await?;
    let jobs =
        state.store().device_jobs(&tenant.id, &device.id, limit).await.map_err(|e| ApiError::store("device", e))?;
    Ok(Json(proto::ListResponse { items: jobs.into_iter().map(dto::device_job).collect(), next: None }))
}

/// Read the device's admin password: the active one, or `version` from its history (also a
/// pending version the device may hold before it was confirmed). The reason is required;
/// the read (or its failure) is in the audit log before the password leaves the server.
/// A person signed in reads only through an access target that lists them (history needs a
/// target granting `history`); the target's expire-after then shortens the password's life
/// and its audit settings decide who is mailed. An admin token reads any device.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices/{device_id}/password/reveal", tag = "devices",
    request_body = proto::DevicePasswordRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 200, body = proto::RevealedSecret), (status = 400, body = proto::Problem),
        (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn reveal_device_password(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, device_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::DevicePasswordRequest>,
) -> Result<Json<proto::RevealedSecret>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let reason = Reason::parse(&body.reason)?;
    let ticket = dto::optional_text("ticket", body.ticket, 100)?;
    if body.version.is_some_and(|v| v < 1) {
        return Err(ApiError::invalid("version must be at least 1"));
    }
    let device = tenant_device(&state, &tenant.id, &device_id).await?;
    let mut event = caller.event(&state, Action::SecretRead, ObjectType::Account).tenant(tenant.id.clone());
    event.reason = Some(reason.as_str().to_owned());
    event.ticket = ticket;
    if let Caller::User(user) = &caller {
        let req = ReadRequest { tenant_slug: &tenant.slug, device: &device, version: body.version, event };
        return read_as_user(&state, user, req).await.map(Json);
    }
    let admin_state = state.store().admin_password_state(&device.id).await.map_err(|e| ApiError::store("device", e))?;
    let Some(account) = admin_state else {
        let failed = failed_at_device(event, &device.id, "no escrowed admin password");
        state.store().append_audit(vec![failed]).await.map_err(|e| ApiError::store("audit", e))?;
        state.metrics().secret_read("failed");
        return Err(ApiError::not_found("escrowed admin password for this device"));
    };
    let event = event.object(account.account_id.clone());
    let keyring = state.keyring_handle();
    let open = move |a: &latchkey_core::model::Account, v: &latchkey_core::model::SecretVersion| {
        let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
        let opened = vault::open_version(&ring, v).map_err(|e| e.to_string())?;
        Ok((a.name.clone(), v.version, v.expires_at, opened))
    };
    let store = state.store();
    let read = match body.version {
        None => store.read_secret_audited(&tenant.id, &account.account_id, event, open).await,
        Some(v) => store.read_version_audited(&tenant.id, &account.account_id, v, event, open).await,
    };
    let (account_name, version, expires_at, opened) = match read {
        Ok(v) => v,
        Err(StoreError::NotFound) => {
            state.metrics().secret_read("failed");
            return Err(match body.version {
                Some(v) => ApiError::not_found(&format!("version {v} of this device's admin password")),
                None => ApiError::not_found("active admin password for this device"),
            });
        }
        Err(StoreError::Seal(why)) => {
            state.metrics().secret_read("failed");
            return Err(ApiError::Internal(format!("admin password of device {} cannot be opened: {why}", device.id)));
        }
        Err(e) => return Err(ApiError::store("device", e)),
    };
    state.metrics().secret_read("success");
    Ok(Json(proto::RevealedSecret {
        account_id: account.account_id,
        account_name,
        version,
        password: opened.password.map(|p| p.as_str().to_owned()),
        ssh_private_key: None,
        expires_at,
        rotation_expected_at: None,
    }))
}

/// The versions of the device's admin password, newest first: number, state, created and
/// expiry. Never a value. A person signed in needs a target granting `history`.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device_id}/password/history", tag = "devices",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 200, body = proto::ListResponse<proto::SecretVersionInfo>), (status = 400, body = proto::Problem),
        (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn device_password_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, device_id)): Path<(String, String)>,
) -> Result<Json<proto::ListResponse<proto::SecretVersionInfo>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let device = tenant_device(&state, &tenant.id, &device_id).await?;
    if let Caller::User(user) = &caller {
        require_grant(&state, user, &device, Operation::ReadHistory).await?;
    }
    let admin_state = state.store().admin_password_state(&device.id).await.map_err(|e| ApiError::store("device", e))?;
    let items = match admin_state {
        None => Vec::new(),
        Some(a) => state
            .store()
            .secret_versions(&tenant.id, &a.account_id)
            .await
            .map_err(|e| ApiError::store("device", e))?
            .iter()
            .map(dto::secret_version)
            .collect(),
    };
    Ok(Json(proto::ListResponse { items, next: None }))
}
