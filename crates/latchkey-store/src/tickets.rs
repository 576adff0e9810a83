//! Built-in tickets, and the comments written to tickets (built-in or in a PSA) when a grant
//! starts or ends.
//!
//! A comment is written in the same transaction as the grant change it reports. On a built-in
//! ticket it is delivered at once; a PSA comment waits in `ticket_comments` for the ticket
//! worker, which claims due rows with a lease, posts them and retries failures with backoff,
//! so a PSA that is down never blocks a grant or a revocation.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// Most rows listed or claimed at once.
const MAX_ROWS: i64 = 1000;
/// The longest error text kept for a comment.
const MAX_ERROR: usize = 500;

const TICKET_COLUMNS: &str = "id, tenant_id, number, title, state, created_by, created_at, closed_at";
const COMMENT_COLUMNS: &str =
    "id, tenant_id, ticket, grant_id, adapter, body, created_at, attempts, next_attempt_at, delivered_at, last_error";

/// A built-in ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub tenant_id: String,
    /// The number people quote (per tenant, from 1).
    pub number: i64,
    pub title: String,
    /// Whether the ticket is open.
    pub open: bool,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

/// A comment to write to a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicketComment {
    pub tenant_id: String,
    /// The ticket as the requester named it.
    pub ticket: String,
    pub grant_id: Option<String>,
    /// `builtin` (delivered at once) or `psa` (delivered by the ticket worker).
    pub adapter: String,
    pub body: String,
}

/// A comment as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketComment {
    pub id: String,
    pub tenant_id: String,
    pub ticket: String,
    pub grant_id: Option<String>,
    pub adapter: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// Insert a comment inside the caller's transaction.
