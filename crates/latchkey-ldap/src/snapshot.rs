//! What a directory holds, as read by one sync: users, groups with resolved members, computers.

/// A user of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Distinguished name.
    pub dn: String,
    /// `objectGUID` (as the usual hyphenated GUID text) or `entryUUID`, lower case.
    pub external_id: String,
    /// `sAMAccountName` or `uid`.
    pub account_name: String,
    /// `userPrincipalName` (Active Directory).
    pub upn: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// `userAccountControl` has ACCOUNTDISABLE (2), or OpenLDAP's `pwdAccountLockedTime` is set.
    pub disabled: bool,
}

/// A group of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub dn: String,
    pub external_id: String,
    /// `sAMAccountName` or `cn`.
    pub name: String,
    /// Direct members that are objects of the same snapshot, sorted, without duplicates.
    pub members: Vec<Member>,
}

/// A computer of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryComputer {
    pub dn: String,
    pub external_id: String,
    /// `cn` (the computer's short name).
    pub name: String,
    /// `dNSHostName` (Active Directory).
    pub dns_host_name: Option<String>,
}

impl DirectoryComputer {
    /// The container (OU) holding the computer: its DN without the first component.
    pub fn container_dn(&self) -> Option<String> {
        latchkey_core::names::dn_parent(&self.dn)
    }
}

/// A direct member of a group, by the member's external id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Member {
    User(String),
    Group(String),
    Computer(String),
}

/// Everything one sync read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorySnapshot {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    pub computers: Vec<DirectoryComputer>,
    /// Group members that are not a user, group or computer of this snapshot (outside the
    /// base DNs or filters, or foreign security principals); they are left out.
    pub ignored_members: u64,
    /// Entries left out because they lack a name or an identifier.
    pub skipped_entries: u64,
}
