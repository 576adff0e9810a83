//! Checking a person's password: against the stored Argon2id hash for local users, or by a
//! bind to the tenant's directory for users synced from LDAP / Active Directory.
//!
//! Argon2id runs off the async workers (`spawn_blocking`), bounded by a semaphore. A person
//! who does not exist, is disabled or has no password is checked against a dummy hash of the
//! same cost, so the answer takes as long as a wrong password of a real user.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use latchkey_store::{SignInMethod, SignInRecord};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Why a password could not be checked (as opposed to being wrong).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The directory did not answer; the attempt does not count as a failure.
    #[error("directory unavailable: {0}")]
    DirectoryUnavailable(String),
    /// Hashing could not run (the blocking pool is gone).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Checks a sign-in password of a person.
pub trait PasswordCheck: Send + Sync {
    /// How a session opened by this check is recorded.
    fn method(&self) -> SignInMethod;

    /// Whether `password` is `user`'s password. `None` stands for a person who may not sign
    /// in (unknown, disabled): the check still costs what a real one costs and answers `false`.
    fn check<'a>(
        &'a self,
        user: Option<&'a SignInRecord>,
        password: &'a SecretString,
    ) -> BoxFuture<'a, Result<bool, CheckError>>;
}

/// Argon2id hashing and verification off the async workers, a bounded number at a time.
pub struct Argon2Pool {
    permits: Semaphore,
    verifications: AtomicU64,
}

impl Argon2Pool {
    /// A pool running at most `max_concurrent` hashes at once.
    pub fn new(max_concurrent: usize) -> Self {
        Self { permits: Semaphore::new(max_concurrent.max(1)), verifications: AtomicU64::new(0) }
    }

    /// The Argon2id PHC string of a new password.
    pub async fn hash(&self, password: &SecretString) -> Result<String, CheckError> {
        let _permit = self.permits.acquire().await.map_err(|e| CheckError::Hashing(e.to_string()))?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || latchkey_crypto::hash_password(password.expose_secret().as_bytes()))
            .await
            .map_err(|e| CheckError::Hashing(e.to_string()))?
            .map_err(|e| CheckError::Hashing(e.to_string()))
    }

    /// Whether `password` matches `phc`; `None` verifies against the dummy hash and answers
    /// `false`, at the same cost.
    pub async fn verify(&self, password: &SecretString, phc: Option<&str>) -> Result<bool, CheckError> {
        let _permit = self.permits.acquire().await.map_err(|e| CheckError::Hashing(e.to_string()))?;
        let password = password.clone();
        let (phc, real) = match phc {
            Some(p) => (p.to_owned(), true),
            None => (latchkey_crypto::dummy_password_hash().to_owned(), false),
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matched = tokio::task::spawn_blocking(move || {
            latchkey_crypto::verify_password(password.expose_secret().as_bytes(), &phc)
        })
        .await
        .map_err(|e| CheckError::Hashing(e.to_string()))?;
        Ok(real && matched)
    }

    /// How many Argon2id verifications ran (real and dummy).
    #[cfg(test)]
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

/// Local users: the password against the stored Argon2id hash.
pub struct LocalPasswordCheck {
    pool: Arc<Argon2Pool>,
}

impl LocalPasswordCheck {
    pub fn new(pool: Arc<Argon2Pool>) -> Self {
        Self { pool }
    }
}

impl PasswordCheck for LocalPasswordCheck {
    fn method(&self) -> SignInMethod {
        SignInMethod::Local
    }

    fn check<'a>(
        &'a self,
        user: Option<&'a SignInRecord>,
        password: &'a SecretString,
    ) -> BoxFuture<'a, Result<bool, CheckError>> {
        Box::pin(async move {
            let phc = user.filter(|u| u.disabled_at.is_none()).and_then(|u| u.password_hash.as_deref());
            self.pool.verify(password, phc).await
        })
    }
}

/// Directory users: a bind to the tenant's directory as the user. The account found must be
/// the one the user was synced from (same directory id) and enabled there.
pub struct DirectoryPasswordCheck {
    config: latchkey_ldap::DirectoryConfig,
}

impl DirectoryPasswordCheck {
    pub fn new(config: latchkey_ldap::DirectoryConfig) -> Self {
        Self { config }
    }
}

impl PasswordCheck for DirectoryPasswordCheck {
    fn method(&self) -> SignInMethod {
        SignInMethod::Ldap
    }

    fn check<'a>(
        &'a self,
        user: Option<&'a SignInRecord>,
        password: &'a SecretString,
    ) -> BoxFuture<'a, Result<bool, CheckError>> {
        Box::pin(async move {
            let Some(user) = user.filter(|u| u.disabled_at.is_none()) else { return Ok(false) };
            match latchkey_ldap::authenticate(&self.config, &user.name, password).await {
                Ok(found) => {
                    let same = match &user.external_id {
                        Some(id) => id.eq_ignore_ascii_case(&found.external_id),
                        None => user.dn.as_deref().is_some_and(|dn| dn.eq_ignore_ascii_case(&found.dn)),
                    };
                    if !same {
                        tracing::warn!(user_id = %user.id, "the directory account that signed in is not the synced one");
                    }
                    Ok(same && !found.disabled)
                }
                Err(latchkey_ldap::BindError::InvalidCredentials | latchkey_ldap::BindError::NotFound) => Ok(false),
                Err(latchkey_ldap::BindError::Unavailable(cause)) => Err(CheckError::DirectoryUnavailable(cause)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(password_hash: Option<String>, disabled: bool) -> SignInRecord {
        SignInRecord {
            id: "u".into(),
            tenant_id: "t".into(),
            name: "alice".into(),
            name_key: "alice".into(),
            display_name: None,
            email: None,
            upn: None,
            source: "local".into(),
            dn: None,
            external_id: None,
            password_hash,
            disabled_at: disabled.then_some(time::OffsetDateTime::UNIX_EPOCH),
        }
    }

    #[tokio::test]
    async fn local_check_runs_one_argon2_verify_for_everyone() {
        let pool = Arc::new(Argon2Pool::new(2));
        let check = LocalPasswordCheck::new(pool.clone());
        let right = SecretString::from("correct horse battery");
        let wrong = SecretString::from("not the password");
        let phc = pool.hash(&right).await.unwrap();
        let alice = record(Some(phc.clone()), false);

        assert!(check.check(Some(&alice), &right).await.unwrap());
        assert_eq!(pool.verifications(), 1);
        assert!(!check.check(Some(&alice), &wrong).await.unwrap());
        assert_eq!(pool.verifications(), 2);
        // Unknown, disabled and password-less people cost one verify each, and never pass,
        // not even with the password the dummy hash was made from.
        assert!(!check.check(None, &right).await.unwrap());
        assert_eq!(pool.verifications(), 3);
        assert!(!check.check(Some(&record(Some(phc), true)), &right).await.unwrap());
        assert_eq!(pool.verifications(), 4);
        assert!(!check.check(Some(&record(None, false)), &right).await.unwrap());
        assert_eq!(pool.verifications(), 5);
    }

    #[tokio::test]
    async fn dummy_verify_uses_the_dummy_hash() {
        let pool = Argon2Pool::new(1);
        let pw = SecretString::from("anything at all");
        assert!(!pool.verify(&pw, None).await.unwrap());
        assert_eq!(pool.verifications(), 1);
        let phc = pool.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(pool.verify(&pw, Some(&phc)).await.unwrap());
    }
}
