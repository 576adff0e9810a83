//! Agent check-ins, the most frequent write. They go through the store's writer like every
//! change, but the check-ins of a batch are handled together: one query reads what all of
//! them decide on (on the writer's own connection, whose page cache every other connection
//! loses at each commit), one statement spends all their nonces and one records all their
//! devices as seen. Only a check-in that confirms, queues or removes something is written on
//! its own, under a savepoint, with its audit events.

use std::collections::{HashMap, HashSet};

use latchkey_core::clock::to_millis;
use latchkey_core::model::Device;
use latchkey_core::{DeviceJob, NewAuditEvent, RotationPolicy};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::rotation::{AdminPasswordState, AgentSnapshot, CheckInWrite, policy_from_row};
use crate::rows::{get, opt_time, time};
use crate::writer::Reply;
use crate::{Backend, Store, StoreError};

/// Most rows per multi-row statement. Statements are padded to a power of two rows (repeating
/// the last, which changes nothing), so a few prepared shapes serve every batch.
const ROWS_PER_STATEMENT: usize = 128;
/// Spent nonces are swept at most this often (by the check-ins' own clock), in milliseconds.
const SWEEP_EVERY_MS: i64 = 1_000;
/// Most expired nonces deleted by one sweep; a sweep that hits it runs again in the next batch.
const SWEEP_LIMIT: i64 = 20_000;

/// An enrolled device with what a check-in decides on: the policy that applies to it and the
/// state of its jobs and accounts, read in the transaction that records the check-in.
#[derive(Debug, Clone)]
pub struct CheckInContext {
    pub device: Device,
    pub policy: RotationPolicy,
    pub snapshot: AgentSnapshot,
}

/// Jobs queued by a check-in, with the name of the account each is about.
pub type QueuedJobs = Vec<(DeviceJob, Option<String>)>;

/// Decides what a signed check-in writes from the device's context.
pub type Decide = Box<dyn FnOnce(&CheckInContext) -> CheckInWrite + Send>;

/// What a queued check-in writes.
pub(crate) enum CheckInPlan {
    /// Decided by the caller.
    Decided(CheckInWrite),
    /// Decided in the batch from the context of the device, which must still hold `key`
    /// (the public key the request's signature was verified with).
    FromContext { key: String, decide: Decide },
}

type Answer = Result<(Option<CheckInContext>, QueuedJobs), StoreError>;

/// A check-in queued for the writer.
pub(crate) struct CheckInJob {
    pub device_id: String,
    pub now: OffsetDateTime,
    pub template: NewAuditEvent,
    pub plan: CheckInPlan,
    /// Answered after the commit; at once when refused (a replay, an unknown device).
    pub reply: oneshot::Sender<Answer>,
}

