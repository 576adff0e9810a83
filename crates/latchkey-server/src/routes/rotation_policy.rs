//! Rotation policies: the tenant's and device groups'. A device follows the policy of its
//! group with the lowest priority, else the tenant's, else the default.

use axum::Json;
use axum::extract::{Path, State};
use latchkey_core::{Action, CharClasses, ObjectType, RotationPolicy};
use latchkey_proto as proto;
use latchkey_store::ScopedPolicy;
use time::Duration;

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

/// The priority of a group policy that names none.
const DEFAULT_PRIORITY: i64 = 100;
/// Largest priority magnitude.
const MAX_PRIORITY: i64 = 1_000_000;

/// The policy a body describes; missing fields take the default. Every bound is checked and
/// the message names the field.
fn policy_from(body: &proto::RotationPolicySet) -> Result<RotationPolicy, ApiError> {
    let d = RotationPolicy::default();
    let classes = match &body.classes {
        Some(text) => CharClasses::parse(text).map_err(|e| ApiError::invalid(format!("classes: {e}")))?,
        None => d.classes,
    };
    let p = RotationPolicy {
        max_age: body.max_age_seconds.map_or(d.max_age, Duration::seconds),
        length: body.length.unwrap_or(d.length),
        classes,
        passphrase_words: body.passphrase_words.or(d.passphrase_words),
        history: body.history.unwrap_or(d.history),
        support_lifetime: body.support_lifetime_seconds.map_or(d.support_lifetime, Duration::seconds),
        poll_interval: body.poll_interval_seconds.map_or(d.poll_interval, Duration::seconds),
    };
    p.validate().map_err(ApiError::invalid)?;
    Ok(p)
}

fn audit_details(p: &ScopedPolicy) -> serde_json::Value {
    let r = &p.policy;
    serde_json::json!({
        "scope": if p.group_id.is_some() { "group" } else { "tenant" },
        "group": p.group_id,
        "priority": p.group_id.as_ref().map(|_| p.priority),
        "maxAgeSeconds": r.max_age.whole_seconds(),
        "length": r.length,
        "classes": r.classes.as_list(),
        "passphraseWords": r.passphrase_words,
        "history": r.history,
        "supportLifetimeSeconds": r.support_lifetime.whole_seconds(),
        "pollIntervalSeconds": r.poll_interval.whole_seconds(),
    })
}

async fn store_policy(
    state: &AppState,
    admin: &Admin,
    tenant: &latchkey_core::model::Tenant,
    scoped: ScopedPolicy,
) -> Result<Json<proto::RotationPolicy>, ApiError> {
    let event = admin
        .event(state, Action::RotationPolicySet, ObjectType::RotationPolicy)
        .tenant(tenant.id.clone())
        .object(scoped.group_id.clone().unwrap_or_else(|| tenant.id.clone()))
        .details(&audit_details(&scoped));
    state.store().set_policy(&tenant.id, scoped.clone(), event).await.map_err(|e| ApiError::store("group", e))?;
    Ok(Json(dto::rotation_policy(scoped, &tenant.slug)))
}

/// Set the tenant's rotation policy (replaces it).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/rotation-policy", tag = "devices",
    request_body = proto::RotationPolicySet, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::RotationPolicy), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn set_tenant_rotation_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::RotationPolicySet>,
) -> Result<Json<proto::RotationPolicy>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    if body.priority.is_some() {
        return Err(ApiError::invalid("priority applies to group policies only"));
    }
    let policy = policy_from(&body)?;
    let scoped = ScopedPolicy { group_id: None, priority: 0, policy, updated_at: dto::stored_now(&state) };
    store_policy(&state, &admin, &tenant, scoped).await
}

/// Set a device group's rotation policy (replaces it).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/groups/{group_id}/rotation-policy", tag = "devices",
    request_body = proto::RotationPolicySet, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("group_id" = String, Path, description = "group id")),
    responses((status = 200, body = proto::RotationPolicy), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn set_group_rotation_policy(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, group_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::RotationPolicySet>,
) -> Result<Json<proto::RotationPolicy>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let group_id = uuid::Uuid::parse_str(group_id.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param("group id is not a valid UUID"))?;
    let priority = body.priority.unwrap_or(DEFAULT_PRIORITY);
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&priority) {
        return Err(ApiError::invalid("priority must be between -1000000 and 1000000"));
    }
    let policy = policy_from(&body)?;
    let scoped = ScopedPolicy { group_id: Some(group_id), priority, policy, updated_at: dto::stored_now(&state) };
    store_policy(&state, &admin, &tenant, scoped).await
}

/// The tenant's rotation policies: the tenant's own first, then group policies by priority.
/// Devices that no policy covers follow the default.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/rotation-policies", tag = "devices", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::RotationPolicy>), (status = 404, body = proto::Problem)))]
pub async fn list_rotation_policies(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::RotationPolicy>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let policies = state.store().list_policies(&tenant.id).await.map_err(|e| ApiError::store("tenant", e))?;
    let items = policies.into_iter().map(|p| dto::rotation_policy(p, &tenant.slug)).collect();
    Ok(Json(proto::ListResponse { items, next: None }))
}
