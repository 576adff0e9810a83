//! Checking a person's password against the directory: find the account as the service
//! account, then bind as its DN over the same TLS connection.

use ldap3::{Scope, ldap_escape};
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::connect::{Connection, error};
use crate::entry::{self, Entry};
use crate::snapshot::DirectoryUser;
use crate::{BindError, DirectoryConfig, DirectoryError, search};

/// Result code of a failed bind: wrong password, and on Active Directory also a disabled
/// (`data 533`), locked (`data 775`) or expired account.
const INVALID_CREDENTIALS: u32 = 49;
/// Result code of a bind method the server will not take for this account.
const INAPPROPRIATE_AUTHENTICATION: u32 = 48;

/// Check `password` for the account written as `name`, `DOMAIN\name` or `name@upn.suffix`.
///
/// An empty password is refused before anything is sent: a simple bind with an empty
/// password is an unauthenticated bind, which many servers answer with success.
#[instrument(skip_all, fields(url = %config.url))]
pub async fn authenticate(
    config: &DirectoryConfig,
    account_name: &str,
    password: &SecretString,
) -> Result<DirectoryUser, BindError> {
    let name = account_name.trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.len() > 256 {
        return Err(BindError::NotFound);
    }
    if password.expose_secret().is_empty() {
        return Err(BindError::InvalidCredentials);
    }
    let mut conn = Connection::open_as_service(config).await?;
    let result = find_and_bind(&mut conn, name, password).await;
    conn.close().await;
    result
}

async fn find_and_bind(conn: &mut Connection, name: &str, password: &SecretString) -> Result<DirectoryUser, BindError> {
    let user = find(conn, name).await?;
    let timeout = conn.config().operation_timeout();
    let url = conn.url.clone();
    let result = conn
        .ldap
        .with_timeout(timeout)
        .simple_bind(&user.dn, password.expose_secret())
        .await
        .map_err(|e| BindError::from(error(&url, e)))?;
    match result.rc {
        0 => Ok(user),
        INVALID_CREDENTIALS | INAPPROPRIATE_AUTHENTICATION => Err(BindError::InvalidCredentials),
        rc => Err(BindError::Unavailable(format!(
            "{url}: the bind was answered with result {rc}{}",
            crate::connect::diagnostic(&result.text)
        ))),
    }
}

/// The one user the name stands for. A UPN that matches exactly wins over an account name.
async fn find(conn: &mut Connection, name: &str) -> Result<DirectoryUser, BindError> {
    let config = conn.config().clone();
    let flavor = config.flavor;
    let (local, upn) = match (name.split_once('\\'), name.split_once('@')) {
        (Some((_, local)), None) => (local.trim(), None),
        (None, Some((local, _))) => (local.trim(), Some(name)),
        (None, None) => (name, None),
        (Some(_), Some(_)) => return Err(BindError::NotFound),
    };
    if local.is_empty() {
        return Err(BindError::NotFound);
    }
    let account_attr = entry::account_attribute(flavor);
    let mut alternatives = format!("({account_attr}={})", ldap_escape(local));
    if let (Some(upn), Some(upn_attr)) = (upn, entry::upn_attribute(flavor)) {
        alternatives.push_str(&format!("({upn_attr}={})", ldap_escape(upn)));
    }
    let filter = format!("(&{}(|{alternatives}))", config.users_filter());
    let found: Vec<Entry> =
        search::simple(conn, config.users_base(), Scope::Subtree, &filter, &entry::user_attributes(flavor))
            .await
            .map_err(|e: DirectoryError| BindError::from(e))?;
    let users: Vec<DirectoryUser> = found.iter().filter_map(|e| entry::user(flavor, e)).collect();
    let exact_upn: Vec<&DirectoryUser> = match upn {
        Some(upn) => users.iter().filter(|u| u.upn.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(upn))).collect(),
        None => Vec::new(),
    };
    let chosen = match (exact_upn.as_slice(), users.as_slice()) {
        ([one], _) => (*one).clone(),
        ([], [one]) => one.clone(),
        ([], []) => return Err(BindError::NotFound),
        _ => {
            tracing::warn!(matches = users.len(), "more than one directory account matches a sign-in name; refused");
            return Err(BindError::NotFound);
        }
    };
    Ok(chosen)
}
