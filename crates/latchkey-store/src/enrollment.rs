//! Enrollment of device agents: one-time, expiring tokens (keyed hashes) and the atomic
//! "consume the token, register the device's key" step.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::Device;
use sqlx::AnyConnection;
use time::OffsetDateTime;

use crate::devices::device_from_row;
use crate::rows::get;
use crate::{Store, StoreError};

/// An enrollment token to create.
#[derive(Debug, Clone)]
pub struct NewEnrollmentToken {
    pub id: String,
    pub tenant_id: String,
    pub token_hash: [u8; 32],
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What an agent presents when it enrolls.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub device_id: String,
    pub hostname: String,
    pub hostname_key: String,
    pub os: Option<String>,
    /// The device's public signing key (base64url).
    pub public_key: String,
}

impl Store {
    /// Create an enrollment token.
    pub async fn create_enrollment_token(&self, t: NewEnrollmentToken, event: NewAuditEvent) -> Result<(), StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO enrollment_tokens (id, tenant_id, token_hash, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(t.id)
                    .bind(t.tenant_id)
                    .bind(t.token_hash.to_vec())
                    .bind(to_millis(t.created_at))
                    .bind(to_millis(t.expires_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(())
                })
            })
            .await
    }

    /// Consume the token with this keyed hash and enroll the device, in one transaction:
    /// a device registered by an admin beforehand gets its key; an unknown device id is
    /// registered under the hostname. `NotFound` when the token is unknown, used or expired at
    /// `now`; `Conflict` when the device is already enrolled or belongs to another tenant.
    /// `event` gets the tenant and the device id.
    pub async fn enroll_device(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        e: Enrollment,
        event: NewAuditEvent,
    ) -> Result<Device, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let token = sqlx::query(
                        "SELECT id, tenant_id FROM enrollment_tokens \
                         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                    )
                    .bind(token_hash.to_vec())
                    .bind(to_millis(now))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db)?
                    .ok_or(StoreError::NotFound)?;
                    let token_id: String = get(&token, "id")?;
                    let tenant_id: String = get(&token, "tenant_id")?;
                    let existing = sqlx::query("SELECT tenant_id, agent_public_key FROM devices WHERE id = $1")
                        .bind(e.device_id.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    match existing {
                        None => {
                            sqlx::query(
                                "INSERT INTO devices (id, tenant_id, name, name_key, os, agent_public_key, enrolled_at, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                            )
                            .bind(e.device_id.clone())
                            .bind(tenant_id.clone())
                            .bind(e.hostname.clone())
                            .bind(e.hostname_key.clone())
                            .bind(e.os.clone())
                            .bind(e.public_key.clone())
                            .bind(to_millis(now))
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                        }
                        Some(row) => {
                            let owner: String = get(&row, "tenant_id")?;
                            let key: Option<String> = get(&row, "agent_public_key")?;
                            if owner != tenant_id {
                                return Err(StoreError::Conflict("the device id belongs to another tenant"));
                            }
                            if key.is_some() {
                                return Err(StoreError::Conflict("the device is already enrolled"));
                            }
                            sqlx::query(
                                "UPDATE devices SET agent_public_key = $1, enrolled_at = $2, os = COALESCE($3, os) WHERE id = $4",
                            )
                            .bind(e.public_key.clone())
                            .bind(to_millis(now))
                            .bind(e.os.clone())
                            .bind(e.device_id.clone())
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                        }
                    }
                    sqlx::query("UPDATE enrollment_tokens SET used_at = $1, used_by_device = $2 WHERE id = $3")
                        .bind(to_millis(now))
                        .bind(e.device_id.clone())
                        .bind(token_id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let row = sqlx::query(
                        concat!(select_devices!(), " WHERE id = $1"),
                    )
                    .bind(e.device_id.clone())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    let device = device_from_row(&row)?;
                    let event = event
                        .tenant(tenant_id)
                        .object(e.device_id)
                        .details(&serde_json::json!({ "enrollmentToken": token_id, "hostname": e.hostname }));
                    Ok((device, vec![event]))
                })
            })
            .await
    }
}

impl Store {
    /// The enrolled device with this id, in any tenant (agents identify by device id).
    pub async fn device_for_agent(&self, id: &str) -> Result<Device, StoreError> {
        let row = sqlx::query(concat!(select_devices!(), " WHERE id = $1 AND agent_public_key IS NOT NULL"))
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        device_from_row(&row)
    }
}
