//! HMAC-SHA256 with domain separation, for storing high-entropy secrets.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// HMAC-SHA256 under `key` of `u64 BE label length || label || data`, so
/// hashes made for one purpose never match hashes made for another.
pub(crate) fn keyed_hash(key: &[u8; 32], label: &str, data: &[u8]) -> [u8; 32] {
    // HMAC zero-pads keys shorter than the hash block (RFC 2104), so padding
    // here is the same function as HMAC under the 32-byte key, without the
    // fallible variable-length constructor.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new((&*block).into());
    mac.update(&(label.len() as u64).to_be_bytes());
    mac.update(label.as_bytes());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_hmac_sha256_under_the_32_byte_key() {
        let key = [0x5au8; 32];
        let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        reference.update(&5u64.to_be_bytes());
        reference.update(b"label");
        reference.update(b"data");
        let want: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(keyed_hash(&key, "label", b"data"), want);
    }

    #[test]
    fn label_and_data_are_not_interchangeable() {
        let key = [1u8; 32];
        assert_ne!(keyed_hash(&key, "ab", b"c"), keyed_hash(&key, "a", b"bc"));
        assert_ne!(keyed_hash(&key, "", b"x"), keyed_hash(&key, "x", b""));
    }
}
