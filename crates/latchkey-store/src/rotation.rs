//! Rotation policies and the jobs device agents carry out: two-phase password rotation
//! (pending, then confirmed) and support accounts.
//!
//! The store never forgets a version that may be set on a device: a pending version stays
//! until a later one is confirmed; only then are older versions retired, and only retired
//! versions beyond the policy's history are deleted.

use latchkey_core::clock::to_millis;
use latchkey_core::model::{Account, AccountKind};
use latchkey_core::{
    Action, CharClasses, DeviceJob, JobCause, JobKind, JobState, NewAuditEvent, ObjectType, RotationPolicy,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::{Duration, OffsetDateTime};

use tokio::sync::oneshot;

use crate::accounts::SealFn;
use crate::check_in::{CheckInJob, CheckInPlan};
use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// Which policy applies to a device: the device group's with the lowest priority, else the
/// tenant's, else the default.
const EFFECTIVE_POLICY: &str = "WITH RECURSIVE up(id) AS ( \
     SELECT group_id FROM group_members WHERE member_kind = 'device' AND member_id = $2 \
     UNION SELECT m.group_id FROM group_members m JOIN up ON m.member_id = up.id AND m.member_kind = 'group') \
     SELECT max_age_secs, length, classes, passphrase_words, history, support_lifetime_secs, poll_interval_secs \
     FROM rotation_policies p WHERE p.tenant_id = $1 AND (p.scope_key = '' OR p.group_id IN (SELECT id FROM up)) \
     ORDER BY CASE WHEN p.scope_key = '' THEN 1 ELSE 0 END, p.priority, p.scope_key LIMIT 1";

/// A rotation policy as stored: the tenant's (no group) or a device group's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPolicy {
    pub group_id: Option<String>,
    /// Among group policies that apply to a device, the lowest priority wins.
    pub priority: i64,
    pub policy: RotationPolicy,
    pub updated_at: OffsetDateTime,
}

/// What the server knows about a device's managed admin account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPasswordState {
    pub account_id: String,
    pub account_name: String,
    /// The active version: number, created, expires.
    pub active: Option<(i64, OffsetDateTime, Option<OffsetDateTime>)>,
    /// Pending versions, oldest first.
    pub pending: Vec<i64>,
}

/// What a check-in needs to know, read before anything is written.
#[derive(Debug, Clone, Default)]
pub struct AgentSnapshot {
    pub admin: Option<AdminPasswordState>,
    /// Live support accounts whose lifetime ended and that have no open removal job.
    pub expired_support: Vec<String>,
    /// Open jobs, oldest first, with the name of the account they are about.
    pub open_jobs: Vec<(DeviceJob, Option<String>)>,
}

/// What a check-in writes.
#[derive(Debug, Clone)]
pub struct CheckInWrite {
    pub device_id: String,
    pub tenant_id: String,
    pub nonce: String,
    pub nonce_expires_at: OffsetDateTime,
    pub reported_version: Option<i64>,
    pub poll_interval_secs: i64,
    /// A pending version the agent reports as set: confirm it (account, version, history).
    pub confirm: Option<(String, i64, i64)>,
    /// Queue a rotation for this cause unless one is open.
    pub rotate: Option<JobCause>,
    /// Queue removal of these support accounts.
    pub remove_support: Vec<String>,
}

/// The version stored by [`Store::post_pending`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStored {
    pub account_id: String,
    pub version: i64,
    /// When a support account stops working.
    pub expires_at: Option<OffsetDateTime>,
}

/// A live support account.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportAccount {
    pub account: Account,
    pub version: i64,
}

/// The answer to a support account request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupportRequest {
    /// A creation job was queued now.
    Queued(String),
    /// A creation job was already open; nothing new was queued.
    AlreadyQueued(String),
    /// A live support account exists; nothing was queued.
    Ready,
}

impl Store {
    /// The policy that applies to a device.
    pub async fn effective_policy(&self, tenant_id: &str, device_id: &str) -> Result<RotationPolicy, StoreError> {
        let row = sqlx::query(EFFECTIVE_POLICY)
            .bind(tenant_id.to_owned())
            .bind(device_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?;
        row.map_or_else(|| Ok(RotationPolicy::default()), |r| policy_from_row(&r))
    }

    /// A tenant's policies: the tenant's own first, then by priority.
    pub async fn list_policies(&self, tenant_id: &str) -> Result<Vec<ScopedPolicy>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_id, priority, max_age_secs, length, classes, passphrase_words, history, \
             support_lifetime_secs, poll_interval_secs, updated_at FROM rotation_policies WHERE tenant_id = $1 \
             ORDER BY CASE WHEN scope_key = '' THEN 0 ELSE 1 END, priority, scope_key",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?;
        rows.iter()
            .map(|r| {
                Ok(ScopedPolicy {
                    group_id: get(r, "group_id")?,
                    priority: get(r, "priority")?,
                    policy: policy_from_row(r)?,
                    updated_at: time(r, "updated_at")?,
                })
            })
            .collect()
    }

