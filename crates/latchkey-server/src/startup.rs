//! Start-up: data directory, key file, store, first-run bootstrap, listener (plain or TLS).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::model::Tenant;
use latchkey_core::{Action, Clock, NewAuditEvent, ObjectType};
use latchkey_crypto::Keyring;
use latchkey_store::{Store, StoreError};
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("key file: {0}")]
    KeyFile(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the key file does not open the secrets in this store ({0}); start with the key file that belongs to this database"
    )]
    WrongKey(String),
    #[error("first-run setup failed: {0}")]
    Bootstrap(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("server stopped: {0}")]
    Serve(std::io::Error),
    #[error("notifications: {0}")]
    Notifications(String),
}

/// A running server.
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The first admin token, when this start created it. Shown once.
    pub first_admin_token: Option<SecretString>,
    /// Whether it serves TLS.
    pub tls: bool,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Store,
    notifications: crate::notify::NotifierHandle,
    directory_sync: crate::directory_sync::SyncTask,
    credential_resets: crate::credential_resets::ResetTask,
    jit: crate::jit::JitHandle,
    /// The state every handler shares (for in-process callers such as tests).
    state: AppState,
}

impl RunningServer {
    /// Stop accepting, let requests in flight finish (up to 10 s), then close the store.
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.handle.graceful_shutdown(Some(Duration::from_secs(10)));
        self.wait().await
    }

    /// Wait until the server stops (after a shutdown signal).
    pub async fn wait(self) -> Result<(), StartError> {
        let result = match self.task.await {
            Ok(r) => r.map_err(StartError::Serve),
            Err(e) => Err(StartError::Serve(std::io::Error::other(e.to_string()))),
        };
        self.notifications.stop().await;
        self.directory_sync.stop().await;
        self.credential_resets.stop().await;
        self.jit.stop().await;
        self.store.close().await;
        result
    }

    /// Make the notification worker look for due notices now.
    pub fn nudge_notifications(&self) {
        self.notifications.nudge();
    }

    /// The state every handler shares: for in-process callers (the device provider of
    /// just-in-time admin, tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that stops the server when asked.
    pub fn shutdown_handle(&self) -> axum_server::Handle {
        self.handle.clone()
    }
}

/// Start the server with this configuration.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<RunningServer, StartError> {
    create_private_dir(&config.data_dir)?;
    let (keyring, created) =
        Keyring::load_or_create(&config.key_file).map_err(|e| StartError::KeyFile(e.to_string()))?;
    if created {
        tracing::info!(path = %config.key_file.display(), "created a new key file; back it up: without it no secret can be read");
    }
    let store = match &config.database_url {
        Some(url) => Store::open(url.expose_secret()).await?,
        None => Store::open_sqlite(&config.data_dir.join("latchkey.db")).await?,
    };
    check_key_matches(&store, &keyring).await?;
    let sealing_file = config.data_dir.join("sealing.key");
    let (sealing, _) =
        latchkey_crypto::SealingKey::load_or_create(&sealing_file).map_err(|e| StartError::KeyFile(e.to_string()))?;
    let notifier = crate::notify::Notifier::new(store.clone(), clock.clone(), &config.notifications)
        .map_err(StartError::Notifications)?;
    let config = Arc::new(config);
    let state = AppState::new(
        store.clone(),
        keyring,
        config.key_file.clone(),
        sealing,
        clock,
        Metrics::default(),
        config.clone(),
    );
    let first_admin_token = bootstrap(&state, &config.data_dir).await?;

    let directory_state = state.clone();
    let reset_state = state.clone();
    let running_state = state.clone();
    let jit_state = state.clone();
    let app = crate::routes::router(state, config.max_body_bytes).into_make_service_with_connect_info::<SocketAddr>();
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|source| StartError::Listen { addr: config.listen, source })?;
    listener.set_nonblocking(true).map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let handle = axum_server::Handle::new();
    let task = match &config.tls {
        Some(tls) => {
            let rustls = crate::startup::tls_config(&tls.cert, &tls.key)?;
            let server =
                axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(rustls))
                    .handle(handle.clone());
            tokio::spawn(async move { server.serve(app).await })
        }
        None => {
            let server = axum_server::from_tcp(listener).handle(handle.clone());
            tokio::spawn(async move { server.serve(app).await })
        }
    };
    let notifications = notifier.spawn();
    let directory_sync = crate::directory_sync::SyncTask::spawn(directory_state);
    let credential_resets = crate::credential_resets::ResetTask::spawn(reset_state);
    let jit = crate::jit::JitHandle::spawn(jit_state, &config.data_dir);
    tracing::info!(%addr, tls = config.tls.is_some(), backend = store.backend().as_str(), "latchkey server listening");
    Ok(RunningServer {
        addr,
        first_admin_token,
        tls: config.tls.is_some(),
        handle,
        task,
        store,
        notifications,
        directory_sync,
        credential_resets,
        jit,
        state: running_state,
    })
}

fn create_private_dir(path: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StartError::DataDir { path: path.display().to_string(), source })
}

/// Refuse to start when the key file cannot open a stored secret (a wrong or replaced key
/// file would otherwise only show when someone needs a password).
async fn check_key_matches(store: &Store, keyring: &Keyring) -> Result<(), StartError> {
    let sample = store.versions_to_rewrap("", 1).await?;
    if let Some(v) = sample.first() {
        crate::vault::open_version(keyring, v).map_err(|e| StartError::WrongKey(e.to_string()))?;
    }
    if let Some(g) = store.grant_passwords_to_rewrap("", 1).await?.first() {
        crate::jit::password::open(keyring, &g.tenant_id, &g.grant_id, &g.envelope).map_err(StartError::WrongKey)?;
    }
    Ok(())
}

/// On the first start: the `default` tenant and the first admin token, printed once and
/// written to `DATA_DIR/admin-token` (mode 0600).
async fn bootstrap(state: &AppState, data_dir: &Path) -> Result<Option<SecretString>, StartError> {
    let store = state.store();
    let now = state.clock().now();
    if store.list_tenants().await?.is_empty() {
        let tenant = Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            slug: "default".into(),
            name: "Default".into(),
            created_at: now,
        };
        let event = NewAuditEvent::new(now, "system", Action::TenantCreate, ObjectType::Tenant)
            .tenant(tenant.id.clone())
            .object(tenant.id.clone())
            .details(&serde_json::json!({ "slug": "default" }));
        match store.create_tenant(tenant, event).await {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if store.count_admin_tokens().await? > 0 {
        return Ok(None);
    }
    let event = NewAuditEvent::new(now, "system", Action::AdminTokenCreate, ObjectType::AdminToken);
    let (_, token) = crate::routes::issue_admin_token(state, "first admin", None, None, event)
        .await
        .map_err(|e| StartError::Bootstrap(format!("{e:?}")))?;
    write_private_file(&data_dir.join("admin-token"), token.expose_secret())
        .map_err(|e| StartError::Bootstrap(format!("cannot write {}: {e}", data_dir.join("admin-token").display())))?;
    Ok(Some(token))
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// A rustls server configuration (ring provider) from PEM files.
fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| StartError::Tls(format!("cannot read certificates from {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!("no certificate in {}", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| StartError::Tls(format!("cannot read the private key from {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
