//! Device request signatures: round trips, every part of a request covered,
//! strict verification, the device key file and the verifying key's wire form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey_crypto::{
    CryptoError, DeviceSigningKey, DeviceVerifyingKey, REQUEST_SIGNING_LABEL, SIGNATURE_LEN, request_signing_bytes,
};
use proptest::prelude::*;
use serde_json::Value;

fn key() -> &'static DeviceSigningKey {
    static KEY: OnceLock<DeviceSigningKey> = OnceLock::new();
    KEY.get_or_init(DeviceSigningKey::generate)
}

/// The group order ℓ of Ed25519, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[derive(Debug, Clone, PartialEq)]
struct Request {
    method: String,
    path: String,
    device: String,
    timestamp: i64,
    nonce: String,
    body: Vec<u8>,
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        request_signing_bytes(&self.method, &self.path, &self.device, self.timestamp, &self.nonce, &self.body)
    }
}

fn request() -> impl Strategy<Value = Request> {
    (
        "[A-Z]{1,8}",
        "/\\PC{0,40}",
        "\\PC{0,24}",
        any::<i64>(),
        "[A-Za-z0-9_-]{0,32}",
        proptest::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(method, path, device, timestamp, nonce, body)| Request {
            method,
            path,
            device,
            timestamp,
            nonce,
            body,
        })
}

/// The request with part `which` replaced (text for string parts, `n` for
/// the timestamp, `body` for the body).
fn change_one(r: &Request, which: usize, text: String, n: i64, body: Vec<u8>) -> Request {
    let mut c = r.clone();
    match which {
        0 => c.method = text,
        1 => c.path = text,
        2 => c.device = text,
        3 => c.timestamp = n,
        4 => c.nonce = text,
        _ => c.body = body,
    }
    c
}

proptest! {
    #[test]
    fn sign_verify_round_trip(r in request()) {
        let sig = key().sign(&r.bytes());
        prop_assert!(key().verifying_key().verify(&r.bytes(), &sig));
        prop_assert!(r.bytes().starts_with(REQUEST_SIGNING_LABEL));
    }

    #[test]
    fn any_changed_part_fails_verification(
        r in request(),
        which in 0usize..6,
        text in "\\PC{0,24}",
        n in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let changed = change_one(&r, which, text, n, body);
        prop_assume!(changed != r);
        prop_assert_ne!(changed.bytes(), r.bytes());
        let sig = key().sign(&r.bytes());
        prop_assert!(!key().verifying_key().verify(&changed.bytes(), &sig));
    }

    /// Moving bytes between neighbouring parts changes the signed bytes.
    #[test]
    fn parts_cannot_bleed_into_each_other(a in "[a-z]{0,8}", b in "[a-z]{0,8}", k in 0usize..8) {
        let joined = format!("{a}{b}");
        let k = k.min(joined.len());
        let (a2, b2) = joined.split_at(k);
        prop_assume!(a2 != a);
        let one = request_signing_bytes("GET", &a, &b, 1, "n", b"");
        let two = request_signing_bytes("GET", a2, b2, 1, "n", b"");
        prop_assert_ne!(one, two);
    }

    #[test]
    fn any_flipped_signature_bit_fails(r in request(), at in 0usize..SIGNATURE_LEN * 8) {
        let mut sig = key().sign(&r.bytes());
        sig[at / 8] ^= 1 << (at % 8);
        prop_assert!(!key().verifying_key().verify(&r.bytes(), &sig));
    }

    #[test]
    fn malformed_signatures_are_false(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assume!(bytes.len() != SIGNATURE_LEN);
        prop_assert!(!key().verifying_key().verify(b"msg", &bytes));
    }
}

#[test]
fn signatures_are_deterministic_and_64_bytes() {
    let msg = request_signing_bytes("POST", "/api/v1/agent/heartbeat", "dev-1", 1_700_000_000, "abc", b"{}");
    let a = key().sign(&msg);
    assert_eq!(a.len(), 64);
    assert_eq!(a, key().sign(&msg));
    assert!(key().verifying_key().verify(&msg, &a));
}

#[test]
fn wrong_key_fails() {
    let msg = request_signing_bytes("GET", "/x", "dev", 0, "n", b"");
    let sig = key().sign(&msg);
    let other = DeviceSigningKey::generate();
    assert_ne!(other.verifying_key(), key().verifying_key());
    assert!(!other.verifying_key().verify(&msg, &sig));
    assert!(other.verifying_key().verify(&msg, &other.sign(&msg)));
}

#[test]
fn malformed_signature_lengths_are_false() {
    let msg = b"message";
    let sig = key().sign(msg);
    let vk = key().verifying_key();
    assert!(!vk.verify(msg, &[]));
    assert!(!vk.verify(msg, &sig[..63]));
    let mut long = sig.to_vec();
    long.push(0);
    assert!(!vk.verify(msg, &long));
    assert!(!vk.verify(msg, &[0u8; 64]));
    assert!(!vk.verify(msg, &[0xffu8; 64]));
}

