//! Machine credentials: API clients (for the compatible APIs) and admin API tokens.
//! Their secrets are shown once and stored as keyed hashes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::{Action, DisplayName, ObjectType};
use latchkey_proto as proto;
use latchkey_store::{NewAdminToken, NewApiClient};
use secrecy::ExposeSecret;

use super::dto;
use crate::auth::{ADMIN_TOKEN_LABEL, ADMIN_TOKEN_PREFIX, Admin};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The keyed-hash label of API client secrets.
pub const API_CLIENT_LABEL: &str = "api-client";

/// Create an API client; its secret is in the response and nowhere else.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/api-clients", tag = "credentials", request_body = proto::ApiClientCreate,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::ApiClientCreated), (status = 400, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_api_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::ApiClientCreate>,
) -> Result<(StatusCode, Json<proto::ApiClientCreated>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let name = DisplayName::parse("name", &body.name)?;
    let id = uuid::Uuid::new_v4().to_string();
    let secret = latchkey_crypto::generate_token("lk_client");
    let secret_hash = state.keyring().keyed_hash(API_CLIENT_LABEL, secret.expose_secret().as_bytes());
    let event = admin
        .event(&state, Action::ApiClientCreate, ObjectType::ApiClient)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "name": name.as_str() }));
    let client = NewApiClient {
        id,
        tenant_id: tenant.id.clone(),
        name_key: name.key(),
        name: name.as_str().to_owned(),
        secret_hash,
        created_at: state.clock().now(),
    };
    let created = state.store().create_api_client(client, event).await.map_err(|e| ApiError::store("API client", e))?;
    Ok((
        StatusCode::CREATED,
        Json(proto::ApiClientCreated {
            client: dto::api_client(created, &tenant.slug),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// A tenant's API clients.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/api-clients", tag = "credentials", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::ApiClient>), (status = 404, body = proto::Problem)))]
pub async fn list_api_clients(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::ApiClient>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let clients = state.store().list_api_clients(&tenant.id).await.map_err(|e| ApiError::store("API client", e))?;
    Ok(Json(proto::ListResponse {
        items: clients.into_iter().map(|c| dto::api_client(c, &tenant.slug)).collect(),
        next: None,
    }))
}

/// Create an admin token (global tokens only); shown once.
#[utoipa::path(post, path = "/api/v1/admin-tokens", tag = "credentials", request_body = proto::AdminTokenCreate,
    security(("bearer" = [])),
    responses((status = 201, body = proto::AdminTokenCreated), (status = 400, body = proto::Problem),
        (status = 403, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn create_admin_token(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<proto::AdminTokenCreate>,
) -> Result<(StatusCode, Json<proto::AdminTokenCreated>), ApiError> {
    admin.require_global()?;
    let name = DisplayName::parse("name", &body.name)?;
    let tenant = match &body.tenant {
        Some(slug) => Some(admin.tenant(&state, slug).await?),
        None => None,
    };
    let now = state.clock().now();
    let expires_at = match body.expires_in_seconds {
        Some(s) if !(60..=10 * 366 * 86_400).contains(&s) => {
            return Err(ApiError::invalid("expiresInSeconds must be between 60 and 316224000"));
        }
        Some(s) => Some(now + time::Duration::seconds(s)),
        None => None,
    };
    let mut event = admin.event(&state, Action::AdminTokenCreate, ObjectType::AdminToken);
    event.tenant_id = tenant.as_ref().map(|t| t.id.clone());
    let (created, token) =
        issue_admin_token(&state, name.as_str(), tenant.as_ref().map(|t| t.id.clone()), expires_at, event).await?;
    Ok((
        StatusCode::CREATED,
        Json(proto::AdminTokenCreated {
            id: created.id,
            name: created.name,
            tenant: tenant.map(|t| t.slug),
            token: token.expose_secret().to_owned(),
            expires_at: created.expires_at,
        }),
    ))
}

/// Create an admin token and return it with its one-time secret. `event` gets the token id.
pub async fn issue_admin_token(
    state: &AppState,
    name: &str,
    tenant_id: Option<String>,
    expires_at: Option<time::OffsetDateTime>,
    event: latchkey_core::NewAuditEvent,
) -> Result<(latchkey_core::model::AdminToken, secrecy::SecretString), ApiError> {
    let token = latchkey_crypto::generate_token(ADMIN_TOKEN_PREFIX);
    let token_hash = state.keyring().keyed_hash(ADMIN_TOKEN_LABEL, token.expose_secret().as_bytes());
    let id = uuid::Uuid::new_v4().to_string();
    let event = event.object(id.clone()).details(&serde_json::json!({ "name": name }));
    let created = state
        .store()
        .create_admin_token(
            NewAdminToken {
                id,
                tenant_id,
                name: name.to_owned(),
                token_hash,
                created_at: state.clock().now(),
                expires_at,
            },
            event,
        )
        .await
        .map_err(|e| ApiError::store("admin token", e))?;
    Ok((created, token))
}
