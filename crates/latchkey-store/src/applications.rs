//! Applications: machine clients of the token endpoint (Argon2id password hashes, enabled or
//! not, tenant-scoped names), and the failed-request counters behind the token endpoint's
//! progressive delay and lockout.

use std::fmt;

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, tenant_row, time};
use crate::{Store, StoreError};

/// An application (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// An application to create.
#[derive(Clone)]
pub struct NewApplication {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for NewApplication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApplication").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

/// An application with its password hash, for checking a token request.
#[derive(Clone)]
pub struct ApplicationSecret {
    pub application: Application,
    pub password_hash: String,
}

impl fmt::Debug for ApplicationSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationSecret").field("application", &self.application).finish_non_exhaustive()
    }
}

/// Failed token requests counted under one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenFailures {
    pub failures: i64,
    pub last_failure_at: Option<OffsetDateTime>,
    /// Requests of this scope are refused until then.
    pub locked_until: Option<OffsetDateTime>,
}

/// How failures are counted and when a scope is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRule {
    /// A scope whose last failure is older than this starts counting again from zero.
    pub window: time::Duration,
    /// Failures in a window after which the scope is locked.
    pub max_failures: i64,
    /// How long a lock lasts.
    pub lockout: time::Duration,
}

const COLUMNS: &str = "id, tenant_id, name, enabled, created_at, updated_at";

impl Store {
    /// Create an application.
    pub async fn create_application(&self, a: NewApplication, event: NewAuditEvent) -> Result<Application, StoreError> {
        let out = Application {
            id: a.id.clone(),
            tenant_id: a.tenant_id.clone(),
            name: a.name.clone(),
            enabled: true,
            created_at: a.created_at,
            updated_at: a.created_at,
        };
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO applications (id, tenant_id, name, name_key, password_hash, enabled, created_at, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
                    )
                    .bind(a.id)
                    .bind(a.tenant_id)
                    .bind(a.name)
                    .bind(a.name_key)
                    .bind(a.password_hash)
                    .bind(to_millis(a.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(out)
                })
            })
            .await
    }

    /// A tenant's applications by name.
    pub async fn list_applications(&self, tenant_id: &str) -> Result<Vec<Application>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM applications WHERE tenant_id = $1 ORDER BY name_key");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(application_from_row)
            .collect()
    }

    /// One application of a tenant.
    pub async fn application(&self, tenant_id: &str, id: &str) -> Result<Application, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM applications WHERE tenant_id = $1 AND id = $2");
        application_from_row(&tenant_row(&self.read, sql, tenant_id, id).await?)
    }

    /// The application of a tenant with this name key, with its password hash (disabled ones
    /// too: the caller decides).
    pub async fn application_secret(&self, tenant_id: &str, name_key: &str) -> Result<ApplicationSecret, StoreError> {
        let sql = format!("SELECT {COLUMNS}, password_hash FROM applications WHERE tenant_id = $1 AND name_key = $2");
        let row = tenant_row(&self.read, sql, tenant_id, name_key).await?;
        Ok(ApplicationSecret { application: application_from_row(&row)?, password_hash: get(&row, "password_hash")? })
    }

    /// Enable or disable an application. Disabling revokes its live tokens in the same
    /// transaction.
    pub async fn set_application_enabled(
        &self,
        tenant_id: &str,
        id: &str,
        enabled: bool,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Application, StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE applications SET enabled = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
                    )
                    .bind(i64::from(enabled))
                    .bind(to_millis(now))
                    .bind(tenant_id.clone())
                    .bind(id.clone())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    if !enabled {
                        sqlx::query(
                            "UPDATE app_tokens SET revoked_at = $1 WHERE application_id = $2 AND revoked_at IS NULL",
                        )
                        .bind(to_millis(now))
                        .bind(id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    }
                    let sql = format!("SELECT {COLUMNS} FROM applications WHERE id = $1");
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(id)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    application_from_row(&row)
                })
            })
            .await
    }

    /// Delete an application with its tokens and its permissions on accounts.
    pub async fn delete_application(&self, tenant_id: &str, id: &str, event: NewAuditEvent) -> Result<(), StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "DELETE FROM account_permissions WHERE tenant_id = $1 AND principal_kind = 'application' \
                         AND principal_id = $2",
                    )
                    .bind(tenant_id.clone())
                    .bind(id.clone())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let done = sqlx::query("DELETE FROM applications WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant_id)
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The failure counters of these scopes, in the same order (zero for a scope never seen).
    pub async fn token_failures(&self, scopes: &[String]) -> Result<Vec<TokenFailures>, StoreError> {
        let mut out = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let row =
                sqlx::query("SELECT failures, last_failure_at, locked_until FROM app_token_failures WHERE scope = $1")
                    .bind(scope.clone())
                    .fetch_optional(&self.read)
                    .await
                    .map_err(StoreError::db)?;
            out.push(match row {
                None => TokenFailures::default(),
                Some(r) => failures_from_row(&r)?,
            });
        }
        Ok(out)
    }

    /// Count a failed token request under each scope, with its audit event in the same
    /// transaction: a scope whose last failure is older than the rule's window starts again
    /// at one; a scope reaching the rule's maximum is locked for the lockout time. Returns the
    /// counters after this failure, in the order of `scopes`.
    pub async fn record_token_failure(
        &self,
        scopes: Vec<String>,
        now: OffsetDateTime,
        rule: FailureRule,
        event: NewAuditEvent,
    ) -> Result<Vec<TokenFailures>, StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let mut out = Vec::with_capacity(scopes.len());
                    for scope in scopes {
                        out.push(count_failure(conn, &scope, now, rule).await?);
                    }
                    Ok(out)
                })
            })
            .await
    }
}

