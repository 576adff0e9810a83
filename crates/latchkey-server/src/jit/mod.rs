//! Just-in-time admin elevation: configuration, the engine that grants and revokes, the
//! providers (directory, device), ticket adapters (built-in, PSA) and the worker that delivers
//! ticket comments.

mod comments;
pub mod config;
mod device;
mod directory;
pub(crate) mod engine;
pub(crate) mod password;
mod provider;
pub(crate) mod tickets;

use std::path::Path;
use std::time::Duration as StdDuration;

pub use config::{JitConfig, JitPolicy, JitPolicyLayer, OnRevoke, TicketsConfig, TicketsLayer};
use tokio::sync::watch;

use crate::state::AppState;

/// How long stopping waits for running steps.
const STOP_GRACE: StdDuration = StdDuration::from_secs(5);

/// The running engine and comment worker.
pub struct JitHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl JitHandle {
    /// Start both for this server; `data_dir` holds the server's node id.
    pub fn spawn(state: AppState, data_dir: &Path) -> Self {
        let node = node_id(data_dir);
        let (stop, stop_rx) = watch::channel(false);
        let engine = engine::Engine::new(state.clone(), node).spawn(stop_rx.clone());
        let comments = comments::spawn(state, stop_rx);
        Self { stop, tasks: vec![engine, comments] }
    }

    /// Stop after the current round (a few seconds at most; claims left behind are released
    /// at the next start or run out).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// This server's id for claims: kept in `DATA_DIR/node-id` so a restart recognises (and
/// releases) its own claims; a random one when the file cannot be written.
fn node_id(data_dir: &Path) -> String {
    let path = data_dir.join("node-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return id.to_owned();
        }
    }
    let id = format!("node-{}", uuid::Uuid::new_v4());
    if let Err(e) = std::fs::write(&path, format!("{id}\n")) {
        tracing::warn!(error = %e, path = %path.display(), "cannot keep the node id; claims of a crashed run wait for their lease");
    }
    id
}

/// A time as RFC 3339 text (for audit details and comments).
pub(crate) fn engine_time(t: time::OffsetDateTime) -> String {
    directory::rfc3339(t)
}

/// Tell a device's agent about an extended end: queue the grant job again with the new end
/// (the agent moves its own end time).
pub(crate) async fn extend_on_device(state: &AppState, grant: &latchkey_store::JitGrant) -> Result<(), String> {
    let device_id = grant.device_id.as_deref().ok_or("the grant names no device")?;
    let password = {
        let ring = state.keyring();
        password::open(&ring, &grant.tenant_id, &grant.id, &grant.password_envelope)?
    };
    let req = crate::local_admin::LocalAdminGrantRequest {
        tenant_id: &grant.tenant_id,
        device_id,
        grant_id: &grant.id,
        username: &grant.account_name,
        password: &password,
        until: grant.end_at,
    };
    let event = latchkey_core::NewAuditEvent::new(
        state.clock().now(),
        "scheduler",
        latchkey_core::Action::LocalAdminGrant,
        latchkey_core::ObjectType::JitGrant,
    )
    .tenant(grant.tenant_id.clone())
    .object(grant.id.clone());
    crate::local_admin::queue_grant(state, req, event).await.map(|_| ()).map_err(|e| e.to_string())
}
