//! Directory sync: a snapshot of an LDAP / Active Directory directory applied to a tenant in
//! one change, and the record of every sync run.
//!
//! Synced users and groups carry `source = 'ldap'`, the directory's identifier
//! (`external_id`) and DN. Computers become devices, matched by identifier, else by name (an
//! enrolled device keeps its agent fields and its source). The memberships of synced groups
//! are replaced by the directory's, and synced objects no longer in the directory are deleted
//! with every membership and reader entry pointing at them (devices only when sync created
//! them, no agent ever enrolled and no account belongs to them). A snapshot with duplicate
//! names, a group cycle, or a name taken by a built-in object changes nothing and is recorded
//! as a failed run; so is a directory that could not be read. The last good data stays.

use std::collections::{BTreeSet, HashMap, HashSet};

use latchkey_core::clock::to_millis;
use latchkey_core::{NewAuditEvent, Outcome};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// What a directory holds, ready to be applied to a tenant. Members name objects of the
/// same snapshot by their external id.
#[derive(Debug, Clone, Default)]
pub struct SyncSnapshot {
    pub users: Vec<SyncUser>,
    pub groups: Vec<SyncGroup>,
    pub computers: Vec<SyncComputer>,
    /// Group members the directory lists that are not part of the snapshot (left out).
    pub ignored_members: u64,
}

/// A synced user.
#[derive(Debug, Clone)]
pub struct SyncUser {
    pub external_id: String,
    pub name: String,
    pub name_key: String,
    pub upn: Option<String>,
    pub upn_key: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub dn: String,
    pub disabled: bool,
}

/// A synced group and its direct members.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    pub external_id: String,
    pub name: String,
    pub name_key: String,
    pub dn: String,
    pub members: Vec<SyncMember>,
}

/// A directory computer: a device of the tenant.
#[derive(Debug, Clone)]
pub struct SyncComputer {
    pub external_id: String,
    pub name: String,
    pub name_key: String,
    pub dn: String,
    pub container_dn: Option<String>,
}

/// A group member, by its external id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncMember {
    User(String),
    Group(String),
    Computer(String),
}

/// How a sync run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    Success,
    Failed,
}

impl SyncOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Success => "success",
            SyncOutcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(SyncOutcome::Success),
            "failed" => Some(SyncOutcome::Failed),
            _ => None,
        }
    }
}

/// Created, updated and deleted objects of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// Objects of this kind in the directory.
    pub total: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// What a sync run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub users: KindCounts,
    pub groups: KindCounts,
    pub devices: KindCounts,
    pub memberships_added: u64,
    pub memberships_removed: u64,
    pub ignored_members: u64,
}

impl SyncCounts {
    /// Whether the run changed anything.
    pub fn changed(&self) -> bool {
        let kind = |k: &KindCounts| k.created + k.updated + k.deleted > 0;
        kind(&self.users)
            || kind(&self.groups)
            || kind(&self.devices)
            || self.memberships_added + self.memberships_removed > 0
    }

    /// The JSON stored with the run and in its audit event.
    pub fn to_json(&self) -> serde_json::Value {
        let kind = |k: &KindCounts| serde_json::json!({ "total": k.total, "created": k.created, "updated": k.updated, "deleted": k.deleted });
        serde_json::json!({
            "users": kind(&self.users),
            "groups": kind(&self.groups),
            "devices": kind(&self.devices),
            "membershipsAdded": self.memberships_added,
            "membershipsRemoved": self.memberships_removed,
            "ignoredMembers": self.ignored_members,
        })
    }

    fn from_json(v: &serde_json::Value) -> Self {
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        let kind = |k: &serde_json::Value| KindCounts {
            total: n(&k["total"]),
            created: n(&k["created"]),
            updated: n(&k["updated"]),
            deleted: n(&k["deleted"]),
        };
        Self {
            users: kind(&v["users"]),
            groups: kind(&v["groups"]),
            devices: kind(&v["devices"]),
            memberships_added: n(&v["membershipsAdded"]),
            memberships_removed: n(&v["membershipsRemoved"]),
            ignored_members: n(&v["ignoredMembers"]),
        }
    }
}

