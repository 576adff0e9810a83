//! The `[notifications]` section of the server configuration: `[notifications.smtp]` (where
//! audit e-mails go out) and `[notifications.webhook]` (where signed JSON notices are posted).
//! Secrets have `*_file` variants; every value is checked once, at start-up.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_core::EmailAddress;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::ConfigError;

/// Seconds a delivery may take when no timeout is set.
const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Longest timeout accepted, in seconds.
const MAX_TIMEOUT_SECS: u64 = 300;
/// Shortest webhook secret accepted, in bytes.
const MIN_WEBHOOK_SECRET: usize = 16;

/// `[notifications]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsLayer {
    /// `[notifications.smtp]`: audit e-mails.
    pub smtp: Option<SmtpLayer>,
    /// `[notifications.webhook]`: signed JSON notices.
    pub webhook: Option<WebhookLayer>,
}

/// `[notifications.smtp]` as written in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpLayer {
    /// The SMTP server's host name or IP address.
    pub host: Option<String>,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `plain`.
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS) or `plain` (no encryption).
    pub security: Option<String>,
    /// User name for SMTP AUTH; needs a password and `starttls` or `tls`.
    pub username: Option<String>,
    /// Password for SMTP AUTH.
    pub password: Option<String>,
    /// A file holding the SMTP password.
    pub password_file: Option<PathBuf>,
    /// Sender address, e.g. `latchkey@example.com`.
    pub from: Option<String>,
    /// Seconds one delivery may take (default 10).
    pub timeout_secs: Option<u64>,
    /// PEM file of extra CA certificates to trust (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpLayer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("password_file", &self.password_file)
            .field("from", &self.from)
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `[notifications.webhook]` as written in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookLayer {
    /// `https://…` (or `http://…`) URL the notices are posted to.
    pub url: Option<String>,
    /// The HMAC-SHA256 key of `X-Latchkey-Signature` (at least 16 bytes).
    pub secret: Option<String>,
    /// A file holding the secret.
    pub secret_file: Option<PathBuf>,
    /// Seconds one delivery may take (default 10).
    pub timeout_secs: Option<u64>,
    /// PEM file of extra CA certificates to trust (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for WebhookLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a token of the receiver: shown without its path and query.
        f.debug_struct("WebhookLayer")
            .field("url", &self.url.as_deref().map(origin_of))
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("secret_file", &self.secret_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl NotificationsLayer {
    /// Settings of `over` win over those of `self`, table by table.
    pub fn merge(self, over: NotificationsLayer) -> NotificationsLayer {
        NotificationsLayer { smtp: over.smtp.or(self.smtp), webhook: over.webhook.or(self.webhook) }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (required, certificate checked).
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption (a relay on the same host or a trusted network).
    Plain,
}

impl SmtpSecurity {
    fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "starttls" => Some(SmtpSecurity::StartTls),
            "tls" => Some(SmtpSecurity::Tls),
            "plain" => Some(SmtpSecurity::Plain),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        }
    }
}

/// The validated notification settings. Nothing set: notices are kept and marked as not sent.
#[derive(Debug, Clone, Default)]
pub struct NotificationsConfig {
    pub smtp: Option<SmtpConfig>,
    pub webhook: Option<WebhookConfig>,
}

/// Validated SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User name and password for SMTP AUTH.
    pub credentials: Option<(String, SecretString)>,
    pub from: EmailAddress,
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

/// Validated webhook settings.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: reqwest::Url,
    pub secret: SecretString,
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &origin_of(self.url.as_str()))
            .field("secret", &"[redacted]")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl NotificationsConfig {
    /// Check every value of the section.
    pub fn resolve(layer: Option<NotificationsLayer>) -> Result<Self, ConfigError> {
        let layer = layer.unwrap_or_default();
        Ok(Self {
            smtp: layer.smtp.map(resolve_smtp).transpose()?,
            webhook: layer.webhook.map(resolve_webhook).transpose()?,
        })
    }
}

