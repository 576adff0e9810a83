//! Applications of the application credential API: create (the password is shown once and
//! stored as Argon2id), list, enable, disable (its tokens stop working), delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::{Action, DisplayName, ObjectType};
use latchkey_proto as proto;
use latchkey_store::{Application, NewApplication};
use secrecy::ExposeSecret;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The application's wire form.
pub(crate) fn application_dto(a: Application, tenant_slug: &str) -> proto::Application {
    let username = if tenant_slug == "default" { a.name.clone() } else { format!("{tenant_slug}\\{}", a.name) };
    proto::Application {
        id: a.id,
        tenant: tenant_slug.to_owned(),
        name: a.name,
        username,
        enabled: a.enabled,
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
}

/// The application named by an id or a name.
pub(crate) async fn find_application(state: &AppState, tenant_id: &str, raw: &str) -> Result<Application, ApiError> {
    let found = match uuid::Uuid::parse_str(raw.trim()) {
        Ok(id) => state.store().application(tenant_id, &id.to_string()).await,
        Err(_) => state.store().application_secret(tenant_id, &raw.trim().to_lowercase()).await.map(|s| s.application),
    };
    found.map_err(|e| ApiError::store("application", e))
}

/// Create an application; its password is in the response and nowhere else.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/applications", tag = "applications",
    request_body = proto::ApplicationCreate, security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::ApplicationCreated), (status = 400, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_application(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::ApplicationCreate>,
) -> Result<(StatusCode, Json<proto::ApplicationCreated>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let name = DisplayName::parse("name", &body.name)?;
    if name.as_str().contains('\\') {
        return Err(ApiError::invalid("name must not contain a backslash (it separates the tenant in the user name)"));
    }
    if uuid::Uuid::parse_str(name.as_str()).is_ok() {
        return Err(ApiError::invalid("name must not be a UUID"));
    }
    let password = latchkey_crypto::generate_token("lkp");
    let password_hash = state.argon2().hash(&password).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = uuid::Uuid::new_v4().to_string();
    let event = admin
        .event(&state, Action::ApplicationCreate, ObjectType::Application)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "name": name.as_str() }));
    let new = NewApplication {
        id,
        tenant_id: tenant.id.clone(),
        name: name.as_str().to_owned(),
        name_key: name.key(),
        password_hash,
        created_at: state.clock().now(),
    };
    let created = state.store().create_application(new, event).await.map_err(|e| ApiError::store("application", e))?;
    Ok((
        StatusCode::CREATED,
        Json(proto::ApplicationCreated {
            application: application_dto(created, &tenant.slug),
            password: password.expose_secret().to_owned(),
        }),
    ))
}

/// A tenant's applications.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/applications", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::Application>), (status = 404, body = proto::Problem)))]
pub async fn list_applications(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::Application>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let apps = state.store().list_applications(&tenant.id).await.map_err(|e| ApiError::store("application", e))?;
    Ok(Json(proto::ListResponse {
        items: apps.into_iter().map(|a| application_dto(a, &tenant.slug)).collect(),
        next: None,
    }))
}

async fn set_enabled(
    state: AppState,
    admin: Admin,
    tenant: String,
    app: String,
    enabled: bool,
) -> Result<Json<proto::Application>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let found = find_application(&state, &tenant.id, &app).await?;
    let event = admin
        .event(&state, Action::ApplicationUpdate, ObjectType::Application)
        .tenant(tenant.id.clone())
        .object(found.id.clone())
        .details(&serde_json::json!({ "enabled": enabled }));
    let updated = state
        .store()
        .set_application_enabled(&tenant.id, &found.id, enabled, state.clock().now(), event)
        .await
        .map_err(|e| ApiError::store("application", e))?;
    state.app_tokens().forget_application(&found.id);
    Ok(Json(application_dto(updated, &tenant.slug)))
}

/// Enable an application.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/applications/{app}/enable", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("app" = String, Path, description = "application id or name")),
    responses((status = 200, body = proto::Application), (status = 404, body = proto::Problem)))]
pub async fn enable_application(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<proto::Application>, ApiError> {
    set_enabled(state, admin, tenant, app, true).await
}

/// Disable an application: its live tokens stop working and no new ones are issued.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/applications/{app}/disable", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("app" = String, Path, description = "application id or name")),
    responses((status = 200, body = proto::Application), (status = 404, body = proto::Problem)))]
pub async fn disable_application(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<proto::Application>, ApiError> {
    set_enabled(state, admin, tenant, app, false).await
}

/// Delete an application with its tokens and permissions.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/applications/{app}", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("app" = String, Path, description = "application id or name")),
    responses((status = 204), (status = 404, body = proto::Problem)))]
pub async fn delete_application(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let found = find_application(&state, &tenant.id, &app).await?;
    let event = admin
        .event(&state, Action::ApplicationDelete, ObjectType::Application)
        .tenant(tenant.id.clone())
        .object(found.id.clone())
        .details(&serde_json::json!({ "name": found.name }));
    state
        .store()
        .delete_application(&tenant.id, &found.id, event)
        .await
        .map_err(|e| ApiError::store("application", e))?;
    state.app_tokens().forget_application(&found.id);
    Ok(StatusCode::NO_CONTENT)
}
