//! Recent [`ViewRule`]s, so an application's repeated views skip the permission query.
//!
//! An entry is used only while nothing has been committed through this store since it was
//! read (the writer's change generation) and for at most [`TTL`], which bounds how long a
//! change made by another server sharing the database takes to apply here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::account_policies::ViewRule;

/// Longest an entry is used.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 50_000;

/// (tenant id, application id, account id)
type Key = (String, String, String);

struct Entry {
    generation: u64,
    read_at: Instant,
    rule: ViewRule,
}

#[derive(Default)]
pub(crate) struct ViewRuleCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl ViewRuleCache {
    /// The rule cached for this key, if it was read at `generation` less than [`TTL`] ago.
    pub(crate) fn get(&self, key: &Key, generation: u64) -> Option<ViewRule> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|e| e.generation == generation && e.read_at.elapsed() < TTL).map(|e| e.rule.clone())
    }

    /// Keep a rule read at `generation` (the generation taken before the read).
    pub(crate) fn put(&self, key: Key, generation: u64, rule: ViewRule) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, Entry { generation, read_at: Instant::now(), rule });
    }
}
