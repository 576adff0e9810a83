//! Just-in-time elevation: a grant's states and the moves between them, the request checks,
//! and the names of the accounts that receive the elevation.

mod names;
mod state;

pub use names::{AccountNameError, TenantPrefix, directory_account_name, local_account_name};
pub use state::{GrantState, Provider, RequestError, check_minutes, check_reason};
