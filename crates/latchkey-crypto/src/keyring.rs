//! The local keyring: key-encryption keys and the MAC key, held in memory.
//! Reading and writing the key file lives in `keyfile`.

use std::fmt;

use rand::RngCore;
use rand::rngs::OsRng;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::aead::{self, NONCE_LEN, TAG_LEN};
use crate::{CryptoError, KeyProvider, keyed_hash};

/// Length of a wrapped data key: nonce || 32-byte ciphertext || tag.
const WRAPPED_LEN: usize = NONCE_LEN + 32 + TAG_LEN;

/// The local key file: key-encryption keys (one active, others kept to
/// decrypt until retired) and a separate 256-bit MAC key for keyed hashes.
/// Its `Debug` output shows key ids only, never key bytes. Cloning copies the keys into
/// another zeroizing container (used to change the file atomically: change a copy, save it,
/// then swap).
#[derive(Clone)]
pub struct Keyring {
    pub(crate) active: String,
    pub(crate) keys: Vec<Kek>,
    pub(crate) mac_key: Zeroizing<[u8; 32]>,
}

/// One key-encryption key.
#[derive(Clone)]
pub(crate) struct Kek {
    pub(crate) id: String,
    pub(crate) created_at: i64,
    pub(crate) key: Zeroizing<[u8; 32]>,
}

/// Public facts about one key of a [`Keyring`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Key id, `k-<unix seconds>-<8 hex>`.
    pub id: String,
    /// Whether new data keys are wrapped under this key.
    pub active: bool,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

impl Keyring {
    /// A keyring with one fresh key created at `now_unix` and a fresh MAC key.
    pub(crate) fn generate(now_unix: i64) -> Keyring {
        let mut ring = Keyring { active: String::new(), keys: Vec::new(), mac_key: aead::random_key() };
        ring.add_key(now_unix);
        ring
    }

    /// Build an in-memory keyring with one random key (for tests and benchmarks).
    pub fn ephemeral() -> Keyring {
        Keyring::generate(unix_now())
    }

    /// Add a fresh key and make it active; returns its id. Key ids look like
    /// `k-<unix seconds>-<8 hex>` and are unique within the keyring.
    pub fn add_key(&mut self, now_unix: i64) -> String {
        let id = loop {
            let candidate = format!("k-{now_unix}-{:08x}", OsRng.next_u32());
            if self.find(&candidate).is_none() {
                break candidate;
            }
        };
        self.keys.push(Kek { id: id.clone(), created_at: now_unix, key: aead::random_key() });
        self.active.clone_from(&id);
        id
    }

    /// Remove a non-active key: [`CryptoError::ActiveKey`] for the active one,
    /// [`CryptoError::UnknownKey`] for an unknown id. Envelopes still wrapped
    /// under a retired key can no longer be opened.
    pub fn retire_key(&mut self, id: &str) -> Result<(), CryptoError> {
        if id == self.active {
            return Err(CryptoError::ActiveKey);
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        if self.keys.len() == before {
            return Err(CryptoError::UnknownKey(id.to_owned()));
        }
        Ok(())
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|k| KeyInfo { id: k.id.clone(), active: k.id == self.active, created_at: k.created_at })
            .collect()
    }

    /// HMAC-SHA256 under the MAC key with a domain-separation label, e.g.
    /// `keyed_hash("admin-token", secret_bytes)`. Used to store high-entropy
    /// machine secrets.
    pub fn keyed_hash(&self, label: &str, data: &[u8]) -> [u8; 32] {
        keyed_hash::keyed_hash(&self.mac_key, label, data)
    }

    fn find(&self, id: &str) -> Option<&Kek> {
        self.keys.iter().find(|k| k.id == id)
    }

    fn key(&self, id: &str) -> Result<&Kek, CryptoError> {
        self.find(id).ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))
    }
}

impl KeyProvider for Keyring {
    fn active_key_id(&self) -> String {
        self.active.clone()
    }

    /// Wraps as `nonce || AES-256-GCM(kek, data_key, aad) || tag`.
    fn wrap(&self, key_id: &str, data_key: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let kek = self.key(key_id)?;
        let nonce = aead::random_nonce();
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(&nonce);
        out.extend(aead::encrypt(&kek.key, &nonce, data_key, aad)?);
        Ok(out)
    }

    fn unwrap(&self, key_id: &str, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let kek = self.key(key_id)?;
        if wrapped.len() != WRAPPED_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
        let plain = aead::decrypt(&kek.key, &nonce, ct, aad)?;
        if plain.len() != 32 {
            return Err(CryptoError::Decrypt);
        }
        let mut data_key = Zeroizing::new([0u8; 32]);
        data_key.copy_from_slice(&plain);
        Ok(data_key)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.keys())
            .field("mac_key", &"<redacted>")
            .finish()
    }
}

