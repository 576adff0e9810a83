//! The Latchkey server: configuration, start-up, the `/api/v1` HTTP API, metrics and the
//! vault operations that sit between the API and the store.

mod access_cache;
mod app_token_cache;
pub mod applications_config;
mod auth;
pub mod config;
pub mod credential_resets;
pub mod directory_config;
mod directory_sync;
mod error;
mod extract;
pub mod jit;
mod lithnet;
pub mod local_admin;
mod metrics;
pub mod notify;
pub mod openapi;
mod password_check;
mod request_id;
mod routes;
mod sign_in_config;
mod sign_in_throttle;
mod ssh_keys;
mod startup;
mod state;
mod vault;
pub mod web;

pub use config::{Config, ConfigError, ConfigLayer};
pub use directory_config::TenantDirectory;
pub use latchkey_core::SystemClock;
pub use notify::config::{NotificationsConfig, NotificationsLayer, SmtpLayer, WebhookLayer};
pub use sign_in_config::{SignInConfig, SignInLayer};
pub use startup::{RunningServer, StartError, start};
pub use state::AppState;
