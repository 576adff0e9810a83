//! The credential reset worker: carries out the resets scheduled after a view ("reset after
//! showing") when they are due.
//!
//! - device admin accounts: a rotation is queued for the device's agent (two-phase, as every
//!   rotation);
//! - generic accounts: a new password (and a new key of the same algorithm when the account
//!   holds one) becomes the active version, and a webhook notice tells the systems that use the
//!   account to apply it out of band;
//! - directory accounts: a new password is stored as the active version first (so no password
//!   that may be set is ever lost), then set in the tenant's directory over LDAP.
//!
//! Resets are claimed with a lease (several servers never run one twice at once); a failed
//! attempt is retried with a growing delay, then given up with its error recorded.

use std::time::Duration as StdDuration;

use latchkey_core::app_notices::CredentialsResetNotice;
use latchkey_core::model::{Account, AccountKind, SecretState};
use latchkey_core::{Action, NewAuditEvent, Notification, ObjectType, Outcome};
use latchkey_crypto::PasswordSpec;
use latchkey_store::{CredentialReset, ResetEnd, StoreError};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::state::AppState;
use crate::{ssh_keys, vault};

/// The actor of resets in the audit log.
pub const RESET_ACTOR: &str = "system:credential-reset";
/// How often the worker looks for due resets.
const TICK: StdDuration = StdDuration::from_secs(5);
/// How long a claimed reset is left to its worker.
const LEASE: time::Duration = time::Duration::minutes(5);
/// Attempts before a reset is given up.
const MAX_ATTEMPTS: i64 = 5;
/// Resets claimed per round.
const BATCH: i64 = 16;
/// Rounds between deletions of expired application tokens (about a minute).
const PURGE_EVERY: u64 = 12;

/// The running worker.
pub struct ResetTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ResetTask {
    /// Run rounds every few seconds until stopped.
    pub fn spawn(state: AppState) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut round = 0u64;
            loop {
                if let Err(e) = run_once(&state, state.clock().now()).await {
                    tracing::warn!(error = %e, "credential reset worker cannot read its work");
                }
                // Expired application tokens are of no use: drop them now and then.
                round += 1;
                if round.is_multiple_of(PURGE_EVERY)
                    && let Err(e) = state.store().purge_app_tokens(state.clock().now() - time::Duration::hours(1)).await
                {
                    tracing::warn!(error = %e, "cannot delete expired application tokens");
                }
                tokio::select! {
                    _ = tokio::time::sleep(TICK) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Self { stop, task }
    }

    /// Stop after the current round (waiting a few seconds at most; a reset in progress is
    /// claimed again when its lease ends).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(StdDuration::from_secs(5), self.task).await.is_err() {
            abort.abort();
        }
    }
}

/// One round: claim the resets due at `now` and carry each out. Returns how many were handled.
pub async fn run_once(state: &AppState, now: time::OffsetDateTime) -> Result<usize, StoreError> {
    if !state.store().credential_resets_due(now).await? {
        return Ok(0);
    }
    let claimed = state.store().claim_due_resets(now, LEASE, BATCH).await?;
    let handled = claimed.len();
    for (reset, account) in claimed {
        if let Err(e) = reset_one(state, &reset, &account).await {
            tracing::error!(error = %e, reset = %reset.id, "a credential reset could not be recorded; it will be retried");
        }
    }
    Ok(handled)
}

fn event(state: &AppState, account: &Account, action: Action) -> NewAuditEvent {
    NewAuditEvent::new(state.clock().now(), RESET_ACTOR, action, ObjectType::Account)
        .tenant(account.tenant_id.clone())
        .object(account.id.clone())
}

/// Why an attempt failed, and whether trying again may help.
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Self { message: message.into(), retry: true }
    }

    fn fatal(message: impl Into<String>) -> Self {
        Self { message: message.into(), retry: false }
    }
}

async fn reset_one(state: &AppState, reset: &CredentialReset, account: &Account) -> Result<(), StoreError> {
    let done = match account.kind {
        AccountKind::DeviceAdmin => reset_device(state, reset, account).await,
        AccountKind::Generic => reset_generic(state, reset, account).await,
        AccountKind::Directory => reset_directory(state, reset, account).await,
        AccountKind::Support => Err(Failure::fatal("support accounts are not reset: they expire on their own")),
    };
    let Err(failure) = done else { return Ok(()) };
    let now = state.clock().now();
    tracing::warn!(reset = %reset.id, account = %account.id, error = %failure.message, "credential reset failed");
    let end = if failure.retry && reset.attempts < MAX_ATTEMPTS {
        let delay = time::Duration::minutes(1) * (1_i32 << (reset.attempts - 1).clamp(0, 10));
        ResetEnd::Retry { at: now + delay, error: failure.message.clone() }
    } else {
        ResetEnd::Failed { error: failure.message.clone() }
    };
    let failed = event(state, account, Action::CredentialsReset).outcome(Outcome::Failed).details(&serde_json::json!({
        "reset": reset.id, "attempt": reset.attempts, "error": failure.message,
        "willRetry": matches!(end, ResetEnd::Retry { .. }),
    }));
    state.store().finish_reset(&reset.id, end, now, failed).await
}

