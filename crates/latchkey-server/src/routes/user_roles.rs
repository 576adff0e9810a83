//! The roles people hold (admin, auditor, approver): what the web UI opens to them.

use axum::Json;
use axum::extract::{Path, State};
use latchkey_core::{Action, ObjectType, Role};
use latchkey_proto as proto;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

fn user_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param("user id is not a valid UUID"))
}

fn names(roles: &[Role]) -> proto::UserRoles {
    proto::UserRoles { roles: roles.iter().map(|r| r.as_str().to_owned()).collect() }
}

/// A user's roles.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user_id}/roles", tag = "directory",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("user_id" = String, Path, description = "user id")),
    responses((status = 200, body = proto::UserRoles), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_user_roles(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, user)): Path<(String, String)>,
) -> Result<Json<proto::UserRoles>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let user = user_id(&user)?;
    state.store().user_in_tenant(&tenant.id, &user).await.map_err(|e| ApiError::store("user", e))?;
    let roles = state.store().user_roles(&tenant.id, &user).await.map_err(|e| ApiError::store("user", e))?;
    Ok(Json(names(&roles)))
}

/// Replace a user's roles (`admin`, `auditor`, `approver`; an empty list removes them all).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/users/{user_id}/roles", tag = "directory",
    request_body = proto::UserRoles, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("user_id" = String, Path, description = "user id")),
    responses((status = 200, body = proto::UserRoles), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn set_user_roles(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::UserRoles>,
) -> Result<Json<proto::UserRoles>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let user = user_id(&user)?;
    let mut roles = Vec::with_capacity(body.roles.len());
    for name in &body.roles {
        roles.push(Role::parse(name).map_err(|e| ApiError::invalid(format!("roles: {e}")))?);
    }
    roles.sort();
    roles.dedup();
    let event = admin
        .event(&state, Action::UserRolesSet, ObjectType::User)
        .tenant(tenant.id.clone())
        .object(user.clone())
        .details(&serde_json::json!({ "roles": names(&roles).roles }));
    state
        .store()
        .set_user_roles(&tenant.id, &user, roles.clone(), event)
        .await
        .map_err(|e| ApiError::store("user", e))?;
    Ok(Json(names(&roles)))
}
