//! Accounts, setting their secrets, and the audited secret read.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::model::SecretState;
use latchkey_core::{Action, DeviceId, DisplayName, ObjectType, Reason};
use latchkey_proto as proto;
use latchkey_store::{NewAccount, StoreError};
use zeroize::Zeroizing;

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::vault;

/// Longest password accepted.
const MAX_PASSWORD: usize = 1024;
/// Longest SSH private key accepted (PEM text).
const MAX_SSH_KEY: usize = 16 * 1024;

fn parse_account_id(raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param("account id is not a valid UUID"))
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/accounts", tag = "accounts", request_body = proto::AccountCreate,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::Account), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_account(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::AccountCreate>,
) -> Result<(StatusCode, Json<proto::Account>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let kind = dto::account_kind(body.kind);
    let name = DisplayName::parse("name", &body.name)?;
    let device_id = body.device_id.as_deref().map(DeviceId::parse).transpose()?;
    match (kind.needs_device(), &device_id) {
        (true, None) => return Err(ApiError::invalid(format!("deviceId is required for {} accounts", kind.as_str()))),
        (false, Some(_)) => {
            return Err(ApiError::invalid(format!("{} accounts do not belong to a device", kind.as_str())));
        }
        _ => {}
    }
    let description = dto::optional_text("description", body.description, 1000)?;
    let id = uuid::Uuid::new_v4().to_string();
    let event = admin
        .event(&state, Action::AccountCreate, ObjectType::Account)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "kind": kind.as_str(), "name": name.as_str() }));
    let account = NewAccount {
        id,
        tenant_id: tenant.id.clone(),
        kind,
        name_key: name.key(),
        name: name.as_str().to_owned(),
        device_id: device_id.map(|d| d.to_string()),
        description,
        created_at: state.clock().now(),
    };
    let created =
        state.store().create_account(account, event).await.map_err(|e| ApiError::store("account or device", e))?;
    Ok((StatusCode::CREATED, Json(dto::account(created, None, &tenant.slug))))
}

/// A tenant's accounts.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts", tag = "accounts", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::Account>), (status = 404, body = proto::Problem)))]
pub async fn list_accounts(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::Account>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let accounts = state.store().list_accounts(&tenant.id).await.map_err(|e| ApiError::store("account", e))?;
    Ok(Json(proto::ListResponse {
        items: accounts.into_iter().map(|(a, v)| dto::account(a, v, &tenant.slug)).collect(),
        next: None,
    }))
}

/// One account (never its secret).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account_id}", tag = "accounts", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 200, body = proto::Account), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_account(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
) -> Result<Json<proto::Account>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = parse_account_id(&account_id)?;
    let (account, active) = state.store().account(&tenant.id, &id).await.map_err(|e| ApiError::store("account", e))?;
    Ok(Json(dto::account(account, active, &tenant.slug)))
}

/// The versions of an account's secret (facts only, never values).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/secret", tag = "accounts", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 200, body = proto::ListResponse<proto::SecretVersionInfo>), (status = 404, body = proto::Problem)))]
pub async fn list_secret_versions(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
) -> Result<Json<proto::ListResponse<proto::SecretVersionInfo>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = parse_account_id(&account_id)?;
    let versions = state.store().secret_versions(&tenant.id, &id).await.map_err(|e| ApiError::store("account", e))?;
    Ok(Json(proto::ListResponse { items: versions.iter().map(dto::secret_version).collect(), next: None }))
}

fn take_secret(
    field: &'static str,
    value: &mut Option<String>,
    max: usize,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    let Some(v) = value.take().map(Zeroizing::new) else { return Ok(None) };
    if v.is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::invalid(format!("{field} is longer than {max} characters")));
    }
    if v.contains('\0') {
        return Err(ApiError::invalid(format!("{field} contains a NUL character")));
    }
    Ok(Some(v))
}

/// Set a new active secret version; the previous one becomes history.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/secret", tag = "accounts",
    request_body = proto::SecretSetRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 201, body = proto::SecretVersionInfo), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn set_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
    ApiJson(mut body): ApiJson<proto::SecretSetRequest>,
) -> Result<(StatusCode, Json<proto::SecretVersionInfo>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = parse_account_id(&account_id)?;
    let password = take_secret("password", &mut body.password, MAX_PASSWORD)?;
    let ssh_key = take_secret("sshPrivateKey", &mut body.ssh_private_key, MAX_SSH_KEY)?;
    if password.is_none() && ssh_key.is_none() {
        return Err(ApiError::invalid("set password, sshPrivateKey or both"));
    }
    let event =
        admin.event(&state, Action::SecretSet, ObjectType::Account).tenant(tenant.id.clone()).object(id.clone());
    let seal = vault::seal_fn(state.keyring_handle(), tenant.id.clone(), id.clone(), password, ssh_key);
    let stored = state
        .store()
        .add_secret_version(&tenant.id, &id, SecretState::Active, body.expires_at, seal, event)
        .await
        .map_err(|e| ApiError::store("account", e))?;
    Ok((StatusCode::CREATED, Json(dto::secret_version(&stored))))
}

/// Read an account's current secret. The reason is required; the read (or its denial) is in
/// the audit log before the secret leaves the server.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/secret/reveal", tag = "accounts",
    request_body = proto::SecretReadRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 200, body = proto::RevealedSecret), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn reveal_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::SecretReadRequest>,
) -> Result<Json<proto::RevealedSecret>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = parse_account_id(&account_id)?;
    let reason = Reason::parse(&body.reason)?;
    let ticket = dto::optional_text("ticket", body.ticket, 100)?;
    let mut event =
        admin.event(&state, Action::SecretRead, ObjectType::Account).tenant(tenant.id.clone()).object(id.clone());
    event.reason = Some(reason.as_str().to_owned());
    event.ticket = ticket;
    let keyring = state.keyring_handle();
    let read = state
        .store()
        .read_secret_audited(&tenant.id, &id, event, move |account, version| {
            let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
            let opened = vault::open_version(&ring, version).map_err(|e| e.to_string())?;
            Ok((account.name.clone(), version.version, version.expires_at, opened))
        })
        .await;
    let (account_name, version, expires_at, opened) = match read {
        Ok(v) => v,
        Err(StoreError::NotFound) => {
            state.metrics().secret_read("failed");
            return Err(ApiError::not_found("account with a secret"));
        }
        Err(StoreError::Seal(why)) => {
            state.metrics().secret_read("failed");
            return Err(ApiError::Internal(format!("secret of account {id} cannot be opened: {why}")));
        }
        Err(e) => return Err(ApiError::store("account", e)),
    };
    state.metrics().secret_read("success");
    Ok(Json(proto::RevealedSecret {
        account_id: id,
        account_name,
        version,
        password: opened.password.map(|p| p.as_str().to_owned()),
        ssh_private_key: opened.ssh_key.map(|k| k.as_str().to_owned()),
        expires_at,
        rotation_expected_at: None,
    }))
}
