//! Fault injection for crash tests.
//!
//! [`crashpoint`] marks a place where a crash must lose nothing (for example: a password is
//! stored as pending on the server but not yet set on the device). A test starts the process
//! with `LATCHKEY_CRASH_AT=<name>`, and the process aborts at the point of that name, as if the
//! power failed there. Without the variable every point does nothing. The variable is read
//! once per process.

use std::sync::OnceLock;

/// The environment variable naming the point at which the process aborts.
pub const CRASH_AT_VAR: &str = "LATCHKEY_CRASH_AT";

/// A fault-injection point for tests: aborts the process (no unwinding, no destructors, no
/// buffered output flushed) when `LATCHKEY_CRASH_AT` equals `name`; otherwise does nothing.
pub fn crashpoint(name: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(CRASH_AT_VAR).ok().filter(|v| !v.is_empty()));
    if target.as_deref() == Some(name) {
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unnamed_point_does_nothing() {
        // The test runner does not set the variable to this name.
        crashpoint("a-point-no-test-names");
    }
}
