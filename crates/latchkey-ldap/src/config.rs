//! Settings of one directory: where it is, how the service account binds, what is read, and
//! how often. Parsed from TOML (`deny_unknown_fields`) and checked once with
//! [`DirectoryConfig::validate`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::DirectoryError;

/// Which kind of directory: decides the default filters and which attributes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// Active Directory (and Samba AD): `sAMAccountName`, `userPrincipalName`, `objectGUID`,
    /// `userAccountControl`, `primaryGroupID`.
    #[default]
    ActiveDirectory,
    /// OpenLDAP: `uid`, `entryUUID`, `groupOfNames` / `groupOfUniqueNames`, disabled by the
    /// ppolicy `pwdAccountLockedTime`.
    Openldap,
}

/// One directory to read users, groups and computers from, and to check passwords against.
///
/// The bind password comes from exactly one of `bind_password`, `bind_password_file` (one
/// trailing newline dropped) or `bind_password_env` (the name of an environment variable).
/// TLS is always used (`ldaps://`, or `ldap://` with `starttls = true`) and the server's
/// certificate is always checked: against `ca_file` when set, else the system's roots.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldaps://host[:port]`, or `ldap://host[:port]` with `starttls = true`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// The service account's DN (or, on Active Directory, its UPN).
    pub bind_dn: String,
    /// The service account's password.
    #[serde(default)]
    pub bind_password: Option<SecretString>,
    /// A file holding the service account's password.
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// An environment variable holding the service account's password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// Where users, groups and computers are searched unless their own base is set.
    pub base_dn: String,
    #[serde(default)]
    pub flavor: Flavor,
    #[serde(default)]
    pub users_base_dn: Option<String>,
    #[serde(default)]
    pub groups_base_dn: Option<String>,
    #[serde(default)]
    pub computers_base_dn: Option<String>,
    /// LDAP filter selecting users (default per flavor).
    #[serde(default)]
    pub users_filter: Option<String>,
    /// LDAP filter selecting groups (default per flavor).
    #[serde(default)]
    pub groups_filter: Option<String>,
    /// LDAP filter selecting computers (default per flavor).
    #[serde(default)]
    pub computers_filter: Option<String>,
    /// PEM file of the CA certificate(s) that signed the directory's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Minutes between scheduled syncs (default 15).
    #[serde(default)]
    pub sync_interval_minutes: Option<u64>,
    /// Seconds to wait for the connection and TLS handshake (default 10).
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Seconds to wait for each LDAP operation (default 60).
    #[serde(default)]
    pub operation_timeout_secs: Option<u64>,
    /// Entries per page of a paged search (default 500; Active Directory answers at most 1000).
    #[serde(default)]
    pub page_size: Option<u32>,
}

const AD_USERS: &str = "(&(objectCategory=person)(objectClass=user))";
const AD_GROUPS: &str = "(objectClass=group)";
const AD_COMPUTERS: &str = "(objectClass=computer)";
const OPENLDAP_USERS: &str = "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))";
const OPENLDAP_GROUPS: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))";
const OPENLDAP_COMPUTERS: &str = "(&(objectClass=device)(!(objectClass=pwdPolicy)))";

impl DirectoryConfig {
    /// A configuration with the defaults for everything but the connection and the service
    /// account.
    pub fn new(url: &str, bind_dn: &str, bind_password: SecretString, base_dn: &str, flavor: Flavor) -> Self {
        Self {
            url: url.to_owned(),
            starttls: false,
            bind_dn: bind_dn.to_owned(),
            bind_password: Some(bind_password),
            bind_password_file: None,
            bind_password_env: None,
            base_dn: base_dn.to_owned(),
            flavor,
            users_base_dn: None,
            groups_base_dn: None,
            computers_base_dn: None,
            users_filter: None,
            groups_filter: None,
            computers_filter: None,
            ca_file: None,
            sync_interval_minutes: None,
            connect_timeout_secs: None,
            operation_timeout_secs: None,
            page_size: None,
        }
    }

