//! People signing in: local password hashes, sessions (bearer tokens stored as keyed hashes)
//! and the failed sign-in counter shared by every sign-in path.

use std::fmt;

use latchkey_core::clock::to_millis;
use latchkey_core::{NewAuditEvent, Principal};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// Milliseconds in a UTC day.
const DAY_MS: i64 = 86_400_000;

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignInMethod {
    /// A password checked against the user's stored Argon2id hash.
    Local,
    /// A bind against the tenant's directory.
    Ldap,
    /// An OpenID Connect provider's ID token (web sign-in).
    Oidc,
}

impl SignInMethod {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Local => "local",
            SignInMethod::Ldap => "ldap",
            SignInMethod::Oidc => "oidc",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [SignInMethod::Local, SignInMethod::Ldap, SignInMethod::Oidc].into_iter().find(|m| m.as_str() == s)
    }
}

/// What the store knows about a user who tries to sign in. The password hash is never
/// printed by `Debug`.
#[derive(Clone)]
pub struct SignInRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub upn: Option<String>,
    /// `local` (built-in) or `ldap` (synced from a directory).
    pub source: String,
    /// The user's distinguished name, for directory users.
    pub dn: Option<String>,
    /// The directory's id of the user (objectGUID or entryUUID), for directory users.
    pub external_id: Option<String>,
    /// The Argon2id PHC string of a local user's password, if one is set.
    pub password_hash: Option<String>,
    /// When the user was disabled; a disabled user cannot sign in.
    pub disabled_at: Option<OffsetDateTime>,
}

impl fmt::Debug for SignInRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("source", &self.source)
            .field("has_password", &self.password_hash.is_some())
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    /// The keyed hash of the bearer token; the token itself is never stored.
    pub token_hash: [u8; 32],
    pub method: SignInMethod,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A live session and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub user_name: String,
    pub user_name_key: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub method: SignInMethod,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The last request through the web UI (for its idle timeout); `None` until then.
    pub last_seen_at: Option<OffsetDateTime>,
}

/// Failed sign-ins of one principal on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignInFailures {
    pub failures: i64,
    pub last_failure_at: Option<OffsetDateTime>,
}

/// The UTC day number (days since the Unix epoch) of `at`: the failure counter's key.
pub fn sign_in_day(at: OffsetDateTime) -> i64 {
    to_millis(at).div_euclid(DAY_MS)
}

/// `SELECT <every sign-in column> FROM users WHERE tenant_id = $1`, for `concat!`.
macro_rules! select_record {
    () => {
        "SELECT id, tenant_id, name, name_key, display_name, email, upn, source, dn, external_id, password_hash, \
         disabled_at FROM users WHERE tenant_id = $1"
    };
}

/// `SELECT` the sessions live at `$1` (not expired, not revoked, user present and enabled),
/// for `concat!` with one more condition.
macro_rules! select_live_session {
    () => {
        "SELECT s.id, s.tenant_id, s.user_id, u.name, u.name_key, u.display_name, u.email, s.method, \
         s.created_at, s.expires_at, s.last_seen_at FROM user_sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.revoked_at IS NULL AND s.expires_at > $1 AND u.disabled_at IS NULL AND u.tenant_id = s.tenant_id"
    };
}

