//! The device provider: a local account named after the requester, made an administrator on
//! the device through its agent (see [`crate::local_admin`]). A step queues the agent's job and
//! then waits for it; the grant is active once the job is done, revoked once the removal is.
//! The agent also removes the account on its own at the end time.

use futures::future::BoxFuture;
use latchkey_core::{Action, NewAuditEvent, ObjectType};
use latchkey_store::{JitGrant, StoreError};
use secrecy::SecretString;

use super::provider::{Progress, Provider, StepError};
use crate::local_admin::{self, LocalAdminError, LocalAdminGrantRequest, LocalAdminJobState};
use crate::state::AppState;

/// The device provider.
pub struct DeviceProvider;

const GRANT_JOB: &str = "grant:";
const REVOKE_JOB: &str = "revoke:";

fn step_error(e: LocalAdminError) -> StepError {
    match e {
        LocalAdminError::Store(StoreError::Unavailable(m)) => StepError::Retry(m),
        LocalAdminError::Store(StoreError::CommitFailed) => StepError::Retry("commit failed".into()),
        e @ (LocalAdminError::UnknownDevice
        | LocalAdminError::NotEnrolled
        | LocalAdminError::InvalidName(_)
        | LocalAdminError::Store(_)) => StepError::Refused(e.to_string()),
    }
}

fn event(state: &AppState, grant: &JitGrant, action: Action) -> NewAuditEvent {
    NewAuditEvent::new(state.clock().now(), "scheduler", action, ObjectType::JitGrant)
        .tenant(grant.tenant_id.clone())
        .object(grant.id.clone())
}

async fn grant(state: &AppState, grant: &JitGrant, password: &SecretString) -> Result<Progress, StepError> {
    let device_id = grant.device_id.as_deref().ok_or_else(|| StepError::Refused("the grant names no device".into()))?;
    let tracked = grant.provider_job.as_deref().and_then(|j| j.strip_prefix(GRANT_JOB));
    if let Some(job) = tracked {
        match local_admin::job_state(state, job).await.map_err(step_error)? {
            LocalAdminJobState::Open => return Ok(Progress::Waiting { job: format!("{GRANT_JOB}{job}") }),
            // Done: queue_grant below answers with this job when it carried the grant's current
            // end, or queues one that moves the device's end time (extended while waiting).
            LocalAdminJobState::Done if grant.end_at <= state.clock().now() => return Ok(Progress::Done),
            LocalAdminJobState::Done => {}
            LocalAdminJobState::Failed { error } => {
                return Err(StepError::Refused(format!("the device's agent failed: {error}")));
            }
        }
    }
    let req = LocalAdminGrantRequest {
        tenant_id: &grant.tenant_id,
        device_id,
        grant_id: &grant.id,
        username: &grant.account_name,
        password,
        until: grant.end_at,
    };
    let job =
        local_admin::queue_grant(state, req, event(state, grant, Action::LocalAdminGrant)).await.map_err(step_error)?;
    if tracked == Some(job.as_str()) {
        return Ok(Progress::Done);
    }
    Ok(Progress::Waiting { job: format!("{GRANT_JOB}{job}") })
}

async fn revoke(state: &AppState, grant: &JitGrant) -> Result<Progress, StepError> {
    let Some(device_id) = grant.device_id.as_deref() else { return Ok(Progress::Done) };
    if let Some(job) = grant.provider_job.as_deref().and_then(|j| j.strip_prefix(REVOKE_JOB)) {
        match local_admin::job_state(state, job).await.map_err(retry)? {
            LocalAdminJobState::Open => return Ok(Progress::Waiting { job: format!("{REVOKE_JOB}{job}") }),
            LocalAdminJobState::Done => return Ok(Progress::Done),
            // Queued afresh below.
            LocalAdminJobState::Failed { .. } => {}
        }
    }
    let job = local_admin::queue_revoke(
        state,
        &grant.tenant_id,
        device_id,
        &grant.id,
        &grant.account_name,
        event(state, grant, Action::LocalAdminRevoke),
    )
    .await;
    match job {
        Ok(job) => Ok(Progress::Waiting { job: format!("{REVOKE_JOB}{job}") }),
        // A device deleted meanwhile has no account left to remove.
        Err(LocalAdminError::UnknownDevice) => Ok(Progress::Done),
        Err(e) => Err(retry(e)),
    }
}

/// Revocation never gives up: every failure is retried.
fn retry(e: LocalAdminError) -> StepError {
    StepError::Retry(e.to_string())
}

impl Provider for DeviceProvider {
    fn grant<'a>(
        &'a self,
        state: &'a AppState,
        g: &'a JitGrant,
        password: &'a SecretString,
    ) -> BoxFuture<'a, Result<Progress, StepError>> {
        Box::pin(grant(state, g, password))
    }

    fn revoke<'a>(&'a self, state: &'a AppState, g: &'a JitGrant) -> BoxFuture<'a, Result<Progress, StepError>> {
        Box::pin(revoke(state, g))
    }

    fn granted_comment(&self, grant: &JitGrant) -> String {
        format!(
            "The local account {} is now enabled and has been added to the administrators of device {} until {} \
             (requested by {}: {}).",
            grant.account_name,
            grant.device_id.as_deref().unwrap_or("-"),
            super::directory::rfc3339(grant.end_at),
            grant.requester,
            grant.reason
        )
    }

    fn revoked_comment(&self, grant: &JitGrant) -> String {
        format!(
            "The local account {}'s administrator access on device {} has been revoked and the account removed.",
            grant.account_name,
            grant.device_id.as_deref().unwrap_or("-")
        )
    }
}
