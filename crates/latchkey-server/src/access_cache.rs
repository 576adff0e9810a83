//! Each tenant's rule index, built from the store and kept until the tenant's access
//! generation moves (any server sharing the store may move it).

use std::collections::HashMap;
use std::sync::Arc;

use latchkey_core::access::RuleIndex;
use latchkey_store::{Store, StoreError};
use tokio::sync::Mutex;

/// Rule indexes by tenant id, each with the generation it was built at.
#[derive(Default)]
pub struct AccessCache {
    indexes: std::sync::RwLock<HashMap<String, (i64, Arc<RuleIndex>)>>,
    /// Held while an index is rebuilt, so concurrent requests wait for one rebuild.
    rebuild: Mutex<()>,
}

impl AccessCache {
    /// The tenant's current rule index: one small query when it is fresh, a rebuild when the
    /// tenant's targets or groups changed since it was built.
    pub async fn index(&self, store: &Store, tenant_id: &str) -> Result<Arc<RuleIndex>, StoreError> {
        let generation = store.access_generation(tenant_id).await?;
        if let Some(index) = self.fresh(tenant_id, generation) {
            return Ok(index);
        }
        let _one_at_a_time = self.rebuild.lock().await;
        if let Some(index) = self.fresh(tenant_id, generation) {
            return Ok(index);
        }
        let snap = store.access_snapshot(tenant_id).await?;
        let index = Arc::new(RuleIndex::build(snap.groups, &snap.edges, snap.targets));
        self.indexes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant_id.to_owned(), (snap.generation, index.clone()));
        Ok(index)
    }

    /// The cached index if it was built at `generation` or later.
    fn fresh(&self, tenant_id: &str, generation: i64) -> Option<Arc<RuleIndex>> {
        let indexes = self.indexes.read().unwrap_or_else(|e| e.into_inner());
        indexes.get(tenant_id).filter(|(built, _)| *built >= generation).map(|(_, index)| index.clone())
    }
}
