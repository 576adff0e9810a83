//! Sealing to the server's public key: round trips, binding to info and aad,
//! tamper detection, length limits, the sealing key file and redaction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use latchkey_crypto::{
    CryptoError, ENCAPPED_KEY_LEN, MAX_SEALED_LEN, SEALED_OVERHEAD, SealingKey, SealingPublicKey, seal_to,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

const INFO: &[u8] = b"latchkey/agent/password/v1";

/// One key for all property cases (key generation is not what is tested).
fn key() -> &'static SealingKey {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    KEY.get_or_init(SealingKey::generate)
}

fn other_key() -> &'static SealingKey {
    static KEY: OnceLock<SealingKey> = OnceLock::new();
    KEY.get_or_init(SealingKey::generate)
}

fn decrypt_error(r: Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>) {
    match r {
        Err(CryptoError::Decrypt) => {}
        Err(other) => panic!("expected Decrypt, got {other:?}"),
        Ok(_) => panic!("expected Decrypt, but it opened"),
    }
}

fn malformed(r: Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>) {
    match r {
        Err(CryptoError::Malformed(_)) => {}
        Err(other) => panic!("expected Malformed, got {other:?}"),
        Ok(_) => panic!("expected Malformed, but it opened"),
    }
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        info in proptest::collection::vec(any::<u8>(), 0..64),
        aad in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let sealed = seal_to(&key().public_key(), &info, &aad, &plaintext).unwrap();
        prop_assert_eq!(sealed.len(), plaintext.len() + SEALED_OVERHEAD);
        let opened = key().open(&info, &aad, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn wrong_key_info_or_aad_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        other in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let sealed = seal_to(&key().public_key(), INFO, &aad, &plaintext).unwrap();
        decrypt_error(other_key().open(INFO, &aad, &sealed));
        if other != aad {
            decrypt_error(key().open(INFO, &other, &sealed));
        }
        if other != INFO {
            decrypt_error(key().open(&other, &aad, &sealed));
        }
        let opened = key().open(INFO, &aad, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn any_flipped_bit_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        at in any::<Index>(),
        bit in 0u8..8,
    ) {
        let mut sealed = seal_to(&key().public_key(), INFO, b"aad", &plaintext).unwrap();
        let i = at.index(sealed.len());
        sealed[i] ^= 1 << bit;
        decrypt_error(key().open(INFO, b"aad", &sealed));
    }

    #[test]
    fn truncated_or_extended_blobs_fail(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        cut in any::<Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..32),
    ) {
        let sealed = seal_to(&key().public_key(), INFO, b"aad", &plaintext).unwrap();
        let n = cut.index(sealed.len());
        let short = key().open(INFO, b"aad", &sealed[..n]);
        if n < SEALED_OVERHEAD {
            malformed(short);
        } else {
            decrypt_error(short);
        }
        let mut long = sealed.clone();
        long.extend_from_slice(&extra);
        decrypt_error(key().open(INFO, b"aad", &long));
    }
}

#[test]
fn seals_of_the_same_plaintext_differ() {
    let pk = key().public_key();
    let a = seal_to(&pk, INFO, b"aad", b"same").unwrap();
    let b = seal_to(&pk, INFO, b"aad", b"same").unwrap();
    assert_ne!(a, b);
    assert_ne!(a[..ENCAPPED_KEY_LEN], b[..ENCAPPED_KEY_LEN]);
    assert!(!a.windows(4).any(|w| w == b"same"), "plaintext must not appear in the blob");
}

#[test]
fn blobs_outside_the_length_limits_are_malformed_before_any_crypto() {
    // Too short to hold an encapsulated key and a tag.
    for n in [0, 1, ENCAPPED_KEY_LEN, SEALED_OVERHEAD - 1] {
        malformed(key().open(INFO, b"", &vec![7u8; n]));
    }
    // The shortest possible blob is parsed and fails authentication.
    decrypt_error(key().open(INFO, b"", &[7u8; SEALED_OVERHEAD]));
    // Longer than the limit.
    malformed(key().open(INFO, b"", &vec![7u8; MAX_SEALED_LEN + 1]));
    malformed(key().open(INFO, b"", &vec![7u8; 4 * MAX_SEALED_LEN]));
    // A real seal grown past the limit is refused as Malformed too.
    let mut sealed = seal_to(&key().public_key(), INFO, b"", b"x").unwrap();
    sealed.resize(MAX_SEALED_LEN + 1, 0);
    malformed(key().open(INFO, b"", &sealed));
}

#[test]
fn the_largest_plaintext_fits_and_one_more_byte_does_not() {
    let max = MAX_SEALED_LEN - SEALED_OVERHEAD;
    let plaintext = vec![0x5au8; max];
    let sealed = seal_to(&key().public_key(), INFO, b"aad", &plaintext).unwrap();
    assert_eq!(sealed.len(), MAX_SEALED_LEN);
    assert_eq!(key().open(INFO, b"aad", &sealed).unwrap().as_slice(), plaintext.as_slice());
    let too_long = vec![0x5au8; max + 1];
    assert!(matches!(seal_to(&key().public_key(), INFO, b"aad", &too_long), Err(CryptoError::Malformed(_))));
}

#[test]
fn public_key_base64url_round_trip() {
    let pk = key().public_key();
    let text = pk.to_base64url();
    assert_eq!(text.len(), 43);
    assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{text}");
    let back = SealingPublicKey::from_base64url(&text).unwrap();
    assert_eq!(back, pk);
    assert_eq!(back.as_bytes(), pk.as_bytes());
    assert_ne!(pk, other_key().public_key());
    // A key parsed from the wire seals to the same recipient.
    let sealed = seal_to(&back, INFO, b"a", b"via wire").unwrap();
    assert_eq!(key().open(INFO, b"a", &sealed).unwrap().as_slice(), b"via wire");
}

