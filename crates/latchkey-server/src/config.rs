//! Server configuration: defaults, then a TOML file, then environment and flags (the binary
//! folds `LATCHKEY_*` variables into the flags layer). Validated once, passed explicitly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

/// One layer of settings; every field optional. The TOML file has exactly these keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// Where the SQLite store, the key file and the first admin token live.
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    pub listen: Option<String>,
    /// PostgreSQL URL; the embedded SQLite store when absent. A secret (it holds a password).
    pub database_url: Option<String>,
    /// A file holding the database URL.
    pub database_url_file: Option<PathBuf>,
    /// The key file (default: `DATA_DIR/latchkey.key`).
    pub key_file: Option<PathBuf>,
    /// PEM certificate chain for TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// Largest accepted request body in bytes (default 65536).
    pub max_body_bytes: Option<usize>,
    /// `[sign_in]`: session lifetime and failed sign-in limits.
    #[serde(default)]
    pub sign_in: Option<crate::SignInLayer>,
    /// `[notifications]`: SMTP and webhook delivery of audit notices.
    #[serde(default)]
    pub notifications: Option<crate::NotificationsLayer>,
    /// `[[directory]]`: tenants' LDAP / Active Directory directories (sync and sign-in).
    #[serde(default)]
    pub directory: Option<Vec<crate::TenantDirectory>>,
    /// `[applications]`: access tokens of the application credential API.
    #[serde(default)]
    pub applications: Option<crate::applications_config::ApplicationsLayer>,
    /// `[[jit]]`: tenants' just-in-time elevation policies, one per provider.
    #[serde(default)]
    pub jit: Option<Vec<crate::jit::JitPolicyLayer>>,
    /// `[[tickets]]`: where tenants' tickets live (built-in unless set).
    #[serde(default)]
    pub tickets: Option<Vec<crate::jit::TicketsLayer>>,
    /// `[web]`: the web UI's timeouts.
    #[serde(default)]
    pub web: Option<crate::web::WebLayer>,
}

impl ConfigLayer {
    /// Parse a TOML file. Unknown keys are refused with the key's name and the file's path.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.message())))
    }

    /// Settings of `over` win over those of `self`.
    pub fn merge(self, over: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            data_dir: over.data_dir.or(self.data_dir),
            listen: over.listen.or(self.listen),
            database_url: over.database_url.or(self.database_url),
            database_url_file: over.database_url_file.or(self.database_url_file),
            key_file: over.key_file.or(self.key_file),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
            sign_in: match (self.sign_in, over.sign_in) {
                (Some(base), Some(over)) => Some(base.merge(over)),
                (base, over) => over.or(base),
            },
            notifications: match (self.notifications, over.notifications) {
                (Some(base), Some(over)) => Some(base.merge(over)),
                (base, over) => over.or(base),
            },
            directory: over.directory.or(self.directory),
            applications: match (self.applications, over.applications) {
                (Some(base), Some(over)) => Some(base.merge(over)),
                (base, over) => over.or(base),
            },
            jit: over.jit.or(self.jit),
            tickets: over.tickets.or(self.tickets),
            web: match (self.web, over.web) {
                (Some(base), Some(over)) => Some(base.merge(over)),
                (base, over) => over.or(base),
            },
        }
    }
}

/// A configuration problem, said so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// PostgreSQL URL, or `None` for the embedded SQLite store.
    pub database_url: Option<SecretString>,
    pub key_file: PathBuf,
    pub tls: Option<TlsFiles>,
    pub max_body_bytes: usize,
    pub sign_in: crate::SignInConfig,
    pub notifications: crate::NotificationsConfig,
    /// Tenants' directories, at most one per tenant.
    pub directories: Vec<crate::TenantDirectory>,
    /// The application credential API's token settings.
    pub applications: crate::applications_config::ApplicationsConfig,
    /// Just-in-time elevation policies and ticket settings.
    pub jit: crate::jit::JitConfig,
    /// The web UI's settings.
    pub web: crate::web::WebConfig,
}