/// One sync run, successful or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySyncRun {
    pub id: String,
    pub tenant_id: String,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub outcome: SyncOutcome,
    pub counts: SyncCounts,
    /// Why the run failed. Never holds a secret.
    pub error: Option<String>,
}

impl Store {
    /// Apply a directory snapshot to a tenant in one change, with a `directory.sync` audit
    /// event (counts only) and the run's record. A snapshot that cannot be applied (duplicate
    /// names, a group cycle, a name held by a built-in object) changes nothing and comes back
    /// as a failed run saying why. `event` is the audit event to write; its outcome, object
    /// and details are filled in here, and its time is the run's end.
    pub async fn apply_directory_snapshot(
        &self,
        tenant_id: &str,
        snapshot: SyncSnapshot,
        started_at: OffsetDateTime,
        event: NewAuditEvent,
    ) -> Result<DirectorySyncRun, StoreError> {
        let tenant = tenant_id.to_owned();
        let fallback = event.clone();
        let result = self
            .writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move { apply(conn, &tenant, snapshot, started_at, event).await })
            })
            .await;
        match result {
            Ok(run) => Ok(run),
            // No such tenant: nothing to record it in.
            Err(StoreError::NotFound) => Err(StoreError::NotFound),
            // A failure of the store itself: say so in a run of its own if the store still
            // takes writes. The database's message stays in the log.
            Err(e) => {
                tracing::error!(error = %e, "applying a directory snapshot failed; nothing was changed");
                let _ = self
                    .record_directory_sync_failure(
                        tenant_id,
                        started_at,
                        "the store could not apply the snapshot",
                        fallback,
                    )
                    .await;
                Err(e)
            }
        }
    }

    /// Record a sync run that failed before anything could be applied (e.g. the directory was
    /// down), with its `directory.sync` audit event (outcome failed). `error` must not hold a
    /// secret.
    pub async fn record_directory_sync_failure(
        &self,
        tenant_id: &str,
        started_at: OffsetDateTime,
        error: &str,
        event: NewAuditEvent,
    ) -> Result<DirectorySyncRun, StoreError> {
        let (tenant, error) = (tenant_id.to_owned(), bounded(error));
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    require_tenant(conn, &tenant).await?;
                    failed_run(conn, &tenant, started_at, error, event).await
                })
            })
            .await
    }

    /// A tenant's most recent sync runs, newest first.
    pub async fn directory_sync_runs(&self, tenant_id: &str, limit: i64) -> Result<Vec<DirectorySyncRun>, StoreError> {
        sqlx::query(
            "SELECT id, tenant_id, started_at, finished_at, outcome, summary, error FROM directory_sync_runs \
             WHERE tenant_id = $1 ORDER BY started_at DESC, finished_at DESC, id DESC LIMIT $2",
        )
        .bind(tenant_id.to_owned())
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(run_from_row)
        .collect()
    }
}

