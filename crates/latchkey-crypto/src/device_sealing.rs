//! Sealing to a device: the server encrypts a secret (a just-in-time admin password) so that
//! only one enrolled device can read it.
//!
//! A device enrolls an Ed25519 public key (its request signing key). Its X25519 public key is
//! that key's birational image on Curve25519 (as libsodium's
//! `crypto_sign_ed25519_pk_to_curve25519`); the device opens with the matching X25519 secret,
//! derived from its signing key as `crypto_sign_ed25519_sk_to_curve25519` does (the first half
//! of SHA-512 of the seed, clamped). The seal is the same HPKE suite and blob layout as sealing
//! to the server ([`seal_to`]); callers give their own `info` and an `aad` that binds the seal
//! to its place.

use zeroize::Zeroizing;

use crate::keypair_file::KeyPair;
use crate::sealing::{SealingKey, SealingPublicKey, seal_to};
use crate::{CryptoError, DeviceSigningKey, DeviceVerifyingKey};

/// The X25519 public key a device's Ed25519 verifying key converts to.
pub fn device_sealing_public_key(device: &DeviceVerifyingKey) -> Result<SealingPublicKey, CryptoError> {
    SealingPublicKey::from_bytes(device.to_montgomery_bytes())
}

/// Seal `plaintext` to an enrolled device (HPKE, see [`seal_to`]): only the holder of the
/// device's signing key opens it, with the same `info` and `aad`.
pub fn seal_to_device(
    device: &DeviceVerifyingKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal_to(&device_sealing_public_key(device)?, info, aad, plaintext)
}

/// Open a blob made by [`seal_to_device`] for this device. A blob of the wrong size is
/// [`CryptoError::Malformed`]; another device's blob, another `info` or `aad`, or any altered
/// byte is [`CryptoError::Decrypt`].
pub fn open_as_device(
    key: &DeviceSigningKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let scalar = key.to_x25519_secret();
    // The HPKE private key clamps the scalar, as the X25519 function does.
    let opener = SealingKey::from_secret(&scalar).ok_or(CryptoError::Malformed("bad device key"))?;
    opener.open(info, aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"latchkey/test/device-seal";

    #[test]
    fn round_trip() {
        let device = DeviceSigningKey::generate();
        let sealed = seal_to_device(&device.verifying_key(), INFO, b"tenant|device|job", b"Temp-Pass-1").unwrap();
        let opened = open_as_device(&device, INFO, b"tenant|device|job", &sealed).unwrap();
        assert_eq!(opened.as_slice(), b"Temp-Pass-1");
        // The derived X25519 secret gives the converted public key.
        let opener = SealingKey::from_secret(&device.to_x25519_secret()).unwrap();
        assert_eq!(opener.public_key(), device_sealing_public_key(&device.verifying_key()).unwrap());
    }

    #[test]
    fn another_device_cannot_open() {
        let (device, other) = (DeviceSigningKey::generate(), DeviceSigningKey::generate());
        let sealed = seal_to_device(&device.verifying_key(), INFO, b"a", b"secret").unwrap();
        assert!(matches!(open_as_device(&other, INFO, b"a", &sealed), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn another_binding_or_info_cannot_open() {
        let device = DeviceSigningKey::generate();
        let sealed = seal_to_device(&device.verifying_key(), INFO, b"job-1", b"secret").unwrap();
        assert!(matches!(open_as_device(&device, INFO, b"job-2", &sealed), Err(CryptoError::Decrypt)));
        assert!(matches!(open_as_device(&device, b"other", b"job-1", &sealed), Err(CryptoError::Decrypt)));
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let device = DeviceSigningKey::generate();
        let sealed = seal_to_device(&device.verifying_key(), INFO, b"a", b"secret").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open_as_device(&device, INFO, b"a", &bad).is_err(), "byte {i} altered and accepted");
        }
        assert!(matches!(open_as_device(&device, INFO, b"a", &sealed[..10]), Err(CryptoError::Malformed(_))));
    }

    /// RFC 8032 test 1's key pair and its Curve25519 forms, as computed by libsodium 1.0.18
    /// (`crypto_sign_ed25519_pk_to_curve25519`, `crypto_sign_ed25519_sk_to_curve25519`).
    #[test]
    fn conversion_matches_libsodium() {
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let device = DeviceSigningKey::from_secret(&seed).unwrap();
        assert_eq!(
            device.verifying_key().to_bytes(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let public = device_sealing_public_key(&device.verifying_key()).unwrap();
        assert_eq!(public.as_bytes(), &hex("d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e"));
        let mut clamped = *device.to_x25519_secret();
        clamped[0] &= 248;
        clamped[31] &= 127;
        clamped[31] |= 64;
        assert_eq!(clamped, hex("307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f"));
    }

    fn hex(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
