//! Just-in-time admin elevation: request, list, show, approve, deny, revoke, extend, and an
//! admin's audited recovery of a grant's temporary password.
//!
//! A request is checked completely (provider and policy, minutes, reason, device, ticket,
//! tech account name) before anything is stored. Without approval the grant step runs at once
//! and the answer says how it went: active (the password works now), approved (the directory
//! could not be reached yet; the engine keeps trying) or a 409 refusal with nothing left
//! behind.

use std::time::Duration as StdDuration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::jit::{self, GrantState, Provider};
use latchkey_core::model::Tenant;
use latchkey_core::{Action, ObjectType, Outcome};
use latchkey_proto as proto;
use latchkey_proto::ProblemCode;
use latchkey_store::{JitGrant, NewJitGrant};
use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};

use super::support_account::tenant_device;
use crate::auth::{Admin, Caller, user_actor};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::jit::tickets::{TicketError, adapter};
use crate::state::AppState;

/// How long a request waits for its grant step before answering `approved`.
const GRANT_WAIT: StdDuration = StdDuration::from_secs(20);

/// The answer DTO of a grant.
pub(crate) fn grant_dto(g: &JitGrant, tenant_slug: &str, now: OffsetDateTime) -> proto::JitGrant {
    proto::JitGrant {
        id: g.id.clone(),
        tenant: tenant_slug.to_owned(),
        provider: g.provider.as_str().to_owned(),
        device_id: g.device_id.clone(),
        requester: g.requester.clone(),
        account: g.account_name.clone(),
        ticket: g.ticket.clone(),
        reason: g.reason.clone(),
        minutes: g.minutes,
        state: g.state.as_str().to_owned(),
        expired: g.is_expired(now),
        approver: g.approver.clone(),
        created_at: g.created_at,
        start_at: g.start_at,
        end_at: g.end_at,
        revoked_at: g.revoked_at,
        attempts: g.attempts,
        last_error: g.last_error.clone(),
        overdue: g.overdue_at.is_some(),
    }
}

fn request_error(e: jit::RequestError) -> ApiError {
    ApiError::invalid(e.to_string())
}

/// The caller's audit actor (the requester key of grants they ask for).
fn actor(caller: &Caller) -> String {
    match caller {
        Caller::Admin(a) => a.actor(),
        Caller::User(u) => u.actor(),
    }
}

/// Ask for admin access. People ask for themselves; admin tokens name the person
/// (`requester`). The temporary password is in the answer, this once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/jit/grants", tag = "jit", request_body = proto::JitRequest,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::JitGrantCreated, description = "active, or waiting for approval or the directory"),
        (status = 400, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem, description = "an open grant exists, or the directory or device refused (nothing was left behind)"),
        (status = 503, body = proto::Problem)))]
