//! The limits on failed sign-ins, as pure functions of the day's failure count.
//!
//! Failures are counted per tenant and account-name key (`DOM\alice`, `alice@dom` and `ALICE`
//! share one counter) and UTC day, by every sign-in path (local and directory).
//!
//! - **Progressive delay**: once a name has `free_failures` failures today, every further
//!   attempt of that name waits `failure_delay`, doubling with each further failure up to
//!   `failure_delay_max`, before its password is checked. The delay applies to right
//!   passwords too, so how long an answer takes never tells a right password from a wrong one.
//! - **Daily cap**: once a name has `max_failures_per_day` failures today, every attempt of that
//!   name is refused with 429 and `Retry-After` until the next UTC day, even with the right
//!   password, without checking it. Attempts already past the cap check when the cap is reached
//!   may still finish (and count), so the count can end a little above the cap.

use std::time::Duration;

use latchkey_core::clock::to_millis;
use time::OffsetDateTime;

use crate::SignInConfig;

/// What to do with an attempt, given the failures its name has today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the password after waiting this long.
    Proceed(Duration),
    /// Refuse: the daily cap is reached. Retry after this many seconds.
    Capped { retry_after_secs: u64 },
}

/// The gate for an attempt at `now` by a name with `failures` failures today.
pub fn gate(config: &SignInConfig, failures: i64, now: OffsetDateTime) -> Gate {
    if failures >= i64::from(config.max_failures_per_day) {
        return Gate::Capped { retry_after_secs: seconds_to_next_utc_day(now) };
    }
    Gate::Proceed(delay(config, failures))
}

/// The delay before checking a password of a name with `failures` failures today.
pub fn delay(config: &SignInConfig, failures: i64) -> Duration {
    let beyond = failures - i64::from(config.free_failures);
    if beyond < 0 || config.failure_delay.is_zero() {
        return Duration::ZERO;
    }
    // Doubling 2^16 times passes any allowed cap, so the shift never overflows.
    let factor = 1u32 << beyond.min(16);
    config.failure_delay.saturating_mul(factor).min(config.failure_delay_max)
}

/// Whole seconds (rounded up, at least 1) from `now` to the next UTC midnight.
pub fn seconds_to_next_utc_day(now: OffsetDateTime) -> u64 {
    const DAY_MS: i64 = 86_400_000;
    let into_day = to_millis(now).rem_euclid(DAY_MS);
    let left_ms = DAY_MS - into_day;
    (left_ms as u64).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_delay_for_the_free_failures_then_doubling_to_the_cap() {
        let c = SignInConfig::default();
        let delays: Vec<Duration> = (0..10).map(|n| delay(&c, n)).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 250, 500, 1000, 2000, 4000, 4000, 4000].map(ms),
            "free_failures = 3, 250 ms doubling, capped at 4 s"
        );
        assert_eq!(delay(&c, 1_000_000), ms(4000));
        let off = SignInConfig { failure_delay: Duration::ZERO, failure_delay_max: Duration::ZERO, ..c };
        assert_eq!(delay(&off, 50), Duration::ZERO);
    }

    #[test]
    fn cap_refuses_until_the_next_utc_day() {
        let c = SignInConfig { max_failures_per_day: 20, ..SignInConfig::default() };
        let now = datetime!(2030-01-02 23:59:58.500 UTC);
        assert_eq!(gate(&c, 19, now), Gate::Proceed(ms(4000)));
        assert_eq!(gate(&c, 20, now), Gate::Capped { retry_after_secs: 2 });
        assert_eq!(gate(&c, 25, now), Gate::Capped { retry_after_secs: 2 });
    }

    #[test]
    fn seconds_to_midnight() {
        assert_eq!(seconds_to_next_utc_day(datetime!(2030-01-02 00:00:00 UTC)), 86_400);
        assert_eq!(seconds_to_next_utc_day(datetime!(2030-01-02 12:00:00 UTC)), 43_200);
        assert_eq!(seconds_to_next_utc_day(datetime!(2030-01-02 23:59:59.999 UTC)), 1);
        assert_eq!(seconds_to_next_utc_day(datetime!(2030-01-02 12:00:00 +05:00)), 61_200);
    }
}