/// NotFound unless the tenant exists.
async fn require_tenant(conn: &mut AnyConnection, tenant_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM tenants WHERE id = $1")
        .bind(tenant_id.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

/// Error texts are kept to a sane length.
fn bounded(error: &str) -> String {
    error.chars().take(2000).collect()
}

fn run_from_row(row: &AnyRow) -> Result<DirectorySyncRun, StoreError> {
    let outcome: String = get(row, "outcome")?;
    let summary: String = get(row, "summary")?;
    let summary: serde_json::Value = serde_json::from_str(&summary).map_err(|_| StoreError::Corrupt("summary"))?;
    Ok(DirectorySyncRun {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        started_at: time(row, "started_at")?,
        finished_at: time(row, "finished_at")?,
        outcome: SyncOutcome::parse(&outcome).ok_or(StoreError::Corrupt("outcome"))?,
        counts: SyncCounts::from_json(&summary),
        error: get(row, "error")?,
    })
}

/// Insert a run and finish its audit event.
async fn insert_run(
    conn: &mut AnyConnection,
    run: &DirectorySyncRun,
    event: NewAuditEvent,
) -> Result<Vec<NewAuditEvent>, StoreError> {
    let mut details = run.counts.to_json();
    if let Some(e) = &run.error {
        details["error"] = serde_json::Value::String(e.clone());
    }
    sqlx::query(
        "INSERT INTO directory_sync_runs (id, tenant_id, started_at, finished_at, outcome, summary, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run.id.clone())
    .bind(run.tenant_id.clone())
    .bind(to_millis(run.started_at))
    .bind(to_millis(run.finished_at))
    .bind(run.outcome.as_str())
    .bind(run.counts.to_json().to_string())
    .bind(run.error.clone())
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let outcome = match run.outcome {
        SyncOutcome::Success => Outcome::Success,
        SyncOutcome::Failed => Outcome::Failed,
    };
    Ok(vec![event.tenant(run.tenant_id.clone()).object(run.id.clone()).outcome(outcome).details(&details)])
}

async fn failed_run(
    conn: &mut AnyConnection,
    tenant_id: &str,
    started_at: OffsetDateTime,
    error: String,
    event: NewAuditEvent,
) -> Result<(DirectorySyncRun, Vec<NewAuditEvent>), StoreError> {
    let run = DirectorySyncRun {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_owned(),
        started_at,
        finished_at: event.at,
        outcome: SyncOutcome::Failed,
        counts: SyncCounts::default(),
        error: Some(error),
    };
    let events = insert_run(conn, &run, event).await?;
    Ok((run, events))
}

/// The whole sync, inside the writer's transaction.
async fn apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    snapshot: SyncSnapshot,
    started_at: OffsetDateTime,
    event: NewAuditEvent,
) -> Result<(DirectorySyncRun, Vec<NewAuditEvent>), StoreError> {
    require_tenant(conn, tenant_id).await?;
    if let Err(why) = validate(&snapshot) {
        return failed_run(conn, tenant_id, started_at, why, event).await;
    }
    let now = event.at;
    let mut counts = SyncCounts { ignored_members: snapshot.ignored_members, ..SyncCounts::default() };
    if let Err(why) = check_built_in_names(conn, tenant_id, &snapshot).await? {
        return failed_run(conn, tenant_id, started_at, why, event).await;
    }
    // Everything that can refuse the snapshot is decided before the first write.
    let plan = match plan_devices(conn, tenant_id, &snapshot).await? {
        Ok(plan) => plan,
        Err(why) => return failed_run(conn, tenant_id, started_at, why, event).await,
    };
    let users = sync_principals(conn, tenant_id, Table::Users, &snapshot, now, &mut counts.users).await?;
    let groups = sync_principals(conn, tenant_id, Table::Groups, &snapshot, now, &mut counts.groups).await?;
    let devices = sync_devices(conn, tenant_id, plan, now, &mut counts.devices).await?;
    sync_memberships(conn, &snapshot, &users, &groups, &devices, &mut counts).await?;
    if counts.changed() {
        sqlx::query("UPDATE tenants SET access_generation = access_generation + 1 WHERE id = $1")
            .bind(tenant_id.to_owned())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
    }
    let run = DirectorySyncRun {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_owned(),
        started_at,
        finished_at: now,
        outcome: SyncOutcome::Success,
        counts,
        error: None,
    };
    let events = insert_run(conn, &run, event).await?;
    Ok((run, events))
}

/// Duplicate names or ids, members that are not in the snapshot, and group cycles.
fn validate(s: &SyncSnapshot) -> Result<(), String> {
    fn unique<'a>(
        kind: &str,
        what: &str,
        items: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<HashSet<&'a str>, String> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (key, label) in items {
            if key.is_empty() {
                return Err(format!("a {kind} has an empty {what}"));
            }
            if let Some(first) = seen.insert(key, label) {
                return Err(format!("two {kind}s have the same {what}: {first} and {label}"));
            }
        }
        Ok(seen.into_keys().collect())
    }
    unique("user", "name", s.users.iter().map(|u| (u.name_key.as_str(), u.dn.as_str())))?;
    unique("group", "name", s.groups.iter().map(|g| (g.name_key.as_str(), g.dn.as_str())))?;
    unique("computer", "name", s.computers.iter().map(|c| (c.name_key.as_str(), c.dn.as_str())))?;
    let users = unique("user", "identifier", s.users.iter().map(|u| (u.external_id.as_str(), u.dn.as_str())))?;
    let groups = unique("group", "identifier", s.groups.iter().map(|g| (g.external_id.as_str(), g.dn.as_str())))?;
    let computers =
        unique("computer", "identifier", s.computers.iter().map(|c| (c.external_id.as_str(), c.dn.as_str())))?;
    for g in &s.groups {
        for m in &g.members {
            let known = match m {
                SyncMember::User(id) => users.contains(id.as_str()),
                SyncMember::Group(id) => groups.contains(id.as_str()),
                SyncMember::Computer(id) => computers.contains(id.as_str()),
            };
            if !known {
                return Err(format!("group {} lists a member that is not part of the directory snapshot", g.name));
            }
        }
    }
    find_cycle(s).map_or(Ok(()), |cycle| Err(format!("groups form a cycle: {}", cycle.join(" → "))))
}

