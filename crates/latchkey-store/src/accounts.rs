//! Accounts and their secret versions (envelopes only; the store never sees plaintext).

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::{Account, AccountKind, SecretState, SecretVersion};
use std::collections::HashMap;

use latchkey_core::Outcome;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};
use tokio::sync::oneshot;

use crate::writer::{ReadJob, Reply};
use time::OffsetDateTime;

use crate::directory::require_in_tenant;
use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub tenant_id: String,
    pub kind: AccountKind,
    pub name: String,
    pub name_key: String,
    pub device_id: Option<String>,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
}

/// The envelopes of a new secret version.
pub struct SealedSecret {
    pub password: Option<Vec<u8>>,
    pub ssh_key: Option<Vec<u8>>,
    pub key_id: String,
}

/// Seals a new version once the store has allocated its number (the number is bound into
/// the ciphertexts). Runs inside the write transaction.
pub type SealFn = Box<dyn FnOnce(i64) -> Result<SealedSecret, String> + Send>;

impl Store {
    /// Create an account. Device accounts must name a device of the same tenant.
    pub async fn create_account(&self, a: NewAccount, event: NewAuditEvent) -> Result<Account, StoreError> {
        let out = Account {
            id: a.id.clone(),
            tenant_id: a.tenant_id.clone(),
            kind: a.kind,
            name: a.name.clone(),
            device_id: a.device_id.clone(),
            description: a.description.clone(),
            created_at: a.created_at,
            expires_at: None,
        };
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    if let Some(device_id) = &a.device_id {
                        require_in_tenant(conn, "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2", &a.tenant_id, device_id)
                            .await?;
                    }
                    sqlx::query(
                        "INSERT INTO accounts (id, tenant_id, kind, name, name_key, device_id, scope_key, description, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(a.id)
                    .bind(a.tenant_id)
                    .bind(a.kind.as_str())
                    .bind(a.name)
                    .bind(a.name_key)
                    .bind(a.device_id.clone())
                    .bind(a.device_id.unwrap_or_default())
                    .bind(a.description)
                    .bind(to_millis(a.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(out)
                })
            })
            .await
    }

    /// The account with this id in this tenant, with its active version number.
    pub async fn account(&self, tenant_id: &str, id: &str) -> Result<(Account, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, a.expires_at AS a_expires_at, \
             (SELECT v.version FROM secret_versions v WHERE v.account_id = a.id AND v.state = 'active') AS active_version \
             FROM accounts a WHERE a.tenant_id = $1 AND a.id = $2",
        )
        .bind(tenant_id.to_owned())
        .bind(id.to_owned())
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        Ok((account_from_row(&row)?, get(&row, "active_version")?))
    }

    /// A tenant's accounts, by name, with their active version numbers.
    pub async fn list_accounts(&self, tenant_id: &str) -> Result<Vec<(Account, Option<i64>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, a.expires_at AS a_expires_at, \
             (SELECT v.version FROM secret_versions v WHERE v.account_id = a.id AND v.state = 'active') AS active_version \
             FROM accounts a WHERE a.tenant_id = $1 ORDER BY a.name_key, a.id",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?;
        rows.iter().map(|r| Ok((account_from_row(r)?, get(r, "active_version")?))).collect()
    }

    /// Store a new secret version. An `Active` version retires the one before it. `event`
    /// gets the new version number in its details (`{"version": n}`) and is written in the
    /// same transaction.
    pub async fn add_secret_version(
        &self,
        tenant_id: &str,
        account_id: &str,
        state: SecretState,
        expires_at: Option<OffsetDateTime>,
        seal: SealFn,
        event: NewAuditEvent,
    ) -> Result<SecretVersion, StoreError> {
        let (tenant_id, account_id) = (tenant_id.to_owned(), account_id.to_owned());
        let created_at = event.at;
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_in_tenant(conn, "SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2", &tenant_id, &account_id)
                        .await?;
                    let row = sqlx::query(
                        "SELECT COALESCE(MAX(version), 0) AS v FROM secret_versions WHERE account_id = $1",
                    )
                    .bind(account_id.clone())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let version = get::<i64>(&row, "v")? + 1;
                    let sealed = seal(version).map_err(StoreError::Seal)?;
                    if state == SecretState::Active {
                        sqlx::query(
                            "UPDATE secret_versions SET state = 'retired', retired_at = $2 WHERE account_id = $1 AND state = 'active'",
                        )
                        .bind(account_id.clone())
                        .bind(to_millis(created_at))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    }
                    sqlx::query(
                        "INSERT INTO secret_versions (tenant_id, account_id, version, state, password_envelope, \
                         ssh_key_envelope, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(tenant_id.clone())
                    .bind(account_id.clone())
                    .bind(version)
                    .bind(state.as_str())
                    .bind(sealed.password.clone())
                    .bind(sealed.ssh_key.clone())
                    .bind(sealed.key_id.clone())
                    .bind(to_millis(created_at))
                    .bind(expires_at.map(to_millis))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let event = event.details(&serde_json::json!({ "version": version, "state": state.as_str() }));
                    let stored = SecretVersion {
                        tenant_id,
                        account_id,
                        version,
                        state,
                        password_envelope: sealed.password,
                        ssh_key_envelope: sealed.ssh_key,
                        key_id: sealed.key_id,
                        created_at,
                        expires_at,
                    };
                    Ok((stored, vec![event]))
                })
            })
            .await
    }

    /// Read an account's active secret version with its audit event in the same transaction.
    /// `open` turns the envelopes into what the caller needs (it runs in the store's write
    /// task, so keep it short: decrypting one version is). The event is `event` with outcome
    /// success and `{"version": n}`, or outcome failed when there is no such account in this
    /// tenant, no active version (answered `NotFound`), or `open` fails (answered `Seal`).
    /// Concurrent reads are answered by one query and one commit.
    pub async fn read_secret_audited<T, F>(
        &self,
        tenant_id: &str,
        account_id: &str,
        event: NewAuditEvent,
        open: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Account, &SecretVersion) -> Result<T, String> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let tenant_id = tenant_id.to_owned();
        let finish = Box::new(move |found: Option<(Account, SecretVersion)>| {
            let found = found.filter(|(a, _)| a.tenant_id == tenant_id);
            let (event, answer) = match found {
                None => (
                    event
                        .outcome(Outcome::Failed)
                        .details(&serde_json::json!({ "problem": "no such account or no secret set" })),
                    Err(StoreError::NotFound),
                ),
                Some((account, version)) => match open(&account, &version) {
                    Ok(value) => (event.details(&serde_json::json!({ "version": version.version })), Ok(value)),
                    Err(why) => (
                        event.outcome(Outcome::Failed).details(
                            &serde_json::json!({ "version": version.version, "problem": "decryption failed" }),
                        ),
                        Err(StoreError::Seal(why)),
                    ),
                },
            };
            let reply: Reply = Box::new(move |committed| {
                let _ = tx.send(committed.and(answer));
            });
            (event, reply)
        });
        self.writer.read(ReadJob { account_id: account_id.to_owned(), finish }).await?;
        rx.await.map_err(|_| StoreError::CommitFailed)?
    }

    /// Read one version of an account's secret (pending, active or retired) with its audit
    /// event in the same transaction. `open` runs in the store's write task, as in
    /// [`Store::read_secret_audited`]. The event is `event` with outcome success and
    /// `{"version": n, "state": …}`, or outcome failed when there is no such account in this
    /// tenant or no such version (answered `NotFound`), or `open` fails (answered `Seal`);
    /// a failed event is written too.
    pub async fn read_version_audited<T, F>(
        &self,
        tenant_id: &str,
        account_id: &str,
        version: i64,
        event: NewAuditEvent,
        open: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Account, &SecretVersion) -> Result<T, String> + Send + 'static,
    {
        let (tenant_id, account_id) = (tenant_id.to_owned(), account_id.to_owned());
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, \
                         a.expires_at AS a_expires_at, v.account_id, v.version, v.state, v.password_envelope, \
                         v.ssh_key_envelope, v.key_id, v.created_at AS v_created_at, v.expires_at \
                         FROM accounts a JOIN secret_versions v ON v.account_id = a.id \
                         WHERE a.tenant_id = $1 AND a.id = $2 AND v.version = $3",
                    )
                    .bind(tenant_id)
                    .bind(account_id)
                    .bind(version)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let found = row.as_ref().map(account_and_version).transpose()?;
                    let (event, answer) = match found {
                        None => (
                            event.outcome(Outcome::Failed).details(
                                &serde_json::json!({ "version": version, "problem": "no such account or version" }),
                            ),
                            Err(StoreError::NotFound),
                        ),
                        Some((account, stored)) => {
                            let state = stored.state.as_str();
                            match open(&account, &stored) {
                                Ok(value) => (
                                    event.details(&serde_json::json!({ "version": version, "state": state })),
                                    Ok(value),
                                ),
                                Err(why) => (
                                    event.outcome(Outcome::Failed).details(&serde_json::json!({
                                        "version": version, "state": state, "problem": "decryption failed"
                                    })),
                                    Err(StoreError::Seal(why)),
                                ),
                            }
                        }
                    };
                    Ok((answer, vec![event]))
                })
            })
            .await?
    }

    /// The active secret version of an account in this tenant.
    pub async fn active_secret(
        &self,
        tenant_id: &str,
        account_id: &str,
    ) -> Result<(Account, SecretVersion), StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, a.expires_at AS a_expires_at, \
             v.account_id, v.version, v.state, v.password_envelope, v.ssh_key_envelope, v.key_id, \
             v.created_at AS v_created_at, v.expires_at \
             FROM accounts a JOIN secret_versions v ON v.account_id = a.id AND v.state = 'active' \
             WHERE a.tenant_id = $1 AND a.id = $2",
        )
        .bind(tenant_id.to_owned())
        .bind(account_id.to_owned())
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        account_and_version(&row)
    }

    /// Every version of an account, newest first.
    pub async fn secret_versions(&self, tenant_id: &str, account_id: &str) -> Result<Vec<SecretVersion>, StoreError> {
        self.account(tenant_id, account_id).await?;
        sqlx::query(
            "SELECT tenant_id, account_id, version, state, password_envelope, ssh_key_envelope, key_id, created_at, expires_at \
             FROM secret_versions WHERE tenant_id = $1 AND account_id = $2 ORDER BY version DESC",
        )
        .bind(tenant_id.to_owned())
        .bind(account_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(version_from_row)
        .collect()
    }

    /// Secret versions whose envelopes are not wrapped by `active_key_id`, oldest first.
    pub async fn versions_to_rewrap(&self, active_key_id: &str, limit: i64) -> Result<Vec<SecretVersion>, StoreError> {
        sqlx::query(
            "SELECT tenant_id, account_id, version, state, password_envelope, ssh_key_envelope, key_id, created_at, expires_at \
             FROM secret_versions WHERE key_id <> $1 ORDER BY account_id, version LIMIT $2",
        )
        .bind(active_key_id.to_owned())
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(version_from_row)
        .collect()
    }

    /// Replace re-wrapped envelopes. A version whose key changed meanwhile is skipped.
    /// Returns how many versions were replaced.
    pub async fn replace_envelopes(
        &self,
        rewrapped: Vec<(SecretVersion, String)>,
        event: NewAuditEvent,
    ) -> Result<u64, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let mut replaced = 0u64;
                    for (v, old_key_id) in rewrapped {
                        let done = sqlx::query(
                            "UPDATE secret_versions SET password_envelope = $1, ssh_key_envelope = $2, key_id = $3 \
                             WHERE account_id = $4 AND version = $5 AND key_id = $6",
                        )
                        .bind(v.password_envelope.clone())
                        .bind(v.ssh_key_envelope.clone())
                        .bind(v.key_id.clone())
                        .bind(v.account_id.clone())
                        .bind(v.version)
                        .bind(old_key_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        replaced += done.rows_affected();
                    }
                    let event = event.details(&serde_json::json!({ "rewrapped": replaced }));
                    Ok((replaced, vec![event]))
                })
            })
            .await
    }

    /// How many envelopes each key wraps: secret versions and grants' temporary passwords,
    /// by key id. A key with any left cannot be retired.
    pub async fn envelopes_per_key(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT key_id, COUNT(*) AS n FROM secret_versions GROUP BY key_id ORDER BY key_id")
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?;
        let mut counts = std::collections::BTreeMap::<String, i64>::new();
        for r in &rows {
            *counts.entry(get(r, "key_id")?).or_default() += get::<i64>(r, "n")?;
        }
        for (key, n) in self.grant_passwords_per_key().await? {
            *counts.entry(key).or_default() += n;
        }
        Ok(counts.into_iter().collect())
    }
}

