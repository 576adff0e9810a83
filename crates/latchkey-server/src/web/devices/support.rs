//! Support accounts on a device: ask for one (the agent creates it at its next check-in),
//! follow the request on a page that refreshes itself until the account is ready, and show
//! the ready account's password.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::model::Device;
use latchkey_core::{JobKind, JobState};
use latchkey_proto as proto;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::password::optional;
use super::{needs_reauth, next_check_in, phonetic, reauth_redirect, relative, tenant_device, when};
use crate::auth::Caller;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// How many of the device's newest jobs are looked at for an open or failed request.
const JOBS_LOOKED_AT: i64 = 50;

/// The request form: only the form token and id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestForm {}

/// `POST /devices/{device_id}/support-account`: ask for a support account as the person (a
/// target must grant `support-account`), then follow it on the status page.
pub async fn request(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    WebForm { user, form: RequestForm {} }: WebForm<RequestForm>,
) -> Result<Response, WebError> {
    let device = tenant_device(&state, &user, &device_id).await?;
    let path = Path((user.tenant.slug.clone(), device.id.clone()));
    // Queued or ready, the status page tells which.
    let _answer =
        crate::routes::request_device_support_account(State(state.clone()), Caller::User(user.user.clone()), path)
            .await?;
    Ok(Redirect::to(&format!("/devices/{}/support-account", device.id)).into_response())
}

/// Where a device's support account stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Nothing asked for (or the last request was carried out and the account removed).
    None,
    /// A creation job waits for the agent.
    Waiting,
    /// The agent could not create the account.
    Failed,
    /// An account is live until this time.
    Ready { until: String },
}

#[derive(Template)]
#[template(path = "device_support.html")]
pub struct StatusPage {
    chrome: Chrome,
    device_id: String,
    device_name: String,
    standing: Standing,
    /// The estimated wait, in words, while waiting.
    wait: String,
    form_id: String,
    reauth_first: bool,
}

/// `GET /devices/{device_id}/support-account`: the request's state. While the agent has not
/// created the account the page refreshes itself every 5 seconds and shows the estimated
/// wait (the device's next expected check-in); once ready it offers to show the account.
pub async fn status(
    State(state): State<AppState>,
    user: WebUser,
    Path(device_id): Path<String>,
) -> Result<Html<StatusPage>, WebError> {
    let device = tenant_device(&state, &user, &device_id).await?;
    let standing = standing(&state, &device).await?;
    let now = state.clock().now();
    let wait = match next_check_in(&device) {
        _ if standing != Standing::Waiting => String::new(),
        None => "unknown: the device has never checked in".to_owned(),
        Some(at) if at <= now => "any moment: the device is due to check in".to_owned(),
        Some(at) => format!("until the device's next check-in at {} ({})", when(at), relative(at, now)),
    };
    Ok(Html(StatusPage {
        reauth_first: needs_reauth(&state, &user),
        chrome: Chrome::new(&user, "devices"),
        device_id: device.id,
        device_name: device.name,
        standing,
        wait,
        form_id: new_form_id(),
    }))
}

/// Where the device's support account stands now.
async fn standing(state: &AppState, device: &Device) -> Result<Standing, WebError> {
    let now = state.clock().now();
    let live = state
        .store()
        .live_support_account(&device.tenant_id, &device.id, now)
        .await
        .map_err(|e| WebError::from_store("support account", e))?;
    if let Some(live) = live {
        let until = live.account.expires_at.map(when).unwrap_or_else(|| "its removal".into());
        return Ok(Standing::Ready { until });
    }
    let jobs = state
        .store()
        .device_jobs(&device.tenant_id, &device.id, JOBS_LOOKED_AT)
        .await
        .map_err(|e| WebError::from_store("device", e))?;
    // Jobs come newest first: the newest creation job tells.
    let newest = jobs.iter().find(|j| j.kind == JobKind::CreateSupportAccount);
    Ok(match newest.map(|j| j.state) {
        Some(JobState::Open) => Standing::Waiting,
        Some(JobState::Failed) => Standing::Failed,
        Some(JobState::Done) | None => Standing::None,
    })
}

/// The "show support account" form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ticket: String,
}

#[derive(Template)]
#[template(path = "device_support_account.html")]
pub struct AccountPage {
    chrome: Chrome,
    device_id: String,
    device_name: String,
    username: String,
    password: Zeroizing<String>,
    spelled: Vec<String>,
    expires_at: String,
}

/// `POST /devices/{device_id}/support-account/reveal`: show the live support account (user
/// name, password, expiry) after the API's checks; a stale sign-in signs in again first.
pub async fn reveal(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    WebForm { user, form }: WebForm<RevealForm>,
) -> Result<Response, WebError> {
    let device = tenant_device(&state, &user, &device_id).await?;
    if let Some(redirect) = reauth_redirect(&state, &user, &device.id) {
        return Ok(redirect);
    }
    let body = proto::SecretReadRequest { reason: form.reason, ticket: optional(&form.ticket) };
    let path = Path((user.tenant.slug.clone(), device.id.clone()));
    let caller = Caller::User(user.user.clone());
    let axum::Json(mut account) =
        crate::routes::reveal_device_support_account(State(state.clone()), caller, path, ApiJson(body)).await?;
    let password = Zeroizing::new(std::mem::take(&mut account.password));
    Ok(Html(AccountPage {
        chrome: Chrome::new(&user, "devices"),
        spelled: phonetic::spell(&password),
        password,
        device_id: device.id,
        device_name: device.name,
        username: std::mem::take(&mut account.username),
        expires_at: when(account.expires_at),
    })
    .into_response())
}
