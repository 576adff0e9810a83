//! The Latchkey server: configuration, start-up, the `/api/v1` HTTP API, metrics and the
//! vault operations that sit between the API and the store.

mod auth;
pub mod config;
mod error;
mod extract;
mod metrics;
pub mod openapi;
mod request_id;
mod routes;
mod startup;
mod state;
mod vault;

pub use config::{Config, ConfigError, ConfigLayer};
pub use latchkey_core::SystemClock;
pub use startup::{RunningServer, StartError, start};
