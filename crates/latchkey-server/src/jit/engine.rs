//! The engine: claims grants with work due and runs their steps (grant, then revoke at the
//! end), records each result with its audit events and ticket comments, and retries failed
//! steps with capped backoff forever. It also reports grants whose revocation is overdue
//! (once each: an audit event and a metric).
//!
//! It wakes when nudged (a new or changed grant), when the next known step falls due, and at
//! least every second. Claims carry this server's node id; on start the engine releases the
//! claims its previous life left behind, so a crash delays nothing.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use latchkey_core::jit::{GrantState, Provider as ProviderKind};
use latchkey_core::{Action, NewAuditEvent, ObjectType, Outcome};
use latchkey_store::{FinishedStep, JitGrant, NewTicketComment, StepResult, StoreError};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use tracing::instrument;

use super::device::DeviceProvider;
use super::directory::DirectoryProvider;
use super::provider::{Progress, Provider, StepError};
use crate::state::AppState;

/// The longest sleep between rounds.
const POLL_INTERVAL: StdDuration = StdDuration::from_secs(1);
/// The shortest sleep between rounds.
const MIN_SLEEP: StdDuration = StdDuration::from_millis(10);
/// Grants claimed at once at most.
const BATCH: i64 = 128;
/// Steps run at once.
const CONCURRENCY: usize = 16;
/// How long a claim keeps other engines off a grant: longer than any step can take.
const LEASE: Duration = Duration::seconds(120);
/// How long a waiting step (an agent's job) waits before it looks again.
const WAIT_POLL: Duration = Duration::seconds(2);
/// A grant whose revocation has not finished this long after its end is overdue.
pub const OVERDUE_AFTER: Duration = Duration::seconds(60);
/// First retry delay.
const FIRST_BACKOFF: Duration = Duration::seconds(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::seconds(30);

/// The delay before the next attempt after `failures` failed attempts: 1 s doubling to 30 s.
pub fn backoff(failures: i64) -> Duration {
    let doublings = failures.saturating_sub(1).clamp(0, 10);
    (FIRST_BACKOFF * (1_i32 << doublings)).min(MAX_BACKOFF)
}

/// Runs JIT steps for one server.
pub struct Engine {
    state: AppState,
    node: String,
    directory: DirectoryProvider,
    device: DeviceProvider,
}

impl Engine {
    /// An engine claiming as `node`.
    pub fn new(state: AppState, node: String) -> Self {
        Self { state, node, directory: DirectoryProvider::default(), device: DeviceProvider }
    }

    fn provider(&self, kind: ProviderKind) -> &dyn Provider {
        match kind {
            ProviderKind::Directory => &self.directory,
            ProviderKind::Device => &self.device,
        }
    }

    /// Run one claimed grant's step and record the result. Store errors are logged: the
    /// claim runs out and the step runs again.
    #[instrument(skip_all, fields(grant = %grant.id, state = %grant.state, attempts = grant.attempts))]
    async fn step(&self, grant: JitGrant) {
        let (result, events, comments) = match grant.state {
            GrantState::Approved => self.grant_step(&grant).await,
            GrantState::Revoking => self.revoke_step(&grant).await,
            // Claimed before its end (an extend moved it): look again at the end.
            _ => (
                StepResult::Waiting { next_step_at: grant.end_at, provider_job: grant.provider_job.clone() },
                vec![],
                vec![],
            ),
        };
        let now = self.state.clock().now();
        let step = FinishedStep { from: grant.state, result, events, comments };
        match self.state.store().finish_jit_step(&grant.id, &self.node, now, step).await {
            Ok(true) => {}
            Ok(false) => tracing::info!("the grant changed during its step; the step runs again"),
            Err(e) => {
                tracing::error!(error = %e, "cannot record a just-in-time step; it runs again when the claim ends")
            }
        }
        self.state.jit_wake().notify_one();
    }

    fn event(&self, grant: &JitGrant, action: Action) -> NewAuditEvent {
        NewAuditEvent::new(self.state.clock().now(), "scheduler", action, ObjectType::JitGrant)
            .tenant(grant.tenant_id.clone())
            .object(grant.id.clone())
    }

    async fn comment(&self, grant: &JitGrant, body: String) -> Option<NewTicketComment> {
        let tenant = self.state.store().tenant_by_id(&grant.tenant_id).await.ok()?;
        let adapter = super::tickets::adapter(self.state.config().jit.tickets(&tenant.slug));
        Some(NewTicketComment {
            tenant_id: grant.tenant_id.clone(),
            ticket: grant.ticket.clone(),
            grant_id: Some(grant.id.clone()),
            adapter: adapter.name().to_owned(),
            body,
        })
    }

    async fn grant_step(&self, grant: &JitGrant) -> (StepResult, Vec<NewAuditEvent>, Vec<NewTicketComment>) {
        let now = self.state.clock().now();
        let password = {
            let ring = self.state.keyring();
            super::password::open(&ring, &grant.tenant_id, &grant.id, &grant.password_envelope)
        };
        let outcome = match password {
            Ok(p) => self.provider(grant.provider).grant(&self.state, grant, &p).await,
            Err(e) => Err(StepError::Refused(format!("the temporary password cannot be opened: {e}"))),
        };
        let provider = self.provider(grant.provider);
        match outcome {
            Ok(Progress::Done) => {
                let event = self.event(grant, Action::JitActivate).details(&serde_json::json!({
                    "account": grant.account_name,
                    "provider": grant.provider.as_str(),
                    "end_at": super::directory::rfc3339(grant.end_at),
                }));
                let comments = self.comment(grant, provider.granted_comment(grant)).await.into_iter().collect();
                let result = StepResult::Moved {
                    to: GrantState::Active,
                    next_step_at: grant.end_at,
                    provider_job: None,
                    error: None,
                };
                (result, vec![event], comments)
            }
            Ok(Progress::Waiting { job }) => {
                (StepResult::Waiting { next_step_at: now + WAIT_POLL, provider_job: Some(job) }, vec![], vec![])
            }
            Err(StepError::Refused(why)) => {
                let event = self
                    .event(grant, Action::JitStepFail)
                    .outcome(Outcome::Failed)
                    .details(&serde_json::json!({ "step": "grant", "error": why, "final": true }));
                let result = StepResult::Moved {
                    to: GrantState::Failed,
                    next_step_at: now,
                    provider_job: None,
                    error: Some(why),
                };
                (result, vec![event], vec![])
            }
            Err(StepError::Retry(why)) => self.retry(grant, "grant", why, now),
        }
    }

    async fn revoke_step(&self, grant: &JitGrant) -> (StepResult, Vec<NewAuditEvent>, Vec<NewTicketComment>) {
        let now = self.state.clock().now();
        tracing::debug!(after_end_ms = (now - grant.end_at).whole_milliseconds() as i64, "revocation starts");
        let provider = self.provider(grant.provider);
        match provider.revoke(&self.state, grant).await {
            Ok(Progress::Done) => {
                let late_ms = (now - grant.end_at).whole_milliseconds().max(0) as i64;
                self.state.metrics().jit_revoked(late_ms);
                let event = self.event(grant, Action::JitRevoked).details(&serde_json::json!({
                    "account": grant.account_name,
                    "provider": grant.provider.as_str(),
                    "late_ms": late_ms,
                }));
                let comments = self.comment(grant, provider.revoked_comment(grant)).await.into_iter().collect();
                let result =
                    StepResult::Moved { to: GrantState::Revoked, next_step_at: now, provider_job: None, error: None };
                (result, vec![event], comments)
            }
            Ok(Progress::Waiting { job }) => {
                (StepResult::Waiting { next_step_at: now + WAIT_POLL, provider_job: Some(job) }, vec![], vec![])
            }
            Err(StepError::Refused(why) | StepError::Retry(why)) => self.retry(grant, "revoke", why, now),
        }
    }

    /// Try again after backoff; the first failure of a step is audited (not every retry).
    fn retry(
        &self,
        grant: &JitGrant,
        step: &str,
        why: String,
        now: OffsetDateTime,
    ) -> (StepResult, Vec<NewAuditEvent>, Vec<NewTicketComment>) {
        let failures = grant.attempts + 1;
        let next = now + backoff(failures);
        tracing::warn!(step, error = %why, failures, "a just-in-time step failed; it will be retried");
        let events = if grant.attempts == 0 {
            vec![
                self.event(grant, Action::JitStepFail)
                    .outcome(Outcome::Failed)
                    .details(&serde_json::json!({ "step": step, "error": why, "final": false })),
            ]
        } else {
            Vec::new()
        };
        (StepResult::Retry { error: why, next_step_at: next }, events, vec![])
    }

    /// Report overdue grants and claim up to `limit` grants with work due at `now`.
    async fn claim(&self, now: OffsetDateTime, limit: i64) -> Result<Vec<JitGrant>, StoreError> {
        let store = self.state.store();
        let overdue = store.mark_overdue_jit_grants(now, OVERDUE_AFTER).await?;
        for id in &overdue {
            tracing::warn!(grant = %id, "a just-in-time grant is past its end and not yet revoked");
            self.state.metrics().jit_overdue();
        }
        store.claim_due_jit_grants(&self.node, now, LEASE, limit).await
    }

    /// Run until stopped. Steps run as their own tasks, at most [`CONCURRENCY`] at once; the
    /// engine claims more work as soon as a step finishes or more falls due, so a grant
    /// falling due never waits for a slow batch claimed before it. On stop the steps under way
    /// finish (their results are recorded) before the engine returns.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let engine = Arc::new(self);
        tokio::spawn(async move {
            if let Err(e) = engine.state.store().release_jit_claims(&engine.node).await {
                tracing::warn!(error = %e, "cannot release the claims of this server's previous run");
            }
            let wake = engine.state.jit_wake().clone();
            let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
            let mut running = tokio::task::JoinSet::new();
            loop {
                let now = engine.state.clock().now();
                let free = slots.available_permits();
                let mut full = false;
                if free > 0 {
                    let limit = (free as i64).min(BATCH);
                    match engine.claim(now, limit).await {
                        Ok(claimed) => {
                            full = claimed.len() as i64 >= limit;
                            for grant in claimed {
                                let Ok(slot) = slots.clone().try_acquire_owned() else { break };
                                let engine = engine.clone();
                                running.spawn(async move {
                                    engine.step(grant).await;
                                    drop(slot);
                                });
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "the just-in-time engine cannot read the store"),
                    }
                }
                if *stop.borrow() {
                    break;
                }
                if slots.available_permits() == 0 {
                    // Every slot busy: claim again when a step finishes.
                    tokio::select! {
                        _ = running.join_next() => {}
                        _ = stop.changed() => break,
                    }
                    continue;
                }
                if full {
                    continue;
                }
                let sleep = match engine.state.store().next_jit_step(now).await {
                    Ok(Some(due)) => {
                        let wait = due - engine.state.clock().now();
                        StdDuration::try_from(wait).unwrap_or(StdDuration::ZERO).clamp(MIN_SLEEP, POLL_INTERVAL)
                    }
                    _ => POLL_INTERVAL,
                };
                tokio::select! {
                    _ = wake.notified() => {}
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                    _ = tokio::time::sleep(sleep) => {}
                    _ = stop.changed() => break,
                }
            }
            while running.join_next().await.is_some() {}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_thirty() {
        let secs: Vec<i64> = (1..=8).map(|f| backoff(f).whole_seconds()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(i64::MAX).whole_seconds(), 30);
    }
}