/// A chain of group names that leads back to its start, if there is one.
fn find_cycle(s: &SyncSnapshot) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = s.groups.iter().enumerate().map(|(i, g)| (g.external_id.as_str(), i)).collect();
    let edges: Vec<Vec<usize>> = s
        .groups
        .iter()
        .map(|g| {
            g.members
                .iter()
                .filter_map(|m| match m {
                    SyncMember::Group(id) => index.get(id.as_str()).copied(),
                    SyncMember::User(_) | SyncMember::Computer(_) => None,
                })
                .collect()
        })
        .collect();
    // Iterative depth-first search: 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; s.groups.len()];
    for start in 0..s.groups.len() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            if let Some(&child) = edges[node].get(*next) {
                *next += 1;
                match state[child] {
                    0 => {
                        state[child] = 1;
                        path.push((child, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let mut names: Vec<String> =
                            path[from..].iter().map(|(n, _)| s.groups[*n].name.clone()).collect();
                        names.push(s.groups[child].name.clone());
                        return Some(names);
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                path.pop();
            }
        }
    }
    None
}

/// A snapshot user or group whose name a built-in (local) user or group already has.
async fn check_built_in_names(
    conn: &mut AnyConnection,
    tenant_id: &str,
    s: &SyncSnapshot,
) -> Result<Result<(), String>, StoreError> {
    for (table, kind, names) in [
        ("users", "user", s.users.iter().map(|u| u.name_key.as_str()).collect::<HashSet<_>>()),
        ("groups", "group", s.groups.iter().map(|g| g.name_key.as_str()).collect::<HashSet<_>>()),
    ] {
        let sql = format!("SELECT name, name_key FROM {table} WHERE tenant_id = $1 AND source <> 'ldap'");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id.to_owned())
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        for row in &rows {
            let key: String = get(row, "name_key")?;
            if names.contains(key.as_str()) {
                let name: String = get(row, "name")?;
                return Ok(Err(format!(
                    "the directory has a {kind} named {name}, and a built-in {kind} has that name; \
                     rename or delete the built-in one"
                )));
            }
        }
    }
    Ok(Ok(()))
}

/// Users or groups: the two tables are synced the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Users,
    Groups,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }

    fn member_kind(self) -> &'static str {
        match self {
            Table::Users => "user",
            Table::Groups => "group",
        }
    }
}

/// The stored row of a synced user or group, in the order of the columns compared.
#[derive(Debug, Clone, PartialEq)]
struct Principal {
    name: String,
    name_key: String,
    external_id: Option<String>,
    dn: Option<String>,
    upn: Option<String>,
    upn_key: Option<String>,
    display_name: Option<String>,
    email: Option<String>,
    disabled_at: Option<OffsetDateTime>,
}

