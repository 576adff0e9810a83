//! `[[jit]]` and `[[tickets]]` in the server's config file: each tenant's just-in-time policy
//! per provider, and where its tickets live.
//!
//! ```toml
//! [[jit]]
//! tenant = "default"
//! provider = "directory"           # or "device"
//! max_minutes = 480                # default 480
//! approval_required = false        # another person approves before the grant starts
//! admin_group = "Domain Admins"    # a group name or DN (directory only)
//! accounts_ou = "OU=Tech,DC=corp,DC=example"   # where tech accounts are created (directory)
//! tenant_prefix = "acme"           # tech account names are <user>-<prefix> (directory)
//! on_revoke = "disable"            # or "delete" (directory)
//!
//! [[tickets]]
//! tenant = "default"
//! adapter = "psa"                  # or "builtin" (the default for a tenant without [[tickets]])
//! ticket_url = "https://psa.example/api/tickets/{ticket}"
//! comment_url = "https://psa.example/api/tickets/{ticket}/notes"
//! open_pointer = "/status"         # JSON pointer; without it any 2xx answer means open
//! open_values = ["open", "new"]
//! comment_field = "text"           # the JSON field of the comment body
//! bearer_token_file = "/run/secrets/psa"   # or bearer_token, or username + password(_file)
//! ```
//!
//! Unknown keys are refused. Secrets come from the file or the `*_file` variants only.

use std::path::PathBuf;
use std::time::Duration;

use latchkey_core::TenantSlug;
use latchkey_core::jit::{Provider, TenantPrefix};
use secrecy::SecretString;
use serde::Deserialize;

use crate::config::ConfigError;

/// The longest grant by default, in minutes.
const DEFAULT_MAX_MINUTES: i64 = 480;
/// The longest grant any policy may allow: one week.
const LIMIT_MAX_MINUTES: i64 = 7 * 24 * 60;

/// One `[[jit]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitPolicyLayer {
    pub tenant: String,
    pub provider: String,
    #[serde(default)]
    pub max_minutes: Option<i64>,
    #[serde(default)]
    pub approval_required: Option<bool>,
    #[serde(default)]
    pub admin_group: Option<String>,
    #[serde(default)]
    pub accounts_ou: Option<String>,
    #[serde(default)]
    pub tenant_prefix: Option<String>,
    #[serde(default)]
    pub on_revoke: Option<String>,
}

/// One `[[tickets]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsLayer {
    pub tenant: String,
    pub adapter: String,
    #[serde(default)]
    pub ticket_url: Option<String>,
    #[serde(default)]
    pub comment_url: Option<String>,
    #[serde(default)]
    pub open_pointer: Option<String>,
    #[serde(default)]
    pub open_values: Option<Vec<String>>,
    #[serde(default)]
    pub comment_field: Option<String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// What happens to a directory tech account at the end of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRevoke {
    /// Remove from the group, disable, reset the password to a random one; the account stays.
    Disable,
    /// Remove from the group and delete the account.
    Delete,
}

/// A tenant's policy for one provider.
#[derive(Debug, Clone)]
pub struct JitPolicy {
    pub tenant: String,
    pub provider: Provider,
    pub max_minutes: i64,
    pub approval_required: bool,
    /// The group granted (directory): a name or a DN.
    pub admin_group: String,
    /// Where tech accounts are created (directory).
    pub accounts_ou: Option<String>,
    /// Tech account names end with it (directory).
    pub tenant_prefix: Option<TenantPrefix>,
    pub on_revoke: OnRevoke,
}

/// How a PSA is authenticated.
#[derive(Clone)]
pub enum PsaAuth {
    None,
    Bearer(SecretString),
    Basic { username: String, password: SecretString },
}

impl std::fmt::Debug for PsaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PsaAuth::None => "none",
            PsaAuth::Bearer(_) => "bearer",
            PsaAuth::Basic { .. } => "basic",
        })
    }
}

/// A tenant's PSA.
#[derive(Debug, Clone)]
pub struct PsaConfig {
    /// GET: is the ticket open? `{ticket}` is replaced by the ticket (URL-encoded).
    pub ticket_url: String,
    /// POST: add a comment.
    pub comment_url: String,
    pub open_pointer: Option<String>,
    pub open_values: Vec<String>,
    pub comment_field: String,
    pub auth: PsaAuth,
    pub timeout: Duration,
}

