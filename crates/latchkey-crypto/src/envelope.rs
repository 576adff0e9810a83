//! Envelope encryption of single values.
//!
//! Each value is encrypted with its own fresh random 256-bit data key
//! (AES-256-GCM, random 96-bit nonce); the data key is then wrapped by a
//! [`KeyProvider`] key-encryption key. The envelope records which key wrapped
//! it, so keys can be rotated and envelopes re-wrapped without touching the
//! data ciphertext.
//!
//! # Byte format (version 1)
//!
//! ```text
//! offset  size  field
//! 0       1     version = 1
//! 1       1     key id length L (1..=255)
//! 2       L     key id, printable ASCII (0x21..=0x7e)
//! 2+L     2     wrapped data key length W (u16 big-endian, 1..=65535)
//! 4+L     W     wrapped data key (for the local keyring: nonce||ct||tag)
//! 4+L+W   12    data nonce
//! 16+L+W  rest  data ciphertext||16-byte tag (at least 16 bytes)
//! ```
//!
//! The data ciphertext runs to the end of the envelope. A header that is cut
//! short, a version other than 1, an empty or non-ASCII key id, an empty
//! wrapped key, or fewer than 16 bytes of ciphertext is rejected with
//! [`CryptoError::Malformed`]. Bytes appended to or removed from the data
//! ciphertext cannot be told apart structurally; they fail authentication
//! with [`CryptoError::Decrypt`].
//!
//! # Associated data
//!
//! * Data ciphertext: `"latchkey/envelope/data/v1"` || binding encoding.
//! * Wrapped data key: `"latchkey/envelope/wrap/v1"` || binding encoding ||
//!   u64 BE key id length || key id. A wrapped key can therefore be moved
//!   neither to another row, field or version nor under another key id.
//!
//! The binding encoding is described in [`Binding`].

use zeroize::Zeroizing;

use crate::aead::{self, NONCE_LEN, TAG_LEN};
use crate::{Binding, CryptoError, KeyProvider};

/// The only envelope format version.
const VERSION: u8 = 1;
/// Domain label for the data ciphertext's associated data.
const DATA_AAD_LABEL: &[u8] = b"latchkey/envelope/data/v1";
/// Domain label for the wrapped data key's associated data.
const WRAP_AAD_LABEL: &[u8] = b"latchkey/envelope/wrap/v1";

/// Seal plaintext with a fresh random 256-bit data key (AES-256-GCM, random
/// 96-bit nonce), the data key wrapped by the provider's active key.
pub fn seal(provider: &dyn KeyProvider, binding: &Binding, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let key_id = provider.active_key_id();
    check_key_id(&key_id)?;
    let data_key = aead::random_key();
    let nonce = aead::random_nonce();
    let ciphertext = aead::encrypt(&data_key, &nonce, plaintext, &data_aad(binding))?;
    let wrapped = provider.wrap(&key_id, &data_key, &wrap_aad(binding, &key_id))?;
    assemble(&key_id, &wrapped, &nonce, &ciphertext)
}

/// Open an envelope sealed for `binding`; fails with [`CryptoError::Decrypt`]
/// if the binding differs or any byte was altered.
pub fn open(provider: &dyn KeyProvider, binding: &Binding, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let parts = parse(envelope)?;
    let data_key = provider.unwrap(parts.key_id, parts.wrapped, &wrap_aad(binding, parts.key_id))?;
    aead::decrypt(&data_key, &parts.nonce, parts.ciphertext, &data_aad(binding))
}

