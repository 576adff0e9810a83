//! Test support: the real Samba AD DC and OpenLDAP started by `scripts/services/samba-ad.sh`
//! and `scripts/services/openldap.sh`, and a private subtree per test (a uniquely named OU
//! holding uniquely named objects), so tests sharing one server never see each other's data.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use latchkey_ldap::{DirectoryConfig, Flavor};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::SecretString;

/// Which directory server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Samba,
    OpenLdap,
}

/// A running directory server, from the environment its script prints.
#[derive(Debug, Clone)]
pub struct Service {
    pub kind: Kind,
    pub url: String,
    pub starttls_url: String,
    pub base_dn: String,
    pub bind_dn: String,
    pub bind_password: String,
    pub ca_file: PathBuf,
    /// The UPN suffix (Samba).
    pub realm: Option<String>,
}

fn services_required() -> bool {
    std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
        || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

impl Service {
    /// The Samba AD DC, or `None` (test skipped) when `LATCHKEY_TEST_SAMBA_URL` is unset and
    /// services are not required.
    pub fn samba() -> Option<Self> {
        Self::from_env(Kind::Samba, "SAMBA", "scripts/services/samba-ad.sh")
    }

    /// The OpenLDAP server, or `None` as for [`Service::samba`].
    pub fn openldap() -> Option<Self> {
        Self::from_env(Kind::OpenLdap, "OPENLDAP", "scripts/services/openldap.sh")
    }

    fn from_env(kind: Kind, name: &str, script: &str) -> Option<Self> {
        let url_var = format!("LATCHKEY_TEST_{name}_URL");
        match std::env::var(&url_var) {
            Ok(v) if !v.trim().is_empty() => {}
            _ => {
                if services_required() {
                    panic!(
                        "{url_var} is required: run ./scripts/test or eval \"$({script} env)\" after `{script} start`"
                    );
                }
                eprintln!("note: {url_var} is not set; skipping (start it with {script} start)");
                return None;
            }
        }
        let p = |s: &str| var(&format!("LATCHKEY_TEST_{name}_{s}"));
        Some(Self {
            kind,
            url: p("URL"),
            starttls_url: p("STARTTLS_URL"),
            base_dn: p("BASE_DN"),
            bind_dn: p("BIND_DN"),
            bind_password: p("BIND_PASSWORD"),
            ca_file: PathBuf::from(p("CA_FILE")),
            realm: (kind == Kind::Samba).then(|| p("REALM")),
        })
    }

    pub fn flavor(&self) -> Flavor {
        match self.kind {
            Kind::Samba => Flavor::ActiveDirectory,
            Kind::OpenLdap => Flavor::Openldap,
        }
    }

    /// A directory configuration over ldaps:// reading below `base_dn`.
    pub fn config(&self, base_dn: &str) -> DirectoryConfig {
        let mut c = DirectoryConfig::new(
            &self.url,
            &self.bind_dn,
            SecretString::from(self.bind_password.as_str()),
            base_dn,
            self.flavor(),
        );
        c.ca_file = Some(self.ca_file.clone());
        c.connect_timeout_secs = Some(10);
        c.operation_timeout_secs = Some(30);
        c
    }

    /// An administrator's connection, for arranging test data.
    pub async fn admin(&self) -> Ldap {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&self.ca_file).unwrap().collect::<Result<_, _>>().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots.add(c).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let settings = LdapConnSettings::new().set_config(Arc::new(tls));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        ldap.simple_bind(&self.bind_dn, &self.bind_password).await.unwrap().success().unwrap();
        ldap
    }
}

/// A private subtree for one test: `OU=lk-<id>` below the server's base DN.
pub struct Tree {
    pub service: Service,
    pub ldap: Ldap,
    /// Short unique id, also used in every object name.
    pub id: String,
    pub dn: String,
}

type Attrs = Vec<(Vec<u8>, HashSet<Vec<u8>>)>;

fn attr(name: &str, values: &[&str]) -> (Vec<u8>, HashSet<Vec<u8>>) {
    (name.as_bytes().to_vec(), values.iter().map(|v| v.as_bytes().to_vec()).collect())
}