/// Where a tenant's tickets live.
#[derive(Debug, Clone)]
pub enum TicketsConfig {
    Builtin,
    Psa(PsaConfig),
}

/// Every tenant's JIT policies and ticket settings.
#[derive(Debug, Clone, Default)]
pub struct JitConfig {
    pub policies: Vec<JitPolicy>,
    pub tickets: Vec<(String, TicketsConfig)>,
}

impl JitConfig {
    /// The tenant's policy for a provider, if it has one (no policy: the provider is off).
    pub fn policy(&self, tenant_slug: &str, provider: Provider) -> Option<&JitPolicy> {
        self.policies.iter().find(|p| p.tenant == tenant_slug && p.provider == provider)
    }

    /// Where the tenant's tickets live (built-in unless configured).
    pub fn tickets(&self, tenant_slug: &str) -> &TicketsConfig {
        self.tickets.iter().find(|(t, _)| t == tenant_slug).map_or(&TicketsConfig::Builtin, |(_, c)| c)
    }

    /// Check every entry once.
    pub fn resolve(jit: Vec<JitPolicyLayer>, tickets: Vec<TicketsLayer>) -> Result<JitConfig, ConfigError> {
        let mut policies: Vec<JitPolicy> = Vec::new();
        for layer in jit {
            let policy = resolve_policy(layer)?;
            if policies.iter().any(|p| p.tenant == policy.tenant && p.provider == policy.provider) {
                return Err(ConfigError(format!(
                    "jit: tenant {} has more than one {} policy",
                    policy.tenant, policy.provider
                )));
            }
            policies.push(policy);
        }
        let mut resolved: Vec<(String, TicketsConfig)> = Vec::new();
        for layer in tickets {
            let slug = slug("tickets", &layer.tenant)?;
            if resolved.iter().any(|(t, _)| *t == slug) {
                return Err(ConfigError(format!("tickets: tenant {slug} has more than one [[tickets]] entry")));
            }
            let config = resolve_tickets(&slug, layer)?;
            resolved.push((slug, config));
        }
        Ok(JitConfig { policies, tickets: resolved })
    }
}

fn slug(section: &str, raw: &str) -> Result<String, ConfigError> {
    TenantSlug::parse(raw)
        .map(|s| s.as_str().to_owned())
        .map_err(|_| ConfigError(format!("{section}: `{raw}` is not a tenant slug")))
}

fn resolve_policy(layer: JitPolicyLayer) -> Result<JitPolicy, ConfigError> {
    let tenant = slug("jit", &layer.tenant)?;
    let provider = Provider::parse(&layer.provider).ok_or_else(|| {
        ConfigError(format!(
            "jit for tenant {tenant}: provider must be \"directory\" or \"device\", not `{}`",
            layer.provider
        ))
    })?;
    let bad = |why: String| ConfigError(format!("jit for tenant {tenant} ({provider}): {why}"));
    let max_minutes = layer.max_minutes.unwrap_or(DEFAULT_MAX_MINUTES);
    if !(1..=LIMIT_MAX_MINUTES).contains(&max_minutes) {
        return Err(bad(format!("max_minutes must be between 1 and {LIMIT_MAX_MINUTES}")));
    }
    let on_revoke = match layer.on_revoke.as_deref() {
        None | Some("disable") => OnRevoke::Disable,
        Some("delete") => OnRevoke::Delete,
        Some(other) => return Err(bad(format!("on_revoke must be \"disable\" or \"delete\", not `{other}`"))),
    };
    let tenant_prefix = layer
        .tenant_prefix
        .as_deref()
        .map(TenantPrefix::parse)
        .transpose()
        .map_err(|e| bad(format!("tenant_prefix: {e}")))?;
    if provider == Provider::Directory {
        if tenant_prefix.is_none() {
            return Err(bad("tenant_prefix is required (tech accounts are named <user>-<prefix>)".into()));
        }
        match layer.accounts_ou.as_deref() {
            Some(ou) if ou.contains('=') => {}
            _ => return Err(bad("accounts_ou must be the DN of the OU where tech accounts are created".into())),
        }
    }
    Ok(JitPolicy {
        tenant,
        provider,
        max_minutes,
        approval_required: layer.approval_required.unwrap_or(false),
        admin_group: layer.admin_group.unwrap_or_else(|| "Domain Admins".to_owned()),
        accounts_ou: layer.accounts_ou,
        tenant_prefix,
        on_revoke,
    })
}