/// Re-wrap the data key under the provider's active key; the data ciphertext
/// is unchanged. Fails ([`CryptoError::Decrypt`]) if the binding is wrong or
/// the envelope was altered: the data ciphertext is authenticated too, so a
/// damaged envelope never gets a fresh wrapping.
pub fn rewrap(provider: &dyn KeyProvider, binding: &Binding, envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let parts = parse(envelope)?;
    let data_key = provider.unwrap(parts.key_id, parts.wrapped, &wrap_aad(binding, parts.key_id))?;
    drop(aead::decrypt(&data_key, &parts.nonce, parts.ciphertext, &data_aad(binding))?);
    let new_id = provider.active_key_id();
    check_key_id(&new_id)?;
    let wrapped = provider.wrap(&new_id, &data_key, &wrap_aad(binding, &new_id))?;
    assemble(&new_id, &wrapped, &parts.nonce, parts.ciphertext)
}

/// The key id recorded in an envelope.
pub fn envelope_key_id(envelope: &[u8]) -> Result<String, CryptoError> {
    parse(envelope).map(|parts| parts.key_id.to_owned())
}

/// The fields of a parsed envelope, borrowed from it.
struct Parts<'a> {
    key_id: &'a str,
    wrapped: &'a [u8],
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

/// A cursor over the envelope bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CryptoError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(CryptoError::Malformed(what))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CryptoError> {
        let bytes = self.take(N, what)?;
        bytes.try_into().map_err(|_| CryptoError::Malformed(what))
    }
}

fn parse(envelope: &[u8]) -> Result<Parts<'_>, CryptoError> {
    let mut r = Reader(envelope);
    let [version] = r.array::<1>("missing version byte")?;
    if version != VERSION {
        return Err(CryptoError::Malformed("unsupported envelope version"));
    }
    let [id_len] = r.array::<1>("missing key id length")?;
    if id_len == 0 {
        return Err(CryptoError::Malformed("empty key id"));
    }
    let id_bytes = r.take(usize::from(id_len), "truncated key id")?;
    if !id_bytes.iter().all(u8::is_ascii_graphic) {
        return Err(CryptoError::Malformed("key id is not printable ASCII"));
    }
    let key_id = std::str::from_utf8(id_bytes).map_err(|_| CryptoError::Malformed("key id is not ASCII"))?;
    let wrapped_len = u16::from_be_bytes(r.array::<2>("missing wrapped key length")?);
    if wrapped_len == 0 {
        return Err(CryptoError::Malformed("empty wrapped key"));
    }
    let wrapped = r.take(usize::from(wrapped_len), "truncated wrapped key")?;
    let nonce = r.array::<NONCE_LEN>("truncated nonce")?;
    let ciphertext = r.0;
    if ciphertext.len() < TAG_LEN {
        return Err(CryptoError::Malformed("ciphertext shorter than its tag"));
    }
    Ok(Parts { key_id, wrapped, nonce, ciphertext })
}

/// Checks that a provider's key id can be recorded in an envelope.
fn check_key_id(key_id: &str) -> Result<(), CryptoError> {
    let ok = (1..=usize::from(u8::MAX)).contains(&key_id.len()) && key_id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Provider("key id must be 1 to 255 printable ASCII characters".to_owned()))
    }
}

fn assemble(key_id: &str, wrapped: &[u8], nonce: &[u8; NONCE_LEN], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let id_len =
        u8::try_from(key_id.len()).map_err(|_| CryptoError::Provider("key id longer than 255 bytes".to_owned()))?;
    let wrapped_len = u16::try_from(wrapped.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| CryptoError::Provider("wrapped key must be 1 to 65535 bytes".to_owned()))?;
    let mut out = Vec::with_capacity(4 + key_id.len() + wrapped.len() + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.push(id_len);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&wrapped_len.to_be_bytes());
    out.extend_from_slice(wrapped);
    out.extend_from_slice(nonce);
    out.extend_from_slice(ciphertext);
    Ok(out)
}

fn data_aad(binding: &Binding) -> Vec<u8> {
    let mut aad = DATA_AAD_LABEL.to_vec();
    binding.encode_into(&mut aad);
    aad
}