/// Apply the snapshot's users or groups; returns external id → row id.
async fn sync_principals(
    conn: &mut AnyConnection,
    tenant_id: &str,
    table: Table,
    s: &SyncSnapshot,
    now: OffsetDateTime,
    counts: &mut KindCounts,
) -> Result<HashMap<String, String>, StoreError> {
    let wanted: Vec<(String, Principal)> = match table {
        Table::Users => s
            .users
            .iter()
            .map(|u| {
                (
                    u.external_id.clone(),
                    Principal {
                        name: u.name.clone(),
                        name_key: u.name_key.clone(),
                        external_id: Some(u.external_id.clone()),
                        dn: Some(u.dn.clone()),
                        upn: u.upn.clone(),
                        upn_key: u.upn_key.clone(),
                        display_name: u.display_name.clone(),
                        email: u.email.clone(),
                        disabled_at: u.disabled.then_some(now),
                    },
                )
            })
            .collect(),
        Table::Groups => s
            .groups
            .iter()
            .map(|g| {
                (
                    g.external_id.clone(),
                    Principal {
                        name: g.name.clone(),
                        name_key: g.name_key.clone(),
                        external_id: Some(g.external_id.clone()),
                        dn: Some(g.dn.clone()),
                        upn: None,
                        upn_key: None,
                        display_name: None,
                        email: None,
                        disabled_at: None,
                    },
                )
            })
            .collect(),
    };
    counts.total = wanted.len() as u64;
    let select = match table {
        Table::Users => {
            "SELECT id, name, name_key, external_id, dn, upn, upn_key, display_name, email, disabled_at \
             FROM users WHERE tenant_id = $1 AND source = 'ldap'"
        }
        Table::Groups => {
            "SELECT id, name, name_key, external_id, dn, NULL AS upn, NULL AS upn_key, NULL AS display_name, \
             NULL AS email, NULL AS disabled_at FROM groups WHERE tenant_id = $1 AND source = 'ldap'"
        }
    };
    let rows = sqlx::query(select).bind(tenant_id.to_owned()).fetch_all(&mut *conn).await.map_err(StoreError::db)?;
    let mut existing: HashMap<String, Principal> = HashMap::new();
    for row in &rows {
        existing.insert(
            get(row, "id")?,
            Principal {
                name: get(row, "name")?,
                name_key: get(row, "name_key")?,
                external_id: get(row, "external_id")?,
                dn: get(row, "dn")?,
                upn: get(row, "upn")?,
                upn_key: get(row, "upn_key")?,
                display_name: get(row, "display_name")?,
                email: get(row, "email")?,
                disabled_at: opt_time(row, "disabled_at")?,
            },
        );
    }

    // Match by external id first, then (for what is left) by name.
    let by_external: HashMap<&str, &str> =
        existing.iter().filter_map(|(id, p)| p.external_id.as_deref().map(|e| (e, id.as_str()))).collect();
    let by_name: HashMap<&str, &str> = existing.iter().map(|(id, p)| (p.name_key.as_str(), id.as_str())).collect();
    let mut claimed: HashSet<String> = HashSet::new();
    let mut matched: Vec<Option<String>> = vec![None; wanted.len()];
    for (i, (ext, _)) in wanted.iter().enumerate() {
        if let Some(id) = by_external.get(ext.as_str()) {
            claimed.insert((*id).to_owned());
            matched[i] = Some((*id).to_owned());
        }
    }
    for (i, (_, p)) in wanted.iter().enumerate() {
        if matched[i].is_none()
            && let Some(id) = by_name.get(p.name_key.as_str())
            && !claimed.contains(*id)
        {
            claimed.insert((*id).to_owned());
            matched[i] = Some((*id).to_owned());
        }
    }

    let t = table.name();
    // Rows that change name first take a placeholder, so renames and swaps never collide.
    for (i, (_, p)) in wanted.iter().enumerate() {
        if let Some(id) = &matched[i]
            && existing[id].name_key != p.name_key
        {
            let sql = format!("UPDATE {t} SET name_key = $1 WHERE id = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(format!("\u{1}{id}"))
                .bind(id.clone())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
        }
    }
    // Gone from the directory: deleted, with every reference to them.
    let gone: Vec<String> = existing.keys().filter(|id| !claimed.contains(*id)).cloned().collect();
    for id in &gone {
        delete_principal(conn, table, id).await?;
    }
    counts.deleted = gone.len() as u64;

    let mut ids = HashMap::with_capacity(wanted.len());
    for (i, (ext, p)) in wanted.into_iter().enumerate() {
        match &matched[i] {
            Some(id) => {
                let old = &existing[id];
                // A disabled account keeps the time it was first seen disabled.
                let p = Principal { disabled_at: p.disabled_at.map(|t| old.disabled_at.unwrap_or(t)), ..p };
                if *old != p {
                    update_principal(conn, table, id, &p).await?;
                    counts.updated += 1;
                }
                ids.insert(ext, id.clone());
            }
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                insert_principal(conn, table, tenant_id, &id, &p, now).await?;
                counts.created += 1;
                ids.insert(ext, id);
            }
        }
    }
    Ok(ids)
}

