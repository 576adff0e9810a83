//! AES-256-GCM with 96-bit nonces, the one AEAD used by this crate.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Nonce length in bytes.
pub(crate) const NONCE_LEN: usize = 12;
/// Authentication tag length in bytes.
pub(crate) const TAG_LEN: usize = 16;

/// A fresh random 96-bit nonce.
pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

/// A fresh random 256-bit key.
pub(crate) fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    key
}

/// Encrypts `msg` with `aad`; returns ciphertext||tag.
pub(crate) fn encrypt(key: &[u8; 32], nonce: &[u8; NONCE_LEN], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .encrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        // Only reachable for messages beyond GCM's 64 GiB limit.
        .map_err(|_| CryptoError::Provider("message too long to encrypt".to_owned()))
}

/// Decrypts ciphertext||tag with `aad`; [`CryptoError::Decrypt`] if
/// authentication fails.
pub(crate) fn decrypt(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    ct: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_aad_is_authenticated() {
        let key = random_key();
        let nonce = random_nonce();
        let ct = encrypt(&key, &nonce, b"hello", b"aad").unwrap();
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_ne!(&ct[..5], b"hello");
        assert_eq!(decrypt(&key, &nonce, &ct, b"aad").unwrap().as_slice(), b"hello");
        assert!(matches!(decrypt(&key, &nonce, &ct, b"aaD"), Err(CryptoError::Decrypt)));
        let other = random_key();
        assert!(matches!(decrypt(&other, &nonce, &ct, b"aad"), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random_nonce(), random_nonce());
        assert_ne!(*random_key(), *random_key());
    }
}
