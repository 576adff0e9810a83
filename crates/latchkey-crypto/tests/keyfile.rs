//! The key file: creation, permissions, round trips and refusal of bad files.

// The helpers below fail the test the way the tests themselves do.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_crypto::{Binding, CryptoError, KeyProvider, Keyring, open, seal};
use serde_json::{Value, json};

const B: Binding<'static> = Binding { tenant: "t", table: "secrets", row: "1", field: "value", version: 1 };

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

/// Writes `contents` as a key file with mode 0600.
fn write_key_file(dir: &Path, contents: &[u8]) -> PathBuf {
    let path = dir.join("keys.json");
    fs::write(&path, contents).unwrap();
    set_mode(&path, 0o600);
    path
}

/// A valid key file's JSON, from a freshly created keyring.
fn valid_json(dir: &Path) -> Value {
    let path = dir.join("valid.json");
    Keyring::load_or_create(&path).unwrap();
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Loads `value` as a key file and returns the KeyFile message.
fn key_file_error(value: &Value) -> (String, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_key_file(dir.path(), &serde_json::to_vec(value).unwrap());
    match Keyring::load(&path) {
        Err(CryptoError::KeyFile(msg)) => (msg, path, dir),
        other => panic!("expected KeyFile error, got {other:?}"),
    }
}

fn assert_refused(value: &Value, problem: &str) {
    let (msg, path, _dir) = key_file_error(value);
    assert!(msg.contains(problem), "{msg:?} should mention {problem:?}");
    assert!(msg.contains(&path.display().to_string()), "{msg:?} should name the file");
}

#[test]
fn created_with_mode_0600_in_a_new_directory_then_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/latchkey/keys.json");
    let (ring, created) = Keyring::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temp files left");

    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["active"], ring.active_key_id());
    assert_eq!(STANDARD.decode(file["mac_key"].as_str().unwrap()).unwrap().len(), 32);
    let keys = file["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], ring.active_key_id());
    assert_eq!(keys[0]["created_at"], ring.keys()[0].created_at);
    assert_eq!(STANDARD.decode(keys[0]["key"].as_str().unwrap()).unwrap().len(), 32);
    assert_ne!(keys[0]["key"], file["mac_key"]);

    let env = seal(&ring, &B, b"kept").unwrap();
    let (again, created) = Keyring::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(again.keys(), ring.keys());
    assert_eq!(again.keyed_hash("l", b"d"), ring.keyed_hash("l", b"d"));
    assert_eq!(open(&again, &B, &env).unwrap().as_slice(), b"kept");
}

#[test]
fn save_load_round_trip_with_several_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut ring = Keyring::ephemeral();
    let first = ring.active_key_id();
    let env = seal(&ring, &B, b"first").unwrap();
    ring.add_key(10);
    ring.add_key(20);
    ring.save(&path).unwrap();
    let loaded = Keyring::load(&path).unwrap();
    assert_eq!(loaded.keys(), ring.keys());
    assert_eq!(loaded.keys().len(), 3);
    assert_eq!(loaded.active_key_id(), ring.active_key_id());
    assert_ne!(loaded.active_key_id(), first);
    assert_eq!(loaded.keyed_hash("x", b"y"), ring.keyed_hash("x", b"y"));
    assert_eq!(open(&loaded, &B, &env).unwrap().as_slice(), b"first");
}

#[cfg(unix)]
#[test]
fn save_replaces_a_too_open_file_with_a_0600_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_key_file(dir.path(), b"old");
    set_mode(&path, 0o644);
    let ring = Keyring::ephemeral();
    ring.save(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(Keyring::load(&path).unwrap().keys(), ring.keys());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp files left");
}

#[cfg(unix)]
#[test]
fn group_or_other_access_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    Keyring::load_or_create(&path).unwrap();
    for (bad, shown) in [(0o644, "0644"), (0o640, "0640"), (0o604, "0604"), (0o620, "0620")] {
        set_mode(&path, bad);
        match Keyring::load(&path) {
            Err(CryptoError::KeyFile(msg)) => {
                assert!(msg.contains(shown), "{msg}");
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
            other => panic!("mode {bad:o}: {other:?}"),
        }
        assert!(matches!(Keyring::load_or_create(&path), Err(CryptoError::KeyFile(_))));
    }
    set_mode(&path, 0o400);
    Keyring::load(&path).unwrap();
}

