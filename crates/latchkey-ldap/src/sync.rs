//! Reading a whole directory: users, groups and computers with paged searches, then each
//! group's members (DNs, and Active Directory's primary groups) resolved to objects of the
//! same snapshot. Members outside the snapshot are left out and counted.

use std::collections::{BTreeSet, HashMap};

use tracing::instrument;

use crate::connect::Connection;
use crate::entry::{self, Entry};
use crate::snapshot::{DirectoryGroup, DirectorySnapshot, Member};
use crate::{DirectoryConfig, DirectoryError, Flavor, search};

/// Read the users, groups and computers of a directory as the service account.
#[instrument(skip_all, fields(url = %config.url))]
pub async fn read_directory(config: &DirectoryConfig) -> Result<DirectorySnapshot, DirectoryError> {
    let mut conn = Connection::open_as_service(config).await?;
    let result = read_all(&mut conn).await;
    conn.close().await;
    let snapshot = result?;
    tracing::debug!(
        users = snapshot.users.len(),
        groups = snapshot.groups.len(),
        computers = snapshot.computers.len(),
        ignored_members = snapshot.ignored_members,
        "directory read"
    );
    Ok(snapshot)
}

async fn read_all(conn: &mut Connection) -> Result<DirectorySnapshot, DirectoryError> {
    let config = conn.config().clone();
    let flavor = config.flavor;
    let mut snapshot = DirectorySnapshot::default();
    // Who is a member of which primary group (Active Directory keeps it out of `member`).
    let mut primary: Vec<(u32, Member)> = Vec::new();
    // Every object by DN key, to resolve members.
    let mut by_dn: HashMap<String, Member> = HashMap::new();

    let users =
        search::paged(conn, config.users_base(), config.users_filter(), &entry::user_attributes(flavor)).await?;
    for e in &users {
        let Some(u) = entry::user(flavor, e) else {
            snapshot.skipped_entries += 1;
            continue;
        };
        let member = Member::User(u.external_id.clone());
        if let Some(rid) = e.primary_group_rid() {
            primary.push((rid, member.clone()));
        }
        by_dn.insert(latchkey_core::names::dn_key(&u.dn), member);
        snapshot.users.push(u);
    }

    let computers =
        search::paged(conn, config.computers_base(), config.computers_filter(), &entry::computer_attributes(flavor))
            .await?;
    for e in &computers {
        let Some(c) = entry::computer(flavor, e) else {
            snapshot.skipped_entries += 1;
            continue;
        };
        let member = Member::Computer(c.external_id.clone());
        if let Some(rid) = e.primary_group_rid() {
            primary.push((rid, member.clone()));
        }
        by_dn.insert(latchkey_core::names::dn_key(&c.dn), member);
        snapshot.computers.push(c);
    }

    let groups =
        search::paged(conn, config.groups_base(), config.groups_filter(), &entry::group_attributes(flavor)).await?;
    let mut kept: Vec<(&Entry, String, String)> = Vec::new();
    let mut by_rid: HashMap<u32, usize> = HashMap::new();
    for e in &groups {
        let (Some(name), Some(id)) = (entry::group_name(flavor, e), e.external_id(flavor)) else {
            snapshot.skipped_entries += 1;
            continue;
        };
        by_dn.insert(latchkey_core::names::dn_key(&e.dn), Member::Group(id.clone()));
        if let Some(rid) = e.sid_rid() {
            by_rid.insert(rid, kept.len());
        }
        kept.push((e, name, id));
    }

    let mut members: Vec<BTreeSet<Member>> = vec![BTreeSet::new(); kept.len()];
    for (i, (e, _, _)) in kept.iter().enumerate() {
        for value in member_dns(conn, flavor, e).await? {
            match by_dn.get(&latchkey_core::names::dn_key(&value)) {
                Some(m) => {
                    members[i].insert(m.clone());
                }
                None => snapshot.ignored_members += 1,
            }
        }
    }
    for (rid, member) in primary {
        if let Some(i) = by_rid.get(&rid) {
            members[*i].insert(member);
        }
    }
    snapshot.groups = kept
        .into_iter()
        .zip(members)
        .map(|((e, name, external_id), members)| DirectoryGroup {
            dn: e.dn.clone(),
            external_id,
            name,
            members: members.into_iter().collect(),
        })
        .collect();
    Ok(snapshot)
}

/// The DNs a group lists as members.
async fn member_dns(conn: &mut Connection, flavor: Flavor, e: &Entry) -> Result<Vec<String>, DirectoryError> {
    let mut dns = search::all_values(conn, e, "member").await?;
    if flavor == Flavor::Openldap {
        dns.extend(e.all("uniqueMember").iter().map(|v| unique_member_dn(v).to_owned()));
    }
    Ok(dns)
}

/// `uniqueMember` may carry an optional `#'0101'B` unique identifier after the DN.
fn unique_member_dn(value: &str) -> &str {
    match value.rfind("#'") {
        Some(i) if value.ends_with("'B") => &value[..i],
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_member_uid_is_dropped() {
        assert_eq!(unique_member_dn("uid=a,dc=x#'0101'B"), "uid=a,dc=x");
        assert_eq!(unique_member_dn("uid=a,dc=x"), "uid=a,dc=x");
    }
}
