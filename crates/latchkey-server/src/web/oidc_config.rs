//! `[[web.oidc]]`: OpenID Connect providers people sign in to the web UI with.
//!
//! ```toml
//! [[web.oidc]]
//! id = "corp"                         # in the sign-in URL: /sign-in/oidc/corp
//! label = "Corp SSO"                  # the button: "Sign in with Corp SSO"
//! tenant = "acme"                     # the tenant the people belong to
//! issuer = "https://sso.corp.example/realms/main"
//! client_id = "latchkey"
//! client_secret_file = "/run/secrets/oidc"     # or client_secret = "..."
//! redirect_url = "https://latchkey.corp.example/sign-in/oidc/callback"
//! username_claim = "preferred_username"       # default
//! scopes = ["openid", "profile", "email"]     # default
//! groups_claim = "groups"                     # default
//! admin_groups = ["pam-admins"]               # any mapping set: roles follow the groups
//! auditor_groups = []
//! approver_groups = []
//! ```

use std::fmt;
use std::path::PathBuf;

use latchkey_core::{Role, TenantSlug};
use openidconnect::url::Host;
use openidconnect::{IssuerUrl, RedirectUrl};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{ConfigError, read_secret_file};

/// The path every callback URL ends with.
pub const CALLBACK_PATH: &str = "/sign-in/oidc/callback";

/// One `[[web.oidc]]` table as written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderLayer {
    /// Lower-case letters, digits and `-`; names the provider in URLs.
    pub id: String,
    /// The name on the sign-in button (default: the id).
    pub label: Option<String>,
    /// The slug of the tenant the provider's people belong to.
    pub tenant: String,
    /// The issuer URL (discovery: `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// The client secret, or
    pub client_secret: Option<String>,
    /// a file holding it.
    pub client_secret_file: Option<PathBuf>,
    /// The callback URL as the browser sees it (ends with `/sign-in/oidc/callback`).
    pub redirect_url: String,
    /// The ID token claim that is the user name (default `preferred_username`).
    pub username_claim: Option<String>,
    /// The scopes asked for (default `openid profile email`; must include `openid`).
    pub scopes: Option<Vec<String>>,
    /// The ID token claim listing the person's groups (default `groups`).
    pub groups_claim: Option<String>,
    /// Members of any of these groups are admins.
    pub admin_groups: Option<Vec<String>>,
    /// Members of any of these groups are auditors.
    pub auditor_groups: Option<Vec<String>>,
    /// Members of any of these groups are approvers.
    pub approver_groups: Option<Vec<String>>,
}

impl fmt::Debug for OidcProviderLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviderLayer")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("has_client_secret", &self.client_secret.is_some())
            .field("client_secret_file", &self.client_secret_file)
            .finish_non_exhaustive()
    }
}

/// A client secret: never printed, compared in constant time.
#[derive(Clone)]
pub struct ClientSecretValue(SecretString);

impl ClientSecretValue {
    /// The secret itself, for the token request.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for ClientSecretValue {
    fn eq(&self, other: &Self) -> bool {
        latchkey_crypto::ct_eq(self.expose().as_bytes(), other.expose().as_bytes())
    }
}

impl Eq for ClientSecretValue {}

/// Which groups give which role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMapping {
    pub admin: Vec<String>,
    pub auditor: Vec<String>,
    pub approver: Vec<String>,
}

impl RoleMapping {
    /// Whether any group gives a role (then roles follow the groups at each sign-in).
    pub fn is_set(&self) -> bool {
        !(self.admin.is_empty() && self.auditor.is_empty() && self.approver.is_empty())
    }

    /// The roles of a member of `groups`.
    pub fn roles(&self, groups: &[String]) -> Vec<Role> {
        let member = |wanted: &[String]| wanted.iter().any(|w| groups.iter().any(|g| g == w));
        [(Role::Admin, &self.admin), (Role::Auditor, &self.auditor), (Role::Approver, &self.approver)]
            .into_iter()
            .filter(|(_, wanted)| member(wanted))
            .map(|(role, _)| role)
            .collect()
    }
}

/// A validated provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcProvider {
    pub id: String,
    pub label: String,
    /// The tenant's slug.
    pub tenant: String,
    pub issuer: IssuerUrl,
    pub client_id: String,
    pub client_secret: ClientSecretValue,
    pub redirect_url: RedirectUrl,
    pub username_claim: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub roles: RoleMapping,
}

