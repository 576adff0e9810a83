//! The device's local accounts, reached from async code: every call runs the account tools
//! on a blocking thread.

use std::sync::Arc;

use latchkey_agent::{AccountName, LocalAccounts, OsError};

/// The local accounts the agent manages, shared with blocking threads.
#[derive(Clone)]
pub struct Device {
    accounts: Arc<dyn LocalAccounts>,
}

impl Device {
    /// The accounts behind `accounts`.
    pub fn new(accounts: Arc<dyn LocalAccounts>) -> Device {
        Device { accounts }
    }

    /// Run `op` on the accounts on a blocking thread.
    pub async fn run<T, F>(&self, op: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&dyn LocalAccounts) -> Result<T, OsError> + Send + 'static,
    {
        let accounts = Arc::clone(&self.accounts);
        tokio::task::spawn_blocking(move || op(accounts.as_ref()))
            .await
            .map_err(|e| format!("a local account operation did not finish: {e}"))?
            .map_err(|e| e.to_string())
    }

    /// The support accounts present on the device (`ADM-…`), at most `limit`.
    pub async fn support_accounts(&self, limit: usize) -> Result<Vec<String>, String> {
        let names = self.run(|a| a.users_with_prefix(SUPPORT_PREFIX)).await?;
        Ok(names.into_iter().map(AccountName::into_string).take(limit).collect())
    }

    /// Delete an account; a missing one is fine.
    pub async fn delete(&self, name: AccountName) -> Result<(), String> {
        self.run(move |a| a.delete_user(&name)).await
    }
}

/// The name prefix of support accounts.
pub const SUPPORT_PREFIX: &str = "ADM-";
