//! Tech-account administration on Active Directory, as the service account: find, create in an
//! OU, set the password (`unicodePwd`, which needs TLS), enable and disable
//! (`userAccountControl` 512 / 514), add to and remove from a group, delete.
//!
//! Every operation is idempotent where the directory allows it: adding a member who is already
//! one, removing one who is not, disabling a disabled account and deleting a missing one all
//! succeed. Errors say whether the directory could not be reached ([`AdminError::Unavailable`]:
//! try again) or refused the change ([`AdminError::Refused`], e.g. a password that does not meet
//! the policy: trying again will not help).

use std::collections::HashSet;

use ldap3::{Mod, Scope, SearchEntry, ldap_escape};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::connect::{Connection, diagnostic, error};
use crate::{DirectoryConfig, DirectoryError};

/// `userAccountControl` of an enabled normal account.
pub const UAC_ENABLED: &str = "512";
/// `userAccountControl` of a disabled normal account.
pub const UAC_DISABLED: &str = "514";

const NO_SUCH_ATTRIBUTE: u32 = 16;
const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const NO_SUCH_OBJECT: u32 = 32;
const UNWILLING_TO_PERFORM: u32 = 53;
const ENTRY_ALREADY_EXISTS: u32 = 68;

/// Why a directory change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The directory could not be reached or did not answer; try again later.
    #[error("the directory is unreachable: {0}")]
    Unavailable(String),
    /// The directory refused the change (policy, rights, a missing OU or group).
    #[error("the directory refused: {0}")]
    Refused(String),
}

impl AdminError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AdminError::Unavailable(_))
    }
}

impl From<DirectoryError> for AdminError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Config(m) | DirectoryError::Search(m) => AdminError::Refused(m),
            e @ (DirectoryError::Unavailable(_) | DirectoryError::Tls(_) | DirectoryError::ServiceBind(_)) => {
                AdminError::Unavailable(e.to_string())
            }
        }
    }
}

/// A tech account as found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TechAccount {
    pub dn: String,
    /// Whether `userAccountControl` has the disabled bit.
    pub disabled: bool,
    /// The DNs of the groups it is a direct member of.
    pub member_of: Vec<String>,
}

/// A service-account connection for tech-account changes.
pub struct DirectoryAdmin {
    conn: Connection,
}

impl DirectoryAdmin {
    /// Connect and bind as the service account.
    pub async fn connect(config: &DirectoryConfig) -> Result<Self, AdminError> {
        Ok(Self { conn: Connection::open_as_service(config).await? })
    }

    /// Say goodbye.
    pub async fn close(self) {
        self.conn.close().await;
    }

    /// Another handle on the same connection: the operations that take `&self` may run at
    /// the same time, their requests pipelined on the one connection.
    fn shared(&self) -> ldap3::Ldap {
        self.conn.ldap.clone()
    }

    /// The account with this `sAMAccountName` below the base DN, if any.
    pub async fn find_account(&mut self, sam: &str) -> Result<Option<TechAccount>, AdminError> {
        let filter = format!("(&(objectClass=user)(sAMAccountName={}))", ldap_escape(sam));
        let base = self.conn.config().base_dn.clone();
        let found = self.search(&base, &filter, &["userAccountControl", "memberOf"]).await?;
        Ok(found.into_iter().next().map(|e| {
            let uac: u32 =
                e.attrs.get("userAccountControl").and_then(|v| v.first()).and_then(|v| v.parse().ok()).unwrap_or(0);
            TechAccount {
                dn: e.dn,
                disabled: uac & 2 != 0,
                member_of: e.attrs.get("memberOf").cloned().unwrap_or_default(),
            }
        }))
    }

    /// The DN of a group given by DN or by `sAMAccountName` (e.g. `Domain Admins`).
    pub async fn group_dn(&mut self, group: &str) -> Result<String, AdminError> {
        if group.contains('=') {
            return Ok(group.to_owned());
        }
        let filter = format!("(&(objectClass=group)(sAMAccountName={}))", ldap_escape(group));
        let base = self.conn.config().base_dn.clone();
        let found = self.search(&base, &filter, &["cn"]).await?;
        match found.as_slice() {
            [one] => Ok(one.dn.clone()),
            [] => Err(AdminError::Refused(format!("no group named {group} in the directory"))),
            _ => Err(AdminError::Refused(format!("more than one group is named {group}"))),
        }
    }