/// Certificate and key files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// The directory configured for a tenant (by slug).
    pub fn directory_for(&self, tenant_slug: &str) -> Option<&latchkey_ldap::DirectoryConfig> {
        self.directories.iter().find(|d| d.tenant == tenant_slug).map(|d| &d.config)
    }

    /// Resolve a layer into a configuration, applying defaults and checking every value.
    pub fn resolve(layer: ConfigLayer) -> Result<Config, ConfigError> {
        let data_dir = layer.data_dir.unwrap_or_else(|| PathBuf::from("./latchkey-data"));
        let listen_text = layer.listen.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| ConfigError(format!("listen: `{listen_text}` is not an address such as 127.0.0.1:8080")))?;
        let database_url = match (layer.database_url, layer.database_url_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "set either database_url or database_url_file (LATCHKEY_DATABASE_URL or LATCHKEY_DATABASE_URL_FILE), not both".into(),
                ));
            }
            (Some(url), None) => Some(url),
            (None, Some(file)) => Some(read_secret_file("database_url_file", &file)?),
            (None, None) => None,
        };
        if let Some(url) = &database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "database_url must be a postgres:// URL (leave it unset for the embedded SQLite store)".into(),
            ));
        }
        let tls = match (layer.tls_cert, layer.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError("TLS needs both tls_cert and tls_key".into())),
        };
        let max_body_bytes = layer.max_body_bytes.unwrap_or(64 * 1024);
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError("max_body_bytes must be between 1024 and 16777216".into()));
        }
        let key_file = layer.key_file.unwrap_or_else(|| data_dir.join("latchkey.key"));
        let sign_in = crate::SignInConfig::resolve(layer.sign_in.unwrap_or_default())?;
        let notifications = crate::NotificationsConfig::resolve(layer.notifications)?;
        let directories = crate::directory_config::resolve(layer.directory.unwrap_or_default())?;
        let applications =
            crate::applications_config::ApplicationsConfig::resolve(layer.applications.unwrap_or_default())?;
        let jit = crate::jit::JitConfig::resolve(layer.jit.unwrap_or_default(), layer.tickets.unwrap_or_default())?;
        let web = crate::web::WebConfig::resolve(layer.web.unwrap_or_default())?;
        Ok(Config {
            data_dir,
            listen,
            database_url: database_url.map(SecretString::from),
            key_file,
            tls,
            max_body_bytes,
            sign_in,
            notifications,
            directories,
            applications,
            jit,
            web,
        })
    }
}

/// Read a secret from a file, dropping one trailing newline.
pub(crate) fn read_secret_file(setting: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{setting}: cannot read {}: {e}", path.display())))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(ConfigError(format!("{setting}: {} is empty", path.display())));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults() {
        let c = Config::resolve(ConfigLayer::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./latchkey-data"));
        assert_eq!(c.key_file, PathBuf::from("./latchkey-data/latchkey.key"));
        assert!(c.database_url.is_none());
    }

    #[test]
    fn later_layer_wins() {
        let file =
            ConfigLayer { listen: Some("127.0.0.1:1".into()), data_dir: Some("/a".into()), ..Default::default() };
        let env = ConfigLayer { listen: Some("127.0.0.1:2".into()), ..Default::default() };
        let c = Config::resolve(file.merge(env)).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/a"));
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:9\"\nlisten_port = 3\n").unwrap();
        let e = ConfigLayer::from_toml_file(&p).unwrap_err();
        assert!(e.0.contains("listen_port"), "{e}");
        assert!(e.0.contains("c.toml"), "{e}");
    }

    #[test]
    fn secret_file_variant() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("url");
        std::fs::write(&p, "postgres://u:p@h/db\n").unwrap();
        let c = Config::resolve(ConfigLayer { database_url_file: Some(p.clone()), ..Default::default() }).unwrap();
        assert_eq!(c.database_url.unwrap().expose_secret(), "postgres://u:p@h/db");
        let both =
            ConfigLayer { database_url_file: Some(p), database_url: Some("postgres://x".into()), ..Default::default() };
        assert!(Config::resolve(both).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::resolve(ConfigLayer { listen: Some("nope".into()), ..Default::default() }).is_err());
        assert!(Config::resolve(ConfigLayer { database_url: Some("mysql://x".into()), ..Default::default() }).is_err());
        assert!(Config::resolve(ConfigLayer { tls_cert: Some("c.pem".into()), ..Default::default() }).is_err());
        assert!(Config::resolve(ConfigLayer { max_body_bytes: Some(1), ..Default::default() }).is_err());
    }
}