/// Ids per query of [`active_secrets`].
const READ_CHUNK: usize = 256;

/// The accounts among `ids` that have an active version, with that version (one query per
/// 256 distinct ids).
pub(crate) async fn active_secrets(
    backend: crate::Backend,
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<HashMap<String, (Account, SecretVersion)>, StoreError> {
    let mut distinct: Vec<&str> = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut found = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(READ_CHUNK) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| backend.placeholder(i)).collect();
        // Only placeholders are formatted into the statement; the ids are bound.
        let sql = format!(
            "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, a.expires_at AS a_expires_at, \
             v.account_id, v.version, v.state, v.password_envelope, v.ssh_key_envelope, v.key_id, \
             v.created_at AS v_created_at, v.expires_at \
             FROM accounts a JOIN secret_versions v ON v.account_id = a.id AND v.state = 'active' \
             WHERE a.id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind((*id).to_owned());
        }
        for row in q.fetch_all(&mut *conn).await.map_err(StoreError::db)? {
            let (account, version) = account_and_version(&row)?;
            found.insert(account.id.clone(), (account, version));
        }
    }
    Ok(found)
}

pub(crate) fn account_and_version(row: &AnyRow) -> Result<(Account, SecretVersion), StoreError> {
    let account = account_from_row(row)?;
    let version = SecretVersion {
        tenant_id: account.tenant_id.clone(),
        account_id: get(row, "account_id")?,
        version: get(row, "version")?,
        state: parse_state(row)?,
        password_envelope: get(row, "password_envelope")?,
        ssh_key_envelope: get(row, "ssh_key_envelope")?,
        key_id: get(row, "key_id")?,
        created_at: time(row, "v_created_at")?,
        expires_at: opt_time(row, "expires_at")?,
    };
    Ok((account, version))
}

fn parse_state(row: &AnyRow) -> Result<SecretState, StoreError> {
    let s: String = get(row, "state")?;
    SecretState::parse(&s).ok_or(StoreError::Corrupt("state"))
}

pub(crate) fn account_from_row(row: &AnyRow) -> Result<Account, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(Account {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        kind: AccountKind::parse(&kind).ok_or(StoreError::Corrupt("kind"))?,
        name: get(row, "name")?,
        device_id: get(row, "device_id")?,
        description: get(row, "description")?,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "a_expires_at")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<SecretVersion, StoreError> {
    Ok(SecretVersion {
        tenant_id: get(row, "tenant_id")?,
        account_id: get(row, "account_id")?,
        version: get(row, "version")?,
        state: parse_state(row)?,
        password_envelope: get(row, "password_envelope")?,
        ssh_key_envelope: get(row, "ssh_key_envelope")?,
        key_id: get(row, "key_id")?,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "expires_at")?,
    })
}