    /// Check every setting, read the password source and the CA file once, and say what is
    /// wrong so a person can fix it. Nothing is contacted.
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let bad = |m: String| Err(DirectoryError::Config(m));
        let url = self.url.trim();
        let rest = match (url.strip_prefix("ldaps://"), url.strip_prefix("ldap://")) {
            (Some(_), _) if self.starttls => {
                return bad("url: starttls = true needs an ldap:// URL (ldaps:// is TLS from the start)".into());
            }
            (Some(rest), _) => rest,
            (None, Some(rest)) if self.starttls => rest,
            (None, Some(_)) => {
                return bad("url: an ldap:// URL needs starttls = true (passwords are never sent without TLS); \
                     or use ldaps://"
                    .into());
            }
            (None, None) => return bad("url must start with ldaps:// or ldap://".into()),
        };
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || host.contains('@') || host.contains(char::is_whitespace) {
            return bad("url: expected ldaps://host[:port] with no user name and no spaces".into());
        }
        if self.bind_dn.trim().is_empty() {
            return bad("bind_dn must not be empty".into());
        }
        // Reads the file or variable, so a missing one shows at start-up.
        let _ = self.bind_password()?;
        for (field, value) in [
            ("base_dn", Some(&self.base_dn)),
            ("users_base_dn", self.users_base_dn.as_ref()),
            ("groups_base_dn", self.groups_base_dn.as_ref()),
            ("computers_base_dn", self.computers_base_dn.as_ref()),
        ] {
            if let Some(dn) = value
                && !looks_like_dn(dn)
            {
                return bad(format!("{field}: `{dn}` is not a distinguished name such as DC=example,DC=com"));
            }
        }
        for (field, filter) in [
            ("users_filter", self.users_filter()),
            ("groups_filter", self.groups_filter()),
            ("computers_filter", self.computers_filter()),
        ] {
            if ldap3::parse_filter(filter).is_err() {
                return bad(format!("{field}: `{filter}` is not a valid LDAP filter"));
            }
        }
        if let Some(path) = &self.ca_file {
            crate::connect::read_ca_file(path)?;
        }
        for (field, value) in [
            ("sync_interval_minutes", self.sync_interval_minutes),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("operation_timeout_secs", self.operation_timeout_secs),
        ] {
            if value.is_some_and(|v| !(1..=7 * 24 * 60).contains(&v)) {
                return bad(format!("{field} must be between 1 and 10080"));
            }
        }
        if self.page_size.is_some_and(|p| !(1..=1000).contains(&p)) {
            return bad("page_size must be between 1 and 1000".into());
        }
        Ok(())
    }

    /// The service account's password from its one source.
    pub fn bind_password(&self) -> Result<SecretString, DirectoryError> {
        let sources =
            [self.bind_password.is_some(), self.bind_password_file.is_some(), self.bind_password_env.is_some()];
        match sources.iter().filter(|s| **s).count() {
            0 => {
                return Err(DirectoryError::Config(
                    "set one of bind_password, bind_password_file or bind_password_env".into(),
                ));
            }
            1 => {}
            _ => {
                return Err(DirectoryError::Config(
                    "set only one of bind_password, bind_password_file and bind_password_env".into(),
                ));
            }
        }
        if let Some(p) = &self.bind_password {
            return non_empty(p.clone(), "bind_password");
        }
        let value = match (&self.bind_password_file, &self.bind_password_env) {
            (Some(path), _) => read_secret_file(path)?,
            (None, Some(var)) => Zeroizing::new(std::env::var(var).map_err(|_| {
                DirectoryError::Config(format!("bind_password_env: the environment variable {var} is not set"))
            })?),
            (None, None) => Zeroizing::new(String::new()),
        };
        non_empty(SecretString::from(value.as_str()), "the bind password")
    }

    /// The base DN users are searched under.
    pub fn users_base(&self) -> &str {
        self.users_base_dn.as_deref().unwrap_or(&self.base_dn)
    }

    /// The base DN groups are searched under.
    pub fn groups_base(&self) -> &str {
        self.groups_base_dn.as_deref().unwrap_or(&self.base_dn)
    }

    /// The base DN computers are searched under.
    pub fn computers_base(&self) -> &str {
        self.computers_base_dn.as_deref().unwrap_or(&self.base_dn)
    }

    /// The filter selecting users.
    pub fn users_filter(&self) -> &str {
        self.users_filter.as_deref().unwrap_or(match self.flavor {
            Flavor::ActiveDirectory => AD_USERS,
            Flavor::Openldap => OPENLDAP_USERS,
        })
    }

    /// The filter selecting groups.
    pub fn groups_filter(&self) -> &str {
        self.groups_filter.as_deref().unwrap_or(match self.flavor {
            Flavor::ActiveDirectory => AD_GROUPS,
            Flavor::Openldap => OPENLDAP_GROUPS,
        })
    }

    /// The filter selecting computers.
    pub fn computers_filter(&self) -> &str {
        self.computers_filter.as_deref().unwrap_or(match self.flavor {
            Flavor::ActiveDirectory => AD_COMPUTERS,
            Flavor::Openldap => OPENLDAP_COMPUTERS,
        })
    }

    /// Time between scheduled syncs.
    pub fn sync_interval(&self) -> Duration {
        Duration::from_secs(60 * self.sync_interval_minutes.unwrap_or(15))
    }

    /// Time allowed for connecting (TCP, TLS and StartTLS).
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.unwrap_or(10))
    }

    /// Time allowed for each LDAP operation.
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs.unwrap_or(60))
    }

    /// Entries per page.
    pub fn page_size(&self) -> i32 {
        i32::try_from(self.page_size.unwrap_or(500)).unwrap_or(500)
    }
}

