//! `[[directory]]` in the server's config file: a tenant's LDAP / Active Directory directory.
//!
//! ```toml
//! [[directory]]
//! tenant = "default"
//! url = "ldaps://dc1.corp.example"
//! bind_dn = "CN=latchkey,OU=Service,DC=corp,DC=example"
//! bind_password_file = "/run/secrets/ldap"   # or bind_password, or bind_password_env = "VAR"
//! base_dn = "DC=corp,DC=example"
//! ca_file = "/etc/latchkey/corp-ca.pem"
//! ```
//!
//! Every other key is a setting of [`latchkey_ldap::DirectoryConfig`] (flavor, base DNs and
//! filters per object kind, interval and timeouts). Unknown keys are refused.

use latchkey_core::TenantSlug;
use latchkey_ldap::DirectoryConfig;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::config::ConfigError;

/// A tenant's directory.
#[derive(Debug, Clone)]
pub struct TenantDirectory {
    /// The tenant's slug.
    pub tenant: String,
    pub config: DirectoryConfig,
}

impl<'de> Deserialize<'de> for TenantDirectory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let tenant = match table.remove("tenant") {
            Some(toml::Value::String(s)) => s,
            Some(_) => return Err(D::Error::custom("directory: tenant must be a tenant slug in quotes")),
            None => return Err(D::Error::custom("directory: missing field `tenant`")),
        };
        let config = DirectoryConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| D::Error::custom(format!("directory for tenant {tenant}: {}", e.message())))?;
        Ok(Self { tenant, config })
    }
}

/// Check every directory once: a valid tenant slug, at most one directory per tenant, and
/// settings that [`DirectoryConfig::validate`] accepts (its password source is read now).
pub fn resolve(entries: Vec<TenantDirectory>) -> Result<Vec<TenantDirectory>, ConfigError> {
    let mut out: Vec<TenantDirectory> = Vec::with_capacity(entries.len());
    for entry in entries {
        let slug = TenantSlug::parse(&entry.tenant)
            .map_err(|_| ConfigError(format!("directory: `{}` is not a tenant slug", entry.tenant)))?;
        if out.iter().any(|d| d.tenant == slug.as_str()) {
            return Err(ConfigError(format!("directory: tenant {slug} has more than one directory")));
        }
        entry.config.validate().map_err(|e| ConfigError(format!("directory for tenant {slug}: {e}")))?;
        out.push(TenantDirectory { tenant: slug.as_str().to_owned(), config: entry.config });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigLayer};
    use secrecy::ExposeSecret;

    fn layer(toml_text: &str) -> Result<ConfigLayer, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, toml_text).unwrap();
        ConfigLayer::from_toml_file(&p)
    }

    const ONE: &str = "[[directory]]\ntenant = \"Default\"\nurl = \"ldaps://dc1:636\"\nbind_dn = \"CN=svc,DC=x\"\n\
                       bind_password = \"pw\"\nbase_dn = \"DC=x\"\nflavor = \"active-directory\"\nsync_interval_minutes = 5\n";

    #[test]
    fn directories_are_read_and_checked() {
        let c = Config::resolve(layer(ONE).unwrap()).unwrap();
        assert_eq!(c.directories.len(), 1);
        assert_eq!(c.directories[0].tenant, "default");
        assert_eq!(c.directory_for("default").unwrap().sync_interval().as_secs(), 300);
        assert_eq!(c.directory_for("default").unwrap().bind_password().unwrap().expose_secret(), "pw");
        assert!(c.directory_for("other").is_none());
        assert!(!format!("{c:?}").contains("\"pw\""));
    }

    #[test]
    fn bad_directories_are_named() {
        let e = layer(&format!("{ONE}bind_pasword = \"x\"\n")).unwrap_err();
        assert!(e.0.contains("bind_pasword"), "{e}");
        let e = layer(&ONE.replace("tenant = \"Default\"\n", "")).unwrap_err();
        assert!(e.0.contains("tenant"), "{e}");
        let e = Config::resolve(layer(&ONE.replace("Default", "not a slug!")).unwrap()).unwrap_err();
        assert!(e.0.contains("tenant slug"), "{e}");
        let e = Config::resolve(layer(&format!("{ONE}{ONE}")).unwrap()).unwrap_err();
        assert!(e.0.contains("more than one"), "{e}");
        let e = Config::resolve(layer(&ONE.replace("ldaps://", "ldap://")).unwrap()).unwrap_err();
        assert!(e.0.contains("starttls"), "{e}");
        let e = Config::resolve(
            layer(&ONE.replace("bind_password = \"pw\"", "bind_password_file = \"/nonexistent\"")).unwrap(),
        )
        .unwrap_err();
        assert!(e.0.contains("bind_password_file"), "{e}");
        assert!(!e.0.contains("pw\""));
    }
}
