//! What a person may do beyond their access targets. Everyone signed in may ask for a password
//! (the targets decide) and request just-in-time access (the JIT policy decides); roles open
//! the pages that act for others.

use std::fmt;

/// A role a person holds in their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Targets, devices, enrollment tokens, applications, policies, users and directory sync.
    Admin,
    /// The audit log and "who can read this device and why".
    Auditor,
    /// The approvals inbox: credential views and just-in-time grants of other people.
    Approver,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Auditor, Role::Approver];

    /// The stored and written name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Approver => "approver",
        }
    }

    /// Parse a name (case-insensitive, surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<Role, UnknownRole> {
        let s = s.trim();
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s)).ok_or(UnknownRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("role must be admin, auditor or approver")]
pub struct UnknownRole;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert_eq!(Role::parse(" Auditor "), Ok(Role::Auditor));
        assert_eq!(Role::parse("root"), Err(UnknownRole));
        assert_eq!(Role::parse(""), Err(UnknownRole));
    }
}
