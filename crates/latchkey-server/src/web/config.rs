//! The `[web]` settings: the web UI's idle timeout, when a reveal asks for the password
//! again, and the single sign-on providers (`[[web.oidc]]`, see [`crate::web::oidc_config`]).
//! (The absolute timeout is the session lifetime of `[sign_in]`.)

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// `[web]` in the TOML file; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebLayer {
    /// A web session unused for this long ends (60 to 86400 seconds; default 900).
    pub idle_timeout_seconds: Option<u64>,
    /// Showing a secret asks for the password again when the sign-in is older than this
    /// (0 to 86400 seconds, 0 = always; default 600). Single sign-on sessions sign in again.
    pub reauthenticate_after_seconds: Option<u64>,
    /// `[[web.oidc]]`: single sign-on providers.
    pub oidc: Option<Vec<crate::web::oidc_config::OidcProviderLayer>>,
}

impl WebLayer {
    /// Settings of `over` win over those of `self`.
    pub fn merge(self, over: WebLayer) -> WebLayer {
        WebLayer {
            idle_timeout_seconds: over.idle_timeout_seconds.or(self.idle_timeout_seconds),
            reauthenticate_after_seconds: over.reauthenticate_after_seconds.or(self.reauthenticate_after_seconds),
            oidc: over.oidc.or(self.oidc),
        }
    }
}

/// Validated web UI settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub idle_timeout: Duration,
    pub reauthenticate_after: Duration,
    /// Single sign-on providers, in the order of the sign-in page.
    pub oidc: Vec<crate::web::oidc_config::OidcProvider>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(900),
            reauthenticate_after: Duration::from_secs(600),
            oidc: Vec::new(),
        }
    }
}

impl WebConfig {
    /// Apply defaults and check every value.
    pub fn resolve(layer: WebLayer) -> Result<Self, ConfigError> {
        let d = WebConfig::default();
        let idle = layer.idle_timeout_seconds.unwrap_or(d.idle_timeout.as_secs());
        if !(60..=86_400).contains(&idle) {
            return Err(ConfigError("web.idle_timeout_seconds must be between 60 and 86400".into()));
        }
        let reauth = layer.reauthenticate_after_seconds.unwrap_or(d.reauthenticate_after.as_secs());
        if reauth > 86_400 {
            return Err(ConfigError("web.reauthenticate_after_seconds must be between 0 and 86400".into()));
        }
        let oidc = crate::web::oidc_config::resolve(layer.oidc.unwrap_or_default())?;
        Ok(WebConfig {
            idle_timeout: Duration::from_secs(idle),
            reauthenticate_after: Duration::from_secs(reauth),
            oidc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(WebConfig::resolve(WebLayer::default()).unwrap(), WebConfig::default());
        let low = WebLayer { idle_timeout_seconds: Some(59), ..Default::default() };
        assert!(WebConfig::resolve(low).unwrap_err().0.contains("idle_timeout_seconds"));
        let high = WebLayer { reauthenticate_after_seconds: Some(86_401), ..Default::default() };
        assert!(WebConfig::resolve(high).unwrap_err().0.contains("reauthenticate_after_seconds"));
        let zero = WebLayer { reauthenticate_after_seconds: Some(0), ..Default::default() };
        assert_eq!(WebConfig::resolve(zero).unwrap().reauthenticate_after, Duration::ZERO);
    }
}
