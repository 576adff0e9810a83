//! The ticket comment worker: claims undelivered PSA comments, posts them, and retries failures
//! with backoff (5 s doubling to 1 h, like notifications), so a PSA outage never blocks a
//! grant or a revocation.

use std::time::Duration as StdDuration;

use futures::StreamExt;
use latchkey_core::{Action, NewAuditEvent, ObjectType};
use latchkey_store::TicketComment;
use time::Duration;
use tokio::sync::watch;

use super::config::TicketsConfig;
use crate::state::AppState;

const POLL_INTERVAL: StdDuration = StdDuration::from_secs(2);
const BATCH: i64 = 64;
const CONCURRENCY: usize = 8;
const LEASE: Duration = Duration::seconds(300);

/// Run the worker until stopped.
pub fn spawn(state: AppState, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let now = state.clock().now();
            match state.store().claim_due_ticket_comments(now, LEASE, BATCH).await {
                Ok(rows) => futures::stream::iter(rows).for_each_concurrent(CONCURRENCY, |c| deliver(&state, c)).await,
                Err(e) => tracing::warn!(error = %e, "the ticket comment worker cannot read the store"),
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

async fn deliver(state: &AppState, comment: TicketComment) {
    let sent = match state.store().tenant_by_id(&comment.tenant_id).await {
        Ok(tenant) => match state.config().jit.tickets(&tenant.slug) {
            TicketsConfig::Psa(psa) => {
                let adapter = super::tickets::Psa(psa.clone());
                super::tickets::TicketAdapter::post_comment(&adapter, &comment.ticket, &comment.body).await
            }
            TicketsConfig::Builtin => Err("the tenant has no PSA configured".to_owned()),
        },
        Err(e) => Err(e.to_string()),
    };
    let now = state.clock().now();
    let recorded = match sent {
        Ok(()) => {
            let mut event = NewAuditEvent::new(now, "scheduler", Action::TicketComment, ObjectType::Ticket)
                .tenant(comment.tenant_id.clone())
                .object(comment.ticket.clone());
            event.ticket = Some(comment.ticket.clone());
            if let Some(grant) = &comment.grant_id {
                event = event.details(&serde_json::json!({ "grant": grant, "adapter": comment.adapter }));
            }
            state.store().mark_ticket_comment_delivered(&comment.id, now, event).await
        }
        Err(error) => {
            let next = now + crate::notify::backoff(comment.attempts + 1);
            tracing::warn!(%error, ticket = %comment.ticket, "a ticket comment could not be delivered; it will be retried");
            state.store().mark_ticket_comment_failed(&comment.id, &error, next).await
        }
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record a ticket comment delivery; it will be retried");
    }
}