pub async fn request_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::JitRequest>,
) -> Result<(StatusCode, Json<proto::JitGrantCreated>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let provider = Provider::parse(body.provider.trim())
        .ok_or_else(|| ApiError::invalid(format!("unknown provider `{}` (directory or device)", body.provider)))?;
    let policy = state
        .config()
        .jit
        .policy(&tenant.slug, provider)
        .cloned()
        .ok_or_else(|| ApiError::invalid(format!("the {provider} provider is not set up for this tenant")))?;
    let reason = jit::check_reason(&body.reason).map_err(request_error)?;
    let minutes = jit::check_minutes(body.minutes, policy.max_minutes).map_err(request_error)?;
    let ticket = body.ticket.trim().to_owned();
    if ticket.is_empty() || ticket.chars().count() > 100 {
        return Err(ApiError::invalid("ticket is required (at most 100 characters)"));
    }
    let requester = match (&caller, body.requester.as_deref().map(str::trim)) {
        (Caller::User(u), None) => u.user_name.clone(),
        (Caller::User(_), Some(_)) => return Err(ApiError::invalid("requester can only be set with an admin token")),
        (Caller::Admin(_), Some(r)) if !r.is_empty() && r.chars().count() <= 256 => r.to_owned(),
        (Caller::Admin(_), _) => return Err(ApiError::invalid("requester is required with an admin token")),
    };
    let requester_key = match &caller {
        Caller::User(u) => u.actor(),
        Caller::Admin(_) => user_actor(&requester.to_lowercase()),
    };
    let account_name = match provider {
        Provider::Directory => {
            let prefix = policy
                .tenant_prefix
                .as_ref()
                .ok_or_else(|| ApiError::Internal("directory policy without prefix".into()))?;
            jit::directory_account_name(&requester, prefix)
        }
        Provider::Device => jit::local_account_name(&requester),
    }
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let device_id = match (provider, body.device_id.as_deref()) {
        (Provider::Device, Some(raw)) => {
            let device = tenant_device(&state, &tenant.id, raw).await?;
            if device.agent_public_key.is_none() {
                return Err(ApiError::invalid(format!(
                    "device {} has no enrolled agent; a device grant is carried out by its agent",
                    device.id
                )));
            }
            Some(device.id)
        }
        (Provider::Device, None) => return Err(ApiError::invalid("deviceId is required for the device provider")),
        (Provider::Directory, Some(_)) => return Err(ApiError::invalid("deviceId is only for the device provider")),
        (Provider::Directory, None) => None,
    };
    let tickets = adapter(state.config().jit.tickets(&tenant.slug));
    tickets.check_open(&state, &tenant.id, &ticket).await.map_err(|e| match e {
        TicketError::Unknown(t) => ApiError::invalid(format!("ticket {t} does not exist")),
        TicketError::Closed(t) => ApiError::invalid(format!("ticket {t} is closed")),
        TicketError::Unavailable(why) => {
            ApiError::Client(ProblemCode::Unavailable, format!("the ticket system cannot be asked: {why}"))
        }
    })?;

    let now = state.clock().now();
    let id = uuid::Uuid::new_v4().to_string();
    let password = crate::jit::password::generate().map_err(ApiError::Internal)?;
    let (envelope, key_id) = {
        let ring = state.keyring();
        crate::jit::password::seal(&ring, &tenant.id, &id, &password).map_err(ApiError::Internal)?
    };
    let initial = if policy.approval_required { GrantState::Requested } else { GrantState::Approved };
    let mut event =
        caller.event(&state, Action::JitRequest, ObjectType::JitGrant).tenant(tenant.id.clone()).object(id.clone());
    event.reason = Some(reason.clone());
    event.ticket = Some(ticket.clone());
    let event = event.details(&serde_json::json!({
        "provider": provider.as_str(),
        "requester": requester,
        "account": account_name,
        "minutes": minutes,
        "device": device_id,
        "approval_required": policy.approval_required,
    }));
    let grant = NewJitGrant {
        id: id.clone(),
        tenant_id: tenant.id.clone(),
        provider,
        device_id,
        requester,
        requester_key,
        account_name,
        ticket,
        reason,
        minutes,
        state: initial,
        created_at: now,
        end_at: now + Duration::minutes(minutes),
        password_envelope: envelope,
        key_id,
    };
    let mut grant = state.store().create_jit_grant(grant, event).await.map_err(|e| ApiError::store("grant", e))?;
    if grant.state == GrantState::Approved {
        grant = wait_for_step(&state, &grant.id).await?;
    }
    if grant.state == GrantState::Failed {
        return Err(ApiError::Client(
            ProblemCode::Conflict,
            format!("the access could not be granted: {}", grant.last_error.as_deref().unwrap_or("refused")),
        ));
    }
    let dto = grant_dto(&grant, &tenant.slug, state.clock().now());
    Ok((
        StatusCode::CREATED,
        Json(proto::JitGrantCreated { grant: dto, password: password.expose_secret().to_owned() }),
    ))
}

