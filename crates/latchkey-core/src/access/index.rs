//! The rule index: a tenant's targets and group graph, arranged so a decision is a handful
//! of hash lookups and a walk up the (shallow) group graph.

use std::collections::HashMap;

use super::{Operation, Target, TargetKind};
use crate::ContainerDn;
use crate::model::MemberKind;
use crate::principal::Principal;

const NONE: u32 = u32::MAX;

/// A group as the index knows it.
#[derive(Debug, Clone)]
pub struct IndexedGroup {
    pub id: String,
    pub name: String,
}

/// Group `child` is a member of group `parent`.
#[derive(Debug, Clone)]
pub struct GroupEdge {
    pub child: String,
    pub parent: String,
}

/// What the decision needs to know about a device, with its comparison keys computed once.
#[derive(Debug, Clone)]
pub struct DeviceFacts {
    /// The device name's comparison key (see [`DeviceFacts::new`]).
    pub name_key: String,
    /// The comparison key of the container the device's directory object is in.
    pub container_key: Option<String>,
    /// Ids of the groups the device is a direct member of.
    pub groups: Vec<String>,
}

impl DeviceFacts {
    /// Facts of a device named `name` in `container`, directly in `groups`.
    pub fn new(name: &str, container: Option<&ContainerDn>, groups: Vec<String>) -> Self {
        Self { name_key: computer_key(name), container_key: container.map(ContainerDn::key), groups }
    }
}

/// What the decision needs to know about a user.
#[derive(Debug, Clone)]
pub struct UserFacts {
    pub user_id: String,
    /// Ids of the groups the user is a direct member of.
    pub groups: Vec<String>,
}

/// How a target matched the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchVia {
    /// The target names the device.
    ComputerName,
    /// The device is (perhaps indirectly) a member of this group.
    Group { group_id: String },
    /// The device is below this container.
    Container { dn: String },
}

/// The target that decides a device's access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Index into [`RuleIndex::targets`].
    pub target: usize,
    pub via: MatchVia,
}

/// How the user is a reader of the matched target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderVia {
    /// Listed by name.
    User,
    /// A member (perhaps indirectly) of this listed group.
    Group { group_id: String },
}

/// Why access was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No target matches the device.
    NoTarget,
    /// A target matches, and the user is not one of its readers.
    NotAReader,
    /// The user reads through the matched target, which does not grant this operation.
    NotGranted,
}

impl DenyReason {
    /// A sentence for explanations and audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoTarget => "no target matches the device",
            DenyReason::NotAReader => "the matching target does not list the user as a reader",
            DenyReason::NotGranted => "the matching target does not grant this operation",
        }
    }
}

/// The answer to "may this user do this on this device", with the reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub matched: Option<Matched>,
    pub reader: Option<ReaderVia>,
    pub denied: Option<DenyReason>,
}

impl Decision {
    /// Whether access is granted.
    pub fn allowed(&self) -> bool {
        self.denied.is_none()
    }
}

/// Per enabled target: its readers as index entries.
#[derive(Debug, Clone, Default)]
struct TargetReaders {
    users: Vec<String>,
    groups: Vec<u32>,
}

/// A tenant's targets and group graph, ready for decisions.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    targets: Vec<Target>,
    readers: Vec<TargetReaders>,
    group_ids: Vec<String>,
    group_by_id: HashMap<String, u32>,
    /// Per group: the groups it is a direct member of.
    parents: Vec<Vec<u32>>,
    /// Computer name key → first Computer target.
    computer: HashMap<String, u32>,
    /// Per group: first Group target naming it, or NONE.
    group_target: Vec<u32>,
    /// Container DN key → first Container target.
    container: HashMap<String, u32>,
}

