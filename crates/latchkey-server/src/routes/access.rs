//! Access targets: the ordered list (create, replace, move, delete), the Lithnet import, and
//! the answers "which target decides and why" and "who can read this device".

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::access::{
    AuditSettings, Decision, DenyReason, Grants, MatchVia, Operation, ReaderVia, RuleIndex, Target, TargetKind,
};
use latchkey_core::model::{Device, MemberKind};
use latchkey_core::notification::EmailAddress;
use latchkey_core::{Action, ContainerDn, DisplayName, ObjectType, Principal, TimeSpan};
use latchkey_proto as proto;
use latchkey_store::{NewTarget, Resolution};
use serde::Deserialize;
use uuid::Uuid;

use super::dto;
use super::support_account::tenant_device;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::lithnet;
use crate::state::AppState;

/// The most readers or e-mail addresses one target holds.
const MAX_LIST: usize = 500;
/// The longest expire-after accepted (ten years).
const MAX_EXPIRE_DAYS: i64 = 3650;

/// The target a body describes. Every field is checked; the message names the field.
fn target_from_spec(spec: proto::TargetSpec) -> Result<NewTarget, ApiError> {
    let kind = TargetKind::parse(&spec.kind)
        .ok_or_else(|| ApiError::invalid(format!("type `{}` is not Computer, Group or Container", spec.kind)))?;
    let name = DisplayName::parse("name", &spec.name)?.as_str().to_owned();
    if kind == TargetKind::Container {
        ContainerDn::parse(&name)?;
    }
    let expire_after = spec.expire_after.as_deref().map(parse_expire_after).transpose()?;
    if spec.readers.len() > MAX_LIST || spec.audit.email_addresses.len() > MAX_LIST {
        return Err(ApiError::invalid(format!("a target holds at most {MAX_LIST} readers and addresses")));
    }
    let readers = spec
        .readers
        .iter()
        .map(|r| Principal::parse(r).map_err(|e| ApiError::invalid(format!("readers: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let grants = match &spec.grants {
        None => Grants::default(),
        Some(list) => {
            let ops = list
                .iter()
                .map(|g| {
                    Operation::parse(g).ok_or_else(|| {
                        ApiError::invalid(format!("grants: `{g}` is not password, history or support-account"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Grants::from_operations(&ops)
        }
    };
    let email_addresses = spec
        .audit
        .email_addresses
        .iter()
        .map(|a| EmailAddress::parse(a).map(|a| a.as_str().to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::invalid(format!("audit.emailAddresses: {e}")))?;
    Ok(NewTarget {
        kind,
        name,
        expire_after,
        grants,
        audit: AuditSettings {
            email_on_success: spec.audit.email_on_success,
            email_on_failure: spec.audit.email_on_failure,
            email_addresses,
        },
        enabled: spec.enabled,
        description: dto::optional_text("description", spec.description, 1000)?,
        readers,
    })
}

/// A positive TimeSpan of at most ten years.
fn parse_expire_after(text: &str) -> Result<TimeSpan, ApiError> {
    let span = TimeSpan::parse(text).map_err(|e| ApiError::invalid(format!("expireAfter: {e}")))?;
    if span <= TimeSpan::ZERO || span.to_duration() > time::Duration::days(MAX_EXPIRE_DAYS) {
        return Err(ApiError::invalid(format!(
            "expireAfter must be longer than zero and at most {MAX_EXPIRE_DAYS} days"
        )));
    }
    Ok(span)
}

fn target_view(t: &Target) -> proto::TargetView {
    proto::TargetView {
        id: t.id.clone(),
        position: t.position,
        kind: t.kind.as_str().to_owned(),
        name: t.name.clone(),
        expire_after: t.expire_after.map(|s| s.to_string()),
        readers: t.readers.iter().map(reader_view).collect(),
        grants: grant_names(t.grants),
        audit: audit_view(&t.audit),
        enabled: t.enabled,
        description: t.description.clone(),
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

fn audit_view(a: &AuditSettings) -> proto::TargetAudit {
    proto::TargetAudit {
        email_on_success: a.email_on_success,
        email_on_failure: a.email_on_failure,
        email_addresses: a.email_addresses.clone(),
    }
}

fn grant_names(g: Grants) -> Vec<String> {
    g.operations().iter().map(|o| o.as_str().to_owned()).collect()
}

fn reader_view(r: &latchkey_core::access::Reader) -> proto::TargetReader {
    proto::TargetReader { principal: r.principal.clone(), kind: r.kind.as_str().to_owned(), id: r.id.clone() }
}

fn target_ref(t: &Target) -> proto::TargetRef {
    proto::TargetRef { id: t.id.clone(), position: t.position, kind: t.kind.as_str().to_owned(), name: t.name.clone() }
}

fn target_id(raw: &str) -> Result<String, ApiError> {
    Uuid::parse_str(raw).map(|u| u.to_string()).map_err(|_| ApiError::bad_param("target id is not a valid UUID"))
}

/// A tenant's targets in list order.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/access/targets", tag = "access", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::ListResponse<proto::TargetView>), (status = 404, body = proto::Problem)))]
pub async fn list_targets(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::ListResponse<proto::TargetView>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let targets = state.store().list_targets(&tenant.id).await.map_err(|e| ApiError::store("target", e))?;
    Ok(Json(proto::ListResponse { items: targets.iter().map(target_view).collect(), next: None }))
}

/// One target.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/access/targets/{target_id}", tag = "access",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("target_id" = String, Path, description = "target id")),
    responses((status = 200, body = proto::TargetView), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn get_target(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<proto::TargetView>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = target_id(&id)?;
    let t = state.store().target(&tenant.id, &id).await.map_err(|e| ApiError::store("target", e))?;
    Ok(Json(target_view(&t)))
}

/// Add a target (at `position`, or at the end). Readers must be users or groups of the tenant.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/access/targets", tag = "access", security(("bearer" = [])),
    request_body = proto::TargetSpec, params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::TargetView), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn create_target(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(spec): ApiJson<proto::TargetSpec>,
) -> Result<(StatusCode, Json<proto::TargetView>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let position = spec.position;
    if position.is_some_and(|p| p < 1) {
        return Err(ApiError::invalid("position must be at least 1"));
    }
    let target = target_from_spec(spec)?;
    let id = Uuid::new_v4().to_string();
    let event = admin
        .event(&state, Action::TargetCreate, ObjectType::Target)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "type": target.kind.as_str(), "name": target.name }));
    let t = state
        .store()
        .create_target(&tenant.id, id, target, position, dto::stored_now(&state), event)
        .await
        .map_err(|e| ApiError::store("target", e))?;
    Ok((StatusCode::CREATED, Json(target_view(&t))))
}

/// Replace a target's settings and readers; its place in the list stays.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/access/targets/{target_id}", tag = "access",
    security(("bearer" = [])), request_body = proto::TargetSpec,
    params(("tenant" = String, Path, description = "tenant slug"), ("target_id" = String, Path, description = "target id")),
    responses((status = 200, body = proto::TargetView), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn replace_target(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(spec): ApiJson<proto::TargetSpec>,
) -> Result<Json<proto::TargetView>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = target_id(&id)?;
    if spec.position.is_some() {
        return Err(ApiError::invalid("position is set with the move endpoint"));
    }
    let target = target_from_spec(spec)?;
    let event = admin
        .event(&state, Action::TargetUpdate, ObjectType::Target)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "type": target.kind.as_str(), "name": target.name }));
    let t = state
        .store()
        .update_target(&tenant.id, &id, target, dto::stored_now(&state), event)
        .await
        .map_err(|e| ApiError::store("target", e))?;
    Ok(Json(target_view(&t)))
}

/// Move a target to another place in the list.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/access/targets/{target_id}/move", tag = "access",
    security(("bearer" = [])), request_body = proto::TargetMove,
    params(("tenant" = String, Path, description = "tenant slug"), ("target_id" = String, Path, description = "target id")),
    responses((status = 200, body = proto::TargetView), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn move_target(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<proto::TargetMove>,
) -> Result<Json<proto::TargetView>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = target_id(&id)?;
    if body.position < 1 {
        return Err(ApiError::invalid("position must be at least 1"));
    }
    let event = admin
        .event(&state, Action::TargetMove, ObjectType::Target)
        .tenant(tenant.id.clone())
        .object(id.clone())
        .details(&serde_json::json!({ "position": body.position }));
    let t = state
        .store()
        .move_target(&tenant.id, &id, body.position, dto::stored_now(&state), event)
        .await
        .map_err(|e| ApiError::store("target", e))?;
    Ok(Json(target_view(&t)))
}

/// Delete a target; the ones after it move up.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/access/targets/{target_id}", tag = "access",
    security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("target_id" = String, Path, description = "target id")),
    responses((status = 204), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn delete_target(
    State(state): State<AppState>,
    admin: Admin,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let id = target_id(&id)?;
    let event =
        admin.event(&state, Action::TargetDelete, ObjectType::Target).tenant(tenant.id.clone()).object(id.clone());
    state.store().delete_target(&tenant.id, &id, event).await.map_err(|e| ApiError::store("target", e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Import the `<lithnet-laps><targets>` of a Lithnet web.config, in order. A malformed file, an
/// unknown type or an unknown reader is reported with its line and nothing is imported; with
/// `dryRun` the report is all that happens.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/access/import/lithnet", tag = "access",
    security(("bearer" = [])), request_body = proto::LithnetImportRequest,
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::LithnetImportReport, description = "imported, or the dry run's report"),
        (status = 400, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 422, body = proto::LithnetImportReport, description = "the file has problems; nothing was imported")))]
pub async fn import_lithnet(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::LithnetImportRequest>,
) -> Result<(StatusCode, Json<proto::LithnetImportReport>), ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let refused = |problems: Vec<proto::ImportProblem>, targets| {
        let report = proto::LithnetImportReport { dry_run: body.dry_run, imported: false, targets, problems };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(report)))
    };
    let parsed = match lithnet::parse_targets(&body.web_config) {
        Ok(t) => t,
        Err(problems) => {
            let problems = problems.into_iter().map(|p| proto::ImportProblem { line: p.line, message: p.message });
            return refused(problems.collect(), Vec::new());
        }
    };
    // Resolve every reader first, so the report names each unknown one with its line.
    let mut problems = Vec::new();
    for t in &parsed {
        let resolved = state
            .store()
            .resolve_principals(&tenant.id, &t.readers)
            .await
            .map_err(|e| ApiError::store("directory", e))?;
        for (p, r) in t.readers.iter().zip(resolved) {
            let message = match r {
                Resolution::Found(_) => continue,
                Resolution::Unknown => format!("reader `{p}` is not a user or group of this tenant"),
                Resolution::Ambiguous => format!("reader `{p}` names both a user and a group"),
            };
            problems.push(proto::ImportProblem { line: t.line, message });
        }
    }
    let mut report: Vec<proto::ImportedTarget> = parsed.iter().map(imported_view).collect();
    if !problems.is_empty() {
        return refused(problems, report);
    }
    if body.dry_run {
        let report = proto::LithnetImportReport { dry_run: true, imported: false, targets: report, problems };
        return Ok((StatusCode::OK, Json(report)));
    }
    let targets: Vec<(String, NewTarget)> = parsed
        .into_iter()
        .map(|t| {
            let target = NewTarget {
                kind: t.kind,
                name: t.name,
                expire_after: t.expire_after,
                grants: Grants::default(),
                audit: t.audit,
                enabled: true,
                description: None,
                readers: t.readers,
            };
            (Uuid::new_v4().to_string(), target)
        })
        .collect();
    for (r, (id, _)) in report.iter_mut().zip(&targets) {
        r.id = Some(id.clone());
    }
    let event = admin
        .event(&state, Action::TargetImport, ObjectType::Target)
        .tenant(tenant.id.clone())
        .details(&serde_json::json!({ "source": "lithnet", "targets": targets.len(), "replace": body.replace }));
    state
        .store()
        .import_targets(&tenant.id, targets, body.replace, dto::stored_now(&state), event)
        .await
        .map_err(|e| ApiError::store("target", e))?;
    let report = proto::LithnetImportReport { dry_run: false, imported: true, targets: report, problems };
    Ok((StatusCode::OK, Json(report)))
}

fn imported_view(t: &lithnet::LithnetTarget) -> proto::ImportedTarget {
    proto::ImportedTarget {
        line: t.line,
        kind: t.kind.as_str().to_owned(),
        name: t.name.clone(),
        expire_after: t.expire_after.map(|s| s.to_string()),
        readers: t.readers.iter().map(|p| p.as_str().to_owned()).collect(),
        audit: audit_view(&t.audit),
        id: None,
    }
}

/// Whose access to which device to explain.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    /// The user: id, `DOMAIN\name`, `name@upn` or name.
    pub user: String,
    /// The device: deviceId or name.
    pub device: String,
    /// `password` (default), `history` or `support-account`.
    pub operation: Option<String>,
}

/// Which target decides whether the user may do the operation on the device, and why.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/access/explain", tag = "access", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ExplainQuery),
    responses((status = 200, body = proto::AccessExplanation), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn explain_access(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<ExplainQuery>,
) -> Result<Json<proto::AccessExplanation>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let op = match query.operation.as_deref() {
        None => Operation::ReadPassword,
        Some(o) => Operation::parse(o)
            .ok_or_else(|| ApiError::bad_param("operation must be password, history or support-account"))?,
    };
    let user_id = find_user(&state, &tenant.id, &query.user).await?;
    let user_name = state.store().user_name(&tenant.id, &user_id).await.map_err(|e| ApiError::store("user", e))?;
    let device = find_device(&state, &tenant.id, &query.device).await?;
    let index = state.access().index(state.store(), &tenant.id).await.map_err(|e| ApiError::store("targets", e))?;
    let decision = decide(&state, &index, &tenant.id, &user_id, &device, op).await?;
    Ok(Json(explanation(&state, &index, &tenant.id, (user_id, user_name), &device, op, &decision).await?))
}

/// The decision for a user and a device, read from the store and the tenant's index.
pub(crate) async fn decide(
    state: &AppState,
    index: &RuleIndex,
    tenant_id: &str,
    user_id: &str,
    device: &Device,
    op: Operation,
) -> Result<Decision, ApiError> {
    let store = state.store();
    let user = store.user_access_facts(tenant_id, user_id).await.map_err(|e| ApiError::store("user", e))?;
    let facts = store.device_access_facts(tenant_id, &device.id).await.map_err(|e| ApiError::store("device", e))?;
    Ok(index.decide(&user, &facts, op))
}

async fn explanation(
    state: &AppState,
    index: &RuleIndex,
    tenant_id: &str,
    (user_id, user_name): (String, String),
    device: &Device,
    op: Operation,
    decision: &Decision,
) -> Result<proto::AccessExplanation, ApiError> {
    let target = decision.matched.as_ref().map(|m| &index.targets()[m.target]);
    let matched_by = match &decision.matched {
        None => None,
        Some(m) => Some(match_text(state, tenant_id, &m.via).await?),
    };
    let reader_by = match &decision.reader {
        None => None,
        Some(ReaderVia::User) => Some(format!("{user_name} is listed as a reader")),
        Some(ReaderVia::Group { group_id }) => {
            let group = group_name(state, tenant_id, group_id).await?;
            Some(format!("{user_name} is a member of {group}, a reader"))
        }
    };
    let summary = match (target, decision.denied) {
        (None, _) => format!("Denied: no target matches {}.", device.name),
        (Some(t), None) => format!(
            "Allowed: target {} ({} `{}`) decides, because {}; {}.",
            t.position,
            t.kind.as_str(),
            t.name,
            matched_by.as_deref().unwrap_or_default(),
            reader_by.as_deref().unwrap_or_default()
        ),
        (Some(t), Some(why)) => format!(
            "Denied: target {} ({} `{}`) decides, because {}; {}.",
            t.position,
            t.kind.as_str(),
            t.name,
            matched_by.as_deref().unwrap_or_default(),
            why.as_str()
        ),
    };
    Ok(proto::AccessExplanation {
        allowed: decision.allowed(),
        operation: op.as_str().to_owned(),
        user_id,
        user_name,
        device_id: device.id.clone(),
        device_name: device.name.clone(),
        target: target.map(target_ref),
        matched_by,
        reader_by,
        denied_because: decision.denied.map(|d: DenyReason| d.as_str().to_owned()),
        summary,
    })
}

async fn match_text(state: &AppState, tenant_id: &str, via: &MatchVia) -> Result<String, ApiError> {
    Ok(match via {
        MatchVia::ComputerName => "it names the device".to_owned(),
        MatchVia::Group { group_id } => {
            format!("the device is a member of {}", group_name(state, tenant_id, group_id).await?)
        }
        MatchVia::Container { dn } => format!("the device is in container {dn}"),
    })
}

async fn group_name(state: &AppState, tenant_id: &str, group_id: &str) -> Result<String, ApiError> {
    let g = state.store().group(tenant_id, group_id).await.map_err(|e| ApiError::store("group", e))?;
    Ok(format!("group `{}`", g.name))
}

/// A user by id or by principal.
async fn find_user(state: &AppState, tenant_id: &str, raw: &str) -> Result<String, ApiError> {
    if let Ok(id) = Uuid::parse_str(raw.trim()) {
        return Ok(id.to_string());
    }
    let p = Principal::parse(raw).map_err(|e| ApiError::bad_param(format!("user: {e}")))?;
    let resolved = state
        .store()
        .resolve_principals(tenant_id, std::slice::from_ref(&p))
        .await
        .map_err(|e| ApiError::store("user", e))?;
    match resolved.into_iter().next() {
        Some(Resolution::Found(r)) if r.kind == MemberKind::User => Ok(r.id),
        _ => Err(ApiError::not_found("user")),
    }
}

/// A device by deviceId or by name.
async fn find_device(state: &AppState, tenant_id: &str, raw: &str) -> Result<Device, ApiError> {
    let id = match Uuid::parse_str(raw.trim()) {
        Ok(id) => id.to_string(),
        Err(_) => state.store().device_id_by_name(tenant_id, raw).await.map_err(|e| ApiError::store("device", e))?,
    };
    tenant_device(state, tenant_id, &id).await
}

/// Which device to list the readers of.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WhoCanReadQuery {
    /// The device: deviceId or name.
    pub device: String,
}

/// The readers of the target that decides access to a device.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/access/who-can-read", tag = "access", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), WhoCanReadQuery),
    responses((status = 200, body = proto::WhoCanRead), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn who_can_read(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiQuery(query): ApiQuery<WhoCanReadQuery>,
) -> Result<Json<proto::WhoCanRead>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let device = find_device(&state, &tenant.id, &query.device).await?;
    let index = state.access().index(state.store(), &tenant.id).await.map_err(|e| ApiError::store("targets", e))?;
    let facts =
        state.store().device_access_facts(&tenant.id, &device.id).await.map_err(|e| ApiError::store("device", e))?;
    let matched = index.match_device(&facts);
    let target = matched.as_ref().map(|m| &index.targets()[m.target]);
    let matched_by = match &matched {
        None => None,
        Some(m) => Some(match_text(&state, &tenant.id, &m.via).await?),
    };
    Ok(Json(proto::WhoCanRead {
        device_id: device.id,
        device_name: device.name,
        target: target.map(target_ref),
        matched_by,
        readers: target.map(|t| t.readers.iter().map(reader_view).collect()).unwrap_or_default(),
        grants: target.map(|t| grant_names(t.grants)).unwrap_or_default(),
    }))
}
