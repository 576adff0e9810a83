//! Account policies (shared by many accounts), the policy of an account, and permissions of
//! applications and people on accounts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::{Action, DisplayName, ObjectType, Principal, TimeSpan};
use latchkey_proto as proto;
use latchkey_store::{AccountPolicy, PrincipalKind, StoreError};

use super::applications::find_application;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// Shortest and longest confirmation timeouts (1 minute, 7 days).
const TIMEOUT_SECS: std::ops::RangeInclusive<i64> = 60..=7 * 86_400;
/// Longest delay of a reset after showing (7 days), in minutes.
const MAX_RESET_MINUTES: i64 = 7 * 24 * 60;

fn policy_dto(p: AccountPolicy, tenant_slug: &str) -> proto::AccountPolicy {
    proto::AccountPolicy {
        id: p.id,
        tenant: tenant_slug.to_owned(),
        name: p.name,
        require_reason: p.require_reason,
        require_confirmation: p.require_confirmation,
        confirmation_timeout: TimeSpan::from_seconds(p.confirmation_timeout_secs).to_string(),
        reset_after_showing: p.reset_after_showing,
        reset_after_minutes: p.reset_after_minutes,
        encrypt_key_before_showing: p.encrypt_key,
        can_set_if_not_set: p.can_set_if_not_set,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn parse_id(what: &str, raw: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param(format!("{what} is not a valid UUID")))
}

/// Check a policy body; returns the policy (with `id`, times set to `now`) and its name key.
fn parse_spec(
    spec: proto::AccountPolicySpec,
    id: String,
    tenant_id: &str,
    now: time::OffsetDateTime,
) -> Result<(AccountPolicy, String), ApiError> {
    let name = DisplayName::parse("name", &spec.name)?;
    let timeout = match (&spec.confirmation_timeout, spec.require_confirmation) {
        (Some(text), _) => {
            let span = TimeSpan::parse(text).map_err(|e| ApiError::invalid(format!("confirmationTimeout: {e}")))?;
            let secs = span.to_duration().whole_seconds();
            if !TIMEOUT_SECS.contains(&secs) {
                return Err(ApiError::invalid("confirmationTimeout must be between 00:01:00 and 7.00:00:00"));
            }
            secs
        }
        (None, true) => return Err(ApiError::invalid("confirmationTimeout is required with requireConfirmation")),
        (None, false) => 0,
    };
    let minutes = match (spec.reset_after_minutes, spec.reset_after_showing) {
        (Some(m), _) if !(1..=MAX_RESET_MINUTES).contains(&m) => {
            return Err(ApiError::invalid(format!("resetAfterMinutes must be between 1 and {MAX_RESET_MINUTES}")));
        }
        (Some(m), _) => m,
        (None, true) => return Err(ApiError::invalid("resetAfterMinutes is required with resetAfterShowing")),
        (None, false) => 0,
    };
    let policy = AccountPolicy {
        id,
        tenant_id: tenant_id.to_owned(),
        name: name.as_str().to_owned(),
        require_reason: spec.require_reason,
        require_confirmation: spec.require_confirmation,
        confirmation_timeout_secs: timeout,
        reset_after_showing: spec.reset_after_showing,
        reset_after_minutes: minutes,
        encrypt_key: spec.encrypt_key_before_showing,
        can_set_if_not_set: spec.can_set_if_not_set,
        created_at: now,
        updated_at: now,
    };
    Ok((policy, name.key()))
}

/// The policy named by an id or a name.
async fn find_policy(state: &AppState, tenant_id: &str, raw: &str) -> Result<AccountPolicy, ApiError> {
    let found = match uuid::Uuid::parse_str(raw.trim()) {
        Ok(id) => state.store().account_policy(tenant_id, &id.to_string()).await,
        Err(_) => state.store().account_policy_by_name(tenant_id, &raw.trim().to_lowercase()).await,
    };
    found.map_err(|e| ApiError::store("account policy", e))
}

/// Create an account policy.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/account-policies", tag = "applications",
    request_body = proto::AccountPolicySpec, security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::AccountPolicy), (status = 400, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn create_account_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::AccountPolicySpec>,
) -> Result<(StatusCode, Json<proto::AccountPolicy>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let (policy, key) = parse_spec(body, uuid::Uuid::new_v4().to_string(), &tenant.id, state.clock().now())?;
    if state.store().account_policy_by_name(&tenant.id, &key).await.is_ok() {
        return Err(ApiError::store("account policy", StoreError::Conflict("already exists")));
    }
    let event = admin
        .event(&state, Action::AccountPolicySet, ObjectType::AccountPolicy)
        .tenant(tenant.id.clone())
        .object(policy.id.clone())
        .details(&serde_json::json!({ "name": policy.name, "created": true }));
    let stored =
        state.store().put_account_policy(policy, key, event).await.map_err(|e| ApiError::store("account policy", e))?;
    Ok((StatusCode::CREATED, Json(policy_dto(stored, &tenant.slug))))
}

