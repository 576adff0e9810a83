//! Machine credentials: API clients of the compatible APIs and admin API tokens. Only keyed
//! hashes of their secrets are stored.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::{AdminToken, ApiClient};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// An API client to create.
#[derive(Debug, Clone)]
pub struct NewApiClient {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub secret_hash: [u8; 32],
    pub created_at: OffsetDateTime,
}

/// An admin token to create.
#[derive(Debug, Clone)]
pub struct NewAdminToken {
    pub id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    pub token_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl Store {
    /// Create an API client.
    pub async fn create_api_client(&self, c: NewApiClient, event: NewAuditEvent) -> Result<ApiClient, StoreError> {
        let out = ApiClient {
            id: c.id.clone(),
            tenant_id: c.tenant_id.clone(),
            name: c.name.clone(),
            created_at: c.created_at,
            disabled_at: None,
        };
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO api_clients (id, tenant_id, name, name_key, secret_hash, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(c.id)
                    .bind(c.tenant_id)
                    .bind(c.name)
                    .bind(c.name_key)
                    .bind(c.secret_hash.to_vec())
                    .bind(to_millis(c.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(out)
                })
            })
            .await
    }

    /// A tenant's API clients by name.
    pub async fn list_api_clients(&self, tenant_id: &str) -> Result<Vec<ApiClient>, StoreError> {
        sqlx::query(
            "SELECT id, tenant_id, name, created_at, disabled_at FROM api_clients WHERE tenant_id = $1 ORDER BY name_key",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(client_from_row)
        .collect()
    }

    /// The enabled API client with this id whose secret hashes to `secret_hash`.
    pub async fn api_client_by_secret(&self, id: &str, secret_hash: &[u8; 32]) -> Result<ApiClient, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant_id, name, created_at, disabled_at FROM api_clients \
             WHERE id = $1 AND secret_hash = $2 AND disabled_at IS NULL",
        )
        .bind(id.to_owned())
        .bind(secret_hash.to_vec())
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        client_from_row(&row)
    }

    /// Create an admin token.
    pub async fn create_admin_token(&self, t: NewAdminToken, event: NewAuditEvent) -> Result<AdminToken, StoreError> {
        let out = AdminToken {
            id: t.id.clone(),
            tenant_id: t.tenant_id.clone(),
            name: t.name.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: None,
        };
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO admin_tokens (id, tenant_id, name, token_hash, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(t.id)
                    .bind(t.tenant_id)
                    .bind(t.name)
                    .bind(t.token_hash.to_vec())
                    .bind(to_millis(t.created_at))
                    .bind(t.expires_at.map(to_millis))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(out)
                })
            })
            .await
    }

    /// The token whose keyed hash is `token_hash`, if it is not revoked and not expired at `now`.
    pub async fn admin_token_by_hash(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<AdminToken, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant_id, name, created_at, expires_at, revoked_at FROM admin_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash.to_vec())
        .bind(to_millis(now))
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        Ok(AdminToken {
            id: get(&row, "id")?,
            tenant_id: get(&row, "tenant_id")?,
            name: get(&row, "name")?,
            created_at: time(&row, "created_at")?,
            expires_at: opt_time(&row, "expires_at")?,
            revoked_at: opt_time(&row, "revoked_at")?,
        })
    }

    /// How many admin tokens exist (revoked ones included).
    pub async fn count_admin_tokens(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM admin_tokens")
            .fetch_one(&self.read)
            .await
            .map_err(StoreError::db)?;
        get(&row, "n")
    }
}

fn client_from_row(row: &AnyRow) -> Result<ApiClient, StoreError> {
    Ok(ApiClient {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        created_at: time(row, "created_at")?,
        disabled_at: opt_time(row, "disabled_at")?,
    })
}