    /// Set the tenant's policy (no group) or a device group's; replaces what was there.
    pub async fn set_policy(&self, tenant_id: &str, p: ScopedPolicy, event: NewAuditEvent) -> Result<(), StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    if let Some(group) = &p.group_id {
                        crate::directory::require_in_tenant(
                            conn,
                            "SELECT 1 FROM groups WHERE tenant_id = $1 AND id = $2",
                            &tenant_id,
                            group,
                        )
                        .await?;
                    }
                    let scope = p.group_id.clone().unwrap_or_default();
                    sqlx::query("DELETE FROM rotation_policies WHERE tenant_id = $1 AND scope_key = $2")
                        .bind(tenant_id.clone())
                        .bind(scope.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let r = &p.policy;
                    sqlx::query(
                        "INSERT INTO rotation_policies (tenant_id, scope_key, group_id, priority, max_age_secs, length, \
                         classes, passphrase_words, history, support_lifetime_secs, poll_interval_secs, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(tenant_id)
                    .bind(scope)
                    .bind(p.group_id.clone())
                    .bind(p.priority)
                    .bind(r.max_age.whole_seconds())
                    .bind(r.length)
                    .bind(r.classes.as_list())
                    .bind(r.passphrase_words)
                    .bind(r.history)
                    .bind(r.support_lifetime.whole_seconds())
                    .bind(r.poll_interval.whole_seconds())
                    .bind(to_millis(p.updated_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await
    }

    /// Everything a check-in decides on, from the read pool.
    pub async fn agent_snapshot(&self, device_id: &str, now: OffsetDateTime) -> Result<AgentSnapshot, StoreError> {
        let mut conn = self.read.acquire().await.map_err(StoreError::db)?;
        agent_snapshot(&mut conn, device_id, now).await
    }

    /// Record a check-in: spend the nonce (a nonce seen before is a replay: `Conflict`),
    /// record the time and the reported version, then confirm, queue and remove as decided.
    /// Returns the jobs queued now with the name of the account each is about. `template`
    /// gives the actor and request facts of the audit events. Check-ins queued together are
    /// written together (see [`Store::check_in`]).
    pub async fn record_check_in(
        &self,
        now: OffsetDateTime,
        c: CheckInWrite,
        template: NewAuditEvent,
    ) -> Result<Vec<(DeviceJob, Option<String>)>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = CheckInJob { device_id: c.device_id.clone(), now, template, plan: CheckInPlan::Decided(c), reply };
        self.writer.check_in(job).await?;
        let (_, queued) = answer.await.map_err(|_| StoreError::CommitFailed)??;
        Ok(queued)
    }

    /// Store a password an agent escrowed for an open job, as a pending version: for a
    /// rotation on the device's admin account `account_name` (created on first use), for a
    /// support account on a new support account `account_name` that lives `support_lifetime`.
    /// `NotFound` when the job is not an open job of this device, `Conflict` when the job is a
    /// removal or the name is taken.
    #[allow(clippy::too_many_arguments)]
    pub async fn post_pending(
        &self,
        device_id: &str,
        job_id: &str,
        account_name: (String, String),
        support_lifetime: Duration,
        now: OffsetDateTime,
        seal: Box<dyn FnOnce(&str) -> SealFn + Send>,
        template: NewAuditEvent,
    ) -> Result<PendingStored, StoreError> {
        let (device_id, job_id) = (device_id.to_owned(), job_id.to_owned());
        let (name, name_key) = account_name;
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let job = open_job(conn, &device_id, &job_id).await?;
                    let (account_id, expires_at, action) = match job.kind {
                        JobKind::RotatePassword => {
                            let id = admin_account(conn, &job, &name, &name_key, now).await?;
                            (id, None, Action::RotationPending)
                        }
                        JobKind::CreateSupportAccount => {
                            if let Some(previous) = &job.account_id {
                                // An earlier attempt that was never confirmed: the agent removes
                                // unconfirmed accounts on its own, so it is no longer live.
                                mark_removed(conn, previous, now).await?;
                            }
                            let expires = now + support_lifetime;
                            let id = create_support_account(conn, &job, &name, &name_key, expires, now).await?;
                            (id, Some(expires), Action::SupportAccountCreate)
                        }
                        JobKind::RemoveSupportAccount => {
                            return Err(StoreError::Conflict("a removal job takes no password"));
                        }
                        JobKind::GrantLocalAdmin | JobKind::RevokeLocalAdmin => {
                            return Err(StoreError::Conflict("a local admin job takes no pending password"));
                        }
                    };
                    let version = next_version(conn, &account_id).await?;
                    let sealed = seal(&account_id)(version).map_err(StoreError::Seal)?;
                    sqlx::query(
                        "INSERT INTO secret_versions (tenant_id, account_id, version, state, password_envelope, \
                         ssh_key_envelope, key_id, created_at, expires_at) VALUES ($1, $2, $3, 'pending', $4, NULL, $5, $6, $7)",
                    )
                    .bind(job.tenant_id.clone())
                    .bind(account_id.clone())
                    .bind(version)
                    .bind(sealed.password)
                    .bind(sealed.key_id)
                    .bind(to_millis(now))
                    .bind(expires_at.map(to_millis))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    sqlx::query("UPDATE device_jobs SET account_id = $1, updated_at = $2 WHERE id = $3")
                        .bind(account_id.clone())
                        .bind(to_millis(now))
                        .bind(job.id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let event = template
                        .sibling(action, ObjectType::Account)
                        .tenant(job.tenant_id.clone())
                        .object(account_id.clone())
                        .details(&serde_json::json!({
                            "device": device_id, "job": job.id, "version": version, "state": "pending", "account": name
                        }));
                    Ok((PendingStored { account_id, version, expires_at }, vec![event]))
                })
            })
            .await
    }

    /// The agent finished a job: a rotation or support account with the pending version it
    /// set (made active; older versions retired; history beyond `history` deleted), or a
    /// removal (the support account is marked removed and its secrets deleted). `NotFound`
    /// when the job is not an open job of this device or the version was never posted for it.
    pub async fn confirm_job(
        &self,
        device_id: &str,
        job_id: &str,
        version: Option<i64>,
        history: i64,
        now: OffsetDateTime,
        template: NewAuditEvent,
    ) -> Result<DeviceJob, StoreError> {
        let (device_id, job_id) = (device_id.to_owned(), job_id.to_owned());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let job = open_job(conn, &device_id, &job_id).await?;
                    if job.kind.is_local_admin() {
                        return crate::local_admin::confirm(conn, job, version, now, &template).await;
                    }
                    match (job.kind, version) {
                        (JobKind::RemoveSupportAccount, Some(_)) => {
                            return Err(StoreError::Conflict("a removal job has no version to confirm"));
                        }
                        (JobKind::RotatePassword | JobKind::CreateSupportAccount, None) => {
                            return Err(StoreError::Conflict("this job needs the version that was set"));
                        }
                        _ => {}
                    }
                    // No version was posted for the job yet.
                    let account_id = job.account_id.clone().ok_or(StoreError::NotFound)?;
                    let action = match (job.kind, version) {
                        (JobKind::RemoveSupportAccount, None) => {
                            mark_removed(conn, &account_id, now).await?;
                            Action::SupportAccountRemove
                        }
                        (JobKind::RotatePassword | JobKind::CreateSupportAccount, Some(v)) => {
                            let keep = if job.kind == JobKind::RotatePassword { history } else { 0 };
                            if !activate(conn, &device_id, &account_id, v, keep, now).await? {
                                return Err(StoreError::NotFound);
                            }
                            if job.kind == JobKind::RotatePassword {
                                Action::RotationConfirm
                            } else {
                                Action::SupportAccountCreate
                            }
                        }
                        _ => return Err(StoreError::Conflict("this job and confirmation do not match")),
                    };
                    set_job_state(conn, &job.id, JobState::Done, None, now).await?;
                    if job.kind == JobKind::RotatePassword {
                        // Any other open rotation is satisfied by this one.
                        finish_open_jobs(conn, &device_id, JobKind::RotatePassword, now).await?;
                        mark_rotated(conn, &device_id, now).await?;
                    }
                    let event = template
                        .sibling(action, ObjectType::Account)
                        .tenant(job.tenant_id.clone())
                        .object(account_id)
                        .details(&serde_json::json!({ "device": device_id, "job": job.id, "version": version }));
                    let mut done = job;
                    done.state = JobState::Done;
                    done.updated_at = now;
                    Ok((done, vec![event]))
                })
            })
            .await
    }

    /// The agent could not finish a job: it is marked failed with the agent's message. A
    /// rotation is queued again by the next check-in that finds one due.
    pub async fn fail_job(
        &self,
        device_id: &str,
        job_id: &str,
        error: String,
        now: OffsetDateTime,
        template: NewAuditEvent,
    ) -> Result<DeviceJob, StoreError> {
        let (device_id, job_id) = (device_id.to_owned(), job_id.to_owned());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let mut job = open_job(conn, &device_id, &job_id).await?;
                    set_job_state(conn, &job.id, JobState::Failed, Some(&error), now).await?;
                    if job.kind == JobKind::CreateSupportAccount
                        && let Some(account) = &job.account_id
                    {
                        mark_removed(conn, account, now).await?;
                    }
                    if job.kind.is_local_admin() {
                        crate::local_admin::clear_sealed(conn, &job.id).await?;
                    }
                    let action = match job.kind {
                        JobKind::RotatePassword => Action::RotationFail,
                        JobKind::GrantLocalAdmin | JobKind::RevokeLocalAdmin => Action::LocalAdminFail,
                        _ => Action::SupportAccountFail,
                    };
                    let mut event = job_event(&template, action, &job);
                    event.outcome = latchkey_core::Outcome::Failed;
                    let event = event.details(&serde_json::json!({
                        "device": device_id, "kind": job.kind.as_str(), "error": error
                    }));
                    job.state = JobState::Failed;
                    job.error = Some(error);
                    job.updated_at = now;
                    Ok((job, vec![event]))
                })
            })
            .await
    }

    /// Queue a rotation of a device's password (an admin's request); an open rotation is
    /// answered instead of queueing a second. `NotFound` for a device not in this tenant.
    pub async fn request_rotation(
        &self,
        tenant_id: &str,
        device_id: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<DeviceJob, StoreError> {
        let (tenant_id, device_id) = (tenant_id.to_owned(), device_id.to_owned());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_device(conn, &tenant_id, &device_id).await?;
                    if let Some(job) = open_job_of_kind(conn, &device_id, JobKind::RotatePassword).await? {
                        return Ok((job, Vec::new()));
                    }
                    let job = insert_job(
                        conn,
                        (&tenant_id, &device_id),
                        JobKind::RotatePassword,
                        JobCause::Requested,
                        None,
                        now,
                    )
                    .await?;
                    let event = event.object(job.id.clone()).details(&serde_json::json!({
                        "device": device_id, "cause": JobCause::Requested.as_str()
                    }));
                    Ok((job, vec![event]))
                })
            })
            .await
    }

    /// Ask for a support account on a device: queues one creation job unless one is open or
    /// a live support account exists. `NotFound` for a device not in this tenant.
    pub async fn request_support_account(
        &self,
        tenant_id: &str,
        device_id: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<SupportRequest, StoreError> {
        let (tenant_id, device_id) = (tenant_id.to_owned(), device_id.to_owned());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_device(conn, &tenant_id, &device_id).await?;
                    let (answer, details) = if live_support(&mut *conn, &device_id, now).await?.is_some() {
                        (
                            SupportRequest::Ready,
                            serde_json::json!({ "device": device_id, "queued": false, "ready": true }),
                        )
                    } else if let Some(job) = open_job_of_kind(conn, &device_id, JobKind::CreateSupportAccount).await? {
                        (
                            SupportRequest::AlreadyQueued(job.id.clone()),
                            serde_json::json!({ "device": device_id, "queued": false, "job": job.id }),
                        )
                    } else {
                        let job = insert_job(
                            conn,
                            (&tenant_id, &device_id),
                            JobKind::CreateSupportAccount,
                            JobCause::Requested,
                            None,
                            now,
                        )
                        .await?;
                        (
                            SupportRequest::Queued(job.id.clone()),
                            serde_json::json!({ "device": device_id, "queued": true, "job": job.id }),
                        )
                    };
                    Ok((answer, vec![event.object(device_id.clone()).details(&details)]))
                })
            })
            .await
    }

    /// The device's live support account (confirmed, not expired at `now`, not removed).
    pub async fn live_support_account(
        &self,
        tenant_id: &str,
        device_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<SupportAccount>, StoreError> {
        Ok(live_support(&self.read, device_id, now).await?.filter(|s| s.account.tenant_id == tenant_id))
    }

    /// The state of a device's managed admin password.
    pub async fn admin_password_state(&self, device_id: &str) -> Result<Option<AdminPasswordState>, StoreError> {
        admin_password_state(&self.read, device_id).await
    }

    /// The job with this id of this device, in any state.
    pub async fn agent_job(&self, device_id: &str, job_id: &str) -> Result<DeviceJob, StoreError> {
        let row = sqlx::query(concat!(select_jobs!(), " WHERE j.id = $1 AND j.device_id = $2"))
            .bind(job_id.to_owned())
            .bind(device_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        job_from_row(&row).map(|(j, _)| j)
    }

    /// A device's jobs, newest first (at most `limit`).
    pub async fn device_jobs(
        &self,
        tenant_id: &str,
        device_id: &str,
        limit: i64,
    ) -> Result<Vec<DeviceJob>, StoreError> {
        sqlx::query(concat!(
            select_jobs!(),
            " WHERE j.tenant_id = $1 AND j.device_id = $2 ORDER BY j.created_at DESC, j.id LIMIT $3"
        ))
        .bind(tenant_id.to_owned())
        .bind(device_id.to_owned())
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(|r| job_from_row(r).map(|(j, _)| j))
        .collect()
    }
}

macro_rules! select_jobs {
    () => {
        "SELECT j.id, j.tenant_id, j.device_id, j.kind, j.state, j.cause, j.account_id, j.created_at, j.updated_at, \
         j.error, a.name AS account_name FROM device_jobs j LEFT JOIN accounts a ON a.id = j.account_id"
    };
}
use select_jobs;

fn job_event(template: &NewAuditEvent, action: Action, job: &DeviceJob) -> NewAuditEvent {
    template.sibling(action, ObjectType::DeviceJob).tenant(job.tenant_id.clone()).object(job.id.clone()).details(
        &serde_json::json!({ "device": job.device_id, "kind": job.kind.as_str(), "cause": job.cause.as_str() }),
    )
}

pub(crate) fn policy_from_row(r: &AnyRow) -> Result<RotationPolicy, StoreError> {
    let classes: String = get(r, "classes")?;
    Ok(RotationPolicy {
        max_age: Duration::seconds(get(r, "max_age_secs")?),
        length: get(r, "length")?,
        classes: CharClasses::parse(&classes).map_err(|_| StoreError::Corrupt("classes"))?,
        passphrase_words: get(r, "passphrase_words")?,
        history: get(r, "history")?,
        support_lifetime: Duration::seconds(get(r, "support_lifetime_secs")?),
        poll_interval: Duration::seconds(get(r, "poll_interval_secs")?),
    })
}

fn job_from_row(r: &AnyRow) -> Result<(DeviceJob, Option<String>), StoreError> {
    let kind: String = get(r, "kind")?;
    let state: String = get(r, "state")?;
    let cause: String = get(r, "cause")?;
    Ok((
        DeviceJob {
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
        get(r, "account_name")?,
    ))
}

async fn open_jobs<'e, E>(exec: E, device_id: &str) -> Result<Vec<(DeviceJob, Option<String>)>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(concat!(select_jobs!(), " WHERE j.device_id = $1 AND j.state = 'open' ORDER BY j.created_at, j.id"))
        .bind(device_id.to_owned())
        .fetch_all(exec)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(job_from_row)
        .collect()
}

async fn admin_password_state<'e, E>(exec: E, device_id: &str) -> Result<Option<AdminPasswordState>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT a.id, a.name, v.version, v.state, v.created_at AS v_created_at, v.expires_at \
         FROM accounts a LEFT JOIN secret_versions v ON v.account_id = a.id AND v.state IN ('active', 'pending') \
         WHERE a.device_id = $1 AND a.kind = 'device_admin' AND a.removed_at IS NULL \
         ORDER BY a.created_at DESC, a.id, v.version",
    )
    .bind(device_id.to_owned())
    .fetch_all(exec)
    .await
    .map_err(StoreError::db)?;
    let mut state: Option<AdminPasswordState> = None;
    for r in &rows {
        let id: String = get(r, "id")?;
        let s = match &mut state {
            Some(s) if s.account_id != id => break,
            Some(s) => s,
            None => state.insert(AdminPasswordState {
                account_id: id,
                account_name: get(r, "name")?,
                active: None,
                pending: Vec::new(),
            }),
        };
        let Some(version) = get::<Option<i64>>(r, "version")? else { continue };
        match get::<String>(r, "state")?.as_str() {
            "active" => s.active = Some((version, time(r, "v_created_at")?, opt_time(r, "expires_at")?)),
            _ => s.pending.push(version),
        }
    }
    Ok(state)
}