fn wrap_aad(binding: &Binding, key_id: &str) -> Vec<u8> {
    let mut aad = WRAP_AAD_LABEL.to_vec();
    binding.encode_into(&mut aad);
    aad.extend_from_slice(&(key_id.len() as u64).to_be_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::Keyring;

    const B: Binding<'static> = Binding { tenant: "acme", table: "secrets", row: "r-1", field: "password", version: 3 };

    /// A provider whose every key id maps to the same key-encryption key, so
    /// only the associated data can tell key ids apart.
    struct SameKeyProvider {
        kek: [u8; 32],
        active: Mutex<String>,
    }

    impl SameKeyProvider {
        fn new(active: &str) -> Self {
            SameKeyProvider { kek: [7u8; 32], active: Mutex::new(active.to_owned()) }
        }
    }

    impl KeyProvider for SameKeyProvider {
        fn active_key_id(&self) -> String {
            self.active.lock().unwrap().clone()
        }
        fn wrap(&self, _: &str, data_key: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
            let nonce = aead::random_nonce();
            let mut out = nonce.to_vec();
            out.extend(aead::encrypt(&self.kek, &nonce, data_key, aad)?);
            Ok(out)
        }
        fn unwrap(&self, _: &str, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
            let nonce: [u8; NONCE_LEN] = wrapped[..NONCE_LEN].try_into().unwrap();
            let key = aead::decrypt(&self.kek, &nonce, &wrapped[NONCE_LEN..], aad)?;
            Ok(Zeroizing::new(key.as_slice().try_into().unwrap()))
        }
    }

    #[test]
    fn layout_matches_the_documented_format() {
        let ring = Keyring::ephemeral();
        let id = ring.active_key_id();
        let env = seal(&ring, &B, b"hunter2").unwrap();
        assert_eq!(env[0], 1);
        assert_eq!(usize::from(env[1]), id.len());
        assert_eq!(&env[2..2 + id.len()], id.as_bytes());
        let at = 2 + id.len();
        let wlen = usize::from(u16::from_be_bytes([env[at], env[at + 1]]));
        assert_eq!(wlen, NONCE_LEN + 32 + TAG_LEN, "keyring wraps as nonce||ct||tag");
        let tail = &env[at + 2 + wlen + NONCE_LEN..];
        assert_eq!(tail.len(), b"hunter2".len() + TAG_LEN);
        assert_eq!(envelope_key_id(&env).unwrap(), id);
    }

    #[test]
    fn each_seal_uses_a_fresh_key_and_nonce() {
        let ring = Keyring::ephemeral();
        let a = seal(&ring, &B, b"same").unwrap();
        let b = seal(&ring, &B, b"same").unwrap();
        assert_ne!(a, b);
        assert_ne!(a[a.len() - 20..], b[b.len() - 20..]);
    }

    #[test]
    fn malformed_envelopes_are_rejected_before_decryption() {
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &B, b"x").unwrap();
        let id_len = usize::from(env[1]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "missing version byte"),
            (vec![2], "unsupported envelope version"),
            (
                {
                    let mut e = env.clone();
                    e[0] = 0;
                    e
                },
                "unsupported envelope version",
            ),
            (vec![1], "missing key id length"),
            (vec![1, 0], "empty key id"),
            (vec![1, 5, b'a'], "truncated key id"),
            (vec![1, 1, b' '], "key id is not printable ASCII"),
            (vec![1, 1, 0xff], "key id is not printable ASCII"),
            (vec![1, 1, b'k', 0], "missing wrapped key length"),
            (vec![1, 1, b'k', 0, 0, 1], "empty wrapped key"),
            (vec![1, 1, b'k', 0, 3, 1, 2], "truncated wrapped key"),
            (env[..2 + id_len + 2 + 60 + 11].to_vec(), "truncated nonce"),
            (env[..env.len() - 2].to_vec(), "ciphertext shorter than its tag"),
        ];
        for (bytes, want) in cases {
            match envelope_key_id(&bytes) {
                Err(CryptoError::Malformed(got)) => assert_eq!(got, want, "{bytes:?}"),
                other => panic!("{bytes:?}: expected Malformed({want}), got {other:?}"),
            }
            assert!(matches!(open(&ring, &B, &bytes), Err(CryptoError::Malformed(_))));
            assert!(matches!(rewrap(&ring, &B, &bytes), Err(CryptoError::Malformed(_))));
        }
    }

    #[test]
    fn extra_or_missing_ciphertext_bytes_fail_authentication() {
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &B, b"value").unwrap();
        let mut longer = env.clone();
        longer.push(0);
        assert!(matches!(open(&ring, &B, &longer), Err(CryptoError::Decrypt)));
        assert!(matches!(open(&ring, &B, &env[..env.len() - 1]), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &B, b"").unwrap();
        assert!(open(&ring, &B, &env).unwrap().is_empty());
    }

    #[test]
    fn wrapped_key_is_bound_to_its_key_id() {
        let p = SameKeyProvider::new("k-a");
        let env = seal(&p, &B, b"secret").unwrap();
        assert_eq!(open(&p, &B, &env).unwrap().as_slice(), b"secret");
        // Same length id, same key material: only the associated data differs.
        let mut moved = env.clone();
        moved[2..5].copy_from_slice(b"k-b");
        assert_eq!(envelope_key_id(&moved).unwrap(), "k-b");
        assert!(matches!(open(&p, &B, &moved), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn wrapped_key_cannot_be_moved_to_another_row() {
        let ring = Keyring::ephemeral();
        let other = Binding { row: "r-2", ..B };
        let a = seal(&ring, &B, b"one").unwrap();
        let b = seal(&ring, &other, b"two").unwrap();
        // Header (version, id, wrapped key) of `a` with the body of `b`.
        let header_len = 2 + usize::from(a[1]) + 2 + 60;
        let mut spliced = a[..header_len].to_vec();
        spliced.extend_from_slice(&b[header_len..]);
        assert!(matches!(open(&ring, &other, &spliced), Err(CryptoError::Decrypt)));
        assert!(matches!(open(&ring, &B, &spliced), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn rewrap_checks_binding_and_ciphertext() {
        let ring = Keyring::ephemeral();
        let env = seal(&ring, &B, b"value").unwrap();
        let wrong = Binding { version: 4, ..B };
        assert!(matches!(rewrap(&ring, &wrong, &env), Err(CryptoError::Decrypt)));
        let mut tampered = env.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(rewrap(&ring, &B, &tampered), Err(CryptoError::Decrypt)));
        // Re-wrapping under the same active key still yields a new wrapping.
        let again = rewrap(&ring, &B, &env).unwrap();
        assert_ne!(again, env);
        assert_eq!(open(&ring, &B, &again).unwrap().as_slice(), b"value");
    }

    #[test]
    fn rewrap_moves_to_the_providers_new_active_id() {
        let p = SameKeyProvider::new("k-old");
        let env = seal(&p, &B, b"v").unwrap();
        *p.active.lock().unwrap() = "k-newer".to_owned();
        let re = rewrap(&p, &B, &env).unwrap();
        assert_eq!(envelope_key_id(&re).unwrap(), "k-newer");
        assert_eq!(open(&p, &B, &re).unwrap().as_slice(), b"v");
    }

    #[test]
    fn unrecordable_key_ids_are_refused() {
        for bad in ["", "has space", "ключ", &"k".repeat(256)] {
            let p = SameKeyProvider::new(bad);
            assert!(matches!(seal(&p, &B, b"v"), Err(CryptoError::Provider(_))), "{bad:?}");
        }
        let p = SameKeyProvider::new(&"k".repeat(255));
        let env = seal(&p, &B, b"v").unwrap();
        assert_eq!(open(&p, &B, &env).unwrap().as_slice(), b"v");
    }
}
