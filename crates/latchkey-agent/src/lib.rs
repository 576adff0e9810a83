//! Latchkey's device agent: the part that runs on a managed device, rotates the password of its
//! local admin account and creates (and later removes) short-lived support accounts.
//!
//! This crate starts with the OS layer: [`LocalAccounts`], one trait for every local-account
//! operation the agent needs, so that each platform gets its own backend behind the same calls.
//!
//! - [`LinuxAccounts`] (Linux) drives the shadow-utils tools (`useradd`, `usermod`, `userdel`,
//!   `gpasswd`, `chpasswd`, `chage`) either on the real system (root `/`) or on a private
//!   directory tree (`--root DIR`), which is how the tests exercise the real tools without
//!   touching the machine's `/etc`. [`prepare_private_root`] creates such a tree.
//!
//! Every call is blocking (it runs a system tool and waits for it): async callers run them on a
//! blocking thread (`tokio::task::spawn_blocking`).
//!
//! Secrets: passwords are [`secrecy::SecretString`]s, are written to a tool's standard input only
//! (never to its argument list, which any local user can read in `/proc`), and the copies made
//! for that are zeroized. Errors carry the tool, its exit status and its standard error.

pub mod local_admin;
pub mod os;

pub use os::{AccountName, AccountNameError, LocalAccounts, OsError, UserInfo};

#[cfg(target_os = "linux")]
pub use os::linux::{LinuxAccounts, prepare_private_root};