impl CheckInJob {
    pub(crate) fn fail(self, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// When spent nonces were last swept, by the check-ins' clock. Kept by the writer.
#[derive(Default)]
pub(crate) struct Sweep {
    last_ms: Option<i64>,
    /// The last sweep hit its limit: sweep again at the next chance.
    behind: bool,
}

impl Store {
    /// The public key and tenant of an enrolled device (`NotFound` when there is none), to
    /// verify a signed request before anything is written.
    pub async fn agent_key(&self, device_id: &str) -> Result<(String, String), StoreError> {
        let row = sqlx::query("SELECT tenant_id, agent_public_key FROM devices WHERE id = $1")
            .bind(device_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        match get::<Option<String>>(&row, "agent_public_key")? {
            Some(key) => Ok((get(&row, "tenant_id")?, key)),
            None => Err(StoreError::NotFound),
        }
    }

    /// Record a signed check-in of an enrolled device: in the next batch, read the device's
    /// [`CheckInContext`], let `decide` turn it into what to write, and write it (see
    /// [`Store::record_check_in`]). `key` is the public key the request was verified with:
    /// when the device is gone or holds another key, nothing is written (`NotFound`). A nonce
    /// seen before, earlier in the same batch included, is a replay (`Conflict`). Returns the
    /// context and the jobs queued now, after the commit.
    pub async fn check_in(
        &self,
        device_id: &str,
        key: &str,
        now: OffsetDateTime,
        template: NewAuditEvent,
        decide: Decide,
    ) -> Result<(CheckInContext, QueuedJobs), StoreError> {
        let (reply, answer) = oneshot::channel();
        let plan = CheckInPlan::FromContext { key: key.to_owned(), decide };
        self.writer.check_in(CheckInJob { device_id: device_id.to_owned(), now, template, plan, reply }).await?;
        let (context, queued) = answer.await.map_err(|_| StoreError::CommitFailed)??;
        Ok((context.ok_or(StoreError::NotFound)?, queued))
    }
}

/// A check-in whose write is known, waiting for its turn in the batch.
struct Decided {
    now: OffsetDateTime,
    template: NewAuditEvent,
    reply: oneshot::Sender<Answer>,
    write: CheckInWrite,
    context: Option<CheckInContext>,
}

impl Decided {
    fn is_plain(&self) -> bool {
        self.write.confirm.is_none() && self.write.rotate.is_none() && self.write.remove_support.is_empty()
    }

    fn fail(self, e: StoreError) {
        let _ = self.reply.send(Err(e));
    }
}

/// Handle the check-ins queued since the last other job, in queue order: read their
/// contexts, decide, write the plain ones in bulk and the others one by one (each under a
/// savepoint, so a refused one changes nothing). An error of a statement that serves several
/// check-ins is returned: the batch cannot be committed.
pub(crate) async fn flush(
    backend: Backend,
    conn: &mut AnyConnection,
    jobs: &mut Vec<CheckInJob>,
    events: &mut Vec<NewAuditEvent>,
    replies: &mut Vec<Reply>,
    sweep: &mut Sweep,
) -> Result<(), sqlx::Error> {
    let Some(now) = jobs.iter().map(|j| to_millis(j.now)).max() else { return Ok(()) };
    if sweep.behind || sweep.last_ms.is_none_or(|last| now - last >= SWEEP_EVERY_MS) {
        sweep.last_ms = Some(now);
        sweep.behind = sweep_nonces(conn, now).await;
    }
    handle(backend, conn, std::mem::take(jobs), &mut Kept { events, replies }).await
}

/// Where the batch keeps the answers (given after its commit) and the audit events.
struct Kept<'a> {
    events: &'a mut Vec<NewAuditEvent>,
    replies: &'a mut Vec<Reply>,
}

impl Kept<'_> {
    fn answer(&mut self, d: Decided, queued: QueuedJobs) {
        let (reply, context) = (d.reply, d.context);
        self.replies.push(Box::new(move |committed| {
            let _ = reply.send(committed.map(|()| (context, queued)));
        }));
    }
}

async fn handle(
    backend: Backend,
    conn: &mut AnyConnection,
    jobs: Vec<CheckInJob>,
    kept: &mut Kept<'_>,
) -> Result<(), sqlx::Error> {
    let wanted: Vec<&str> = jobs
        .iter()
        .filter(|j| matches!(j.plan, CheckInPlan::FromContext { .. }))
        .map(|j| j.device_id.as_str())
        .collect();
    let mut contexts = read_contexts(backend, conn, &wanted).await?;
    let mut bulk: Vec<Decided> = Vec::new();
    for job in jobs {
        let CheckInJob { device_id, now, template, plan, reply } = job;
        let decided = match plan {
            CheckInPlan::Decided(write) => Decided { now, template, reply, write, context: None },
            CheckInPlan::FromContext { key, decide } => {
                let Some(partial) = contexts.get(&device_id) else {
                    let _ = reply.send(Err(StoreError::NotFound));
                    continue;
                };
                if partial.context.device.agent_public_key.as_deref() != Some(key.as_str()) {
                    let _ = reply.send(Err(StoreError::NotFound));
                    continue;
                }
                let context = complete(conn, partial, now).await?;
                let write = decide(&context);
                Decided { now, template, reply, write, context: Some(context) }
            }
        };
        if decided.is_plain() {
            bulk.push(decided);
            continue;
        }
        // Check-ins are written in queue order: the bulk queued before this one first.
        write_bulk(backend, conn, std::mem::take(&mut bulk), kept).await?;
        match write_one(conn, &decided).await {
            Ok((queued, events)) => {
                kept.events.extend(events);
                // Later check-ins of this device in the batch decide on what it changed.
                if let Some(partial) = contexts.get_mut(&device_id) {
                    partial.incomplete = true;
                }
                kept.answer(decided, queued);
            }
            Err(e) => decided.fail(e),
        }
    }
    write_bulk(backend, conn, bulk, kept).await
}

/// Write one check-in that changes more than the time, under its own savepoint.
async fn write_one(conn: &mut AnyConnection, d: &Decided) -> Result<(QueuedJobs, Vec<NewAuditEvent>), StoreError> {
    sqlx::query("SAVEPOINT check_in").execute(&mut *conn).await.map_err(StoreError::db)?;
    match crate::rotation::write_check_in(conn, d.now, &d.write, &d.template).await {
        Ok(done) => {
            sqlx::query("RELEASE SAVEPOINT check_in").execute(&mut *conn).await.map_err(StoreError::db)?;
            Ok(done)
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK TO SAVEPOINT check_in").execute(&mut *conn).await;
            let _ = sqlx::query("RELEASE SAVEPOINT check_in").execute(&mut *conn).await;
            Err(e)
        }
    }
}

/// Spend the nonces of plain check-ins and record their devices as seen: each whose nonce is
/// new is answered after the commit; each whose nonce was spent before (or earlier in this
/// bulk) is answered `Conflict` now. A device checking in more than once keeps what its last
/// accepted check-in said.
async fn write_bulk(
    backend: Backend,
    conn: &mut AnyConnection,
    bulk: Vec<Decided>,
    kept: &mut Kept<'_>,
) -> Result<(), sqlx::Error> {
    if bulk.is_empty() {
        return Ok(());
    }
    let mut fresh: HashSet<(String, String)> = HashSet::with_capacity(bulk.len());
    for chunk in bulk.chunks(ROWS_PER_STATEMENT) {
        // Only placeholders are formatted into the statement; the values are bound.
        let sql = format!(
            "INSERT INTO agent_nonces (device_id, nonce, expires_at) VALUES {} \
             ON CONFLICT (device_id, nonce) DO NOTHING RETURNING device_id, nonce",
            tuples(backend, shape(chunk.len()), 3)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in padded(chunk) {
            let w = &d.write;
            q = q.bind(w.device_id.clone()).bind(w.nonce.clone()).bind(to_millis(w.nonce_expires_at));
        }
        for row in q.fetch_all(&mut *conn).await? {
            fresh.insert((row.try_get(0)?, row.try_get(1)?));
        }
    }
    let accepted: Vec<bool> =
        bulk.iter().map(|d| fresh.remove(&(d.write.device_id.clone(), d.write.nonce.clone()))).collect();

    // The last accepted check-in of each device, in queue order of first appearance.
    let mut last: HashMap<&str, &Decided> = HashMap::with_capacity(bulk.len());
    let mut order: Vec<&str> = Vec::with_capacity(bulk.len());
    for d in bulk.iter().zip(&accepted).filter(|(_, ok)| **ok).map(|(d, _)| d) {
        if last.insert(d.write.device_id.as_str(), d).is_none() {
            order.push(d.write.device_id.as_str());
        }
    }
    let seen: Vec<&Decided> = order.iter().filter_map(|id| last.get(id).copied()).collect();
    for chunk in seen.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE devices SET last_seen_at = v.column2, reported_version = v.column3, \
             poll_interval_secs = v.column4 FROM (VALUES {}) AS v WHERE devices.id = v.column1",
            tuples(backend, shape(chunk.len()), 4)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in padded(chunk) {
            let w = &d.write;
            q = q.bind(w.device_id.clone()).bind(to_millis(d.now)).bind(w.reported_version).bind(w.poll_interval_secs);
        }
        q.execute(&mut *conn).await?;
    }
    for (d, ok) in bulk.into_iter().zip(accepted) {
        if ok {
            kept.answer(d, Vec::new());
        } else {
            d.fail(StoreError::Conflict("replayed request"));
        }
    }
    Ok(())
}

/// Delete at most [`SWEEP_LIMIT`] nonces that expired before `now` (Unix ms), under a
/// savepoint so a failure costs only the sweep. Returns whether more may be left.
async fn sweep_nonces(conn: &mut AnyConnection, now: i64) -> bool {
    let swept = async {
        sqlx::query("SAVEPOINT sweep").execute(&mut *conn).await?;
        let done = sqlx::query(
            "DELETE FROM agent_nonces WHERE (device_id, nonce) IN \
             (SELECT device_id, nonce FROM agent_nonces WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now)
        .bind(SWEEP_LIMIT)
        .execute(&mut *conn)
        .await?;
        sqlx::query("RELEASE SAVEPOINT sweep").execute(&mut *conn).await?;
        Ok::<_, sqlx::Error>(done.rows_affected())
    };
    match swept.await {
        Ok(deleted) => deleted >= SWEEP_LIMIT as u64,
        Err(e) => {
            tracing::warn!(error = %e, "store writer cannot sweep expired nonces");
            let _ = sqlx::query("ROLLBACK TO SAVEPOINT sweep").execute(&mut *conn).await;
            let _ = sqlx::query("RELEASE SAVEPOINT sweep").execute(&mut *conn).await;
            false
        }
    }
}

/// For each enrolled device among `ids`: the device, its effective policy (as
/// `Store::effective_policy`), its newest admin account with the active version, and counts
/// that tell whether the snapshot needs more: open jobs, pending versions of that account,
/// support accounts past their lifetime. `{ids}` is a list of placeholders.
const CONTEXTS: &str = "WITH RECURSIVE batch(id) AS (VALUES {ids}), \
     up(device_id, id) AS ( \
      SELECT member_id, group_id FROM group_members WHERE member_kind = 'device' AND member_id IN (SELECT id FROM batch) \
      UNION SELECT up.device_id, m.group_id FROM group_members m JOIN up ON m.member_id = up.id AND m.member_kind = 'group') \
     SELECT d.id, d.tenant_id, d.name, d.container_dn, d.os, d.agent_public_key, d.enrolled_at, d.last_seen_at, \
     d.poll_interval_secs AS device_poll_secs, d.created_at, d.reported_version, d.last_rotated_at, \
     (SELECT COUNT(*) FROM device_jobs j WHERE j.device_id = d.id AND j.state = 'open') AS open_jobs, \
     p.max_age_secs, p.length, p.classes, p.passphrase_words, p.history, p.support_lifetime_secs, \
     p.poll_interval_secs, \
     a.id AS admin_id, a.name AS admin_name, v.version AS active_version, v.created_at AS active_created_at, \
     v.expires_at AS active_expires_at, \
     (SELECT COUNT(*) FROM secret_versions pv WHERE pv.account_id = a.id AND pv.state = 'pending') AS pending_versions, \
     (SELECT MIN(s.expires_at) FROM accounts s WHERE s.device_id = d.id AND s.kind = 'support' \
      AND s.removed_at IS NULL) AS support_expiry \
     FROM devices d \
     LEFT JOIN rotation_policies p ON p.tenant_id = d.tenant_id AND p.scope_key = ( \
      SELECT q.scope_key FROM rotation_policies q WHERE q.tenant_id = d.tenant_id \
      AND (q.scope_key = '' OR q.group_id IN (SELECT up.id FROM up WHERE up.device_id = d.id)) \
      ORDER BY CASE WHEN q.scope_key = '' THEN 1 ELSE 0 END, q.priority, q.scope_key LIMIT 1) \
     LEFT JOIN accounts a ON a.id = ( \
      SELECT x.id FROM accounts x WHERE x.device_id = d.id AND x.kind = 'device_admin' AND x.removed_at IS NULL \
      ORDER BY x.created_at DESC, x.id LIMIT 1) \
     LEFT JOIN secret_versions v ON v.account_id = a.id AND v.state = 'active' \
     WHERE d.id IN (SELECT id FROM batch) AND d.agent_public_key IS NOT NULL";

/// A context as read by [`CONTEXTS`], and whether its snapshot is complete.
struct Partial {
    context: CheckInContext,
    /// Open jobs, pending versions, or a support account that may be past its lifetime:
    /// the snapshot needs the full read.
    incomplete: bool,
    support_expiry: Option<i64>,
}

/// The contexts of the enrolled devices among `ids`, by device id. Snapshots are complete
/// only for devices with nothing open or pending (see [`complete`]).
async fn read_contexts(
    backend: Backend,
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<HashMap<String, Partial>, sqlx::Error> {
    let mut distinct: Vec<&str> = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut out = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(ROWS_PER_STATEMENT) {
        let sql = CONTEXTS.replace("{ids}", &tuples(backend, shape(chunk.len()), 1));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in padded(chunk) {
            q = q.bind((*id).to_owned());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let partial = partial_from_row(&row).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
            out.insert(partial.context.device.id.clone(), partial);
        }
    }
    Ok(out)
}

fn partial_from_row(row: &AnyRow) -> Result<Partial, StoreError> {
    let device = Device {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        container_dn: get(row, "container_dn")?,
        os: get(row, "os")?,
        agent_public_key: get(row, "agent_public_key")?,
        enrolled_at: opt_time(row, "enrolled_at")?,
        last_seen_at: opt_time(row, "last_seen_at")?,
        poll_interval_secs: get(row, "device_poll_secs")?,
        created_at: time(row, "created_at")?,
        reported_version: get(row, "reported_version")?,
        last_rotated_at: opt_time(row, "last_rotated_at")?,
        open_jobs: get(row, "open_jobs")?,
    };
    let policy = match get::<Option<i64>>(row, "max_age_secs")? {
        Some(_) => policy_from_row(row)?,
        None => RotationPolicy::default(),
    };
    let admin = match get::<Option<String>>(row, "admin_id")? {
        None => None,
        Some(account_id) => Some(AdminPasswordState {
            account_id,
            account_name: get(row, "admin_name")?,
            active: match get::<Option<i64>>(row, "active_version")? {
                None => None,
                Some(v) => Some((v, time(row, "active_created_at")?, opt_time(row, "active_expires_at")?)),
            },
            pending: Vec::new(),
        }),
    };
    let incomplete = device.open_jobs > 0 || get::<i64>(row, "pending_versions")? > 0;
    Ok(Partial {
        context: CheckInContext {
            device,
            policy,
            snapshot: AgentSnapshot { admin, expired_support: Vec::new(), open_jobs: Vec::new() },
        },
        incomplete,
        support_expiry: get(row, "support_expiry")?,
    })
}

/// The context with a complete snapshot at `now`: as read when nothing is open, pending or
/// past its lifetime, else read in full.
async fn complete(conn: &mut AnyConnection, p: &Partial, now: OffsetDateTime) -> Result<CheckInContext, sqlx::Error> {
    let due = p.support_expiry.is_some_and(|at| at <= to_millis(now));
    if !p.incomplete && !due {
        return Ok(p.context.clone());
    }
    let snapshot = crate::rotation::agent_snapshot(conn, &p.context.device.id, now)
        .await
        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
    Ok(CheckInContext { snapshot, ..p.context.clone() })
}

/// The rows a statement for `n` rows is prepared for: `n` rounded up to a power of two.
fn shape(n: usize) -> usize {
    n.next_power_of_two()
}

/// `rows` followed by copies of its last element, up to [`shape`] of its length.
fn padded<T>(rows: &[T]) -> impl Iterator<Item = &T> {
    let pad = rows.last().into_iter().cycle().take(shape(rows.len()) - rows.len());
    rows.iter().chain(pad)
}

/// `rows` tuples of `width` placeholders each: `($1, $2), ($3, $4)`.
fn tuples(backend: Backend, rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&backend.placeholder(r * width + c + 1));
        }
        out.push(')');
    }
    out
}
