//! Latchkey wire types: the JSON bodies of the native `/api/v1` API and its problem codes.
//! No I/O. Field names are camelCase on the wire.

mod problem;
mod resources;
mod secrets;

pub use problem::{Problem, ProblemCode};
pub use resources::*;
pub use secrets::{RevealedSecret, SecretReadRequest, SecretSetRequest};
