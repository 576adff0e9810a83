//! Access targets (the ordered rule list of a tenant) and the facts a decision reads.
//!
//! Every change to targets moves the tenant's access generation in the same transaction, so
//! a server holding a cached rule index knows it is stale.

use std::collections::HashMap;

use latchkey_core::access::{
    AuditSettings, DeviceFacts, Grants, GroupEdge, IndexedGroup, Reader, Target, TargetKind, UserFacts,
};
use latchkey_core::clock::to_millis;
use latchkey_core::model::MemberKind;
use latchkey_core::{ContainerDn, NewAuditEvent, Principal, TimeSpan};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, time};
use crate::{Store, StoreError};

/// A target to create, replace or import. Readers are resolved in the transaction that
/// stores them; an unknown principal refuses the whole change.
#[derive(Debug, Clone)]
pub struct NewTarget {
    pub kind: TargetKind,
    pub name: String,
    pub expire_after: Option<TimeSpan>,
    pub grants: Grants,
    pub audit: AuditSettings,
    pub enabled: bool,
    pub description: Option<String>,
    pub readers: Vec<Principal>,
}

/// What a rule index is built from, read in one transaction.
#[derive(Debug, Clone)]
pub struct AccessSnapshot {
    pub generation: i64,
    pub groups: Vec<IndexedGroup>,
    pub edges: Vec<GroupEdge>,
    pub targets: Vec<Target>,
}

/// How a principal resolves in a tenant's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Found(Reader),
    Unknown,
    /// A user and a group share the name.
    Ambiguous,
}

/// Every column of a target, for `concat!` with a WHERE clause.
macro_rules! select_targets {
    () => {
        "SELECT id, tenant_id, position, kind, name, expire_after_ticks, grants, email_on_success, \
         email_on_failure, email_addresses, enabled, description, created_at, updated_at FROM access_targets"
    };
}

impl Store {
    /// A tenant's targets in list order, with their readers.
    pub async fn list_targets(&self, tenant_id: &str) -> Result<Vec<Target>, StoreError> {
        let mut conn = self.read.acquire().await.map_err(StoreError::db)?;
        load_targets(&mut conn, tenant_id).await
    }

    /// One target.
    pub async fn target(&self, tenant_id: &str, id: &str) -> Result<Target, StoreError> {
        let mut conn = self.read.acquire().await.map_err(StoreError::db)?;
        find(&mut conn, tenant_id, id).await
    }

