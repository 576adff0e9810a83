//! Rotation of device passwords: the policy that governs it and the jobs agents carry out.

use time::{Duration, OffsetDateTime};

/// How a device's admin password is made and how long it lives; also how often the agent
/// checks in and how long support accounts live. Set per tenant or per device group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate when the active password is older than this.
    pub max_age: Duration,
    /// Characters of a generated password (8..=256).
    pub length: i64,
    /// Character classes of a generated password.
    pub classes: CharClasses,
    /// Make a passphrase of this many words instead (4..=20).
    pub passphrase_words: Option<i64>,
    /// Retired versions kept besides the active one (1..=100).
    pub history: i64,
    /// Lifetime of a support account.
    pub support_lifetime: Duration,
    /// How often the agent checks in.
    pub poll_interval: Duration,
}

impl Default for RotationPolicy {
    /// 30 days, 24 characters of every class, 12 in history, support accounts for 24 hours,
    /// check-in every 30 minutes.
    fn default() -> Self {
        RotationPolicy {
            max_age: Duration::days(30),
            length: 24,
            classes: CharClasses::ALL,
            passphrase_words: None,
            history: 12,
            support_lifetime: Duration::hours(24),
            poll_interval: Duration::minutes(30),
        }
    }
}

impl RotationPolicy {
    /// Check every bound; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let secs = |d: Duration| d.whole_seconds();
        if !(3600..=366 * 86_400).contains(&secs(self.max_age)) {
            return Err("maxAgeSeconds must be between 3600 (1 hour) and 31622400 (366 days)".into());
        }
        if !(8..=256).contains(&self.length) {
            return Err("length must be between 8 and 256".into());
        }
        if self.classes == CharClasses::NONE {
            return Err("classes must name at least one of lower, upper, digits, symbols".into());
        }
        if let Some(words) = self.passphrase_words
            && !(4..=20).contains(&words)
        {
            return Err("passphraseWords must be between 4 and 20".into());
        }
        if !(1..=100).contains(&self.history) {
            return Err("history must be between 1 and 100".into());
        }
        if !(300..=30 * 86_400).contains(&secs(self.support_lifetime)) {
            return Err("supportLifetimeSeconds must be between 300 and 2592000 (30 days)".into());
        }
        if !(30..=7 * 86_400).contains(&secs(self.poll_interval)) {
            return Err("pollIntervalSeconds must be between 30 and 604800 (7 days)".into());
        }
        Ok(())
    }

    /// Why the active password must be rotated now, if it must. `created` and `expires` are
    /// the active version's; `None` for `active` means there is none.
    pub fn rotation_due(
        &self,
        active: Option<(OffsetDateTime, Option<OffsetDateTime>)>,
        now: OffsetDateTime,
    ) -> Option<JobCause> {
        match active {
            None => Some(JobCause::Initial),
            Some((_, Some(expires))) if expires <= now => Some(JobCause::Expired),
            Some((created, _)) if created + self.max_age <= now => Some(JobCause::Age),
            Some(_) => None,
        }
    }
}

/// Character classes of generated passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharClasses {
    pub lower: bool,
    pub upper: bool,
    pub digits: bool,
    pub symbols: bool,
}

impl CharClasses {
    /// Every class.
    pub const ALL: CharClasses = CharClasses { lower: true, upper: true, digits: true, symbols: true };
    /// No class (invalid in a policy).
    pub const NONE: CharClasses = CharClasses { lower: false, upper: false, digits: false, symbols: false };

    /// The stored form: the enabled class names joined by commas, e.g. `lower,upper,digits`.
    pub fn as_list(self) -> String {
        [(self.lower, "lower"), (self.upper, "upper"), (self.digits, "digits"), (self.symbols, "symbols")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parse the stored or typed form (names separated by commas, any case; unknown names
    /// are an error that names them).
    pub fn parse(text: &str) -> Result<CharClasses, String> {
        let mut c = CharClasses::NONE;
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "lower" => c.lower = true,
                "upper" => c.upper = true,
                "digits" => c.digits = true,
                "symbols" => c.symbols = true,
                other => {
                    return Err(format!("unknown character class {other:?}: use lower, upper, digits, symbols"));
                }
            }
        }
        Ok(c)
    }
}

/// What a job asks the agent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Generate, escrow (pending), set and confirm a new admin password.
    RotatePassword,
    /// Create a support account, escrow its password and confirm.
    CreateSupportAccount,
    /// Delete a support account and confirm.
    RemoveSupportAccount,
    /// Make a named local account an administrator until a time (just-in-time admin).
    GrantLocalAdmin,
    /// Remove a just-in-time local administrator.
    RevokeLocalAdmin,
}