#[test]
fn corrupted_json_is_refused_and_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_key_file(dir.path(), b"{\"version\": 1, oops}");
    match Keyring::load(&path) {
        Err(CryptoError::KeyFile(msg)) => {
            assert!(msg.contains("not valid JSON"), "{msg}");
            assert!(msg.contains("line 1"), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    // load_or_create must not overwrite a broken key file with fresh keys.
    assert!(matches!(Keyring::load_or_create(&path), Err(CryptoError::KeyFile(_))));
    assert_eq!(fs::read(&path).unwrap(), b"{\"version\": 1, oops}");
}

#[test]
fn truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let full = serde_json::to_vec(&valid_json(dir.path())).unwrap();
    let path = write_key_file(dir.path(), &full[..full.len() / 2]);
    match Keyring::load(&path) {
        Err(CryptoError::KeyFile(msg)) => assert!(msg.contains("ends too early"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_key_is_refused_with_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = valid_json(dir.path());
    let id = v["keys"][0]["id"].as_str().unwrap().to_owned();
    v["keys"][0]["key"] = json!(STANDARD.encode([7u8; 16]));
    assert_refused(&v, &format!("key {id} has the wrong length (16 bytes, expected 32)"));
    v["keys"][0]["key"] = json!(STANDARD.encode([7u8; 33]));
    assert_refused(&v, "(33 bytes, expected 32)");
}

#[test]
fn bad_base64_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = valid_json(dir.path());
    let good = v["keys"][0]["key"].as_str().unwrap().to_owned();
    v["keys"][0]["key"] = json!(format!("*{}", &good[1..]));
    assert_refused(&v, "is not valid base64");
    // URL-safe alphabet is not the file's alphabet either.
    v["keys"][0]["key"] = json!(good.replace('=', ""));
    assert_refused(&v, "is not valid base64");
}

#[test]
fn bad_mac_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = valid_json(dir.path());
    v["mac_key"] = json!("!!!!");
    assert_refused(&v, "mac_key is not valid base64");
    v["mac_key"] = json!(STANDARD.encode([1u8; 31]));
    assert_refused(&v, "mac_key has the wrong length (31 bytes");
    v.as_object_mut().unwrap().remove("mac_key");
    assert_refused(&v, "missing field `mac_key`");
}

#[test]
fn duplicate_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = valid_json(dir.path());
    let key = v["keys"][0].clone();
    v["keys"].as_array_mut().unwrap().push(key);
    assert_refused(&v, "duplicate key id");
}

#[test]
fn missing_or_unknown_active_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = valid_json(dir.path());
    v["active"] = json!("");
    assert_refused(&v, "has no active key");
    v["active"] = json!("k-1-deadbeef");
    assert_refused(&v, "names active key k-1-deadbeef, which is not one of its keys");
    v["keys"] = json!([]);
    assert_refused(&v, "contains no keys");
}

#[test]
fn structural_problems_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = valid_json(dir.path());
    let mut v = base.clone();
    v["version"] = json!(2);
    assert_refused(&v, "unsupported version 2");
    let mut v = base.clone();
    v["keys"][0]["id"] = json!("has space");
    assert_refused(&v, "key #1 has an invalid id");
    let mut v = base.clone();
    v["extra"] = json!(true);
    assert_refused(&v, "unknown field `extra`");
    assert_refused(&json!([1, 2]), "does not match the key file format");
}

#[test]
fn messages_never_echo_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let base = valid_json(dir.path());
    let key = base["keys"][0]["key"].as_str().unwrap().to_owned();
    let mac = base["mac_key"].as_str().unwrap().to_owned();
    let mut cases = Vec::new();
    // Key material where a number belongs: serde would quote it.
    let mut v = base.clone();
    v["keys"][0]["created_at"] = json!(key);
    cases.push(v);
    let mut v = base.clone();
    v["version"] = json!(mac);
    cases.push(v);
    // Key material in the id and active fields.
    let mut v = base.clone();
    v["keys"][0]["id"] = json!(format!("{key} x"));
    cases.push(v);
    let mut v = base.clone();
    v["active"] = json!(format!("{mac} "));
    cases.push(v);
    // Wrong-length keys.
    let mut v = base.clone();
    v["keys"][0]["key"] = json!(&key[..20]);
    cases.push(v);
    for v in &cases {
        let (msg, _, _dir) = key_file_error(v);
        for secret in [&key, &mac] {
            assert!(!msg.contains(&secret[..16]), "{msg}");
        }
    }
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    match Keyring::load(&path) {
        Err(CryptoError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
            assert!(e.to_string().contains("absent.json"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn directory_is_not_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    match Keyring::load(dir.path()) {
        Err(CryptoError::KeyFile(msg)) => assert!(msg.contains("not a regular file"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_of_a_loaded_keyring_redacts_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (mut ring, _) = Keyring::load_or_create(&path).unwrap();
    ring.add_key(5);
    ring.save(&path).unwrap();
    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let text = format!("{ring:?} {:?}", Keyring::load(&path).unwrap());
    let mut secrets = vec![file["mac_key"].as_str().unwrap().to_owned()];
    for k in file["keys"].as_array().unwrap() {
        assert!(text.contains(k["id"].as_str().unwrap()), "{text}");
        secrets.push(k["key"].as_str().unwrap().to_owned());
    }
    for b64 in secrets {
        let raw = STANDARD.decode(&b64).unwrap();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&b64[..12]), "{text}");
        assert!(!text.contains(&hex[..12]), "{text}");
        assert!(!text.contains(&format!("{:?}", &raw[..])[..20]), "{text}");
    }
}
