//! Just-in-time local administrators on devices: the agent jobs that make a named local
//! account an administrator until a time (grant) and that remove it (revoke).
//!
//! A job is a row of `device_jobs` (kind `grant_local_admin` or `revoke_local_admin`), handed
//! out at check-ins like every job, with what it is about in `local_admin_jobs`: the grant, the
//! account name and, for a grant, the end time and the temporary password sealed to the
//! device's key (only the device can open it; it is cleared once the job has ended).
//!
//! Queueing is idempotent: a grant per (grant, end time), a revoke once per grant; a job that
//! failed is queued afresh. A revoke supersedes the grant's jobs the device has not finished.

use std::collections::HashMap;

use latchkey_core::clock::to_millis;
use latchkey_core::{Action, DeviceJob, JobCause, JobKind, JobState, NewAuditEvent, ObjectType};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// Why open grant jobs end when their grant is revoked first.
const SUPERSEDED: &str = "the grant was revoked before the device carried this job out";

/// A grant job to queue. The caller made `job_id` (the seal's associated data names it) and
/// sealed the password to the device key `device_key`.
#[derive(Clone)]
pub struct NewLocalAdminGrant {
    pub job_id: String,
    pub tenant_id: String,
    pub device_id: String,
    pub grant_id: String,
    pub username: String,
    /// The temporary password sealed to the device (base64url).
    pub sealed_password: String,
    /// The device's public key (base64url) the password was sealed to: the job is refused
    /// (`Conflict`) when the device holds another key by the time it is stored.
    pub device_key: String,
    pub until: OffsetDateTime,
}

impl std::fmt::Debug for NewLocalAdminGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLocalAdminGrant")
            .field("job_id", &self.job_id)
            .field("device_id", &self.device_id)
            .field("grant_id", &self.grant_id)
            .field("username", &self.username)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// What a local admin job asks of the agent, as handed out at a check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAdminWork {
    /// Make `username` an administrator until `until` with the sealed password.
    Grant { username: String, grant_id: String, sealed_password: String, until: OffsetDateTime },
    /// Remove `username`.
    Revoke { username: String },
}

/// A local admin job with its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAdminJob {
    pub job: DeviceJob,
    pub grant_id: String,
    pub username: String,
    /// Grants: the end time.
    pub until: Option<OffsetDateTime>,
}