    /// Create a disabled user `sam` in the OU `ou` with `userPrincipalName` `sam@<suffix>`
    /// (the suffix from the base DN's `DC=` parts). Returns its DN.
    pub async fn create_account(&mut self, ou: &str, sam: &str, description: &str) -> Result<String, AdminError> {
        let dn = format!("CN={},{ou}", escape_rdn(sam));
        let upn = format!("{sam}@{}", upn_suffix(&self.conn.config().base_dn));
        let set = |v: &str| HashSet::from([v.to_owned()]);
        let classes = ["top", "person", "organizationalPerson", "user"].map(str::to_owned);
        let attrs: Vec<(String, HashSet<String>)> = vec![
            ("objectClass".to_owned(), HashSet::from(classes)),
            ("sAMAccountName".to_owned(), set(sam)),
            ("userPrincipalName".to_owned(), set(&upn)),
            ("description".to_owned(), set(description)),
            ("userAccountControl".to_owned(), set(UAC_DISABLED)),
        ];
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self.conn.ldap.with_timeout(timeout).add(&dn, attrs).await.map_err(|e| unavailable(&url, e))?;
        refused_unless(&url, "create the account", result.rc, &result.text, &[ENTRY_ALREADY_EXISTS])?;
        Ok(dn)
    }

    /// Set the account's password (`unicodePwd`, the quoted password in UTF-16LE).
    pub async fn set_password(&mut self, dn: &str, password: &SecretString) -> Result<(), AdminError> {
        self.set_password_and_state(dn, password, None).await
    }

