//! Access tokens of applications: opaque random bearer values stored as keyed hashes, each
//! with a short lifetime, checked on every request.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use crate::rows::{get, time};
use crate::{Store, StoreError};

/// A token to issue.
#[derive(Debug, Clone)]
pub struct NewAppToken {
    pub id: String,
    /// The keyed hash of the token; the token itself is never stored.
    pub token_hash: [u8; 32],
    pub tenant_id: String,
    pub application_id: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The application a live token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTokenOwner {
    pub token_id: String,
    pub tenant_id: String,
    pub application_id: String,
    pub application_name: String,
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Issue a token, with its `token.issue` event, and forget the failures of `clear_scopes`
    /// (the application's and the caller's address) in the same transaction. The application
    /// must exist in the token's tenant and be enabled at commit time (else `NotFound`).
    pub async fn issue_app_token(
        &self,
        t: NewAppToken,
        clear_scopes: Vec<String>,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("SELECT 1 FROM applications WHERE tenant_id = $1 AND id = $2 AND enabled = 1")
                        .bind(t.tenant_id.clone())
                        .bind(t.application_id.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .ok_or(StoreError::NotFound)?;
                    sqlx::query(
                        "INSERT INTO app_tokens (id, token_hash, tenant_id, application_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(t.id)
                    .bind(t.token_hash.to_vec())
                    .bind(t.tenant_id)
                    .bind(t.application_id)
                    .bind(to_millis(t.created_at))
                    .bind(to_millis(t.expires_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    crate::applications::clear_failures(conn, &clear_scopes, t.created_at).await
                })
            })
            .await
    }

    /// The owner of the token whose keyed hash is `token_hash`, if the token is live at `now`
    /// (not expired, not revoked) and its application exists and is enabled.
    pub async fn app_token_owner(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<AppTokenOwner, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.tenant_id, t.application_id, a.name, t.expires_at FROM app_tokens t \
             JOIN applications a ON a.id = t.application_id AND a.tenant_id = t.tenant_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND a.enabled = 1",
        )
        .bind(token_hash.to_vec())
        .bind(to_millis(now))
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        Ok(AppTokenOwner {
            token_id: get(&row, "id")?,
            tenant_id: get(&row, "tenant_id")?,
            application_id: get(&row, "application_id")?,
            application_name: get(&row, "name")?,
            expires_at: time(&row, "expires_at")?,
        })
    }

    /// Revoke one token (by id). `NotFound` when it is unknown or already revoked.
    pub async fn revoke_app_token(&self, token_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let token_id = token_id.to_owned();
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done =
                        sqlx::query("UPDATE app_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                            .bind(to_millis(now))
                            .bind(token_id)
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

    /// Delete tokens that expired before `before`; returns how many.
    pub async fn purge_app_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.writer
            .change(Vec::new(), move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM app_tokens WHERE expires_at < $1")
                        .bind(to_millis(before))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }
}
