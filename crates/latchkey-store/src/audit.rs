//! The audit log: appending (through the writer), listing with filters, and walking the chain.

use latchkey_core::{Action, AuditEvent, ChainBreak, ChainHead, ChainVerifier, NewAuditEvent, ObjectType, Outcome};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::rows::{get, time};
use crate::writer::to_hash;
use crate::{Store, StoreError};

const COLUMNS: &str = "seq, at, tenant_id, actor, action, object_type, object_id, outcome, reason, ticket, client_addr, request_id, details, prev_hash, hash";

/// Which events to list. Every field narrows the result; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_id: Option<String>,
    pub outcome: Option<String>,
    /// Events at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Events before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// Events after this sequence number (paging cursor, oldest first).
    pub after_seq: Option<i64>,
    /// Events before this sequence number, newest first (paging cursor); wins over
    /// `after_seq`.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// Append audit events on their own: privileged reads and denials.
    pub async fn append_audit(&self, events: Vec<NewAuditEvent>) -> Result<(), StoreError> {
        self.writer.audit(events).await
    }

    /// Events matching the filter: oldest first after `after_seq`, or newest first before
    /// `before_seq`.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        const SELECT: &str = "SELECT seq, at, tenant_id, actor, action, object_type, object_id, outcome, reason, \
             ticket, client_addr, request_id, details, prev_hash, hash FROM audit_events \
             WHERE ($1 IS NULL OR tenant_id = $1) AND ($2 IS NULL OR actor = $2) \
             AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR object_id = $4) \
             AND ($5 IS NULL OR outcome = $5) AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) ";
        let (order, cursor) = match f.before_seq {
            Some(before) => ("AND seq < $8 ORDER BY seq DESC LIMIT $9", before),
            None => ("AND seq > $8 ORDER BY seq LIMIT $9", f.after_seq.unwrap_or(0)),
        };
        let sql = format!("{SELECT}{order}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.tenant_id.clone())
            .bind(f.actor.clone())
            .bind(f.action.clone())
            .bind(f.object_id.clone())
            .bind(f.outcome.clone())
            .bind(f.since_ms)
            .bind(f.until_ms)
            .bind(cursor)
            .bind(f.limit.clamp(1, 1000))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?;
        rows.iter().map(event_from_row).collect()
    }

    /// The recorded chain head.
    pub async fn audit_head(&self) -> Result<ChainHead, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db)?;
        Ok(ChainHead {
            seq: get(&row, "seq")?,
            hash: to_hash(get(&row, "hash")?).map_err(|_| StoreError::Corrupt("hash"))?,
        })
    }

    /// Walk the whole chain in pages and check it against the head. `Ok(Err(..))` is a
    /// broken chain; `Err` is a store failure.
    pub async fn verify_audit_chain(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        // Read the head first: events appended while we walk are beyond it and not checked.
        let head = self.audit_head().await?;
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, tenant_id, actor, action, object_type, object_id, outcome, reason, ticket, \
                 client_addr, request_id, details, prev_hash, hash FROM audit_events \
                 WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 2000",
            )
            .bind(after)
            .bind(head.seq)
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let event = match event_from_row(row) {
                    Ok(e) => e,
                    Err(_) => {
                        let seq = get::<i64>(row, "seq").unwrap_or(after + 1);
                        return Ok(Err(ChainBreak { seq, problem: "event cannot be read (edited)" }));
                    }
                };
                if let Err(brk) = verifier.check(&event) {
                    return Ok(Err(brk));
                }
                after = event.seq;
            }
        }
        let beyond = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE seq > $1")
            .bind(head.seq)
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db)?;
        let checked = match verifier.finish(head) {
            Ok(n) => n,
            Err(brk) => return Ok(Err(brk)),
        };
        // Rows past the head were not written by the store (its head moves in the same
        // transaction); an insert behind its back is a break too. A batch committed while we
        // walked moves the head as well, so look once more before calling it tampering.
        if get::<i64>(&beyond, "n")? > 0 && self.audit_head().await?.seq == head.seq {
            return Ok(Err(ChainBreak { seq: head.seq + 1, problem: "events beyond the chain head (inserted)" }));
        }
        Ok(Ok(checked))
    }
}

/// Insert already-chained events with one multi-row statement.
pub(crate) async fn insert_events(
    backend: crate::Backend,
    conn: &mut AnyConnection,
    events: &[AuditEvent],
) -> Result<(), sqlx::Error> {
    const PER_ROW: usize = 15;
    let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
    for i in 0..events.len() {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for j in 0..PER_ROW {
            if j > 0 {
                sql.push(',');
            }
            sql.push_str(&backend.placeholder(i * PER_ROW + j + 1));
        }
        sql.push(')');
    }
    // Only placeholders are formatted into the statement; every value is bound.
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        let b = &e.body;
        q = q
            .bind(e.seq)
            .bind(latchkey_core::clock::to_millis(b.at))
            .bind(b.tenant_id.clone())
            .bind(b.actor.clone())
            .bind(b.action.as_str())
            .bind(b.object_type.as_str())
            .bind(b.object_id.clone())
            .bind(b.outcome.as_str())
            .bind(b.reason.clone())
            .bind(b.ticket.clone())
            .bind(b.client_addr.clone())
            .bind(b.request_id.clone())
            .bind(b.details.clone())
            .bind(e.prev_hash.to_vec())
            .bind(e.hash.to_vec());
    }
    q.execute(&mut *conn).await.map(|_| ())
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let action: String = get(row, "action")?;
    let object_type: String = get(row, "object_type")?;
    let outcome: String = get(row, "outcome")?;
    Ok(AuditEvent {
        seq: get(row, "seq")?,
        prev_hash: to_hash(get(row, "prev_hash")?).map_err(|_| StoreError::Corrupt("prev_hash"))?,
        hash: to_hash(get(row, "hash")?).map_err(|_| StoreError::Corrupt("hash"))?,
        body: NewAuditEvent {
            at: time(row, "at")?,
            tenant_id: get(row, "tenant_id")?,
            actor: get(row, "actor")?,
            action: Action::parse(&action).ok_or(StoreError::Corrupt("action"))?,
            object_type: ObjectType::parse(&object_type).ok_or(StoreError::Corrupt("object_type"))?,
            object_id: get(row, "object_id")?,
            outcome: Outcome::parse(&outcome).ok_or(StoreError::Corrupt("outcome"))?,
            reason: get(row, "reason")?,
            ticket: get(row, "ticket")?,
            client_addr: get(row, "client_addr")?,
            request_id: get(row, "request_id")?,
            details: get(row, "details")?,
        },
    })
}
