//! The roles people hold in their tenant (see [`latchkey_core::Role`]).

use latchkey_core::{NewAuditEvent, Role};
use sqlx::AnyConnection;

use crate::directory::require_in_tenant;
use crate::rows::get;
use crate::{Store, StoreError};

impl Store {
    /// Fail with NotFound unless the user is in the tenant.
    pub async fn user_in_tenant(&self, tenant_id: &str, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT 1 AS one FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_owned())
            .bind(user_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    /// The roles a user holds, in [`Role::ALL`] order. An unknown user holds none.
    pub async fn user_roles(&self, tenant_id: &str, user_id: &str) -> Result<Vec<Role>, StoreError> {
        let rows = sqlx::query("SELECT role FROM user_roles WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id.to_owned())
            .bind(user_id.to_owned())
            .fetch_all(&self.read)
            .await
            .map_err(StoreError::db)?;
        let mut roles = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = get(row, "role")?;
            roles.push(Role::parse(&name).map_err(|_| StoreError::Corrupt("role"))?);
        }
        roles.sort();
        Ok(roles)
    }

    /// Replace a user's roles, with its audit event in the same transaction. The user must be
    /// in the tenant.
    pub async fn set_user_roles(
        &self,
        tenant_id: &str,
        user_id: &str,
        roles: Vec<Role>,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, user_id) = (tenant_id.to_owned(), user_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_in_tenant(
                        conn,
                        "SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2",
                        &tenant_id,
                        &user_id,
                    )
                    .await?;
                    replace_roles(conn, &tenant_id, &user_id, &roles).await
                })
            })
            .await
    }
}

/// Replace a user's roles inside the caller's transaction.
pub(crate) async fn replace_roles(
    conn: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    roles: &[Role],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2")
        .bind(tenant_id.to_owned())
        .bind(user_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    for role in roles {
        sqlx::query("INSERT INTO user_roles (tenant_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(tenant_id.to_owned())
            .bind(user_id.to_owned())
            .bind(role.as_str())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
    }
    Ok(())
}
