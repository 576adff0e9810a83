//! Password hashing with Argon2id.
//!
//! These functions are CPU-heavy (tens of milliseconds): async callers run
//! them on a blocking thread.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use zeroize::Zeroizing;

use crate::CryptoError;

/// A hash of a random, discarded password with the default parameters, used
/// only if hashing a fresh one at startup fails (it cannot in practice).
const FALLBACK_DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$RiyzFPXwoUjjMomxfGUekg$0N9oCYFXhr5iP10ajOHNiXyOLL/D9sGRJ1+T29/d0O8";

/// Argon2id (argon2 crate defaults: m=19456 KiB, t=2, p=1) PHC string with a
/// random 128-bit salt.
pub fn hash_password(password: &[u8]) -> Result<String, CryptoError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| CryptoError::PasswordHash(e.to_string()))
}

/// Whether `password` matches the PHC string; the final comparison is in
/// constant time. A malformed PHC string gives `false`.
pub fn verify_password(password: &[u8], phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password, &hash).is_ok(),
        Err(_) => false,
    }
}

/// A PHC string for a random password, to verify against when the user is
/// unknown (same cost, so timing does not reveal who exists). Computed once.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut password = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(password.as_mut());
        hash_password(password.as_ref()).unwrap_or_else(|_| FALLBACK_DUMMY_HASH.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(phc: &str) -> (String, Option<u32>, Option<u32>, Option<u32>) {
        let hash = PasswordHash::new(phc).unwrap();
        let get = |name: &str| hash.params.get_decimal(name);
        (hash.algorithm.to_string(), get("m"), get("t"), get("p"))
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let phc = hash_password(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(b"correct horse", &phc));
        assert!(!verify_password(b"correct hors", &phc));
        assert!(!verify_password(b"Correct horse", &phc));
        assert!(!verify_password(b"", &phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_password(b"same").unwrap();
        let b = hash_password(b"same").unwrap();
        assert_ne!(a, b);
        assert!(verify_password(b"same", &a) && verify_password(b"same", &b));
    }

    #[test]
    fn malformed_phc_is_false() {
        let phc = hash_password(b"pw").unwrap();
        for bad in ["", "not a hash", "$argon2id$", &phc[..phc.len() - 10], &phc.replace("argon2id", "nope")] {
            assert!(!verify_password(b"pw", bad), "{bad:?}");
        }
    }

    #[test]
    fn dummy_hash_has_the_same_cost_and_is_stable() {
        let dummy = dummy_password_hash();
        assert_eq!(params(dummy), params(&hash_password(b"x").unwrap()));
        assert_eq!(params(dummy), ("argon2id".to_owned(), Some(19456), Some(2), Some(1)));
        assert!(std::ptr::eq(dummy, dummy_password_hash()));
        assert!(!verify_password(b"", dummy));
        assert!(!verify_password(b"password", dummy));
    }

    #[test]
    fn fallback_dummy_hash_has_the_same_cost() {
        assert_eq!(params(FALLBACK_DUMMY_HASH), params(dummy_password_hash()));
    }
}
