//! Devices of the tenant: the list, registering one, and enrollment tokens for device agents
//! (shown once).

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Redirect;
use latchkey_proto as proto;
use serde::Deserialize;

use super::{Done, admin_of, at_most, chrome, when};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::{PageQuery, create_device, create_enrollment_token, list_devices};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

const NOTICES: &[(&str, &str)] = &[("added", "Device registered.")];
/// Devices on one page.
const PAGE: i64 = 100;

/// A device as a row.
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub container: String,
    pub os: String,
    pub enrolled: String,
    pub last_seen: String,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "admin_devices.html")]
pub struct DevicesPage {
    chrome: Chrome,
    admin_page: &'static str,
    rows: Vec<DeviceRow>,
    next: Option<String>,
    form_id: String,
    token_form_id: String,
}

/// `GET /admin/devices[?after=…]`.
pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    q: Result<Query<Done>, QueryRejection>,
) -> Result<Html<DevicesPage>, WebError> {
    let done = Done::of(q);
    let (admin, slug) = admin_of(&user)?;
    let page = PageQuery { limit: Some(PAGE), after: done.after() };
    let Json(list) = list_devices(State(state), admin, slug, ApiQuery(page)).await?;
    let rows = list
        .items
        .into_iter()
        .map(|d| DeviceRow {
            enrolled: d.enrolled_at.map(when).unwrap_or_else(|| "not yet".into()),
            last_seen: d.last_seen_at.map(when).unwrap_or_default(),
            overdue: d.check_in_overdue,
            id: d.device_id,
            name: d.name,
            container: d.container_dn.unwrap_or_default(),
            os: d.os.unwrap_or_default(),
        })
        .collect();
    Ok(Html(DevicesPage {
        chrome: chrome(&user, &done, NOTICES),
        admin_page: "devices",
        rows,
        next: list.next,
        form_id: new_form_id(),
        token_form_id: new_form_id(),
    }))
}

/// The register-a-device form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceForm {
    name: String,
    #[serde(default)]
    container_dn: String,
    #[serde(default)]
    os: String,
}

fn optional(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// `POST /admin/devices`.
pub async fn create(State(state): State<AppState>, form: WebForm<DeviceForm>) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let f = form.form;
    at_most("Name", &f.name, 256)?;
    at_most("Container", &f.container_dn, 1024)?;
    at_most("Operating system", &f.os, 128)?;
    let body = proto::DeviceCreate {
        device_id: None,
        name: f.name.trim().to_owned(),
        container_dn: optional(&f.container_dn),
        os: optional(&f.os),
    };
    let _ = create_device(State(state), admin, slug, ApiJson(body)).await?;
    Ok(Redirect::to("/admin/devices?done=added"))
}

/// The enrollment token form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenForm {
    /// Lifetime in hours (1 to 720).
    hours: String,
}

#[derive(Template)]
#[template(path = "admin_enrollment_token.html")]
pub struct TokenPage {
    chrome: Chrome,
    admin_page: &'static str,
    token: String,
    expires: String,
}

/// `POST /admin/enrollment-tokens`: a one-time token, shown on this page only.
pub async fn create_token(
    State(state): State<AppState>,
    form: WebForm<TokenForm>,
) -> Result<Html<TokenPage>, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let hours: i64 = form
        .form
        .hours
        .trim()
        .parse()
        .ok()
        .filter(|h| (1..=720).contains(h))
        .ok_or_else(|| WebError::bad_request("Valid for must be a whole number of hours from 1 to 720."))?;
    let body = proto::EnrollmentTokenCreate { expires_in_seconds: Some(hours * 3600) };
    let (_, Json(created)) = create_enrollment_token(State(state), admin, slug, ApiJson(body)).await?;
    Ok(Html(TokenPage {
        chrome: Chrome::new(&form.user, "admin"),
        admin_page: "devices",
        expires: when(created.expires_at),
        token: created.token.clone(),
    }))
}
