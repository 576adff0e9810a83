//! Credential resets scheduled after a view ("reset after showing"): at most one open per
//! account, claimed by the reset worker with a lease (so several servers never run the same
//! reset at once, and a reset whose server died is claimed again), retried with a delay, and
//! finished as done or failed with the last error.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::Account;
use latchkey_core::notification::Notification;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::accounts::{SealFn, account_from_row};
use crate::rows::{get, time};
use crate::{Store, StoreError};

/// Where a reset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetState {
    Scheduled,
    /// Claimed by a worker (until its lease ends).
    Running,
    Done,
    Failed,
}

impl ResetState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetState::Scheduled => "scheduled",
            ResetState::Running => "running",
            ResetState::Done => "done",
            ResetState::Failed => "failed",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [ResetState::Scheduled, ResetState::Running, ResetState::Done, ResetState::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A scheduled reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialReset {
    pub id: String,
    pub tenant_id: String,
    pub account_id: String,
    pub due_at: OffsetDateTime,
    pub state: ResetState,
    /// Attempts started so far.
    pub attempts: i64,
    /// Why the last attempt failed; never a secret.
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetEnd {
    Done,
    /// Try again at this time.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Give up.
    Failed {
        error: String,
    },
}

const COLUMNS: &str = "id, tenant_id, account_id, due_at, state, attempts, last_error, created_at, updated_at";
/// The longest error text kept.
const MAX_ERROR: usize = 500;

/// Schedule a reset of an account at `due_at` unless one is open, inside the caller's
/// transaction; returns when the open reset is due.
pub(crate) async fn schedule(
    conn: &mut AnyConnection,
    tenant_id: &str,
    account_id: &str,
    due_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, StoreError> {
    let open =
        sqlx::query("SELECT due_at FROM credential_resets WHERE account_id = $1 AND state IN ('scheduled', 'running')")
            .bind(account_id.to_owned())
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db)?;
    if let Some(row) = open {
        return time(&row, "due_at");
    }
    sqlx::query(
        "INSERT INTO credential_resets (id, tenant_id, account_id, due_at, state, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'scheduled', 0, $5, $5)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(tenant_id.to_owned())
    .bind(account_id.to_owned())
    .bind(to_millis(due_at))
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(due_at)
}

impl Store {
    /// The resets of an account, newest first.
    pub async fn credential_resets(
        &self,
        tenant_id: &str,
        account_id: &str,
    ) -> Result<Vec<CredentialReset>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM credential_resets WHERE tenant_id = $1 AND account_id = $2 \
             ORDER BY created_at DESC, id DESC"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .bind(account_id.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(reset_from_row)
            .collect()
    }

    /// Whether any reset is due at `now` (a cheap read before claiming).
    pub async fn credential_resets_due(&self, now: OffsetDateTime) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM (SELECT 1 FROM credential_resets WHERE \
             (state = 'scheduled' AND due_at <= $1) OR (state = 'running' AND lease_until <= $1) LIMIT 1) due",
        )
        .bind(to_millis(now))
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::db)?;
        Ok(get::<i64>(&row, "n")? > 0)
    }

    /// Claim up to `limit` due resets (scheduled and due, or running with an ended lease):
    /// each becomes running until `now + lease`, with one more attempt. Returns them with
    /// their accounts.
    pub async fn claim_due_resets(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<(CredentialReset, Account)>, StoreError> {
        let (now_ms, until_ms) = (to_millis(now), to_millis(now + lease));
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT r.id, r.tenant_id, r.account_id, r.due_at, r.state, r.attempts, r.last_error, \
                         r.created_at AS r_created_at, r.updated_at, \
                         a.id AS a_id, a.tenant_id AS a_tenant_id, a.kind, a.name, a.device_id, a.description, \
                         a.created_at, a.expires_at AS a_expires_at \
                         FROM credential_resets r JOIN accounts a ON a.id = r.account_id \
                         WHERE (r.state = 'scheduled' AND r.due_at <= $1) OR (r.state = 'running' AND r.lease_until <= $1) \
                         ORDER BY r.due_at, r.id LIMIT $2",
                    )
                    .bind(now_ms)
                    .bind(limit.clamp(1, 1000))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let mut claimed = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let mut reset = CredentialReset {
                            id: get(row, "id")?,
                            tenant_id: get(row, "tenant_id")?,
                            account_id: get(row, "account_id")?,
                            due_at: time(row, "due_at")?,
                            state: parse_state(row)?,
                            attempts: get(row, "attempts")?,
                            last_error: get(row, "last_error")?,
                            created_at: time(row, "r_created_at")?,
                            updated_at: time(row, "updated_at")?,
                        };
                        let account = Account { id: get(row, "a_id")?, tenant_id: get(row, "a_tenant_id")?, ..account_from_row(row)? };
                        let moved = sqlx::query(
                            "UPDATE credential_resets SET state = 'running', lease_until = $1, attempts = attempts + 1, \
                             updated_at = $2 WHERE id = $3 AND state = $4 AND updated_at = $5",
                        )
                        .bind(until_ms)
                        .bind(now_ms)
                        .bind(reset.id.clone())
                        .bind(reset.state.as_str())
                        .bind(to_millis(reset.updated_at))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        if moved.rows_affected() == 1 {
                            reset.state = ResetState::Running;
                            reset.attempts += 1;
                            reset.updated_at = now;
                            claimed.push((reset, account));
                        }
                    }
                    Ok(claimed)
                })
            })
            .await
    }

    /// Record how an attempt ended, with its `credentials.reset` event (the caller sets its
    /// outcome).
    pub async fn finish_reset(
        &self,
        id: &str,
        end: ResetEnd,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move { end_reset(conn, &id, &end, now).await })
            })
            .await
    }

    /// Finish a reset of a stored credential: a new active version (sealed by `seal` once
    /// numbered, the previous one becomes history), the reset done, its event (with the new
    /// version number) and `notices` (the webhook for an out-of-band change), in one
    /// transaction. Returns the new version number.
    pub async fn reset_with_new_secret(
        &self,
        reset_id: &str,
        account: &Account,
        seal: SealFn,
        notices: Vec<Notification>,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<i64, StoreError> {
        let (reset_id, tenant_id, account_id) = (reset_id.to_owned(), account.tenant_id.clone(), account.id.clone());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM secret_versions WHERE account_id = $1")
                        .bind(account_id.clone())
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let version = get::<i64>(&row, "v")? + 1;
                    let sealed = seal(version).map_err(StoreError::Seal)?;
                    sqlx::query(
                        "UPDATE secret_versions SET state = 'retired', retired_at = $2 WHERE account_id = $1 AND state = 'active'",
                    )
                    .bind(account_id.clone())
                    .bind(to_millis(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    sqlx::query(
                        "INSERT INTO secret_versions (tenant_id, account_id, version, state, password_envelope, \
                         ssh_key_envelope, key_id, created_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $7)",
                    )
                    .bind(tenant_id.clone())
                    .bind(account_id.clone())
                    .bind(version)
                    .bind(sealed.password)
                    .bind(sealed.ssh_key)
                    .bind(sealed.key_id)
                    .bind(to_millis(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    end_reset(conn, &reset_id, &ResetEnd::Done, now).await?;
                    crate::outbox::enqueue(conn, Some(&tenant_id), &notices, now).await?;
                    let event = event.details(&serde_json::json!({ "reset": reset_id, "version": version }));
                    Ok((version, vec![event]))
                })
            })
            .await
    }
}

