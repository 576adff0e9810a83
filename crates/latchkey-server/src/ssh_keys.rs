//! SSH keys of accounts: generation (Ed25519, RSA 3072), import of an OpenSSH private key,
//! public facts, and encryption with a passphrase before showing. Key generation and
//! encryption are CPU-heavy (RSA primes, bcrypt-pbkdf): async callers run them on a blocking
//! thread.

use ssh_key::private::RsaKeypair;
use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
use zeroize::Zeroizing;

/// The algorithms Latchkey generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ed25519,
    Rsa3072,
}

/// Why a key was refused or could not be made. Messages never hold key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)")]
    NotOpenSsh,
    #[error("the private key is protected by a passphrase; import it without one")]
    Encrypted,
    #[error("the key's algorithm is not supported (Ed25519 and RSA are)")]
    Unsupported,
    #[error("key operation failed: {0}")]
    Crypto(String),
}

/// The public facts of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicFacts {
    /// `ssh-ed25519` or `ssh-rsa`.
    pub algorithm: String,
    /// The OpenSSH public key line.
    pub public_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
}

/// A new private key in OpenSSH form.
pub fn generate(algorithm: KeyAlgorithm, comment: &str) -> Result<Zeroizing<String>, KeyError> {
    let mut key = match algorithm {
        KeyAlgorithm::Ed25519 => {
            PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(|e| KeyError::Crypto(e.to_string()))?
        }
        KeyAlgorithm::Rsa3072 => {
            let pair = RsaKeypair::random(&mut OsRng, 3072).map_err(|e| KeyError::Crypto(e.to_string()))?;
            PrivateKey::from(pair)
        }
    };
    key.set_comment(comment);
    key.to_openssh(LineEnding::LF).map_err(|e| KeyError::Crypto(e.to_string()))
}

/// Parse an OpenSSH private key to import: unencrypted, Ed25519 or RSA. Returns it in
/// canonical OpenSSH form.
pub fn import(pem: &str) -> Result<Zeroizing<String>, KeyError> {
    let key = PrivateKey::from_openssh(pem.trim()).map_err(|_| KeyError::NotOpenSsh)?;
    if key.is_encrypted() {
        return Err(KeyError::Encrypted);
    }
    if !matches!(key.algorithm(), Algorithm::Ed25519 | Algorithm::Rsa { .. }) {
        return Err(KeyError::Unsupported);
    }
    key.to_openssh(LineEnding::LF).map_err(|e| KeyError::Crypto(e.to_string()))
}

/// The public facts of a stored private key.
pub fn public_facts(pem: &str) -> Result<PublicFacts, KeyError> {
    let key = PrivateKey::from_openssh(pem.trim()).map_err(|_| KeyError::NotOpenSsh)?;
    let public = key.public_key();
    Ok(PublicFacts {
        algorithm: key.algorithm().as_str().to_owned(),
        public_key: public.to_openssh().map_err(|e| KeyError::Crypto(e.to_string()))?,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

/// The key encrypted with `passphrase` (AES-256-CTR, bcrypt-pbkdf), in OpenSSH form.
pub fn encrypt(pem: &str, passphrase: &str) -> Result<Zeroizing<String>, KeyError> {
    let key = PrivateKey::from_openssh(pem.trim()).map_err(|_| KeyError::NotOpenSsh)?;
    let encrypted = key.encrypt(&mut OsRng, passphrase).map_err(|e| KeyError::Crypto(e.to_string()))?;
    encrypted.to_openssh(LineEnding::LF).map_err(|e| KeyError::Crypto(e.to_string()))
}

/// A new key of the same algorithm as `pem` (for a reset).
pub fn regenerate(pem: &str, comment: &str) -> Result<Zeroizing<String>, KeyError> {
    let key = PrivateKey::from_openssh(pem.trim()).map_err(|_| KeyError::NotOpenSsh)?;
    match key.algorithm() {
        Algorithm::Rsa { .. } => generate(KeyAlgorithm::Rsa3072, comment),
        _ => generate(KeyAlgorithm::Ed25519, comment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_import_encrypt_round_trip() {
        let pem = generate(KeyAlgorithm::Ed25519, "db-root").unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let facts = public_facts(&pem).unwrap();
        assert_eq!(facts.algorithm, "ssh-ed25519");
        assert!(facts.public_key.starts_with("ssh-ed25519 ") && facts.fingerprint.starts_with("SHA256:"));
        assert_eq!(import(&pem).unwrap().as_str(), pem.as_str());
        let encrypted = encrypt(&pem, "correct horse").unwrap();
        assert_eq!(import(&encrypted), Err(KeyError::Encrypted));
        let reopened = PrivateKey::from_openssh(encrypted.as_str()).unwrap().decrypt("correct horse").unwrap();
        assert_eq!(reopened.fingerprint(HashAlg::Sha256).to_string(), facts.fingerprint);
        assert_eq!(import("not a key"), Err(KeyError::NotOpenSsh));
    }
}
