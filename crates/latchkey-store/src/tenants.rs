//! Tenants.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::Tenant;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::{get, time};
use crate::{Store, StoreError};

impl Store {
    /// Create a tenant.
    pub async fn create_tenant(&self, tenant: Tenant, event: NewAuditEvent) -> Result<Tenant, StoreError> {
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(tenant.id.clone())
                        .bind(tenant.slug.clone())
                        .bind(tenant.name.clone())
                        .bind(to_millis(tenant.created_at))
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    Ok(tenant)
                })
            })
            .await
    }

    /// Every tenant, by slug.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        sqlx::query("SELECT id, slug, name, created_at FROM tenants ORDER BY slug")
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    /// The tenant with this slug.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant, StoreError> {
        let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
            .bind(slug.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        tenant_from_row(&row)
    }

    /// The tenant with this id.
    pub async fn tenant_by_id(&self, id: &str) -> Result<Tenant, StoreError> {
        let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        tenant_from_row(&row)
    }
}

fn tenant_from_row(row: &AnyRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: get(row, "id")?,
        slug: get(row, "slug")?,
        name: get(row, "name")?,
        created_at: time(row, "created_at")?,
    })
}