async fn live_support<'e, E>(
    exec: E,
    device_id: &str,
    now: OffsetDateTime,
) -> Result<Option<SupportAccount>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, a.expires_at AS a_expires_at, \
         v.version FROM accounts a JOIN secret_versions v ON v.account_id = a.id AND v.state = 'active' \
         WHERE a.device_id = $1 AND a.kind = 'support' AND a.removed_at IS NULL AND a.expires_at > $2 \
         ORDER BY a.expires_at DESC LIMIT 1",
    )
    .bind(device_id.to_owned())
    .bind(to_millis(now))
    .fetch_optional(exec)
    .await
    .map_err(StoreError::db)?;
    row.map(|r| Ok(SupportAccount { account: crate::accounts::account_from_row(&r)?, version: get(&r, "version")? }))
        .transpose()
}

async fn spend_nonce(
    conn: &mut AnyConnection,
    device_id: &str,
    nonce: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM agent_nonces WHERE device_id = $1 AND expires_at < $2")
        .bind(device_id.to_owned())
        .bind(to_millis(now))
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    sqlx::query("INSERT INTO agent_nonces (device_id, nonce, expires_at) VALUES ($1, $2, $3)")
        .bind(device_id.to_owned())
        .bind(nonce.to_owned())
        .bind(to_millis(expires_at))
        .execute(&mut *conn)
        .await
        .map_err(|e| match StoreError::db(e) {
            StoreError::Conflict(_) => StoreError::Conflict("replayed request"),
            other => other,
        })?;
    Ok(())
}

