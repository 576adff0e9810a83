//! Just-in-time grants: the persisted desired state the engine works from.
//!
//! A grant is created `requested` (approval needed) or `approved`. The engine claims grants
//! with work due (`approved`, `active` at its end, `revoking`): on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED` inside the writer's transaction, on SQLite inside the one writer's
//! transaction; either way the claim sets `claimed_by`/`claimed_until` so no other engine runs
//! the same step until the claim is released or runs out. Each step's result is written with
//! a guard on the state the step started from, so a change made meanwhile by a person (a
//! revoke during the grant step) is never overwritten.

use latchkey_core::clock::to_millis;
use latchkey_core::jit::{GrantState, Provider};
use latchkey_core::{Action, NewAuditEvent, ObjectType};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use crate::rows::{get, opt_time, time};
use crate::tickets::{NewTicketComment, insert_comment};
use crate::{Backend, Store, StoreError};

/// The longest error text kept on a grant.
const MAX_ERROR: usize = 500;
/// Most grants claimed or listed at once.
const MAX_ROWS: i64 = 1000;

const COLUMNS: &str = "id, tenant_id, provider, device_id, requester, requester_key, account_name, ticket, reason, \
     minutes, state, approver, created_at, start_at, end_at, revoked_at, password_envelope, key_id, next_step_at, \
     attempts, last_error, overdue_at, provider_job";

/// A grant as stored.
#[derive(Clone, PartialEq)]
pub struct JitGrant {
    pub id: String,
    pub tenant_id: String,
    pub provider: Provider,
    pub device_id: Option<String>,
    /// The requester's account name (the person the access is for).
    pub requester: String,
    /// The requester's audit actor (`user:<name>`), to refuse self-approval.
    pub requester_key: String,
    /// The tech account (directory) or local account (device) that receives the access.
    pub account_name: String,
    pub ticket: String,
    pub reason: String,
    pub minutes: i64,
    pub state: GrantState,
    /// Who approved or denied it.
    pub approver: Option<String>,
    pub created_at: OffsetDateTime,
    /// When the access was in place.
    pub start_at: Option<OffsetDateTime>,
    /// When the access ends.
    pub end_at: OffsetDateTime,
    /// When the revocation finished.
    pub revoked_at: Option<OffsetDateTime>,
    /// The temporary password, sealed by the vault (bound to tenant, table, grant id).
    pub password_envelope: Vec<u8>,
    pub key_id: String,
    /// When the engine next has work for it.
    pub next_step_at: OffsetDateTime,
    /// Failed attempts of the current step.
    pub attempts: i64,
    /// Why the last attempt failed (never a secret).
    pub last_error: Option<String>,
    /// When the grant was reported overdue (once).
    pub overdue_at: Option<OffsetDateTime>,
    /// The provider's own job id (the device provider's agent job).
    pub provider_job: Option<String>,
}

impl std::fmt::Debug for JitGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitGrant")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("account_name", &self.account_name)
            .field("state", &self.state)
            .field("end_at", &self.end_at)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl JitGrant {
    /// Whether the access should be over at `now` (past its end, or revoked), even when the
    /// revocation has not finished yet.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.end_at && !matches!(self.state, GrantState::Requested | GrantState::Denied | GrantState::Failed)
    }
}

/// A grant to create.
pub struct NewJitGrant {
    pub id: String,
    pub tenant_id: String,
    pub provider: Provider,
    pub device_id: Option<String>,
    pub requester: String,
    pub requester_key: String,
    pub account_name: String,
    pub ticket: String,
    pub reason: String,
    pub minutes: i64,
    /// `Requested` (approval needed) or `Approved`.
    pub state: GrantState,
    pub created_at: OffsetDateTime,
    pub end_at: OffsetDateTime,
    pub password_envelope: Vec<u8>,
    pub key_id: String,
}

/// A grant's sealed temporary password, as the vault's re-wrap job sees it.
#[derive(Clone, PartialEq)]
pub struct GrantPasswordEnvelope {
    pub grant_id: String,
    pub tenant_id: String,
    pub envelope: Vec<u8>,
    pub key_id: String,
}

