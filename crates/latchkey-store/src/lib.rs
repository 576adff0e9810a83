//! Latchkey's store: one sqlx implementation over SQLite (embedded default) and PostgreSQL
//! (many servers), with migrations and connection settings per backend.
//!
//! Reads go straight to a pool. Every change goes through the [`writer`]: changes from
//! concurrent requests are committed together (group commit), each with its audit events in
//! the same transaction, and each caller is answered only after the commit that holds its rows.

/// `SELECT <every device column> FROM devices`, for `concat!` with a WHERE clause.
macro_rules! select_devices {
    () => {
        "SELECT id, tenant_id, name, container_dn, os, agent_public_key, enrolled_at, last_seen_at, \
         poll_interval_secs, created_at, reported_version, last_rotated_at, \
         (SELECT COUNT(*) FROM device_jobs j WHERE j.device_id = devices.id AND j.state = 'open') AS open_jobs \
         FROM devices"
    };
}

mod account_policies;
mod accounts;
mod agent_keys;
mod app_tokens;
mod applications;
mod approvals;
mod audit;
mod backend;
mod check_in;
mod clients;
mod credential_resets;
mod credential_view;
mod device_search;
mod devices;
mod directory;
mod directory_sync;
mod enrollment;
mod error;
mod governed_read;
mod jit;
mod local_admin;
mod outbox;
mod roles;
mod rotation;
mod rows;
mod sessions;
mod targets;
mod tenants;
mod tickets;
mod view_rule_cache;
mod writer;

pub use account_policies::{AccountPermission, AccountPolicy, PermittedAccount, PrincipalKind, ViewRule};
pub use accounts::{NewAccount, SealFn, SealedSecret};
pub use agent_keys::AgentKey;
pub use app_tokens::{AppTokenOwner, NewAppToken};
pub use applications::{Application, ApplicationSecret, FailureRule, NewApplication, TokenFailures};
pub use approvals::{ApprovalRequest, ApprovalState, Decision, NoticesFn};
pub use audit::AuditFilter;
pub use backend::Backend;
pub use check_in::{CheckInContext, Decide, QueuedJobs, TOO_MANY_CHECK_INS};
pub use clients::{NewAdminToken, NewApiClient};
pub use credential_resets::{CredentialReset, ResetEnd, ResetState};
pub use credential_view::{CredentialView, ViewOutcome, Viewed};
pub use devices::NewDevice;
pub use directory::{NewGroup, NewUser};
pub use directory_sync::{
    DirectorySyncRun, KindCounts, SyncComputer, SyncCounts, SyncGroup, SyncMember, SyncOutcome, SyncSnapshot, SyncUser,
};
pub use enrollment::{Enrollment, NewEnrollmentToken};
pub use error::StoreError;
pub use governed_read::{GovernedRead, GovernedValue};
pub use jit::{FinishedStep, GrantPasswordEnvelope, JitGrant, NewJitGrant, StepResult};
pub use local_admin::{LocalAdminJob, LocalAdminWork, NewLocalAdminGrant};
pub use outbox::OutboxEntry;
pub use rotation::{
    AdminPasswordState, AgentSnapshot, CheckInWrite, PendingStored, ScopedPolicy, SupportAccount, SupportRequest,
};
pub use sessions::{NewSession, OidcSignIn, Session, SignInFailures, SignInMethod, SignInRecord, sign_in_day};
pub use targets::{AccessSnapshot, NewTarget, Resolution};
pub use tickets::{NewTicketComment, Ticket, TicketComment};

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

/// The store. Cheap to clone; all clones share the pools and the writer.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    writer: writer::Writer,
    agent_keys: std::sync::Arc<agent_keys::KeyCache>,
    view_rules: std::sync::Arc<view_rule_cache::ViewRuleCache>,
}

impl Store {
    /// Open (and migrate) the store at a URL: `sqlite://PATH` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let (read, write) = match backend {
            Backend::Sqlite => {
                let url = sqlite_url(url);
                let write = sqlite_pool(&url, 1, false).await?;
                // Migrate before the read pool opens so it sees the schema.
                backend.migrate(&write).await?;
                (sqlite_pool(&url, 8, true).await?, write)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(StoreError::connect)?;
                backend.migrate(&pool).await?;
                (pool.clone(), pool)
            }
        };
        let writer = writer::Writer::spawn(backend, write);
        let agent_keys = std::sync::Arc::new(agent_keys::KeyCache::spawn(backend, read.clone()));
        Ok(Self { backend, read, writer, agent_keys, view_rules: Default::default() })
    }

    /// Open the embedded SQLite store in a file, creating it if missing.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        Self::open(&format!("sqlite://{}", path.display())).await
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the store answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await.map(|_| ()).map_err(StoreError::db)
    }

    /// Close the pools after the writer has finished its queue.
    pub async fn close(&self) {
        self.writer.close().await;
        self.read.close().await;
    }
}

/// Add `mode=rwc` so SQLite creates the file.
fn sqlite_url(url: &str) -> String {
    if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") }
}

/// A SQLite pool in WAL mode with `synchronous=FULL`; read pools are `query_only`.
async fn sqlite_pool(url: &str, size: u32, read_only: bool) -> Result<AnyPool, StoreError> {
    AnyPoolOptions::new()
        .max_connections(size)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        // An embedded file does not drop connections: skip the ping before every query.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                if read_only {
                    conn.execute("PRAGMA query_only = ON").await?;
                } else {
                    // The writer's page cache survives its own commits (a reader's does not, in
                    // WAL mode): make it large enough to hold the pages check-ins touch.
                    conn.execute("PRAGMA cache_size = -65536").await?;
                    // Savepoints journal the pages they change in memory, not in a file.
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    // Copy the log into the database every ~40 MB rather than every 4 MB: fewer,
                    // larger checkpoints write a page that changed several times in between once.
                    conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(StoreError::connect)
}