impl Store {
    /// Spend an agent request's nonce and record the device as seen (job posts and
    /// confirmations). A nonce seen before is a replay: `Conflict`.
    pub async fn spend_agent_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        now: OffsetDateTime,
        nonce_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (device_id, nonce) = (device_id.to_owned(), nonce.to_owned());
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move { spend_nonce(conn, &device_id, &nonce, now, nonce_expires_at).await })
            })
            .await
    }
}

async fn open_job(conn: &mut AnyConnection, device_id: &str, job_id: &str) -> Result<DeviceJob, StoreError> {
    let row = sqlx::query(concat!(select_jobs!(), " WHERE j.id = $1 AND j.device_id = $2 AND j.state = 'open'"))
        .bind(job_id.to_owned())
        .bind(device_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
    job_from_row(&row).map(|(j, _)| j)
}

/// `NotFound` unless the device is in the tenant.
async fn require_device(conn: &mut AnyConnection, tenant_id: &str, device_id: &str) -> Result<(), StoreError> {
    crate::directory::require_in_tenant(
        conn,
        "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        device_id,
    )
    .await
}

/// The device's oldest open job of a kind.
async fn open_job_of_kind(
    conn: &mut AnyConnection,
    device_id: &str,
    kind: JobKind,
) -> Result<Option<DeviceJob>, StoreError> {
    Ok(open_jobs(&mut *conn, device_id).await?.into_iter().map(|(j, _)| j).find(|j| j.kind == kind))
}

async fn has_open_job(
    conn: &mut AnyConnection,
    device_id: &str,
    kind: JobKind,
    account_id: Option<&str>,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT 1 AS one FROM device_jobs WHERE device_id = $1 AND kind = $2 AND state = 'open' \
         AND ($3 = '' OR account_id = $3) LIMIT 1",
    )
    .bind(device_id.to_owned())
    .bind(kind.as_str())
    .bind(account_id.unwrap_or("").to_owned())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(row.is_some())
}

