//! The web UI: plain HTTP checks of its security rules and end-to-end tests in a real headless
//! Chromium (skipped only when `LATCHKEY_TEST_WEBDRIVER_URL` is unset and services are not
//! required).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod approvals;
mod audit;
mod browser;
mod fixture;
mod helpdesk;
#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod jit;
mod oidc;
mod policies;
mod sign_in;
