//! Group commit. One task owns the write path: it takes every change queued by concurrent
//! callers, runs them in one transaction (each under its own savepoint, so one failing change
//! does not undo the others), appends their audit events to the hash chain, commits once, and
//! only then answers each caller. An fsync is shared by the whole batch.

use futures::future::BoxFuture;
use latchkey_core::{ChainHead, NewAuditEvent};
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use crate::{Backend, StoreError};

/// Most changes committed together.
const MAX_BATCH: usize = 512;
/// Audit rows per INSERT statement.
const INSERT_CHUNK: usize = 32;

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Work = Box<
    dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(Reply, Vec<NewAuditEvent>), ()>>
        + Send,
>;

struct Job {
    work: Option<Work>,
    events: Vec<NewAuditEvent>,
    reply: Option<Reply>,
}

/// The handle callers use to queue changes.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
    pool: AnyPool,
}

impl Writer {
    pub(crate) fn spawn(backend: Backend, pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(backend, pool.clone(), rx));
        Self { tx, pool }
    }

    /// Append audit events on their own (reads and denials).
    pub(crate) async fn audit(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let reply: Reply = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.send(Job {
            work: None,
            events,
            reply: Some(reply),
        })
        .await?;
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
        let work: Work = Box::new(move |conn| {
            Box::pin(async move {
                match work(conn).await {
                    Ok((value, events)) => {
                        let reply: Reply = Box::new(move |committed| {
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
        self.send(Job {
            work: Some(work),
            events: Vec::new(),
            reply: None,
        })
        .await?;
        rx.await.map_err(|_| StoreError::CommitFailed)?
    }

    async fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("store is shutting down".into()))
    }

    /// Finish the queue, then close the pool. An empty job is answered after the commit of
    /// its batch, which holds (or follows) every job queued before it.
    pub(crate) async fn close(&self) {
        let _ = self.audit(Vec::new()).await;
        self.pool.close().await;
    }
}

async fn run(backend: Backend, pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(backend, &pool, std::mem::take(&mut batch)).await;
    }
}

async fn commit_batch(backend: Backend, pool: &AnyPool, jobs: Vec<Job>) {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "store writer cannot get a connection");
            fail_all(jobs);
            return;
        }
    };
    let conn: &mut AnyConnection = &mut conn;
    if let Err(e) = sqlx::query(backend.begin()).execute(&mut *conn).await {
        tracing::error!(error = %e, "store writer cannot begin a transaction");
        fail_all(jobs);
        return;
    }
    let mut replies: Vec<Reply> = Vec::with_capacity(jobs.len());
    let mut events: Vec<NewAuditEvent> = Vec::new();
    for job in jobs {
        match job.work {
            None => {
                events.extend(job.events);
                replies.extend(job.reply);
            }
            Some(work) => {
                if let Ok((reply, work_events)) = run_isolated(conn, work).await {
                    events.extend(work_events);
                    replies.push(reply);
                }
            }
        }
    }
    let result = async {
        if !events.is_empty() {
            append_events(backend, conn, events).await?;
        }
        sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| ())
    }
    .await;
    match result {
        Ok(()) => replies.into_iter().for_each(|r| r(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, "store batch commit failed; every change in it was rolled back");
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            replies
                .into_iter()
                .for_each(|r| r(Err(StoreError::CommitFailed)));
        }
    }
}

/// Run one change under a savepoint; roll it back alone if it fails.
async fn run_isolated(
    conn: &mut AnyConnection,
    work: Work,
) -> Result<(Reply, Vec<NewAuditEvent>), ()> {
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
        if let Some(reply) = job.reply {
            reply(Err(StoreError::CommitFailed));
        }
        // A job with work holds its reply inside the closure; dropping it closes the
        // caller's channel, which reads as CommitFailed.
    }
}

/// Chain the events after the current head and insert them, then move the head.
async fn append_events(
    backend: Backend,
    conn: &mut AnyConnection,
    events: Vec<NewAuditEvent>,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query(backend.select_head()).fetch_one(&mut *conn).await?;
    let mut head = ChainHead {
        seq: row.try_get(0)?,
        hash: to_hash(row.try_get::<Vec<u8>, _>(1)?)?,
    };
    let mut chained = Vec::with_capacity(events.len());
    for event in events {
        let e = event.into_event(head.seq + 1, head.hash);
        head = ChainHead {
            seq: e.seq,
            hash: e.hash,
        };
        chained.push(e);
    }
    for chunk in chained.chunks(INSERT_CHUNK) {
        crate::audit::insert_events(conn, chunk).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq)
        .bind(head.hash.to_vec())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) fn to_hash(bytes: Vec<u8>) -> Result<[u8; 32], sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("audit hash is not 32 bytes".into()))
}