async fn insert_job(
    conn: &mut AnyConnection,
    (tenant_id, device_id): (&str, &str),
    kind: JobKind,
    cause: JobCause,
    account_id: Option<String>,
    now: OffsetDateTime,
) -> Result<DeviceJob, StoreError> {
    let job = DeviceJob {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_owned(),
        device_id: device_id.to_owned(),
        kind,
        state: JobState::Open,
        cause,
        account_id,
        created_at: now,
        updated_at: now,
        error: None,
    };
    sqlx::query(
        "INSERT INTO device_jobs (id, tenant_id, device_id, kind, state, cause, account_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $7)",
    )
    .bind(job.id.clone())
    .bind(job.tenant_id.clone())
    .bind(job.device_id.clone())
    .bind(kind.as_str())
    .bind(cause.as_str())
    .bind(job.account_id.clone())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(job)
}

async fn set_job_state(
    conn: &mut AnyConnection,
    job_id: &str,
    state: JobState,
    error: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE device_jobs SET state = $1, error = $2, updated_at = $3 WHERE id = $4")
        .bind(state.as_str())
        .bind(error.map(str::to_owned))
        .bind(to_millis(now))
        .bind(job_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    Ok(())
}

/// Mark every open job of a kind on a device done; returns how many.
async fn finish_open_jobs(
    conn: &mut AnyConnection,
    device_id: &str,
    kind: JobKind,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE device_jobs SET state = 'done', updated_at = $1 WHERE device_id = $2 AND kind = $3 AND state = 'open'",
    )
    .bind(to_millis(now))
    .bind(device_id.to_owned())
    .bind(kind.as_str())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(done.rows_affected())
}