    /// Set the password and, when `enabled` is given, enable or disable the account, in one
    /// change: either both happen or neither (one write for the directory instead of two).
    pub async fn set_password_and_state(
        &self,
        dn: &str,
        password: &SecretString,
        enabled: Option<bool>,
    ) -> Result<(), AdminError> {
        let quoted = Zeroizing::new(format!("\"{}\"", password.expose_secret()));
        let encoded: Zeroizing<Vec<u8>> = Zeroizing::new(quoted.encode_utf16().flat_map(u16::to_le_bytes).collect());
        let mut mods = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([encoded.to_vec()]))];
        if let Some(enabled) = enabled {
            let value = if enabled { UAC_ENABLED } else { UAC_DISABLED };
            mods.push(Mod::Replace(b"userAccountControl".to_vec(), HashSet::from([value.as_bytes().to_vec()])));
        }
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self.shared().with_timeout(timeout).modify(dn, mods).await.map_err(|e| unavailable(&url, e))?;
        // Never repeat the server's text about a password: only its code and a plain reason.
        match result.rc {
            0 => Ok(()),
            19 | UNWILLING_TO_PERFORM => Err(AdminError::Refused(format!(
                "{url}: the directory refused the password (result {}): it does not meet the password policy",
                result.rc
            ))),
            rc => Err(AdminError::Refused(format!("{url}: cannot set the password (result {rc})"))),
        }
    }

    /// Enable (`true`) or disable the account.
    pub async fn set_enabled(&mut self, dn: &str, enabled: bool) -> Result<(), AdminError> {
        let value = if enabled { UAC_ENABLED } else { UAC_DISABLED };
        let mods = vec![Mod::Replace("userAccountControl", HashSet::from([value]))];
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self.conn.ldap.with_timeout(timeout).modify(dn, mods).await.map_err(|e| unavailable(&url, e))?;
        refused_unless(
            &url,
            if enabled { "enable the account" } else { "disable the account" },
            result.rc,
            &result.text,
            &[],
        )
    }

    /// Add `member` to `group` (already a member: fine).
    pub async fn add_member(&mut self, group: &str, member: &str) -> Result<(), AdminError> {
        let mods = vec![Mod::Add("member", HashSet::from([member]))];
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result =
            self.conn.ldap.with_timeout(timeout).modify(group, mods).await.map_err(|e| unavailable(&url, e))?;
        refused_unless(
            &url,
            "add the account to the group",
            result.rc,
            &result.text,
            &[ENTRY_ALREADY_EXISTS, ATTRIBUTE_OR_VALUE_EXISTS],
        )
    }

    /// Remove `member` from `group` (not a member: fine).
    pub async fn remove_member(&self, group: &str, member: &str) -> Result<(), AdminError> {
        let mods = vec![Mod::Delete("member", HashSet::from([member]))];
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self.shared().with_timeout(timeout).modify(group, mods).await.map_err(|e| unavailable(&url, e))?;
        refused_unless(
            &url,
            "remove the account from the group",
            result.rc,
            &result.text,
            &[UNWILLING_TO_PERFORM, NO_SUCH_ATTRIBUTE],
        )
    }

    /// Remove several members from `group` in one change (one rewrite of the group for the
    /// directory). When one of them is not a member the directory refuses the whole change;
    /// they are then removed one by one (not a member: fine).
    pub async fn remove_members(&self, group: &str, members: &[String]) -> Result<(), AdminError> {
        if let [one] = members {
            return self.remove_member(group, one).await;
        }
        let mods = vec![Mod::Delete("member", members.iter().map(String::as_str).collect::<HashSet<&str>>())];
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self.shared().with_timeout(timeout).modify(group, mods).await.map_err(|e| unavailable(&url, e))?;
        match result.rc {
            0 => Ok(()),
            UNWILLING_TO_PERFORM | NO_SUCH_ATTRIBUTE => {
                for member in members {
                    self.remove_member(group, member).await?;
                }
                Ok(())
            }
            rc => Err(AdminError::Refused(format!(
                "{url}: cannot remove the accounts from the group (result {rc}{})",
                diagnostic(&result.text)
            ))),
        }
    }

    /// Delete the account (already gone: fine).
    pub async fn delete_account(&mut self, dn: &str) -> Result<(), AdminError> {
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self.conn.ldap.with_timeout(timeout).delete(dn).await.map_err(|e| unavailable(&url, e))?;
        refused_unless(&url, "delete the account", result.rc, &result.text, &[NO_SUCH_OBJECT])
    }

    async fn search(&mut self, base: &str, filter: &str, attrs: &[&str]) -> Result<Vec<SearchEntry>, AdminError> {
        let timeout = self.conn.config().operation_timeout();
        let url = self.conn.url.clone();
        let result = self
            .conn
            .ldap
            .with_timeout(timeout)
            .search(base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .map_err(|e| unavailable(&url, e))?;
        // Referrals (result 10) and partial results are not ours to follow.
        if result.1.rc != 0 && result.1.rc != 10 {
            return Err(AdminError::Refused(format!(
                "{url}: search below {base} failed (result {}{})",
                result.1.rc,
                diagnostic(&result.1.text)
            )));
        }
        Ok(result.0.into_iter().map(SearchEntry::construct).filter(|e| !e.dn.is_empty()).collect())
    }
}

fn unavailable(url: &str, e: ldap3::LdapError) -> AdminError {
    AdminError::from(error(url, e))
}

/// Success, or one of the `fine` codes; anything else is a refusal naming `what`.
fn refused_unless(url: &str, what: &str, rc: u32, text: &str, fine: &[u32]) -> Result<(), AdminError> {
    if rc == 0 || fine.contains(&rc) {
        Ok(())
    } else {
        Err(AdminError::Refused(format!("{url}: cannot {what} (result {rc}{})", diagnostic(text))))
    }
}

/// `DC=dev1,DC=local` → `dev1.local`.
fn upn_suffix(base_dn: &str) -> String {
    base_dn
        .split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case("dc").then(|| v.trim().to_owned())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Escape a value for use in an RDN (RFC 4514).
fn escape_rdn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == value.chars().count() - 1 && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upn_suffix_from_base_dn() {
        assert_eq!(upn_suffix("DC=dev1,DC=local"), "dev1.local");
        assert_eq!(upn_suffix("OU=x, dc=latchkey ,DC=test"), "latchkey.test");
    }

    #[test]
    fn rdn_values_are_escaped() {
        assert_eq!(escape_rdn("a,b"), "a\\,b");
        assert_eq!(escape_rdn("alice-acme"), "alice-acme");
        assert_eq!(escape_rdn(" x "), "\\ x\\ ");
    }
}
