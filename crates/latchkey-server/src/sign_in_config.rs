//! The `[sign_in]` settings: session lifetime and the limits on failed sign-ins.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// `[sign_in]` in the TOML file; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInLayer {
    /// How long a session token lives (60 to 2592000 seconds; default 3600).
    pub session_lifetime_seconds: Option<u64>,
    /// Failures of a name per UTC day answered without delay (default 3).
    pub free_failures: Option<u32>,
    /// The delay after the first failure beyond the free ones, doubling with each further one
    /// (0 to 10000 ms; default 250; 0 turns the delay off).
    pub failure_delay_ms: Option<u64>,
    /// The longest delay (0 to 60000 ms, at least `failure_delay_ms`; default 4000).
    pub failure_delay_max_ms: Option<u64>,
    /// Failures of a name per UTC day after which every sign-in of that name is refused with
    /// 429 until the next UTC day, even with the right password (1 to 100000; default 20).
    pub max_failures_per_day: Option<u32>,
    /// Password hashes computed at the same time, at most (1 to 256; default 4).
    pub max_concurrent_hashes: Option<usize>,
}

impl SignInLayer {
    /// Settings of `over` win over those of `self`.
    pub fn merge(self, over: SignInLayer) -> SignInLayer {
        SignInLayer {
            session_lifetime_seconds: over.session_lifetime_seconds.or(self.session_lifetime_seconds),
            free_failures: over.free_failures.or(self.free_failures),
            failure_delay_ms: over.failure_delay_ms.or(self.failure_delay_ms),
            failure_delay_max_ms: over.failure_delay_max_ms.or(self.failure_delay_max_ms),
            max_failures_per_day: over.max_failures_per_day.or(self.max_failures_per_day),
            max_concurrent_hashes: over.max_concurrent_hashes.or(self.max_concurrent_hashes),
        }
    }
}

/// Validated sign-in settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInConfig {
    pub session_lifetime: Duration,
    pub free_failures: u32,
    pub failure_delay: Duration,
    pub failure_delay_max: Duration,
    pub max_failures_per_day: u32,
    pub max_concurrent_hashes: usize,
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::from_secs(3600),
            free_failures: 3,
            failure_delay: Duration::from_millis(250),
            failure_delay_max: Duration::from_millis(4000),
            max_failures_per_day: 20,
            max_concurrent_hashes: 4,
        }
    }
}

impl SignInConfig {
    /// Apply defaults and check every value.
    pub fn resolve(layer: SignInLayer) -> Result<Self, ConfigError> {
        let d = SignInConfig::default();
        let lifetime = layer.session_lifetime_seconds.unwrap_or(d.session_lifetime.as_secs());
        if !(60..=2_592_000).contains(&lifetime) {
            return Err(ConfigError("sign_in.session_lifetime_seconds must be between 60 and 2592000".into()));
        }
        let delay = layer.failure_delay_ms.unwrap_or(d.failure_delay.as_millis() as u64);
        if delay > 10_000 {
            return Err(ConfigError("sign_in.failure_delay_ms must be between 0 and 10000".into()));
        }
        let delay_max = layer.failure_delay_max_ms.unwrap_or(d.failure_delay_max.as_millis() as u64);
        if delay_max > 60_000 || delay_max < delay {
            return Err(ConfigError(
                "sign_in.failure_delay_max_ms must be between sign_in.failure_delay_ms and 60000".into(),
            ));
        }
        let cap = layer.max_failures_per_day.unwrap_or(d.max_failures_per_day);
        if !(1..=100_000).contains(&cap) {
            return Err(ConfigError("sign_in.max_failures_per_day must be between 1 and 100000".into()));
        }
        let hashes = layer.max_concurrent_hashes.unwrap_or(d.max_concurrent_hashes);
        if !(1..=256).contains(&hashes) {
            return Err(ConfigError("sign_in.max_concurrent_hashes must be between 1 and 256".into()));
        }
        Ok(Self {
            session_lifetime: Duration::from_secs(lifetime),
            free_failures: layer.free_failures.unwrap_or(d.free_failures),
            failure_delay: Duration::from_millis(delay),
            failure_delay_max: Duration::from_millis(delay_max),
            max_failures_per_day: cap,
            max_concurrent_hashes: hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(SignInConfig::resolve(SignInLayer::default()).unwrap(), SignInConfig::default());
        assert_eq!(SignInConfig::default().session_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn later_layer_wins() {
        let file = SignInLayer { session_lifetime_seconds: Some(120), free_failures: Some(1), ..Default::default() };
        let env = SignInLayer { session_lifetime_seconds: Some(600), ..Default::default() };
        let c = SignInConfig::resolve(file.merge(env)).unwrap();
        assert_eq!(c.session_lifetime, Duration::from_secs(600));
        assert_eq!(c.free_failures, 1);
    }

    #[test]
    fn bad_values_are_refused() {
        for layer in [
            SignInLayer { session_lifetime_seconds: Some(59), ..Default::default() },
            SignInLayer { session_lifetime_seconds: Some(2_592_001), ..Default::default() },
            SignInLayer { failure_delay_ms: Some(10_001), failure_delay_max_ms: Some(20_000), ..Default::default() },
            SignInLayer { failure_delay_ms: Some(500), failure_delay_max_ms: Some(100), ..Default::default() },
            SignInLayer { failure_delay_max_ms: Some(60_001), ..Default::default() },
            SignInLayer { max_failures_per_day: Some(0), ..Default::default() },
            SignInLayer { max_concurrent_hashes: Some(0), ..Default::default() },
        ] {
            let e = SignInConfig::resolve(layer.clone()).unwrap_err();
            assert!(e.0.starts_with("sign_in."), "{layer:?}: {e}");
        }
    }

    #[test]
    fn read_from_the_config_file_section() {
        let layer: crate::ConfigLayer =
            toml::from_str("[sign_in]\nsession_lifetime_seconds = 900\nmax_failures_per_day = 5\n").unwrap();
        let c = crate::Config::resolve(layer).unwrap();
        assert_eq!(c.sign_in.session_lifetime, Duration::from_secs(900));
        assert_eq!(c.sign_in.max_failures_per_day, 5);
        assert_eq!(c.sign_in.free_failures, 3);
        let e = toml::from_str::<crate::ConfigLayer>("[sign_in]\nlifetime = 5\n").unwrap_err();
        assert!(e.to_string().contains("lifetime"), "{e}");
        let bad: crate::ConfigLayer = toml::from_str("[sign_in]\nsession_lifetime_seconds = 5\n").unwrap();
        assert!(crate::Config::resolve(bad).is_err());
    }

    #[test]
    fn unknown_key_is_refused() {
        assert!(toml::from_str::<SignInLayer>("session_lifetime = 5").is_err());
        let ok: SignInLayer = toml::from_str("session_lifetime_seconds = 300").unwrap();
        assert_eq!(ok.session_lifetime_seconds, Some(300));
    }
}