impl Store {
    /// Queue a grant job (see the module doc). Returns the id of the job queued now, or of the
    /// open or done job of this grant with this end time. `NotFound`: the device is not in the
    /// tenant; `Conflict`: the device holds another key, the grant was revoked, or the grant's
    /// earlier jobs name another device or account. `event` is written only when a job is queued.
    pub async fn queue_local_admin_grant(
        &self,
        g: NewLocalAdminGrant,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<String, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let key = device_key(conn, &g.tenant_id, &g.device_id).await?;
                    if key.as_deref() != Some(g.device_key.as_str()) {
                        return Err(StoreError::Conflict("the device's key changed since the password was sealed"));
                    }
                    check_same_target(conn, &g.grant_id, &g.device_id, &g.username).await?;
                    if live_job(conn, &g.grant_id, "revoke", None).await?.is_some() {
                        return Err(StoreError::Conflict("the grant was revoked"));
                    }
                    if let Some(existing) = live_job(conn, &g.grant_id, "grant", Some(g.until)).await? {
                        return Ok((existing, Vec::new()));
                    }
                    insert(conn, &g.job_id, (&g.tenant_id, &g.device_id), JobKind::GrantLocalAdmin, now).await?;
                    sqlx::query(
                        "INSERT INTO local_admin_jobs (job_id, tenant_id, device_id, grant_id, kind, username, \
                         sealed_password, until_at, created_at) VALUES ($1, $2, $3, $4, 'grant', $5, $6, $7, $8)",
                    )
                    .bind(g.job_id.clone())
                    .bind(g.tenant_id.clone())
                    .bind(g.device_id.clone())
                    .bind(g.grant_id.clone())
                    .bind(g.username.clone())
                    .bind(g.sealed_password.clone())
                    .bind(to_millis(g.until))
                    .bind(to_millis(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let details = serde_json::json!({
                        "device": g.device_id, "grant": g.grant_id, "job": g.job_id, "username": g.username,
                        "until": to_millis(g.until), "state": "queued"
                    });
                    let event = with_job(event, &g.tenant_id, &g.job_id, details);
                    Ok((g.job_id, vec![event]))
                })
            })
            .await
    }

    /// Queue the job that removes a grant's account, once per grant (a failed one is queued
    /// afresh), and end the grant's open grant jobs as failed (superseded). Returns the job
    /// id. `NotFound`: the device is not in the tenant; `Conflict`: the grant's jobs name
    /// another device or account. `event` is written only when a job is queued.
    pub async fn queue_local_admin_revoke(
        &self,
        (tenant_id, device_id): (&str, &str),
        grant_id: &str,
        username: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<String, StoreError> {
        let (tenant_id, device_id) = (tenant_id.to_owned(), device_id.to_owned());
        let (grant_id, username) = (grant_id.to_owned(), username.to_owned());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    device_key(conn, &tenant_id, &device_id).await?;
                    check_same_target(conn, &grant_id, &device_id, &username).await?;
                    if let Some(existing) = live_job(conn, &grant_id, "revoke", None).await? {
                        return Ok((existing, Vec::new()));
                    }
                    let superseded = supersede_grants(conn, &grant_id, now).await?;
                    let job_id = uuid::Uuid::new_v4().to_string();
                    insert(conn, &job_id, (&tenant_id, &device_id), JobKind::RevokeLocalAdmin, now).await?;
                    sqlx::query(
                        "INSERT INTO local_admin_jobs (job_id, tenant_id, device_id, grant_id, kind, username, \
                         sealed_password, until_at, created_at) VALUES ($1, $2, $3, $4, 'revoke', $5, NULL, NULL, $6)",
                    )
                    .bind(job_id.clone())
                    .bind(tenant_id.clone())
                    .bind(device_id.clone())
                    .bind(grant_id.clone())
                    .bind(username.clone())
                    .bind(to_millis(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let details = serde_json::json!({
                        "device": device_id, "grant": grant_id, "job": job_id, "username": username,
                        "state": "queued", "superseded": superseded
                    });
                    let event = with_job(event, &tenant_id, &job_id, details);
                    Ok((job_id, vec![event]))
                })
            })
            .await
    }

    /// A local admin job (any state). `NotFound` for an unknown id or another kind of job.
    pub async fn local_admin_job(&self, job_id: &str) -> Result<LocalAdminJob, StoreError> {
        let row = sqlx::query(
            "SELECT j.id, j.tenant_id, j.device_id, j.kind, j.state, j.cause, j.account_id, j.created_at, \
             j.updated_at, j.error, l.grant_id, l.username, l.until_at \
             FROM local_admin_jobs l JOIN device_jobs j ON j.id = l.job_id WHERE l.job_id = $1",
        )
        .bind(job_id.to_owned())
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        local_admin_job_from_row(&row)
    }

    /// What the open local admin jobs among `job_ids` ask of the agent, by job id (a check-in
    /// reads it only when it hands out such jobs).
    pub async fn local_admin_work(&self, job_ids: &[&str]) -> Result<HashMap<String, LocalAdminWork>, StoreError> {
        let mut out = HashMap::with_capacity(job_ids.len());
        for id in job_ids {
            let row = sqlx::query(
                "SELECT l.job_id, l.kind, l.grant_id, l.username, l.sealed_password, l.until_at FROM local_admin_jobs l \
                 JOIN device_jobs j ON j.id = l.job_id WHERE l.job_id = $1 AND j.state = 'open'",
            )
            .bind((*id).to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?;
            let Some(row) = row else { continue };
            let username: String = get(&row, "username")?;
            let work = match get::<String>(&row, "kind")?.as_str() {
                "grant" => LocalAdminWork::Grant {
                    username,
                    grant_id: get(&row, "grant_id")?,
                    sealed_password: get::<Option<String>>(&row, "sealed_password")?
                        .ok_or(StoreError::Corrupt("sealed_password"))?,
                    until: opt_time(&row, "until_at")?.ok_or(StoreError::Corrupt("until_at"))?,
                },
                "revoke" => LocalAdminWork::Revoke { username },
                _ => return Err(StoreError::Corrupt("kind")),
            };
            out.insert(get(&row, "job_id")?, work);
        }
        Ok(out)
    }
}

