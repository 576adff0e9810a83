//! The directory provider: a tech account `<user>-<prefix>` in the tenant's Active Directory,
//! created in the policy's OU when missing (or re-enabled), given the temporary password and
//! added to the admin group; at the end removed from the group, disabled and given a random
//! password (or deleted, with `on_revoke = "delete"`).

use futures::future::BoxFuture;
use latchkey_core::jit::Provider as ProviderKind;
use latchkey_ldap::DirectoryConfig;
use latchkey_ldap::admin::{AdminError, DirectoryAdmin};
use latchkey_store::JitGrant;
use secrecy::SecretString;

use super::config::{JitPolicy, OnRevoke};
use super::provider::{Progress, Provider, StepError};
use crate::state::AppState;

/// Service-account connections kept open per tenant (a TLS handshake and a bind per step
/// would cost the directory more than the step itself).
const POOL_MAX: usize = 16;

/// The directory provider, with a pool of open connections per tenant, the admin groups' DNs
/// it has looked up, and group removals combined into one change per group.
#[derive(Default)]
pub struct DirectoryProvider {
    pool: std::sync::Mutex<std::collections::HashMap<String, Vec<DirectoryAdmin>>>,
    groups: GroupDns,
    removals: Removals,
}

/// Admin group DNs by tenant and configured name, so that a revocation does not search for
/// the group each time. An entry is forgotten when a change through it fails.
#[derive(Default)]
struct GroupDns(std::sync::Mutex<std::collections::HashMap<(String, String), String>>);

impl GroupDns {
    async fn get(&self, admin: &mut DirectoryAdmin, tenant_id: &str, group: &str) -> Result<String, AdminError> {
        let key = (tenant_id.to_owned(), group.to_owned());
        if let Some(dn) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(dn.clone());
        }
        let dn = admin.group_dn(group).await?;
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, dn.clone());
        Ok(dn)
    }

    fn forget(&self, tenant_id: &str, group: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&(tenant_id.to_owned(), group.to_owned()));
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<(), AdminError>>;

/// Group removals waiting to be made. Each change to a big group rewrites its member list
/// (on Active Directory including the removed links it keeps), so removals that fall due
/// together are made in one change: the first revocation that finds none in flight takes every
/// queued removal of its group, the others wait for its answer.
#[derive(Default)]
struct Removals {
    queue: std::sync::Mutex<std::collections::HashMap<String, Vec<(String, Reply)>>>,
    leader: tokio::sync::Mutex<()>,
}

impl Removals {
    async fn remove(&self, admin: &DirectoryAdmin, group: &str, member: &str) -> Result<(), AdminError> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let key = group.to_lowercase();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .push((member.to_owned(), tx));
        loop {
            tokio::select! {
                biased;
                answer = &mut rx => {
                    return answer.unwrap_or_else(|_| Err(AdminError::Unavailable("the group change was abandoned".into())));
                }
                _guard = self.leader.lock() => {
                    let batch = self.queue.lock().unwrap_or_else(|e| e.into_inner()).remove(&key).unwrap_or_default();
                    if batch.is_empty() {
                        continue;
                    }
                    let members: Vec<String> = batch.iter().map(|(m, _)| m.clone()).collect();
                    let result = admin.remove_members(group, &members).await;
                    for (_, reply) in batch {
                        let _ = reply.send(result.clone());
                    }
                }
            }
        }
    }
}

impl DirectoryProvider {
    /// An open connection for the tenant: a pooled one (`true`) or a new one.
    async fn checkout(&self, tenant_id: &str, config: &DirectoryConfig) -> Result<(DirectoryAdmin, bool), StepError> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).get_mut(tenant_id).and_then(Vec::pop);
        match pooled {
            Some(admin) => Ok((admin, true)),
            None => Ok((DirectoryAdmin::connect(config).await.map_err(step_error)?, false)),
        }
    }

    /// Keep a connection that just worked for the next step.
    async fn checkin(&self, tenant_id: &str, admin: DirectoryAdmin) {
        let spare = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let conns = pool.entry(tenant_id.to_owned()).or_default();
            if conns.len() < POOL_MAX {
                conns.push(admin);
                None
            } else {
                Some(admin)
            }
        };
        if let Some(admin) = spare {
            admin.close().await;
        }
    }
}

