//! Device request signatures: every agent request is signed by the device's
//! Ed25519 key and verified by the server with strict verification
//! (`verify_strict`: canonical signatures only, no small-order keys or
//! points), implemented by the `ed25519-dalek` crate.
//!
//! # What a request signature covers
//!
//! [`request_signing_bytes`] builds the message: the domain label
//! [`REQUEST_SIGNING_LABEL`], then six parts, each as a u32 big-endian
//! length followed by its bytes:
//!
//! 1. the HTTP method, e.g. `POST`;
//! 2. the path with query, e.g. `/api/v1/agent/rotate?x=1`;
//! 3. the device id;
//! 4. the timestamp, unix seconds as a decimal string (`-` for negatives);
//! 5. the nonce;
//! 6. the SHA-256 of the body (always 32 bytes).
//!
//! The length prefixes make the encoding unambiguous: no two different
//! requests give the same bytes.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::keypair_file::{self, KeyPair};

/// The domain label at the start of every request signing message.
pub const REQUEST_SIGNING_LABEL: &[u8] = b"latchkey/agent/request-signature/v1\n";
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An agent's device signing key (Ed25519). Its `Debug` output shows the
/// verifying key only; the secret key is zeroized when dropped.
pub struct DeviceSigningKey(SigningKey);

impl DeviceSigningKey {
    /// A fresh random key (from the operating system's RNG).
    pub fn generate() -> Self {
        DeviceSigningKey(SigningKey::generate(&mut OsRng))
    }

    /// Load the device key file, or create it with a fresh key. Same rules
    /// as [`Keyring::load_or_create`](crate::Keyring::load_or_create): JSON,
    /// mode 0600, parent directory created 0700, written atomically; a file
    /// that is group/world-accessible or corrupt is refused with
    /// [`CryptoError::KeyFile`] naming the path and the problem. Returns
    /// `(key, created)`.
    ///
    /// ```json
    /// {"version":1,"kind":"latchkey-device-ed25519",
    ///  "public_key":"<base64url>","secret_key":"<base64 of the 32-byte seed>"}
    /// ```
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        keypair_file::load_or_create(path)
    }

    /// The public half, which the server stores at enrolment.
    pub fn verifying_key(&self) -> DeviceVerifyingKey {
        DeviceVerifyingKey(self.0.verifying_key())
    }

    /// The Ed25519 signature of `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }

    /// The X25519 secret scalar of this key (unclamped: the first half of SHA-512 of the seed,
    /// as libsodium's `crypto_sign_ed25519_sk_to_curve25519` before clamping); it matches
    /// [`DeviceVerifyingKey::to_montgomery_bytes`]. See [`crate::open_as_device`].
    pub fn to_x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_scalar_bytes())
    }
}

impl KeyPair for DeviceSigningKey {
    const KIND: &'static str = "latchkey-device-ed25519";

    fn generate() -> Self {
        DeviceSigningKey::generate()
    }

    fn from_secret(secret: &[u8; 32]) -> Option<Self> {
        Some(DeviceSigningKey(SigningKey::from_bytes(secret)))
    }

    fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(self.0.as_bytes());
        bytes
    }

    fn public_bytes(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }
}

impl fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSigningKey")
            .field("verifying_key", &self.verifying_key())
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// A device's Ed25519 verifying key. On the wire it is base64url without
/// padding; `Debug` shows that form.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceVerifyingKey(VerifyingKey);

impl DeviceVerifyingKey {
    /// The 32 raw bytes (compressed Edwards point).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Base64url without padding (43 characters).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The X25519 public key this key converts to (the birational map to Curve25519, as
    /// libsodium's `crypto_sign_ed25519_pk_to_curve25519`). See [`crate::seal_to_device`].
    pub fn to_montgomery_bytes(&self) -> [u8; 32] {
        self.0.to_montgomery().to_bytes()
    }

    /// Parse the base64url form (padding not allowed). Anything that is not
    /// exactly 32 bytes, not a valid curve point, or a small-order ("weak")
    /// point is refused with [`CryptoError::Malformed`].
    pub fn from_base64url(text: &str) -> Result<Self, CryptoError> {
        if text.len() > 64 {
            return Err(CryptoError::Malformed("verifying key is too long"));
        }
        let raw =
            URL_SAFE_NO_PAD.decode(text).map_err(|_| CryptoError::Malformed("verifying key is not valid base64url"))?;
        let bytes: [u8; 32] =
            raw.try_into().map_err(|_| CryptoError::Malformed("verifying key is not 32 bytes long"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| CryptoError::Malformed("verifying key is not a curve point"))?;
        if key.is_weak() {
            return Err(CryptoError::Malformed("verifying key is a small-order point"));
        }
        Ok(DeviceVerifyingKey(key))
    }

    /// Strict Ed25519 verification (`verify_strict`). `false` for a wrong
    /// key or message and for any malformed signature (wrong length,
    /// non-canonical scalar, small-order point).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for DeviceVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeviceVerifyingKey").field(&self.to_base64url()).finish()
    }
}

/// The canonical bytes a request signature covers: a domain label, then each
/// part length-prefixed (u32 BE): method, path with query, device id,
/// timestamp (unix seconds as decimal), nonce, SHA-256 of the body.
///
/// Parts are taken as given (no case folding or normalisation): the signer
/// and the verifier must pass the same strings. A part longer than
/// `u32::MAX` bytes (impossible for an HTTP request line) would have its
/// length clamped; callers bound their inputs far below that.
pub fn request_signing_bytes(
    method: &str,
    path_and_query: &str,
    device_id: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let body_hash = Sha256::digest(body);
    let parts: [&[u8]; 6] = [
        method.as_bytes(),
        path_and_query.as_bytes(),
        device_id.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
        body_hash.as_slice(),
    ];
    let len = REQUEST_SIGNING_LABEL.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(REQUEST_SIGNING_LABEL);
    for part in parts {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_bytes_layout() {
        let bytes = request_signing_bytes("POST", "/a?b=1", "dev-1", -5, "n0", b"body");
        let mut expected = REQUEST_SIGNING_LABEL.to_vec();
        for part in [&b"POST"[..], b"/a?b=1", b"dev-1", b"-5", b"n0"] {
            expected.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            expected.extend_from_slice(part);
        }
        expected.extend_from_slice(&[0, 0, 0, 32]);
        expected.extend_from_slice(&Sha256::digest(b"body"));
        assert_eq!(bytes, expected);
        assert_eq!(bytes.capacity(), bytes.len());
    }

    #[test]
    fn secret_survives_serialization() {
        let key = DeviceSigningKey::generate();
        let copy = DeviceSigningKey::from_secret(&key.secret_bytes()).unwrap();
        assert_eq!(copy.verifying_key(), key.verifying_key());
        assert_eq!(copy.sign(b"m"), key.sign(b"m"));
    }
}
