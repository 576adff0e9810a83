//! .NET `TimeSpan`: the "c" (constant) format used by the compatible APIs
//! (`[-][d.]hh:mm:ss[.fffffff]`) and `TimeSpan.Parse` as Lithnet's `expire-after` uses it.
//!
//! Parsing follows .NET's invariant-culture rules:
//! - `6` is 6 days;
//! - `6:12` is 6 h 12 min; `6:12:14` is 6 h 12 min 14 s; a fraction may follow the seconds;
//! - `6.00:00:00` and `6:00:00:00` are 6 days (`d.h:m:s` and `d:h:m:s`);
//! - in `h:m:s`, hours above 23 make the fields `d:h:m` instead: `24:00:00` is 24 days;
//! - hours 0–23, minutes and seconds 0–59, up to 7 fraction digits; a leading `-` negates.

use std::fmt;

/// Ticks (100 ns) per unit.
const TICKS_PER_SECOND: i64 = 10_000_000;
const TICKS_PER_MINUTE: i64 = 60 * TICKS_PER_SECOND;
const TICKS_PER_HOUR: i64 = 60 * TICKS_PER_MINUTE;
const TICKS_PER_DAY: i64 = 24 * TICKS_PER_HOUR;
/// .NET's `TimeSpan.MaxValue.Days`.
const MAX_DAYS: i64 = 10_675_199;

/// A duration in 100-nanosecond ticks, like .NET's `TimeSpan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimeSpan {
    ticks: i64,
}

/// Why a TimeSpan text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeSpanError {
    #[error("`{0}` is not a TimeSpan (expected forms like 6, 6:12, 6:12:14, 6.00:00:00)")]
    Format(String),
    #[error("`{0}` has a component out of range (hours 0-23, minutes and seconds 0-59)")]
    Overflow(String),
}

impl TimeSpan {
    /// The zero duration.
    pub const ZERO: TimeSpan = TimeSpan { ticks: 0 };

    /// From ticks of 100 ns.
    pub const fn from_ticks(ticks: i64) -> Self {
        Self { ticks }
    }

    /// Ticks of 100 ns.
    pub const fn ticks(self) -> i64 {
        self.ticks
    }

    /// From whole seconds.
    pub const fn from_seconds(s: i64) -> Self {
        Self { ticks: s * TICKS_PER_SECOND }
    }

    /// From a `time::Duration` (sub-tick precision is truncated; saturates at the i64 range).
    pub fn from_duration(d: time::Duration) -> Self {
        let ticks = d.whole_nanoseconds() / 100;
        Self { ticks: ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64 }
    }

    /// As a `time::Duration`.
    pub fn to_duration(self) -> time::Duration {
        time::Duration::nanoseconds_i128(i128::from(self.ticks) * 100)
    }

    /// Parse like .NET `TimeSpan.Parse` with the invariant culture (see the module docs).
    pub fn parse(text: &str) -> Result<Self, TimeSpanError> {
        let s = text.trim();
        let bad = || TimeSpanError::Format(text.to_owned());
        let overflow = || TimeSpanError::Overflow(text.to_owned());
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if body.is_empty() {
            return Err(bad());
        }
        let fields: Vec<&str> = body.split(':').collect();
        let number = |f: &str| -> Result<i64, TimeSpanError> {
            if f.is_empty() || f.len() > 8 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            f.parse::<i64>().map_err(|_| bad())
        };
        // Seconds may carry a fraction of up to 7 digits.
        let seconds = |f: &str| -> Result<(i64, i64), TimeSpanError> {
            match f.split_once('.') {
                Some((whole, frac)) => {
                    if frac.is_empty() || frac.len() > 7 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    let padded = format!("{frac:0<7}");
                    Ok((number(whole)?, padded.parse::<i64>().map_err(|_| bad())?))
                }
                None => Ok((number(f)?, 0)),
            }
        };
        let (days, hours, minutes, secs, fraction) = match fields.as_slice() {
            [d] => (number(d)?, 0, 0, 0, 0),
            [first, m] => {
                let (d, h) = split_days(first, number)?;
                (d, h, number(m)?, 0, 0)
            }
            [first, m, sec] => {
                let (s, f) = seconds(sec)?;
                match first.split_once('.') {
                    Some((d, h)) => (number(d)?, number(h)?, number(m)?, s, f),
                    None => {
                        let h = number(first)?;
                        if h > 23 {
                            // .NET reads `h:m:s` with h > 23 as `d:h:m`.
                            if f != 0 || sec.contains('.') {
                                return Err(overflow());
                            }
                            (h, number(m)?, s, 0, 0)
                        } else {
                            (0, h, number(m)?, s, f)
                        }
                    }
                }
            }
            [d, h, m, sec] => {
                let (s, f) = seconds(sec)?;
                (number(d)?, number(h)?, number(m)?, s, f)
            }
            _ => return Err(bad()),
        };
        if hours > 23 || minutes > 59 || secs > 59 || days > MAX_DAYS {
            return Err(overflow());
        }
        let ticks = days * TICKS_PER_DAY
            + hours * TICKS_PER_HOUR
            + minutes * TICKS_PER_MINUTE
            + secs * TICKS_PER_SECOND
            + fraction;
        Ok(Self { ticks: if negative { -ticks } else { ticks } })
    }
}

/// `d.h` (days and hours) or just `h`.
fn split_days(first: &str, number: impl Fn(&str) -> Result<i64, TimeSpanError>) -> Result<(i64, i64), TimeSpanError> {
    match first.split_once('.') {
        Some((d, h)) => Ok((number(d)?, number(h)?)),
        None => Ok((0, number(first)?)),
    }
}

