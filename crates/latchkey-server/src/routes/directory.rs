//! Groups (with members) and users of the built-in directory.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::model::{GroupMember, MemberKind};
use latchkey_core::{Action, DeviceId, DisplayName, ObjectType};
use latchkey_proto as proto;
use latchkey_store::{NewGroup, NewUser};

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

fn parse_uuid(field: &'static str, raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::invalid(format!("{field} is not a valid UUID")))
}

/// Create a group.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/groups", tag = "directory", request_body = proto::GroupCreate,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::Group), (status = 400, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_group(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::GroupCreate>,
) -> Result<(StatusCode, Json<proto::Group>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let name = DisplayName::parse("name", &body.name)?;
    let description = dto::optional_text("description", body.description, 1000)?;
    let id = uuid::Uuid::new_v4().to_string();
    let event = admin
        .event(&state, Action::GroupCreate, ObjectType::Group)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "name": name.as_str() }));
    let group = NewGroup {
        id,
        tenant_id: tenant.id.clone(),
        name_key: name.key(),
        name: name.as_str().to_owned(),
        description,
        created_at: state.clock().now(),
    };
    let created = state.store().create_group(group, event).await.map_err(|e| ApiError::store("group", e))?;
    Ok((StatusCode::CREATED, Json(dto::group(created, &tenant.slug))))
}

/// A tenant's groups.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/groups", tag = "directory", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::Group>), (status = 404, body = proto::Problem)))]
pub async fn list_groups(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::Group>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let groups = state.store().list_groups(&tenant.id).await.map_err(|e| ApiError::store("group", e))?;
    let items = groups.into_iter().map(|g| dto::group(g, &tenant.slug)).collect();
    Ok(Json(proto::ListResponse { items, next: None }))
}

/// One group.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/groups/{group_id}", tag = "directory", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("group_id" = String, Path, description = "group id")),
    responses((status = 200, body = proto::Group), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_group(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, group_id)): Path<(String, String)>,
) -> Result<Json<proto::Group>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = parse_uuid("group id", &group_id).map_err(|e| match e {
        ApiError::Client(_, m) => ApiError::bad_param(m),
        other => other,
    })?;
    let group = state.store().group(&tenant.id, &id).await.map_err(|e| ApiError::store("group", e))?;
    Ok(Json(dto::group(group, &tenant.slug)))
}

/// A group's direct members.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/groups/{group_id}/members", tag = "directory", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("group_id" = String, Path, description = "group id")),
    responses((status = 200, body = proto::ListResponse<proto::GroupMember>), (status = 404, body = proto::Problem)))]
pub async fn list_members(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, group_id)): Path<(String, String)>,
) -> Result<Json<proto::ListResponse<proto::GroupMember>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let members = state.store().group_members(&tenant.id, &group_id).await.map_err(|e| ApiError::store("group", e))?;
    Ok(Json(proto::ListResponse { items: members.into_iter().map(dto::member).collect(), next: None }))
}

fn parse_member(m: proto::GroupMember) -> Result<GroupMember, ApiError> {
    let kind = dto::member_kind(m.kind);
    let id = match kind {
        MemberKind::Device => DeviceId::parse(&m.id)?.to_string(),
        MemberKind::User | MemberKind::Group => parse_uuid("member id", &m.id)?,
    };
    Ok(GroupMember { kind, id })
}

/// Add a member (device, user or group) of the same tenant. Cycles are refused.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/groups/{group_id}/members", tag = "directory",
    request_body = proto::GroupMember, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("group_id" = String, Path, description = "group id")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn add_member(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, group_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::GroupMember>,
) -> Result<StatusCode, ApiError> {
    change_member(state, admin, tenant, group_id, body, true).await
}

/// Remove a member.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/groups/{group_id}/members", tag = "directory",
    request_body = proto::GroupMember, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("group_id" = String, Path, description = "group id")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn remove_member(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, group_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::GroupMember>,
) -> Result<StatusCode, ApiError> {
    change_member(state, admin, tenant, group_id, body, false).await
}

async fn change_member(
    state: AppState,
    admin: Admin,
    tenant: String,
    group_id: String,
    body: proto::GroupMember,
    add: bool,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let group_id = parse_uuid("group id", &group_id)?;
    let member = parse_member(body)?;
    let action = if add { Action::GroupMemberAdd } else { Action::GroupMemberRemove };
    let event = admin
        .event(&state, action, ObjectType::Group)
        .tenant(tenant.id.clone())
        .object(group_id.clone())
        .details(&serde_json::json!({ "memberKind": member.kind.as_str(), "memberId": member.id }));
    let store = state.store();
    let result = if add {
        store.add_group_member(&tenant.id, &group_id, member, event).await
    } else {
        store.remove_group_member(&tenant.id, &group_id, member, event).await
    };
    result.map_err(|e| ApiError::store("group or member", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a user of the built-in directory.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users", tag = "directory", request_body = proto::UserCreate,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::User), (status = 400, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::UserCreate>,
) -> Result<(StatusCode, Json<proto::User>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let name = DisplayName::parse("name", &body.name)?;
    let display_name = dto::optional_text("displayName", body.display_name, 256)?;
    let email = dto::optional_text("email", body.email, 320)?;
    if let Some(e) = &email
        && !e.contains('@')
    {
        return Err(ApiError::invalid("email is not an e-mail address"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let event = admin
        .event(&state, Action::UserCreate, ObjectType::User)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "name": name.as_str() }));
    let user = NewUser {
        id,
        tenant_id: tenant.id.clone(),
        name_key: name.key(),
        name: name.as_str().to_owned(),
        display_name,
        email,
        created_at: state.clock().now(),
    };
    let created = state.store().create_user(user, event).await.map_err(|e| ApiError::store("user", e))?;
    Ok((StatusCode::CREATED, Json(dto::user(created, &tenant.slug))))
}

/// A tenant's users.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users", tag = "directory", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::User>), (status = 404, body = proto::Problem)))]
pub async fn list_users(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::User>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let users = state.store().list_users(&tenant.id).await.map_err(|e| ApiError::store("user", e))?;
    Ok(Json(proto::ListResponse { items: users.into_iter().map(|u| dto::user(u, &tenant.slug)).collect(), next: None }))
}