/// Replace an account policy's settings.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/account-policies/{policy}", tag = "applications",
    request_body = proto::AccountPolicySpec, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("policy" = String, Path, description = "policy id or name")),
    responses((status = 200, body = proto::AccountPolicy), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn replace_account_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, policy)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::AccountPolicySpec>,
) -> Result<Json<proto::AccountPolicy>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let existing = find_policy(&state, &tenant.id, &policy).await?;
    let (policy, key) = parse_spec(body, existing.id.clone(), &tenant.id, state.clock().now())?;
    let event = admin
        .event(&state, Action::AccountPolicySet, ObjectType::AccountPolicy)
        .tenant(tenant.id.clone())
        .object(policy.id.clone())
        .details(&serde_json::json!({ "name": policy.name, "created": false }));
    let stored =
        state.store().put_account_policy(policy, key, event).await.map_err(|e| ApiError::store("account policy", e))?;
    Ok(Json(policy_dto(stored, &tenant.slug)))
}

/// A tenant's account policies.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/account-policies", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::AccountPolicy>), (status = 404, body = proto::Problem)))]
pub async fn list_account_policies(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::AccountPolicy>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let list =
        state.store().list_account_policies(&tenant.id).await.map_err(|e| ApiError::store("account policy", e))?;
    Ok(Json(proto::ListResponse { items: list.into_iter().map(|p| policy_dto(p, &tenant.slug)).collect(), next: None }))
}

/// One account policy.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/account-policies/{policy}", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("policy" = String, Path, description = "policy id or name")),
    responses((status = 200, body = proto::AccountPolicy), (status = 404, body = proto::Problem)))]
pub async fn get_account_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, policy)): Path<(String, String)>,
) -> Result<Json<proto::AccountPolicy>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    Ok(Json(policy_dto(find_policy(&state, &tenant.id, &policy).await?, &tenant.slug)))
}

/// Delete an account policy that no account uses.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/account-policies/{policy}", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("policy" = String, Path, description = "policy id or name")),
    responses((status = 204), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem, description = "still attached")))]
