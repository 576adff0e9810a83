//! Key rotation: re-wrapping envelopes under a new key and retiring the old.

use latchkey_crypto::{Binding, CryptoError, KeyProvider, Keyring, envelope_key_id, open, rewrap, seal};

/// Nonce plus ciphertext and tag: the part of an envelope after the wrapped key.
fn data_tail(env: &[u8], plaintext_len: usize) -> &[u8] {
    &env[env.len() - (12 + plaintext_len + 16)..]
}

fn binding(row: &str) -> Binding<'_> {
    Binding { tenant: "acme", table: "secrets", row, field: "value", version: 1 }
}

#[test]
fn rewrap_after_add_key_then_retire_old_key() {
    let mut ring = Keyring::ephemeral();
    let old = ring.active_key_id();
    let values: Vec<(String, Vec<u8>)> = (0..5).map(|i| (format!("row-{i}"), vec![i as u8; i * 37])).collect();
    let sealed: Vec<Vec<u8>> = values.iter().map(|(row, pt)| seal(&ring, &binding(row), pt).unwrap()).collect();

    let new = ring.add_key(1_800_000_000);
    assert_ne!(new, old);

    let mut rewrapped = Vec::new();
    for ((row, pt), env) in values.iter().zip(&sealed) {
        assert_eq!(envelope_key_id(env).unwrap(), old);
        // The old key still opens its envelopes until retired.
        assert_eq!(open(&ring, &binding(row), env).unwrap().as_slice(), pt.as_slice());
        let re = rewrap(&ring, &binding(row), env).unwrap();
        assert_eq!(envelope_key_id(&re).unwrap(), new);
        assert_eq!(open(&ring, &binding(row), &re).unwrap().as_slice(), pt.as_slice());
        assert_eq!(data_tail(&re, pt.len()), data_tail(env, pt.len()));
        assert_ne!(re, *env);
        rewrapped.push(re);
    }

    ring.retire_key(&old).unwrap();
    for ((row, pt), (env, re)) in values.iter().zip(sealed.iter().zip(&rewrapped)) {
        match open(&ring, &binding(row), env) {
            Err(CryptoError::UnknownKey(id)) => assert_eq!(id, old),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert!(matches!(rewrap(&ring, &binding(row), env), Err(CryptoError::UnknownKey(_))));
        assert_eq!(open(&ring, &binding(row), re).unwrap().as_slice(), pt.as_slice());
    }
}

#[test]
fn rewrap_with_wrong_binding_fails_and_changes_nothing() {
    let mut ring = Keyring::ephemeral();
    let env = seal(&ring, &binding("a"), b"secret").unwrap();
    ring.add_key(1);
    assert!(matches!(rewrap(&ring, &binding("b"), &env), Err(CryptoError::Decrypt)));
}

#[test]
fn rotation_survives_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (mut ring, created) = Keyring::load_or_create(&path).unwrap();
    assert!(created);
    let old = ring.active_key_id();
    let env = seal(&ring, &binding("r"), b"persisted").unwrap();
    let new = ring.add_key(2_000_000_000);
    ring.save(&path).unwrap();

    let loaded = Keyring::load(&path).unwrap();
    assert_eq!(loaded.active_key_id(), new);
    assert_eq!(loaded.keys(), ring.keys());
    let re = rewrap(&loaded, &binding("r"), &env).unwrap();

    let mut loaded = loaded;
    loaded.retire_key(&old).unwrap();
    loaded.save(&path).unwrap();
    let reloaded = Keyring::load(&path).unwrap();
    assert_eq!(reloaded.keys().len(), 1);
    assert!(matches!(open(&reloaded, &binding("r"), &env), Err(CryptoError::UnknownKey(_))));
    assert_eq!(open(&reloaded, &binding("r"), &re).unwrap().as_slice(), b"persisted");
}