fn resolve_tickets(tenant: &str, layer: TicketsLayer) -> Result<TicketsConfig, ConfigError> {
    let bad = |why: &str| ConfigError(format!("tickets for tenant {tenant}: {why}"));
    match layer.adapter.as_str() {
        "builtin" => Ok(TicketsConfig::Builtin),
        "psa" => {
            let url = |name: &str, v: Option<String>| -> Result<String, ConfigError> {
                let v = v.ok_or_else(|| bad(&format!("{name} is required for the psa adapter")))?;
                if !(v.starts_with("https://") || v.starts_with("http://")) || !v.contains("{ticket}") {
                    return Err(bad(&format!("{name} must be an http(s) URL with a {{ticket}} placeholder")));
                }
                Ok(v)
            };
            let secret = |plain: Option<String>,
                          file: Option<PathBuf>,
                          name: &str|
             -> Result<Option<SecretString>, ConfigError> {
                match (plain, file) {
                    (Some(_), Some(_)) => Err(bad(&format!("set either {name} or {name}_file, not both"))),
                    (Some(v), None) => Ok(Some(SecretString::from(v))),
                    (None, Some(f)) => crate::config::read_secret_file(&format!("tickets {name}_file"), &f)
                        .map(|v| Some(SecretString::from(v))),
                    (None, None) => Ok(None),
                }
            };
            let bearer = secret(layer.bearer_token, layer.bearer_token_file, "bearer_token")?;
            let password = secret(layer.password, layer.password_file, "password")?;
            let auth = match (bearer, layer.username, password) {
                (Some(t), None, None) => PsaAuth::Bearer(t),
                (None, Some(username), Some(password)) => PsaAuth::Basic { username, password },
                (None, None, None) => PsaAuth::None,
                _ => return Err(bad("use either bearer_token(_file) or username with password(_file)")),
            };
            Ok(TicketsConfig::Psa(PsaConfig {
                ticket_url: url("ticket_url", layer.ticket_url)?,
                comment_url: url("comment_url", layer.comment_url)?,
                open_pointer: layer.open_pointer,
                open_values: layer.open_values.unwrap_or_default(),
                comment_field: layer.comment_field.unwrap_or_else(|| "text".to_owned()),
                auth,
                timeout: Duration::from_secs(layer.timeout_secs.unwrap_or(10).clamp(1, 120)),
            }))
        }
        other => Err(bad(&format!("adapter must be \"builtin\" or \"psa\", not `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(provider: &str) -> JitPolicyLayer {
        JitPolicyLayer {
            tenant: "default".into(),
            provider: provider.into(),
            max_minutes: None,
            approval_required: None,
            admin_group: None,
            accounts_ou: Some("OU=Tech,DC=x".into()),
            tenant_prefix: Some("acme".into()),
            on_revoke: None,
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let c = JitConfig::resolve(vec![layer("directory")], vec![]).unwrap();
        let p = c.policy("default", Provider::Directory).unwrap();
        assert_eq!(p.max_minutes, 480);
        assert_eq!(p.admin_group, "Domain Admins");
        assert_eq!(p.on_revoke, OnRevoke::Disable);
        assert!(c.policy("default", Provider::Device).is_none());
        assert!(matches!(c.tickets("default"), TicketsConfig::Builtin));
        assert!(JitConfig::resolve(vec![layer("cloud")], vec![]).is_err());
        assert!(JitConfig::resolve(vec![layer("directory"), layer("directory")], vec![]).is_err());
        let mut no_prefix = layer("directory");
        no_prefix.tenant_prefix = None;
        assert!(JitConfig::resolve(vec![no_prefix], vec![]).is_err());
        let mut zero = layer("device");
        zero.max_minutes = Some(0);
        assert!(JitConfig::resolve(vec![zero], vec![]).is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e =
            toml::from_str::<JitPolicyLayer>("tenant = \"a\"\nprovider = \"device\"\nmax_minute = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_minute"), "{e}");
    }
}