fn resolve_smtp(l: SmtpLayer) -> Result<SmtpConfig, ConfigError> {
    let err = |msg: &str| ConfigError(format!("notifications.smtp: {msg}"));
    let host = l.host.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).ok_or_else(|| err("host is required"))?;
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == '@') {
        return Err(err("host must be a host name or an IP address"));
    }
    let security = match l.security.as_deref() {
        None => SmtpSecurity::StartTls,
        Some(raw) => {
            SmtpSecurity::parse(raw).ok_or_else(|| err("security must be \"starttls\", \"tls\" or \"plain\""))?
        }
    };
    let port = l.port.unwrap_or_else(|| security.default_port());
    if port == 0 {
        return Err(err("port must be between 1 and 65535"));
    }
    let from = l.from.ok_or_else(|| err("from (the sender address) is required"))?;
    let from = EmailAddress::parse(&from).map_err(|e| err(&format!("from: {e}")))?;
    let password = secret_value("notifications.smtp", "password", l.password, l.password_file.as_deref())?;
    let credentials = match (l.username, password) {
        (Some(user), Some(password)) if !user.trim().is_empty() => Some((user.trim().to_owned(), password)),
        (None, None) => None,
        _ => return Err(err("set both username and password (or password_file) for SMTP AUTH, or neither")),
    };
    if credentials.is_some() && security == SmtpSecurity::Plain {
        return Err(err(
            "username and password need security = \"starttls\" or \"tls\" (a password is never sent unencrypted)",
        ));
    }
    Ok(SmtpConfig {
        host,
        port,
        security,
        credentials,
        from,
        timeout: timeout("notifications.smtp", l.timeout_secs)?,
        ca_pem: ca_file("notifications.smtp", l.ca_file.as_deref())?,
    })
}

fn resolve_webhook(l: WebhookLayer) -> Result<WebhookConfig, ConfigError> {
    let err = |msg: &str| ConfigError(format!("notifications.webhook: {msg}"));
    let raw = l.url.ok_or_else(|| err("url is required"))?;
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|_| err("url is not a URL such as https://hooks.example.com/latchkey"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(err("url must be an http:// or https:// URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("url must not hold a user name or password"));
    }
    let secret = secret_value("notifications.webhook", "secret", l.secret, l.secret_file.as_deref())?
        .ok_or_else(|| err("secret (or secret_file) is required: it signs every notice"))?;
    if secret.expose_secret().len() < MIN_WEBHOOK_SECRET {
        return Err(err(&format!("secret must be at least {MIN_WEBHOOK_SECRET} bytes long")));
    }
    Ok(WebhookConfig {
        url,
        secret,
        timeout: timeout("notifications.webhook", l.timeout_secs)?,
        ca_pem: ca_file("notifications.webhook", l.ca_file.as_deref())?,
    })
}

/// A secret given inline or in a file (not both).
fn secret_value(
    section: &str,
    key: &str,
    inline: Option<String>,
    file: Option<&Path>,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError(format!("{section}: set either {key} or {key}_file, not both"))),
        (Some(v), None) if v.is_empty() => Err(ConfigError(format!("{section}: {key} is empty"))),
        (Some(v), None) => Ok(Some(SecretString::from(v))),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("{section}: {key}_file: cannot read {}: {e}", path.display())))?;
            let text = zeroize::Zeroizing::new(text);
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() {
                return Err(ConfigError(format!("{section}: {key}_file: {} is empty", path.display())));
            }
            Ok(Some(SecretString::from(value.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

fn timeout(section: &str, secs: Option<u64>) -> Result<Duration, ConfigError> {
    let secs = secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(ConfigError(format!("{section}: timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}")));
    }
    Ok(Duration::from_secs(secs))
}

fn ca_file(section: &str, path: Option<&Path>) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let pem = std::fs::read(path)
        .map_err(|e| ConfigError(format!("{section}: ca_file: cannot read {}: {e}", path.display())))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError(format!("{section}: ca_file: {} holds no PEM certificate", path.display())));
    }
    Ok(Some(pem))
}

