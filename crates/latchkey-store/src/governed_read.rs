//! A password read decided by an access target: the read, its audit event, the expiry the
//! target sets after a read, and the notices to send, all in one transaction.

use latchkey_core::clock::to_millis;
use latchkey_core::model::{Account, SecretVersion};
use latchkey_core::notification::Notification;
use latchkey_core::{NewAuditEvent, Outcome, TimeSpan};
use sqlx::AnyConnection;
use time::OffsetDateTime;

use crate::accounts::account_and_version;
use crate::{Store, StoreError};

/// What to read and what the read sets off.
#[derive(Debug)]
pub struct GovernedRead {
    pub tenant_id: String,
    pub account_id: String,
    /// A version from the history; `None` reads the active one.
    pub version: Option<i64>,
    /// After reading the active version, it expires at the latest `now + expire_after`, so
    /// the agent rotates it at its next check-in.
    pub expire_after: Option<TimeSpan>,
    pub now: OffsetDateTime,
    /// The read's event (outcome success; failed when there is nothing to read or `open` fails).
    pub event: NewAuditEvent,
    /// Sent after a successful read.
    pub on_success: Vec<Notification>,
    /// Sent when the read fails.
    pub on_failure: Vec<Notification>,
}

/// What the read found.
#[derive(Debug)]
pub struct GovernedValue<T> {
    pub value: T,
    pub version: i64,
    /// The version's expiry after the read.
    pub expires_at: Option<OffsetDateTime>,
}

impl Store {
    /// Read a secret under an access target's rules (see [`GovernedRead`]). `open` runs in the
    /// write task, inside the transaction. Answers `NotFound` when the account or version does
    /// not exist in the tenant and `Seal` when `open` fails; both are audited as failed.
    pub async fn read_secret_governed<T, F>(&self, read: GovernedRead, open: F) -> Result<GovernedValue<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Account, &SecretVersion) -> Result<T, String> + Send + 'static,
    {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let found = find_version(conn, &read).await?;
                    let (outcome, answer, details) = match found {
                        None => (
                            Outcome::Failed,
                            Err(StoreError::NotFound),
                            serde_json::json!({ "version": read.version, "problem": "no such account or version" }),
                        ),
                        Some((account, mut version)) => {
                            let mut details = serde_json::json!({ "version": version.version });
                            match open(&account, &version) {
                                Err(why) => {
                                    details["problem"] = "decryption failed".into();
                                    (Outcome::Failed, Err(StoreError::Seal(why)), details)
                                }
                                Ok(value) => {
                                    if let Some(span) = read.expire_after.filter(|_| read.version.is_none()) {
                                        let at = read.now + span.to_duration();
                                        if version.expires_at.is_none_or(|e| e > at) {
                                            set_expiry(conn, &account.id, version.version, at).await?;
                                            version.expires_at = Some(at);
                                            details["expiresAt"] = to_millis(at).into();
                                        }
                                    }
                                    let expires_at = version.expires_at;
                                    let v = version.version;
                                    (Outcome::Success, Ok(GovernedValue { value, version: v, expires_at }), details)
                                }
                            }
                        }
                    };
                    let notices = if outcome == Outcome::Success { &read.on_success } else { &read.on_failure };
                    crate::outbox::enqueue(conn, Some(&read.tenant_id), notices, read.now).await?;
                    let event = read.event.outcome(outcome).details(&details);
                    Ok((answer, vec![event]))
                })
            })
            .await?
    }
}

impl Store {
    /// Append events with the notices they set off, in one transaction (denials and failures
    /// of governed reads).
    pub async fn audit_with_notices(
        &self,
        tenant_id: &str,
        events: Vec<NewAuditEvent>,
        notices: Vec<Notification>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.writer
            .change(events, move |conn: &mut AnyConnection| {
                Box::pin(async move { crate::outbox::enqueue(conn, Some(&tenant_id), &notices, now).await })
            })
            .await
    }
}

async fn find_version(
    conn: &mut AnyConnection,
    read: &GovernedRead,
) -> Result<Option<(Account, SecretVersion)>, StoreError> {
    let row = sqlx::query(
        "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, \
         a.expires_at AS a_expires_at, v.account_id, v.version, v.state, v.password_envelope, \
         v.ssh_key_envelope, v.key_id, v.created_at AS v_created_at, v.expires_at \
         FROM accounts a JOIN secret_versions v ON v.account_id = a.id \
         WHERE a.tenant_id = $1 AND a.id = $2 AND (($3 = 0 AND v.state = 'active') OR v.version = $3)",
    )
    .bind(read.tenant_id.clone())
    .bind(read.account_id.clone())
    .bind(read.version.unwrap_or(0))
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    row.as_ref().map(account_and_version).transpose()
}

async fn set_expiry(
    conn: &mut AnyConnection,
    account_id: &str,
    version: i64,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE secret_versions SET expires_at = $1 WHERE account_id = $2 AND version = $3")
        .bind(to_millis(at))
        .bind(account_id.to_owned())
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)
        .map(|_| ())
}
