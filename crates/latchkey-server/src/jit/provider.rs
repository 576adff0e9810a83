//! What grants and takes away the access: the [`Provider`] trait and how its steps end.

use futures::future::BoxFuture;
use latchkey_store::JitGrant;
use secrecy::SecretString;

use crate::state::AppState;

/// How a provider step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Done.
    Done,
    /// Handed to someone else (a device agent's job); look again later.
    Waiting { job: String },
}

/// Why a provider step did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The system could not be reached; the engine tries again with backoff.
    Retry(String),
    /// The system refused; trying again will not help. A refused grant step has undone what it
    /// did before it returns this.
    Refused(String),
}

/// Grants and takes away access. Every step is idempotent: it may run again after a crash
/// or a retry, and finding the work already done is success.
pub trait Provider: Send + Sync {
    /// Put the access in place with the grant's temporary password.
    fn grant<'a>(
        &'a self,
        state: &'a AppState,
        grant: &'a JitGrant,
        password: &'a SecretString,
    ) -> BoxFuture<'a, Result<Progress, StepError>>;

    /// Take the access away.
    fn revoke<'a>(&'a self, state: &'a AppState, grant: &'a JitGrant) -> BoxFuture<'a, Result<Progress, StepError>>;

    /// The ticket comment when the access is in place.
    fn granted_comment(&self, grant: &JitGrant) -> String;

    /// The ticket comment when the access was taken away.
    fn revoked_comment(&self, grant: &JitGrant) -> String;
}
