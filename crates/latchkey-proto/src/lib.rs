//! Latchkey wire types: the JSON bodies of the native `/api/v1` API and its problem codes.
//! No I/O. Field names are camelCase on the wire.

mod access;
mod agent;
mod applications;
mod axidian;
mod directory_sync;
mod jit;
mod notifications;
mod problem;
mod resources;
mod secrets;
mod sign_in;
mod support;

pub use access::*;
pub use agent::*;
pub use applications::*;
pub use axidian::*;
pub use directory_sync::{
    DirectoryObjectCounts, DirectorySyncCounts, DirectorySyncOutcome, DirectorySyncRun, DirectorySyncStatus,
};
pub use jit::*;
pub use notifications::{NotificationChannel, NotificationState, OutboxNotification};
pub use problem::{Problem, ProblemCode};
pub use resources::*;
pub use secrets::{RevealedSecret, SecretReadRequest, SecretSetRequest};
pub use sign_in::{Me, PasswordSetRequest, SessionUser, SignInRequest, SignInResponse, UserRoles};
pub use support::*;
