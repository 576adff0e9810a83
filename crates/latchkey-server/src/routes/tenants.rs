//! Tenants.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::model::Tenant;
use latchkey_core::{Action, DisplayName, ObjectType, TenantSlug};
use latchkey_proto as proto;

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// Create a tenant (global tokens only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = proto::TenantCreate,
    security(("bearer" = [])),
    responses((status = 201, body = proto::Tenant), (status = 400, body = proto::Problem),
        (status = 401, body = proto::Problem), (status = 403, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<proto::TenantCreate>,
) -> Result<(StatusCode, Json<proto::Tenant>), ApiError> {
    admin.require_global()?;
    let slug = TenantSlug::parse(&body.slug)?;
    let name = match body.name {
        Some(n) => DisplayName::parse("name", &n)?.as_str().to_owned(),
        None => slug.as_str().to_owned(),
    };
    let tenant = Tenant {
        id: uuid::Uuid::new_v4().to_string(),
        slug: slug.as_str().to_owned(),
        name,
        created_at: state.clock().now(),
    };
    let event = admin
        .event(&state, Action::TenantCreate, ObjectType::Tenant)
        .tenant(tenant.id.clone())
        .object(tenant.id.clone())
        .details(&serde_json::json!({ "slug": tenant.slug }));
    let created = state.store().create_tenant(tenant, event).await.map_err(|e| ApiError::store("tenant", e))?;
    Ok((StatusCode::CREATED, Json(dto::tenant(created))))
}

/// The tenants this token may see.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = proto::ListResponse<proto::Tenant>), (status = 401, body = proto::Problem)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Json<proto::ListResponse<proto::Tenant>>, ApiError> {
    let all = state.store().list_tenants().await.map_err(|e| ApiError::store("tenant", e))?;
    let items =
        all.into_iter().filter(|t| admin.tenant_id.as_ref().is_none_or(|own| *own == t.id)).map(dto::tenant).collect();
    Ok(Json(proto::ListResponse { items, next: None }))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::Tenant), (status = 404, body = proto::Problem)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::Tenant>, ApiError> {
    Ok(Json(dto::tenant(admin.tenant(&state, &tenant).await?)))
}