    /// The tenant's access generation (moves with every change to targets and groups).
    pub async fn access_generation(&self, tenant_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT access_generation FROM tenants WHERE id = $1")
            .bind(tenant_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        get(&row, "access_generation")
    }

    /// Everything a rule index needs, consistent with one generation.
    pub async fn access_snapshot(&self, tenant_id: &str) -> Result<AccessSnapshot, StoreError> {
        let mut conn = self.read.acquire().await.map_err(StoreError::db)?;
        sqlx::query("BEGIN").execute(&mut *conn).await.map_err(StoreError::db)?;
        let out = read_snapshot(&mut conn, tenant_id).await;
        let _ = sqlx::query("COMMIT").execute(&mut *conn).await;
        out
    }

    /// A device's facts for a decision: its name, container and direct groups.
    pub async fn device_access_facts(&self, tenant_id: &str, device_id: &str) -> Result<DeviceFacts, StoreError> {
        let row = sqlx::query("SELECT name, container_dn FROM devices WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_owned())
            .bind(device_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        let name: String = get(&row, "name")?;
        let container = get::<Option<String>>(&row, "container_dn")?.and_then(|dn| ContainerDn::parse(&dn).ok());
        let groups = direct_groups(self, "device", device_id).await?;
        Ok(DeviceFacts::new(&name, container.as_ref(), groups))
    }

    /// A user's facts for a decision: the direct groups.
    pub async fn user_access_facts(&self, tenant_id: &str, user_id: &str) -> Result<UserFacts, StoreError> {
        sqlx::query("SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_owned())
            .bind(user_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        Ok(UserFacts { user_id: user_id.to_owned(), groups: direct_groups(self, "user", user_id).await? })
    }

    /// The id of the tenant's device with this name (case-insensitive).
    pub async fn device_id_by_name(&self, tenant_id: &str, name: &str) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT id FROM devices WHERE tenant_id = $1 AND name_key = $2")
            .bind(tenant_id.to_owned())
            .bind(name.trim().to_lowercase())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        get(&row, "id")
    }

    /// The name of the tenant's user with this id.
    pub async fn user_name(&self, tenant_id: &str, user_id: &str) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT name FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_owned())
            .bind(user_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        get(&row, "name")
    }

    /// How each principal resolves in the tenant's directory (for previews and reports).
    pub async fn resolve_principals(
        &self,
        tenant_id: &str,
        principals: &[Principal],
    ) -> Result<Vec<Resolution>, StoreError> {
        let mut conn = self.read.acquire().await.map_err(StoreError::db)?;
        let mut out = Vec::with_capacity(principals.len());
        for p in principals {
            out.push(resolve(&mut conn, tenant_id, p).await?);
        }
        Ok(out)
    }

    /// Add a target at `position` (1-based; `None` appends). Later targets move down.
    pub async fn create_target(
        &self,
        tenant_id: &str,
        id: String,
        target: NewTarget,
        position: Option<i64>,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Target, StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let last = count_targets(conn, &tenant_id).await?;
                    let position = position.unwrap_or(last + 1).clamp(1, last + 1);
                    shift(conn, &tenant_id, position, i64::MAX, 1).await?;
                    insert_target(conn, &tenant_id, &id, position, &target, now).await?;
                    bump_access_generation(conn, &tenant_id).await?;
                    find(conn, &tenant_id, &id).await
                })
            })
            .await
    }

    /// Replace a target's settings and readers; its place in the list stays.
    pub async fn update_target(
        &self,
        tenant_id: &str,
        id: &str,
        target: NewTarget,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Target, StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let old = find(conn, &tenant_id, &id).await?;
                    delete_row(conn, &tenant_id, &id).await?;
                    insert_target(conn, &tenant_id, &id, old.position, &target, now).await?;
                    sqlx::query("UPDATE access_targets SET created_at = $1 WHERE id = $2")
                        .bind(to_millis(old.created_at))
                        .bind(id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                    bump_access_generation(conn, &tenant_id).await?;
                    find(conn, &tenant_id, &id).await
                })
            })
            .await
    }

    /// Move a target to `position` (1-based, clamped to the list).
    pub async fn move_target(
        &self,
        tenant_id: &str,
        id: &str,
        position: i64,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Target, StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let old = find(conn, &tenant_id, &id).await?;
                    let last = count_targets(conn, &tenant_id).await?;
                    let to = position.clamp(1, last);
                    // Park the target at 0, close its gap, open the new one, put it there.
                    set_position(conn, &id, 0, now).await?;
                    shift(conn, &tenant_id, old.position + 1, i64::MAX, -1).await?;
                    shift(conn, &tenant_id, to, i64::MAX, 1).await?;
                    set_position(conn, &id, to, now).await?;
                    bump_access_generation(conn, &tenant_id).await?;
                    find(conn, &tenant_id, &id).await
                })
            })
            .await
    }

    /// Delete a target; later targets move up.
    pub async fn delete_target(&self, tenant_id: &str, id: &str, event: NewAuditEvent) -> Result<(), StoreError> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let old = find(conn, &tenant_id, &id).await?;
                    delete_row(conn, &tenant_id, &id).await?;
                    shift(conn, &tenant_id, old.position + 1, i64::MAX, -1).await?;
                    bump_access_generation(conn, &tenant_id).await
                })
            })
            .await
    }

    /// Append imported targets in their order (or, with `replace`, make them the whole list),
    /// all or nothing: one unknown principal and none is stored.
    pub async fn import_targets(
        &self,
        tenant_id: &str,
        targets: Vec<(String, NewTarget)>,
        replace: bool,
        now: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<Vec<Target>, StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.writer
            .change(vec![event], move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    if replace {
                        sqlx::query(
                            "DELETE FROM access_target_readers WHERE target_id IN \
                             (SELECT id FROM access_targets WHERE tenant_id = $1)",
                        )
                        .bind(tenant_id.clone())
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db)?;
                        sqlx::query("DELETE FROM access_targets WHERE tenant_id = $1")
                            .bind(tenant_id.clone())
                            .execute(&mut *conn)
                            .await
                            .map_err(StoreError::db)?;
                    }
                    let mut position = count_targets(conn, &tenant_id).await?;
                    let ids: Vec<String> = targets.iter().map(|(id, _)| id.clone()).collect();
                    for (id, t) in &targets {
                        position += 1;
                        insert_target(conn, &tenant_id, id, position, t, now).await?;
                    }
                    bump_access_generation(conn, &tenant_id).await?;
                    let all = load_targets(conn, &tenant_id).await?;
                    Ok(all.into_iter().filter(|t| ids.contains(&t.id)).collect())
                })
            })
            .await
    }
}