impl RuleIndex {
    /// Build the index. `targets` may come in any order and may include disabled ones; they
    /// are ordered by position and disabled targets are left out.
    pub fn build(groups: Vec<IndexedGroup>, edges: &[GroupEdge], mut targets: Vec<Target>) -> Self {
        let mut group_by_id = HashMap::with_capacity(groups.len());
        let mut group_by_name: HashMap<String, u32> = HashMap::with_capacity(groups.len());
        let mut group_ids = Vec::with_capacity(groups.len());
        for (i, g) in groups.into_iter().enumerate() {
            let i = i as u32;
            group_by_name.entry(g.name.to_lowercase()).or_insert(i);
            group_by_id.insert(g.id.clone(), i);
            group_ids.push(g.id);
        }
        let mut parents = vec![Vec::new(); group_ids.len()];
        for e in edges {
            if let (Some(&c), Some(&p)) = (group_by_id.get(&e.child), group_by_id.get(&e.parent)) {
                parents[c as usize].push(p);
            }
        }
        targets.retain(|t| t.enabled);
        targets.sort_by_key(|t| t.position);
        let mut computer = HashMap::new();
        let mut container = HashMap::new();
        let mut group_target = vec![NONE; group_ids.len()];
        let mut readers = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            let i = i as u32;
            match t.kind {
                TargetKind::Computer => {
                    computer.entry(computer_key(&t.name)).or_insert(i);
                }
                TargetKind::Group => {
                    let key = Principal::parse(&t.name).map(|p| p.name_key().to_owned()).unwrap_or_default();
                    if let Some(&g) = group_by_name.get(&key) {
                        let slot = &mut group_target[g as usize];
                        if *slot == NONE {
                            *slot = i;
                        }
                    }
                }
                TargetKind::Container => {
                    container.entry(crate::names::dn_key(&t.name)).or_insert(i);
                }
            }
            let mut r = TargetReaders::default();
            for reader in &t.readers {
                match reader.kind {
                    MemberKind::User => r.users.push(reader.id.clone()),
                    MemberKind::Group => r.groups.extend(group_by_id.get(&reader.id)),
                    MemberKind::Device => {}
                }
            }
            readers.push(r);
        }
        Self { targets, readers, group_ids, group_by_id, parents, computer, group_target, container }
    }

    /// The enabled targets in list order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The target that decides access to this device, if any.
    pub fn match_device(&self, device: &DeviceFacts) -> Option<Matched> {
        if let Some(&t) = self.computer.get(&device.name_key) {
            return Some(Matched { target: t as usize, via: MatchVia::ComputerName });
        }
        let mut best: Option<(u32, u32)> = None;
        self.walk_up(&device.groups, |g| {
            let t = self.group_target[g as usize];
            if t != NONE && best.is_none_or(|(b, _)| t < b) {
                best = Some((t, g));
            }
            false
        });
        if let Some((t, g)) = best {
            let group_id = self.group_ids[g as usize].clone();
            return Some(Matched { target: t as usize, via: MatchVia::Group { group_id } });
        }
        let key = device.container_key.as_deref()?;
        let mut best: Option<(u32, &str)> = None;
        let mut rest = key;
        loop {
            if let Some(&t) = self.container.get(rest)
                && best.is_none_or(|(b, _)| t < b)
            {
                best = Some((t, rest));
            }
            match next_rdn(rest) {
                Some(parent) => rest = parent,
                None => break,
            }
        }
        best.map(|(t, dn)| Matched { target: t as usize, via: MatchVia::Container { dn: dn.to_owned() } })
    }

    /// Decide whether `user` may do `op` on `device`.
    pub fn decide(&self, user: &UserFacts, device: &DeviceFacts, op: Operation) -> Decision {
        let Some(matched) = self.match_device(device) else {
            return Decision { matched: None, reader: None, denied: Some(DenyReason::NoTarget) };
        };
        let reader = self.reader_via(matched.target, user);
        let denied = match &reader {
            None => Some(DenyReason::NotAReader),
            Some(_) if !self.targets[matched.target].grants.allows(op) => Some(DenyReason::NotGranted),
            Some(_) => None,
        };
        Decision { matched: Some(matched), reader, denied }
    }

    /// How `user` is a reader of target `t`, if they are.
    fn reader_via(&self, t: usize, user: &UserFacts) -> Option<ReaderVia> {
        let readers = &self.readers[t];
        if readers.users.contains(&user.user_id) {
            return Some(ReaderVia::User);
        }
        if readers.groups.is_empty() {
            return None;
        }
        let mut found = None;
        self.walk_up(&user.groups, |g| {
            if readers.groups.contains(&g) {
                found = Some(g);
                return true;
            }
            false
        });
        found.map(|g| ReaderVia::Group { group_id: self.group_ids[g as usize].clone() })
    }

    /// Visit the given groups and every group above them once; stop when `visit` says so.
    fn walk_up(&self, start: &[String], mut visit: impl FnMut(u32) -> bool) {
        // Group graphs are shallow: a short list beats hashing.
        let mut seen: Vec<u32> = Vec::with_capacity(32);
        let mut stack: Vec<u32> = start.iter().filter_map(|id| self.group_by_id.get(id).copied()).collect();
        while let Some(g) = stack.pop() {
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            if visit(g) {
                return;
            }
            stack.extend(self.parents[g as usize].iter().copied().filter(|p| !seen.contains(p)));
        }
    }
}