/// Nudge the engine and wait (a while) until the grant's step has run.
async fn wait_for_step(state: &AppState, id: &str) -> Result<JitGrant, ApiError> {
    state.jit_wake().notify_one();
    let deadline = tokio::time::Instant::now() + GRANT_WAIT;
    loop {
        let g = state.store().jit_grant_any(id).await.map_err(|e| ApiError::store("grant", e))?;
        // A device grant waits for its agent's next check-in: answer once the job is queued.
        let pending =
            g.state == GrantState::Approved && g.attempts == 0 && g.last_error.is_none() && g.provider_job.is_none();
        if !pending || tokio::time::Instant::now() >= deadline {
            return Ok(g);
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

/// A grant the caller may see: admins see the tenant's, people their own.
async fn visible_grant(state: &AppState, caller: &Caller, tenant: &Tenant, id: &str) -> Result<JitGrant, ApiError> {
    let g = state.store().jit_grant(&tenant.id, id).await.map_err(|e| ApiError::store("grant", e))?;
    if let Caller::User(u) = caller
        && g.requester_key != u.actor()
    {
        return Err(ApiError::not_found("grant"));
    }
    Ok(g)
}

/// Grants, newest first: all of the tenant's for admins, their own for people.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/jit/grants", tag = "jit", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::JitGrantList), (status = 404, body = proto::Problem)))]
pub async fn list_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
) -> Result<Json<proto::JitGrantList>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let own = match &caller {
        Caller::User(u) => Some(u.actor()),
        Caller::Admin(_) => None,
    };
    let grants = state
        .store()
        .list_jit_grants(&tenant.id, own.as_deref(), 1000)
        .await
        .map_err(|e| ApiError::store("grant", e))?;
    let now = state.clock().now();
    Ok(Json(proto::JitGrantList { grants: grants.iter().map(|g| grant_dto(g, &tenant.slug, now)).collect() }))
}

/// One grant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/jit/grants/{grant_id}", tag = "jit", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("grant_id" = String, Path, description = "grant id")),
    responses((status = 200, body = proto::JitGrant), (status = 404, body = proto::Problem)))]
pub async fn get_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<proto::JitGrant>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let g = visible_grant(&state, &caller, &tenant, &id).await?;
    Ok(Json(grant_dto(&g, &tenant.slug, state.clock().now())))
}

/// Approve or deny a request as `caller` (never its requester), with an optional comment
/// kept in the decision's audit event (at most 1000 characters).
pub(crate) async fn decide_jit(
    state: AppState,
    caller: Caller,
    tenant: String,
    id: String,
    approve: bool,
    comment: Option<String>,
) -> Result<Json<proto::JitGrant>, ApiError> {
    let comment = super::dto::optional_text("comment", comment, 1000)?;
    let tenant = caller.tenant(&state, &tenant).await?;
    let g = state.store().jit_grant(&tenant.id, &id).await.map_err(|e| ApiError::store("grant", e))?;
    let approver = actor(&caller);
    if g.requester_key == approver {
        return Err(ApiError::forbidden("a request cannot be approved or denied by its requester"));
    }
    let action = if approve { Action::JitApprove } else { Action::JitDeny };
    let mut event = caller.event(&state, action, ObjectType::JitGrant).tenant(tenant.id.clone()).object(id.clone());
    if let Some(comment) = &comment {
        event = event.details(&serde_json::json!({ "comment": comment }));
    }
    let now = state.clock().now();
    let g = state
        .store()
        .decide_jit_grant(&tenant.id, &id, approve, &approver, now, event)
        .await
        .map_err(|e| ApiError::store("grant", e))?;
    let g = if approve { wait_for_step(&state, &g.id).await? } else { g };
    Ok(Json(grant_dto(&g, &tenant.slug, state.clock().now())))
}

/// Approve a request (never by its requester); the grant starts now for its minutes.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/jit/grants/{grant_id}/approve", tag = "jit", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("grant_id" = String, Path, description = "grant id")),
    responses((status = 200, body = proto::JitGrant), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn approve_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<proto::JitGrant>, ApiError> {
    decide_jit(state, caller, tenant, id, true, None).await
}

/// Deny a request (never by its requester).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/jit/grants/{grant_id}/deny", tag = "jit", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("grant_id" = String, Path, description = "grant id")),
    responses((status = 200, body = proto::JitGrant), (status = 403, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn deny_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<proto::JitGrant>, ApiError> {
    decide_jit(state, caller, tenant, id, false, None).await
}

/// End a grant now (people: their own). The answer says `revoking` until the engine has
/// taken the access away; revoking twice is a conflict.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/jit/grants/{grant_id}/revoke", tag = "jit", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("grant_id" = String, Path, description = "grant id")),
    responses((status = 200, body = proto::JitGrant), (status = 404, body = proto::Problem), (status = 409, body = proto::Problem)))]
pub async fn revoke_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<proto::JitGrant>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    visible_grant(&state, &caller, &tenant, &id).await?;
    let event = caller
        .event(&state, Action::JitRevoke, ObjectType::JitGrant)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "cause": "revoked by hand" }));
    let now = state.clock().now();
    let g =
        state.store().revoke_jit_grant(&tenant.id, &id, now, event).await.map_err(|e| ApiError::store("grant", e))?;
    state.jit_wake().notify_one();
    Ok(Json(grant_dto(&g, &tenant.slug, state.clock().now())))
}

