//! Enrolled devices' public keys, kept in memory so a check-in's signature can be verified
//! without a read. A kept key is never trusted on its own: the check-in's transaction compares
//! it with the device's row ([`Store::check_in`]) and drops it when they differ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::rows::get;
use crate::{Store, StoreError};

/// Most keys kept (about 200 bytes each); beyond that an arbitrary one makes room.
const MAX_KEYS: usize = 262_144;

/// An enrolled device's public signing key (base64url) and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKey {
    pub tenant_id: Arc<str>,
    pub public_key: Arc<str>,
    /// Taken from memory rather than read now: when a signature does not verify with it, read
    /// the key again ([`Store::forget_agent_key`]) before refusing.
    pub cached: bool,
}

/// The keys kept, by device id.
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: Mutex<HashMap<String, AgentKey>>,
}

impl KeyCache {
    fn get(&self, device_id: &str) -> Option<AgentKey> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(device_id).map(|k| AgentKey { cached: true, ..k.clone() })
    }

    fn put(&self, device_id: &str, key: &AgentKey) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_KEYS
            && !keys.contains_key(device_id)
            && let Some(victim) = keys.keys().next().cloned()
        {
            keys.remove(&victim);
        }
        keys.insert(device_id.to_owned(), key.clone());
    }

    pub(crate) fn forget(&self, device_id: &str) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(device_id);
    }
}

impl Store {
    /// The public key and tenant of an enrolled device (`NotFound` when there is none), to
    /// verify a signed request before anything is written. Served from memory when it was read
    /// before (see [`AgentKey::cached`]).
    pub async fn agent_key(&self, device_id: &str) -> Result<AgentKey, StoreError> {
        if let Some(key) = self.agent_keys.get(device_id) {
            return Ok(key);
        }
        let row = sqlx::query("SELECT tenant_id, agent_public_key FROM devices WHERE id = $1")
            .bind(device_id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        let public_key = get::<Option<String>>(&row, "agent_public_key")?.ok_or(StoreError::NotFound)?;
        let key = AgentKey {
            tenant_id: get::<String>(&row, "tenant_id")?.into(),
            public_key: public_key.into(),
            cached: false,
        };
        self.agent_keys.put(device_id, &key);
        Ok(key)
    }

    /// Drop a device's key from memory, so the next [`Store::agent_key`] reads it.
    pub fn forget_agent_key(&self, device_id: &str) {
        self.agent_keys.forget(device_id);
    }
}
