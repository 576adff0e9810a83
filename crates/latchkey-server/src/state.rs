//! What every request handler shares.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use latchkey_core::model::Tenant;
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
    /// Tenants by slug. Tenants are never renamed or deleted, so an entry never goes stale.
    tenants: RwLock<HashMap<String, Tenant>>,
}

impl AppState {
    pub fn new(store: Store, keyring: Keyring, key_file: PathBuf, clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        Self(Arc::new(Inner {
            store,
            keyring: Arc::new(RwLock::new(keyring)),
            key_file,
            clock,
            metrics,
            tenants: RwLock::new(HashMap::new()),
        }))
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

    pub fn key_file(&self) -> &PathBuf {
        &self.0.key_file
    }

    /// The tenant with this slug, from memory after the first lookup.
    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant, StoreError> {
        if let Some(t) = self.0.tenants.read().unwrap_or_else(|e| e.into_inner()).get(slug) {
            return Ok(t.clone());
        }
        let tenant = self.0.store.tenant_by_slug(slug).await?;
        self.0
            .tenants
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slug.to_owned(), tenant.clone());
        Ok(tenant)
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
