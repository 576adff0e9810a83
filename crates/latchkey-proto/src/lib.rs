//! Latchkey wire types: the JSON bodies of the native `/api/v1` API and its problem codes.
//! No I/O. Field names are camelCase on the wire.

mod agent;
mod problem;
mod resources;
mod secrets;
mod support;

pub use agent::*;
pub use problem::{Problem, ProblemCode};
pub use resources::*;
pub use secrets::{RevealedSecret, SecretReadRequest, SecretSetRequest};
pub use support::*;
