//! Parsed names and identifiers. Handlers only see these types, never raw strings.

use std::fmt;
use uuid::Uuid;

/// Why a name or identifier was refused. The message never echoes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} contains a character that is not allowed")]
    BadChar { field: &'static str },
    #[error("{field} is not a valid UUID")]
    NotUuid { field: &'static str },
    #[error("{field} is not a distinguished name (expected attribute=value pairs separated by commas)")]
    NotDn { field: &'static str },
}

/// A tenant's short name: 1–63 lowercase letters, digits and hyphens, not starting or ending
/// with a hyphen. Used in URLs and as the tenant prefix of JIT account names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Parse a slug; upper case is folded to lower case.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        const FIELD: &str = "tenant";
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(NameError::Empty { field: FIELD });
        }
        if s.len() > 63 {
            return Err(NameError::TooLong { field: FIELD, max: 63 });
        }
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::BadChar { field: FIELD });
        }
        Ok(Self(s))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device's identifier (the deviceId of the compatible APIs), a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Uuid);

impl DeviceId {
    /// Parse the hyphenated or simple UUID form.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        Uuid::parse_str(raw.trim()).map(Self).map_err(|_| NameError::NotUuid { field: "deviceId" })
    }

    /// A fresh random id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The UUID.
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for DeviceId {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A human-readable name of a device, group, user, account, application or token: 1–256
/// characters, no control characters, surrounding white space removed. Compared
/// case-insensitively through [`DisplayName::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// The longest name accepted.
    pub const MAX: usize = 256;

    /// Parse a name for the given field (the field names the error).
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, NameError> {
        bounded_text(field, raw, Self::MAX).map(|s| Self(s.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key the store indexes and compares.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An LDAP distinguished name such as `OU=Workstations,DC=dev1,DC=local`, up to 1024
/// characters. Compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerDn(String);

impl ContainerDn {
    /// The longest DN accepted.
    pub const MAX: usize = 1024;

    /// Parse a DN: comma-separated `attribute=value` components (escaped commas allowed).
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        const FIELD: &str = "containerDn";
        let s = bounded_text(FIELD, raw, Self::MAX)?;
        let valid = split_dn(s).iter().all(|rdn| match rdn.split_once('=') {
            Some((attr, value)) => {
                let attr = attr.trim();
                !attr.is_empty()
                    && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && !value.trim().is_empty()
            }
            None => false,
        });
        if !valid {
            return Err(NameError::NotDn { field: FIELD });
        }
        Ok(Self(s.to_owned()))
    }

    /// The DN as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The comparison key: each `attribute=value` trimmed and lower-cased, joined by commas.
    /// `OU=Workstations, DC=Dev1,DC=local` and `ou=workstations,dc=dev1,dc=local` share a key.
    pub fn key(&self) -> String {
        dn_key(&self.0)
    }

    /// The keys of this DN and every DN above it, nearest first: for `OU=a,DC=x,DC=y` that is
    /// `ou=a,dc=x,dc=y`, `dc=x,dc=y` and `dc=y`.
    pub fn ancestor_keys(&self) -> Vec<String> {
        let key = self.key();
        let rdns = split_dn(&key);
        let mut out = Vec::with_capacity(rdns.len());
        let mut offset = 0;
        for rdn in &rdns {
            out.push(key[offset..].to_owned());
            offset += rdn.len() + 1;
        }
        out
    }
}

/// The DN of the container holding an entry (the DN without its first component), as
/// written; `None` for a DN of one component.
pub fn dn_parent(dn: &str) -> Option<String> {
    let parts = split_dn(dn.trim());
    if parts.len() < 2 {
        return None;
    }
    Some(parts[1..].iter().map(|p| p.trim()).collect::<Vec<_>>().join(","))
}

/// The comparison key of a DN text (see [`ContainerDn::key`]); text that is not a DN is only
/// lower-cased and trimmed.
pub fn dn_key(dn: &str) -> String {
    split_dn(dn.trim())
        .iter()
        .map(|rdn| match rdn.split_once('=') {
            Some((attr, value)) => format!("{}={}", attr.trim().to_lowercase(), value.trim().to_lowercase()),
            None => rdn.trim().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Trimmed text of 1..=`max` characters with no control characters.
fn bounded_text<'a>(field: &'static str, raw: &'a str, max: usize) -> Result<&'a str, NameError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(NameError::Empty { field });
    }
    if s.chars().count() > max {
        return Err(NameError::TooLong { field, max });
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::BadChar { field });
    }
    Ok(s)
}

/// Split a DN at unescaped commas.
pub fn split_dn(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Why a privileged read happens: required, 1–1000 characters, no control characters; stored
/// in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// The longest reason accepted.
    pub const MAX: usize = 1000;

    /// Parse a reason.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        bounded_text("reason", raw, Self::MAX).map(|s| Self(s.to_owned()))
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_slug_rules() {
        assert_eq!(TenantSlug::parse(" Acme-1 ").unwrap().as_str(), "acme-1");
        assert!(matches!(TenantSlug::parse(""), Err(NameError::Empty { .. })));
        assert!(matches!(TenantSlug::parse("-acme"), Err(NameError::BadChar { .. })));
        assert!(matches!(TenantSlug::parse("ac me"), Err(NameError::BadChar { .. })));
        assert!(matches!(TenantSlug::parse(&"a".repeat(64)), Err(NameError::TooLong { .. })));
    }

    #[test]
    fn device_id_accepts_uuid_only() {
        let id = DeviceId::parse("5A2F2169-0000-4000-8000-000000000001").unwrap();
        assert_eq!(id.to_string(), "5a2f2169-0000-4000-8000-000000000001");
        assert!(matches!(DeviceId::parse("not-a-uuid"), Err(NameError::NotUuid { .. })));
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(DisplayName::parse("name", "  PC-01 ").unwrap().key(), "pc-01");
        assert!(DisplayName::parse("name", "a\u{0}b").is_err());
        assert!(DisplayName::parse("name", &"x".repeat(257)).is_err());
        assert!(DisplayName::parse("name", &"é".repeat(256)).is_ok());
    }

    #[test]
    fn dn_rules() {
        assert!(ContainerDn::parse("OU=Workstations,DC=dev1,DC=local").is_ok());
        assert!(ContainerDn::parse("CN=Smith\\, John,OU=People,DC=x").is_ok());
        assert!(ContainerDn::parse("Workstations").is_err());
        assert!(ContainerDn::parse("OU=,DC=x").is_err());
        assert!(ContainerDn::parse("OU=a,,DC=x").is_err());
    }

    #[test]
    fn dn_keys_ignore_case_and_spacing() {
        let a = ContainerDn::parse("OU=Workstations, DC=Dev1,DC=local").unwrap();
        let b = ContainerDn::parse("ou=workstations,dc=dev1 , dc=LOCAL").unwrap();
        assert_eq!(a.key(), "ou=workstations,dc=dev1,dc=local");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.ancestor_keys(), vec!["ou=workstations,dc=dev1,dc=local", "dc=dev1,dc=local", "dc=local"]);
        let escaped = ContainerDn::parse("OU=Smith\\, John,DC=x").unwrap();
        assert_eq!(escaped.ancestor_keys(), vec!["ou=smith\\, john,dc=x", "dc=x"]);
        assert_eq!(dn_parent("CN=WS1,OU=Workstations,DC=x").as_deref(), Some("OU=Workstations,DC=x"));
        assert_eq!(dn_parent("CN=Smith\\, John, OU=People,DC=x").as_deref(), Some("OU=People,DC=x"));
        assert_eq!(dn_parent("DC=x"), None);
    }

    #[test]
    fn reason_rules() {
        assert!(Reason::parse("ticket 1234: printer fix").is_ok());
        assert!(Reason::parse("   ").is_err());
        assert!(Reason::parse(&"r".repeat(1001)).is_err());
    }
}