/// Move the tenant's access generation on (inside the change that alters targets or groups).
pub(crate) async fn bump_access_generation(conn: &mut AnyConnection, tenant_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET access_generation = access_generation + 1 WHERE id = $1")
        .bind(tenant_id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)
        .map(|_| ())
}

async fn direct_groups(store: &Store, kind: &str, id: &str) -> Result<Vec<String>, StoreError> {
    sqlx::query("SELECT group_id FROM group_members WHERE member_kind = $1 AND member_id = $2")
        .bind(kind.to_owned())
        .bind(id.to_owned())
        .fetch_all(&store.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(|r| get(r, "group_id"))
        .collect()
}

async fn read_snapshot(conn: &mut AnyConnection, tenant_id: &str) -> Result<AccessSnapshot, StoreError> {
    let row = sqlx::query("SELECT access_generation FROM tenants WHERE id = $1")
        .bind(tenant_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .ok_or(StoreError::NotFound)?;
    let generation = get(&row, "access_generation")?;
    let groups = sqlx::query("SELECT id, name FROM groups WHERE tenant_id = $1")
        .bind(tenant_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(|r| Ok(IndexedGroup { id: get(r, "id")?, name: get(r, "name")? }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let edges = sqlx::query(
        "SELECT m.member_id, m.group_id FROM group_members m JOIN groups g ON g.id = m.group_id \
         WHERE g.tenant_id = $1 AND m.member_kind = 'group'",
    )
    .bind(tenant_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?
    .iter()
    .map(|r| Ok(GroupEdge { child: get(r, "member_id")?, parent: get(r, "group_id")? }))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let targets = load_targets(conn, tenant_id).await?;
    Ok(AccessSnapshot { generation, groups, edges, targets })
}

async fn load_targets(conn: &mut AnyConnection, tenant_id: &str) -> Result<Vec<Target>, StoreError> {
    let rows = sqlx::query(concat!(select_targets!(), " WHERE tenant_id = $1 ORDER BY position"))
        .bind(tenant_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    let readers = sqlx::query(
        "SELECT r.target_id, r.principal, r.member_kind, r.member_id FROM access_target_readers r \
         JOIN access_targets t ON t.id = r.target_id WHERE t.tenant_id = $1 ORDER BY r.principal",
    )
    .bind(tenant_id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    with_readers(&rows, &readers)
}

/// One target of a tenant, with its readers.
async fn find(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<Target, StoreError> {
    let rows = sqlx::query(concat!(select_targets!(), " WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant_id.to_owned())
        .bind(id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    let readers = sqlx::query(
        "SELECT target_id, principal, member_kind, member_id FROM access_target_readers \
         WHERE target_id = $1 ORDER BY principal",
    )
    .bind(id.to_owned())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    with_readers(&rows, &readers)?.pop().ok_or(StoreError::NotFound)
}

/// Targets from their rows, each with its rows of `readers`.
fn with_readers(rows: &[AnyRow], readers: &[AnyRow]) -> Result<Vec<Target>, StoreError> {
    let mut targets = rows.iter().map(target_from_row).collect::<Result<Vec<_>, _>>()?;
    let mut by_target: HashMap<String, Vec<Reader>> = HashMap::new();
    for r in readers {
        let kind: String = get(r, "member_kind")?;
        let reader = Reader {
            principal: get(r, "principal")?,
            kind: MemberKind::parse(&kind).ok_or(StoreError::Corrupt("member_kind"))?,
            id: get(r, "member_id")?,
        };
        by_target.entry(get(r, "target_id")?).or_default().push(reader);
    }
    for t in &mut targets {
        t.readers = by_target.remove(&t.id).unwrap_or_default();
    }
    Ok(targets)
}

async fn count_targets(conn: &mut AnyConnection, tenant_id: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM access_targets WHERE tenant_id = $1")
        .bind(tenant_id.to_owned())
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    get(&row, "n")
}

/// Add `by` to the position of every target at `from..=to`.
async fn shift(conn: &mut AnyConnection, tenant_id: &str, from: i64, to: i64, by: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE access_targets SET position = position + $1 WHERE tenant_id = $2 AND position >= $3 AND position <= $4",
    )
    .bind(by)
    .bind(tenant_id.to_owned())
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)
    .map(|_| ())
}

async fn set_position(
    conn: &mut AnyConnection,
    id: &str,
    position: i64,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE access_targets SET position = $1, updated_at = $2 WHERE id = $3")
        .bind(position)
        .bind(to_millis(now))
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)
        .map(|_| ())
}

async fn delete_row(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM access_target_readers WHERE target_id = $1")
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    let done = sqlx::query("DELETE FROM access_targets WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id.to_owned())
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn insert_target(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    position: i64,
    t: &NewTarget,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut readers = Vec::with_capacity(t.readers.len());
    for p in &t.readers {
        match resolve(conn, tenant_id, p).await? {
            Resolution::Found(r) => readers.push(r),
            Resolution::Unknown => {
                return Err(StoreError::Invalid(format!("reader `{p}` is not a user or group of this tenant")));
            }
            Resolution::Ambiguous => {
                return Err(StoreError::Invalid(format!(
                    "reader `{p}` names both a user and a group; write it as a UPN or rename one"
                )));
            }
        }
    }
    let addresses = serde_json::to_string(&t.audit.email_addresses).map_err(|_| StoreError::Corrupt("email"))?;
    sqlx::query(
        "INSERT INTO access_targets (id, tenant_id, position, kind, name, name_key, expire_after_ticks, grants, \
         email_on_success, email_on_failure, email_addresses, enabled, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
    )
    .bind(id.to_owned())
    .bind(tenant_id.to_owned())
    .bind(position)
    .bind(t.kind.as_str())
    .bind(t.name.clone())
    .bind(t.name.to_lowercase())
    .bind(t.expire_after.map(TimeSpan::ticks))
    .bind(t.grants.to_stored())
    .bind(i64::from(t.audit.email_on_success))
    .bind(i64::from(t.audit.email_on_failure))
    .bind(addresses)
    .bind(i64::from(t.enabled))
    .bind(t.description.clone())
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    for r in readers {
        // The same user or group written twice is one reader.
        sqlx::query(
            "INSERT INTO access_target_readers (target_id, principal, member_kind, member_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.to_owned())
        .bind(r.principal)
        .bind(r.kind.as_str())
        .bind(r.id)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    }
    Ok(())
}

/// Resolve a principal: a UPN first as a user's UPN, then the account-name key among users
/// and groups.
async fn resolve(conn: &mut AnyConnection, tenant_id: &str, p: &Principal) -> Result<Resolution, StoreError> {
    let found = |kind: MemberKind, id: String| Reader { principal: p.as_str().to_owned(), kind, id };
    if let Some(upn) = p.upn_key() {
        let row = sqlx::query("SELECT id FROM users WHERE tenant_id = $1 AND upn_key = $2")
            .bind(tenant_id.to_owned())
            .bind(upn)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        if let Some(row) = row {
            return Ok(Resolution::Found(found(MemberKind::User, get(&row, "id")?)));
        }
    }
    let rows = sqlx::query(
        "SELECT 'user' AS kind, id FROM users WHERE tenant_id = $1 AND name_key = $2 \
         UNION ALL SELECT 'group' AS kind, id FROM groups WHERE tenant_id = $1 AND name_key = $2",
    )
    .bind(tenant_id.to_owned())
    .bind(p.name_key().to_owned())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    match rows.as_slice() {
        [] => Ok(Resolution::Unknown),
        [row] => {
            let kind: String = get(row, "kind")?;
            let kind = MemberKind::parse(&kind).ok_or(StoreError::Corrupt("kind"))?;
            Ok(Resolution::Found(found(kind, get(row, "id")?)))
        }
        _ => Ok(Resolution::Ambiguous),
    }
}

fn target_from_row(row: &AnyRow) -> Result<Target, StoreError> {
    let kind: String = get(row, "kind")?;
    let grants: String = get(row, "grants")?;
    let addresses: String = get(row, "email_addresses")?;
    Ok(Target {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        position: get(row, "position")?,
        kind: TargetKind::parse(&kind).ok_or(StoreError::Corrupt("kind"))?,
        name: get(row, "name")?,
        expire_after: get::<Option<i64>>(row, "expire_after_ticks")?.map(TimeSpan::from_ticks),
        grants: Grants::from_stored(&grants).ok_or(StoreError::Corrupt("grants"))?,
        audit: AuditSettings {
            email_on_success: get::<i64>(row, "email_on_success")? != 0,
            email_on_failure: get::<i64>(row, "email_on_failure")? != 0,
            email_addresses: serde_json::from_str(&addresses).map_err(|_| StoreError::Corrupt("email_addresses"))?,
        },
        enabled: get::<i64>(row, "enabled")? != 0,
        description: get(row, "description")?,
        readers: Vec::new(),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}
