//! Directory sync of a tenant: run one now, and see the recent runs.

use axum::Json;
use axum::extract::{Path, State};
use latchkey_core::{Action, ObjectType};
use latchkey_proto::{self as proto, ProblemCode};
use latchkey_store::{DirectorySyncRun, KindCounts, SyncOutcome};

use crate::auth::Admin;
use crate::directory_sync::{SyncFailure, sync_tenant};
use crate::error::ApiError;
use crate::state::AppState;

/// Runs shown by the status endpoint.
const RECENT_RUNS: i64 = 20;

/// Sync the tenant's directory now and answer the run. When the directory cannot be read the
/// run is recorded as failed, the last good data is kept, and the answer is 503; content the
/// store refuses (duplicate names, a group cycle) is recorded the same way and answered 409.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/directory/sync", tag = "directory", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::DirectorySyncRun), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem), (status = 503, body = proto::Problem)))]
pub async fn run_directory_sync(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::DirectorySyncRun>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let directory =
        state.config().directory_for(&tenant.slug).cloned().ok_or_else(|| {
            ApiError::Client(ProblemCode::NotFound, "no directory is configured for this tenant".into())
        })?;
    let event = admin.event(&state, Action::DirectorySync, ObjectType::Directory).tenant(tenant.id.clone());
    match sync_tenant(&state, &tenant, &directory, event).await {
        Ok(run) => Ok(Json(run_dto(run, &tenant.slug))),
        Err(SyncFailure::Directory { run, error }) => Err(ApiError::Client(
            ProblemCode::Unavailable,
            format!("directory sync failed and the last good data was kept (run {}): {error}", run.id),
        )),
        Err(SyncFailure::Refused { run }) => Err(ApiError::Client(
            ProblemCode::Conflict,
            format!(
                "the directory's content was not applied and the last good data was kept (run {}): {}",
                run.id,
                run.error.as_deref().unwrap_or("refused")
            ),
        )),
        Err(SyncFailure::Store(e)) => Err(ApiError::store("directory sync", e)),
    }
}

/// Whether the tenant has a directory, and its most recent sync runs (newest first).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/directory/sync", tag = "directory", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 200, body = proto::DirectorySyncStatus), (status = 404, body = proto::Problem)))]
pub async fn directory_sync_status(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
) -> Result<Json<proto::DirectorySyncStatus>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let directory = state.config().directory_for(&tenant.slug);
    let runs = state
        .store()
        .directory_sync_runs(&tenant.id, RECENT_RUNS)
        .await
        .map_err(|e| ApiError::store("directory sync", e))?;
    Ok(Json(proto::DirectorySyncStatus {
        configured: directory.is_some(),
        url: directory.map(|d| d.url.clone()),
        interval_minutes: directory.map(|d| d.sync_interval().as_secs() / 60),
        runs: runs.into_iter().map(|r| run_dto(r, &tenant.slug)).collect(),
        tenant: tenant.slug,
    }))
}

fn run_dto(r: DirectorySyncRun, tenant: &str) -> proto::DirectorySyncRun {
    let kind = |k: KindCounts| proto::DirectoryObjectCounts {
        total: k.total,
        created: k.created,
        updated: k.updated,
        deleted: k.deleted,
    };
    proto::DirectorySyncRun {
        id: r.id,
        tenant: tenant.to_owned(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        outcome: match r.outcome {
            SyncOutcome::Success => proto::DirectorySyncOutcome::Success,
            SyncOutcome::Failed => proto::DirectorySyncOutcome::Failed,
        },
        counts: proto::DirectorySyncCounts {
            users: kind(r.counts.users),
            groups: kind(r.counts.groups),
            devices: kind(r.counts.devices),
            memberships_added: r.counts.memberships_added,
            memberships_removed: r.counts.memberships_removed,
            ignored_members: r.counts.ignored_members,
        },
        error: r.error,
    }
}
