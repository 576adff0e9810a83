//! Devices.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::Device;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// A device to register.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub container_dn: Option<String>,
    pub os: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Register a device.
    pub async fn create_device(&self, d: NewDevice, event: NewAuditEvent) -> Result<Device, StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO devices (id, tenant_id, name, name_key, container_dn, os, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(d.id.clone())
                    .bind(d.tenant_id.clone())
                    .bind(d.name)
                    .bind(d.name_key)
                    .bind(d.container_dn)
                    .bind(d.os)
                    .bind(to_millis(d.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    // Read the row back (with its defaults) in the same transaction: a read after
                    // the commit could fail and report a stored device as not created.
                    let row = sqlx::query(concat!(select_devices!(), " WHERE tenant_id = $1 AND id = $2"))
                        .bind(d.tenant_id)
                        .bind(d.id)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    device_from_row(&row)
                })
            })
            .await
    }

    /// The device with this id in this tenant.
    pub async fn device(&self, tenant_id: &str, id: &str) -> Result<Device, StoreError> {
        let row = sqlx::query(concat!(select_devices!(), " WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant_id.to_owned())
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        device_from_row(&row)
    }

    /// A page of a tenant's devices ordered by id, after `after`.
    pub async fn list_devices(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Device>, StoreError> {
        sqlx::query(concat!(select_devices!(), " WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
            .bind(tenant_id.to_owned())
            .bind(after.unwrap_or("").to_owned())
            .bind(limit.clamp(1, 1000))
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(device_from_row)
            .collect()
    }

    /// Remove a device, its accounts and their secrets, and its group memberships.
    pub async fn delete_device(&self, tenant_id: &str, id: &str, event: NewAuditEvent) -> Result<(), StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM group_members WHERE member_kind = 'device' AND member_id = $1")
                        .bind(id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    let done = sqlx::query("DELETE FROM devices WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant_id)
                        .bind(id)
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
}

pub(crate) fn device_from_row(row: &AnyRow) -> Result<Device, StoreError> {
    Ok(Device {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        container_dn: get(row, "container_dn")?,
        os: get(row, "os")?,
        agent_public_key: get(row, "agent_public_key")?,
        enrolled_at: opt_time(row, "enrolled_at")?,
        last_seen_at: opt_time(row, "last_seen_at")?,
        poll_interval_secs: get(row, "poll_interval_secs")?,
        created_at: time(row, "created_at")?,
        reported_version: get(row, "reported_version")?,
        last_rotated_at: opt_time(row, "last_rotated_at")?,
        open_jobs: get(row, "open_jobs")?,
    })
}