#[test]
fn public_key_garbage_is_refused() {
    let good = key().public_key().to_base64url();
    let too_short = &good[..42];
    let padded = format!("{good}=");
    let standard = good.replace('-', "+").replace('_', "/");
    let too_long = format!("{good}AAAA");
    let huge = "A".repeat(10_000);
    let mut cases = vec!["", "not base64!", too_short, &padded, &too_long, &huge, " ", "AAAA"];
    if standard != good {
        cases.push(&standard);
    }
    for text in cases {
        match SealingPublicKey::from_base64url(text) {
            Err(CryptoError::Malformed(_)) => {}
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }
    // All-zero key: a low-order point.
    let zero = "A".repeat(43);
    assert!(matches!(SealingPublicKey::from_base64url(&zero), Err(CryptoError::Malformed(_))));
}

#[test]
fn debug_shows_public_key_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealing.json");
    let (key, _) = SealingKey::load_or_create(&path).unwrap();
    let text = format!("{key:?}");
    let public = key.public_key().to_base64url();
    assert!(text.contains(&public), "{text}");
    assert!(text.contains("redacted"), "{text}");
    assert_eq!(format!("{:?}", key.public_key()), format!("SealingPublicKey({public:?})"));
    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let secret_b64 = file["secret_key"].as_str().unwrap();
    let secret = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, secret_b64).unwrap();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let url = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &secret);
    for needle in [secret_b64.to_owned(), hex, url, format!("{:?}", &secret[..4])[1..10].to_owned()] {
        assert!(!text.contains(&needle), "Debug output leaks the secret: {text}");
    }
}

// ---- The sealing key file ----

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

fn write_file(dir: &Path, contents: &[u8]) -> PathBuf {
    let path = dir.join("sealing.json");
    fs::write(&path, contents).unwrap();
    set_mode(&path, 0o600);
    path
}

fn key_file_error(path: &Path) -> String {
    match SealingKey::load_or_create(path) {
        Err(CryptoError::KeyFile(msg)) => {
            assert!(msg.contains(&path.display().to_string()), "{msg:?} should name the file");
            msg
        }
        other => panic!("expected KeyFile error, got {other:?}"),
    }
}

fn valid_json() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    SealingKey::load_or_create(&path).unwrap();
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

#[test]
fn key_file_is_created_0600_and_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/latchkey/sealing.json");
    let (key, created) = SealingKey::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temp files left");

    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["kind"], "latchkey-sealing-x25519");
    assert_eq!(file["public_key"], key.public_key().to_base64url());

    let sealed = seal_to(&key.public_key(), INFO, b"aad", b"kept").unwrap();
    let (again, created) = SealingKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(again.public_key(), key.public_key());
    assert_eq!(again.open(INFO, b"aad", &sealed).unwrap().as_slice(), b"kept");
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
}

#[cfg(unix)]
#[test]
fn group_or_world_accessible_key_file_is_refused() {
    for bad in [0o644, 0o640, 0o604, 0o660, 0o666] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sealing.json");
        SealingKey::load_or_create(&path).unwrap();
        let before = fs::read(&path).unwrap();
        set_mode(&path, bad);
        let msg = key_file_error(&path);
        assert!(msg.contains(&format!("{bad:04o}")), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
        assert_eq!(fs::read(&path).unwrap(), before, "a refused file is left alone");
    }
}

#[test]
fn corrupt_key_files_are_refused_with_the_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = valid_json();
    let with = |field: &str, value: Value| {
        let mut v = good.clone();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let mut without_secret = good.clone();
    without_secret.as_object_mut().unwrap().remove("secret_key");
    let mut extra = good.clone();
    extra["comment"] = Value::from("hi");
    let short_secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [1u8; 31]);
    let other_public = SealingKey::generate().public_key().to_base64url();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "ends too early"),
        (b"{not json".to_vec(), "not valid JSON"),
        (b"{\"version\":1".to_vec(), "ends too early"),
        (serde_json::to_vec(&without_secret).unwrap(), "missing field `secret_key`"),
        (serde_json::to_vec(&extra).unwrap(), "unknown field `comment`"),
        (with("version", Value::from(2)), "unsupported version 2"),
        (with("version", Value::from("1")), "wrong type or value"),
        (with("kind", Value::from("latchkey-device-ed25519")), "is not a latchkey-sealing-x25519 key file"),
        (with("secret_key", Value::from("***")), "secret_key is not valid base64"),
        (with("secret_key", Value::from(short_secret)), "secret_key has the wrong length (31 bytes"),
        (with("public_key", Value::from("***")), "public_key is not valid base64url"),
        (with("public_key", Value::from("AAAA")), "public_key has the wrong length (3 bytes"),
        (with("public_key", Value::from(other_public)), "does not belong to its secret_key"),
    ];
    for (contents, problem) in cases {
        let path = write_file(dir.path(), &contents);
        let msg = key_file_error(&path);
        assert!(msg.contains(problem), "{msg:?} should mention {problem:?}");
        // Nothing from the file is echoed back.
        if let Some(secret) = good["secret_key"].as_str() {
            assert!(!msg.contains(secret), "{msg}");
        }
        assert_eq!(fs::read(&path).unwrap(), contents, "a refused file is left alone");
    }
}

#[test]
fn a_keyring_file_is_not_a_sealing_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    latchkey_crypto::Keyring::load_or_create(&path).unwrap();
    let msg = key_file_error(&path);
    assert!(msg.contains("does not match the key file format"), "{msg}");
}