impl std::fmt::Debug for GrantPasswordEnvelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantPasswordEnvelope")
            .field("grant_id", &self.grant_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// What a finished engine step writes.
#[derive(Debug, Clone)]
pub enum StepResult {
    /// The step ended: move to `to` (attempts reset), next work at `next_step_at`; `error`
    /// says why when `to` is `failed`.
    Moved { to: GrantState, next_step_at: OffsetDateTime, provider_job: Option<String>, error: Option<String> },
    /// The step is waiting on something outside (an agent's job): look again at `next_step_at`.
    Waiting { next_step_at: OffsetDateTime, provider_job: Option<String> },
    /// The step failed and is retried at `next_step_at` (one more attempt counted).
    Retry { error: String, next_step_at: OffsetDateTime },
}

/// A finished engine step of a grant claimed in state `from`: its result, with the audit
/// events and ticket comments written in the same transaction.
pub struct FinishedStep {
    pub from: GrantState,
    pub result: StepResult,
    pub events: Vec<NewAuditEvent>,
    pub comments: Vec<NewTicketComment>,
}

/// The stored name of a state, owned for binding.
fn state_key(state: GrantState) -> String {
    state.as_str().to_owned()
}

impl Store {
    /// Create a grant. The tech account name must belong to this requester (the first grant
    /// of a name records its owner); one open grant per account at a time.
    pub async fn create_jit_grant(&self, g: NewJitGrant, event: NewAuditEvent) -> Result<JitGrant, StoreError> {
        let id = g.id.clone();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let account_key = g.account_name.to_lowercase();
                    let owner = sqlx::query(
                        "SELECT requester_key FROM jit_accounts WHERE tenant_id = $1 AND provider = $2 AND account_key = $3",
                    )
                    .bind(g.tenant_id.clone())
                    .bind(g.provider.as_str())
                    .bind(account_key.clone())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    match owner {
                        Some(row) => {
                            let key: String = get(&row, "requester_key")?;
                            if key != g.requester_key {
                                return Err(StoreError::Conflict(
                                    "the tech account name belongs to another requester (names are cut to fit); ask an admin",
                                ));
                            }
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO jit_accounts (tenant_id, provider, account_key, requester_key, created_at) \
                                 VALUES ($1, $2, $3, $4, $5)",
                            )
                            .bind(g.tenant_id.clone())
                            .bind(g.provider.as_str())
                            .bind(account_key.clone())
                            .bind(g.requester_key.clone())
                            .bind(to_millis(g.created_at))
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                        }
                    }
                    let scope = g.device_id.clone().unwrap_or_default();
                    let inserted = sqlx::query(
                        "INSERT INTO jit_grants (id, tenant_id, provider, device_id, scope_key, requester, requester_key, \
                         account_name, account_key, ticket, reason, minutes, state, created_at, end_at, password_envelope, \
                         key_id, next_step_at, attempts) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $14, 0)",
                    )
                    .bind(g.id.clone())
                    .bind(g.tenant_id.clone())
                    .bind(g.provider.as_str())
                    .bind(g.device_id.clone())
                    .bind(scope)
                    .bind(g.requester.clone())
                    .bind(g.requester_key.clone())
                    .bind(g.account_name.clone())
                    .bind(account_key)
                    .bind(g.ticket.clone())
                    .bind(g.reason.clone())
                    .bind(g.minutes)
                    .bind(state_key(g.state))
                    .bind(to_millis(g.created_at))
                    .bind(to_millis(g.end_at))
                    .bind(g.password_envelope.clone())
                    .bind(g.key_id.clone())
                    .execute(&mut *conn)
                    .await;
                    match inserted {
                        Ok(_) => Ok(()),
                        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::Conflict(
                            "this account already has an open grant; extend it or wait until it is revoked",
                        )),
                        Err(e) => Err(StoreError::db(e)),
                    }
                })
            })
            .await?;
        self.jit_grant_any(&id).await
    }

    /// A grant of a tenant.
    pub async fn jit_grant(&self, tenant_id: &str, id: &str) -> Result<JitGrant, StoreError> {
        let g = self.jit_grant_any(id).await?;
        if g.tenant_id != tenant_id {
            return Err(StoreError::NotFound);
        }
        Ok(g)
    }

    /// A grant by id, whatever its tenant (the engine's view).
    pub async fn jit_grant_any(&self, id: &str) -> Result<JitGrant, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jit_grants WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        grant_from_row(&row)
    }

    /// A tenant's grants, newest first; only one requester's when `requester_key` is set.
    pub async fn list_jit_grants(
        &self,
        tenant_id: &str,
        requester_key: Option<&str>,
        limit: i64,
    ) -> Result<Vec<JitGrant>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jit_grants WHERE tenant_id = $1 AND ($2 IS NULL OR requester_key = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .bind(requester_key.map(str::to_owned))
            .bind(limit.clamp(1, MAX_ROWS))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(grant_from_row)
            .collect()
    }

    /// Approve (`approve`) or deny a requested grant. An approved grant runs for its minutes
    /// from `now`. The approver must not be the requester.
    pub async fn decide_jit_grant(
        &self,
        tenant_id: &str,
        id: &str,
        approve: bool,
        approver: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<JitGrant, StoreError> {
        let (tenant_id, id, approver) = (tenant_id.to_owned(), id.to_owned(), approver.to_owned());
        let grant_id = id.clone();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let g = locked_grant(conn, &tenant_id, &id).await?;
                    if g.requester_key == approver {
                        return Err(StoreError::Invalid(
                            "a request cannot be approved or denied by its requester".into(),
                        ));
                    }
                    if g.state != GrantState::Requested {
                        return Err(StoreError::Conflict("the grant is not waiting for approval"));
                    }
                    let (to, end) = if approve {
                        (GrantState::Approved, now + Duration::minutes(g.minutes))
                    } else {
                        (GrantState::Denied, g.end_at)
                    };
                    sqlx::query(
                        "UPDATE jit_grants SET state = $1, approver = $2, end_at = $3, next_step_at = $4 \
                         WHERE id = $5 AND state = 'requested'",
                    )
                    .bind(state_key(to))
                    .bind(approver)
                    .bind(to_millis(end))
                    .bind(to_millis(now))
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await?;
        self.jit_grant_any(&grant_id).await
    }

    /// Revoke a grant now: a requested one is withdrawn (nothing was granted), an approved or
    /// active one moves to `revoking` for the engine. Revoking twice is a conflict.
    pub async fn revoke_jit_grant(
        &self,
        tenant_id: &str,
        id: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<JitGrant, StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        let grant_id = id.clone();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let g = locked_grant(conn, &tenant_id, &id).await?;
                    let (to, revoked_at) = match g.state {
                        GrantState::Requested => (GrantState::Revoked, Some(to_millis(now))),
                        GrantState::Approved | GrantState::Active => (GrantState::Revoking, None),
                        GrantState::Revoking | GrantState::Revoked => {
                            return Err(StoreError::Conflict("the grant is already revoked"));
                        }
                        GrantState::Failed | GrantState::Denied => {
                            return Err(StoreError::Conflict("the grant was never active"));
                        }
                    };
                    sqlx::query(
                        "UPDATE jit_grants SET state = $1, revoked_at = $2, end_at = $3, next_step_at = $3, attempts = 0 \
                         WHERE id = $4 AND state = $5",
                    )
                    .bind(state_key(to))
                    .bind(revoked_at)
                    .bind(to_millis(now.min(g.end_at)))
                    .bind(id)
                    .bind(state_key(g.state))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await?;
        self.jit_grant_any(&grant_id).await
    }

    /// Move a grant's end to `end_at` (later than now and than its current end). Only a
    /// grant that has not ended can be extended; the caller checks the policy's maximum.
    pub async fn extend_jit_grant(
        &self,
        tenant_id: &str,
        id: &str,
        end_at: OffsetDateTime,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<JitGrant, StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        let grant_id = id.clone();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let g = locked_grant(conn, &tenant_id, &id).await?;
                    if !matches!(g.state, GrantState::Requested | GrantState::Approved | GrantState::Active)
                        || g.end_at <= now
                    {
                        return Err(StoreError::Conflict("only a grant that has not ended can be extended"));
                    }
                    if end_at <= g.end_at {
                        return Err(StoreError::Invalid("the new end must be later than the current end".into()));
                    }
                    let minutes = (end_at - g.start_at.unwrap_or(g.created_at)).whole_minutes();
                    // An active grant's next step is its end; others keep theirs.
                    let next = if g.state == GrantState::Active { to_millis(end_at) } else { to_millis(g.next_step_at) };
                    sqlx::query(
                        "UPDATE jit_grants SET end_at = $1, next_step_at = $2, minutes = $3 WHERE id = $4 AND state = $5",
                    )
                    .bind(to_millis(end_at))
                    .bind(next)
                    .bind(minutes.max(g.minutes))
                    .bind(id)
                    .bind(state_key(g.state))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await?;
        self.jit_grant_any(&grant_id).await
    }

    /// Append an audit event about a grant on its own (e.g. a password recovery).
    pub async fn audit_jit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.append_audit(vec![event]).await
    }

    /// Whether any grant has work due at `now` that nobody holds (a cheap read before claiming),
    /// and when the next known work falls due.
    pub async fn next_jit_step(&self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_until > next_step_at AND claimed_until > $1 \
             THEN claimed_until ELSE next_step_at END) AS due FROM jit_grants \
             WHERE state IN ('approved', 'active', 'revoking')",
        )
        .bind(to_millis(now))
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::db)?;
        opt_time(&row, "due")
    }

    /// Claim up to `limit` grants with work due at `now` for `node` until `now + lease`.
    ///
    /// Grants whose end has passed move to `revoking` in the same transaction (audited as
    /// `jit.revoke` by the scheduler), so an extend can no longer race the revocation.
    pub async fn claim_due_jit_grants(
        &self,
        node: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<JitGrant>, StoreError> {
        let backend = self.backend;
        let node = node.to_owned();
        let ids = self
            .writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let lock = match backend {
                        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                        Backend::Sqlite => "",
                    };
                    let sql = format!(
                        "SELECT {COLUMNS} FROM jit_grants WHERE state IN ('approved', 'active', 'revoking') \
                         AND next_step_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
                         ORDER BY next_step_at, id LIMIT $2{lock}"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(to_millis(now))
                        .bind(limit.clamp(1, MAX_ROWS))
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let mut ids = Vec::with_capacity(rows.len());
                    let mut events = Vec::new();
                    for row in &rows {
                        let g = grant_from_row(row)?;
                        let ends = matches!(g.state, GrantState::Approved | GrantState::Active) && g.end_at <= now;
                        let to = if ends { GrantState::Revoking } else { g.state };
                        let moved = sqlx::query(
                            "UPDATE jit_grants SET claimed_by = $1, claimed_until = $2, state = $3, \
                             attempts = CASE WHEN state = $3 THEN attempts ELSE 0 END \
                             WHERE id = $4 AND state = $5 AND (claimed_until IS NULL OR claimed_until <= $6)",
                        )
                        .bind(node.clone())
                        .bind(to_millis(now + lease))
                        .bind(state_key(to))
                        .bind(g.id.clone())
                        .bind(state_key(g.state))
                        .bind(to_millis(now))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        if moved.rows_affected() != 1 {
                            continue;
                        }
                        if ends {
                            events.push(
                                NewAuditEvent::new(now, "scheduler", Action::JitRevoke, ObjectType::JitGrant)
                                    .tenant(g.tenant_id.clone())
                                    .object(g.id.clone())
                                    .details(&serde_json::json!({ "cause": "end reached", "from": g.state.as_str() })),
                            );
                        }
                        ids.push(g.id);
                    }
                    Ok((ids, events))
                })
            })
            .await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            claimed.push(self.jit_grant_any(&id).await?);
        }
        Ok(claimed)
    }

    /// Release every claim `node` holds (an engine starting again after a crash: its old
    /// claims belong to a process that no longer runs).
    pub async fn release_jit_claims(&self, node: &str) -> Result<u64, StoreError> {
        let node = node.to_owned();
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE jit_grants SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1",
                    )
                    .bind(node)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    /// Write a step's result for a grant `node` claimed in state `from`, with its audit events
    /// and ticket comments, and release the claim. Returns `false` (and writes nothing but the
    /// release) when the grant moved meanwhile (for example a person revoked it).
    pub async fn finish_jit_step(
        &self,
        id: &str,
        node: &str,
        now: OffsetDateTime,
        step: FinishedStep,
    ) -> Result<bool, StoreError> {
        let (id, node) = (id.to_owned(), node.to_owned());
        let FinishedStep { from, result, events, comments } = step;
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let update = match &result {
                        StepResult::Moved { to, next_step_at, provider_job, error } => {
                            if !from.can_move_to(*to) {
                                return Err(StoreError::Invalid(format!("a grant cannot move from {from} to {to}")));
                            }
                            let start = (*to == GrantState::Active).then(|| to_millis(now));
                            let revoked = (*to == GrantState::Revoked).then(|| to_millis(now));
                            sqlx::query(
                                "UPDATE jit_grants SET state = $1, next_step_at = $2, attempts = 0, last_error = $9, \
                                 start_at = COALESCE($3, start_at), revoked_at = COALESCE($4, revoked_at), \
                                 provider_job = $5, claimed_by = NULL, claimed_until = NULL \
                                 WHERE id = $6 AND state = $7 AND claimed_by = $8",
                            )
                            .bind(state_key(*to))
                            .bind(to_millis(*next_step_at))
                            .bind(start)
                            .bind(revoked)
                            .bind(provider_job.clone())
                            .bind(id.clone())
                            .bind(state_key(from))
                            .bind(node.clone())
                            .bind(error.as_deref().map(cut))
                        }
                        StepResult::Waiting { next_step_at, provider_job } => sqlx::query(
                            "UPDATE jit_grants SET next_step_at = $1, provider_job = $2, claimed_by = NULL, \
                             claimed_until = NULL WHERE id = $3 AND state = $4 AND claimed_by = $5",
                        )
                        .bind(to_millis(*next_step_at))
                        .bind(provider_job.clone())
                        .bind(id.clone())
                        .bind(state_key(from))
                        .bind(node.clone()),
                        StepResult::Retry { error, next_step_at } => sqlx::query(
                            "UPDATE jit_grants SET next_step_at = $1, attempts = attempts + 1, last_error = $2, \
                             claimed_by = NULL, claimed_until = NULL WHERE id = $3 AND state = $4 AND claimed_by = $5",
                        )
                        .bind(to_millis(*next_step_at))
                        .bind(cut(error))
                        .bind(id.clone())
                        .bind(state_key(from))
                        .bind(node.clone()),
                    };
                    let done = update.execute(&mut *conn).await.map_err(StoreError::db)?;
                    if done.rows_affected() != 1 {
                        sqlx::query(
                            "UPDATE jit_grants SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
                        )
                        .bind(id)
                        .bind(node)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        return Ok((false, Vec::new()));
                    }
                    for c in &comments {
                        insert_comment(conn, c, now).await?;
                    }
                    Ok((true, events))
                })
            })
            .await
    }

    /// Record, once per grant, every grant whose access should have ended `grace` before
    /// `now` but whose revocation has not finished: sets `overdue_at` and appends a
    /// `jit.overdue` event each. Returns the grants newly reported.
    pub async fn mark_overdue_jit_grants(
        &self,
        now: OffsetDateTime,
        grace: Duration,
    ) -> Result<Vec<String>, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT id, tenant_id, state, end_at, attempts, last_error FROM jit_grants \
                         WHERE state IN ('approved', 'active', 'revoking') AND end_at <= $1 AND overdue_at IS NULL \
                         ORDER BY end_at LIMIT 1000",
                    )
                    .bind(to_millis(now - grace))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let mut ids = Vec::new();
                    let mut events = Vec::new();
                    for row in &rows {
                        let id: String = get(row, "id")?;
                        let tenant_id: String = get(row, "tenant_id")?;
                        let state: String = get(row, "state")?;
                        let attempts: i64 = get(row, "attempts")?;
                        let last_error: Option<String> = get(row, "last_error")?;
                        let end_at = time(row, "end_at")?;
                        sqlx::query("UPDATE jit_grants SET overdue_at = $1 WHERE id = $2 AND overdue_at IS NULL")
                            .bind(to_millis(now))
                            .bind(id.clone())
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                        events.push(
                            NewAuditEvent::new(now, "scheduler", Action::JitOverdue, ObjectType::JitGrant)
                                .tenant(tenant_id)
                                .object(id.clone())
                                .outcome(latchkey_core::Outcome::Failed)
                                .details(&serde_json::json!({
                                    "state": state,
                                    "late_ms": to_millis(now) - to_millis(end_at),
                                    "attempts": attempts,
                                    "last_error": last_error,
                                })),
                        );
                        ids.push(id);
                    }
                    Ok((ids, events))
                })
            })
            .await
    }

    /// Up to `limit` grant passwords sealed under another key than `active_key_id`, by grant id
    /// (the vault's re-wrap job; `""` samples any grant).
    pub async fn grant_passwords_to_rewrap(
        &self,
        active_key_id: &str,
        limit: i64,
    ) -> Result<Vec<GrantPasswordEnvelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, password_envelope, key_id FROM jit_grants WHERE key_id <> $1 ORDER BY id LIMIT $2",
        )
        .bind(active_key_id.to_owned())
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                Ok(GrantPasswordEnvelope {
                    grant_id: get(r, "id")?,
                    tenant_id: get(r, "tenant_id")?,
                    envelope: get(r, "password_envelope")?,
                    key_id: get(r, "key_id")?,
                })
            })
            .collect()
    }

    /// Replace re-wrapped grant passwords: each pairs the new envelope (with its new key id)
    /// with the key id it was read under; one whose key changed meanwhile is skipped. The
    /// `vault.rewrap` event is written in the same transaction. Returns how many were replaced.
    pub async fn replace_grant_password_envelopes(
        &self,
        rewrapped: Vec<(GrantPasswordEnvelope, String)>,
        event: NewAuditEvent,
    ) -> Result<u64, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let mut replaced = 0u64;
                    for (g, old_key_id) in rewrapped {
                        let done = sqlx::query(
                            "UPDATE jit_grants SET password_envelope = $1, key_id = $2 WHERE id = $3 AND key_id = $4",
                        )
                        .bind(g.envelope.clone())
                        .bind(g.key_id.clone())
                        .bind(g.grant_id.clone())
                        .bind(old_key_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        replaced += done.rows_affected();
                    }
                    let event = event.details(&serde_json::json!({ "grant_passwords": replaced }));
                    Ok((replaced, vec![event]))
                })
            })
            .await
    }

    /// How many grant passwords each key wraps.
    pub(crate) async fn grant_passwords_per_key(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT key_id, COUNT(*) AS n FROM jit_grants GROUP BY key_id ORDER BY key_id")
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?;
        rows.iter().map(|r| Ok((get(r, "key_id")?, get(r, "n")?))).collect()
    }

    /// How many grants are past their end without a finished revocation (for the metric).
    pub async fn count_overdue_jit_grants(&self, now: OffsetDateTime) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM jit_grants WHERE state IN ('approved', 'active', 'revoking') AND end_at <= $1",
        )
        .bind(to_millis(now))
        .fetch_one(&self.read)
        .await
        .map_err(StoreError::db)?;
        get(&row, "n")
    }
}

