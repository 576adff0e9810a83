//! Latchkey cryptography: envelope encryption of vault fields, the local key
//! file and its key provider, keyed hashes for machine secrets, password
//! hashing, generation of tokens and passwords, sealing to the server's public
//! key (HPKE) and device request signatures (Ed25519).
//!
//! Every function here that touches plaintext or key material keeps it in
//! zeroizing containers, and no error message carries secret bytes.

mod aead;
mod atomic;
mod binding;
mod compare;
mod device_sealing;
mod envelope;
mod error;
mod keyed_hash;
mod keyfile;
mod keypair_file;
mod keyring;
mod password;
mod password_gen;
mod provider;
mod sealing;
mod signing;
mod token;

pub use atomic::replace_private_file;
pub use binding::Binding;
pub use compare::ct_eq;
pub use device_sealing::{device_sealing_public_key, open_as_device, seal_to_device};
pub use envelope::{envelope_key_id, open, rewrap, seal};
pub use error::CryptoError;
pub use keyring::{KeyInfo, Keyring};
pub use password::{dummy_password_hash, hash_password, verify_password};
pub use password_gen::{
    MAX_PASSPHRASE_WORDS, MIN_PASSPHRASE_WORDS, PasswordSpec, generate_passphrase, generate_password,
};
pub use provider::KeyProvider;
pub use sealing::{ENCAPPED_KEY_LEN, MAX_SEALED_LEN, SEALED_OVERHEAD, SealingKey, SealingPublicKey, seal_to};
pub use signing::{DeviceSigningKey, DeviceVerifyingKey, REQUEST_SIGNING_LABEL, SIGNATURE_LEN, request_signing_bytes};
pub use token::generate_token;