/// Check every provider: settings, ids unique.
pub fn resolve(layers: Vec<OidcProviderLayer>) -> Result<Vec<OidcProvider>, ConfigError> {
    let mut out: Vec<OidcProvider> = Vec::with_capacity(layers.len());
    for layer in layers {
        let provider = resolve_one(layer)?;
        if out.iter().any(|p| p.id == provider.id) {
            return Err(ConfigError(format!("web.oidc: the id `{}` is used more than once", provider.id)));
        }
        out.push(provider);
    }
    Ok(out)
}

fn resolve_one(layer: OidcProviderLayer) -> Result<OidcProvider, ConfigError> {
    let id = layer.id.trim().to_owned();
    let url_safe = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if id.is_empty() || id.len() > 32 || !id.chars().all(url_safe) || id == "callback" {
        return Err(ConfigError(format!(
            "web.oidc: id `{id}` must be 1 to 32 lower-case letters, digits or `-` (and not `callback`)"
        )));
    }
    let err = |message: String| ConfigError(format!("web.oidc `{id}`: {message}"));
    let label = layer.label.map(|l| l.trim().to_owned()).unwrap_or_else(|| id.clone());
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(err("label must be 1 to 64 characters without control characters".into()));
    }
    let tenant = TenantSlug::parse(&layer.tenant)
        .map_err(|_| err(format!("tenant `{}` is not a tenant slug", layer.tenant)))?
        .as_str()
        .to_owned();
    let issuer = issuer_url(&layer.issuer).map_err(err)?;
    let redirect_url = redirect_url(&layer.redirect_url).map_err(err)?;
    let client_id = layer.client_id.trim().to_owned();
    if client_id.is_empty() {
        return Err(err("client_id must not be empty".into()));
    }
    let client_secret = match (layer.client_secret, layer.client_secret_file) {
        (Some(_), Some(_)) => return Err(err("set either client_secret or client_secret_file, not both".into())),
        (None, None) => return Err(err("set client_secret or client_secret_file".into())),
        (Some(s), None) if s.is_empty() => return Err(err("client_secret must not be empty".into())),
        (Some(s), None) => s,
        (None, Some(file)) => read_secret_file(&format!("web.oidc `{id}`: client_secret_file"), &file)?,
    };
    let claim = |name: &str, value: Option<String>, default: &str| -> Result<String, ConfigError> {
        let value = value.unwrap_or_else(|| default.to_owned());
        if value.is_empty() || value.len() > 128 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err(format!("{name} must be a claim name without spaces")));
        }
        Ok(value)
    };
    let username_claim = claim("username_claim", layer.username_claim, "preferred_username")?;
    let groups_claim = claim("groups_claim", layer.groups_claim, "groups")?;
    let scopes = layer.scopes.unwrap_or_else(|| ["openid", "profile", "email"].map(str::to_owned).to_vec());
    if scopes.iter().any(|s| s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace())) {
        return Err(err("scopes must be names without spaces".into()));
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(err("scopes must include `openid`".into()));
    }
    let groups = |name: &str, list: Option<Vec<String>>| -> Result<Vec<String>, ConfigError> {
        let list = list.unwrap_or_default();
        if list.iter().any(|g| g.is_empty()) {
            return Err(err(format!("{name} must not hold an empty group name")));
        }
        Ok(list)
    };
    let roles = RoleMapping {
        admin: groups("admin_groups", layer.admin_groups)?,
        auditor: groups("auditor_groups", layer.auditor_groups)?,
        approver: groups("approver_groups", layer.approver_groups)?,
    };
    Ok(OidcProvider {
        id,
        label,
        tenant,
        issuer,
        client_id,
        client_secret: ClientSecretValue(SecretString::from(client_secret)),
        redirect_url,
        username_claim,
        scopes,
        groups_claim,
        roles,
    })
}

/// Whether `host` is this machine (plain HTTP is allowed only there).
fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The issuer: an https URL (http only on this machine), without query or fragment.
fn issuer_url(raw: &str) -> Result<IssuerUrl, String> {
    let issuer = IssuerUrl::new(raw.to_owned()).map_err(|_| format!("issuer `{raw}` is not a URL"))?;
    let url = issuer.url();
    let secure = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url.host()));
    if !secure || url.host().is_none() {
        return Err(format!("issuer `{raw}` must be an https:// URL (http:// only for 127.0.0.1 or localhost)"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("issuer `{raw}` must not have a query or fragment"));
    }
    Ok(issuer)
}

