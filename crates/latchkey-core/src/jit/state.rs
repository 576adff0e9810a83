//! Grant states, legal transitions and request checks.

use std::fmt;

/// Where a grant stands. The engine moves a grant forward; nothing moves it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantState {
    /// Waiting for another person's approval.
    Requested,
    /// Approved (or needing no approval): the engine is to grant the access.
    Approved,
    /// The access is in place until the end time.
    Active,
    /// The access is being taken away (end reached or revoked by hand).
    Revoking,
    /// The access was taken away. Final.
    Revoked,
    /// The access could not be granted; whatever the grant step did was undone. Final.
    Failed,
    /// Another person refused the request. Final.
    Denied,
}

impl GrantState {
    /// Every state.
    pub const ALL: [GrantState; 7] = [
        GrantState::Requested,
        GrantState::Approved,
        GrantState::Active,
        GrantState::Revoking,
        GrantState::Revoked,
        GrantState::Failed,
        GrantState::Denied,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Requested => "requested",
            GrantState::Approved => "approved",
            GrantState::Active => "active",
            GrantState::Revoking => "revoking",
            GrantState::Revoked => "revoked",
            GrantState::Failed => "failed",
            GrantState::Denied => "denied",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<GrantState> {
        GrantState::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// Whether nothing more happens to the grant.
    pub fn is_final(self) -> bool {
        matches!(self, GrantState::Revoked | GrantState::Failed | GrantState::Denied)
    }

    /// Whether the engine has work for a grant in this state (at its next step time).
    pub fn has_work(self) -> bool {
        matches!(self, GrantState::Approved | GrantState::Active | GrantState::Revoking)
    }

    /// Whether the move from `self` to `to` is allowed.
    ///
    /// - requested → approved | denied | revoked (withdrawn before anything was granted)
    /// - approved → active | failed | revoking (end reached or revoked before the grant step)
    /// - active → revoking
    /// - revoking → revoked
    pub fn can_move_to(self, to: GrantState) -> bool {
        use GrantState::*;
        matches!(
            (self, to),
            (Requested, Approved | Denied | Revoked)
                | (Approved, Active | Failed | Revoking)
                | (Active, Revoking)
                | (Revoking, Revoked)
        )
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What grants the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Membership of an admin group in the tenant's LDAP / Active Directory directory.
    Directory,
    /// Membership of a device's local administrators, through the device's agent.
    Device,
}

impl Provider {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Directory => "directory",
            Provider::Device => "device",
        }
    }

    /// Parse a stored or requested name.
    pub fn parse(s: &str) -> Option<Provider> {
        [Provider::Directory, Provider::Device].into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request is refused before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("minutes must be at least 1")]
    TooShort,
    #[error("minutes must be at most {max} (the policy's maximum)")]
    TooLong { max: i64 },
    #[error("a reason is required")]
    MissingReason,
    #[error("the reason is longer than 500 characters")]
    ReasonTooLong,
}

/// A duration in minutes within `1..=max`.
pub fn check_minutes(minutes: i64, max: i64) -> Result<i64, RequestError> {
    if minutes <= 0 {
        Err(RequestError::TooShort)
    } else if minutes > max {
        Err(RequestError::TooLong { max })
    } else {
        Ok(minutes)
    }
}

/// A non-blank reason of at most 500 characters, trimmed.
pub fn check_reason(reason: &str) -> Result<String, RequestError> {
    let r = reason.trim();
    if r.is_empty() {
        Err(RequestError::MissingReason)
    } else if r.chars().count() > 500 {
        Err(RequestError::ReasonTooLong)
    } else {
        Ok(r.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in GrantState::ALL {
            assert_eq!(GrantState::parse(s.as_str()), Some(s));
        }
        assert_eq!(GrantState::parse("expired"), None);
    }

    #[test]
    fn only_forward_moves_are_legal() {
        use GrantState::*;
        assert!(Requested.can_move_to(Approved));
        assert!(Approved.can_move_to(Active));
        assert!(Active.can_move_to(Revoking));
        assert!(Revoking.can_move_to(Revoked));
        assert!(!Active.can_move_to(Approved));
        assert!(!Revoked.can_move_to(Revoking));
        assert!(!Revoking.can_move_to(Active));
        assert!(!Requested.can_move_to(Active));
        for s in GrantState::ALL.into_iter().filter(|s| s.is_final()) {
            assert!(GrantState::ALL.iter().all(|t| !s.can_move_to(*t)), "{s} is final");
        }
    }

    #[test]
    fn minutes_and_reason() {
        assert_eq!(check_minutes(0, 60), Err(RequestError::TooShort));
        assert_eq!(check_minutes(-5, 60), Err(RequestError::TooShort));
        assert_eq!(check_minutes(61, 60), Err(RequestError::TooLong { max: 60 }));
        assert_eq!(check_minutes(60, 60), Ok(60));
        assert_eq!(check_reason("  "), Err(RequestError::MissingReason));
        assert_eq!(check_reason(&"x".repeat(501)), Err(RequestError::ReasonTooLong));
        assert_eq!(check_reason(" fix it ").as_deref(), Ok("fix it"));
    }
}
