//! The error type shared by every operation in this crate.

/// Why a cryptographic operation failed. No variant ever carries key bytes,
/// plaintext or other secret material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file is unusable; the message names its path and the problem.
    #[error("{0}")]
    KeyFile(String),
    /// No key with this id is known to the key provider.
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The envelope cannot be parsed.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// Authentication failed: wrong key, wrong binding, or tampered data.
    #[error("decryption failed: wrong key, wrong binding or tampered data")]
    Decrypt,
    /// Reading or writing a file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The active key cannot be retired; make another key active first.
    #[error("cannot retire the active key")]
    ActiveKey,
    /// The key provider refused or failed an operation (for example an
    /// external KMS being unreachable, or a key id it cannot record).
    #[error("key provider error: {0}")]
    Provider(String),
    /// Password hashing failed (the message comes from the hasher and holds
    /// no password bytes).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
}
