//! Sealing and opening secret versions with the keyring, bound to their place in the store.

use std::sync::{Arc, RwLock};

use latchkey_core::model::{SecretField, SecretVersion};
use latchkey_crypto::{Binding, CryptoError, KeyProvider, Keyring};
use latchkey_store::{SealFn, SealedSecret};
use zeroize::Zeroizing;

const TABLE: &str = "secret_versions";

fn binding<'a>(tenant_id: &'a str, account_id: &'a str, field: SecretField, version: i64) -> Binding<'a> {
    Binding { tenant: tenant_id, table: TABLE, row: account_id, field: field.as_str(), version }
}

/// A closure that seals the given plaintexts once the store has numbered the version.
pub fn seal_fn(
    keyring: Arc<RwLock<Keyring>>,
    tenant_id: String,
    account_id: String,
    password: Option<Zeroizing<String>>,
    ssh_key: Option<Zeroizing<String>>,
) -> SealFn {
    Box::new(move |version| {
        let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
        let seal_one = |field, text: &Option<Zeroizing<String>>| -> Result<Option<Vec<u8>>, String> {
            text.as_ref()
                .map(|t| {
                    latchkey_crypto::seal(&*ring, &binding(&tenant_id, &account_id, field, version), t.as_bytes())
                        .map_err(|e| e.to_string())
                })
                .transpose()
        };
        Ok(SealedSecret {
            password: seal_one(SecretField::Password, &password)?,
            ssh_key: seal_one(SecretField::SshPrivateKey, &ssh_key)?,
            key_id: ring.active_key_id(),
        })
    })
}

/// The plaintexts of a version.
pub struct Opened {
    pub password: Option<Zeroizing<String>>,
    pub ssh_key: Option<Zeroizing<String>>,
}

/// Open both fields of a version.
pub fn open_version(ring: &Keyring, v: &SecretVersion) -> Result<Opened, CryptoError> {
    let open_one = |field, env: &Option<Vec<u8>>| -> Result<Option<Zeroizing<String>>, CryptoError> {
        env.as_ref()
            .map(|e| {
                let plain = latchkey_crypto::open(ring, &binding(&v.tenant_id, &v.account_id, field, v.version), e)?;
                String::from_utf8(plain.to_vec())
                    .map(Zeroizing::new)
                    .map_err(|_| CryptoError::Malformed("plaintext is not UTF-8"))
            })
            .transpose()
    };
    Ok(Opened {
        password: open_one(SecretField::Password, &v.password_envelope)?,
        ssh_key: open_one(SecretField::SshPrivateKey, &v.ssh_key_envelope)?,
    })
}

/// Re-wrap both fields of a version under the active key. Returns the new version record.
pub fn rewrap_version(ring: &Keyring, v: &SecretVersion) -> Result<SecretVersion, CryptoError> {
    let rewrap_one = |field, env: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, CryptoError> {
        env.as_ref()
            .map(|e| latchkey_crypto::rewrap(ring, &binding(&v.tenant_id, &v.account_id, field, v.version), e))
            .transpose()
    };
    let mut out = v.clone();
    out.password_envelope = rewrap_one(SecretField::Password, &v.password_envelope)?;
    out.ssh_key_envelope = rewrap_one(SecretField::SshPrivateKey, &v.ssh_key_envelope)?;
    out.key_id = ring.active_key_id();
    Ok(out)
}

/// Re-wrap a grant's temporary password under the active key. Returns the new record.
pub fn rewrap_grant_password(
    ring: &Keyring,
    g: &latchkey_store::GrantPasswordEnvelope,
) -> Result<latchkey_store::GrantPasswordEnvelope, String> {
    let mut out = g.clone();
    out.envelope = crate::jit::password::rewrap(ring, &g.tenant_id, &g.grant_id, &g.envelope)?;
    out.key_id = ring.active_key_id();
    Ok(out)
}
