//! Latchkey's directory adapter for LDAP and Active Directory (ldap3 over rustls).
//!
//! - [`sync::read_directory`] reads users, groups (with nested members resolved) and computers
//!   with paged searches, as a service account.
//! - [`bind::authenticate`] checks a person's password: it finds the account as the service
//!   account, then binds as the account's DN over the same TLS connection.
//!
//! Every connection uses TLS (`ldaps://` or StartTLS) and checks the server's certificate.
//! Passwords are never logged and never part of an error.

pub mod admin;
pub mod bind;
mod config;
mod connect;
mod entry;
mod error;
mod search;
mod snapshot;
pub mod sync;

pub use bind::authenticate;
pub use config::{DirectoryConfig, Flavor};
pub use error::{BindError, DirectoryError};
pub use snapshot::{DirectoryComputer, DirectoryGroup, DirectorySnapshot, DirectoryUser, Member};
pub use sync::read_directory;
