//! Enrolled devices' public keys, kept in memory so a check-in's signature can be verified
//! without a read. A kept key is never trusted on its own: the check-in's transaction compares
//! it with the device's row ([`Store::check_in`]) and drops it when they differ.
//!
//! Keys not kept yet are read by one task that answers every key asked for meanwhile with one
//! query, so a burst of check-ins from devices not seen since the start costs a few reads
//! rather than one each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use latchkey_crypto::DeviceVerifyingKey;
use sqlx::{AnyPool, AssertSqlSafe};
use tokio::sync::{mpsc, oneshot};

use crate::rows::get;
use crate::{Backend, Store, StoreError};

/// Most keys kept (about 400 bytes each); beyond that an arbitrary one makes room.
const MAX_KEYS: usize = 262_144;
/// Most keys read by one query.
const MAX_LOAD: usize = 128;

/// An enrolled device's public signing key (base64url, and parsed once, so a check-in's
/// verification does not decompress the curve point again) and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentKey {
    pub tenant_id: Arc<str>,
    pub public_key: Arc<str>,
    /// `None` when the stored key is not a valid Ed25519 public key (nothing verifies then).
    pub verifying_key: Option<DeviceVerifyingKey>,
    /// Taken from memory rather than read now: when a signature does not verify with it, read
    /// the key again ([`Store::forget_agent_key`]) before refusing.
    pub cached: bool,
}

/// A device's tenant and public key as stored (`None` for a device that is not enrolled).
type Stored = Option<TenantKey>;
/// A device's tenant and public key (`None` until it enrolls).
type TenantKey = (String, Option<String>);

/// A key asked for, answered by the loading task.
struct Load {
    device_id: String,
    reply: oneshot::Sender<Result<Stored, StoreError>>,
}

/// The keys kept, by device id, and the queue of the task that reads the others.
pub(crate) struct KeyCache {
    keys: Mutex<HashMap<String, AgentKey>>,
    loads: mpsc::Sender<Load>,
}

impl KeyCache {
    /// An empty cache whose misses are read from `pool` by a task spawned now.
    pub(crate) fn spawn(backend: Backend, pool: AnyPool) -> Self {
        let (loads, rx) = mpsc::channel(4 * MAX_LOAD);
        tokio::spawn(load_keys(backend, pool, rx));
        Self { keys: Mutex::default(), loads }
    }

    /// A device's tenant and public key as stored, read together with the keys asked for
    /// at the same time.
    async fn load(&self, device_id: &str) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.loads
            .send(Load { device_id: device_id.to_owned(), reply })
            .await
            .map_err(|_| StoreError::Unavailable("store is shutting down".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("store is shutting down".into()))?
    }

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
        let (tenant_id, public_key) = self.agent_keys.load(device_id).await?.ok_or(StoreError::NotFound)?;
        let public_key = public_key.ok_or(StoreError::NotFound)?;
        let verifying_key = DeviceVerifyingKey::from_base64url(&public_key).ok();
        let key = AgentKey { tenant_id: tenant_id.into(), public_key: public_key.into(), verifying_key, cached: false };
        self.agent_keys.put(device_id, &key);
        Ok(key)
    }

    /// Drop a device's key from memory, so the next [`Store::agent_key`] reads it.
    pub fn forget_agent_key(&self, device_id: &str) {
        self.agent_keys.forget(device_id);
    }
}

/// Answer the keys asked for, each batch of waiting requests with one query.
async fn load_keys(backend: Backend, pool: AnyPool, mut rx: mpsc::Receiver<Load>) {
    let mut batch = Vec::with_capacity(MAX_LOAD);
    while rx.recv_many(&mut batch, MAX_LOAD).await > 0 {
        let loads = std::mem::take(&mut batch);
        match read_keys(backend, &pool, &loads).await {
            Ok(found) => {
                for load in loads {
                    let _ = load.reply.send(Ok(found.get(&load.device_id).cloned()));
                }
            }
            Err(e) => {
                for load in loads {
                    let _ = load.reply.send(Err(same_error(&e)));
                }
            }
        }
    }
}

/// Another copy of `e`, for each request a failed read answers.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt(what) => StoreError::Corrupt(what),
        other => StoreError::Database(other.to_string()),
    }
}

/// The tenant and stored key of each device among `loads` that exists, by device id. The
/// statement is prepared for a power of two of ids (the last repeated), so a few shapes serve
/// every batch.
async fn read_keys(backend: Backend, pool: &AnyPool, loads: &[Load]) -> Result<HashMap<String, TenantKey>, StoreError> {
    let mut ids: Vec<&str> = loads.iter().map(|l| l.device_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let shape = ids.len().next_power_of_two();
    let placeholders: Vec<String> = (1..=shape).map(|i| backend.placeholder(i)).collect();
    // Only placeholders are formatted into the statement; the ids are bound.
    let sql = format!("SELECT id, tenant_id, agent_public_key FROM devices WHERE id IN ({})", placeholders.join(", "));
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for i in 0..shape {
        q = q.bind(ids[i.min(ids.len() - 1)].to_owned());
    }
    let rows = q.fetch_all(pool).await.map_err(StoreError::db)?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        found.insert(get::<String>(&row, "id")?, (get(&row, "tenant_id")?, get(&row, "agent_public_key")?));
    }
    Ok(found)
}
