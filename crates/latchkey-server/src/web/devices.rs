//! The helpdesk pages: find a device, see its agent's status, show its admin password (with a
//! reason, through the access targets), its password history and support accounts.
//!
//! Every read goes through the API handlers as the signed-in person, so the targets decide
//! and the audit log records it. A secret is shown only in answer to a POST, and only when the
//! person signed in recently enough (`[web] reauthenticate_after_seconds`).

pub mod password;
pub mod phonetic;
pub mod support;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::DeviceId;
use latchkey_core::model::Device;
use latchkey_store::StoreError;
use serde::Deserialize;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::new_form_id;
use crate::web::page::{Chrome, Html};
use crate::web::session::{WebUser, sign_in_url};

/// The longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// The most devices a search shows.
pub const MAX_RESULTS: usize = 100;

/// The query of the search page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
}

/// One device in the search results.
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub container: String,
    pub last_seen: String,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "devices.html")]
pub struct SearchPage {
    chrome: Chrome,
    q: String,
    max_chars: usize,
    rows: Vec<DeviceRow>,
    /// More devices match than are shown.
    more: bool,
}

/// `GET /devices?q=…`: the tenant's devices whose name, deviceId or container contains `q`
/// (all of them, by name, when `q` is empty), at most [`MAX_RESULTS`].
pub async fn search(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Html<SearchPage>, WebError> {
    let Query(query) = query.map_err(|_| WebError::bad_request("The search could not be read."))?;
    let q = query.q.unwrap_or_default();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(WebError::bad_request(format!(
            "The search text is longer than {MAX_QUERY_CHARS} characters; search for a shorter part of the name."
        )));
    }
    let q = q.trim().to_owned();
    let limit = i64::try_from(MAX_RESULTS + 1).unwrap_or(i64::MAX);
    let mut found = state
        .store()
        .search_devices(&user.user.tenant_id, &q, limit)
        .await
        .map_err(|e| WebError::from_store("device", e))?;
    let more = found.len() > MAX_RESULTS;
    found.truncate(MAX_RESULTS);
    let now = state.clock().now();
    let rows = found
        .into_iter()
        .map(|d| DeviceRow {
            overdue: check_in_overdue(&d, now),
            last_seen: d.last_seen_at.map(when).unwrap_or_else(|| "never".into()),
            container: d.container_dn.unwrap_or_default(),
            name: d.name,
            id: d.id,
        })
        .collect();
    Ok(Html(SearchPage { chrome: Chrome::new(&user, "devices"), q, max_chars: MAX_QUERY_CHARS, rows, more }))
}

/// A device's facts as the device page shows them.
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub container: Option<String>,
    pub os: Option<String>,
    pub enrolled: Option<String>,
    pub last_seen: Option<String>,
    pub last_rotated: Option<String>,
    pub next_check_in: Option<String>,
    pub poll_interval: String,
    pub password_version: Option<i64>,
    pub open_jobs: i64,
    pub overdue: bool,
}

impl DeviceView {
    /// The device as seen at `now`.
    pub fn new(d: Device, now: OffsetDateTime) -> Self {
        DeviceView {
            overdue: check_in_overdue(&d, now),
            next_check_in: next_check_in(&d).map(|at| format!("{} ({})", when(at), relative(at, now))),
            poll_interval: duration_words(Duration::seconds(d.poll_interval_secs)),
            enrolled: d.enrolled_at.map(when),
            last_seen: d.last_seen_at.map(|at| format!("{} ({})", when(at), relative(at, now))),
            last_rotated: d.last_rotated_at.map(when),
            password_version: d.reported_version,
            open_jobs: d.open_jobs,
            container: d.container_dn,
            os: d.os,
            name: d.name,
            id: d.id,
        }
    }
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    chrome: Chrome,
    device: DeviceView,
    /// The reveal form's one-time id.
    form_id: String,
    /// The support account form's one-time id.
    support_form_id: String,
    /// Showing the password will ask for the password again first.
    reauth_first: bool,
}