pub(crate) async fn insert_comment(
    conn: &mut AnyConnection,
    c: &NewTicketComment,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let delivered = (c.adapter == "builtin").then(|| to_millis(now));
    sqlx::query(
        "INSERT INTO ticket_comments (id, tenant_id, ticket, grant_id, adapter, body, created_at, attempts, \
         next_attempt_at, delivered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(c.tenant_id.clone())
    .bind(c.ticket.clone())
    .bind(c.grant_id.clone())
    .bind(c.adapter.clone())
    .bind(c.body.clone())
    .bind(to_millis(now))
    .bind(delivered)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

impl Store {
    /// Open a built-in ticket with the tenant's next number.
    pub async fn create_ticket(
        &self,
        tenant_id: &str,
        title: &str,
        created_by: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Ticket, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tenant, title, by) = (tenant_id.to_owned(), title.to_owned(), created_by.to_owned());
        let ticket_id = id.clone();
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM tickets WHERE tenant_id = $1")
                        .bind(tenant.clone())
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let number: i64 = get(&row, "n")?;
                    sqlx::query(
                        "INSERT INTO tickets (id, tenant_id, number, title, state, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, 'open', $5, $6)",
                    )
                    .bind(id.clone())
                    .bind(tenant)
                    .bind(number)
                    .bind(title)
                    .bind(by)
                    .bind(to_millis(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let event = event.object(id).details(&serde_json::json!({ "number": number }));
                    Ok(((), vec![event]))
                })
            })
            .await?;
        self.ticket_by_id(&ticket_id).await
    }

    async fn ticket_by_id(&self, id: &str) -> Result<Ticket, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        ticket_from_row(&row)
    }

    /// A built-in ticket by number.
    pub async fn ticket(&self, tenant_id: &str, number: i64) -> Result<Ticket, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE tenant_id = $1 AND number = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .bind(number)
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        ticket_from_row(&row)
    }

    /// A tenant's built-in tickets, newest first; only open ones when `open_only`.
    pub async fn list_tickets(&self, tenant_id: &str, open_only: bool, limit: i64) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE tenant_id = $1 AND ($2 = 0 OR state = 'open') \
             ORDER BY number DESC LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .bind(i64::from(open_only))
            .bind(limit.clamp(1, MAX_ROWS))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(ticket_from_row)
            .collect()
    }

    /// Close a built-in ticket; closing a closed one is a conflict.
    pub async fn close_ticket(
        &self,
        tenant_id: &str,
        number: i64,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Ticket, StoreError> {
        let ticket = self.ticket(tenant_id, number).await?;
        let id = ticket.id.clone();
        let event = event.object(id.clone()).details(&serde_json::json!({ "number": number }));
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE tickets SET state = 'closed', closed_at = $1 WHERE id = $2 AND state = 'open'",
                    )
                    .bind(to_millis(now))
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict("the ticket is already closed"));
                    }
                    Ok(())
                })
            })
            .await?;
        self.ticket_by_id(&ticket.id).await
    }

    /// The comments written to a ticket (as named), oldest first.
    pub async fn ticket_comments(&self, tenant_id: &str, ticket: &str) -> Result<Vec<TicketComment>, StoreError> {
        let sql = format!(
            "SELECT {COMMENT_COLUMNS} FROM ticket_comments WHERE tenant_id = $1 AND ticket = $2 ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .bind(ticket.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(comment_from_row)
            .collect()
    }

    /// Claim up to `limit` undelivered comments due at `now`: each one's next attempt moves
    /// to `now + lease` (compare-and-set on the old value, so two workers never take the same
    /// row). Returns the rows as they were before the claim.
    pub async fn claim_due_ticket_comments(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<TicketComment>, StoreError> {
        let (now_ms, until_ms) = (to_millis(now), to_millis(now + lease));
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {COMMENT_COLUMNS} FROM ticket_comments WHERE delivered_at IS NULL \
                         AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
                    );
                    let due = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(now_ms)
                        .bind(limit.clamp(1, MAX_ROWS))
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let mut claimed = Vec::with_capacity(due.len());
                    for row in &due {
                        let c = comment_from_row(row)?;
                        let moved = sqlx::query(
                            "UPDATE ticket_comments SET next_attempt_at = $1 \
                             WHERE id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL",
                        )
                        .bind(until_ms)
                        .bind(c.id.clone())
                        .bind(to_millis(c.next_attempt_at))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        if moved.rows_affected() == 1 {
                            claimed.push(c);
                        }
                    }
                    Ok(claimed)
                })
            })
            .await
    }

    /// Record a delivered comment, audited as `ticket.comment`.
    pub async fn mark_ticket_comment_delivered(
        &self,
        id: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE ticket_comments SET delivered_at = $1, attempts = attempts + 1, last_error = NULL \
                         WHERE id = $2 AND delivered_at IS NULL",
                    )
                    .bind(to_millis(now))
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let delivered = done.rows_affected() == 1;
                    Ok((delivered, if delivered { vec![event] } else { Vec::new() }))
                })
            })
            .await
    }

    /// Record a failed delivery and when to try again.
    pub async fn mark_ticket_comment_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (id, error) = (id.to_owned(), error.chars().take(MAX_ERROR).collect::<String>());
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE ticket_comments SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
                         WHERE id = $3 AND delivered_at IS NULL",
                    )
                    .bind(error)
                    .bind(to_millis(next_attempt_at))
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }
}

fn ticket_from_row(row: &AnyRow) -> Result<Ticket, StoreError> {
    let state: String = get(row, "state")?;
    Ok(Ticket {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        number: get(row, "number")?,
        title: get(row, "title")?,
        open: state == "open",
        created_by: get(row, "created_by")?,
        created_at: time(row, "created_at")?,
        closed_at: opt_time(row, "closed_at")?,
    })
}

fn comment_from_row(row: &AnyRow) -> Result<TicketComment, StoreError> {
    Ok(TicketComment {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        ticket: get(row, "ticket")?,
        grant_id: get(row, "grant_id")?,
        adapter: get(row, "adapter")?,
        body: get(row, "body")?,
        created_at: time(row, "created_at")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: time(row, "next_attempt_at")?,
        delivered_at: opt_time(row, "delivered_at")?,
        last_error: get(row, "last_error")?,
    })
}