/// The DN above a DN key: the text after its first unescaped comma.
fn next_rdn(key: &str) -> Option<&str> {
    let mut escaped = false;
    for (i, c) in key.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => return Some(&key[i + 1..]),
            _ => escaped = false,
        }
    }
    None
}

/// The comparison key of a computer name: the name part of `DOMAIN\NAME`, lower case,
/// without the trailing `$` of a computer account.
fn computer_key(name: &str) -> String {
    let key = Principal::parse(name).map(|p| p.name_key().to_owned()).unwrap_or_else(|_| name.trim().to_lowercase());
    key.strip_suffix('$').map(str::to_owned).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{AuditSettings, Grants, Reader};
    use time::OffsetDateTime;

    fn target(position: i64, kind: TargetKind, name: &str, readers: &[(MemberKind, &str)]) -> Target {
        Target {
            id: format!("t{position}"),
            tenant_id: "tenant".into(),
            position,
            kind,
            name: name.into(),
            expire_after: None,
            grants: Grants::default(),
            audit: AuditSettings::default(),
            enabled: true,
            description: None,
            readers: readers
                .iter()
                .map(|(kind, id)| Reader { principal: (*id).into(), kind: *kind, id: (*id).into() })
                .collect(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn groups(names: &[&str]) -> Vec<IndexedGroup> {
        names.iter().map(|n| IndexedGroup { id: format!("g-{n}"), name: (*n).into() }).collect()
    }

    fn edge(child: &str, parent: &str) -> GroupEdge {
        GroupEdge { child: format!("g-{child}"), parent: format!("g-{parent}") }
    }

    fn device(name: &str, dn: Option<&str>, groups: &[&str]) -> DeviceFacts {
        let dn = dn.map(|d| ContainerDn::parse(d).unwrap());
        DeviceFacts::new(name, dn.as_ref(), groups.iter().map(|g| format!("g-{g}")).collect())
    }

    fn user(id: &str, groups: &[&str]) -> UserFacts {
        UserFacts { user_id: id.into(), groups: groups.iter().map(|g| format!("g-{g}")).collect() }
    }

    /// The seed's scenario: Computer targets win over Group targets, which win over Container
    /// targets, whatever the list order; within a kind the first in the list wins.
    fn seed() -> RuleIndex {
        let gs = groups(&["Workstations", "Laptops", "Helpdesk", "Tier1", "Servers"]);
        let edges = [edge("Laptops", "Workstations"), edge("Tier1", "Helpdesk")];
        let targets = vec![
            target(1, TargetKind::Container, "OU=Computers,DC=dev1,DC=local", &[(MemberKind::User, "carol")]),
            target(2, TargetKind::Group, "DEV1\\Workstations", &[(MemberKind::Group, "g-Helpdesk")]),
            target(3, TargetKind::Computer, "PC-CEO", &[(MemberKind::User, "dave")]),
            target(4, TargetKind::Group, "Laptops", &[(MemberKind::User, "erin")]),
            target(
                5,
                TargetKind::Container,
                "OU=Laptops,OU=Computers,DC=dev1,DC=local",
                &[(MemberKind::User, "frank")],
            ),
        ];
        RuleIndex::build(gs, &edges, targets)
    }

    #[test]
    fn computer_target_wins_and_excludes_group_readers() {
        let ix = seed();
        let ceo = device("pc-ceo", Some("OU=Computers,DC=dev1,DC=local"), &["Workstations"]);
        let d = ix.decide(&user("dave", &[]), &ceo, Operation::ReadPassword);
        assert!(d.allowed());
        assert_eq!(d.matched.as_ref().map(|m| &m.via), Some(&MatchVia::ComputerName));
        // A helpdesk member reads workstations through target 2, but not this one.
        let d = ix.decide(&user("hank", &["Tier1"]), &ceo, Operation::ReadPassword);
        assert_eq!(d.denied, Some(DenyReason::NotAReader));
        assert_eq!(ix.targets()[d.matched.unwrap().target].id, "t3");
    }

    #[test]
    fn first_group_target_in_list_order_wins_over_a_nested_match() {
        let ix = seed();
        // A laptop is in Laptops, nested in Workstations: target 2 (Workstations) comes first.
        let laptop = device("lt-1", Some("OU=Laptops,OU=Computers,DC=dev1,DC=local"), &["Laptops"]);
        let d = ix.decide(&user("hank", &["Tier1"]), &laptop, Operation::ReadPassword);
        assert!(d.allowed(), "{d:?}");
        assert_eq!(d.matched.as_ref().map(|m| m.target), Some(1));
        assert_eq!(d.matched.unwrap().via, MatchVia::Group { group_id: "g-Workstations".into() });
        assert_eq!(d.reader, Some(ReaderVia::Group { group_id: "g-Helpdesk".into() }));
        // erin is listed on target 4 only, which never gets considered.
        assert_eq!(
            ix.decide(&user("erin", &[]), &laptop, Operation::ReadPassword).denied,
            Some(DenyReason::NotAReader)
        );
    }

    #[test]
    fn container_targets_match_at_any_depth_first_in_list_order() {
        let ix = seed();
        let server = device("srv-1", Some("OU=Servers,OU=Computers,DC=dev1,DC=local"), &[]);
        let d = ix.decide(&user("carol", &[]), &server, Operation::ReadPassword);
        assert!(d.allowed());
        assert_eq!(d.matched.unwrap().via, MatchVia::Container { dn: "ou=computers,dc=dev1,dc=local".into() });
        // Under OU=Laptops both container targets contain the device; target 1 is first.
        let laptop = device("lt-2", Some("ou=laptops, ou=computers,dc=DEV1,dc=local"), &[]);
        assert!(ix.decide(&user("carol", &[]), &laptop, Operation::ReadPassword).allowed());
        assert!(!ix.decide(&user("frank", &[]), &laptop, Operation::ReadPassword).allowed());
    }

    #[test]
    fn no_match_is_denied() {
        let ix = seed();
        let elsewhere = device("x", Some("OU=Other,DC=dev1,DC=local"), &["Servers"]);
        let d = ix.decide(&user("carol", &[]), &elsewhere, Operation::ReadPassword);
        assert_eq!(d, Decision { matched: None, reader: None, denied: Some(DenyReason::NoTarget) });
        let no_dn = device("y", None, &[]);
        assert_eq!(ix.decide(&user("carol", &[]), &no_dn, Operation::ReadPassword).denied, Some(DenyReason::NoTarget));
    }

    #[test]
    fn grants_limit_what_a_reader_does() {
        let ix = seed();
        let ceo = device("PC-CEO$", None, &[]);
        let d = ix.decide(&user("dave", &[]), &ceo, Operation::ReadHistory);
        assert_eq!(d.denied, Some(DenyReason::NotGranted));
        assert_eq!(d.reader, Some(ReaderVia::User));
    }

    #[test]
    fn disabled_targets_are_skipped_and_cycles_end() {
        let gs = groups(&["A", "B"]);
        let edges = [edge("A", "B"), edge("B", "A")];
        let mut first = target(1, TargetKind::Group, "A", &[(MemberKind::User, "u1")]);
        first.enabled = false;
        let second = target(2, TargetKind::Group, "B", &[(MemberKind::Group, "g-A")]);
        let ix = RuleIndex::build(gs, &edges, vec![second, first]);
        let d = ix.decide(&user("u2", &["B"]), &device("d", None, &["A"]), Operation::ReadPassword);
        assert!(d.allowed(), "{d:?}");
        assert_eq!(ix.targets().len(), 1);
        assert!(!ix.decide(&user("u1", &[]), &device("d", None, &["A"]), Operation::ReadPassword).allowed());
    }
}
