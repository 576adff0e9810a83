//! Agent check-ins, the most frequent write. They go through the store's writer like every
//! change, but the check-ins of a batch are handled together: one query reads what all of
//! them decide on, in the transaction that records them (and on the writer's own connection,
//! whose page cache survives the commits that empty every other connection's), and one
//! statement records all the plain ones. Only a check-in that confirms, queues or removes
//! something is written on its own, under a savepoint, with its audit events.
//!
//! A check-in's nonce is kept in its device's row ([`SpentNonces`]) until its request could
//! no longer be accepted, so spending it writes nothing the check-in does not write anyway.
//! Reading the spent nonces and writing them back is safe because batches never overlap:
//! SQLite's write lock is taken when the batch begins, and on PostgreSQL every batch of every
//! server sharing the database first locks the audit chain's head.

use std::collections::HashMap;

use latchkey_core::clock::to_millis;
use latchkey_core::model::Device;
use latchkey_core::{DeviceJob, NewAuditEvent, RotationPolicy};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::rotation::{AdminPasswordState, AgentSnapshot, CheckInWrite, policy_from_row};
use crate::rows::{get, opt_time, time};
use crate::writer::Reply;
use crate::{Backend, Store, StoreError};

/// Most rows per multi-row statement. Statements are padded to a power of two rows (repeating
/// the last, which changes nothing), so a few prepared shapes serve every batch.
const ROWS_PER_STATEMENT: usize = 128;
/// Most nonces a device may have spent on check-ins that could still be replayed.
const MAX_SPENT_NONCES: usize = 64;
/// The refusal of a check-in beyond [`MAX_SPENT_NONCES`] within the replay window.
pub const TOO_MANY_CHECK_INS: &str = "too many check-ins of this device within 10 minutes";

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
    /// Decided in the batch from the context of the device, which must be enrolled with `key`
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

impl Store {
    /// Record a signed check-in of an enrolled device: in the next batch, read the device's
    /// [`CheckInContext`], let `decide` turn it into what to write, and write it (see
    /// [`Store::record_check_in`]). `key` is the public key the request was verified with:
    /// when the device is gone or holds another key, nothing is written (`NotFound`). A nonce
    /// the device spent before, earlier in the same batch included, is a replay (`Conflict`);
    /// so is a 65th check-in within 10 minutes (`Conflict(`[`TOO_MANY_CHECK_INS`]`)`).
    /// Returns the context and the jobs queued now, after the commit.
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
        let answer = answer.await.map_err(|_| StoreError::CommitFailed)?;
        match answer.and_then(|(context, queued)| Ok((context.ok_or(StoreError::NotFound)?, queued))) {
            Err(StoreError::NotFound) => {
                // The device is gone or holds another key: whatever was kept of it is stale.
                self.agent_keys.forget(device_id);
                Err(StoreError::NotFound)
            }
            other => other,
        }
    }
}

/// The nonces a device spent on check-ins whose requests could still be accepted, with when
/// each stops mattering (Unix ms); stored in its row as a JSON array of `[nonce, expires]`.
#[derive(Debug, Clone, Default, PartialEq)]
struct SpentNonces(Vec<(String, i64)>);

impl SpentNonces {
    /// The stored list without the entries that expired before `now_ms`.
    fn parse(stored: Option<&str>, now_ms: i64) -> Result<Self, StoreError> {
        let Some(text) = stored.filter(|t| !t.is_empty()) else { return Ok(Self::default()) };
        let all: Vec<(String, i64)> = serde_json::from_str(text).map_err(|_| StoreError::Corrupt("check_in_nonces"))?;
        Ok(Self(all.into_iter().filter(|(_, expires)| *expires >= now_ms).collect()))
    }

    fn contains(&self, nonce: &str) -> bool {
        self.0.iter().any(|(n, _)| n == nonce)
    }

    fn with(&self, nonce: &str, expires_ms: i64) -> Self {
        let mut next = self.clone();
        next.0.push((nonce.to_owned(), expires_ms));
        next
    }

