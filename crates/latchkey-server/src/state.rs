//! What every request handler shares.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use latchkey_core::model::{AdminToken, Tenant};
use latchkey_store::StoreError;

use latchkey_core::Clock;
use latchkey_crypto::Keyring;
use latchkey_store::Store;

use crate::metrics::Metrics;

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    keyring: Arc<RwLock<Keyring>>,
    key_file: PathBuf,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    /// The server's HPKE key pair: agents seal passwords to its public half.
    sealing: latchkey_crypto::SealingKey,
    /// Tenants by slug. Tenants are never renamed or deleted, so an entry never goes stale.
    tenants: RwLock<HashMap<String, Tenant>>,
    /// Admin tokens by keyed hash, each with when it was read from the store.
    tokens: RwLock<HashMap<[u8; 32], (AdminToken, std::time::Instant)>>,
    /// Each tenant's rule index.
    access: crate::access_cache::AccessCache,
    /// The validated configuration.
    config: Arc<crate::config::Config>,
    /// Password hashing for people signing in.
    argon2: Arc<crate::password_check::Argon2Pool>,
    /// Application access tokens recently read.
    app_tokens: crate::app_token_cache::AppTokenCache,
    /// Wakes the just-in-time engine (a grant to carry out now).
    jit_wake: Arc<tokio::sync::Notify>,
    /// What the web UI keeps in memory.
    web: crate::web::WebState,
}

/// How long a token read from the store is trusted without reading it again: a token revoked
/// in the store (by this or another server) stops working within this time. Expiry is checked
/// on every request.
const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Entries kept at most; the cache is emptied when full.
const TOKEN_CACHE_MAX: usize = 10_000;

impl AppState {
    pub fn new(
        store: Store,
        keyring: Keyring,
        key_file: PathBuf,
        sealing: latchkey_crypto::SealingKey,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        config: Arc<crate::config::Config>,
    ) -> Self {
        let argon2 = Arc::new(crate::password_check::Argon2Pool::new(config.sign_in.max_concurrent_hashes));
        Self(Arc::new(Inner {
            store,
            keyring: Arc::new(RwLock::new(keyring)),
            key_file,
            clock,
            metrics,
            sealing,
            tenants: RwLock::new(HashMap::new()),
            tokens: RwLock::new(HashMap::new()),
            access: crate::access_cache::AccessCache::default(),
            config,
            argon2,
            app_tokens: Default::default(),
            jit_wake: Arc::new(tokio::sync::Notify::new()),
            web: crate::web::WebState::default(),
        }))
    }

    /// What the web UI keeps in memory.
    pub fn web(&self) -> &crate::web::WebState {
        &self.0.web
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn clock(&self) -> &dyn Clock {
        self.0.clock.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The validated configuration.
    pub fn config(&self) -> &crate::config::Config {
        &self.0.config
    }

    /// Password hashing for people signing in.
    pub fn argon2(&self) -> &Arc<crate::password_check::Argon2Pool> {
        &self.0.argon2
    }

    /// Wakes the just-in-time engine.
    pub fn jit_wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.0.jit_wake
    }

    /// Application access tokens recently read.
    pub fn app_tokens(&self) -> &crate::app_token_cache::AppTokenCache {
        &self.0.app_tokens
    }

    /// Each tenant's rule index.
    pub fn access(&self) -> &crate::access_cache::AccessCache {
        &self.0.access
    }

    /// The server's sealing key pair.
    pub fn sealing(&self) -> &latchkey_crypto::SealingKey {
        &self.0.sealing
    }

    pub fn key_file(&self) -> &PathBuf {
        &self.0.key_file
    }

    /// The tenant with this slug, from memory after the first lookup.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant, StoreError> {
        if let Some(t) = self.0.tenants.read().unwrap_or_else(|e| e.into_inner()).get(slug) {
            return Ok(t.clone());
        }
        let tenant = self.0.store.tenant_by_slug(slug).await?;
        self.0.tenants.write().unwrap_or_else(|e| e.into_inner()).insert(slug.to_owned(), tenant.clone());
        Ok(tenant)
    }

    /// The live admin token with this keyed hash. Unknown tokens always go to the store.
    pub async fn admin_token(&self, hash: &[u8; 32]) -> Result<AdminToken, StoreError> {
        let now = self.clock().now();
        let cached = self
            .0
            .tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(t, _)| t.clone());
        if let Some(t) = cached {
            return match t.expires_at {
                Some(exp) if exp <= now => Err(StoreError::NotFound),
                _ => Ok(t),
            };
        }
        let token = self.0.store.admin_token_by_hash(hash, now).await?;
        let mut tokens = self.0.tokens.write().unwrap_or_else(|e| e.into_inner());
        if tokens.len() >= TOKEN_CACHE_MAX {
            tokens.clear();
        }
        tokens.insert(*hash, (token.clone(), std::time::Instant::now()));
        Ok(token)
    }

    /// The keyring, shared with closures that seal inside the store's transaction.
    pub fn keyring_handle(&self) -> Arc<RwLock<Keyring>> {
        self.0.keyring.clone()
    }

    /// Read access to the keyring. Never held across an await.
    pub fn keyring(&self) -> RwLockReadGuard<'_, Keyring> {
        self.0.keyring.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the keyring (adding and retiring keys).
    pub fn keyring_mut(&self) -> RwLockWriteGuard<'_, Keyring> {
        self.0.keyring.write().unwrap_or_else(|e| e.into_inner())
    }
}
