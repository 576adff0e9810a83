//! Reading and verifying the audit log.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use latchkey_core::{Action, Outcome};
use latchkey_proto as proto;
use latchkey_store::AuditFilter;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::dto;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// Filters of the audit list. Every given filter narrows the result.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    /// Tenant slug (tenant tokens always see only their own tenant).
    pub tenant: Option<String>,
    pub actor: Option<String>,
    /// e.g. `secret.read`
    pub action: Option<String>,
    pub object_id: Option<String>,
    /// `success`, `denied` or `failed`
    pub outcome: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<String>,
    /// RFC 3339; events before.
    pub until: Option<String>,
    /// Sequence number cursor, oldest first (the `next` of the previous page).
    pub after: Option<i64>,
    /// Sequence number cursor, newest first: events before it, newest first (the `next` of
    /// the previous page). Not with `after`.
    pub before: Option<i64>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
}

fn parse_time(field: &str, raw: &Option<String>) -> Result<Option<i64>, ApiError> {
    raw.as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map(latchkey_core::clock::to_millis).map_err(|_| {
                ApiError::bad_param(format!("{field} must be an RFC 3339 time such as 2026-01-31T12:00:00Z"))
            })
        })
        .transpose()
}

/// Audit events, oldest first (or newest first with `before`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = proto::ListResponse<proto::AuditEvent>), (status = 400, body = proto::Problem)))]
pub async fn list_audit(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<proto::ListResponse<proto::AuditEvent>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if q.after.is_some() && q.before.is_some() {
        return Err(ApiError::bad_param("give either after or before, not both"));
    }
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_param("limit must be between 1 and 1000"));
    }
    if let Some(a) = &q.action
        && Action::parse(a).is_none()
    {
        return Err(ApiError::bad_param("action is not a known audit action"));
    }
    if let Some(o) = &q.outcome
        && Outcome::parse(o).is_none()
    {
        return Err(ApiError::bad_param("outcome must be success, denied or failed"));
    }
    let tenant_id = match (&q.tenant, &admin.tenant_id) {
        (Some(slug), _) => Some(admin.tenant(&state, slug).await?.id),
        (None, Some(own)) => Some(own.clone()),
        (None, None) => None,
    };
    let filter = AuditFilter {
        tenant_id,
        actor: q.actor,
        action: q.action,
        object_id: q.object_id,
        outcome: q.outcome,
        since_ms: parse_time("since", &q.since)?,
        until_ms: parse_time("until", &q.until)?,
        after_seq: q.after,
        before_seq: q.before,
        limit,
    };
    let events = state.store().list_audit(&filter).await.map_err(|e| ApiError::store("audit", e))?;
    // Only the tenants this page names, not every tenant of the installation.
    let mut slugs: HashMap<String, String> = HashMap::new();
    for id in events.iter().filter_map(|e| e.body.tenant_id.as_ref()) {
        if !slugs.contains_key(id) {
            let tenant = state.store().tenant_by_id(id).await.map_err(|e| ApiError::store("tenant", e))?;
            slugs.insert(tenant.id, tenant.slug);
        }
    }
    let next = (events.len() as i64 == limit).then(|| events.last().map(|e| e.seq.to_string())).flatten();
    let items = events
        .into_iter()
        .map(|e| {
            let slug = e.body.tenant_id.as_ref().and_then(|id| slugs.get(id).cloned());
            dto::audit_event(e, slug)
        })
        .collect();
    Ok(Json(proto::ListResponse { items, next }))
}

/// Check the whole hash chain (global tokens only).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = proto::AuditVerification), (status = 403, body = proto::Problem)))]
pub async fn verify_audit(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Json<proto::AuditVerification>, ApiError> {
    admin.require_global()?;
    let result = state.store().verify_audit_chain().await.map_err(|e| ApiError::store("audit", e))?;
    Ok(Json(match result {
        Ok(checked) => proto::AuditVerification { ok: true, checked, broken_at: None, problem: None },
        Err(brk) => proto::AuditVerification {
            ok: false,
            checked: (brk.seq - 1).max(0) as u64,
            broken_at: Some(brk.seq),
            problem: Some(brk.problem.to_owned()),
        },
    }))
}