async fn reset_device(state: &AppState, reset: &CredentialReset, account: &Account) -> Result<(), Failure> {
    let device = account.device_id.as_deref().ok_or_else(|| Failure::fatal("the account has no device"))?;
    let now = state.clock().now();
    let job = state
        .store()
        .request_rotation(&account.tenant_id, device, now, event(state, account, Action::RotationRequest))
        .await
        .map_err(|e| Failure::retry(format!("cannot queue the rotation: {e}")))?;
    let done = event(state, account, Action::CredentialsReset)
        .details(&serde_json::json!({ "reset": reset.id, "device": device, "job": job.id }));
    state.store().finish_reset(&reset.id, ResetEnd::Done, now, done).await.map_err(|e| Failure::retry(e.to_string()))
}

fn new_password() -> Result<SecretString, Failure> {
    latchkey_crypto::generate_password(&PasswordSpec::default())
        .ok_or_else(|| Failure::fatal("password generation failed"))
}

async fn reset_generic(state: &AppState, reset: &CredentialReset, account: &Account) -> Result<(), Failure> {
    let (had_password, old_key) = match state.store().active_secret(&account.tenant_id, &account.id).await {
        Ok((_, active)) => {
            let opened = vault::open_version(&state.keyring(), &active)
                .map_err(|e| Failure::fatal(format!("the current credentials cannot be opened: {e}")))?;
            (opened.password.is_some(), opened.ssh_key)
        }
        Err(StoreError::NotFound) => (true, None),
        Err(e) => return Err(Failure::retry(e.to_string())),
    };
    let password = if had_password || old_key.is_none() {
        Some(Zeroizing::new(new_password()?.expose_secret().to_owned()))
    } else {
        None
    };
    let key = match old_key {
        Some(pem) => {
            let comment = account.name.clone();
            let fresh = tokio::task::spawn_blocking(move || ssh_keys::regenerate(&pem, &comment))
                .await
                .map_err(|e| Failure::retry(e.to_string()))?
                .map_err(|e| Failure::fatal(e.to_string()))?;
            Some(fresh)
        }
        None => None,
    };
    let has_key = key.is_some();
    store_new(
        state,
        reset,
        account,
        password,
        key,
        if has_key {
            "apply the new password and SSH key where the account is used (read them through the API)"
        } else {
            "apply the new password where the account is used (read it through the API)"
        },
    )
    .await
}

/// The new secret as the active version, the reset done, its event and the webhook notice.
async fn store_new(
    state: &AppState,
    reset: &CredentialReset,
    account: &Account,
    password: Option<Zeroizing<String>>,
    key: Option<Zeroizing<String>>,
    action: &str,
) -> Result<(), Failure> {
    let now = state.clock().now();
    let tenant = state.store().tenant_by_id(&account.tenant_id).await.map_err(|e| Failure::retry(e.to_string()))?;
    let seal = vault::seal_fn(state.keyring_handle(), account.tenant_id.clone(), account.id.clone(), password, key);
    let notice = Notification::CredentialsReset(CredentialsResetNotice {
        tenant_slug: tenant.slug,
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        account_kind: account.kind.as_str().to_owned(),
        version: None,
        at: now,
        action: action.to_owned(),
    });
    state
        .store()
        .reset_with_new_secret(
            &reset.id,
            account,
            seal,
            vec![notice],
            now,
            event(state, account, Action::CredentialsReset),
        )
        .await
        .map(|_| ())
        .map_err(|e| Failure::retry(e.to_string()))
}

async fn reset_directory(state: &AppState, reset: &CredentialReset, account: &Account) -> Result<(), Failure> {
    let tenant = state.store().tenant_by_id(&account.tenant_id).await.map_err(|e| Failure::retry(e.to_string()))?;
    let Some(directory) = state.config().directory_for(&tenant.slug).cloned() else {
        return Err(Failure::fatal(format!("no directory is configured for tenant {}", tenant.slug)));
    };
    let password = new_password()?;
    // Stored first: every password that may be set in the directory is in the history.
    let kept = Zeroizing::new(password.expose_secret().to_owned());
    let seal = vault::seal_fn(state.keyring_handle(), account.tenant_id.clone(), account.id.clone(), Some(kept), None);
    let stored = event(state, account, Action::SecretSet).details(&serde_json::json!({ "reset": reset.id }));
    state
        .store()
        .add_secret_version(&account.tenant_id, &account.id, SecretState::Active, None, seal, stored)
        .await
        .map_err(|e| Failure::retry(e.to_string()))?;
    let mut admin = latchkey_ldap::admin::DirectoryAdmin::connect(&directory)
        .await
        .map_err(|e| Failure { retry: e.is_retryable(), message: e.to_string() })?;
    let set = async {
        let found = admin
            .find_account(&account.name)
            .await
            .map_err(|e| Failure { retry: e.is_retryable(), message: e.to_string() })?
            .ok_or_else(|| Failure::fatal(format!("no account {} in the directory", account.name)))?;
        admin
            .set_password(&found.dn, &password)
            .await
            .map_err(|e| Failure { retry: e.is_retryable(), message: e.to_string() })
    }
    .await;
    admin.close().await;
    set?;
    let now = state.clock().now();
    let done = event(state, account, Action::CredentialsReset)
        .details(&serde_json::json!({ "reset": reset.id, "directory": true }));
    state.store().finish_reset(&reset.id, ResetEnd::Done, now, done).await.map_err(|e| Failure::retry(e.to_string()))
}
