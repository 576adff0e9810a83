//! The names of the accounts that receive an elevation.
//!
//! # Directory (Active Directory `sAMAccountName`, at most 20 characters)
//!
//! The tech account is `<user>-<prefix>`:
//! 1. `<user>` is the requester's account name without a `DOMAIN\` before it or an
//!    `@suffix` after it, lower-cased, keeping only `a-z`, `0-9`, `.`, `_` and `-`, with dots
//!    and dashes trimmed from both ends;
//! 2. `<prefix>` is the tenant prefix (`a-z`, `0-9`, 1 to 8 characters), kept whole;
//! 3. `<user>` is cut to `20 - 1 - len(prefix)` characters (and trimmed again), so the prefix
//!    always survives.
//!
//! Two requesters can end up with the same name (long names sharing their start, or names
//! differing only in dropped characters). The store records which requester owns each tech
//! account name and refuses a request whose name belongs to another requester, so one account
//! never serves two people.
//!
//! # Device (a Linux user name, `[a-z_][a-z0-9_-]{0,31}`)
//!
//! `jit_<user>` with `<user>` derived as above but keeping only `a-z`, `0-9`, `_` and `-`, cut
//! to 32 characters in all. The `jit_` start keeps it apart from system accounts (`root`).

use std::fmt;

/// The longest `sAMAccountName`.
pub const SAM_ACCOUNT_NAME_MAX: usize = 20;
/// The longest Linux user name.
pub const LINUX_NAME_MAX: usize = 32;
/// The longest tenant prefix.
pub const PREFIX_MAX: usize = 8;

/// Why no account name can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNameError {
    #[error("the tenant prefix must be 1 to 8 characters of a-z and 0-9")]
    BadPrefix,
    #[error("the requester's name has no character usable in an account name")]
    NoUsableCharacters,
}

/// A tenant's prefix for tech account names: 1 to 8 of `a-z0-9` (upper case is lowered).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantPrefix(String);

impl TenantPrefix {
    /// Parse a configured prefix.
    pub fn parse(raw: &str) -> Result<Self, AccountNameError> {
        let p = raw.trim().to_ascii_lowercase();
        if p.is_empty() || p.len() > PREFIX_MAX || !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(AccountNameError::BadPrefix);
        }
        Ok(Self(p))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The requester's account name without `DOMAIN\` or `@suffix`.
fn local_part(name: &str) -> &str {
    let name = name.trim();
    let name = name.rsplit_once('\\').map_or(name, |(_, n)| n);
    name.split_once('@').map_or(name, |(n, _)| n)
}

fn cleaned(name: &str, keep: impl Fn(char) -> bool) -> String {
    local_part(name).chars().flat_map(char::to_lowercase).filter(|c| keep(*c)).collect()
}

fn trim_ends(s: &str) -> &str {
    s.trim_matches(|c| c == '.' || c == '-')
}

/// The directory tech account name of `requester` in the tenant with `prefix` (see the
/// module documentation for the rule).
pub fn directory_account_name(requester: &str, prefix: &TenantPrefix) -> Result<String, AccountNameError> {
    let user = cleaned(requester, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    let room = SAM_ACCOUNT_NAME_MAX - 1 - prefix.0.len();
    let cut: String = trim_ends(&user).chars().take(room).collect();
    let user = trim_ends(&cut);
    if user.is_empty() {
        return Err(AccountNameError::NoUsableCharacters);
    }
    Ok(format!("{user}-{}", prefix.0))
}

/// The local account name of `requester` on a device (see the module documentation).
pub fn local_account_name(requester: &str) -> Result<String, AccountNameError> {
    let user = cleaned(requester, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    let user = user.trim_matches('-');
    if user.is_empty() {
        return Err(AccountNameError::NoUsableCharacters);
    }
    let mut name = format!("jit_{user}");
    name.truncate(LINUX_NAME_MAX);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TenantPrefix {
        TenantPrefix::parse(s).unwrap()
    }

    #[test]
    fn short_names_are_kept_whole() {
        assert_eq!(directory_account_name("alice", &p("acme")).unwrap(), "alice-acme");
        assert_eq!(directory_account_name("DEV1\\Alice", &p("ACME")).unwrap(), "alice-acme");
        assert_eq!(directory_account_name("alice@dev1.local", &p("acme")).unwrap(), "alice-acme");
        assert_eq!(directory_account_name("j.doe", &p("acme")).unwrap(), "j.doe-acme");
    }

    #[test]
    fn long_names_are_cut_and_the_prefix_survives() {
        let n = directory_account_name("maximilian.mustermann", &p("contoso")).unwrap();
        assert_eq!(n, "maximilian.m-contoso");
        assert_eq!(n.len(), 20);
        let n = directory_account_name("abcdefghijklmnopqrstuvwxyz", &p("a")).unwrap();
        assert_eq!(n, "abcdefghijklmnopqr-a");
        assert_eq!(n.len(), 20);
        // A cut that ends on a dot is trimmed: AD names may not end with one.
        let n = directory_account_name("abcdefghijk.lmnop", &p("contoso")).unwrap();
        assert_eq!(n, "abcdefghijk-contoso");
    }

    #[test]
    fn every_name_fits_and_is_clean() {
        for raw in ["Zoë Ärger", "x", "a b c d e f g h i j k l m n", "--..--a", "UPPER.CASE.NAME.LONGER.THAN.TWENTY"]
        {
            for prefix in ["a", "acme", "abcdefgh"] {
                if let Ok(n) = directory_account_name(raw, &p(prefix)) {
                    assert!(n.len() <= SAM_ACCOUNT_NAME_MAX, "{n}");
                    assert!(n.ends_with(&format!("-{prefix}")), "{n}");
                    assert!(!n.starts_with(['.', '-']), "{n}");
                }
            }
        }
    }

    #[test]
    fn different_requesters_can_share_a_name_so_the_store_checks() {
        let a = directory_account_name("maximilian.mustermann", &p("contoso")).unwrap();
        let b = directory_account_name("maximilian.meier", &p("contoso")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn unusable_names_and_prefixes_are_refused() {
        assert_eq!(directory_account_name("ÄÖÜ", &p("acme")), Err(AccountNameError::NoUsableCharacters));
        assert_eq!(directory_account_name("DOM\\", &p("acme")), Err(AccountNameError::NoUsableCharacters));
        assert_eq!(TenantPrefix::parse(""), Err(AccountNameError::BadPrefix));
        assert_eq!(TenantPrefix::parse("abcdefghi"), Err(AccountNameError::BadPrefix));
        assert_eq!(TenantPrefix::parse("a-b"), Err(AccountNameError::BadPrefix));
    }

    #[test]
    fn local_names_are_valid_linux_user_names() {
        assert_eq!(local_account_name("Alice").unwrap(), "jit_alice");
        assert_eq!(local_account_name("DEV1\\j.doe").unwrap(), "jit_jdoe");
        assert_eq!(local_account_name("root").unwrap(), "jit_root");
        let long = local_account_name(&"a".repeat(50)).unwrap();
        assert_eq!(long.len(), 32);
        assert_eq!(local_account_name("..."), Err(AccountNameError::NoUsableCharacters));
        for raw in ["9lives", "-x-", "Zoë", "a_b-c"] {
            let n = local_account_name(raw).unwrap();
            let mut chars = n.chars();
            let first = chars.next().unwrap();
            assert!(first.is_ascii_lowercase() || first == '_');
            assert!(chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'), "{n}");
        }
    }
}
