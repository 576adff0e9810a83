//! The temporary password of a grant: generated once, shown once, kept sealed by the vault
//! (bound to the tenant, the `jit_grants` table and the grant's id) for the engine and for an
//! admin's audited recovery.

use latchkey_crypto::{Binding, KeyProvider, Keyring, PasswordSpec};
use secrecy::{ExposeSecret, SecretString};

const TABLE: &str = "jit_grants";
const FIELD: &str = "password";

fn binding<'a>(tenant_id: &'a str, grant_id: &'a str) -> Binding<'a> {
    Binding { tenant: tenant_id, table: TABLE, row: grant_id, field: FIELD, version: 1 }
}

/// A new random password: 24 characters from every class, which meets Active Directory's
/// complexity rule.
pub fn generate() -> Result<SecretString, String> {
    latchkey_crypto::generate_password(&PasswordSpec::default()).ok_or_else(|| "cannot generate a password".to_owned())
}

/// Seal a grant's password; returns the envelope and the key id.
pub fn seal(
    ring: &Keyring,
    tenant_id: &str,
    grant_id: &str,
    password: &SecretString,
) -> Result<(Vec<u8>, String), String> {
    let envelope = latchkey_crypto::seal(ring, &binding(tenant_id, grant_id), password.expose_secret().as_bytes())
        .map_err(|e| e.to_string())?;
    Ok((envelope, ring.active_key_id()))
}

/// Open a grant's password.
pub fn open(ring: &Keyring, tenant_id: &str, grant_id: &str, envelope: &[u8]) -> Result<SecretString, String> {
    let plain = latchkey_crypto::open(ring, &binding(tenant_id, grant_id), envelope).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&plain).map_err(|_| "the sealed password is not UTF-8".to_owned())?;
    Ok(SecretString::from(text.to_owned()))
}

/// Re-wrap a grant's password envelope under the active key (the vault's re-key job).
pub fn rewrap(ring: &Keyring, tenant_id: &str, grant_id: &str, envelope: &[u8]) -> Result<Vec<u8>, String> {
    latchkey_crypto::rewrap(ring, &binding(tenant_id, grant_id), envelope).map_err(|e| e.to_string())
}
