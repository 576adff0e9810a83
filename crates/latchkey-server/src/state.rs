//! What every request handler shares.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
}

impl AppState {
    pub fn new(store: Store, keyring: Keyring, key_file: PathBuf, clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        Self(Arc::new(Inner {
            store,
            keyring: Arc::new(RwLock::new(keyring)),
            key_file,
            clock,
            metrics,
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