/// The grant, read inside the writer's transaction; a grant of another tenant is not found.
async fn locked_grant(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<JitGrant, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM jit_grants WHERE id = $1 AND tenant_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_owned())
        .bind(tenant_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
    grant_from_row(&row)
}

fn grant_from_row(row: &AnyRow) -> Result<JitGrant, StoreError> {
    let provider: String = get(row, "provider")?;
    let state: String = get(row, "state")?;
    Ok(JitGrant {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        provider: Provider::parse(&provider).ok_or(StoreError::Corrupt("provider"))?,
        device_id: get(row, "device_id")?,
        requester: get(row, "requester")?,
        requester_key: get(row, "requester_key")?,
        account_name: get(row, "account_name")?,
        ticket: get(row, "ticket")?,
        reason: get(row, "reason")?,
        minutes: get(row, "minutes")?,
        state: GrantState::parse(&state).ok_or(StoreError::Corrupt("state"))?,
        approver: get(row, "approver")?,
        created_at: time(row, "created_at")?,
        start_at: opt_time(row, "start_at")?,
        end_at: time(row, "end_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
        password_envelope: get(row, "password_envelope")?,
        key_id: get(row, "key_id")?,
        next_step_at: time(row, "next_step_at")?,
        attempts: get(row, "attempts")?,
        last_error: get(row, "last_error")?,
        overdue_at: opt_time(row, "overdue_at")?,
        provider_job: get(row, "provider_job")?,
    })
}

/// At most [`MAX_ERROR`] characters.
fn cut(text: &str) -> String {
    text.chars().take(MAX_ERROR).collect()
}
