//! The OS layer: [`LocalAccounts`] and the types its calls share.
//!
//! One backend per platform implements the trait ([`linux::LinuxAccounts`] on Linux; a Windows
//! backend can follow behind the same calls). Callers hold a `dyn LocalAccounts` or a generic.

#[cfg(target_os = "linux")]
pub mod linux;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::str::FromStr;

use secrecy::SecretString;

/// Local account operations on one device. Every call is idempotent where the doc says so.
///
/// Calls are blocking (they run system tools): async callers run them on a blocking thread.
pub trait LocalAccounts: Send + Sync {
    /// Create the account if missing (home directory not required), else leave it. Idempotent.
    fn ensure_user(&self, name: &AccountName) -> Result<(), OsError>;

    /// Set the password (hashed by the system tool: yescrypt on Linux). The password is passed on
    /// stdin, never argv.
    ///
    /// Rejected before any tool runs ([`OsError::InvalidPassword`]): an empty password, one longer
    /// than 256 bytes, or one holding a NUL, CR or LF.
    fn set_password(&self, name: &AccountName, password: &SecretString) -> Result<(), OsError>;

    /// Add to a group (e.g. `sudo`); idempotent (already a member: Ok). The account and the group
    /// must exist.
    fn add_to_group(&self, name: &AccountName, group: &str) -> Result<(), OsError>;

    /// Remove from a group; idempotent (not a member, or no such account: Ok).
    fn remove_from_group(&self, name: &AccountName, group: &str) -> Result<(), OsError>;

    /// Set the account expiry date (`chage -E YYYY-MM-DD`); `None` clears it. The account must
    /// exist. Dates before 1970-01-02 are rejected (day 0 and negative days are ambiguous in the
    /// shadow format: `-1` means "never").
    fn set_expiry(&self, name: &AccountName, date: Option<time::Date>) -> Result<(), OsError>;

    /// Delete the account (and its home if any); idempotent (missing: Ok).
    fn delete_user(&self, name: &AccountName) -> Result<(), OsError>;

    /// Whether the account exists; its groups; its expiry date (from the root's `/etc/passwd`,
    /// `/etc/group`, `/etc/shadow`).
    fn user_info(&self, name: &AccountName) -> Result<Option<UserInfo>, OsError>;

    /// Local accounts whose names start with a prefix (to find `ADM-` support accounts), in the
    /// order of the account database.
    fn users_with_prefix(&self, prefix: &str) -> Result<Vec<AccountName>, OsError>;

    /// Whether `password` is the account's current password, checked against the stored hash
    /// (for tests and reconciliation). A missing account, or one without a password hash, gives
    /// `false`. A lock (the `!` prefix of `usermod -L`) does not change the answer: the locked
    /// hash is still compared; see [`UserInfo::locked`].
    fn verify_password(&self, name: &AccountName, password: &SecretString) -> Result<bool, OsError>;
}

/// What [`LocalAccounts::user_info`] reports about an existing account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The account.
    pub name: AccountName,
    /// Its supplementary groups (the groups whose member list names it), in database order. The
    /// primary group is not listed: group membership calls never change it.
    pub groups: Vec<String>,
    /// The account expiry date, if any (from `/etc/shadow`, field 8).
    pub expires: Option<time::Date>,
    /// Whether the password is locked (the stored hash starts with `!`: a new account without
    /// a password, or `usermod -L`).
    pub locked: bool,
}

/// A local account name, checked so that it is safe to hand to any account tool.
///
/// 1 to 32 characters from `[a-zA-Z0-9._-]`, not starting with `-` (so it can never be read as
/// an option), not made of digits only (it would read as a numeric ID) and not `.` or `..` (it
/// would name a directory as a home).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountName(String);

impl AccountName {
    /// The longest accepted name, in characters.
    pub const MAX_LEN: usize = 32;

    /// Checks `name` (see the type's doc).
    pub fn new(name: impl Into<String>) -> Result<Self, AccountNameError> {
        let name = name.into();
        Self::check(&name)?;
        Ok(Self(name))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }

    fn check(name: &str) -> Result<(), AccountNameError> {
        if name.is_empty() {
            return Err(AccountNameError::Empty);
        }
        if let Some((index, ch)) =
            name.chars().enumerate().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(AccountNameError::InvalidChar { ch, index });
        }
        // Only ASCII is left: bytes and characters are the same count.
        if name.len() > Self::MAX_LEN {
            return Err(AccountNameError::TooLong { len: name.len() });
        }
        if name.starts_with('-') {
            return Err(AccountNameError::LeadingHyphen);
        }
        if name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AccountNameError::Numeric);
        }
        if name == "." || name == ".." {
            return Err(AccountNameError::DotName);
        }
        Ok(())
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AccountName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountName {
    type Err = AccountNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for AccountName {
    type Error = AccountNameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for AccountName {
    type Error = AccountNameError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

/// Why a string is not an [`AccountName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountNameError {
    /// The empty string.
    #[error("account name is empty")]
    Empty,
    /// More than [`AccountName::MAX_LEN`] characters.
    #[error("account name has {len} characters (at most 32)")]
    TooLong {
        /// The length found.
        len: usize,
    },
    /// A character outside `[a-zA-Z0-9._-]`.
    #[error("account name has {ch:?} at position {index} (allowed: a-z A-Z 0-9 . _ -)")]
    InvalidChar {
        /// The character.
        ch: char,
        /// Its position, in characters from 0.
        index: usize,
    },
    /// Starts with `-` (would read as an option).
    #[error("account name starts with '-'")]
    LeadingHyphen,
    /// Digits only (would read as a numeric ID).
    #[error("account name is all digits")]
    Numeric,
    /// `.` or `..`.
    #[error("account name is '.' or '..'")]
    DotName,
}

/// A failed local-account operation.
///
/// Never holds a password: passwords only reach tools on their standard input, and no variant
/// copies one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OsError {
    /// The system tool is not installed (searched in the fixed tool path).
    #[error("{tool} not found in {searched} (is its package installed?)")]
    ToolNotFound {
        /// The tool, e.g. `useradd`.
        tool: &'static str,
        /// The directories searched, `:`-separated.
        searched: &'static str,
    },
    /// The tool could not be started or waited for.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The tool ran and failed.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        /// The tool.
        tool: &'static str,
        /// Its exit status (`status.code()` gives the exit code).
        status: ExitStatus,
        /// Its standard error, trimmed and cut to a few KiB.
        stderr: String,
    },
    /// An account database (or another file) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The account's own line in an account database is malformed.
    #[error("{}, line {line}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The password cannot be set (its content is never included).
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// Another argument is unusable (a group name, a date, a root directory).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation is refused on this account (e.g. deleting UID 0).
    #[error("refused: {0}")]
    Refused(String),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn accepts_support_and_admin_names() {
        for ok in ["ADM-1A2B3C4D", "latchkey-admin", "a", "a.b_c-d", "x1", "_svc", &"a".repeat(32)] {
            assert_eq!(AccountName::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_unsafe_names() {
        assert_eq!(AccountName::new(""), Err(AccountNameError::Empty));
        assert_eq!(AccountName::new("-rf"), Err(AccountNameError::LeadingHyphen));
        assert_eq!(AccountName::new("a".repeat(33)), Err(AccountNameError::TooLong { len: 33 }));
        assert_eq!(AccountName::new("a b"), Err(AccountNameError::InvalidChar { ch: ' ', index: 1 }));
        assert_eq!(AccountName::new("x;y"), Err(AccountNameError::InvalidChar { ch: ';', index: 1 }));
        assert_eq!(AccountName::new("1234"), Err(AccountNameError::Numeric));
        assert_eq!(AccountName::new(".."), Err(AccountNameError::DotName));
        for bad in ["a:b", "a/b", "a\nb", "é", "a,b", "a$", "\0"] {
            assert!(AccountName::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
