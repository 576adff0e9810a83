//! Store errors. Database messages stay in the logs; callers see what kind of failure it was.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (or is not in the given tenant).
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule was broken.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The URL names no supported backend.
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(String),
    /// The commit that held this change failed; nothing was changed.
    #[error("commit failed")]
    CommitFailed,
    /// A stored value could not be read back (corruption or a newer schema).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
    /// Sealing the secret failed; nothing was stored.
    #[error("sealing failed: {0}")]
    Seal(String),
    /// The request names something that cannot be used (for example an unknown principal);
    /// the message says what, never a secret.
    #[error("{0}")]
    Invalid(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub(crate) fn db(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict("already exists"),
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                StoreError::Conflict("refers to an object that does not exist")
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }

    pub(crate) fn connect(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
