//! The key file on disk: its JSON format, validation, and loading and saving
//! a [`Keyring`].
//!
//! ```json
//! {"version":1,"active":"k-...","mac_key":"<base64>",
//!  "keys":[{"id":"k-...","created_at":123,"key":"<base64 32 bytes>"}]}
//! ```
//!
//! Base64 is the standard alphabet with padding. Error messages name the
//! file and the problem but never echo file contents that could be key
//! material.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;
use crate::atomic::{self, IfExists};
use crate::keyring::{Kek, Keyring, unix_now};

/// The only key file format version.
const FILE_VERSION: u32 = 1;
/// Key files larger than this are refused (a real one is a few KiB).
const MAX_FILE_LEN: u64 = 1 << 20;

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    version: u32,
    active: String,
    mac_key: String,
    keys: Vec<KeyRepr>,
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct KeyRepr {
    id: String,
    created_at: i64,
    key: String,
}

impl Keyring {
    /// Load the key file, or create it (mode 0600, parent dir created,
    /// written atomically: temp file + fsync + rename) with one fresh key and
    /// a MAC key. Returns `(keyring, created)`. If another process creates
    /// the file at the same moment, its file wins and is loaded.
    pub fn load_or_create(path: &Path) -> Result<(Keyring, bool), CryptoError> {
        if let Some(bytes) = read_key_file(path)? {
            return Ok((parse(path, &bytes)?, false));
        }
        let ring = Keyring::generate(unix_now());
        let bytes = ring.to_json()?;
        let created =
            atomic::write_private(path, &bytes, IfExists::Keep).map_err(|e| io_context(e, "creating", path))?;
        if created { Ok((ring, true)) } else { Ok((Keyring::load(path)?, false)) }
    }

    /// Load an existing key file. A file that is not valid, has a
    /// wrong-length key, duplicate ids, no/unknown active key, or is readable
    /// by group/others (unix mode & 0o077 != 0) is refused with
    /// [`CryptoError::KeyFile`] naming the path and the problem. A file that
    /// cannot be read at all gives [`CryptoError::Io`].
    pub fn load(path: &Path) -> Result<Keyring, CryptoError> {
        match read_key_file(path)? {
            Some(bytes) => parse(path, &bytes),
            None => Err(io_context(io::Error::from(io::ErrorKind::NotFound), "reading", path)),
        }
    }

    /// Write the key file atomically with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), CryptoError> {
        let bytes = self.to_json()?;
        atomic::write_private(path, &bytes, IfExists::Replace).map(|_| ()).map_err(|e| io_context(e, "writing", path))
    }

    fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let repr = FileRepr {
            version: FILE_VERSION,
            active: self.active.clone(),
            mac_key: encode(&self.mac_key),
            keys: self
                .keys
                .iter()
                .map(|k| KeyRepr { id: k.id.clone(), created_at: k.created_at, key: encode(&k.key) })
                .collect(),
        };
        // Reserve enough up front that the buffer never reallocates and
        // leaves stray copies of key material behind.
        let mut out = Zeroizing::new(Vec::with_capacity(512 + 256 * self.keys.len()));
        serde_json::to_writer_pretty(&mut *out, &repr)
            .map_err(|_| CryptoError::KeyFile("cannot serialize the key file".to_owned()))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// Base64 of a key into a string sized so it never reallocates.
fn encode(key: &[u8; 32]) -> String {
    let mut s = String::with_capacity(48);
    STANDARD.encode_string(key, &mut s);
    s
}

/// Reads the key file after checking its permissions; `None` if it does not
/// exist.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, CryptoError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_context(e, "opening", path)),
    };
    let meta = file.metadata().map_err(|e| io_context(e, "inspecting", path))?;
    if !meta.is_file() {
        return Err(problem(path, "is not a regular file"));
    }
    check_mode(path, &meta)?;
    if meta.len() > MAX_FILE_LEN {
        return Err(problem(path, "is too large to be a key file"));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1));
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(|e| io_context(e, "reading", path))?;
    Ok(Some(bytes))
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(problem(
            path,
            &format!(
                "has mode {mode:04o}, which gives group or others access; \
                 it must be 0600 (chmod 600 {})",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), CryptoError> {
    Ok(())
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Keyring, CryptoError> {
    let repr: FileRepr = serde_json::from_slice(bytes).map_err(|e| json_problem(path, &e))?;
    if repr.version != FILE_VERSION {
        return Err(problem(path, &format!("has unsupported version {} (expected {FILE_VERSION})", repr.version)));
    }
    if repr.keys.is_empty() {
        return Err(problem(path, "contains no keys"));
    }
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(repr.keys.len());
    for (n, k) in repr.keys.iter().enumerate() {
        if !valid_id(&k.id) {
            return Err(problem(
                path,
                &format!("key #{} has an invalid id (must be 1 to 255 printable ASCII characters)", n + 1),
            ));
        }
        if !seen.insert(k.id.as_str()) {
            return Err(problem(path, &format!("has duplicate key id {}", k.id)));
        }
        let what = format!("key {}", k.id);
        keys.push(Kek { id: k.id.clone(), created_at: k.created_at, key: decode_key(path, &what, &k.key)? });
    }
    if repr.active.is_empty() {
        return Err(problem(path, "has no active key"));
    }
    if !seen.contains(repr.active.as_str()) {
        let shown = if valid_id(&repr.active) { repr.active.as_str() } else { "(invalid id)" };
        return Err(problem(path, &format!("names active key {shown}, which is not one of its keys")));
    }
    let mac_key = decode_key(path, "mac_key", &repr.mac_key)?;
    Ok(Keyring { active: repr.active.clone(), keys, mac_key })
}

fn decode_key(path: &Path, what: &str, b64: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let mut raw = Zeroizing::new(Vec::with_capacity(base64::decoded_len_estimate(b64.len())));
    STANDARD.decode_vec(b64, &mut raw).map_err(|_| problem(path, &format!("{what} is not valid base64")))?;
    if raw.len() != 32 {
        return Err(problem(path, &format!("{what} has the wrong length ({} bytes, expected 32)", raw.len())));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&raw);
    Ok(key)
}

fn valid_id(id: &str) -> bool {
    (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Describes a JSON error by kind and position only: serde's own messages can
/// quote values from the file, which may be key material.
pub(crate) fn json_problem(path: &Path, e: &serde_json::Error) -> CryptoError {
    use serde_json::error::Category;
    let at = format!("line {} column {}", e.line(), e.column());
    let what = match e.classify() {
        Category::Eof => "is not valid JSON (it ends too early; truncated?)".to_owned(),
        Category::Syntax => format!("is not valid JSON (syntax error at {at})"),
        Category::Io => "could not be read as JSON".to_owned(),
        Category::Data => {
            let msg = e.to_string();
            // These messages hold only field names, never values.
            if msg.starts_with("missing field") || msg.starts_with("unknown field") {
                let msg = msg.split(" at line").next().unwrap_or("");
                format!("does not match the key file format ({msg} at {at})")
            } else {
                format!("does not match the key file format (wrong type or value at {at})")
            }
        }
    };
    problem(path, &what)
}

pub(crate) fn problem(path: &Path, what: &str) -> CryptoError {
    CryptoError::KeyFile(format!("key file {} {what}", path.display()))
}

pub(crate) fn io_context(e: io::Error, action: &str, path: &Path) -> CryptoError {
    CryptoError::Io(io::Error::new(e.kind(), format!("{action} key file {}: {e}", path.display())))
}