/// Whether a step failed because the connection itself is gone (a pooled connection the
/// directory closed): worth one more try on a new connection at once.
fn connection_lost(e: &StepError) -> bool {
    matches!(e, StepError::Retry(_))
}

/// The tenant's directory and its directory policy.
async fn settings(state: &AppState, grant: &JitGrant) -> Result<(DirectoryConfig, JitPolicy), StepError> {
    let tenant = state.store().tenant_by_id(&grant.tenant_id).await.map_err(|e| StepError::Retry(e.to_string()))?;
    let directory = state
        .config()
        .directory_for(&tenant.slug)
        .cloned()
        .ok_or_else(|| StepError::Refused(format!("tenant {} has no [[directory]] configured", tenant.slug)))?;
    let policy = state
        .config()
        .jit
        .policy(&tenant.slug, ProviderKind::Directory)
        .cloned()
        .ok_or_else(|| StepError::Refused(format!("tenant {} has no directory JIT policy", tenant.slug)))?;
    Ok((directory, policy))
}

fn step_error(e: AdminError) -> StepError {
    match e {
        AdminError::Unavailable(m) => StepError::Retry(m),
        AdminError::Refused(m) => StepError::Refused(m),
    }
}

async fn grant(
    provider: &DirectoryProvider,
    state: &AppState,
    grant: &JitGrant,
    password: &SecretString,
) -> Result<Progress, StepError> {
    let (directory, policy) = settings(state, grant).await?;
    let (mut admin, pooled) = provider.checkout(&grant.tenant_id, &directory).await?;
    let mut result = put_in_place(&mut admin, &policy, grant, password).await;
    if pooled && matches!(&result, Err((e, false)) if connection_lost(e)) {
        admin.close().await;
        admin = DirectoryAdmin::connect(&directory).await.map_err(step_error)?;
        result = put_in_place(&mut admin, &policy, grant, password).await;
    }
    let result = match result {
        Err((StepError::Refused(why), created)) => {
            // Nothing half-done: take away whatever this step did, then report the refusal.
            match undo(&mut admin, &policy, grant, created).await {
                Ok(()) => Err(StepError::Refused(why)),
                Err(e) => Err(StepError::Retry(format!("{why}; undoing it failed too: {e}"))),
            }
        }
        Err((e, _)) => Err(e),
        Ok(()) => Ok(Progress::Done),
    };
    if result.is_ok() {
        provider.checkin(&grant.tenant_id, admin).await;
    } else {
        admin.close().await;
    }
    result
}

/// Create or re-enable the account, set the password, add it to the group. On failure also
/// says whether this step created the account.
async fn put_in_place(
    admin: &mut DirectoryAdmin,
    policy: &JitPolicy,
    grant: &JitGrant,
    password: &SecretString,
) -> Result<(), (StepError, bool)> {
    let fail = |created: bool| move |e: AdminError| (step_error(e), created);
    let group = admin.group_dn(&policy.admin_group).await.map_err(fail(false))?;
    let (dn, created) = match admin.find_account(&grant.account_name).await.map_err(fail(false))? {
        Some(found) => (found.dn, false),
        None => {
            let ou = policy.accounts_ou.as_deref().unwrap_or_default();
            let description = format!("Latchkey just-in-time tech account of {}", grant.requester);
            (admin.create_account(ou, &grant.account_name, &description).await.map_err(fail(false))?, true)
        }
    };
    admin.set_password_and_state(&dn, password, Some(true)).await.map_err(fail(created))?;
    admin.add_member(&group, &dn).await.map_err(fail(created))?;
    Ok(())
}

