//! The notification worker: claims due outbox rows, delivers each over its channel (e-mail or
//! webhook), and records the result. Failed deliveries are retried with exponential backoff
//! (5 s doubling to 1 h); a delivery never blocks or fails the request that queued it.
//!
//! The worker wakes every few seconds and whenever it is nudged. Rows are claimed with a lease,
//! so several servers sharing one database never deliver a row at the same time, and a server
//! that stops mid-delivery leaves the row to be delivered again (at least once).

pub mod config;
mod smtp;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use futures::StreamExt;
use latchkey_core::clock::to_millis;
use latchkey_core::{Channel, Clock, Notification};
use latchkey_store::{OutboxEntry, Store, StoreError};
use time::{Duration, OffsetDateTime};
use tokio::sync::{Notify, watch};
use tracing::instrument;

pub use config::{NotificationsConfig, NotificationsLayer};
use smtp::SmtpSender;
use webhook::WebhookSender;

/// How often the worker looks for due rows when nobody nudges it.
const POLL_INTERVAL: StdDuration = StdDuration::from_secs(2);
/// Rows claimed per round.
const BATCH: i64 = 64;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// First retry delay; doubles after every failure.
const FIRST_BACKOFF: Duration = Duration::seconds(5);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::hours(1);
/// Attempts after which a row is given up (about four days at the longest delay).
const MAX_ATTEMPTS: i64 = 100;
/// How long a worker may wait for running deliveries when the server stops.
const STOP_GRACE: StdDuration = StdDuration::from_secs(5);

/// The delay before the next attempt after `failures` failed attempts (1 → 5 s, 2 → 10 s, …,
/// at most 1 h).
pub fn backoff(failures: i64) -> Duration {
    let doublings = failures.saturating_sub(1).clamp(0, 20);
    let delay = FIRST_BACKOFF * (1_i32 << doublings);
    delay.min(MAX_BACKOFF)
}

/// Delivers outbox rows.
pub struct Notifier {
    store: Store,
    clock: Arc<dyn Clock>,
    smtp: Option<SmtpSender>,
    webhook: Option<WebhookSender>,
    /// Longest time one e-mail delivery may take in all (connect, TLS, AUTH, send).
    smtp_deadline: StdDuration,
    /// Longest time one webhook delivery may take in all.
    webhook_deadline: StdDuration,
    /// How long a claimed row is left alone: longer than any delivery can take.
    lease: Duration,
}

