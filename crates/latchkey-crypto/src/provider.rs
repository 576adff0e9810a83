//! The key-encryption-key provider abstraction.

use zeroize::Zeroizing;

use crate::CryptoError;

/// A key-encryption-key provider: wraps and unwraps data keys. The local key
/// file ([`crate::Keyring`]) is one implementation; an external KMS can follow.
pub trait KeyProvider: Send + Sync {
    /// The id of the key new data keys are wrapped under.
    fn active_key_id(&self) -> String;
    /// Wraps `data_key` under key `key_id`, authenticating `aad`.
    fn wrap(&self, key_id: &str, data_key: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Unwraps a data key wrapped by [`KeyProvider::wrap`] with the same key
    /// id and `aad`; fails with [`CryptoError::Decrypt`] if either differs or
    /// the bytes were altered, and [`CryptoError::UnknownKey`] for an unknown id.
    fn unwrap(&self, key_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError>;
}
