//! The `[applications]` settings: access token lifetime and the limits on failed token
//! requests (per application and per client address).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// `[applications]` in the TOML file; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationsLayer {
    /// Lifetime of an access token (10 to 3600 seconds; default 60).
    pub token_lifetime_seconds: Option<u64>,
    /// Failures of an application or address answered without delay (default 3).
    pub free_failures: Option<u32>,
    /// Delay after the first failure beyond the free ones, doubling (0 to 10000 ms; default 250).
    pub failure_delay_ms: Option<u64>,
    /// Longest delay (0 to 60000 ms, at least `failure_delay_ms`; default 4000).
    pub failure_delay_max_ms: Option<u64>,
    /// Failures within the window after which the application or address is locked out
    /// (1 to 100000; default 10).
    pub max_failures: Option<u32>,
    /// How long a lockout lasts (1 to 86400 seconds; default 900).
    pub lockout_seconds: Option<u64>,
    /// Failures older than this are forgotten (60 to 86400 seconds; default 900).
    pub failure_window_seconds: Option<u64>,
}

impl ApplicationsLayer {
    /// Settings of `over` win over those of `self`.
    pub fn merge(self, over: ApplicationsLayer) -> ApplicationsLayer {
        ApplicationsLayer {
            token_lifetime_seconds: over.token_lifetime_seconds.or(self.token_lifetime_seconds),
            free_failures: over.free_failures.or(self.free_failures),
            failure_delay_ms: over.failure_delay_ms.or(self.failure_delay_ms),
            failure_delay_max_ms: over.failure_delay_max_ms.or(self.failure_delay_max_ms),
            max_failures: over.max_failures.or(self.max_failures),
            lockout_seconds: over.lockout_seconds.or(self.lockout_seconds),
            failure_window_seconds: over.failure_window_seconds.or(self.failure_window_seconds),
        }
    }
}

/// Validated `[applications]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationsConfig {
    pub token_lifetime: Duration,
    pub free_failures: u32,
    pub failure_delay: Duration,
    pub failure_delay_max: Duration,
    pub max_failures: u32,
    pub lockout: Duration,
    pub failure_window: Duration,
}

impl Default for ApplicationsConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(60),
            free_failures: 3,
            failure_delay: Duration::from_millis(250),
            failure_delay_max: Duration::from_millis(4000),
            max_failures: 10,
            lockout: Duration::from_secs(900),
            failure_window: Duration::from_secs(900),
        }
    }
}

impl ApplicationsConfig {
    /// Apply defaults and check every value.
    pub fn resolve(layer: ApplicationsLayer) -> Result<Self, ConfigError> {
        let d = ApplicationsConfig::default();
        let range = |name: &str, value: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError(format!("applications.{name} must be between {lo} and {hi}")))
            }
        };
        let lifetime = range("token_lifetime_seconds", layer.token_lifetime_seconds.unwrap_or(60), 10, 3600)?;
        let delay = range("failure_delay_ms", layer.failure_delay_ms.unwrap_or(250), 0, 10_000)?;
        let delay_max = range("failure_delay_max_ms", layer.failure_delay_max_ms.unwrap_or(4000), delay, 60_000)?;
        let max = range("max_failures", u64::from(layer.max_failures.unwrap_or(d.max_failures)), 1, 100_000)?;
        let lockout = range("lockout_seconds", layer.lockout_seconds.unwrap_or(900), 1, 86_400)?;
        let window = range("failure_window_seconds", layer.failure_window_seconds.unwrap_or(900), 60, 86_400)?;
        Ok(Self {
            token_lifetime: Duration::from_secs(lifetime),
            free_failures: layer.free_failures.unwrap_or(d.free_failures),
            failure_delay: Duration::from_millis(delay),
            failure_delay_max: Duration::from_millis(delay_max),
            max_failures: max as u32,
            lockout: Duration::from_secs(lockout),
            failure_window: Duration::from_secs(window),
        })
    }

    /// The delay before checking a request whose application or address has `failures`
    /// recent failures (the larger of the two counts).
    pub fn delay(&self, failures: i64) -> Duration {
        let beyond = failures - i64::from(self.free_failures);
        if beyond < 0 || self.failure_delay.is_zero() {
            return Duration::ZERO;
        }
        let factor = 1u32 << beyond.min(16);
        self.failure_delay.saturating_mul(factor).min(self.failure_delay_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(ApplicationsConfig::resolve(ApplicationsLayer::default()).unwrap(), ApplicationsConfig::default());
        for layer in [
            ApplicationsLayer { token_lifetime_seconds: Some(9), ..Default::default() },
            ApplicationsLayer { token_lifetime_seconds: Some(3601), ..Default::default() },
            ApplicationsLayer { failure_delay_ms: Some(500), failure_delay_max_ms: Some(100), ..Default::default() },
            ApplicationsLayer { max_failures: Some(0), ..Default::default() },
            ApplicationsLayer { lockout_seconds: Some(0), ..Default::default() },
            ApplicationsLayer { failure_window_seconds: Some(59), ..Default::default() },
        ] {
            let e = ApplicationsConfig::resolve(layer.clone()).unwrap_err();
            assert!(e.0.starts_with("applications."), "{layer:?}: {e}");
        }
    }

    #[test]
    fn delay_doubles_after_the_free_failures() {
        let c = ApplicationsConfig::default();
        let ms: Vec<u128> = (0..9).map(|n| c.delay(n).as_millis()).collect();
        assert_eq!(ms, [0, 0, 0, 250, 500, 1000, 2000, 4000, 4000]);
    }
}