impl fmt::Display for TimeSpan {
    /// The "c" format: `[-][d.]hh:mm:ss[.fffffff]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.ticks < 0;
        let t = self.ticks.unsigned_abs();
        let per = |n: i64| n as u64;
        let days = t / per(TICKS_PER_DAY);
        let hours = (t / per(TICKS_PER_HOUR)) % 24;
        let minutes = (t / per(TICKS_PER_MINUTE)) % 60;
        let seconds = (t / per(TICKS_PER_SECOND)) % 60;
        let fraction = t % per(TICKS_PER_SECOND);
        if negative {
            f.write_str("-")?;
        }
        if days > 0 {
            write!(f, "{days}.")?;
        }
        write!(f, "{hours:02}:{minutes:02}:{seconds:02}")?;
        if fraction > 0 {
            write!(f, ".{fraction:07}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for TimeSpan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TimeSpan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TimeSpan::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn days(d: i64) -> TimeSpan {
        TimeSpan::from_ticks(d * TICKS_PER_DAY)
    }

    #[test]
    fn lithnet_examples() {
        assert_eq!(TimeSpan::parse("6").unwrap(), days(6));
        assert_eq!(TimeSpan::parse("6:12").unwrap(), TimeSpan::from_seconds(6 * 3600 + 12 * 60));
        assert_eq!(TimeSpan::parse("6:12:14").unwrap(), TimeSpan::from_seconds(6 * 3600 + 12 * 60 + 14));
        assert_eq!(TimeSpan::parse("6.00:00:00").unwrap(), days(6));
        assert_eq!(TimeSpan::parse("6:00:00:00").unwrap(), days(6));
        assert_eq!(TimeSpan::parse("24:00:00").unwrap(), days(24));
        assert_eq!(TimeSpan::parse("1.02:03").unwrap(), TimeSpan::from_seconds(86_400 + 2 * 3600 + 3 * 60));
        assert_eq!(TimeSpan::parse("00:00:01.5").unwrap(), TimeSpan::from_ticks(15_000_000));
        assert_eq!(TimeSpan::parse("-0:30").unwrap(), TimeSpan::from_seconds(-1800));
        assert_eq!(TimeSpan::parse(" 6 ").unwrap(), days(6));
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "-",
            "x",
            "6:",
            ":6",
            "1:2:3:4:5",
            "6:60",
            "6:00:60",
            "1.24:00:00",
            "24:60:00",
            "24:00:00.5",
            "6:00:00.12345678",
            "1e3",
            "+6",
            "6 days",
            "6..0:0:0",
        ] {
            assert!(TimeSpan::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn c_format() {
        assert_eq!(TimeSpan::from_ticks(125_318_215_813).to_string(), "03:28:51.8215813");
        assert_eq!(TimeSpan::from_seconds(12 * 60 + 31).to_string(), "00:12:31");
        assert_eq!(days(1).to_string(), "1.00:00:00");
        assert_eq!(TimeSpan::from_seconds(7 * 60).to_string(), "00:07:00");
        assert_eq!(TimeSpan::from_seconds(-90).to_string(), "-00:01:30");
        assert_eq!(TimeSpan::ZERO.to_string(), "00:00:00");
        assert_eq!(serde_json::to_string(&TimeSpan::from_seconds(60)).unwrap(), "\"00:01:00\"");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ticks in -(MAX_DAYS * TICKS_PER_DAY)..(MAX_DAYS * TICKS_PER_DAY)) {
            let t = TimeSpan::from_ticks(ticks);
            prop_assert_eq!(TimeSpan::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn components_add_up(d in 0i64..10_000, h in 0i64..24, m in 0i64..60, s in 0i64..60) {
            let expected = TimeSpan::from_ticks(d * TICKS_PER_DAY + h * TICKS_PER_HOUR + m * TICKS_PER_MINUTE + s * TICKS_PER_SECOND);
            prop_assert_eq!(TimeSpan::parse(&format!("{d}.{h}:{m}:{s}")).unwrap(), expected);
            prop_assert_eq!(TimeSpan::parse(&format!("{d}:{h}:{m}:{s}")).unwrap(), expected);
            let hm = TimeSpan::from_ticks(h * TICKS_PER_HOUR + m * TICKS_PER_MINUTE);
            prop_assert_eq!(TimeSpan::parse(&format!("{h}:{m}")).unwrap(), hm);
            prop_assert_eq!(TimeSpan::parse(&d.to_string()).unwrap(), TimeSpan::from_ticks(d * TICKS_PER_DAY));
        }

        #[test]
        fn hours_above_23_mean_days(d in 24i64..100_000, h in 0i64..24, m in 0i64..60) {
            let expected = TimeSpan::from_ticks(d * TICKS_PER_DAY + h * TICKS_PER_HOUR + m * TICKS_PER_MINUTE);
            prop_assert_eq!(TimeSpan::parse(&format!("{d}:{h:02}:{m:02}")).unwrap(), expected);
        }

        #[test]
        fn out_of_range_is_refused(h in 24i64..1000, m in 60i64..1000) {
            let (hours, minutes, seconds) = (format!("1.{h}:00:00"), format!("1:{m}"), format!("1:00:{m}"));
            prop_assert!(TimeSpan::parse(&hours).is_err());
            prop_assert!(TimeSpan::parse(&minutes).is_err());
            prop_assert!(TimeSpan::parse(&seconds).is_err());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = TimeSpan::parse(&s);
        }
    }
}