/// `scheme://host[:port]` of a URL, for messages and logs (never its path or query).
pub(crate) fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "(no host)".to_owned(),
        },
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(f: impl FnOnce(&mut SmtpLayer)) -> Result<SmtpConfig, ConfigError> {
        let mut l = SmtpLayer {
            host: Some("mail.example.com".into()),
            from: Some("lk@example.com".into()),
            ..Default::default()
        };
        f(&mut l);
        resolve_smtp(l)
    }

    fn webhook(f: impl FnOnce(&mut WebhookLayer)) -> Result<WebhookConfig, ConfigError> {
        let mut l = WebhookLayer {
            url: Some("https://hooks.example.com/latchkey?token=abc".into()),
            secret: Some("0123456789abcdef0123".into()),
            ..Default::default()
        };
        f(&mut l);
        resolve_webhook(l)
    }

    #[test]
    fn nothing_set_means_nothing_configured() {
        let c = NotificationsConfig::resolve(None).unwrap();
        assert!(c.smtp.is_none() && c.webhook.is_none());
    }

    #[test]
    fn smtp_defaults_and_ports_follow_security() {
        let c = smtp(|_| {}).unwrap();
        assert_eq!((c.security, c.port, c.timeout), (SmtpSecurity::StartTls, 587, Duration::from_secs(10)));
        assert_eq!(smtp(|l| l.security = Some("tls".into())).unwrap().port, 465);
        assert_eq!(smtp(|l| l.security = Some("PLAIN".into())).unwrap().port, 25);
        assert_eq!(smtp(|l| l.port = Some(2525)).unwrap().port, 2525);
    }

    #[test]
    fn smtp_bad_values_are_named() {
        let msg = |r: Result<SmtpConfig, ConfigError>| r.unwrap_err().0;
        assert!(msg(smtp(|l| l.host = None)).contains("host is required"));
        assert!(msg(smtp(|l| l.host = Some("a b".into()))).contains("host must be"));
        assert!(msg(smtp(|l| l.security = Some("ssl".into()))).contains("security must be"));
        assert!(msg(smtp(|l| l.from = None)).contains("from"));
        assert!(msg(smtp(|l| l.from = Some("not-an-address".into()))).contains("from: e-mail address"));
        assert!(msg(smtp(|l| l.port = Some(0))).contains("port"));
        assert!(msg(smtp(|l| l.timeout_secs = Some(0))).contains("timeout_secs"));
        assert!(msg(smtp(|l| l.username = Some("u".into()))).contains("both username and password"));
        assert!(msg(smtp(|l| l.password = Some("p".into()))).contains("both username and password"));
        let plain_auth = smtp(|l| {
            l.security = Some("plain".into());
            l.username = Some("u".into());
            l.password = Some("p".into());
        });
        assert!(msg(plain_auth).contains("never sent unencrypted"));
    }

    #[test]
    fn smtp_password_from_file_and_never_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret-pass\n").unwrap();
        let c = smtp(|l| {
            l.username = Some("mailer".into());
            l.password_file = Some(p.clone());
        })
        .unwrap();
        let (user, pw) = c.credentials.clone().unwrap();
        assert_eq!((user.as_str(), pw.expose_secret()), ("mailer", "s3cret-pass"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let layer = SmtpLayer { password: Some("s3cret-pass".into()), ..Default::default() };
        assert!(!format!("{layer:?}").contains("s3cret"));
        let both = smtp(|l| {
            l.username = Some("mailer".into());
            l.password = Some("x".into());
            l.password_file = Some(p.clone());
        });
        assert!(both.unwrap_err().0.contains("not both"));
    }

    #[test]
    fn webhook_values_are_checked_and_secrets_hidden() {
        let c = webhook(|_| {}).unwrap();
        assert_eq!(c.url.as_str(), "https://hooks.example.com/latchkey?token=abc");
        let shown = format!("{c:?}");
        assert!(!shown.contains("0123456789abcdef") && !shown.contains("token=abc"), "{shown}");
        let layer = WebhookLayer {
            secret: Some("0123456789abcdef".into()),
            url: Some("https://h/x?token=abc".into()),
            ..Default::default()
        };
        let shown = format!("{layer:?}");
        assert!(!shown.contains("0123456789abcdef") && !shown.contains("token=abc"), "{shown}");

        let msg = |r: Result<WebhookConfig, ConfigError>| r.unwrap_err().0;
        assert!(msg(webhook(|l| l.url = None)).contains("url is required"));
        assert!(msg(webhook(|l| l.url = Some("not a url".into()))).contains("not a URL"));
        assert!(msg(webhook(|l| l.url = Some("ftp://h/x".into()))).contains("http:// or https://"));
        assert!(msg(webhook(|l| l.url = Some("https://u:p@h/x".into()))).contains("user name or password"));
        assert!(msg(webhook(|l| l.secret = None)).contains("secret (or secret_file) is required"));
        assert!(msg(webhook(|l| l.secret = Some("short".into()))).contains("at least 16 bytes"));
        assert!(msg(webhook(|l| l.secret = Some(String::new()))).contains("secret is empty"));
        assert!(msg(webhook(|l| l.timeout_secs = Some(301))).contains("timeout_secs"));
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        assert!(msg(webhook(|l| l.ca_file = Some(not_pem))).contains("no PEM certificate"));
        assert!(msg(webhook(|l| l.ca_file = Some(dir.path().join("missing.pem")))).contains("cannot read"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<NotificationsLayer>("[smtp]\nhost = \"h\"\nhots = 1\n").unwrap_err();
        assert!(e.message().contains("hots"), "{e}");
        let e = toml::from_str::<NotificationsLayer>("[sms]\n").unwrap_err();
        assert!(e.message().contains("sms"), "{e}");
    }
}
