//! Group commit. One task owns the write path: it takes every change queued by concurrent
//! callers, runs them in one transaction (each under its own savepoint, so one failing change
//! does not undo the others), appends their audit events to the hash chain, commits once, and
//! only then answers each caller. An fsync is shared by the whole batch.
//!
//! Two kinds of work are so frequent that the batch handles them in bulk rather than one by
//! one: audited reads of active secrets (one query for all of them) and agent check-ins (see
//! [`crate::check_in`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use latchkey_core::model::{Account, SecretVersion};
use latchkey_core::{ChainHead, NewAuditEvent};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Row};
use tokio::sync::{mpsc, oneshot};

use crate::check_in::CheckInJob;
use crate::{Backend, StoreError};

/// Most changes committed together.
const MAX_BATCH: usize = 512;
/// Scheduler turns the writer waits for more changes when the last batch was bigger.
const GATHER_TURNS: usize = 4;
/// Audit rows per INSERT statement.
const INSERT_CHUNK: usize = 32;

pub(crate) type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Work =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(Reply, Vec<NewAuditEvent>), ()>> + Send>;

/// Decides a read's audit event from what the read found, and prepares its answer.
pub(crate) type Finish = Box<dyn FnOnce(Option<(Account, SecretVersion)>) -> (NewAuditEvent, Reply) + Send>;

/// An audited read of an account's active secret version.
pub(crate) struct ReadJob {
    pub account_id: String,
    pub finish: Finish,
}

enum Job {
    /// Audit events on their own.
    Events(Vec<NewAuditEvent>, Reply),
    Work(Work),
    Read(ReadJob),
    CheckIn(Box<CheckInJob>),
    /// Answered after this batch's commit; then the connection goes back to the pool and
    /// nothing more is written.
    Close(Reply),
}

/// Reads and check-ins queued since the last other job, handled together when flushed.
#[derive(Default)]
struct Bulk {
    reads: Vec<ReadJob>,
    check_ins: Vec<CheckInJob>,
}

/// The handle callers use to queue changes.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    pool: AnyPool,
    /// Bumped after every committed change (not reads, check-ins or lone audit events).
    generation: Arc<AtomicU64>,
}

impl Writer {
    pub(crate) fn spawn(backend: Backend, pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(backend, pool.clone(), rx));
        Self { tx, pool, generation: Arc::default() }
    }

    /// How many changes have been committed: a value read before a query and unchanged after
    /// means no change committed through this store since.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Append audit events on their own (reads and denials).
    pub(crate) async fn audit(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let reply: Reply = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.send(Job::Events(events, reply)).await?;
        rx.await.map_err(|_| StoreError::CommitFailed)?
    }

    /// Run `work` in the next batch with `events` in the same transaction. The result is
    /// returned after the commit; if `work` fails, nothing it did and none of its events are kept.
    pub(crate) async fn change<R, F>(&self, events: Vec<NewAuditEvent>, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<R, StoreError>> + Send + 'static,
    {
        self.change_audited(move |conn: &mut AnyConnection| {
            Box::pin(async move { work(conn).await.map(|r| (r, events)) })
        })
        .await
    }

    /// Like [`Writer::change`], for work that decides its audit events itself (for example
    /// when they name a version number the work allocates).
    pub(crate) async fn change_audited<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(R, Vec<NewAuditEvent>), StoreError>>
            + Send
            + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let generation = self.generation.clone();
        let work: Work = Box::new(move |conn| {
            Box::pin(async move {
                match work(conn).await {
                    Ok((value, events)) => {
                        let reply: Reply = Box::new(move |committed| {
                            if committed.is_ok() {
                                generation.fetch_add(1, Ordering::AcqRel);
                            }
                            let _ = tx.send(committed.map(|()| value));
                        });
                        Ok((reply, events))
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        Err(())
                    }
                }
            })
        });
        self.send(Job::Work(work)).await?;
        rx.await.map_err(|_| StoreError::CommitFailed)?
    }

    /// Read an account's active secret version inside the next batch; `finish` turns what was
    /// found into the audit event written in the same transaction and the caller's answer.
    /// Reads queued together are answered by one query.
    pub(crate) async fn read(&self, read: ReadJob) -> Result<(), StoreError> {
        self.send(Job::Read(read)).await
    }

    /// Record a check-in in the next batch; check-ins queued together are handled together
    /// (see [`crate::check_in`]).
    pub(crate) async fn check_in(&self, job: CheckInJob) -> Result<(), StoreError> {
        self.send(Job::CheckIn(Box::new(job))).await
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.send(job).await.map_err(|_| StoreError::Unavailable("store is shutting down".into()))
    }

    /// Finish the queue, then close the pool. An empty job is answered after the commit of
    /// its batch, which holds (or follows) every job queued before it.
    pub(crate) async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        let reply: Reply = Box::new(move |r| {
            let _ = tx.send(r);
        });
        if self.send(Job::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
        self.pool.close().await;
    }
}