async fn delete_principal(conn: &mut AnyConnection, table: Table, id: &str) -> Result<(), StoreError> {
    let kind = table.member_kind();
    for sql in [
        "DELETE FROM group_members WHERE member_kind = $1 AND member_id = $2",
        "DELETE FROM access_target_readers WHERE member_kind = $1 AND member_id = $2",
    ] {
        sqlx::query(sql).bind(kind).bind(id.to_owned()).execute(&mut *conn).await.map_err(StoreError::db)?;
    }
    if table == Table::Groups {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id.to_owned())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
    }
    let sql = format!("DELETE FROM {} WHERE id = $1", table.name());
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_owned()).execute(&mut *conn).await.map_err(StoreError::db)?;
    Ok(())
}

async fn update_principal(conn: &mut AnyConnection, table: Table, id: &str, p: &Principal) -> Result<(), StoreError> {
    let q = match table {
        Table::Users => sqlx::query(
            "UPDATE users SET name = $1, name_key = $2, external_id = $3, dn = $4, upn = $5, upn_key = $6, \
             display_name = $7, email = $8, disabled_at = $9 WHERE id = $10",
        )
        .bind(p.name.clone())
        .bind(p.name_key.clone())
        .bind(p.external_id.clone())
        .bind(p.dn.clone())
        .bind(p.upn.clone())
        .bind(p.upn_key.clone())
        .bind(p.display_name.clone())
        .bind(p.email.clone())
        .bind(p.disabled_at.map(to_millis))
        .bind(id.to_owned()),
        Table::Groups => {
            sqlx::query("UPDATE groups SET name = $1, name_key = $2, external_id = $3, dn = $4 WHERE id = $5")
                .bind(p.name.clone())
                .bind(p.name_key.clone())
                .bind(p.external_id.clone())
                .bind(p.dn.clone())
                .bind(id.to_owned())
        }
    };
    q.execute(&mut *conn).await.map_err(StoreError::db)?;
    Ok(())
}

async fn insert_principal(
    conn: &mut AnyConnection,
    table: Table,
    tenant_id: &str,
    id: &str,
    p: &Principal,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let q = match table {
        Table::Users => sqlx::query(
            "INSERT INTO users (id, tenant_id, name, name_key, display_name, email, created_at, upn, upn_key, \
             source, external_id, dn, disabled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ldap', $10, $11, $12)",
        )
        .bind(id.to_owned())
        .bind(tenant_id.to_owned())
        .bind(p.name.clone())
        .bind(p.name_key.clone())
        .bind(p.display_name.clone())
        .bind(p.email.clone())
        .bind(to_millis(now))
        .bind(p.upn.clone())
        .bind(p.upn_key.clone())
        .bind(p.external_id.clone())
        .bind(p.dn.clone())
        .bind(p.disabled_at.map(to_millis)),
        Table::Groups => sqlx::query(
            "INSERT INTO groups (id, tenant_id, name, name_key, created_at, source, external_id, dn) \
             VALUES ($1, $2, $3, $4, $5, 'ldap', $6, $7)",
        )
        .bind(id.to_owned())
        .bind(tenant_id.to_owned())
        .bind(p.name.clone())
        .bind(p.name_key.clone())
        .bind(to_millis(now))
        .bind(p.external_id.clone())
        .bind(p.dn.clone()),
    };
    q.execute(&mut *conn).await.map_err(StoreError::db)?;
    Ok(())
}

/// A device row as far as sync cares.
#[derive(Debug, Clone)]
struct DeviceRow {
    id: String,
    name: String,
    name_key: String,
    container_dn: Option<String>,
    source: String,
    external_id: Option<String>,
    /// An agent enrolled (the device is in use and never deleted by sync).
    enrolled: bool,
}

