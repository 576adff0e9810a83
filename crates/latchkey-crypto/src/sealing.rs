//! Sealing to the server's public key: the agent encrypts a new password so
//! that only the server can read it, on top of TLS.
//!
//! The scheme is HPKE (RFC 9180) in base mode, single shot, with the suite
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305 (suite ids
//! 0x0020, 0x0001, 0x0003), implemented by the `hpke` crate.
//!
//! # Sealed blob
//!
//! ```text
//! offset  size  field
//! 0       32    encapsulated key (the sender's ephemeral X25519 public key)
//! 32      rest  ChaCha20-Poly1305 ciphertext || 16-byte tag
//! ```
//!
//! A blob is at least [`SEALED_OVERHEAD`] (48) and at most
//! [`MAX_SEALED_LEN`] (64 KiB) bytes long; anything else is refused with
//! [`CryptoError::Malformed`] before any cryptography runs.
//!
//! `info` names the context (e.g. `b"latchkey/agent/password/v1"`) and `aad`
//! binds the seal to its place (device id, account, version): opening with a
//! different `info` or `aad` fails with [`CryptoError::Decrypt`].

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpke::aead::{AeadTag, ChaCha20Poly1305};
use hpke::inout::InOutBuf;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, HpkeError, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::keypair_file::{self, KeyPair};

type SuiteKem = X25519HkdfSha256;
type SuiteKdf = HkdfSha256;
type SuiteAead = ChaCha20Poly1305;
type PrivateKey = <SuiteKem as Kem>::PrivateKey;
type PublicKey = <SuiteKem as Kem>::PublicKey;
type EncappedKey = <SuiteKem as Kem>::EncappedKey;

/// Length of the encapsulated key at the start of a sealed blob.
pub const ENCAPPED_KEY_LEN: usize = 32;
/// Length of the AEAD tag at the end of a sealed blob.
const TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its plaintext; also the shortest possible blob.
pub const SEALED_OVERHEAD: usize = ENCAPPED_KEY_LEN + TAG_LEN;
/// The longest sealed blob accepted, 64 KiB (so plaintexts up to
/// `MAX_SEALED_LEN - SEALED_OVERHEAD` bytes).
pub const MAX_SEALED_LEN: usize = 64 * 1024;

/// The server's sealing key pair (X25519), kept in its own file beside the
/// key file. Its `Debug` output shows the public key only; the secret key is
/// zeroized when dropped.
pub struct SealingKey {
    secret: PrivateKey,
    public: SealingPublicKey,
}

impl SealingKey {
    /// Load the sealing key file, or create it with a fresh key pair. Same
    /// rules as [`Keyring::load_or_create`](crate::Keyring::load_or_create):
    /// JSON, mode 0600, parent directory created 0700, written atomically;
    /// a file that is group/world-accessible or corrupt is refused with
    /// [`CryptoError::KeyFile`] naming the path and the problem. Returns
    /// `(key, created)`.
    ///
    /// ```json
    /// {"version":1,"kind":"latchkey-sealing-x25519",
    ///  "public_key":"<base64url>","secret_key":"<base64>"}
    /// ```
    pub fn load_or_create(path: &Path) -> Result<(SealingKey, bool), CryptoError> {
        keypair_file::load_or_create(path)
    }

    /// A fresh random key pair (from the operating system's RNG).
    pub fn generate() -> SealingKey {
        let (secret, public) = SuiteKem::gen_keypair();
        SealingKey::from_parts(secret, &public)
    }

    /// The public key that agents seal to.
    pub fn public_key(&self) -> SealingPublicKey {
        self.public.clone()
    }

    /// Open a blob made by [`seal_to`] for this key with the same `info` and
    /// `aad`. A blob shorter than [`SEALED_OVERHEAD`] or longer than
    /// [`MAX_SEALED_LEN`] is [`CryptoError::Malformed`]; a wrong key, `info`
    /// or `aad`, or any altered byte is [`CryptoError::Decrypt`].
    pub fn open(&self, info: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        check_sealed_len(sealed.len())?;
        let (enc, rest) = sealed.split_at(ENCAPPED_KEY_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let enc = EncappedKey::from_bytes(enc).map_err(|_| CryptoError::Malformed("bad encapsulated key"))?;
        let tag = AeadTag::<SuiteAead>::from_bytes(tag).map_err(|_| CryptoError::Malformed("bad tag"))?;
        // Decrypt in place inside a zeroizing buffer, so the plaintext never
        // sits in memory that is not wiped.
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        hpke::single_shot_open_inout_detached::<SuiteAead, SuiteKdf, SuiteKem>(
            &OpModeR::Base,
            &self.secret,
            &enc,
            info,
            InOutBuf::from(plaintext.as_mut_slice()),
            aad,
            &tag,
        )
        .map_err(|_| CryptoError::Decrypt)?;
        Ok(plaintext)
    }

    fn from_parts(secret: PrivateKey, public: &PublicKey) -> SealingKey {
        let mut bytes = [0u8; 32];
        public.write_exact(&mut bytes);
        SealingKey { secret, public: SealingPublicKey(bytes) }
    }
}

impl KeyPair for SealingKey {
    const KIND: &'static str = "latchkey-sealing-x25519";

    fn generate() -> Self {
        SealingKey::generate()
    }

    fn from_secret(secret: &[u8; 32]) -> Option<Self> {
        // Clamps the scalar, as RFC 9180 requires; only a wrong length (ruled
        // out by the array type) is an error.
        let secret = PrivateKey::from_bytes(secret).ok()?;
        let public = SuiteKem::sk_to_pk(&secret);
        Some(SealingKey::from_parts(secret, &public))
    }

    fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        self.secret.write_exact(bytes.as_mut_slice());
        bytes
    }

    fn public_bytes(&self) -> [u8; 32] {
        self.public.0
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey").field("public_key", &self.public).field("secret_key", &"<redacted>").finish()
    }
}

/// The server's sealing public key (32 bytes, X25519). On the wire it is
/// base64url without padding; `Debug` shows that form.
#[derive(Clone, PartialEq, Eq)]
pub struct SealingPublicKey([u8; 32]);

impl SealingPublicKey {
    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base64url without padding (43 characters).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// From 32 raw bytes; the low-order points that X25519 cannot seal to are
    /// refused with [`CryptoError::Malformed`].
    pub fn from_bytes(bytes: [u8; 32]) -> Result<SealingPublicKey, CryptoError> {
        let key = SealingPublicKey(bytes);
        seal_to(&key, b"latchkey/sealing/key-check", b"", b"")?;
        Ok(key)
    }

    /// Parse the base64url form (padding not allowed). Anything that is not
    /// exactly 32 bytes, and the low-order points that X25519 cannot seal to,
    /// are refused with [`CryptoError::Malformed`].
    pub fn from_base64url(text: &str) -> Result<SealingPublicKey, CryptoError> {
        if text.len() > 64 {
            return Err(CryptoError::Malformed("sealing public key is too long"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CryptoError::Malformed("sealing public key is not valid base64url"))?;
        let bytes: [u8; 32] =
            raw.try_into().map_err(|_| CryptoError::Malformed("sealing public key is not 32 bytes long"))?;
        let key = SealingPublicKey(bytes);
        // A low-order point gives an all-zero shared secret whatever the
        // sender's ephemeral key, so a trial encapsulation finds it.
        seal_to(&key, b"latchkey/sealing/key-check", b"", b"")?;
        Ok(key)
    }
}

impl fmt::Debug for SealingPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SealingPublicKey").field(&self.to_base64url()).finish()
    }
}

/// HPKE base-mode single-shot seal: output = encapsulated key (32 bytes) ||
/// ciphertext. `info` names the context (e.g. `b"latchkey/agent/password/v1"`),
/// `aad` binds the seal to its place (device id, account, version).
///
/// A plaintext longer than `MAX_SEALED_LEN - SEALED_OVERHEAD` bytes, or a
/// recipient key that is a low-order point, is refused with
/// [`CryptoError::Malformed`].
pub fn seal_to(
    recipient: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.len() > MAX_SEALED_LEN - SEALED_OVERHEAD {
        return Err(CryptoError::Malformed("plaintext too long to seal"));
    }
    let pk = PublicKey::from_bytes(&recipient.0).map_err(|_| CryptoError::Malformed("bad sealing public key"))?;
    let (enc, ciphertext) =
        hpke::single_shot_seal::<SuiteAead, SuiteKdf, SuiteKem>(&OpModeS::Base, &pk, info, plaintext, aad).map_err(
            |e| match e {
                HpkeError::EncapError => CryptoError::Malformed("sealing public key is a low-order point"),
                _ => CryptoError::Malformed("cannot seal this plaintext"),
            },
        )?;
    let mut out = Vec::with_capacity(ENCAPPED_KEY_LEN + ciphertext.len());
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn check_sealed_len(len: usize) -> Result<(), CryptoError> {
    if len < SEALED_OVERHEAD {
        return Err(CryptoError::Malformed("sealed blob is too short"));
    }
    if len > MAX_SEALED_LEN {
        return Err(CryptoError::Malformed("sealed blob is too long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_encapped_key_then_ciphertext_and_tag() {
        let key = SealingKey::generate();
        let sealed = seal_to(&key.public_key(), b"i", b"a", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + SEALED_OVERHEAD);
        // The encapsulated key is a fresh ephemeral public key each time.
        let again = seal_to(&key.public_key(), b"i", b"a", b"hello").unwrap();
        assert_ne!(sealed[..ENCAPPED_KEY_LEN], again[..ENCAPPED_KEY_LEN]);
        assert_eq!(key.open(b"i", b"a", &sealed).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn secret_survives_serialization() {
        let key = SealingKey::generate();
        let copy = SealingKey::from_secret(&key.secret_bytes()).unwrap();
        assert_eq!(copy.public_key(), key.public_key());
        let sealed = seal_to(&key.public_key(), b"", b"", b"x").unwrap();
        assert_eq!(copy.open(b"", b"", &sealed).unwrap().as_slice(), b"x");
    }

    #[test]
    fn low_order_recipients_are_refused() {
        // 0, 1 and the order-8 point: X25519 gives an all-zero secret.
        let mut order8 = [0u8; 32];
        hex_into("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", &mut order8);
        let mut one = [0u8; 32];
        one[0] = 1;
        for bytes in [[0u8; 32], one, order8] {
            let key = SealingPublicKey(bytes);
            assert!(matches!(seal_to(&key, b"", b"", b"x"), Err(CryptoError::Malformed(_))));
            assert!(matches!(SealingPublicKey::from_base64url(&key.to_base64url()), Err(CryptoError::Malformed(_))));
        }
    }

    fn hex_into(hex: &str, out: &mut [u8; 32]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
    }
}
