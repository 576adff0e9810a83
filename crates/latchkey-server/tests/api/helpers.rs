//! `spawn_app()`: a server on port 0 with a fresh database, a manual clock and a client
//! holding the first admin token.

use std::sync::Arc;

use latchkey_client::Client;
use latchkey_core::{Clock, ManualClock, SystemClock};
use latchkey_server::{Config, ConfigLayer, RunningServer};
use secrecy::ExposeSecret;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub server: Option<RunningServer>,
    pub client: Client,
    pub token: String,
    pub base: String,
    pub clock: Arc<ManualClock>,
    /// Shared so the directory outlives every future that uses the app (an async block may
    /// capture only some fields of `TestApp`).
    pub data_dir: Arc<tempfile::TempDir>,
    /// The store URL (for tests that reach into the database).
    pub db_url: String,
    pub backend: Backend,
}

impl TestApp {
    /// A client with another token.
    pub fn client_with(&self, token: Option<&str>) -> Client {
        Client::new(&self.base, token.map(str::to_owned)).unwrap()
    }

    /// A raw HTTP client for requests the typed client cannot make (bad bodies and the like).
    pub fn raw(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stop the server (keeps the data directory).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }

    /// The config this app runs with (for restarts).
    pub fn config(&self) -> Config {
        config_for(self.data_dir.path(), self.backend, &self.db_url)
    }
}

pub fn config_for(dir: &std::path::Path, backend: Backend, db_url: &str) -> Config {
    Config::resolve(ConfigLayer {
        data_dir: Some(dir.to_owned()),
        listen: Some("127.0.0.1:0".into()),
        database_url: (backend == Backend::Postgres).then(|| db_url.to_owned()),
        ..Default::default()
    })
    .unwrap()
}

/// Start a fresh server, or `None` when the PostgreSQL variant is skipped.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("LATCHKEY_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_test_writer()
        .try_init();
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("latchkey.db").display()),
        Backend::Postgres => latchkey_testkit::fresh_postgres_url().await?,
    };
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = latchkey_server::start(config_for(data_dir.path(), backend, &db_url), clock.clone()).await.unwrap();
    let token = server.first_admin_token.as_ref().unwrap().expose_secret().to_owned();
    let base = format!("http://{}", server.addr);
    let client = Client::new(&base, Some(token.clone())).unwrap();
    Some(TestApp { server: Some(server), client, token, base, clock, data_dir, db_url, backend })
}

/// Run a test body on both backends: `both!(name, |app| async move { ... })`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.unwrap();
                let keep = app.data_dir.clone();
                ($body)(app).await;
                drop(keep);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                    return;
                };
                let keep = app.data_dir.clone();
                ($body)(app).await;
                drop(keep);
            }
        }
    };
}

/// A generic account with a password, returning its id.
pub async fn account_with_password(app: &TestApp, tenant: &str, name: &str, password: &str) -> String {
    let acct = app
        .client
        .create_account(
            tenant,
            &latchkey_proto::AccountCreate {
                kind: latchkey_proto::AccountKind::Generic,
                name: name.into(),
                device_id: None,
                description: None,
            },
        )
        .await
        .unwrap();
    app.client
        .set_secret(
            tenant,
            &acct.id,
            &latchkey_proto::SecretSetRequest {
                password: Some(password.into()),
                ssh_private_key: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    acct.id
}

/// The audit head: (events, last seq) as seen through the API.
pub async fn audit_count(app: &TestApp) -> usize {
    let mut n = 0;
    let mut after = None;
    loop {
        let page = app
            .client
            .list_audit(&latchkey_client::AuditQuery { after, limit: Some(1000), ..Default::default() })
            .await
            .unwrap();
        n += page.items.len();
        match page.next {
            Some(next) => after = Some(next.parse().unwrap()),
            None => return n,
        }
    }
}