#[test]
fn non_canonical_signature_scalar_is_rejected() {
    // S + ℓ verifies under lax rules but not under strict verification.
    let msg = b"malleable?";
    let sig = key().sign(msg);
    let mut s = [0u8; 32];
    s.copy_from_slice(&sig[32..]);
    let mut carry = 0u16;
    for (i, byte) in s.iter_mut().enumerate() {
        let sum = u16::from(*byte) + u16::from(ELL[i]) + carry;
        *byte = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    let mut forged = sig;
    forged[32..].copy_from_slice(&s);
    assert_ne!(forged, sig);
    assert!(!key().verifying_key().verify(msg, &forged));
}

#[test]
fn timestamps_are_signed_as_decimal() {
    let bytes = request_signing_bytes("GET", "/", "d", -1_234, "n", b"");
    let needle = [&5u32.to_be_bytes()[..], b"-1234"].concat();
    assert!(bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
    let max = request_signing_bytes("GET", "/", "d", i64::MAX, "n", b"");
    let digits = i64::MAX.to_string();
    let needle = [&u32::try_from(digits.len()).unwrap().to_be_bytes()[..], digits.as_bytes()].concat();
    assert!(max.windows(needle.len()).any(|w| w == needle.as_slice()));
}

#[test]
fn verifying_key_base64url_round_trip() {
    let vk = key().verifying_key();
    let text = vk.to_base64url();
    assert_eq!(text.len(), 43);
    let back = DeviceVerifyingKey::from_base64url(&text).unwrap();
    assert_eq!(back, vk);
    assert_eq!(back.to_bytes(), vk.to_bytes());
    assert_eq!(format!("{vk:?}"), format!("DeviceVerifyingKey({text:?})"));
    let msg = b"wire";
    assert!(back.verify(msg, &key().sign(msg)));
}

#[test]
fn verifying_key_garbage_is_refused() {
    let good = key().verifying_key().to_base64url();
    let padded = format!("{good}=");
    let too_long = format!("{good}AAAA");
    let huge = "A".repeat(10_000);
    // y = 2 is not the y-coordinate of any point on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let not_a_point = URL_SAFE_NO_PAD.encode(not_a_point);
    // The identity (y = 1) and other small-order points are weak keys.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let identity = URL_SAFE_NO_PAD.encode(identity);
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let minus_one = URL_SAFE_NO_PAD.encode(minus_one);
    let cases = [
        "",
        "not base64!",
        &good[..42],
        &padded,
        &too_long,
        &huge,
        "AAAA",
        &not_a_point,
        &identity,
        &minus_one,
        &STANDARD.encode([0xfbu8; 32]),
    ];
    for text in cases {
        match DeviceVerifyingKey::from_base64url(text) {
            Err(CryptoError::Malformed(_)) => {}
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }
}

#[test]
fn debug_shows_verifying_key_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.json");
    let (key, _) = DeviceSigningKey::load_or_create(&path).unwrap();
    let text = format!("{key:?}");
    assert!(text.contains(&key.verifying_key().to_base64url()), "{text}");
    assert!(text.contains("redacted"), "{text}");
    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let secret_b64 = file["secret_key"].as_str().unwrap();
    let secret = STANDARD.decode(secret_b64).unwrap();
    assert_eq!(secret.len(), 32);
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for needle in [secret_b64.to_owned(), hex, URL_SAFE_NO_PAD.encode(&secret), format!("{:?}", &secret[..4])] {
        assert!(!text.contains(&needle), "Debug output leaks the secret: {text}");
    }
}

// ---- The device key file ----

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

fn key_file_error(path: &Path) -> String {
    match DeviceSigningKey::load_or_create(path) {
        Err(CryptoError::KeyFile(msg)) => {
            assert!(msg.contains(&path.display().to_string()), "{msg:?} should name the file");
            msg
        }
        other => panic!("expected KeyFile error, got {other:?}"),
    }
}

#[test]
fn key_file_is_created_0600_and_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/latchkey/device.json");
    let (key, created) = DeviceSigningKey::load_or_create(&path).unwrap();
    assert!(created);
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temp files left");
    let file: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["kind"], "latchkey-device-ed25519");
    assert_eq!(file["public_key"], key.verifying_key().to_base64url());

    let (again, created) = DeviceSigningKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(again.verifying_key(), key.verifying_key());
    // Ed25519 is deterministic: the same key gives the same signature.
    assert_eq!(again.sign(b"m"), key.sign(b"m"));
    assert!(key.verifying_key().verify(b"m", &again.sign(b"m")));
}

#[cfg(unix)]
#[test]
fn group_or_world_accessible_key_file_is_refused() {
    for bad in [0o644, 0o640, 0o604, 0o660, 0o666] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        DeviceSigningKey::load_or_create(&path).unwrap();
        set_mode(&path, bad);
        let msg = key_file_error(&path);
        assert!(msg.contains(&format!("{bad:04o}")), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
    }
}

#[test]
fn corrupt_key_files_are_refused_with_the_problem_named() {
    let dir = tempfile::tempdir().unwrap();
    let good: Value = {
        let p = dir.path().join("good.json");
        DeviceSigningKey::load_or_create(&p).unwrap();
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    };
    let with = |field: &str, value: Value| {
        let mut v = good.clone();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let other_public = DeviceSigningKey::generate().verifying_key().to_base64url();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"[]".to_vec(), "does not match the key file format"),
        (b"{\"version\":".to_vec(), "ends too early"),
        (b"\x00\x01garbage".to_vec(), "not valid JSON"),
        (with("kind", Value::from("latchkey-sealing-x25519")), "is not a latchkey-device-ed25519 key file"),
        (with("version", Value::from(0)), "unsupported version 0"),
        (with("secret_key", Value::from(STANDARD.encode([3u8; 33]))), "secret_key has the wrong length (33 bytes"),
        (with("public_key", Value::from(other_public)), "does not belong to its secret_key"),
    ];
    for (contents, problem) in cases {
        let path = dir.path().join("device.json");
        fs::write(&path, &contents).unwrap();
        set_mode(&path, 0o600);
        let msg = key_file_error(&path);
        assert!(msg.contains(problem), "{msg:?} should mention {problem:?}");
        assert!(!msg.contains(good["secret_key"].as_str().unwrap()), "{msg}");
        assert_eq!(fs::read(&path).unwrap(), contents, "a refused file is left alone");
    }
}