/// The current time in unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_key_id(id: &str, now: i64) -> bool {
        let Some(hex) = id.strip_prefix(&format!("k-{now}-")) else {
            return false;
        };
        hex.len() == 8 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    #[test]
    fn generated_keyring_has_one_active_key() {
        let ring = Keyring::generate(1_700_000_000);
        let keys = ring.keys();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].active);
        assert_eq!(keys[0].created_at, 1_700_000_000);
        assert!(is_key_id(&keys[0].id, 1_700_000_000), "{}", keys[0].id);
        assert_eq!(ring.active_key_id(), keys[0].id);
    }

    #[test]
    fn add_key_makes_unique_active_keys() {
        let mut ring = Keyring::generate(5);
        let first = ring.active_key_id();
        let mut ids = vec![first.clone()];
        for _ in 0..50 {
            let id = ring.add_key(5);
            assert!(is_key_id(&id, 5), "{id}");
            assert_eq!(ring.active_key_id(), id);
            ids.push(id);
        }
        let mut dedup = ids.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ids.len());
        let infos = ring.keys();
        assert_eq!(infos.iter().map(|k| k.id.clone()).collect::<Vec<_>>(), ids);
        assert_eq!(infos.iter().filter(|k| k.active).count(), 1);
        assert!(infos.last().unwrap().active);
        // Fresh key material every time.
        assert!(ring.keys.windows(2).all(|w| *w[0].key != *w[1].key));
        assert_ne!(*ring.keys[0].key, *ring.mac_key);
    }

    #[test]
    fn retire_rules() {
        let mut ring = Keyring::generate(1);
        let old = ring.active_key_id();
        assert!(matches!(ring.retire_key(&old), Err(CryptoError::ActiveKey)));
        let new = ring.add_key(2);
        match ring.retire_key("k-nope") {
            Err(CryptoError::UnknownKey(id)) => assert_eq!(id, "k-nope"),
            other => panic!("{other:?}"),
        }
        ring.retire_key(&old).unwrap();
        assert_eq!(ring.keys().iter().map(|k| k.id.clone()).collect::<Vec<_>>(), vec![new.clone()]);
        assert!(matches!(ring.retire_key(&old), Err(CryptoError::UnknownKey(_))));
        assert!(matches!(ring.retire_key(&new), Err(CryptoError::ActiveKey)));
    }

    #[test]
    fn wrap_and_unwrap_under_any_known_key() {
        let mut ring = Keyring::generate(1);
        let old = ring.active_key_id();
        ring.add_key(2);
        let dk = [9u8; 32];
        let wrapped = ring.wrap(&old, &dk, b"aad").unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert_eq!(*ring.unwrap(&old, &wrapped, b"aad").unwrap(), dk);
        let active = ring.active_key_id();
        assert!(matches!(ring.unwrap(&active, &wrapped, b"aad"), Err(CryptoError::Decrypt)));
        assert!(matches!(ring.unwrap(&old, &wrapped, b"other"), Err(CryptoError::Decrypt)));
        assert!(matches!(ring.unwrap(&old, &wrapped[..WRAPPED_LEN - 1], b"aad"), Err(CryptoError::Decrypt)));
        assert!(matches!(ring.wrap("k-x", &dk, b""), Err(CryptoError::UnknownKey(_))));
        assert!(matches!(ring.unwrap("k-x", &wrapped, b"aad"), Err(CryptoError::UnknownKey(_))));
    }

    #[test]
    fn keyed_hash_depends_on_label_data_and_key() {
        let a = Keyring::generate(1);
        let b = Keyring::generate(1);
        let h = a.keyed_hash("admin-token", b"secret");
        assert_eq!(h, a.keyed_hash("admin-token", b"secret"));
        assert_ne!(h, a.keyed_hash("agent-token", b"secret"));
        assert_ne!(h, a.keyed_hash("admin-token", b"secreT"));
        assert_ne!(h, b.keyed_hash("admin-token", b"secret"));
        // Rotating the key-encryption keys does not change keyed hashes.
        let mut a = a;
        a.add_key(2);
        assert_eq!(h, a.keyed_hash("admin-token", b"secret"));
    }

    #[test]
    fn debug_shows_ids_but_no_key_bytes() {
        let ring = Keyring::generate(1);
        let text = format!("{ring:?}");
        assert!(text.contains(&ring.active_key_id()));
        assert!(text.contains("redacted"));
        for secret in [&*ring.keys[0].key, &*ring.mac_key] {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret);
            assert!(!text.contains(&format!("{secret:?}")));
            assert!(!text.contains(&format!("{:?}", &secret[..4])[1..10]));
            assert!(!text.contains(&hex));
            assert!(!text.contains(&b64));
        }
    }

    #[test]
    fn unix_now_is_plausible() {
        assert!(unix_now() > 1_600_000_000);
    }
}
