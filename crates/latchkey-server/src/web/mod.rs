//! The web UI at `/`: server-rendered pages for helpdesk staff, requesters, approvers,
//! auditors and admins. Pages call the same handlers as the API, as the signed-in person, so
//! every rule (access targets, policies, tenant scope, audit) is the API's.
//!
//! Every page is sent with a strict Content-Security-Policy (scripts and styles only from this
//! site, no inline code), `frame-ancestors 'none'` and `Cache-Control: no-store`; every form
//! is checked by [`form::WebForm`].

mod config;
pub mod error;
pub mod form;
mod home;
pub mod page;
pub mod session;
mod sign_in;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{WebConfig, WebLayer};

use crate::state::AppState;

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the web UI keeps in memory.
#[derive(Default)]
pub struct WebState {
    used_form_ids: form::UsedFormIds,
}

impl WebState {
    /// Form ids already sent.
    pub fn used_form_ids(&self) -> &form::UsedFormIds {
        &self.used_form_ids
    }
}

/// The pages.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(home::home))
        .route("/sign-in", get(sign_in::page).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let assets = Router::new()
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("../../static/app.css")) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("../../static/app.js")) }),
        );
    pages.merge(assets)
}

/// A file of the UI itself, cacheable for an hour.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        body,
    )
}

/// The single sign-on buttons of the sign-in page.
pub fn oidc_links(_state: &AppState) -> Vec<sign_in::ProviderLink> {
    Vec::new()
}