async fn run(backend: Backend, pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_size = 0usize;
    // The connection is kept from batch to batch, and dropped after a failure so the next
    // batch starts on a fresh one.
    let mut conn: Option<PoolConnection<Any>> = None;
    let mut closed = false;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Under load, callers answered by the last commit are about to queue their next
        // change: give them a few turns of the scheduler (no timer, so a lone caller waits
        // only for these few yields) to share this batch's fsync.
        let mut turns = 0;
        while batch.len() < last_size && turns < GATHER_TURNS {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            turns += 1;
        }
        last_size = batch.len();
        let jobs = std::mem::take(&mut batch);
        let release = jobs.iter().any(|j| matches!(j, Job::Close(_)));
        if closed {
            // `close` has run: nothing more is written.
            fail_all(jobs);
            continue;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match pool.acquire().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::error!(error = %e, "store writer cannot get a connection");
                    fail_all(jobs);
                    continue;
                }
            },
        };
        if commit_batch(backend, c, jobs).await.is_err() || release {
            conn = None;
        }
        closed |= release;
    }
}

async fn commit_batch(backend: Backend, conn: &mut AnyConnection, jobs: Vec<Job>) -> Result<(), ()> {
    let head = match begin(backend, conn).await {
        Ok(head) => head,
        Err(e) => {
            tracing::error!(error = %e, "store writer cannot begin a transaction");
            fail_all(jobs);
            return Err(());
        }
    };
    let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
    let mut events: Vec<NewAuditEvent> = Vec::new();
    let mut bulk = Bulk::default();
    let mut jobs = jobs.into_iter();
    let done = async {
        for job in jobs.by_ref() {
            let job = match job {
                Job::Read(read) => {
                    bulk.reads.push(read);
                    continue;
                }
                Job::CheckIn(check_in) => {
                    bulk.check_ins.push(*check_in);
                    continue;
                }
                other => other,
            };
            // Reads and check-ins see every change queued before them, and nothing queued after.
            flush(backend, conn, &mut bulk, &mut events, &mut replies).await?;
            match job {
                Job::Events(job_events, reply) => {
                    events.extend(job_events);
                    replies.push(reply);
                }
                Job::Close(reply) => replies.push(reply),
                Job::Work(work) => {
                    if let Ok((reply, work_events)) = run_isolated(conn, work).await {
                        events.extend(work_events);
                        replies.push(reply);
                    }
                }
                Job::Read(_) | Job::CheckIn(_) => {}
            }
        }
        flush(backend, conn, &mut bulk, &mut events, &mut replies).await
    }
    .await;
    let result = match done {
        // A statement that serves several callers failed: the batch cannot be committed.
        Err(e) => Err(e),
        Ok(()) if events.is_empty() => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| ()),
        Ok(()) => {
            async {
                let head = append_events(backend, conn, head, events).await?;
                let sql = backend.move_head_and_commit(head.seq, &head.hash);
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await.map(|_| ())
            }
            .await
        }
    };
    match result {
        Ok(()) => {
            replies.into_iter().for_each(|r| r(Ok(())));
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "store batch commit failed; every change in it was rolled back");
            let rolled_back = sqlx::query("ROLLBACK").execute(&mut *conn).await.is_ok();
            replies.into_iter().for_each(|r| r(Err(StoreError::CommitFailed)));
            // Jobs the batch did not reach; dropping the pending reads and check-ins answers them.
            fail_all(jobs.collect());
            if rolled_back { Ok(()) } else { Err(()) }
        }
    }
}

