//! Directory sync: read a tenant's directory, apply it to the store, record the run; and the
//! background task that does so for every configured directory on its interval.
//!
//! The background task syncs a directory when its last recorded run (by any server sharing
//! the store) is older than the interval, so several servers do not each sync on every tick,
//! and a restart does not sync again before it is due.

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use latchkey_core::model::Tenant;
use latchkey_core::{Action, DisplayName, NewAuditEvent, ObjectType};
use latchkey_ldap::{DirectoryConfig, DirectoryError, DirectorySnapshot, Member};
use latchkey_store::{
    DirectorySyncRun, StoreError, SyncComputer, SyncGroup, SyncMember, SyncOutcome, SyncSnapshot, SyncUser,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// The actor of scheduled syncs in the audit log.
pub const SCHEDULER_ACTOR: &str = "system:directory-sync";
/// How often the background task looks for due directories.
const TICK: StdDuration = StdDuration::from_secs(30);
/// How long stopping waits for a sync in progress.
const STOP_GRACE: StdDuration = StdDuration::from_secs(5);

/// Why a sync did not succeed. Every variant except `Store` was recorded as a failed run.
#[derive(Debug)]
pub enum SyncFailure {
    /// The directory could not be read (down, TLS, service account, search).
    Directory { run: DirectorySyncRun, error: DirectoryError },
    /// The directory's content could not be applied (duplicate names, a group cycle, a name
    /// held by a built-in object); nothing changed.
    Refused { run: DirectorySyncRun },
    /// The store failed.
    Store(StoreError),
}

/// Sync one tenant's directory now. `event` is the `directory.sync` audit event to record
/// (actor and request facts); its time becomes the end of the run.
pub async fn sync_tenant(
    state: &AppState,
    tenant: &Tenant,
    directory: &DirectoryConfig,
    mut event: NewAuditEvent,
) -> Result<DirectorySyncRun, SyncFailure> {
    let store = state.store();
    let started_at = state.clock().now();
    let read = latchkey_ldap::read_directory(directory).await;
    event.at = state.clock().now();
    match read {
        Err(error) => {
            tracing::warn!(tenant = %tenant.slug, %error, "directory sync failed; the last good data is kept");
            let run = store
                .record_directory_sync_failure(&tenant.id, started_at, &error.to_string(), event)
                .await
                .map_err(SyncFailure::Store)?;
            Err(SyncFailure::Directory { run, error })
        }
        Ok(snapshot) => {
            let run = store
                .apply_directory_snapshot(&tenant.id, to_store(snapshot), started_at, event)
                .await
                .map_err(SyncFailure::Store)?;
            match run.outcome {
                // The store moved the tenant's access generation with the change, so every
                // server's rule index notices.
                SyncOutcome::Success => Ok(run),
                SyncOutcome::Failed => {
                    tracing::warn!(tenant = %tenant.slug, error = run.error.as_deref().unwrap_or(""), "directory content refused");
                    Err(SyncFailure::Refused { run })
                }
            }
        }
    }
}

/// The store's form of a snapshot. Objects whose names are not usable (too long, control
/// characters) are left out, and so are memberships pointing at them.
fn to_store(s: DirectorySnapshot) -> SyncSnapshot {
    let name = |raw: &str, dn: &str| match DisplayName::parse("name", raw) {
        Ok(n) => Some((n.as_str().to_owned(), n.key())),
        Err(e) => {
            tracing::warn!(dn, error = %e, "a directory object has an unusable name; it is left out");
            None
        }
    };
    let users: Vec<SyncUser> = s
        .users
        .into_iter()
        .filter_map(|u| {
            let (name, name_key) = name(&u.account_name, &u.dn)?;
            Some(SyncUser {
                upn_key: u.upn.as_ref().map(|x| x.to_lowercase()),
                external_id: u.external_id,
                name,
                name_key,
                upn: u.upn,
                display_name: u.display_name,
                email: u.email,
                dn: u.dn,
                disabled: u.disabled,
            })
        })
        .collect();
    let computers: Vec<SyncComputer> = s
        .computers
        .into_iter()
        .filter_map(|c| {
            let (name, name_key) = name(&c.name, &c.dn)?;
            let container_dn = c.container_dn();
            Some(SyncComputer { external_id: c.external_id, name, name_key, dn: c.dn, container_dn })
        })
        .collect();
    let kept_groups: Vec<(latchkey_ldap::DirectoryGroup, String, String)> = s
        .groups
        .into_iter()
        .filter_map(|g| {
            let (name, key) = name(&g.name, &g.dn)?;
            Some((g, name, key))
        })
        .collect();
    let user_ids: HashSet<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
    let group_ids: HashSet<&str> = kept_groups.iter().map(|(g, _, _)| g.external_id.as_str()).collect();
    let computer_ids: HashSet<&str> = computers.iter().map(|c| c.external_id.as_str()).collect();
    let known = |m: &Member| -> bool {
        match m {
            Member::User(id) => user_ids.contains(id.as_str()),
            Member::Group(id) => group_ids.contains(id.as_str()),
            Member::Computer(id) => computer_ids.contains(id.as_str()),
        }
    };
    let mut ignored = s.ignored_members;
    let groups: Vec<SyncGroup> = kept_groups
        .iter()
        .map(|(g, name, name_key)| {
            let members = g
                .members
                .iter()
                .filter(|m| {
                    let keep = known(m);
                    ignored += u64::from(!keep);
                    keep
                })
                .map(|m| match m {
                    Member::User(id) => SyncMember::User(id.clone()),
                    Member::Group(id) => SyncMember::Group(id.clone()),
                    Member::Computer(id) => SyncMember::Computer(id.clone()),
                })
                .collect();
            SyncGroup {
                external_id: g.external_id.clone(),
                name: name.clone(),
                name_key: name_key.clone(),
                dn: g.dn.clone(),
                members,
            }
        })
        .collect();
    SyncSnapshot { users, groups, computers, ignored_members: ignored }
}

/// The background task; stop it before closing the store.
pub struct SyncTask {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SyncTask {
    /// Start syncing every configured directory on its interval (nothing runs when none is
    /// configured).
    pub fn spawn(state: AppState) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = (!state.config().directories.is_empty()).then(|| {
            tokio::spawn(async move {
                loop {
                    run_due(&state, &mut stopped).await;
                    tokio::select! {
                        _ = tokio::time::sleep(TICK) => {}
                        _ = stopped.changed() => return,
                    }
                }
            })
        });
        Self { stop, task }
    }

    /// Stop: a sync in progress gets a few seconds to finish, then is cancelled (the store
    /// keeps nothing of a change it did not commit).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

/// Sync every directory whose last run is older than its interval.
async fn run_due(state: &AppState, stopped: &mut watch::Receiver<bool>) {
    for entry in &state.config().directories {
        if *stopped.borrow() {
            return;
        }
        let tenant = match state.tenant_by_slug(&entry.tenant).await {
            Ok(t) => t,
            Err(StoreError::NotFound) => {
                tracing::warn!(tenant = %entry.tenant, "a directory is configured for a tenant that does not exist");
                continue;
            }
            Err(e) => {
                tracing::warn!(tenant = %entry.tenant, error = %e, "cannot look up the tenant of a directory");
                continue;
            }
        };
        let now = state.clock().now();
        let last = match state.store().directory_sync_runs(&tenant.id, 1).await {
            Ok(runs) => runs.into_iter().next(),
            Err(e) => {
                tracing::warn!(tenant = %tenant.slug, error = %e, "cannot read the last directory sync run");
                continue;
            }
        };
        let interval = time::Duration::try_from(entry.config.sync_interval()).unwrap_or(time::Duration::minutes(15));
        if last.is_some_and(|r| r.finished_at + interval > now) {
            continue;
        }
        let event = NewAuditEvent::new(now, SCHEDULER_ACTOR, Action::DirectorySync, ObjectType::Directory);
        match sync_tenant(state, &tenant, &entry.config, event).await {
            Ok(run) => tracing::info!(
                tenant = %tenant.slug,
                users = run.counts.users.total,
                groups = run.counts.groups.total,
                devices = run.counts.devices.total,
                "directory synced"
            ),
            // Logged (and recorded) in `sync_tenant`.
            Err(SyncFailure::Directory { .. } | SyncFailure::Refused { .. }) => {}
            Err(SyncFailure::Store(e)) => {
                tracing::error!(tenant = %tenant.slug, error = %e, "directory sync could not be recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_ldap::{DirectoryComputer, DirectoryGroup, DirectoryUser};

    #[test]
    fn unusable_names_are_left_out_with_their_memberships() {
        let user = |id: &str, name: &str| DirectoryUser {
            dn: format!("CN={id},DC=x"),
            external_id: id.into(),
            account_name: name.into(),
            upn: Some(format!("{name}@X.Example")),
            display_name: None,
            email: None,
            disabled: false,
        };
        let s = DirectorySnapshot {
            users: vec![user("a", "Alice"), user("b", "bad\u{7}name")],
            groups: vec![DirectoryGroup {
                dn: "CN=G,DC=x".into(),
                external_id: "g".into(),
                name: "G".into(),
                members: vec![Member::User("a".into()), Member::User("b".into()), Member::Computer("c".into())],
            }],
            computers: vec![DirectoryComputer {
                dn: "CN=WS1,OU=Lab,DC=x".into(),
                external_id: "c".into(),
                name: "WS1".into(),
                dns_host_name: None,
            }],
            ignored_members: 2,
            skipped_entries: 0,
        };
        let out = to_store(s);
        assert_eq!(out.users.len(), 1);
        assert_eq!(out.users[0].name_key, "alice");
        assert_eq!(out.users[0].upn_key.as_deref(), Some("alice@x.example"));
        assert_eq!(out.groups[0].members, vec![SyncMember::User("a".into()), SyncMember::Computer("c".into())]);
        assert_eq!(out.ignored_members, 3);
        assert_eq!(out.computers[0].container_dn.as_deref(), Some("OU=Lab,DC=x"));
    }
}
