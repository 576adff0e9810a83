//! Principals (users and groups) as people write them: `DOMAIN\name`, `name@upn.suffix` or a
//! plain `name`, compared case-insensitively.
//!
//! Every form has one account-name key (the part a directory calls sAMAccountName or uid):
//! `DEV1\Alice`, `alice@dev1.local` and `ALICE` all have the key `alice`. Reader lists resolve
//! a principal by that key (a UPN first tries the user with exactly that UPN), and failed
//! sign-ins are counted per key, so every way of writing a name shares one counter.

use std::fmt;

use crate::names::NameError;

/// The longest principal accepted.
const MAX: usize = 256;

/// How a principal was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PrincipalForm {
    /// `DOMAIN\name`.
    DownLevel { domain: String },
    /// `name@suffix`.
    Upn,
    /// `name`.
    Plain,
}

/// A parsed principal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    raw: String,
    name: String,
    form: PrincipalForm,
}

impl Principal {
    /// Parse `DOMAIN\name`, `name@suffix` or `name`: 1–256 characters, no control characters,
    /// non-empty parts, at most one `\` and one `@`, not both.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        const FIELD: &str = "principal";
        let s = raw.trim();
        if s.is_empty() {
            return Err(NameError::Empty { field: FIELD });
        }
        if s.chars().count() > MAX {
            return Err(NameError::TooLong { field: FIELD, max: MAX });
        }
        let bad = || NameError::BadChar { field: FIELD };
        if s.chars().any(char::is_control) || s.matches('\\').count() > 1 || s.matches('@').count() > 1 {
            return Err(bad());
        }
        let (name, form) = match (s.split_once('\\'), s.split_once('@')) {
            (Some(_), Some(_)) => return Err(bad()),
            (Some((domain, name)), None) => {
                if domain.trim().is_empty() {
                    return Err(bad());
                }
                (name, PrincipalForm::DownLevel { domain: domain.trim().to_lowercase() })
            }
            (None, Some((name, suffix))) => {
                if suffix.trim().is_empty() {
                    return Err(bad());
                }
                (name, PrincipalForm::Upn)
            }
            (None, None) => (s, PrincipalForm::Plain),
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Self { raw: s.to_owned(), name: name.to_lowercase(), form })
    }

    /// The principal as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// How it was written.
    pub fn form(&self) -> &PrincipalForm {
        &self.form
    }

    /// The account-name key: the name part, lower case.
    pub fn name_key(&self) -> &str {
        &self.name
    }

    /// The whole UPN in lower case, for the `name@suffix` form.
    pub fn upn_key(&self) -> Option<String> {
        (self.form == PrincipalForm::Upn).then(|| self.raw.to_lowercase())
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_shares_one_key() {
        for raw in ["DEV1\\Alice", "alice@dev1.local", "ALICE", "  alice  ", "dev1\\ALICE"] {
            assert_eq!(Principal::parse(raw).unwrap().name_key(), "alice", "{raw}");
        }
    }

    #[test]
    fn forms_are_told_apart() {
        let p = Principal::parse("DEV1\\Alice").unwrap();
        assert_eq!(p.form(), &PrincipalForm::DownLevel { domain: "dev1".into() });
        assert_eq!(p.upn_key(), None);
        let p = Principal::parse("Alice@Dev1.Local").unwrap();
        assert_eq!(p.form(), &PrincipalForm::Upn);
        assert_eq!(p.upn_key().as_deref(), Some("alice@dev1.local"));
        assert_eq!(Principal::parse("Domain Admins").unwrap().name_key(), "domain admins");
    }

    #[test]
    fn malformed_principals_are_refused() {
        for raw in ["", "   ", "\\alice", "DEV1\\", "alice@", "@dev1", "a\\b\\c", "a@b@c", "D\\a@b", "al\u{7}ice"] {
            assert!(Principal::parse(raw).is_err(), "{raw:?} was accepted");
        }
        assert!(Principal::parse(&"a".repeat(257)).is_err());
        assert!(Principal::parse(&"a".repeat(256)).is_ok());
    }
}