/// Take away what a refused grant step did: out of the group, disabled, and deleted when this
/// step created it.
async fn undo(
    admin: &mut DirectoryAdmin,
    policy: &JitPolicy,
    grant: &JitGrant,
    created: bool,
) -> Result<(), AdminError> {
    let Some(found) = admin.find_account(&grant.account_name).await? else { return Ok(()) };
    if let Ok(group) = admin.group_dn(&policy.admin_group).await {
        admin.remove_member(&group, &found.dn).await?;
    }
    admin.set_enabled(&found.dn, false).await?;
    if created {
        admin.delete_account(&found.dn).await?;
    }
    Ok(())
}

async fn revoke(provider: &DirectoryProvider, state: &AppState, grant: &JitGrant) -> Result<Progress, StepError> {
    let (directory, policy) = settings(state, grant).await?;
    let (mut admin, pooled) =
        provider.checkout(&grant.tenant_id, &directory).await.map_err(|e| StepError::Retry(step_text(e)))?;
    let mut result = take_away(provider, &mut admin, &policy, grant).await;
    if pooled && matches!(result, Err(AdminError::Unavailable(_))) {
        admin.close().await;
        admin = DirectoryAdmin::connect(&directory).await.map_err(|e| StepError::Retry(e.to_string()))?;
        result = take_away(provider, &mut admin, &policy, grant).await;
    }
    if result.is_err() {
        provider.groups.forget(&grant.tenant_id, &policy.admin_group);
    }
    match result {
        Ok(()) => {
            provider.checkin(&grant.tenant_id, admin).await;
            Ok(Progress::Done)
        }
        Err(e) => {
            admin.close().await;
            // Revocation never gives up: a refusal is retried like an outage.
            Err(StepError::Retry(e.to_string()))
        }
    }
}

fn step_text(e: StepError) -> String {
    match e {
        StepError::Retry(m) | StepError::Refused(m) => m,
    }
}

async fn take_away(
    provider: &DirectoryProvider,
    admin: &mut DirectoryAdmin,
    policy: &JitPolicy,
    grant: &JitGrant,
) -> Result<(), AdminError> {
    let started = std::time::Instant::now();
    let Some(found) = admin.find_account(&grant.account_name).await? else { return Ok(()) };
    let found_at = started.elapsed();
    // Out of the group (made together with the other removals falling due at the same time)
    // and disabled with a random password (one change) at once, pipelined on the connection.
    let group = provider.groups.get(admin, &grant.tenant_id, &policy.admin_group).await?;
    let random = super::password::generate().map_err(AdminError::Refused)?;
    let shared = &*admin;
    let out_of_group = async {
        let result = provider.removals.remove(shared, &group, &found.dn).await;
        (result, started.elapsed())
    };
    let (out, disabled) = tokio::join!(out_of_group, shared.set_password_and_state(&found.dn, &random, Some(false)));
    let (out, out_at) = out;
    out?;
    disabled?;
    tracing::debug!(
        find_ms = found_at.as_millis() as u64,
        out_of_group_ms = out_at.as_millis() as u64,
        disabled_ms = started.elapsed().as_millis() as u64,
        "revoked in the directory"
    );
    match policy.on_revoke {
        OnRevoke::Delete => admin.delete_account(&found.dn).await,
        OnRevoke::Disable => Ok(()),
    }
}

impl Provider for DirectoryProvider {
    fn grant<'a>(
        &'a self,
        state: &'a AppState,
        g: &'a JitGrant,
        password: &'a SecretString,
    ) -> BoxFuture<'a, Result<Progress, StepError>> {
        Box::pin(grant(self, state, g, password))
    }

    fn revoke<'a>(&'a self, state: &'a AppState, g: &'a JitGrant) -> BoxFuture<'a, Result<Progress, StepError>> {
        Box::pin(revoke(self, state, g))
    }

    fn granted_comment(&self, grant: &JitGrant) -> String {
        format!(
            "The tech account {} is now enabled and has been added to Domain Admins until {} (requested by {}: {}).",
            grant.account_name,
            rfc3339(grant.end_at),
            grant.requester,
            grant.reason
        )
    }

    fn revoked_comment(&self, grant: &JitGrant) -> String {
        format!(
            "The tech account {}'s access has been revoked: it was removed from Domain Admins and disabled.",
            grant.account_name
        )
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
