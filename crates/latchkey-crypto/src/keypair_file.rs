//! Files that hold a single key pair: the server's sealing key
//! ([`SealingKey`](crate::SealingKey)) and an agent's device signing key
//! ([`DeviceSigningKey`](crate::DeviceSigningKey)).
//!
//! ```json
//! {"version":1,"kind":"latchkey-sealing-x25519",
//!  "public_key":"<base64url, no padding, 32 bytes>",
//!  "secret_key":"<base64, 32 bytes>"}
//! ```
//!
//! The secret is in standard base64 with padding, as in the key file; the
//! public key is in the same base64url form that goes on the wire, so an
//! operator can copy it from the file. The file follows the key file's rules:
//! mode 0600, written atomically, refused if group/world-accessible or
//! corrupt, and error messages never echo file contents. A public key that
//! does not belong to the secret key is refused too.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;
use crate::atomic::{self, IfExists};
use crate::keyfile::{io_context, json_problem, problem, read_key_file};

/// The only format version of single key pair files.
const FILE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    version: u32,
    kind: String,
    public_key: String,
    secret_key: String,
}

/// A key pair that can live in a single key pair file.
pub(crate) trait KeyPair: Sized {
    /// The `kind` recorded in the file, e.g. `latchkey-sealing-x25519`.
    const KIND: &'static str;
    /// A fresh random key pair.
    fn generate() -> Self;
    /// The key pair for 32 secret bytes as stored in the file, `None` if
    /// they are not a valid secret key.
    fn from_secret(secret: &[u8; 32]) -> Option<Self>;
    /// The 32 secret bytes to store.
    fn secret_bytes(&self) -> Zeroizing<[u8; 32]>;
    /// The 32 public key bytes.
    fn public_bytes(&self) -> [u8; 32];
}

/// Load the key pair file, or create it (mode 0600, parent directory 0700,
/// written atomically) with a fresh key pair. Returns `(key, created)`. If
/// another process creates the file at the same moment, its file wins.
pub(crate) fn load_or_create<K: KeyPair>(path: &Path) -> Result<(K, bool), CryptoError> {
    if let Some(bytes) = read_key_file(path)? {
        return Ok((parse(path, &bytes)?, false));
    }
    let key = K::generate();
    let bytes = to_json(&key)?;
    let created = atomic::write_private(path, &bytes, IfExists::Keep).map_err(|e| io_context(e, "creating", path))?;
    if created {
        return Ok((key, true));
    }
    match read_key_file(path)? {
        Some(bytes) => Ok((parse(path, &bytes)?, false)),
        None => Err(io_context(std::io::Error::from(std::io::ErrorKind::NotFound), "reading", path)),
    }
}

fn to_json<K: KeyPair>(key: &K) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let secret = key.secret_bytes();
    let mut secret_b64 = String::with_capacity(48);
    STANDARD.encode_string(*secret, &mut secret_b64);
    let repr = FileRepr {
        version: FILE_VERSION,
        kind: K::KIND.to_owned(),
        public_key: URL_SAFE_NO_PAD.encode(key.public_bytes()),
        secret_key: secret_b64,
    };
    // Sized up front so the buffer never reallocates and leaves stray copies
    // of the secret behind.
    let mut out = Zeroizing::new(Vec::with_capacity(512));
    serde_json::to_writer_pretty(&mut *out, &repr)
        .map_err(|_| CryptoError::KeyFile("cannot serialize the key pair file".to_owned()))?;
    out.push(b'\n');
    Ok(out)
}

fn parse<K: KeyPair>(path: &Path, bytes: &[u8]) -> Result<K, CryptoError> {
    let repr: FileRepr = serde_json::from_slice(bytes).map_err(|e| json_problem(path, &e))?;
    if repr.version != FILE_VERSION {
        return Err(problem(path, &format!("has unsupported version {} (expected {FILE_VERSION})", repr.version)));
    }
    if repr.kind != K::KIND {
        return Err(problem(path, &format!("is not a {} key file (its kind field differs)", K::KIND)));
    }
    let secret = decode_32(path, "secret_key", &repr.secret_key, &STANDARD, "base64")?;
    let public = decode_32(path, "public_key", &repr.public_key, &URL_SAFE_NO_PAD, "base64url")?;
    let key = K::from_secret(&secret).ok_or_else(|| problem(path, "has a secret_key that is not a valid key"))?;
    if key.public_bytes() != *public {
        return Err(problem(path, "has a public_key that does not belong to its secret_key"));
    }
    Ok(key)
}

/// Decodes exactly 32 bytes into a zeroizing buffer; the message names the
/// field and the problem, never the value.
fn decode_32(
    path: &Path,
    what: &str,
    text: &str,
    engine: &impl Engine,
    alphabet: &str,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut raw = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(text.len())));
    engine.decode_vec(text, &mut raw).map_err(|_| problem(path, &format!("{what} is not valid {alphabet}")))?;
    if raw.len() != 32 {
        return Err(problem(path, &format!("{what} has the wrong length ({} bytes, expected 32)", raw.len())));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&raw);
    Ok(key)
}