/// The callback URL: http(s), ending with [`CALLBACK_PATH`].
fn redirect_url(raw: &str) -> Result<RedirectUrl, String> {
    let redirect = RedirectUrl::new(raw.to_owned()).map_err(|_| format!("redirect_url `{raw}` is not a URL"))?;
    let url = redirect.url();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("redirect_url `{raw}` must be an http:// or https:// URL"));
    }
    if !url.path().ends_with(CALLBACK_PATH) || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("redirect_url `{raw}` must end with {CALLBACK_PATH}"));
    }
    Ok(redirect)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
        id = "corp"
        label = "Corp SSO"
        tenant = "acme"
        issuer = "https://sso.corp.example/realms/main"
        client_id = "latchkey"
        client_secret = "s3cret"
        redirect_url = "https://latchkey.corp.example/sign-in/oidc/callback"
    "#;

    fn parse(text: &str) -> Result<Vec<OidcProvider>, ConfigError> {
        let layer: OidcProviderLayer = toml::from_str(text).map_err(|e| ConfigError(e.message().to_owned()))?;
        resolve(vec![layer])
    }

    #[test]
    fn defaults_apply() {
        let p = parse(ONE).unwrap().remove(0);
        assert_eq!(p.id, "corp");
        assert_eq!(p.label, "Corp SSO");
        assert_eq!(p.username_claim, "preferred_username");
        assert_eq!(p.groups_claim, "groups");
        assert_eq!(p.scopes, ["openid", "profile", "email"]);
        assert!(!p.roles.is_set());
        assert_eq!(p.client_secret.expose(), "s3cret");
        assert!(!format!("{p:?}").contains("s3cret"), "the secret is never printed");
    }

    #[test]
    fn unknown_keys_and_both_secret_forms_are_refused() {
        let e = parse(&format!("{ONE}\nclient_sekret = \"x\"")).unwrap_err();
        assert!(e.0.contains("client_sekret"), "{e}");
        let e = parse(&format!("{ONE}\nclient_secret_file = \"/run/secrets/oidc\"")).unwrap_err();
        assert!(e.0.contains("not both"), "{e}");
        let e = parse(&ONE.replace("client_secret = \"s3cret\"", "")).unwrap_err();
        assert!(e.0.contains("set client_secret or client_secret_file"), "{e}");
    }

    #[test]
    fn secret_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let text = ONE
            .replace("client_secret = \"s3cret\"", &format!("client_secret_file = {:?}", file.display().to_string()));
        assert_eq!(parse(&text).unwrap()[0].client_secret.expose(), "from-file");
    }

    #[test]
    fn bad_values_are_named() {
        for (from, to, says) in [
            ("https://sso.corp.example/realms/main", "not a url", "issuer"),
            ("https://sso.corp.example/realms/main", "http://sso.corp.example/", "https://"),
            ("https://latchkey.corp.example/sign-in/oidc/callback", "https://latchkey.corp.example/cb", "redirect_url"),
            ("id = \"corp\"", "id = \"Corp SSO\"", "id `Corp SSO`"),
            ("id = \"corp\"", "id = \"callback\"", "not `callback`"),
            ("tenant = \"acme\"", "tenant = \"Not A Slug\"", "tenant"),
        ] {
            let e = parse(&ONE.replace(from, to)).unwrap_err();
            assert!(e.0.contains(says), "{to}: {e}");
        }
        let e = parse(&format!("{ONE}\nscopes = [\"profile\"]")).unwrap_err();
        assert!(e.0.contains("openid"), "{e}");
        let loopback = ONE.replace("https://sso.corp.example/realms/main", "http://127.0.0.1:9400");
        assert!(parse(&loopback).is_ok(), "plain HTTP on this machine is allowed");
        let twice = toml::from_str::<OidcProviderLayer>(ONE).unwrap();
        let e = resolve(vec![twice.clone(), twice]).unwrap_err();
        assert!(e.0.contains("more than once"), "{e}");
    }

    #[test]
    fn groups_map_to_roles() {
        let m =
            RoleMapping { admin: vec!["pam-admins".into()], approver: vec!["approvers".into()], ..Default::default() };
        assert!(m.is_set());
        assert_eq!(m.roles(&["pam-admins".into(), "staff".into()]), [Role::Admin]);
        assert_eq!(m.roles(&["approvers".into(), "pam-admins".into()]), [Role::Admin, Role::Approver]);
        assert!(m.roles(&["staff".into()]).is_empty());
    }
}
