//! The built-in directory: groups (with nested members) and users.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::model::{Group, GroupMember, MemberKind, User};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, time};
use crate::targets::bump_access_generation;
use crate::{Store, StoreError};

/// A group to create.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub name_key: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Create a group.
    pub async fn create_group(&self, g: NewGroup, event: NewAuditEvent) -> Result<Group, StoreError> {
        let out = Group {
            id: g.id.clone(),
            tenant_id: g.tenant_id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            created_at: g.created_at,
        };
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO groups (id, tenant_id, name, name_key, description, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(g.id)
                    .bind(g.tenant_id.clone())
                    .bind(g.name)
                    .bind(g.name_key)
                    .bind(g.description)
                    .bind(to_millis(g.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    bump_access_generation(conn, &g.tenant_id).await?;
                    Ok(out)
                })
            })
            .await
    }

    /// The group with this id in this tenant.
    pub async fn group(&self, tenant_id: &str, id: &str) -> Result<Group, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant_id, name, description, created_at FROM groups WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id.to_owned())
        .bind(id.to_owned())
        .fetch_optional(&self.read)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
        group_from_row(&row)
    }

    /// A tenant's groups by name.
    pub async fn list_groups(&self, tenant_id: &str) -> Result<Vec<Group>, StoreError> {
        sqlx::query(
            "SELECT id, tenant_id, name, description, created_at FROM groups WHERE tenant_id = $1 ORDER BY name_key",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(group_from_row)
        .collect()
    }

    /// Add a member to a group. The member must exist in the same tenant, and a group may
    /// not (even indirectly) contain itself.
    pub async fn add_group_member(
        &self,
        tenant_id: &str,
        group_id: &str,
        member: GroupMember,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, group_id) = (tenant_id.to_owned(), group_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_in_tenant(
                        conn,
                        "SELECT 1 FROM groups WHERE tenant_id = $1 AND id = $2",
                        &tenant_id,
                        &group_id,
                    )
                    .await?;
                    let member_check = match member.kind {
                        MemberKind::Device => "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2",
                        MemberKind::User => "SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2",
                        MemberKind::Group => "SELECT 1 FROM groups WHERE tenant_id = $1 AND id = $2",
                    };
                    require_in_tenant(conn, member_check, &tenant_id, &member.id).await?;
                    if member.kind == MemberKind::Group {
                        let cycle = sqlx::query(
                            "WITH RECURSIVE below(id) AS (SELECT $1 UNION SELECT m.member_id FROM group_members m \
                             JOIN below ON m.group_id = below.id WHERE m.member_kind = 'group') \
                             SELECT 1 FROM below WHERE id = $2",
                        )
                        .bind(member.id.clone())
                        .bind(group_id.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        if cycle.is_some() {
                            return Err(StoreError::Conflict("a group cannot contain itself"));
                        }
                    }
                    sqlx::query("INSERT INTO group_members (group_id, member_kind, member_id) VALUES ($1, $2, $3)")
                        .bind(group_id)
                        .bind(member.kind.as_str())
                        .bind(member.id)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    bump_access_generation(conn, &tenant_id).await
                })
            })
            .await
    }

    /// Remove a member from a group.
    pub async fn remove_group_member(
        &self,
        tenant_id: &str,
        group_id: &str,
        member: GroupMember,
        event: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let (tenant_id, group_id) = (tenant_id.to_owned(), group_id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_in_tenant(
                        conn,
                        "SELECT 1 FROM groups WHERE tenant_id = $1 AND id = $2",
                        &tenant_id,
                        &group_id,
                    )
                    .await?;
                    let done = sqlx::query(
                        "DELETE FROM group_members WHERE group_id = $1 AND member_kind = $2 AND member_id = $3",
                    )
                    .bind(group_id)
                    .bind(member.kind.as_str())
                    .bind(member.id)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    bump_access_generation(conn, &tenant_id).await
                })
            })
            .await
    }

    /// A group's direct members.
    pub async fn group_members(&self, tenant_id: &str, group_id: &str) -> Result<Vec<GroupMember>, StoreError> {
        self.group(tenant_id, group_id).await?;
        let rows = sqlx::query(
            "SELECT member_kind, member_id FROM group_members WHERE group_id = $1 ORDER BY member_kind, member_id",
        )
        .bind(group_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?;
        rows.iter().map(member_from_row).collect()
    }

    /// Every group the member belongs to, directly or through nested groups.
    pub async fn groups_of(&self, tenant_id: &str, member: &GroupMember) -> Result<Vec<Group>, StoreError> {
        sqlx::query(
            "WITH RECURSIVE up(id) AS (SELECT group_id FROM group_members WHERE member_kind = $2 AND member_id = $3 \
             UNION SELECT m.group_id FROM group_members m JOIN up ON m.member_id = up.id AND m.member_kind = 'group') \
             SELECT g.id, g.tenant_id, g.name, g.description, g.created_at FROM groups g JOIN up ON g.id = up.id \
             WHERE g.tenant_id = $1 ORDER BY g.name_key",
        )
        .bind(tenant_id.to_owned())
        .bind(member.kind.as_str())
        .bind(member.id.clone())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(group_from_row)
        .collect()
    }

    /// Create a user.
    pub async fn create_user(&self, u: NewUser, event: NewAuditEvent) -> Result<User, StoreError> {
        let out = User {
            id: u.id.clone(),
            tenant_id: u.tenant_id.clone(),
            name: u.name.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            created_at: u.created_at,
        };
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO users (id, tenant_id, name, name_key, display_name, email, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(u.id)
                    .bind(u.tenant_id)
                    .bind(u.name)
                    .bind(u.name_key)
                    .bind(u.display_name)
                    .bind(u.email)
                    .bind(to_millis(u.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    Ok(out)
                })
            })
            .await
    }

    /// A tenant's users by name.
    pub async fn list_users(&self, tenant_id: &str) -> Result<Vec<User>, StoreError> {
        sqlx::query(
            "SELECT id, tenant_id, name, display_name, email, created_at FROM users WHERE tenant_id = $1 ORDER BY name_key",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(user_from_row)
        .collect()
    }
}

/// Fail with NotFound unless the query finds a row for (tenant, id).
pub(crate) async fn require_in_tenant(
    conn: &mut AnyConnection,
    sql: &'static str,
    tenant_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(tenant_id.to_owned())
        .bind(id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

fn group_from_row(row: &AnyRow) -> Result<Group, StoreError> {
    Ok(Group {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: time(row, "created_at")?,
    })
}

fn member_from_row(row: &AnyRow) -> Result<GroupMember, StoreError> {
    let kind: String = get(row, "member_kind")?;
    Ok(GroupMember {
        kind: MemberKind::parse(&kind).ok_or(StoreError::Corrupt("member_kind"))?,
        id: get(row, "member_id")?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        email: get(row, "email")?,
        created_at: time(row, "created_at")?,
    })
}
