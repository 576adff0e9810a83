//! The notification outbox: notices written in the same transaction as the audit event they
//! report, then claimed, delivered and marked by the notification worker.
//!
//! Delivery is at least once. A worker claims due rows by moving their next attempt forward
//! (a lease) with a compare-and-set on the old value, so several servers sharing one
//! PostgreSQL never deliver the same row at the same time; a worker that dies mid-delivery
//! leaves the row to be claimed again when the lease runs out.

use latchkey_core::clock::to_millis;
use latchkey_core::{Channel, Notification};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// The longest error text kept for a row.
const MAX_ERROR: usize = 500;
/// Most rows claimed or listed at once.
const MAX_ROWS: i64 = 1000;

const COLUMNS: &str =
    "id, tenant_id, channel, payload, created_at, attempts, next_attempt_at, delivered_at, last_error";

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: String,
    pub tenant_id: Option<String>,
    pub channel: Channel,
    /// The notice as stored (JSON); read it with [`Notification::from_payload`].
    pub payload: String,
    pub created_at: OffsetDateTime,
    /// Delivery attempts made so far.
    pub attempts: i64,
    /// When the row is next due (or, while claimed, when its lease runs out).
    pub next_attempt_at: OffsetDateTime,
    /// When it was delivered, or dropped with a reason in `last_error`.
    pub delivered_at: Option<OffsetDateTime>,
    /// Why the last attempt failed (or why the row was dropped); never a secret.
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// Whether the row is finished: delivered, or dropped (finished with a reason).
    pub fn is_done(&self) -> bool {
        self.delivered_at.is_some()
    }

    /// Whether the row was finished without being delivered.
    pub fn is_dropped(&self) -> bool {
        self.delivered_at.is_some() && self.last_error.is_some()
    }
}

/// Queue notices inside the caller's transaction (for example the writer change that appends
/// the audit event of a password read). Each notice gets an `email` row when it has
/// recipients and always a `webhook` row (dropped by the worker when no webhook is set up).
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    notices: &[Notification],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let now = to_millis(now);
    for notice in notices {
        let payload = notice.to_payload();
        let channels: &[Channel] =
            if notice.recipients().is_empty() { &[Channel::Webhook] } else { &[Channel::Email, Channel::Webhook] };
        for channel in channels {
            sqlx::query(
                "INSERT INTO outbox (id, tenant_id, channel, payload, created_at, attempts, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, 0, $5)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(tenant_id.map(str::to_owned))
            .bind(channel.as_str())
            .bind(payload.clone())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        }
    }
    Ok(())
}

impl Store {
    /// Queue notices on their own (for callers outside a writer change).
    pub async fn enqueue_notifications(
        &self,
        tenant_id: Option<&str>,
        notices: Vec<Notification>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let tenant_id = tenant_id.map(str::to_owned);
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move { enqueue(conn, tenant_id.as_deref(), &notices, now).await })
            })
            .await
    }

    /// Whether any undelivered row is due at `now` (a cheap read before claiming).
    pub async fn notifications_due(&self, now: OffsetDateTime) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             LIMIT 1) due",
        )
        .bind(to_millis(now))
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::db)?;
        Ok(get::<i64>(&row, "n")? > 0)
    }

    /// Claim up to `limit` due rows, oldest due first: each claimed row's next attempt moves
    /// to `now + lease`, so no other worker takes it until the lease runs out. Returns the
    /// rows as they were before the claim (`next_attempt_at` is the old due time).
    pub async fn claim_due_notifications(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let (now_ms, until_ms) = (to_millis(now), to_millis(now + lease));
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let due = sqlx::query(
                        "SELECT id, tenant_id, channel, payload, created_at, attempts, next_attempt_at, delivered_at, \
                         last_error FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
                         ORDER BY next_attempt_at, id LIMIT $2",
                    )
                    .bind(now_ms)
                    .bind(limit.clamp(1, MAX_ROWS))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let mut claimed = Vec::with_capacity(due.len());
                    for row in &due {
                        let entry = entry_from_row(row)?;
                        let moved = sqlx::query(
                            "UPDATE outbox SET next_attempt_at = $1 \
                             WHERE id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL",
                        )
                        .bind(until_ms)
                        .bind(entry.id.clone())
                        .bind(to_millis(entry.next_attempt_at))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        // Another server claimed it between the read and the update.
                        if moved.rows_affected() == 1 {
                            claimed.push(entry);
                        }
                    }
                    Ok(claimed)
                })
            })
            .await
    }

    /// Record a delivery: the row is done and its error cleared. Returns whether the row was
    /// still undelivered.
    pub async fn mark_notification_delivered(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.update_undelivered(
            sqlx::query(
                "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL \
                 WHERE id = $2 AND delivered_at IS NULL",
            )
            .bind(to_millis(now))
            .bind(id.to_owned()),
        )
        .await
    }

    /// Record a failed attempt: one more attempt, its error (cut to 500 characters), and when
    /// to try again. Returns whether the row was still undelivered.
    pub async fn mark_notification_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.update_undelivered(
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
                 WHERE id = $3 AND delivered_at IS NULL",
            )
            .bind(cut(error))
            .bind(to_millis(next_attempt_at))
            .bind(id.to_owned()),
        )
        .await
    }

    /// Finish a row without delivering it (nothing configured for its channel, an unreadable
    /// notice, or too many attempts), keeping why in `last_error`. Returns whether the row was
    /// still undelivered.
    pub async fn drop_notification(&self, id: &str, why: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.update_undelivered(
            sqlx::query("UPDATE outbox SET delivered_at = $1, last_error = $2 WHERE id = $3 AND delivered_at IS NULL")
                .bind(to_millis(now))
                .bind(cut(why))
                .bind(id.to_owned()),
        )
        .await
    }

    /// Run an UPDATE of one row that is still undelivered; whether it matched.
    async fn update_undelivered(
        &self,
        update: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<bool, StoreError> {
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = update.execute(&mut *conn).await.map_err(StoreError::db)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    /// The most recent rows, newest first (by creation, then id): of one tenant, or of every
    /// tenant (and none) when `tenant_id` is `None`. `before` is a paging cursor: the
    /// `(created_at, id)` of the last row of the previous page.
    pub async fn list_notifications(
        &self,
        tenant_id: Option<&str>,
        before: Option<(OffsetDateTime, &str)>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE ($1 IS NULL OR tenant_id = $1) \
             AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let (before_at, before_id) =
            before.map_or((i64::MAX, String::new()), |(at, id)| (to_millis(at), id.to_owned()));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.map(str::to_owned))
            .bind(before_at)
            .bind(before_id)
            .bind(limit.clamp(1, MAX_ROWS))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(entry_from_row)
            .collect()
    }

    /// One row by id.
    pub async fn notification(&self, id: &str) -> Result<OutboxEntry, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        entry_from_row(&row)
    }
}

fn entry_from_row(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    let channel: String = get(row, "channel")?;
    Ok(OutboxEntry {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        channel: Channel::parse(&channel).ok_or(StoreError::Corrupt("channel"))?,
        payload: get(row, "payload")?,
        created_at: time(row, "created_at")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: time(row, "next_attempt_at")?,
        delivered_at: opt_time(row, "delivered_at")?,
        last_error: get(row, "last_error")?,
    })
}

/// At most [`MAX_ERROR`] characters.
fn cut(text: &str) -> String {
    text.chars().take(MAX_ERROR).collect()
}