/// Move a grant's end later by some minutes, within the policy's maximum (people: their own).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/jit/grants/{grant_id}/extend", tag = "jit",
    request_body = proto::JitExtendRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("grant_id" = String, Path, description = "grant id")),
    responses((status = 200, body = proto::JitGrant), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn extend_jit(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::JitExtendRequest>,
) -> Result<Json<proto::JitGrant>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let g = visible_grant(&state, &caller, &tenant, &id).await?;
    let policy = state
        .config()
        .jit
        .policy(&tenant.slug, g.provider)
        .cloned()
        .ok_or_else(|| ApiError::invalid(format!("the {} provider is not set up for this tenant", g.provider)))?;
    if body.minutes <= 0 {
        return Err(ApiError::invalid("minutes must be at least 1"));
    }
    // Checked before any time arithmetic: a huge number of minutes is refused, not overflowed.
    let total = (g.end_at - g.start_at.unwrap_or(g.created_at)).whole_minutes().saturating_add(body.minutes);
    if total > policy.max_minutes {
        return Err(ApiError::invalid(format!(
            "the grant would last {total} minutes; the policy allows at most {}",
            policy.max_minutes
        )));
    }
    let new_end = g.end_at + Duration::minutes(body.minutes);
    let event = caller
        .event(&state, Action::JitExtend, ObjectType::JitGrant)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "minutes": body.minutes, "end_at": crate::jit::engine_time(new_end) }));
    let now = state.clock().now();
    let g = state
        .store()
        .extend_jit_grant(&tenant.id, &id, new_end, now, event)
        .await
        .map_err(|e| ApiError::store("grant", e))?;
    if g.provider == Provider::Device && g.state == GrantState::Active {
        crate::jit::extend_on_device(&state, &g).await.map_err(ApiError::Internal)?;
    }
    Ok(Json(grant_dto(&g, &tenant.slug, state.clock().now())))
}

/// Recover a grant's temporary password. Admins only; the reason is required and the read is
/// in the audit log before the password leaves the server.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/jit/grants/{grant_id}/password/recover", tag = "jit",
    request_body = proto::JitPasswordRecoverRequest, security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("grant_id" = String, Path, description = "grant id")),
    responses((status = 200, body = proto::JitPassword), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn recover_jit_password(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::JitPasswordRecoverRequest>,
) -> Result<Json<proto::JitPassword>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let reason = jit::check_reason(&body.reason).map_err(request_error)?;
    let g = state.store().jit_grant(&tenant.id, &id).await.map_err(|e| ApiError::store("grant", e))?;
    let password = {
        let ring = state.keyring();
        crate::jit::password::open(&ring, &tenant.id, &g.id, &g.password_envelope)
    };
    let mut event = admin
        .event(&state, Action::JitPasswordRecover, ObjectType::JitGrant)
        .tenant(tenant.id.clone())
        .object(id.clone());
    event.reason = Some(reason);
    event.ticket = Some(g.ticket.clone());
    let password = match password {
        Ok(p) => p,
        Err(why) => {
            let failed = event.outcome(Outcome::Failed).details(&serde_json::json!({ "problem": "cannot be opened" }));
            state.store().audit_jit(failed).await.map_err(|e| ApiError::store("audit", e))?;
            return Err(ApiError::Internal(format!("grant {id}'s password cannot be opened: {why}")));
        }
    };
    state.store().audit_jit(event).await.map_err(|e| ApiError::store("audit", e))?;
    Ok(Json(proto::JitPassword {
        grant_id: g.id,
        account: g.account_name,
        password: password.expose_secret().to_owned(),
    }))
}
