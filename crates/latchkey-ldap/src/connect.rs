//! Opening a connection: TLS (ldaps:// or StartTLS) with the server's certificate always
//! checked, the ring crypto provider, timeouts, and the service account's bind.

use std::path::Path;
use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use secrecy::ExposeSecret;

use crate::{DirectoryConfig, DirectoryError};

/// An open connection whose driver runs on its own task; dropping every handle closes it.
pub(crate) struct Connection {
    pub ldap: Ldap,
    pub url: String,
    config: DirectoryConfig,
}

impl Connection {
    /// Connect (TCP, then TLS or StartTLS) within the connect timeout.
    pub async fn open(config: &DirectoryConfig) -> Result<Self, DirectoryError> {
        config.validate()?;
        let url = config.url.trim().to_owned();
        let tls = tls_config(config.ca_file.as_deref())?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(config.connect_timeout())
            .set_config(tls)
            .set_starttls(config.starttls);
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &url).await.map_err(|e| error(&url, e))?;
        let driver_url = url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url = %driver_url, error = %e, "directory connection ended with an error");
            }
        });
        Ok(Self { ldap, url, config: config.clone() })
    }

    /// Connect and bind as the service account.
    pub async fn open_as_service(config: &DirectoryConfig) -> Result<Self, DirectoryError> {
        let mut conn = Self::open(config).await?;
        let password = config.bind_password()?;
        let timeout = config.operation_timeout();
        let result = conn
            .ldap
            .with_timeout(timeout)
            .simple_bind(&config.bind_dn, password.expose_secret())
            .await
            .map_err(|e| error(&conn.url, e))?;
        drop(password);
        if result.rc != 0 {
            return Err(DirectoryError::ServiceBind(format!(
                "{}: {} (result {}{})",
                conn.url,
                config.bind_dn,
                result.rc,
                diagnostic(&result.text)
            )));
        }
        Ok(conn)
    }

    /// The configuration this connection was opened with.
    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// Say goodbye; errors are irrelevant at this point.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// The server's diagnostic text, when it sent one, as ` : text`.
pub(crate) fn diagnostic(text: &str) -> String {
    let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if t.is_empty() { String::new() } else { format!(": {t}") }
}

/// A rustls client configuration (ring provider) trusting the CA file, or the system's roots.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, DirectoryError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| DirectoryError::Config(format!("ca_file {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(DirectoryError::Config(
                    "no ca_file is set and the system has no CA certificates; set ca_file".into(),
                ));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file; at least one.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, DirectoryError> {
    let bad = |why: String| DirectoryError::Config(format!("ca_file {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it ({})", e.kind())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(certs)
}

/// Map a connection or protocol error of the LDAP client.
pub(crate) fn error(url: &str, e: LdapError) -> DirectoryError {
    let unavailable = |what: String| DirectoryError::Unavailable(format!("{url}: {what}"));
    match e {
        LdapError::Io { source } => match tls_cause(&source) {
            Some(tls) => DirectoryError::Tls(format!("{url}: {tls}")),
            None => unavailable(source.to_string()),
        },
        LdapError::Rustls { source } => DirectoryError::Tls(format!("{url}: {source}")),
        LdapError::Timeout { .. } => unavailable("timed out".into()),
        LdapError::DNSName { .. } => DirectoryError::Config(format!("url {url}: the host is not a valid TLS name")),
        LdapError::UrlParsing { source } => DirectoryError::Config(format!("url {url}: {source}")),
        LdapError::UnknownScheme(s) => DirectoryError::Config(format!("url {url}: unknown scheme {s}")),
        LdapError::LdapResult { result } => {
            // StartTLS refused, or an operation answered with an error code.
            unavailable(format!("result {}{}", result.rc, diagnostic(&result.text)))
        }
        LdapError::FilterParsing => DirectoryError::Config("a search filter is not valid LDAP".into()),
        e @ (LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream) => unavailable(format!("the connection closed ({e})")),
        e @ (LdapError::EmptyUnixPath
        | LdapError::PortInUnixPath
        | LdapError::MismatchedStreamType
        | LdapError::AddNoValues
        | LdapError::AdapterInit(_)
        | LdapError::DecodingUTF8
        | LdapError::InvalidScopeString(_)
        | LdapError::UnrecognizedCriticalExtension(_)) => unavailable(e.to_string()),
    }
}

/// The rustls error inside an I/O error of the TLS handshake, if that is what it is.
fn tls_cause(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner.downcast_ref::<rustls::Error>().map(ToString::to_string)
}