impl Store {
    /// Set (or replace) a local user's password hash, an Argon2id PHC string computed by the
    /// caller. Every live session of the user is revoked in the same transaction. A user synced
    /// from a directory keeps its password there: that is a conflict.
    pub async fn set_user_password(
        &self,
        tenant_id: &str,
        user_id: &str,
        password_hash: String,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, user_id) = (tenant_id.to_owned(), user_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query("SELECT source FROM users WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant_id.clone())
                        .bind(user_id.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .ok_or(StoreError::NotFound)?;
                    let source: String = get(&row, "source")?;
                    if source != "local" {
                        return Err(StoreError::Conflict("the user's password is kept by the directory"));
                    }
                    sqlx::query("UPDATE users SET password_hash = $1 WHERE tenant_id = $2 AND id = $3")
                        .bind(password_hash)
                        .bind(tenant_id)
                        .bind(user_id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    sqlx::query("UPDATE user_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(to_millis(now))
                        .bind(user_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await
    }

    /// The user a principal names in a tenant: a `name@suffix` principal first by the user's
    /// UPN, then every form by the account-name key. Disabled users are returned too (with
    /// `disabled_at` set) so the caller can refuse them the same way as unknown ones.
    pub async fn sign_in_record(&self, tenant_id: &str, principal: &Principal) -> Result<SignInRecord, StoreError> {
        if let Some(upn_key) = principal.upn_key() {
            let row = sqlx::query(concat!(select_record!(), " AND upn_key = $2 ORDER BY id LIMIT 1"))
                .bind(tenant_id.to_owned())
                .bind(upn_key)
                .fetch_optional(&self.read)
                .await
                .map_err(StoreError::db)?;
            if let Some(row) = row {
                return record_from_row(&row);
            }
        }
        let row = sqlx::query(concat!(select_record!(), " AND name_key = $2"))
            .bind(tenant_id.to_owned())
            .bind(principal.name_key().to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        record_from_row(&row)
    }

    /// Open a session, with its `sign_in` event in the same transaction. The user must exist in
    /// the session's tenant and not be disabled at commit time.
    pub async fn create_session(&self, s: NewSession, event: NewAuditEvent) -> Result<Session, StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT name, name_key, display_name, email FROM users \
                         WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL",
                    )
                    .bind(s.tenant_id.clone())
                    .bind(s.user_id.clone())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db)?
                    .ok_or(StoreError::NotFound)?;
                    let session = Session {
                        id: s.id.clone(),
                        tenant_id: s.tenant_id.clone(),
                        user_id: s.user_id.clone(),
                        user_name: get(&row, "name")?,
                        user_name_key: get(&row, "name_key")?,
                        display_name: get(&row, "display_name")?,
                        email: get(&row, "email")?,
                        method: s.method,
                        created_at: s.created_at,
                        expires_at: s.expires_at,
                        last_seen_at: None,
                    };
                    insert_session(conn, &s).await?;
                    Ok(session)
                })
            })
            .await
    }

    /// The session whose token hashes to `token_hash`, if it is live at `now`: not expired, not
    /// revoked, and its user still exists and is not disabled.
    pub async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Session, StoreError> {
        let row = sqlx::query(concat!(select_live_session!(), " AND s.token_hash = $2"))
            .bind(to_millis(now))
            .bind(token_hash.to_vec())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        session_from_row(&row)
    }

    /// The session with this id, if it is live at `now` (as [`Store::session_by_token_hash`]).
    pub async fn live_session(&self, session_id: &str, now: OffsetDateTime) -> Result<Session, StoreError> {
        let row = sqlx::query(concat!(select_live_session!(), " AND s.id = $2"))
            .bind(to_millis(now))
            .bind(session_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        session_from_row(&row)
    }

    /// Revoke a live session, with its `sign_out` event. A session already revoked is not found.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let session_id = session_id.to_owned();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done =
                        sqlx::query("UPDATE user_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                            .bind(to_millis(now))
                            .bind(session_id)
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

    /// Count a failed sign-in of a principal (by its account-name key) on `now`'s UTC day, with
    /// its `sign_in` event (outcome denied) in the same transaction. Returns the day's count
    /// after this failure.
    pub async fn record_sign_in_failure(
        &self,
        tenant_id: &str,
        principal_key: &str,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<i64, StoreError> {
        let (tenant_id, principal_key) = (tenant_id.to_owned(), principal_key.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "INSERT INTO sign_in_failures (tenant_id, principal_key, day, failures, last_failure_at) \
                         VALUES ($1, $2, $3, 1, $4) \
                         ON CONFLICT (tenant_id, principal_key, day) DO UPDATE \
                         SET failures = sign_in_failures.failures + 1, last_failure_at = excluded.last_failure_at \
                         RETURNING failures",
                    )
                    .bind(tenant_id)
                    .bind(principal_key)
                    .bind(sign_in_day(now))
                    .bind(to_millis(now))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    get::<i64>(&row, "failures")
                })
            })
            .await
    }

    /// A principal's failed sign-ins on `now`'s UTC day.
    pub async fn sign_in_failures(
        &self,
        tenant_id: &str,
        principal_key: &str,
        now: OffsetDateTime,
    ) -> Result<SignInFailures, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at FROM sign_in_failures \
             WHERE tenant_id = $1 AND principal_key = $2 AND day = $3",
        )
        .bind(tenant_id.to_owned())
        .bind(principal_key.to_owned())
        .bind(sign_in_day(now))
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?;
        match row {
            None => Ok(SignInFailures::default()),
            Some(row) => Ok(SignInFailures {
                failures: get(&row, "failures")?,
                last_failure_at: Some(time(&row, "last_failure_at")?),
            }),
        }
    }
}