impl Tree {
    pub async fn new(service: &Service) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
        let mut ldap = service.admin().await;
        let dn = match service.kind {
            Kind::Samba => format!("OU=lk-{id},{}", service.base_dn),
            Kind::OpenLdap => format!("ou=lk-{id},{}", service.base_dn),
        };
        let ou = format!("lk-{id}");
        ldap.add(&dn, vec![attr("objectClass", &["organizationalUnit"]), attr("ou", &[&ou])])
            .await
            .unwrap()
            .success()
            .unwrap();
        Self { service: service.clone(), ldap, id, dn }
    }

    /// A name unique to this tree: `<base>-<id>` (Samba user names stay within 20 characters).
    pub fn name(&self, base: &str) -> String {
        format!("{base}{}", self.id)
    }

    /// An OU below `parent` (the tree when `None`).
    pub async fn add_ou(&mut self, name: &str, parent: Option<&str>) -> String {
        let parent = parent.unwrap_or(&self.dn).to_owned();
        let dn = match self.service.kind {
            Kind::Samba => format!("OU={name},{parent}"),
            Kind::OpenLdap => format!("ou={name},{parent}"),
        };
        self.add(&dn, vec![attr("objectClass", &["organizationalUnit"]), attr("ou", &[name])]).await;
        dn
    }

    async fn add(&mut self, dn: &str, attrs: Attrs) {
        let r = self.ldap.add(dn, attrs).await.unwrap();
        assert_eq!(r.rc, 0, "adding {dn}: {r}");
    }

    async fn modify(&mut self, dn: &str, mods: Vec<Mod<Vec<u8>>>) {
        let r = self.ldap.modify(dn, mods).await.unwrap();
        assert_eq!(r.rc, 0, "modifying {dn}: {r}");
    }

    /// A user with a password, enabled or disabled, in `ou` (the tree when `None`).
    pub async fn add_user(&mut self, name: &str, password: &str, disabled: bool, ou: Option<&str>) -> String {
        let ou = ou.unwrap_or(&self.dn).to_owned();
        let display = format!("User {name}");
        let mail = format!("{name}@mail.example");
        match self.service.kind {
            Kind::Samba => {
                let dn = format!("CN={name},{ou}");
                let upn = format!("{name}@{}", self.service.realm.clone().unwrap());
                self.add(
                    &dn,
                    vec![
                        attr("objectClass", &["user"]),
                        attr("sAMAccountName", &[name]),
                        attr("userPrincipalName", &[&upn]),
                        attr("displayName", &[&display]),
                        attr("mail", &[&mail]),
                    ],
                )
                .await;
                let quoted: Vec<u8> = format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
                let uac = if disabled { "514" } else { "512" };
                self.modify(
                    &dn,
                    vec![
                        Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([quoted])),
                        Mod::Replace(b"userAccountControl".to_vec(), HashSet::from([uac.as_bytes().to_vec()])),
                    ],
                )
                .await;
                dn
            }
            Kind::OpenLdap => {
                let dn = format!("uid={name},{ou}");
                let mut attrs = vec![
                    attr("objectClass", &["inetOrgPerson"]),
                    attr("uid", &[name]),
                    attr("cn", &[name]),
                    attr("sn", &[name]),
                    attr("displayName", &[&display]),
                    attr("mail", &[&mail]),
                    attr("userPassword", &[password]),
                ];
                if disabled {
                    attrs.push(attr("pwdAccountLockedTime", &["000001010000Z"]));
                }
                self.add(&dn, attrs).await;
                dn
            }
        }
    }

    /// Disable or enable a user.
    pub async fn set_disabled(&mut self, dn: &str, disabled: bool) {
        let mods = match (self.service.kind, disabled) {
            (Kind::Samba, d) => vec![Mod::Replace(
                b"userAccountControl".to_vec(),
                HashSet::from([if d { b"514".to_vec() } else { b"512".to_vec() }]),
            )],
            (Kind::OpenLdap, true) => {
                vec![Mod::Replace(b"pwdAccountLockedTime".to_vec(), HashSet::from([b"000001010000Z".to_vec()]))]
            }
            (Kind::OpenLdap, false) => vec![Mod::Delete(b"pwdAccountLockedTime".to_vec(), HashSet::new())],
        };
        self.modify(dn, mods).await;
    }

    /// A computer in `ou`.
    pub async fn add_computer(&mut self, name: &str, ou: &str) -> String {
        match self.service.kind {
            Kind::Samba => {
                let dn = format!("CN={name},{ou}");
                let sam = format!("{name}$");
                let host = format!("{}.{}", name.to_lowercase(), self.service.realm.clone().unwrap());
                self.add(
                    &dn,
                    vec![
                        attr("objectClass", &["computer"]),
                        attr("sAMAccountName", &[&sam]),
                        attr("userAccountControl", &["4096"]),
                        attr("dNSHostName", &[&host]),
                    ],
                )
                .await;
                dn
            }
            Kind::OpenLdap => {
                let dn = format!("cn={name},{ou}");
                self.add(&dn, vec![attr("objectClass", &["device"]), attr("cn", &[name])]).await;
                dn
            }
        }
    }

    /// A group with members (DNs); OpenLDAP groups need at least one.
    pub async fn add_group(&mut self, name: &str, members: &[&str]) -> String {
        let tree = self.dn.clone();
        match self.service.kind {
            Kind::Samba => {
                let dn = format!("CN={name},{tree}");
                let mut attrs = vec![
                    attr("objectClass", &["group"]),
                    attr("sAMAccountName", &[name]),
                    attr("groupType", &["-2147483646"]),
                ];
                if !members.is_empty() {
                    attrs.push(attr("member", members));
                }
                self.add(&dn, attrs).await;
                dn
            }
            Kind::OpenLdap => {
                let dn = format!("cn={name},{tree}");
                self.add(
                    &dn,
                    vec![attr("objectClass", &["groupOfNames"]), attr("cn", &[name]), attr("member", members)],
                )
                .await;
                dn
            }
        }
    }

    /// Add a member to a group.
    pub async fn add_member(&mut self, group: &str, member: &str) {
        self.modify(group, vec![Mod::Add(b"member".to_vec(), HashSet::from([member.as_bytes().to_vec()]))]).await;
    }

    /// Delete one entry.
    pub async fn delete(&mut self, dn: &str) {
        let r = self.ldap.delete(dn).await.unwrap();
        assert_eq!(r.rc, 0, "deleting {dn}: {r}");
    }

    /// Delete the whole subtree, deepest entries first.
    pub async fn cleanup(mut self) {
        let (entries, _) = self
            .ldap
            .search(&self.dn, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
            .await
            .unwrap()
            .success()
            .unwrap();
        let mut dns: Vec<String> = entries.into_iter().map(|e| SearchEntry::construct(e).dn).collect();
        dns.sort_by_key(|d| std::cmp::Reverse(d.matches(',').count()));
        for dn in dns {
            let _ = self.ldap.delete(&dn).await;
        }
        let _ = self.ldap.unbind().await;
    }
}