pub async fn delete_account_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, policy)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let found = find_policy(&state, &tenant.id, &policy).await?;
    let event = admin
        .event(&state, Action::AccountPolicyDelete, ObjectType::AccountPolicy)
        .tenant(tenant.id.clone())
        .object(found.id.clone())
        .details(&serde_json::json!({ "name": found.name }));
    state
        .store()
        .delete_account_policy(&tenant.id, &found.id, event)
        .await
        .map_err(|e| ApiError::store("account policy", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Attach a policy to an account (by id or name), or detach it with `"policy": null`.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/policy", tag = "applications",
    request_body = proto::AccountPolicyAttach, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn attach_account_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::AccountPolicyAttach>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let account_id = parse_id("account id", &account_id)?;
    let policy = match &body.policy {
        Some(p) => Some(find_policy(&state, &tenant.id, p).await.map_err(|e| match e {
            ApiError::Client(latchkey_proto::ProblemCode::NotFound, _) => ApiError::invalid("no such account policy"),
            other => other,
        })?),
        None => None,
    };
    let event = admin
        .event(&state, Action::AccountPolicySet, ObjectType::Account)
        .tenant(tenant.id.clone())
        .object(account_id.clone())
        .details(&serde_json::json!({ "policy": policy.as_ref().map(|p| p.id.clone()) }));
    state
        .store()
        .attach_account_policy(&tenant.id, &account_id, policy.map(|p| p.id), event)
        .await
        .map_err(|e| ApiError::store("account", e))?;
    Ok(StatusCode::NO_CONTENT)
}

fn kind_of(k: proto::PrincipalKind) -> PrincipalKind {
    match k {
        proto::PrincipalKind::Application => PrincipalKind::Application,
        proto::PrincipalKind::User => PrincipalKind::User,
    }
}

fn kind_dto(k: PrincipalKind) -> proto::PrincipalKind {
    match k {
        PrincipalKind::Application => proto::PrincipalKind::Application,
        PrincipalKind::User => proto::PrincipalKind::User,
    }
}

/// The id of a principal named by id or name.
async fn principal_id(state: &AppState, tenant_id: &str, kind: PrincipalKind, raw: &str) -> Result<String, ApiError> {
    let not_found = |what: &str| ApiError::invalid(format!("no such {what} in this tenant"));
    match kind {
        PrincipalKind::Application => {
            find_application(state, tenant_id, raw).await.map(|a| a.id).map_err(|_| not_found("application"))
        }
        PrincipalKind::User => {
            if let Ok(id) = uuid::Uuid::parse_str(raw.trim()) {
                return Ok(id.to_string());
            }
            let principal = Principal::parse(raw).map_err(|e| ApiError::invalid(e.to_string()))?;
            match state.store().sign_in_record(tenant_id, &principal).await {
                Ok(r) => Ok(r.id),
                Err(StoreError::NotFound) => Err(not_found("user")),
                Err(e) => Err(ApiError::store("user", e)),
            }
        }
    }
}

/// The permissions on an account.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/permissions", tag = "applications",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 200, body = proto::ListResponse<proto::AccountPermission>), (status = 404, body = proto::Problem)))]
pub async fn list_account_permissions(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
) -> Result<Json<proto::ListResponse<proto::AccountPermission>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let account_id = parse_id("account id", &account_id)?;
    state.store().account(&tenant.id, &account_id).await.map_err(|e| ApiError::store("account", e))?;
    let list =
        state.store().account_permissions(&tenant.id, &account_id).await.map_err(|e| ApiError::store("account", e))?;
    Ok(Json(proto::ListResponse {
        items: list
            .into_iter()
            .map(|p| proto::AccountPermission {
                account_id: p.account_id,
                principal_kind: kind_dto(p.principal_kind),
                principal_id: p.principal_id,
                principal_name: p.principal_name,
                view: p.view,
                change: p.change,
                updated_at: p.updated_at,
            })
            .collect(),
        next: None,
    }))
}

/// Grant (or change) an application's or a person's permission on an account.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/permissions", tag = "applications",
    request_body = proto::PermissionSet, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn set_account_permission(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::PermissionSet>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let account_id = parse_id("account id", &account_id)?;
    if !body.view && !body.change {
        return Err(ApiError::invalid("grant view, change or both (revoke removes a permission)"));
    }
    let kind = kind_of(body.principal_kind);
    let principal = principal_id(&state, &tenant.id, kind, &body.principal).await?;
    let event = admin
        .event(&state, Action::AccountPermissionSet, ObjectType::Account)
        .tenant(tenant.id.clone())
        .object(account_id.clone())
        .details(&serde_json::json!({
            "principalKind": kind.as_str(), "principal": principal, "view": body.view, "change": body.change
        }));
    state
        .store()
        .set_account_permission(
            &tenant.id,
            &account_id,
            kind,
            &principal,
            body.view,
            body.change,
            state.clock().now(),
            event,
        )
        .await
        .map_err(|e| ApiError::store("account", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a permission on an account.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/accounts/{account_id}/permissions/{kind}/{principal}",
    tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("account_id" = String, Path, description = "account id"),
        ("kind" = String, Path, description = "application or user"), ("principal" = String, Path, description = "id or name")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn remove_account_permission(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, account_id, kind, principal)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let account_id = parse_id("account id", &account_id)?;
    let kind = PrincipalKind::parse(&kind).ok_or_else(|| ApiError::bad_param("kind must be application or user"))?;
    let principal = principal_id(&state, &tenant.id, kind, &principal).await?;
    let event = admin
        .event(&state, Action::AccountPermissionRemove, ObjectType::Account)
        .tenant(tenant.id.clone())
        .object(account_id.clone())
        .details(&serde_json::json!({ "principalKind": kind.as_str(), "principal": principal }));
    state
        .store()
        .remove_account_permission(&tenant.id, &account_id, kind, &principal, event)
        .await
        .map_err(|e| ApiError::store("permission", e))?;
    Ok(StatusCode::NO_CONTENT)
}