/// Begin the batch's transaction and read the chain head.
async fn begin(backend: Backend, conn: &mut AnyConnection) -> Result<ChainHead, sqlx::Error> {
    let rows = sqlx::raw_sql(backend.begin_and_read_head()).fetch_all(&mut *conn).await?;
    let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    Ok(ChainHead { seq: row.try_get(0)?, hash: to_hash(row.try_get::<Vec<u8>, _>(1)?)? })
}

async fn flush(
    backend: Backend,
    conn: &mut AnyConnection,
    bulk: &mut Bulk,
    events: &mut Vec<NewAuditEvent>,
    replies: &mut Vec<Reply>,
) -> Result<(), sqlx::Error> {
    flush_reads(backend, conn, &mut bulk.reads, events, replies).await;
    crate::check_in::flush(backend, conn, &mut bulk.check_ins, events, replies).await
}

/// Answer the queued reads with one query; their events join the batch in queue order. If the
/// query fails, the reads are dropped, which answers them with `CommitFailed`.
async fn flush_reads(
    backend: Backend,
    conn: &mut AnyConnection,
    reads: &mut Vec<ReadJob>,
    events: &mut Vec<NewAuditEvent>,
    replies: &mut Vec<Reply>,
) {
    if reads.is_empty() {
        return;
    }
    let ids: Vec<&str> = reads.iter().map(|r| r.account_id.as_str()).collect();
    match crate::accounts::active_secrets(backend, conn, &ids).await {
        Ok(mut found) => {
            for read in reads.drain(..) {
                let hit = found.get(&read.account_id).cloned();
                let (event, reply) = (read.finish)(hit);
                events.push(event);
                replies.push(reply);
            }
            found.clear();
        }
        Err(e) => {
            tracing::error!(error = %e, "store writer cannot read secrets");
            reads.clear();
        }
    }
}

/// Run one change under a savepoint; roll it back alone if it fails.
async fn run_isolated(conn: &mut AnyConnection, work: Work) -> Result<(Reply, Vec<NewAuditEvent>), ()> {
    if sqlx::query("SAVEPOINT change").execute(&mut *conn).await.is_err() {
        return Err(());
    }
    match work(conn).await {
        Ok((reply, events)) => match sqlx::query("RELEASE SAVEPOINT change").execute(&mut *conn).await {
            Ok(_) => Ok((reply, events)),
            Err(_) => {
                reply(Err(StoreError::CommitFailed));
                Err(())
            }
        },
        Err(()) => {
            let _ = sqlx::query("ROLLBACK TO SAVEPOINT change").execute(&mut *conn).await;
            let _ = sqlx::query("RELEASE SAVEPOINT change").execute(&mut *conn).await;
            Err(())
        }
    }
}

fn fail_all(jobs: Vec<Job>) {
    for job in jobs {
        match job {
            Job::Events(_, reply) | Job::Close(reply) => reply(Err(StoreError::CommitFailed)),
            Job::CheckIn(check_in) => check_in.fail(StoreError::CommitFailed),
            // A read's answer is inside `finish`, and work holds its reply inside the closure:
            // dropping them closes the caller's channel, which reads as CommitFailed.
            Job::Read(_) | Job::Work(_) => {}
        }
    }
}

/// Chain the events after `head` and insert them; returns the new head.
async fn append_events(
    backend: Backend,
    conn: &mut AnyConnection,
    mut head: ChainHead,
    events: Vec<NewAuditEvent>,
) -> Result<ChainHead, sqlx::Error> {
    let mut chained = Vec::with_capacity(events.len());
    for event in events {
        let e = event.into_event(head.seq + 1, head.hash);
        head = ChainHead { seq: e.seq, hash: e.hash };
        chained.push(e);
    }
    for chunk in chained.chunks(INSERT_CHUNK) {
        crate::audit::insert_events(backend, conn, chunk).await?;
    }
    Ok(head)
}

pub(crate) fn to_hash(bytes: Vec<u8>) -> Result<[u8; 32], sqlx::Error> {
    bytes.try_into().map_err(|_| sqlx::Error::Decode("audit hash is not 32 bytes".into()))
}