impl Notifier {
    /// A worker for these settings (builds the SMTP transport and the HTTP client; connects to
    /// nothing yet).
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: &NotificationsConfig) -> Result<Self, String> {
        let smtp = config.smtp.as_ref().map(SmtpSender::new).transpose()?;
        let webhook = config.webhook.as_ref().map(WebhookSender::new).transpose()?;
        // The transports time out single steps; a whole delivery gets three of them at most, so
        // a server that accepts and then stays silent cannot hold the worker.
        let deadline = |t: Option<StdDuration>| t.unwrap_or(StdDuration::ZERO) * 3;
        let smtp_deadline = deadline(config.smtp.as_ref().map(|s| s.timeout));
        let webhook_deadline = deadline(config.webhook.as_ref().map(|w| w.timeout));
        let longest = smtp_deadline.max(webhook_deadline).as_secs() as i64;
        let lease = Duration::seconds(60).max(Duration::seconds(longest + 30));
        Ok(Self { store, clock, smtp, webhook, smtp_deadline, webhook_deadline, lease })
    }

    /// One round: claim the rows due at `now`, deliver them, record each result. Returns how
    /// many rows were handled.
    #[instrument(skip_all)]
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        if !self.store.notifications_due(now).await? {
            return Ok(0);
        }
        let rows = self.store.claim_due_notifications(now, self.lease, BATCH).await?;
        let handled = rows.len();
        futures::stream::iter(rows).for_each_concurrent(CONCURRENCY, |row| self.handle(row)).await;
        Ok(handled)
    }

    /// Deliver one claimed row and record what happened. Store errors are logged: the lease
    /// brings the row back.
    #[instrument(skip_all, fields(id = %row.id, channel = row.channel.as_str(), attempts = row.attempts))]
    async fn handle(&self, row: OutboxEntry) {
        let result = match self.attempt(&row).await {
            Attempt::Delivered => self.store.mark_notification_delivered(&row.id, self.clock.now()).await,
            Attempt::Dropped(why) => {
                tracing::info!(%why, "notification not sent");
                self.store.drop_notification(&row.id, &why, self.clock.now()).await
            }
            Attempt::Failed(error) => {
                let failures = row.attempts + 1;
                let next = self.clock.now() + backoff(failures);
                tracing::warn!(%error, failures, next_attempt_ms = to_millis(next), "notification delivery failed");
                self.store.mark_notification_failed(&row.id, &error, next).await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot record a notification delivery; it will be retried");
        }
    }

    async fn attempt(&self, row: &OutboxEntry) -> Attempt {
        if row.attempts >= MAX_ATTEMPTS {
            let last = row.last_error.as_deref().unwrap_or("none");
            return Attempt::Dropped(format!("gave up after {} attempts; last error: {last}", row.attempts));
        }
        let notice = match Notification::from_payload(&row.payload) {
            Ok(n) => n,
            Err(e) => return Attempt::Dropped(e.to_string()),
        };
        let sent = match row.channel {
            Channel::Email => {
                let Some(smtp) = &self.smtp else {
                    return Attempt::Dropped("no SMTP server is configured".into());
                };
                if notice.recipients().is_empty() {
                    return Attempt::Dropped("the notice has no recipients".into());
                }
                within(self.smtp_deadline, "the SMTP server", smtp.send(&row.id, &notice)).await
            }
            Channel::Webhook => {
                let Some(webhook) = &self.webhook else {
                    return Attempt::Dropped("no webhook is configured".into());
                };
                let send = webhook.send(&row.id, &notice, self.clock.now().unix_timestamp());
                within(self.webhook_deadline, "the webhook", send).await
            }
        };
        match sent {
            Ok(()) => Attempt::Delivered,
            Err(e) => Attempt::Failed(e),
        }
    }

    /// Run rounds until stopped: after a full batch at once, otherwise on a nudge or every few
    /// seconds.
    pub fn spawn(self) -> NotifierHandle {
        let wake = Arc::new(Notify::new());
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let wake_loop = wake.clone();
        let task = tokio::spawn(async move {
            loop {
                let handled = match self.run_once(self.clock.now()).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification worker cannot read the outbox");
                        0
                    }
                };
                if *stop_rx.borrow() {
                    return;
                }
                if handled as i64 >= BATCH {
                    continue;
                }
                tokio::select! {
                    _ = wake_loop.notified() => {}
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = stop_rx.changed() => return,
                }
            }
        });
        NotifierHandle { wake, stop: stop_tx, task }
    }
}

/// Run a delivery with an overall deadline.
async fn within(
    deadline: StdDuration,
    peer: &str,
    delivery: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    match tokio::time::timeout(deadline, delivery).await {
        Ok(result) => result,
        Err(_) => Err(format!("{peer} did not finish the delivery within {} s", deadline.as_secs())),
    }
}

enum Attempt {
    Delivered,
    /// Finished without delivery, with the reason.
    Dropped(String),
    /// Try again later; the error says why.
    Failed(String),
}

/// Controls a running worker.
pub struct NotifierHandle {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NotifierHandle {
    /// Look for due rows now instead of at the next interval.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Stop after the current round (waiting a few seconds at most; rows still being
    /// delivered are claimed again when their lease runs out).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, self.task).await.is_err() {
            abort.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_to_an_hour() {
        let secs: Vec<i64> = (1..=12).map(|f| backoff(f).whole_seconds()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
        assert_eq!(backoff(0).whole_seconds(), 5);
        assert_eq!(backoff(i64::MAX).whole_seconds(), 3600);
    }
}