fn non_empty(p: SecretString, what: &str) -> Result<SecretString, DirectoryError> {
    use secrecy::ExposeSecret;
    if p.expose_secret().is_empty() {
        return Err(DirectoryError::Config(format!("{what} is empty")));
    }
    Ok(p)
}

/// Read a secret from a file, dropping one trailing newline; the buffer is wiped when dropped.
fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, DirectoryError> {
    let mut text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        DirectoryError::Config(format!("bind_password_file: cannot read {}: {}", path.display(), e.kind()))
    })?);
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Comma-separated `attribute=value` parts, each with a non-empty attribute and value.
fn looks_like_dn(dn: &str) -> bool {
    let dn = dn.trim();
    !dn.is_empty()
        && latchkey_core::names::split_dn(dn).iter().all(|rdn| match rdn.split_once('=') {
            Some((attr, value)) => !attr.trim().is_empty() && !value.trim().is_empty(),
            None => false,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use secrecy::ExposeSecret;

    fn base() -> DirectoryConfig {
        DirectoryConfig::new(
            "ldaps://127.0.0.1:636",
            "CN=svc,DC=x,DC=y",
            SecretString::from("pw"),
            "DC=x,DC=y",
            Flavor::ActiveDirectory,
        )
    }

    #[test]
    fn parses_toml_with_defaults() {
        let c: DirectoryConfig = toml::from_str(
            "url = \"ldap://dc1:389\"\nstarttls = true\nbind_dn = \"CN=svc,DC=x\"\nbind_password = \"s3cret\"\n\
             base_dn = \"DC=x\"\nflavor = \"openldap\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.flavor, Flavor::Openldap);
        assert_eq!(c.sync_interval(), Duration::from_secs(900));
        assert_eq!(c.users_base(), "DC=x");
        assert_eq!(c.bind_password().unwrap().expose_secret(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<DirectoryConfig>(
            "url = \"ldaps://h\"\nbind_dn = \"CN=a\"\nbase_dn = \"DC=x\"\nbind_pasword = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("bind_pasword"), "{e}");
    }

    #[test]
    fn plain_ldap_without_starttls_is_refused() {
        let mut c = base();
        c.url = "ldap://127.0.0.1:389".into();
        assert!(c.validate().unwrap_err().to_string().contains("starttls"));
        c.starttls = true;
        c.validate().unwrap();
        c.url = "ldaps://127.0.0.1".into();
        assert!(c.validate().is_err());
        c.url = "http://x".into();
        c.starttls = false;
        assert!(c.validate().is_err());
    }

    #[test]
    fn password_has_exactly_one_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut c = base();
        c.bind_password_file = Some(file.clone());
        assert!(c.validate().is_err());
        c.bind_password = None;
        assert_eq!(c.bind_password().unwrap().expose_secret(), "from-file");
        c.bind_password_file = None;
        assert!(c.validate().is_err());
        c.bind_password_file = Some(dir.path().join("missing"));
        assert!(c.validate().is_err());
        std::fs::write(&file, "\n").unwrap();
        c.bind_password_file = Some(file);
        assert!(c.validate().unwrap_err().to_string().contains("empty"));
        c.bind_password_file = None;
        c.bind_password_env = Some("LATCHKEY_LDAP_TEST_UNSET_VARIABLE".into());
        assert!(c.validate().unwrap_err().to_string().contains("LATCHKEY_LDAP_TEST_UNSET_VARIABLE"));
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = base();
        c.base_dn = "example.com".into();
        assert!(c.validate().unwrap_err().to_string().contains("base_dn"));
        let mut c = base();
        c.users_filter = Some("(objectClass=user".into());
        assert!(c.validate().unwrap_err().to_string().contains("users_filter"));
        let mut c = base();
        c.page_size = Some(5000);
        assert!(c.validate().is_err());
        let mut c = base();
        c.sync_interval_minutes = Some(0);
        assert!(c.validate().is_err());
        let mut c = base();
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(c.validate().unwrap_err().to_string().contains("ca_file"));
        let mut c = base();
        c.bind_dn = " ".into();
        assert!(c.validate().is_err());
    }
}