fn device_row(row: &AnyRow) -> Result<DeviceRow, StoreError> {
    let enrolled_at: Option<i64> = get(row, "enrolled_at")?;
    let key: Option<String> = get(row, "agent_public_key")?;
    Ok(DeviceRow {
        id: get(row, "id")?,
        name: get(row, "name")?,
        name_key: get(row, "name_key")?,
        container_dn: get(row, "container_dn")?,
        source: get(row, "source")?,
        external_id: get(row, "external_id")?,
        enrolled: enrolled_at.is_some() || key.is_some(),
    })
}

const DEVICE_COLUMNS: &str = "id, name, name_key, container_dn, source, external_id, enrolled_at, agent_public_key";

/// Which device each computer becomes, and which linked devices lost their computer.
struct DevicePlan<'a> {
    computers: Vec<(&'a SyncComputer, Option<DeviceRow>)>,
    gone: Vec<DeviceRow>,
}

/// Match computers to devices (by external id, else by name), or say why that cannot be done.
/// Reads only.
async fn plan_devices<'a>(
    conn: &mut AnyConnection,
    tenant_id: &str,
    s: &'a SyncSnapshot,
) -> Result<Result<DevicePlan<'a>, String>, StoreError> {
    // Only devices sync created or linked are loaded (a tenant may hold many other devices).
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND (source = 'ldap' OR external_id IS NOT NULL)"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant_id.to_owned())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db)?;
    let linked: Vec<DeviceRow> = rows.iter().map(device_row).collect::<Result<_, _>>()?;
    let by_external: HashMap<&str, &DeviceRow> =
        linked.iter().filter_map(|d| d.external_id.as_deref().map(|e| (e, d))).collect();
    let by_name_sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE tenant_id = $1 AND name_key = $2");

    let mut claimed: HashSet<String> = HashSet::new();
    // Devices whose computer was renamed, and which sync renames too: their old name is free
    // for another computer.
    let mut renamed: HashSet<String> = HashSet::new();
    let mut computers: Vec<(&SyncComputer, Option<DeviceRow>)> = Vec::with_capacity(s.computers.len());
    for c in &s.computers {
        let found = by_external.get(c.external_id.as_str()).map(|d| (*d).clone());
        if let Some(d) = &found {
            claimed.insert(d.id.clone());
            if renames(d, c) {
                renamed.insert(d.id.clone());
            }
        }
        computers.push((c, found));
    }
    for (c, found) in computers.iter_mut() {
        if found.is_some() {
            continue;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(by_name_sql.clone()))
            .bind(tenant_id.to_owned())
            .bind(c.name_key.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        if let Some(row) = row {
            let d = device_row(&row)?;
            if renamed.contains(&d.id) {
                continue;
            }
            if !claimed.insert(d.id.clone()) {
                return Ok(Err(format!(
                    "the directory computer {} has the name of device {}, which belongs to another directory computer",
                    c.dn, d.name
                )));
            }
            *found = Some(d);
        }
    }
    let gone = linked.into_iter().filter(|d| !claimed.contains(&d.id)).collect();
    Ok(Ok(DevicePlan { computers, gone }))
}

/// Whether sync gives a device its computer's new name: only devices it created and no agent
/// uses (other devices keep their names).
fn renames(d: &DeviceRow, c: &SyncComputer) -> bool {
    d.source == "ldap" && !d.enrolled && d.name != c.name
}

