//! The two backends: what differs between them (migrations, locking).

use sqlx::AnyPool;

use crate::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A supported database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, one server.
    Sqlite,
    /// PostgreSQL, one or many servers.
    Postgres,
}

impl Backend {
    /// The backend a URL names.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// The backend's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) async fn migrate(self, pool: &AnyPool) -> Result<(), StoreError> {
        let migrator = match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(pool).await.map_err(|e| StoreError::Migrate(e.to_string()))
    }

    /// Opens a write transaction and reads the audit chain head in one round trip. SQLite
    /// takes the write lock at once (so a batch never fails half-way on a lock upgrade);
    /// PostgreSQL locks the head row, so servers sharing the database append one batch at a
    /// time.
    pub(crate) fn begin_and_read_head(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE; SELECT seq, hash FROM audit_head WHERE id = 1",
            Backend::Postgres => "BEGIN; SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        }
    }

    /// Moves the chain head and commits, in one round trip. The values are the store's own
    /// sequence number and hash, written as literals.
    pub(crate) fn move_head_and_commit(self, seq: i64, hash: &[u8; 32]) -> String {
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let literal = match self {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        };
        format!("UPDATE audit_head SET seq = {seq}, hash = {literal} WHERE id = 1; COMMIT")
    }

    /// The `n`th (1-based) bind placeholder of a generated statement. SQLite gets anonymous
    /// `?` (bound by position without a name lookup, which costs a scan of every parameter
    /// name per bind on long statements); PostgreSQL needs `$n`.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${n}"),
        }
    }
}