async fn end_reset(conn: &mut AnyConnection, id: &str, end: &ResetEnd, now: OffsetDateTime) -> Result<(), StoreError> {
    let (state, due_at, error) = match end {
        ResetEnd::Done => (ResetState::Done, None, None),
        ResetEnd::Retry { at, error } => (ResetState::Scheduled, Some(to_millis(*at)), Some(cut(error))),
        ResetEnd::Failed { error } => (ResetState::Failed, None, Some(cut(error))),
    };
    let done = sqlx::query(
        "UPDATE credential_resets SET state = $1, due_at = COALESCE($2, due_at), last_error = COALESCE($3, last_error), \
         lease_until = NULL, updated_at = $4 WHERE id = $5 AND state = 'running'",
    )
    .bind(state.as_str())
    .bind(due_at)
    .bind(error)
    .bind(to_millis(now))
    .bind(id.to_owned())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict("the reset is not running"));
    }
    Ok(())
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_ERROR).collect()
}

fn parse_state(row: &AnyRow) -> Result<ResetState, StoreError> {
    let s: String = get(row, "state")?;
    ResetState::parse(&s).ok_or(StoreError::Corrupt("state"))
}

fn reset_from_row(row: &AnyRow) -> Result<CredentialReset, StoreError> {
    Ok(CredentialReset {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        account_id: get(row, "account_id")?,
        due_at: time(row, "due_at")?,
        state: parse_state(row)?,
        attempts: get(row, "attempts")?,
        last_error: get(row, "last_error")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}