/// Insert a session row inside the caller's transaction.
async fn insert_session(conn: &mut AnyConnection, s: &NewSession) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO user_sessions (id, tenant_id, user_id, token_hash, method, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id.clone())
    .bind(s.tenant_id.clone())
    .bind(s.user_id.clone())
    .bind(s.token_hash.to_vec())
    .bind(s.method.as_str())
    .bind(to_millis(s.created_at))
    .bind(to_millis(s.expires_at))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(())
}

fn record_from_row(row: &AnyRow) -> Result<SignInRecord, StoreError> {
    Ok(SignInRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        name_key: get(row, "name_key")?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        upn: get(row, "upn")?,
        source: get(row, "source")?,
        dn: get(row, "dn")?,
        external_id: get(row, "external_id")?,
        password_hash: get(row, "password_hash")?,
        disabled_at: opt_time(row, "disabled_at")?,
    })
}

fn session_from_row(row: &AnyRow) -> Result<Session, StoreError> {
    let method: String = get(row, "method")?;
    Ok(Session {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        user_id: get(row, "user_id")?,
        user_name: get(row, "name")?,
        user_name_key: get(row, "name_key")?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        method: SignInMethod::parse(&method).ok_or(StoreError::Corrupt("method"))?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        last_seen_at: opt_time(row, "last_seen_at")?,
    })
}

/// A person signing in through an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcSignIn {
    /// The user name the provider vouches for (its configured claim).
    pub name: String,
    pub name_key: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Roles from the provider's groups, replacing the stored ones; `None` keeps them.
    pub roles: Option<Vec<latchkey_core::Role>>,
}

impl Store {
    /// Record that a session was used through the web UI at `now`.
    pub async fn touch_session(&self, session_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let session_id = session_id.to_owned();
        self.writer
            .change(vec![], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("UPDATE user_sessions SET last_seen_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                        .bind(to_millis(now))
                        .bind(session_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await
    }

    /// Open a session for a person an OpenID Connect provider vouched for. The user is found by
    /// name in the tenant, or created (source `oidc`, no password) with `created` as its event;
    /// a disabled user is not found. Everything happens in one transaction with `event`.
    pub async fn open_oidc_session(
        &self,
        who: OidcSignIn,
        mut s: NewSession,
        event: NewAuditEvent,
        created: NewAuditEvent,
    ) -> Result<Session, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query("SELECT id, disabled_at FROM users WHERE tenant_id = $1 AND name_key = $2")
                        .bind(s.tenant_id.clone())
                        .bind(who.name_key.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let mut events = Vec::with_capacity(2);
                    match row {
                        Some(row) => {
                            if opt_time(&row, "disabled_at")?.is_some() {
                                return Err(StoreError::NotFound);
                            }
                            s.user_id = get(&row, "id")?;
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO users (id, tenant_id, name, name_key, display_name, email, created_at, source) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'oidc')",
                            )
                            .bind(s.user_id.clone())
                            .bind(s.tenant_id.clone())
                            .bind(who.name.clone())
                            .bind(who.name_key.clone())
                            .bind(who.display_name.clone())
                            .bind(who.email.clone())
                            .bind(to_millis(s.created_at))
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                            events.push(created.object(s.user_id.clone()));
                        }
                    }
                    if let Some(roles) = &who.roles {
                        crate::roles::replace_roles(conn, &s.tenant_id, &s.user_id, roles).await?;
                    }
                    insert_session(conn, &s).await?;
                    let details = serde_json::json!({ "method": s.method.as_str(), "userId": s.user_id });
                    events.push(event.object(s.id.clone()).details(&details));
                    let session = Session {
                        id: s.id,
                        tenant_id: s.tenant_id,
                        user_id: s.user_id,
                        user_name: who.name,
                        user_name_key: who.name_key,
                        display_name: who.display_name,
                        email: who.email,
                        method: s.method,
                        created_at: s.created_at,
                        expires_at: s.expires_at,
                        last_seen_at: None,
                    };
                    Ok((session, events))
                })
            })
            .await
    }
}