async fn account_name(conn: &mut AnyConnection, account_id: &str) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT name FROM accounts WHERE id = $1")
        .bind(account_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
    get(&row, "name")
}

async fn next_version(conn: &mut AnyConnection, account_id: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM secret_versions WHERE account_id = $1")
        .bind(account_id.to_owned())
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    Ok(get::<i64>(&row, "v")? + 1)
}

/// The device's admin account called `name`, created if missing.
async fn admin_account(
    conn: &mut AnyConnection,
    job: &DeviceJob,
    name: &str,
    name_key: &str,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let row = sqlx::query(
        "SELECT id FROM accounts WHERE tenant_id = $1 AND scope_key = $2 AND name_key = $3 AND kind = 'device_admin'",
    )
    .bind(job.tenant_id.clone())
    .bind(job.device_id.clone())
    .bind(name_key.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    if let Some(row) = row {
        return get(&row, "id");
    }
    insert_account(conn, job, AccountKind::DeviceAdmin, name, name_key, None, now).await
}

async fn create_support_account(
    conn: &mut AnyConnection,
    job: &DeviceJob,
    name: &str,
    name_key: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    insert_account(conn, job, AccountKind::Support, name, name_key, Some(expires_at), now).await
}

async fn insert_account(
    conn: &mut AnyConnection,
    job: &DeviceJob,
    kind: AccountKind,
    name: &str,
    name_key: &str,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO accounts (id, tenant_id, kind, name, name_key, device_id, scope_key, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
    )
    .bind(id.clone())
    .bind(job.tenant_id.clone())
    .bind(kind.as_str())
    .bind(name.to_owned())
    .bind(name_key.to_owned())
    .bind(job.device_id.clone())
    .bind(to_millis(now))
    .bind(expires_at.map(to_millis))
    .execute(&mut *conn)
    .await
    .map_err(|e| match StoreError::db(e) {
        StoreError::Conflict(_) => StoreError::Conflict("an account with this name exists on the device"),
        other => other,
    })?;
    Ok(id)
}

/// A support account is gone from the device: keep the record, drop its secrets. Its name is
/// freed for reuse.
async fn mark_removed(conn: &mut AnyConnection, account_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM secret_versions WHERE account_id = $1")
        .bind(account_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    sqlx::query(
        "UPDATE accounts SET removed_at = $1, name_key = name_key || ':removed:' || id WHERE id = $2 AND removed_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(account_id.to_owned())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

/// Make a pending version of a device's account active: the active one and older pending
/// ones are retired, and retired versions beyond the newest `history` are deleted (none
/// of them can be on the device any more: a newer one is confirmed set). Returns false when
/// the version is not pending on an account of this device.
async fn activate(
    conn: &mut AnyConnection,
    device_id: &str,
    account_id: &str,
    version: i64,
    history: i64,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let found = sqlx::query(
        "SELECT 1 AS one FROM secret_versions v JOIN accounts a ON a.id = v.account_id \
         WHERE v.account_id = $1 AND v.version = $2 AND v.state = 'pending' AND a.device_id = $3",
    )
    .bind(account_id.to_owned())
    .bind(version)
    .bind(device_id.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    if found.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE secret_versions SET state = 'retired', retired_at = $1 WHERE account_id = $2 \
         AND (state = 'active' OR (state = 'pending' AND version < $3))",
    )
    .bind(to_millis(now))
    .bind(account_id.to_owned())
    .bind(version)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    sqlx::query("UPDATE secret_versions SET state = 'active' WHERE account_id = $1 AND version = $2")
        .bind(account_id.to_owned())
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    sqlx::query(
        "DELETE FROM secret_versions WHERE account_id = $1 AND state = 'retired' AND version NOT IN \
         (SELECT version FROM secret_versions WHERE account_id = $1 AND state = 'retired' ORDER BY version DESC LIMIT $2)",
    )
    .bind(account_id.to_owned())
    .bind(history.max(0))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(true)
}

/// Record a confirmed rotation of the device's admin password.
async fn mark_rotated(conn: &mut AnyConnection, device_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
    sqlx::query("UPDATE devices SET last_rotated_at = $1 WHERE id = $2")
        .bind(to_millis(now))
        .bind(device_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    Ok(())
}

/// Write a check-in that confirms, queues or removes something (a plain one is written with
/// others instead): record the time, the reported version and the device's spent nonces
/// (`spent_nonces`, this check-in's included), then confirm, queue and remove as decided.
/// Returns the jobs queued and the audit events.
#[allow(clippy::type_complexity)]
pub(crate) async fn write_check_in(
    conn: &mut AnyConnection,
    now: OffsetDateTime,
    c: &CheckInWrite,
    spent_nonces: &str,
    template: &NewAuditEvent,
) -> Result<(Vec<(DeviceJob, Option<String>)>, Vec<NewAuditEvent>), StoreError> {
    sqlx::query(
        "UPDATE devices SET last_seen_at = $1, reported_version = $2, poll_interval_secs = $3, check_in_nonces = $4 \
         WHERE id = $5",
    )
    .bind(to_millis(now))
    .bind(c.reported_version)
    .bind(c.poll_interval_secs)
    .bind(spent_nonces.to_owned())
    .bind(c.device_id.clone())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let mut events = Vec::new();
    let mut queued = Vec::new();
    if let Some((account_id, version, history)) = &c.confirm
        && activate(conn, &c.device_id, account_id, *version, *history, now).await?
    {
        mark_rotated(conn, &c.device_id, now).await?;
        let done = finish_open_jobs(conn, &c.device_id, JobKind::RotatePassword, now).await?;
        events.push(template.sibling(Action::RotationConfirm, ObjectType::Account).object(account_id.clone()).details(
            &serde_json::json!({
                "device": c.device_id, "version": version, "by": "check-in", "jobs": done
            }),
        ));
    }
    if let Some(cause) = c.rotate
        && !has_open_job(conn, &c.device_id, JobKind::RotatePassword, None).await?
    {
        let job = insert_job(conn, (&c.tenant_id, &c.device_id), JobKind::RotatePassword, cause, None, now).await?;
        events.push(job_event(template, Action::RotationRequest, &job));
        queued.push((job, None));
    }
    for account_id in &c.remove_support {
        if has_open_job(conn, &c.device_id, JobKind::RemoveSupportAccount, Some(account_id)).await? {
            continue;
        }
        let name = account_name(conn, account_id).await?;
        let job = insert_job(
            conn,
            (&c.tenant_id, &c.device_id),
            JobKind::RemoveSupportAccount,
            JobCause::Lifetime,
            Some(account_id.clone()),
            now,
        )
        .await?;
        events.push(job_event(template, Action::SupportAccountRemove, &job));
        queued.push((job, Some(name)));
    }
    Ok((queued, events))
}

/// Everything a check-in decides on (see [`AgentSnapshot`]), read on one connection.
pub(crate) async fn agent_snapshot(
    conn: &mut AnyConnection,
    device_id: &str,
    now: OffsetDateTime,
) -> Result<AgentSnapshot, StoreError> {
    let admin = admin_password_state(&mut *conn, device_id).await?;
    let expired = sqlx::query(
        "SELECT a.id FROM accounts a WHERE a.device_id = $1 AND a.kind = 'support' AND a.removed_at IS NULL \
         AND a.expires_at <= $2 AND NOT EXISTS (SELECT 1 FROM device_jobs j WHERE j.account_id = a.id \
         AND j.kind = 'remove_support_account' AND j.state = 'open') ORDER BY a.id",
    )
    .bind(device_id.to_owned())
    .bind(to_millis(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let expired_support = expired.iter().map(|r| get(r, "id")).collect::<Result<_, _>>()?;
    let open_jobs = open_jobs(&mut *conn, device_id).await?;
    Ok(AgentSnapshot { admin, expired_support, open_jobs })
}
