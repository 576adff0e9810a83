//! Searches: paged (Active Directory answers at most 1000 entries per page), referrals skipped,
//! and ranged retrieval of long multi-valued attributes (`member;range=0-1499`).

use std::panic::AssertUnwindSafe;

use ldap3::adapters::PagedResults;
use ldap3::{ResultEntry, Scope, SearchEntry};

use crate::DirectoryError;
use crate::connect::{Connection, diagnostic, error};
use crate::entry::Entry;

/// Every entry under `base` matching `filter`, fetched page by page.
pub(crate) async fn paged(
    conn: &mut Connection,
    base: &str,
    filter: &str,
    attrs: &[&str],
) -> Result<Vec<Entry>, DirectoryError> {
    let page = conn.config().page_size();
    let timeout = conn.config().operation_timeout();
    let url = conn.url.clone();
    let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
    let mut stream = conn
        .ldap
        .with_timeout(timeout)
        .streaming_search_with(PagedResults::new(page), base, Scope::Subtree, filter, attrs)
        .await
        .map_err(|e| error(&url, e))?;
    let mut out = Vec::new();
    let mut failure = None;
    loop {
        match stream.next().await {
            Ok(Some(entry)) => {
                if let Some(e) = construct(entry) {
                    out.push(e);
                }
            }
            Ok(None) => break,
            Err(e) => {
                failure = Some(error(&url, e));
                break;
            }
        }
    }
    let result = stream.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    check(&url, base, result.rc, &result.text)?;
    Ok(out)
}

/// The entries under `base` matching `filter`, in one unpaged search (for lookups of one
/// object).
pub(crate) async fn simple(
    conn: &mut Connection,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> Result<Vec<Entry>, DirectoryError> {
    let timeout = conn.config().operation_timeout();
    let url = conn.url.clone();
    let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
    let result =
        conn.ldap.with_timeout(timeout).search(base, scope, filter, attrs).await.map_err(|e| error(&url, e))?;
    check(&url, base, result.1.rc, &result.1.text)?;
    Ok(result.0.into_iter().filter_map(construct).collect())
}

/// Every value of a multi-valued attribute, following Active Directory's ranged retrieval when
/// the server sent only the first range (`member;range=0-1499`).
pub(crate) async fn all_values(
    conn: &mut Connection,
    entry: &Entry,
    attr: &str,
) -> Result<Vec<String>, DirectoryError> {
    let mut values = entry.all(attr).to_vec();
    let prefix = format!("{};range=", attr.to_ascii_lowercase());
    let Some(ranged) = entry.names().find(|n| n.starts_with(&prefix)).cloned() else {
        return Ok(values);
    };
    values.extend(entry.all(&ranged).iter().cloned());
    let mut current = ranged;
    // `member;range=0-1499` asks for more from 1500; `member;range=1500-*` is the last range.
    while let Some(next) = next_range_start(&current[prefix.len()..]) {
        let wanted = format!("{attr};range={next}-*");
        let found = simple(conn, &entry.dn, Scope::Base, "(objectClass=*)", &[wanted.as_str()]).await?;
        let Some(e) = found.first() else { break };
        let Some(name) = e.names().find(|n| n.starts_with(&prefix)).cloned() else { break };
        values.extend(e.all(&name).iter().cloned());
        current = name;
    }
    Ok(values)
}

/// For a range `low-high`, the start of the next one; `None` for the last (`low-*`).
fn next_range_start(range: &str) -> Option<u64> {
    let (_, high) = range.split_once('-')?;
    if high == "*" {
        return None;
    }
    high.parse::<u64>().ok().map(|h| h + 1)
}

/// A result code of a search: success, or a search error naming the base.
fn check(url: &str, base: &str, rc: u32, text: &str) -> Result<(), DirectoryError> {
    match rc {
        0 => Ok(()),
        // The server is there but cannot serve right now.
        51 | 52 => {
            Err(DirectoryError::Unavailable(format!("{url}: busy or unavailable (result {rc}{})", diagnostic(text))))
        }
        _ => {
            Err(DirectoryError::Search(format!("{url}: search under {base} failed (result {rc}{})", diagnostic(text))))
        }
    }
}

/// An entry (referrals and intermediate messages are skipped). The client library panics on
/// malformed BER; such an entry is dropped instead of taking the process down.
fn construct(e: ResultEntry) -> Option<Entry> {
    if e.is_ref() || e.is_intermediate() {
        return None;
    }
    match std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(e))) {
        Ok(se) => Some(Entry::new(se)),
        Err(_) => {
            tracing::warn!("the directory sent an entry that cannot be decoded; it was skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(next_range_start("0-1499"), Some(1500));
        assert_eq!(next_range_start("1500-*"), None);
        assert_eq!(next_range_start("garbage"), None);
    }

    /// Active Directory sends long `member` lists in ranges. Samba sends every value unless a
    /// range is asked for, so the first range is asked for here, and the rest must be fetched.
    #[tokio::test]
    async fn ranged_values_are_followed_samba() {
        use std::collections::HashSet;
        let Ok(url) = std::env::var("LATCHKEY_TEST_SAMBA_URL") else {
            let required = std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1");
            assert!(!required, "LATCHKEY_TEST_SAMBA_URL is required");
            return;
        };
        let var = |n: &str| std::env::var(format!("LATCHKEY_TEST_SAMBA_{n}")).unwrap();
        let base = var("BASE_DN");
        let mut config = crate::DirectoryConfig::new(
            &url,
            &var("BIND_DN"),
            secrecy::SecretString::from(var("BIND_PASSWORD")),
            &base,
            crate::Flavor::ActiveDirectory,
        );
        config.ca_file = Some(var("CA_FILE").into());
        let mut conn = Connection::open_as_service(&config).await.unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let ou = format!("OU=lk-range-{id},{base}");
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
        conn.ldap
            .add(&ou, vec![("objectClass".to_owned(), set(&["organizationalUnit"]))])
            .await
            .unwrap()
            .success()
            .unwrap();
        let mut members = Vec::new();
        for i in 0..25 {
            let dn = format!("CN=c{i},{ou}");
            conn.ldap.add(&dn, vec![("objectClass".to_owned(), set(&["contact"]))]).await.unwrap().success().unwrap();
            members.push(dn);
        }
        let group = format!("CN=g,{ou}");
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        conn.ldap
            .add(
                &group,
                vec![
                    ("objectClass".to_owned(), set(&["group"])),
                    ("sAMAccountName".to_owned(), set(&[&format!("lkrange{id}")])),
                    ("member".to_owned(), set(&refs)),
                ],
            )
            .await
            .unwrap()
            .success()
            .unwrap();

        let found = simple(&mut conn, &group, Scope::Base, "(objectClass=*)", &["member;range=0-9"]).await.unwrap();
        let entry = &found[0];
        assert!(entry.names().any(|n| n == "member;range=0-9"), "the server answered no range");
        let values: HashSet<String> =
            all_values(&mut conn, entry, "member").await.unwrap().into_iter().map(|v| v.to_lowercase()).collect();
        assert_eq!(values, members.iter().map(|m| m.to_lowercase()).collect::<HashSet<_>>());

        for dn in [&group].into_iter().chain(&members).chain([&ou]) {
            let _ = conn.ldap.delete(dn).await;
        }
        conn.close().await;
    }
}
