//! Integration tests: the real server on port 0 with a fresh database, driven through the
//! real client. Every case runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod axidian;
mod bad_input;
mod check_in;
mod device_access;
mod device_agent;
mod directory_sync;
mod enrollment;
mod flow;
mod helpers;
mod jit;
mod jit_device;
mod jit_rekey;
mod local_admin;
mod notifications;
mod realmjoin;
mod rotation;
mod sign_in;
mod tenancy;
mod tls;
mod vault;