    fn to_column(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// A check-in whose write is known and whose nonce is new, waiting for its turn.
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

/// Handle the check-ins queued since the last other job, in queue order: read their
/// contexts, decide, refuse spent nonces, write the plain ones together and the others one by
/// one (each under a savepoint, so a refused one changes nothing). An error of a statement
/// that serves several check-ins is returned: the batch cannot be committed.
pub(crate) async fn flush(
    backend: Backend,
    conn: &mut AnyConnection,
    jobs: &mut Vec<CheckInJob>,
    events: &mut Vec<NewAuditEvent>,
    replies: &mut Vec<Reply>,
) -> Result<(), sqlx::Error> {
    if jobs.is_empty() {
        return Ok(());
    }
    handle(backend, conn, std::mem::take(jobs), &mut Kept { events, replies }).await
}

async fn handle(
    backend: Backend,
    conn: &mut AnyConnection,
    jobs: Vec<CheckInJob>,
    kept: &mut Kept<'_>,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.device_id.as_str()).collect();
    let mut contexts = read_contexts(backend, conn, &ids).await?;
    // Each device's spent nonces as this batch leaves them so far.
    let mut spent: HashMap<String, SpentNonces> = HashMap::new();
    let mut bulk: Vec<Decided> = Vec::new();
    for job in jobs {
        let CheckInJob { device_id, now, template, plan, reply } = job;
        let Some(partial) = contexts.get(&device_id) else {
            let _ = reply.send(Err(StoreError::NotFound));
            continue;
        };
        let (write, context) = match plan {
            CheckInPlan::Decided(write) => (write, None),
            CheckInPlan::FromContext { key, decide } => {
                if partial.context.device.agent_public_key.as_deref() != Some(key.as_str()) {
                    let _ = reply.send(Err(StoreError::NotFound));
                    continue;
                }
                let context = complete(conn, partial, now).await?;
                (decide(&context), Some(context))
            }
        };
        if !spent.contains_key(&device_id) {
            match SpentNonces::parse(partial.spent_nonces.as_deref(), to_millis(now)) {
                Ok(list) => spent.insert(device_id.clone(), list),
                Err(e) => {
                    let _ = reply.send(Err(e));
                    continue;
                }
            };
        }
        let list = spent.get(&device_id).cloned().unwrap_or_default();
        if list.contains(&write.nonce) {
            let _ = reply.send(Err(StoreError::Conflict("replayed request")));
            continue;
        }
        if list.0.len() >= MAX_SPENT_NONCES {
            let _ = reply.send(Err(StoreError::Conflict(TOO_MANY_CHECK_INS)));
            continue;
        }
        let list = list.with(&write.nonce, to_millis(write.nonce_expires_at));
        let decided = Decided { now, template, reply, write, context };
        if decided.is_plain() {
            spent.insert(device_id, list);
            bulk.push(decided);
            continue;
        }
        // Check-ins are written in queue order: the plain ones queued before this one first.
        write_bulk(backend, conn, std::mem::take(&mut bulk), &spent, kept).await?;
        match write_one(conn, &decided, &list).await {
            Ok((queued, events)) => {
                kept.events.extend(events);
                // Later check-ins of this device in the batch decide on what it changed.
                if let Some(partial) = contexts.get_mut(&device_id) {
                    partial.incomplete = true;
                }
                spent.insert(device_id, list);
                kept.answer(decided, queued);
            }
            Err(e) => decided.fail(e),
        }
    }
    write_bulk(backend, conn, bulk, &spent, kept).await
}

/// Write one check-in that changes more than the time, under its own savepoint.
async fn write_one(
    conn: &mut AnyConnection,
    d: &Decided,
    spent: &SpentNonces,
) -> Result<(QueuedJobs, Vec<NewAuditEvent>), StoreError> {
    sqlx::query("SAVEPOINT check_in").execute(&mut *conn).await.map_err(StoreError::db)?;
    match crate::rotation::write_check_in(conn, d.now, &d.write, &spent.to_column(), &d.template).await {
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

/// Record plain check-ins (whose nonces are new): each device keeps what its last check-in
/// said and the nonces `spent` holds for it. Each is answered after the commit.
async fn write_bulk(
    backend: Backend,
    conn: &mut AnyConnection,
    bulk: Vec<Decided>,
    spent: &HashMap<String, SpentNonces>,
    kept: &mut Kept<'_>,
) -> Result<(), sqlx::Error> {
    // The last check-in of each device, in queue order of first appearance.
    let mut last: HashMap<&str, &Decided> = HashMap::with_capacity(bulk.len());
    let mut order: Vec<&str> = Vec::with_capacity(bulk.len());
    for d in &bulk {
        if last.insert(d.write.device_id.as_str(), d).is_none() {
            order.push(d.write.device_id.as_str());
        }
    }
    let rows: Vec<(&Decided, String)> = order
        .iter()
        .filter_map(|id| last.get(id).map(|d| (*d, spent.get(*id).map(SpentNonces::to_column).unwrap_or_default())))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        // Only placeholders are formatted into the statement; the values are bound.
        let sql = format!(
            "UPDATE devices SET last_seen_at = v.column2, reported_version = v.column3, \
             poll_interval_secs = v.column4, check_in_nonces = v.column5 FROM (VALUES {}) AS v \
             WHERE devices.id = v.column1",
            tuples(backend, shape(chunk.len()), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (d, nonces) in padded(chunk) {
            let w = &d.write;
            q = q
                .bind(w.device_id.clone())
                .bind(to_millis(d.now))
                .bind(w.reported_version)
                .bind(w.poll_interval_secs)
                .bind(nonces.clone());
        }
        q.execute(&mut *conn).await?;
    }
    for d in bulk {
        kept.answer(d, Vec::new());
    }
    Ok(())
}

/// For each device among `ids`: the device with its spent nonces, its effective policy (as
/// `Store::effective_policy`: the first matching group policy, else the tenant's), its newest
/// admin account with the active version, and what tells whether the snapshot needs more:
/// open jobs, pending versions of that account, the earliest end of a live support account.
/// `{ids}` is a list of numbered placeholders. Group memberships are walked only for tenants
/// that have group policies, and nothing is sorted for a device in the usual case.
const CONTEXTS: &str = "WITH RECURSIVE up(device_id, id) AS ( \
      SELECT member_id, group_id FROM group_members WHERE member_kind = 'device' AND member_id IN ({ids}) \
      UNION SELECT up.device_id, m.group_id FROM group_members m JOIN up ON m.member_id = up.id AND m.member_kind = 'group') \
     SELECT d.id, d.tenant_id, d.name, d.container_dn, d.os, d.agent_public_key, d.enrolled_at, d.last_seen_at, \
     d.poll_interval_secs AS device_poll_secs, d.created_at, d.reported_version, d.last_rotated_at, d.check_in_nonces, \
     (SELECT COUNT(*) FROM device_jobs j WHERE j.device_id = d.id AND j.state = 'open') AS open_jobs, \
     p.max_age_secs, p.length, p.classes, p.passphrase_words, p.history, p.support_lifetime_secs, \
     p.poll_interval_secs, \
     a.id AS admin_id, a.name AS admin_name, v.version AS active_version, v.created_at AS active_created_at, \
     v.expires_at AS active_expires_at, \
     (SELECT COUNT(*) FROM secret_versions pv WHERE pv.account_id = a.id AND pv.state = 'pending') AS pending_versions, \
     (SELECT MIN(s.expires_at) FROM accounts s WHERE s.device_id = d.id AND s.kind = 'support' \
      AND s.removed_at IS NULL) AS support_expiry \
     FROM devices d \
     LEFT JOIN rotation_policies p ON p.tenant_id = d.tenant_id AND p.scope_key = COALESCE(CASE WHEN EXISTS ( \
      SELECT 1 FROM rotation_policies g WHERE g.tenant_id = d.tenant_id AND g.scope_key <> '') THEN ( \
      SELECT q.scope_key FROM rotation_policies q WHERE q.tenant_id = d.tenant_id AND q.scope_key <> '' \
      AND q.group_id IN (SELECT up.id FROM up WHERE up.device_id = d.id) ORDER BY q.priority, q.scope_key LIMIT 1) \
      END, '') \
     LEFT JOIN accounts a ON a.id = ( \
      SELECT x.id FROM accounts x WHERE x.device_id = d.id AND x.kind = 'device_admin' AND x.removed_at IS NULL \
      ORDER BY x.created_at DESC, x.id LIMIT 1) \
     LEFT JOIN secret_versions v ON v.account_id = a.id AND v.state = 'active' \
     WHERE d.id IN ({ids})";

/// A context as read by [`CONTEXTS`].
struct Partial {
    context: CheckInContext,
    spent_nonces: Option<String>,
    /// Open jobs or pending versions: the snapshot needs the full read.
    incomplete: bool,
    /// When the first live support account ends (Unix ms).
    support_expiry: Option<i64>,
}

/// The contexts of the devices among `ids`, by device id. Snapshots are complete only for
/// devices with nothing open or pending (see [`complete`]).
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
        let sql = CONTEXTS.replace("{ids}", &numbered(backend, shape(chunk.len())));
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
        spent_nonces: get(row, "check_in_nonces")?,
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

/// `n` placeholders that name their position, so a statement can use them twice:
/// `$1, $2` or `?1, ?2`.
fn numbered(backend: Backend, n: usize) -> String {
    let sigil = match backend {
        Backend::Sqlite => "?",
        Backend::Postgres => "$",
    };
    (1..=n).map(|i| format!("{sigil}{i}")).collect::<Vec<_>>().join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spent_nonces_round_trip_and_expire() {
        let list = SpentNonces::parse(None, 0).unwrap().with("a", 10).with("b", 20);
        let stored = list.to_column();
        assert_eq!(SpentNonces::parse(Some(&stored), 5).unwrap(), list);
        let later = SpentNonces::parse(Some(&stored), 11).unwrap();
        assert!(!later.contains("a") && later.contains("b"));
        assert!(SpentNonces::parse(Some("not json"), 0).is_err());
        assert_eq!(SpentNonces::parse(Some(""), 0).unwrap(), SpentNonces::default());
    }

    #[test]
    fn statements_are_padded_to_a_few_shapes() {
        assert_eq!((shape(1), shape(3), shape(64), shape(65)), (1, 4, 64, 128));
        assert_eq!(padded(&[1, 2, 3]).copied().collect::<Vec<_>>(), vec![1, 2, 3, 3]);
        assert_eq!(tuples(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(tuples(Backend::Sqlite, 1, 3), "(?, ?, ?)");
        assert_eq!((numbered(Backend::Sqlite, 2), numbered(Backend::Postgres, 2)), ("?1, ?2".into(), "$1, $2".into()));
    }
}