/// Apply the device plan; returns external id → device id.
async fn sync_devices(
    conn: &mut AnyConnection,
    tenant_id: &str,
    plan: DevicePlan<'_>,
    now: OffsetDateTime,
    counts: &mut KindCounts,
) -> Result<HashMap<String, String>, StoreError> {
    counts.total = plan.computers.len() as u64;
    // Linked devices whose computer is gone: deleted when sync created them and nothing else
    // uses them, else only unlinked.
    for d in &plan.gone {
        let has_accounts = sqlx::query("SELECT 1 FROM accounts WHERE device_id = $1")
            .bind(d.id.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db)?
            .is_some();
        if d.source == "ldap" && !d.enrolled && !has_accounts {
            for sql in [
                "DELETE FROM group_members WHERE member_kind = 'device' AND member_id = $1",
                "DELETE FROM devices WHERE id = $1",
            ] {
                sqlx::query(sql).bind(d.id.clone()).execute(&mut *conn).await.map_err(StoreError::db)?;
            }
            counts.deleted += 1;
        } else {
            sqlx::query("UPDATE devices SET external_id = NULL WHERE id = $1")
                .bind(d.id.clone())
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db)?;
            counts.updated += 1;
        }
    }

    // Existing devices first (renames free old names), then the new ones.
    let (matched, new): (Vec<_>, Vec<_>) = plan.computers.into_iter().partition(|(_, found)| found.is_some());
    let mut ids = HashMap::with_capacity(matched.len() + new.len());
    for (c, d) in matched.into_iter().filter_map(|(c, found)| found.map(|d| (c, d))) {
        let rename = renames(&d, c) && {
            let taken = sqlx::query("SELECT 1 FROM devices WHERE tenant_id = $1 AND name_key = $2 AND id <> $3")
                .bind(tenant_id.to_owned())
                .bind(c.name_key.clone())
                .bind(d.id.clone())
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db)?;
            taken.is_none()
        };
        let (name, name_key) = if rename { (&c.name, &c.name_key) } else { (&d.name, &d.name_key) };
        if d.external_id.as_deref() != Some(c.external_id.as_str()) || d.container_dn != c.container_dn || rename {
            sqlx::query(
                "UPDATE devices SET external_id = $1, container_dn = $2, name = $3, name_key = $4 WHERE id = $5",
            )
            .bind(c.external_id.clone())
            .bind(c.container_dn.clone())
            .bind(name.clone())
            .bind(name_key.clone())
            .bind(d.id.clone())
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db)?;
            counts.updated += 1;
        }
        ids.insert(c.external_id.clone(), d.id);
    }
    for (c, _) in new {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO devices (id, tenant_id, name, name_key, container_dn, created_at, source, external_id) \
             VALUES ($1, $2, $3, $4, $5, $6, 'ldap', $7)",
        )
        .bind(id.clone())
        .bind(tenant_id.to_owned())
        .bind(c.name.clone())
        .bind(c.name_key.clone())
        .bind(c.container_dn.clone())
        .bind(to_millis(now))
        .bind(c.external_id.clone())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)?;
        counts.created += 1;
        ids.insert(c.external_id.clone(), id);
    }
    Ok(ids)
}

/// Replace the memberships of every synced group by the directory's.
async fn sync_memberships(
    conn: &mut AnyConnection,
    s: &SyncSnapshot,
    users: &HashMap<String, String>,
    groups: &HashMap<String, String>,
    devices: &HashMap<String, String>,
    counts: &mut SyncCounts,
) -> Result<(), StoreError> {
    for g in &s.groups {
        let Some(group_id) = groups.get(&g.external_id) else { continue };
        let wanted: BTreeSet<(String, String)> = g
            .members
            .iter()
            .filter_map(|m| match m {
                SyncMember::User(e) => users.get(e).map(|id| ("user".to_owned(), id.clone())),
                SyncMember::Group(e) => groups.get(e).map(|id| ("group".to_owned(), id.clone())),
                SyncMember::Computer(e) => devices.get(e).map(|id| ("device".to_owned(), id.clone())),
            })
            .collect();
        let rows = sqlx::query("SELECT member_kind, member_id FROM group_members WHERE group_id = $1")
            .bind(group_id.clone())
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db)?;
        let mut have: BTreeSet<(String, String)> = BTreeSet::new();
        for row in &rows {
            have.insert((get(row, "member_kind")?, get(row, "member_id")?));
        }
        for (kind, id) in &have {
            if !wanted.contains(&(kind.clone(), id.clone())) {
                sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_kind = $2 AND member_id = $3")
                    .bind(group_id.clone())
                    .bind(kind.clone())
                    .bind(id.clone())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                counts.memberships_removed += 1;
            }
        }
        for (kind, id) in &wanted {
            if !have.contains(&(kind.clone(), id.clone())) {
                sqlx::query("INSERT INTO group_members (group_id, member_kind, member_id) VALUES ($1, $2, $3)")
                    .bind(group_id.clone())
                    .bind(kind.clone())
                    .bind(id.clone())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                counts.memberships_added += 1;
            }
        }
    }
    Ok(())
}
