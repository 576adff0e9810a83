//! What can go wrong talking to a directory. Messages name the directory's URL and its answer,
//! never a password.

/// Why a directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A setting is wrong; fix the configuration.
    #[error("directory configuration: {0}")]
    Config(String),
    /// The directory could not be reached, or stopped answering (network, timeouts).
    #[error("cannot reach the directory: {0}")]
    Unavailable(String),
    /// The TLS handshake failed, e.g. the server's certificate is not signed by the CA.
    #[error("TLS with the directory failed: {0}")]
    Tls(String),
    /// The directory refused the service account's bind.
    #[error("the directory refused the service account: {0}")]
    ServiceBind(String),
    /// A search failed (e.g. a base DN that does not exist).
    #[error("directory search failed: {0}")]
    Search(String),
}

impl DirectoryError {
    /// Whether the directory itself could not be used (down, unreachable, TLS), as opposed to
    /// a configuration or data problem.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DirectoryError::Unavailable(_) | DirectoryError::Tls(_))
    }
}

/// Why a password check against the directory did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// Wrong password, a disabled, locked or expired account, or an empty password (refused
    /// before any bind).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// No account with this name (or more than one); callers answer it like
    /// `InvalidCredentials`.
    #[error("no such account")]
    NotFound,
    /// The directory could not be used: network, TLS, timeouts, or the service account.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
}

impl From<DirectoryError> for BindError {
    fn from(e: DirectoryError) -> Self {
        BindError::Unavailable(e.to_string())
    }
}
