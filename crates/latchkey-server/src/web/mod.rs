//! The web UI at `/`: server-rendered pages for helpdesk staff, requesters, approvers,
//! auditors and admins. Pages call the same handlers as the API, as the signed-in person, so
//! every rule (access targets, policies, tenant scope, audit) is the API's.
//!
//! Every page is sent with a strict Content-Security-Policy (scripts and styles only from this
//! site, no inline code), `frame-ancestors 'none'` and `Cache-Control: no-store`; every form
//! is checked by [`form::WebForm`].

mod admin;
mod approvals;
mod audit;
mod config;
mod devices;
pub mod error;
pub mod form;
mod home;
mod jit;
mod oidc;
pub mod oidc_config;
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
    oidc: oidc::OidcDiscovery,
}

impl WebState {
    /// Form ids already sent.
    pub fn used_form_ids(&self) -> &form::UsedFormIds {
        &self.used_form_ids
    }

    /// Single sign-on providers' discovery documents.
    pub fn oidc(&self) -> &oidc::OidcDiscovery {
        &self.oidc
    }
}

/// The pages.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(home::home))
        .route("/sign-in", get(sign_in::page).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/sign-in/oidc/callback", get(oidc::callback))
        .route("/sign-in/oidc/{id}", get(oidc::start))
        .route("/devices", get(devices::search))
        .route("/devices/{device_id}", get(devices::device_page))
        .route("/devices/{device_id}/password", post(devices::password::reveal))
        .route("/devices/{device_id}/history", get(devices::password::history))
        .route("/devices/{device_id}/support-account", get(devices::support::status).post(devices::support::request))
        .route("/devices/{device_id}/support-account/reveal", post(devices::support::reveal))
        .route("/jit", get(jit::page).post(jit::request))
        .route("/jit/revoke", post(jit::revoke))
        .route("/approvals", get(approvals::page))
        .route("/approvals/view/{id}/{decision}", post(approvals::decide_view))
        .route("/approvals/jit/{id}/{decision}", post(approvals::decide_jit))
        .route("/audit", get(audit::audit_page))
        .route("/audit.csv", get(audit::audit_csv))
        .route("/audit/who-can-read", get(audit::who_can_read_page))
        .route("/admin", get(admin::home))
        .route("/admin/targets", get(admin::targets::list).post(admin::targets::create))
        .route("/admin/targets/import", get(admin::lithnet::form).post(admin::lithnet::preview))
        .route("/admin/targets/import/confirm", post(admin::lithnet::confirm))
        .route("/admin/targets/{id}", get(admin::targets::edit).post(admin::targets::save))
        .route("/admin/targets/{id}/move", post(admin::targets::move_one))
        .route("/admin/targets/{id}/enable", post(admin::targets::enable))
        .route("/admin/targets/{id}/disable", post(admin::targets::disable))
        .route("/admin/targets/{id}/delete", post(admin::targets::delete))
        .route("/admin/devices", get(admin::devices::list).post(admin::devices::create))
        .route("/admin/enrollment-tokens", post(admin::devices::create_token))
        .route("/admin/applications", get(admin::applications::list).post(admin::applications::create))
        .route("/admin/applications/{id}/enable", post(admin::applications::enable))
        .route("/admin/applications/{id}/disable", post(admin::applications::disable))
        .route("/admin/policies", get(admin::policies::list))
        .route("/admin/policies/rotation", post(admin::policies::set_rotation))
        .route("/admin/policies/account", post(admin::policies::create_account))
        .route("/admin/policies/account/{id}/delete", post(admin::policies::delete_account))
        .route("/admin/users", get(admin::users::list))
        .route("/admin/users/{id}/roles", post(admin::users::set_roles))
        .route("/admin/directory", get(admin::directory::status))
        .route("/admin/directory/sync", post(admin::directory::sync_now))
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
pub fn oidc_links(state: &AppState) -> Vec<sign_in::ProviderLink> {
    oidc::links(state)
}