/// The agent finished an open local admin job (called by `confirm_job` in the same
/// transaction): it is done and its sealed password cleared. A version is refused (`Conflict`).
pub(crate) async fn confirm(
    conn: &mut AnyConnection,
    mut job: DeviceJob,
    version: Option<i64>,
    now: OffsetDateTime,
    template: &NewAuditEvent,
) -> Result<(DeviceJob, Vec<NewAuditEvent>), StoreError> {
    if version.is_some() {
        return Err(StoreError::Conflict("a local admin job has no version to confirm"));
    }
    let row = sqlx::query("SELECT grant_id, username, until_at FROM local_admin_jobs WHERE job_id = $1")
        .bind(job.id.clone())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::Corrupt("local_admin_jobs"))?;
    let (grant_id, username): (String, String) = (get(&row, "grant_id")?, get(&row, "username")?);
    let until: Option<i64> = get(&row, "until_at")?;
    sqlx::query("UPDATE device_jobs SET state = 'done', updated_at = $1 WHERE id = $2")
        .bind(to_millis(now))
        .bind(job.id.clone())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    clear_sealed(conn, &job.id).await?;
    let action = if job.kind == JobKind::GrantLocalAdmin { Action::LocalAdminGrant } else { Action::LocalAdminRevoke };
    let event =
        template.sibling(action, ObjectType::DeviceJob).tenant(job.tenant_id.clone()).object(job.id.clone()).details(
            &serde_json::json!({
                "device": job.device_id, "grant": grant_id, "job": job.id, "username": username, "until": until,
                "state": "done"
            }),
        );
    job.state = JobState::Done;
    job.updated_at = now;
    Ok((job, vec![event]))
}