/// `GET /devices/{device_id}`: the device and its agent's status, with the forms to show its
/// password and to ask for a support account.
pub async fn device_page(
    State(state): State<AppState>,
    user: WebUser,
    Path(device_id): Path<String>,
) -> Result<Html<DevicePage>, WebError> {
    let device = tenant_device(&state, &user, &device_id).await?;
    let now = state.clock().now();
    Ok(Html(DevicePage {
        reauth_first: needs_reauth(&state, &user),
        chrome: Chrome::new(&user, "devices"),
        device: DeviceView::new(device, now),
        form_id: new_form_id(),
        support_form_id: new_form_id(),
    }))
}

/// The person's tenant's device with this id; a malformed or unknown id, or another
/// tenant's, is the same 404 page.
pub async fn tenant_device(state: &AppState, user: &WebUser, raw: &str) -> Result<Device, WebError> {
    let id = DeviceId::parse(raw).map_err(|_| WebError::not_found("device"))?;
    match state.store().device(&user.user.tenant_id, &id.to_string()).await {
        Ok(d) => Ok(d),
        Err(StoreError::NotFound) => Err(WebError::not_found("device")),
        Err(e) => Err(WebError::from_store("device", e)),
    }
}

/// Whether the person's sign-in is older than a reveal allows.
pub fn needs_reauth(state: &AppState, user: &WebUser) -> bool {
    let limit = Duration::try_from(state.config().web.reauthenticate_after).unwrap_or(Duration::ZERO);
    state.clock().now() - user.signed_in_at > limit
}

/// When the sign-in is too old to show a secret: the way to the sign-in page, coming back to
/// the device page.
pub fn reauth_redirect(state: &AppState, user: &WebUser, device_id: &str) -> Option<Response> {
    needs_reauth(state, user)
        .then(|| Redirect::to(&sign_in_url(&format!("/devices/{device_id}"), Some("reauth"))).into_response())
}

/// When the agent is next expected: its last check-in plus the poll interval.
pub fn next_check_in(d: &Device) -> Option<OffsetDateTime> {
    d.last_seen_at.map(|seen| seen + Duration::seconds(d.poll_interval_secs.max(1)))
}

/// An enrolled device's check-in is overdue when it was never seen or not within two poll
/// intervals (as the API's `checkInOverdue`).
pub fn check_in_overdue(d: &Device, now: OffsetDateTime) -> bool {
    d.enrolled_at.is_some()
        && d.last_seen_at.is_none_or(|seen| seen + Duration::seconds(2 * d.poll_interval_secs) < now)
}

/// A time as a person reads it: `2025-03-01 14:05 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// `at` from `now`: "in 5 minutes", "3 hours ago", "now".
pub fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = at - now;
    if d.whole_seconds().abs() < 60 {
        return "now".into();
    }
    let words = duration_words(d.abs());
    if d.is_positive() { format!("in {words}") } else { format!("{words} ago") }
}

/// A duration in the largest whole unit: "1 minute", "2 hours", "3 days".
pub fn duration_words(d: Duration) -> String {
    let (n, unit) = if d.whole_days() >= 1 {
        (d.whole_days(), "day")
    } else if d.whole_hours() >= 1 {
        (d.whole_hours(), "hour")
    } else if d.whole_minutes() >= 1 {
        (d.whole_minutes(), "minute")
    } else {
        (d.whole_seconds(), "second")
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_plainly() {
        let at = OffsetDateTime::from_unix_timestamp(1_740_837_900).unwrap();
        assert_eq!(when(at), "2025-03-01 14:05 UTC");
        assert_eq!(relative(at + Duration::minutes(5), at), "in 5 minutes");
        assert_eq!(relative(at - Duration::hours(3), at), "3 hours ago");
        assert_eq!(relative(at + Duration::seconds(20), at), "now");
        assert_eq!(duration_words(Duration::seconds(1800)), "30 minutes");
        assert_eq!(duration_words(Duration::days(1)), "1 day");
    }
}
