//! `latchkey serve`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use latchkey_server::{Config, ConfigLayer};
use secrecy::ExposeSecret;

/// Settings of `latchkey serve`. Each flag has a `LATCHKEY_*` variable; flags and variables
/// override the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file with the same settings (snake_case keys).
    #[arg(long, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory: SQLite store, key file, first admin token [default: ./latchkey-data].
    #[arg(long, env = "LATCHKEY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LATCHKEY_LISTEN")]
    listen: Option<String>,
    /// PostgreSQL URL (postgres://…); the embedded SQLite store when absent.
    #[arg(long, env = "LATCHKEY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// File holding the PostgreSQL URL.
    #[arg(long, env = "LATCHKEY_DATABASE_URL_FILE")]
    database_url_file: Option<PathBuf>,
    /// Key file [default: DATA_DIR/latchkey.key].
    #[arg(long, env = "LATCHKEY_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// PEM certificate chain; serves HTTPS with --tls-key.
    #[arg(long, env = "LATCHKEY_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "LATCHKEY_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "LATCHKEY_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Log format.
    #[arg(long, env = "LATCHKEY_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

pub async fn run(args: ServeArgs) -> Result<(), String> {
    init_logging(&args.log_format);
    let file = match &args.config {
        Some(path) => ConfigLayer::from_toml_file(path).map_err(|e| e.to_string())?,
        None => ConfigLayer::default(),
    };
    let flags = ConfigLayer {
        data_dir: args.data_dir,
        listen: args.listen,
        database_url: args.database_url,
        database_url_file: args.database_url_file,
        key_file: args.key_file,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        max_body_bytes: args.max_body_bytes,
        sign_in: None,
        notifications: None,
        directory: None,
        applications: None,
        jit: None,
        tickets: None,
        web: None,
    };
    let config = Config::resolve(file.merge(flags)).map_err(|e| e.to_string())?;
    let data_dir = config.data_dir.clone();
    let server = latchkey_server::start(config, Arc::new(latchkey_core_clock())).await.map_err(|e| e.to_string())?;
    if let Some(token) = &server.first_admin_token {
        println!("First admin token (shown once; also written to {}):", data_dir.join("admin-token").display());
        println!("{}", token.expose_secret());
    }
    let scheme = if server.tls { "https" } else { "http" };
    println!("Latchkey listening on {scheme}://{}", server.addr);
    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    server.wait().await.map_err(|e| e.to_string())
}

fn latchkey_core_clock() -> latchkey_server::SystemClock {
    latchkey_server::SystemClock
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