impl JobKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::RotatePassword => "rotate_password",
            JobKind::CreateSupportAccount => "create_support_account",
            JobKind::RemoveSupportAccount => "remove_support_account",
            JobKind::GrantLocalAdmin => "grant_local_admin",
            JobKind::RevokeLocalAdmin => "revoke_local_admin",
        }
    }

    /// Whether the job is about a just-in-time local administrator.
    pub fn is_local_admin(self) -> bool {
        matches!(self, JobKind::GrantLocalAdmin | JobKind::RevokeLocalAdmin)
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<JobKind> {
        [
            JobKind::RotatePassword,
            JobKind::CreateSupportAccount,
            JobKind::RemoveSupportAccount,
            JobKind::GrantLocalAdmin,
            JobKind::RevokeLocalAdmin,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Sent at every check-in until the agent finishes it.
    Open,
    Done,
    Failed,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "open",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<JobState> {
        [JobState::Open, JobState::Done, JobState::Failed].into_iter().find(|k| k.as_str() == s)
    }
}

/// Why a job was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobCause {
    /// The device has no escrowed password yet.
    Initial,
    /// The active password reached the policy's maximum age.
    Age,
    /// The active password's expiry passed (set on read by access rules, or by an admin).
    Expired,
    /// An admin asked for it.
    Requested,
    /// The agent's report disagrees with the server: rotate to a known state.
    Reconcile,
    /// A support account's lifetime ended.
    Lifetime,
}

impl JobCause {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobCause::Initial => "initial",
            JobCause::Age => "age",
            JobCause::Expired => "expired",
            JobCause::Requested => "requested",
            JobCause::Reconcile => "reconcile",
            JobCause::Lifetime => "lifetime",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<JobCause> {
        [
            JobCause::Initial,
            JobCause::Age,
            JobCause::Expired,
            JobCause::Requested,
            JobCause::Reconcile,
            JobCause::Lifetime,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A job for a device's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceJob {
    pub id: String,
    pub tenant_id: String,
    pub device_id: String,
    pub kind: JobKind,
    pub state: JobState,
    pub cause: JobCause,
    /// The support account a create or remove job is about, once known.
    pub account_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub error: Option<String>,
}

/// Whether `name` is a support account name: `ADM-` and 8 upper-case hex digits.
pub fn is_support_account_name(name: &str) -> bool {
    name.strip_prefix("ADM-")
        .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid_and_the_documented_one() {
        let p = RotationPolicy::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!((p.length, p.history, p.poll_interval.whole_seconds()), (24, 12, 1800));
    }

    #[test]
    fn out_of_bounds_policies_name_the_field() {
        let bad = |f: fn(&mut RotationPolicy)| {
            let mut p = RotationPolicy::default();
            f(&mut p);
            p.validate().unwrap_err()
        };
        assert!(bad(|p| p.length = 7).starts_with("length"));
        assert!(bad(|p| p.history = 0).starts_with("history"));
        assert!(bad(|p| p.classes = CharClasses::NONE).starts_with("classes"));
        assert!(bad(|p| p.passphrase_words = Some(3)).starts_with("passphraseWords"));
        assert!(bad(|p| p.max_age = Duration::minutes(5)).starts_with("maxAge"));
        assert!(bad(|p| p.poll_interval = Duration::seconds(5)).starts_with("pollInterval"));
        assert!(bad(|p| p.support_lifetime = Duration::days(31)).starts_with("supportLifetime"));
    }

    #[test]
    fn rotation_is_due_by_absence_expiry_then_age() {
        let p = RotationPolicy::default();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(100);
        assert_eq!(p.rotation_due(None, now), Some(JobCause::Initial));
        assert_eq!(p.rotation_due(Some((now - Duration::days(29), None)), now), None);
        assert_eq!(p.rotation_due(Some((now - Duration::days(30), None)), now), Some(JobCause::Age));
        assert_eq!(p.rotation_due(Some((now, Some(now))), now), Some(JobCause::Expired));
        assert_eq!(p.rotation_due(Some((now, Some(now + Duration::seconds(1)))), now), None);
    }

    #[test]
    fn classes_round_trip_and_unknown_names_are_refused() {
        let c = CharClasses::parse("Upper, digits").unwrap();
        assert_eq!(c, CharClasses { lower: false, upper: true, digits: true, symbols: false });
        assert_eq!(CharClasses::parse(&c.as_list()).unwrap(), c);
        assert_eq!(CharClasses::ALL.as_list(), "lower,upper,digits,symbols");
        assert!(CharClasses::parse("lower,emoji").unwrap_err().contains("emoji"));
    }

    #[test]
    fn names_round_trip() {
        for k in [JobKind::RotatePassword, JobKind::CreateSupportAccount, JobKind::RemoveSupportAccount] {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        for c in [
            JobCause::Initial,
            JobCause::Age,
            JobCause::Expired,
            JobCause::Requested,
            JobCause::Reconcile,
            JobCause::Lifetime,
        ] {
            assert_eq!(JobCause::parse(c.as_str()), Some(c));
        }
        assert_eq!(JobState::parse("open"), Some(JobState::Open));
        assert_eq!(JobKind::parse("reboot"), None);
    }

    #[test]
    fn support_account_names() {
        assert!(is_support_account_name("ADM-5A2F2169"));
        assert!(!is_support_account_name("ADM-5a2f2169"));
        assert!(!is_support_account_name("ADM-5A2F216"));
        assert!(!is_support_account_name("ADM-5A2F2169X"));
        assert!(!is_support_account_name("XDM-5A2F2169"));
        assert!(!is_support_account_name("ADM-5A2G2169"));
    }
}