/// Count one failure of a scope (see [`Store::record_token_failure`]).
async fn count_failure(
    conn: &mut AnyConnection,
    scope: &str,
    now: OffsetDateTime,
    rule: FailureRule,
) -> Result<TokenFailures, StoreError> {
    let now_ms = to_millis(now);
    let stale_before = to_millis(now - rule.window);
    let row = sqlx::query(
        "INSERT INTO app_token_failures (scope, failures, first_failure_at, last_failure_at) VALUES ($1, 1, $2, $2) \
         ON CONFLICT (scope) DO UPDATE SET \
         failures = CASE WHEN app_token_failures.last_failure_at < $3 THEN 1 ELSE app_token_failures.failures + 1 END, \
         first_failure_at = CASE WHEN app_token_failures.last_failure_at < $3 THEN excluded.first_failure_at \
             ELSE app_token_failures.first_failure_at END, \
         last_failure_at = excluded.last_failure_at \
         RETURNING failures, last_failure_at, locked_until",
    )
    .bind(scope.to_owned())
    .bind(now_ms)
    .bind(stale_before)
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let mut counted = failures_from_row(&row)?;
    if counted.failures >= rule.max_failures {
        let until = now + rule.lockout;
        sqlx::query("UPDATE app_token_failures SET locked_until = $1 WHERE scope = $2")
            .bind(to_millis(until))
            .bind(scope.to_owned())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        counted.locked_until = Some(until);
    }
    Ok(counted)
}

/// Forget the failures of these scopes (after a successful request), inside the caller's
/// transaction. A scope that is locked stays locked until its lock ends.
pub(crate) async fn clear_failures(
    conn: &mut AnyConnection,
    scopes: &[String],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for scope in scopes {
        sqlx::query("DELETE FROM app_token_failures WHERE scope = $1 AND (locked_until IS NULL OR locked_until <= $2)")
            .bind(scope.clone())
            .bind(to_millis(now))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
    }
    Ok(())
}

fn failures_from_row(row: &AnyRow) -> Result<TokenFailures, StoreError> {
    Ok(TokenFailures {
        failures: get(row, "failures")?,
        last_failure_at: opt_time(row, "last_failure_at")?,
        locked_until: opt_time(row, "locked_until")?,
    })
}

pub(crate) fn application_from_row(row: &AnyRow) -> Result<Application, StoreError> {
    Ok(Application {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        enabled: get::<i64>(row, "enabled")? != 0,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}
