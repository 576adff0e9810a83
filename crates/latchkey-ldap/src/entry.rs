//! Reading users, groups and computers out of search entries, per flavor: attribute names,
//! GUID and SID decoding, the disabled flag.

use std::collections::HashMap;

use ldap3::SearchEntry;

use crate::Flavor;
use crate::snapshot::{DirectoryComputer, DirectoryUser};

/// ACCOUNTDISABLE in `userAccountControl`.
const ACCOUNT_DISABLE: u32 = 0x2;

/// Attributes read for users.
pub(crate) fn user_attributes(flavor: Flavor) -> Vec<&'static str> {
    match flavor {
        Flavor::ActiveDirectory => vec![
            "sAMAccountName",
            "userPrincipalName",
            "displayName",
            "mail",
            "objectGUID",
            "userAccountControl",
            "primaryGroupID",
        ],
        Flavor::Openldap => vec!["uid", "cn", "displayName", "mail", "entryUUID", "pwdAccountLockedTime"],
    }
}

/// Attributes read for groups.
pub(crate) fn group_attributes(flavor: Flavor) -> Vec<&'static str> {
    match flavor {
        Flavor::ActiveDirectory => vec!["sAMAccountName", "cn", "objectGUID", "objectSid", "member"],
        Flavor::Openldap => vec!["cn", "entryUUID", "member", "uniqueMember"],
    }
}

/// Attributes read for computers.
pub(crate) fn computer_attributes(flavor: Flavor) -> Vec<&'static str> {
    match flavor {
        Flavor::ActiveDirectory => vec!["cn", "sAMAccountName", "dNSHostName", "objectGUID", "primaryGroupID"],
        Flavor::Openldap => vec!["cn", "entryUUID"],
    }
}

/// The attribute naming a user's account.
pub(crate) fn account_attribute(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::ActiveDirectory => "sAMAccountName",
        Flavor::Openldap => "uid",
    }
}

/// The attribute holding a user's UPN, where the flavor has one.
pub(crate) fn upn_attribute(flavor: Flavor) -> Option<&'static str> {
    match flavor {
        Flavor::ActiveDirectory => Some("userPrincipalName"),
        Flavor::Openldap => None,
    }
}

/// A search entry with attribute names looked up case-insensitively.
pub(crate) struct Entry {
    pub dn: String,
    text: HashMap<String, Vec<String>>,
    binary: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    pub fn new(e: SearchEntry) -> Self {
        Self { dn: e.dn, text: lower_keys(e.attrs), binary: lower_keys(e.bin_attrs) }
    }

    /// The first text value, trimmed, if not empty.
    pub fn first(&self, attr: &str) -> Option<String> {
        self.text
            .get(&attr.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Every text value.
    pub fn all(&self, attr: &str) -> &[String] {
        self.text.get(&attr.to_ascii_lowercase()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first value as bytes (binary values that happen to be UTF-8 arrive as text).
    pub fn first_bytes(&self, attr: &str) -> Option<Vec<u8>> {
        let key = attr.to_ascii_lowercase();
        if let Some(v) = self.binary.get(&key).and_then(|v| v.first()) {
            return Some(v.clone());
        }
        self.text.get(&key).and_then(|v| v.first()).map(|s| s.as_bytes().to_vec())
    }

    /// Names of the attributes present (lower case).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.text.keys()
    }

    /// The object's stable identifier: `objectGUID` or `entryUUID`, lower case.
    pub fn external_id(&self, flavor: Flavor) -> Option<String> {
        match flavor {
            Flavor::ActiveDirectory => self.first_bytes("objectGUID").and_then(|b| guid_text(&b)),
            Flavor::Openldap => self.first("entryUUID").map(|s| s.to_lowercase()),
        }
    }

    /// `primaryGroupID` (Active Directory).
    pub fn primary_group_rid(&self) -> Option<u32> {
        self.first("primaryGroupID").and_then(|s| s.parse().ok())
    }

    /// The relative id of `objectSid` (Active Directory groups).
    pub fn sid_rid(&self) -> Option<u32> {
        self.first_bytes("objectSid").and_then(|b| sid_rid(&b))
    }
}

fn lower_keys<V>(m: HashMap<String, V>) -> HashMap<String, V> {
    m.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()
}

/// A user, or `None` when the entry lacks its account name or identifier.
pub(crate) fn user(flavor: Flavor, e: &Entry) -> Option<DirectoryUser> {
    let account_name = e.first(account_attribute(flavor))?;
    let external_id = e.external_id(flavor)?;
    let (display_name, disabled) = match flavor {
        Flavor::ActiveDirectory => {
            let uac = e.first("userAccountControl").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
            // AD writes the flags as a signed 32-bit integer.
            let flags = uac as u32;
            (e.first("displayName"), flags & ACCOUNT_DISABLE != 0)
        }
        Flavor::Openldap => {
            (e.first("displayName").or_else(|| e.first("cn")), e.first("pwdAccountLockedTime").is_some())
        }
    };
    Some(DirectoryUser {
        dn: e.dn.clone(),
        external_id,
        account_name,
        upn: upn_attribute(flavor).and_then(|a| e.first(a)),
        display_name,
        email: e.first("mail"),
        disabled,
    })
}

/// A group's name: `sAMAccountName` (falling back to `cn`) or `cn`.
pub(crate) fn group_name(flavor: Flavor, e: &Entry) -> Option<String> {
    match flavor {
        Flavor::ActiveDirectory => e.first("sAMAccountName").or_else(|| e.first("cn")),
        Flavor::Openldap => e.first("cn"),
    }
}

/// A computer, or `None` when the entry lacks its name or identifier.
pub(crate) fn computer(flavor: Flavor, e: &Entry) -> Option<DirectoryComputer> {
    let name = e.first("cn").or_else(|| e.first("sAMAccountName").map(|s| s.trim_end_matches('$').to_owned()))?;
    Some(DirectoryComputer {
        dn: e.dn.clone(),
        external_id: e.external_id(flavor)?,
        name,
        dns_host_name: e.first("dNSHostName"),
    })
}

/// An Active Directory GUID (16 bytes, the first three fields little-endian) as
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub(crate) fn guid_text(b: &[u8]) -> Option<String> {
    let b: &[u8; 16] = b.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// The last sub-authority (the relative id) of a binary SID.
pub(crate) fn sid_rid(b: &[u8]) -> Option<u32> {
    let count = usize::from(*b.get(1)?);
    if count == 0 || b.len() != 8 + 4 * count {
        return None;
    }
    let last = &b[b.len() - 4..];
    Some(u32::from_le_bytes([last[0], last[1], last[2], last[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_uses_the_mixed_endian_layout() {
        let bytes = [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
        assert_eq!(guid_text(&bytes).as_deref(), Some("00112233-4455-6677-8899-aabbccddeeff"));
        assert_eq!(guid_text(&bytes[..15]), None);
    }

    #[test]
    fn sid_relative_id() {
        // S-1-5-21-1-2-3-513
        let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1, 2, 3, 513] {
            sid.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(sid_rid(&sid), Some(513));
        assert_eq!(sid_rid(&sid[..sid.len() - 1]), None);
        assert_eq!(sid_rid(&[1, 0, 0, 0, 0, 0, 0, 5]), None);
    }
}
