//! Devices.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::{Action, ContainerDn, DeviceId, DisplayName, ObjectType};
use latchkey_proto as proto;
use latchkey_store::NewDevice;
use serde::Deserialize;

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// Paging of lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Most items to return (1–1000, default 100).
    pub limit: Option<i64>,
    /// The `next` value of the previous page.
    pub after: Option<String>,
}

/// Register a device.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", request_body = proto::DeviceCreate,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::Device), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_device(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::DeviceCreate>,
) -> Result<(StatusCode, Json<proto::Device>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = match &body.device_id {
        Some(raw) => DeviceId::parse(raw)?,
        None => DeviceId::new_random(),
    };
    let name = DisplayName::parse("name", &body.name)?;
    let container_dn = body.container_dn.as_deref().map(ContainerDn::parse).transpose()?;
    let os = dto::optional_text("os", body.os, 128)?;
    let event = admin
        .event(&state, Action::DeviceCreate, ObjectType::Device)
        .tenant(tenant.id.clone())
        .object(id.to_string())
        .details(&serde_json::json!({ "name": name.as_str() }));
    let device = NewDevice {
        id: id.to_string(),
        tenant_id: tenant.id.clone(),
        name_key: name.key(),
        name: name.as_str().to_owned(),
        container_dn: container_dn.map(|d| d.as_str().to_owned()),
        os,
        created_at: state.clock().now(),
    };
    let created = state.store().create_device(device, event).await.map_err(|e| ApiError::store("device", e))?;
    Ok((StatusCode::CREATED, Json(dto::device(created, &tenant.slug, state.clock().now()))))
}

/// A page of devices, ordered by deviceId.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), PageQuery),
    responses((status = 200, body = proto::ListResponse<proto::Device>), (status = 404, body = proto::Problem)))]
pub async fn list_devices(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<proto::ListResponse<proto::Device>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_param("limit must be between 1 and 1000"));
    }
    let devices = state
        .store()
        .list_devices(&tenant.id, page.after.as_deref(), limit)
        .await
        .map_err(|e| ApiError::store("device", e))?;
    let next = (devices.len() as i64 == limit).then(|| devices.last().map(|d| d.id.clone())).flatten();
    let now = state.clock().now();
    let items = devices.into_iter().map(|d| dto::device(d, &tenant.slug, now)).collect();
    Ok(Json(proto::ListResponse { items, next }))
}

/// One device.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device_id}", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 200, body = proto::Device), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_device(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, device_id)): Path<(String, String)>,
) -> Result<Json<proto::Device>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = DeviceId::parse(&device_id).map_err(|e| ApiError::bad_param(e.to_string()))?;
    let device = state.store().device(&tenant.id, &id.to_string()).await.map_err(|e| ApiError::store("device", e))?;
    Ok(Json(dto::device(device, &tenant.slug, state.clock().now())))
}

/// Remove a device with its accounts and secrets.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/devices/{device_id}", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("device_id" = String, Path, description = "deviceId (UUID)")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete_device(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, device_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = DeviceId::parse(&device_id).map_err(|e| ApiError::bad_param(e.to_string()))?;
    let event =
        admin.event(&state, Action::DeviceDelete, ObjectType::Device).tenant(tenant.id.clone()).object(id.to_string());
    state.store().delete_device(&tenant.id, &id.to_string(), event).await.map_err(|e| ApiError::store("device", e))?;
    Ok(StatusCode::NO_CONTENT)
}
