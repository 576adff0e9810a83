//! Application access tokens recently read from the store, by keyed hash, so a burst of calls
//! with one token costs one lookup. An entry is trusted for a few seconds: a token revoked on
//! another server sharing the store stops working within that time; on this server, disabling
//! or deleting an application forgets its tokens at once. Expiry is checked on every request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use latchkey_store::AppTokenOwner;
use time::OffsetDateTime;

/// How long an entry is trusted.
const TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; the cache is emptied when full.
const MAX: usize = 10_000;

/// The cache.
#[derive(Default)]
pub struct AppTokenCache(RwLock<HashMap<[u8; 32], (AppTokenOwner, Instant)>>);

impl AppTokenCache {
    /// The owner of a token read within the TTL and not expired at `now`.
    pub fn get(&self, hash: &[u8; 32], now: OffsetDateTime) -> Option<AppTokenOwner> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(hash).filter(|(o, at)| at.elapsed() < TTL && o.expires_at > now).map(|(o, _)| o.clone())
    }

    /// Remember a token read from the store.
    pub fn put(&self, hash: [u8; 32], owner: AppTokenOwner) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(hash, (owner, Instant::now()));
    }

    /// Forget every token of an application (disabled or deleted).
    pub fn forget_application(&self, application_id: &str) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (o, _)| o.application_id != application_id);
    }
}