/// Drop the sealed password of a job that ended (done or failed).
pub(crate) async fn clear_sealed(conn: &mut AnyConnection, job_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE local_admin_jobs SET sealed_password = NULL WHERE job_id = $1")
        .bind(job_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    Ok(())
}

/// The device's public key; `NotFound` unless the device is in the tenant.
async fn device_key(conn: &mut AnyConnection, tenant_id: &str, device_id: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT agent_public_key FROM devices WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id.to_owned())
        .bind(device_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
    get(&row, "agent_public_key")
}

/// `Conflict` when an earlier job of the grant names another device or account.
async fn check_same_target(
    conn: &mut AnyConnection,
    grant_id: &str,
    device_id: &str,
    username: &str,
) -> Result<(), StoreError> {
    let other = sqlx::query(
        "SELECT 1 AS one FROM local_admin_jobs WHERE grant_id = $1 AND (device_id <> $2 OR username <> $3) LIMIT 1",
    )
    .bind(grant_id.to_owned())
    .bind(device_id.to_owned())
    .bind(username.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    match other {
        Some(_) => Err(StoreError::Conflict("the grant's earlier jobs name another device or account")),
        None => Ok(()),
    }
}

/// The newest open or done job of the grant of this kind (`grant` with this end time).
async fn live_job(
    conn: &mut AnyConnection,
    grant_id: &str,
    kind: &str,
    until: Option<OffsetDateTime>,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT l.job_id FROM local_admin_jobs l JOIN device_jobs j ON j.id = l.job_id \
         WHERE l.grant_id = $1 AND l.kind = $2 AND ($3 = 0 OR l.until_at = $4) AND j.state <> 'failed' \
         ORDER BY l.created_at DESC, l.job_id LIMIT 1",
    )
    .bind(grant_id.to_owned())
    .bind(kind.to_owned())
    .bind(i64::from(until.is_some()))
    .bind(until.map_or(0, to_millis))
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    row.map(|r| get(&r, "job_id")).transpose()
}

/// End the grant's open grant jobs as failed (superseded by its revocation); returns their ids.
async fn supersede_grants(
    conn: &mut AnyConnection,
    grant_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT l.job_id FROM local_admin_jobs l JOIN device_jobs j ON j.id = l.job_id \
         WHERE l.grant_id = $1 AND l.kind = 'grant' AND j.state = 'open' ORDER BY l.job_id",
    )
    .bind(grant_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let ids: Vec<String> = rows.iter().map(|r| get(r, "job_id")).collect::<Result<_, _>>()?;
    for id in &ids {
        sqlx::query("UPDATE device_jobs SET state = 'failed', error = $1, updated_at = $2 WHERE id = $3")
            .bind(SUPERSEDED)
            .bind(to_millis(now))
            .bind(id.clone())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        clear_sealed(conn, id).await?;
    }
    Ok(ids)
}

async fn insert(
    conn: &mut AnyConnection,
    job_id: &str,
    (tenant_id, device_id): (&str, &str),
    kind: JobKind,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO device_jobs (id, tenant_id, device_id, kind, state, cause, account_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'open', $5, NULL, $6, $6)",
    )
    .bind(job_id.to_owned())
    .bind(tenant_id.to_owned())
    .bind(device_id.to_owned())
    .bind(kind.as_str())
    .bind(JobCause::Requested.as_str())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| match StoreError::db(e) {
        StoreError::Conflict(_) => StoreError::Conflict("a job with this id exists"),
        other => other,
    })?;
    Ok(())
}

/// The caller's event about the job: in the tenant, about the job unless it names its own
/// object, with the job's facts added to its details (its own keys win).
fn with_job(event: NewAuditEvent, tenant_id: &str, job_id: &str, facts: serde_json::Value) -> NewAuditEvent {
    let mut details = match serde_json::from_str::<serde_json::Value>(&event.details) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let serde_json::Value::Object(facts) = facts {
        for (k, v) in facts {
            details.entry(k).or_insert(v);
        }
    }
    let mut event = event.tenant(tenant_id.to_owned()).details(&serde_json::Value::Object(details));
    if event.object_id.is_none() {
        event = event.object(job_id.to_owned());
    }
    event
}

fn local_admin_job_from_row(r: &AnyRow) -> Result<LocalAdminJob, StoreError> {
    let kind: String = get(r, "kind")?;
    let state: String = get(r, "state")?;
    let cause: String = get(r, "cause")?;
    Ok(LocalAdminJob {
        job: DeviceJob {
            id: get(r, "id")?,
            tenant_id: get(r, "tenant_id")?,
            device_id: get(r, "device_id")?,
            kind: JobKind::parse(&kind).ok_or(StoreError::Corrupt("kind"))?,
            state: JobState::parse(&state).ok_or(StoreError::Corrupt("state"))?,
            cause: JobCause::parse(&cause).ok_or(StoreError::Corrupt("cause"))?,
            account_id: get(r, "account_id")?,
            created_at: time(r, "created_at")?,
            updated_at: time(r, "updated_at")?,
            error: get(r, "error")?,
        },
        grant_id: get(r, "grant_id")?,
        username: get(r, "username")?,
        until: opt_time(r, "until_at")?,
    })
}
