//! Approval requests of credential views: list, approve, deny. An approver is an admin token
//! or a person with the change permission on the account, never the person the request was
//! made for (and never an application: their tokens are not accepted here). The requester is
//! notified of the decision through the outbox.

use axum::Json;
use axum::extract::{Path, State};
use latchkey_core::app_notices::ApprovalDecidedNotice;
use latchkey_core::{Action, EmailAddress, Notification, ObjectType, Outcome};
use latchkey_proto as proto;
use latchkey_store::{ApprovalRequest, ApprovalState, Decision, PrincipalKind, StoreError};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// Longest comment.
const MAX_COMMENT: usize = 1000;

fn state_dto(s: ApprovalState) -> proto::ApprovalState {
    match s {
        ApprovalState::Pending => proto::ApprovalState::Pending,
        ApprovalState::Approved => proto::ApprovalState::Approved,
        ApprovalState::Denied => proto::ApprovalState::Denied,
        ApprovalState::Expired => proto::ApprovalState::Expired,
        ApprovalState::Used => proto::ApprovalState::Used,
    }
}

fn approval_dto(r: ApprovalRequest, tenant_slug: &str) -> proto::Approval {
    proto::Approval {
        id: r.id,
        tenant: tenant_slug.to_owned(),
        account_id: r.account_id,
        account_name: r.account_name,
        requester_kind: r.requester_kind,
        requester_id: r.requester_id,
        requester_name: r.requester_name,
        on_behalf_of: r.on_behalf_of,
        reason: r.reason,
        state: state_dto(r.state),
        created_at: r.created_at,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        comment: r.comment,
        valid_until: r.valid_until,
        views: r.views,
    }
}

/// `?state=` of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApprovalQuery {
    /// pending, approved, denied, expired or used; all when absent.
    pub state: Option<String>,
}

/// The accounts a person may decide on: those with the change permission.
async fn decidable(state: &AppState, caller: &Caller, tenant_id: &str) -> Result<Option<Vec<String>>, ApiError> {
    match caller {
        Caller::Admin(_) => Ok(None),
        Caller::User(u) => {
            let accounts = state
                .store()
                .permitted_accounts(tenant_id, PrincipalKind::User, &u.user_id)
                .await
                .map_err(|e| ApiError::store("account", e))?;
            Ok(Some(accounts.into_iter().filter(|a| a.change).map(|a| a.account.id).collect()))
        }
    }
}

/// Approval requests, newest first: every request for an admin token, those on accounts the
/// person may change for a person.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/approvals", tag = "applications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ApprovalQuery),
    responses((status = 200, body = proto::ListResponse<proto::Approval>), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn list_approvals(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ApprovalQuery>,
) -> Result<Json<proto::ListResponse<proto::Approval>>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let filter = match query.state.as_deref() {
        None => None,
        Some(s) => Some(
            ApprovalState::parse(s)
                .ok_or_else(|| ApiError::bad_param("state must be pending, approved, denied, expired or used"))?,
        ),
    };
    let allowed = decidable(&state, &caller, &tenant.id).await?;
    let list =
        state.store().list_approvals(&tenant.id, filter, 1000).await.map_err(|e| ApiError::store("approval", e))?;
    Ok(Json(proto::ListResponse {
        items: list
            .into_iter()
            .filter(|r| allowed.as_ref().is_none_or(|ids| ids.contains(&r.account_id)))
            .map(|r| approval_dto(r, &tenant.slug))
            .collect(),
        next: None,
    }))
}

async fn decide(
    state: AppState,
    caller: Caller,
    tenant: String,
    id: String,
    body: proto::ApprovalDecision,
    approve: bool,
) -> Result<Json<proto::Approval>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let id = uuid::Uuid::parse_str(id.trim())
        .map(|u| u.to_string())
        .map_err(|_| ApiError::bad_param("approval id is not a valid UUID"))?;
    let comment = crate::routes::dto::optional_text("comment", body.comment, MAX_COMMENT)?;
    let request = state.store().approval(&tenant.id, &id).await.map_err(|e| ApiError::store("approval", e))?;
    let action = if approve { Action::ApprovalApprove } else { Action::ApprovalDeny };
    let event = caller.event(&state, action, ObjectType::Approval).tenant(tenant.id.clone()).object(id.clone());
    if let Caller::User(u) = &caller {
        let refusal = if u.user_id == request.on_behalf_of {
            Some("a request cannot be decided by the person it was made for")
        } else if !decidable(&state, &caller, &tenant.id).await?.is_some_and(|ids| ids.contains(&request.account_id)) {
            Some("deciding needs the change permission on the account")
        } else {
            None
        };
        if let Some(why) = refusal {
            let denied = event.outcome(Outcome::Denied).details(&serde_json::json!({ "problem": why }));
            state.store().append_audit(vec![denied]).await.map_err(|e| ApiError::store("audit", e))?;
            return Err(ApiError::forbidden(why));
        }
    }
    let decided_by = event.actor.clone();
    let slug = tenant.slug.clone();
    let notices = Box::new(move |r: &ApprovalRequest, email: Option<String>| {
        let recipients: Vec<EmailAddress> = email.and_then(|e| EmailAddress::parse(&e).ok()).into_iter().collect();
        vec![Notification::ApprovalDecided(ApprovalDecidedNotice {
            tenant_slug: slug,
            approval_id: r.id.clone(),
            account_id: r.account_id.clone(),
            account_name: r.account_name.clone(),
            requester: r.requester_name.clone(),
            on_behalf_of: r.on_behalf_of.clone(),
            approved: r.state == ApprovalState::Approved,
            decided_by: r.decided_by.clone().unwrap_or_default(),
            decided_at: r.decided_at.unwrap_or(r.created_at),
            comment: r.comment.clone(),
            valid_until: r.valid_until,
            recipients,
        })]
    });
    let decided = state
        .store()
        .decide_approval(Decision {
            tenant_id: tenant.id.clone(),
            approval_id: id,
            approve,
            decided_by,
            comment,
            now: state.clock().now(),
            event,
            notices,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(why) => ApiError::Client(latchkey_proto::ProblemCode::Conflict, why.into()),
            e => ApiError::store("approval", e),
        })?;
    Ok(Json(approval_dto(decided, &tenant.slug)))
}

/// Approve a pending request: views are allowed for the policy's confirmation timeout.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/approvals/{id}/approve", tag = "applications",
    request_body = proto::ApprovalDecision, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "approval id")),
    responses((status = 200, body = proto::Approval), (status = 400, body = proto::Problem),
        (status = 403, body = proto::Problem, description = "the approver is the person the request was made for, or may not change the account"),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem, description = "already decided")))]
pub async fn approve_approval(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::ApprovalDecision>,
) -> Result<Json<proto::Approval>, ApiError> {
    decide(state, caller, tenant, id, body, true).await
}

/// Deny a pending request.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/approvals/{id}/deny", tag = "applications",
    request_body = proto::ApprovalDecision, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("id" = String, Path, description = "approval id")),
    responses((status = 200, body = proto::Approval), (status = 400, body = proto::Problem), (status = 403, body = proto::Problem),
        (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn deny_approval(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::ApprovalDecision>,
) -> Result<Json<proto::Approval>, ApiError> {
    decide(state, caller, tenant, id, body, false).await
}
