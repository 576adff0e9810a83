//! The requester's page of just-in-time admin (`/jit`): ask for admin access against a ticket,
//! see the temporary password once, follow one's own grants and end one early. Every rule
//! (policy, ticket, device, one open grant at a time, audit) is the API's: the handlers of
//! `crate::routes` run as the person.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::jit::Provider;
use latchkey_proto as proto;
use serde::Deserialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery};
use crate::jit::{JitPolicy, TicketsConfig};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// Longest ticket reference (as the API).
const MAX_TICKET: usize = 100;
/// Longest reason (as the API).
const MAX_REASON: usize = 500;
/// Longest device reference.
const MAX_DEVICE: usize = 100;
/// Longest minutes field: more digits than any policy allows.
const MAX_MINUTES_FIELD: usize = 12;
/// Longest grant id accepted from a form.
pub(super) const MAX_GRANT_ID: usize = 64;

/// A provider configured for the person's tenant, as the form offers it.
pub struct ProviderChoice {
    pub name: &'static str,
    pub max_minutes: i64,
    pub approval_required: bool,
}

/// An open built-in ticket offered in the form.
pub struct TicketChoice {
    pub number: i64,
    pub title: String,
}

/// A grant as the pages show it.
pub struct GrantRow {
    pub id: String,
    pub provider: String,
    pub device: String,
    pub requester: String,
    pub account: String,
    pub ticket: String,
    pub reason: String,
    pub minutes: i64,
    pub state: String,
    pub requested_at: String,
    pub ends_at: String,
    /// How long the access still works ("42 min"), or a dash.
    pub time_left: String,
    /// The person may end it now.
    pub revocable: bool,
}

impl GrantRow {
    /// The row of `g` at `now`.
    pub fn new(g: &proto::JitGrant, now: OffsetDateTime) -> GrantRow {
        let open = matches!(g.state.as_str(), "requested" | "approved" | "active") && !g.expired;
        let time_left = match g.state.as_str() {
            "active" | "approved" if !g.expired => minutes_left(g.end_at - now),
            "requested" => "waits for approval".to_owned(),
            _ => "—".to_owned(),
        };
        GrantRow {
            id: g.id.clone(),
            provider: g.provider.clone(),
            device: g.device_id.clone().unwrap_or_default(),
            requester: g.requester.clone(),
            account: g.account.clone(),
            ticket: g.ticket.clone(),
            reason: g.reason.clone(),
            minutes: g.minutes,
            state: if g.expired && g.state == "active" { "ended".to_owned() } else { g.state.clone() },
            requested_at: when(g.created_at),
            ends_at: when(g.end_at),
            time_left,
            revocable: open,
        }
    }
}

/// A time as the pages show it: `2025-03-01 14:05 UTC`.
pub fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// A remaining duration: `1 h 5 min`, `12 min`, `under a minute`.
fn minutes_left(left: time::Duration) -> String {
    let m = left.whole_minutes();
    match m {
        i64::MIN..=0 => "under a minute".to_owned(),
        1..=59 => format!("{m} min"),
        _ => format!("{} h {} min", m / 60, m % 60),
    }
}

/// The tenant's JIT policies, directory first.
fn tenant_policies<'a>(state: &'a AppState, slug: &str) -> Vec<&'a JitPolicy> {
    [Provider::Directory, Provider::Device].into_iter().filter_map(|p| state.config().jit.policy(slug, p)).collect()
}

#[derive(Template)]
#[template(path = "jit.html")]
pub struct JitPage {
    chrome: Chrome,
    form_id: String,
    providers: Vec<ProviderChoice>,
    /// Open built-in tickets; `None` when the tenant's tickets live in a PSA (free text).
    tickets: Option<Vec<TicketChoice>>,
    has_device: bool,
    max_minutes: i64,
    grants: Vec<GrantRow>,
    pending: Vec<GrantRow>,
}

/// `?done=` after a form of the page.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

/// `GET /jit`: the request form, the person's grants and their requests waiting for approval.
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<JitPage>, WebError> {
    let slug = user.tenant.slug.clone();
    let policies = tenant_policies(&state, &slug);
    let providers: Vec<ProviderChoice> = policies
        .iter()
        .map(|p| ProviderChoice {
            name: p.provider.as_str(),
            max_minutes: p.max_minutes,
            approval_required: p.approval_required,
        })
        .collect();
    let tickets = match state.config().jit.tickets(&slug) {
        TicketsConfig::Psa(_) => None,
        TicketsConfig::Builtin => {
            let q = crate::routes::TicketsQuery { open: Some(true) };
            let Json(list) = crate::routes::list_tickets(
                State(state.clone()),
                Caller::User(user.user.clone()),
                Path(slug.clone()),
                ApiQuery(q),
            )
            .await?;
            Some(
                list.tickets
                    .into_iter()
                    .filter(|t| t.open)
                    .map(|t| TicketChoice { number: t.number, title: t.title })
                    .collect(),
            )
        }
    };
    let Json(list) = crate::routes::list_jit(State(state.clone()), Caller::User(user.user.clone()), Path(slug)).await?;
    let now = state.clock().now();
    let (pending, grants): (Vec<GrantRow>, Vec<GrantRow>) =
        list.grants.iter().map(|g| GrantRow::new(g, now)).partition(|g| g.state == "requested");
    let notice = match query.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("revoked") => Some("The grant is being ended; its access is taken away now."),
        _ => None,
    };
    let mut chrome = Chrome::new(&user, "jit");
    if let Some(n) = notice {
        chrome = chrome.notice(n);
    }
    Ok(Html(JitPage {
        chrome,
        form_id: new_form_id(),
        has_device: providers.iter().any(|p| p.name == Provider::Device.as_str()),
        max_minutes: providers.iter().map(|p| p.max_minutes).max().unwrap_or(0),
        providers,
        tickets,
        grants,
        pending,
    }))
}

/// The request form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestForm {
    provider: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    device: String,
    minutes: String,
    #[serde(default)]
    reason: String,
}

/// The form as an API request, or a 400 naming what is wrong.
fn check_request(form: &RequestForm, policies: &[&JitPolicy]) -> Result<proto::JitRequest, WebError> {
    let nothing = "Nothing was requested.";
    let provider = Provider::parse(form.provider.trim())
        .ok_or_else(|| WebError::bad_request(format!("Choose directory or device access. {nothing}")))?;
    let policy = policies.iter().find(|p| p.provider == provider).ok_or_else(|| {
        WebError::bad_request(format!("The {provider} provider is not set up for your tenant. {nothing}"))
    })?;
    let too_long = |what: &str, max: usize| {
        WebError::bad_request(format!("The {what} is longer than {max} characters. {nothing}"))
    };
    if form.ticket.chars().count() > MAX_TICKET {
        return Err(too_long("ticket", MAX_TICKET));
    }
    if form.device.chars().count() > MAX_DEVICE {
        return Err(too_long("device", MAX_DEVICE));
    }
    if form.reason.chars().count() > MAX_REASON {
        return Err(too_long("reason", MAX_REASON));
    }
    let max = policy.max_minutes;
    let minutes_wrong = || {
        WebError::bad_request(format!(
            "Minutes must be a whole number from 1 to {max} (the policy's maximum). {nothing}"
        ))
    };
    let raw = form.minutes.trim();
    if raw.len() > MAX_MINUTES_FIELD {
        return Err(minutes_wrong());
    }
    let minutes: i64 = raw.parse().map_err(|_| minutes_wrong())?;
    if !(1..=max).contains(&minutes) {
        return Err(minutes_wrong());
    }
    if form.reason.trim().is_empty() {
        return Err(WebError::bad_request(format!("A reason is required. {nothing}")));
    }
    if form.ticket.trim().is_empty() {
        return Err(WebError::bad_request(format!("A ticket is required. {nothing}")));
    }
    let device_id = match provider {
        Provider::Device => Some(form.device.trim().to_owned()).filter(|d| !d.is_empty()),
        Provider::Directory => None,
    };
    if provider == Provider::Device && device_id.is_none() {
        return Err(WebError::bad_request(format!("Device access needs the device (its deviceId). {nothing}")));
    }
    Ok(proto::JitRequest {
        provider: provider.as_str().to_owned(),
        ticket: form.ticket.trim().to_owned(),
        minutes,
        reason: form.reason.trim().to_owned(),
        device_id,
        requester: None,
    })
}

#[derive(Template)]
#[template(path = "jit_created.html")]
pub struct JitCreatedPage {
    chrome: Chrome,
    grant: GrantRow,
    /// The one-time temporary password; wiped when the page is dropped.
    password: Zeroizing<String>,
}

/// `POST /jit`: ask for access as the person; the answer shows the temporary password once.
pub async fn request(
    State(state): State<AppState>,
    WebForm { user, form }: WebForm<RequestForm>,
) -> Result<Html<JitCreatedPage>, WebError> {
    let slug = user.tenant.slug.clone();
    let body = check_request(&form, &tenant_policies(&state, &slug))?;
    let (_, Json(mut created)) =
        crate::routes::request_jit(State(state.clone()), Caller::User(user.user.clone()), Path(slug), ApiJson(body))
            .await?;
    let password = Zeroizing::new(std::mem::take(&mut created.password));
    let grant = GrantRow::new(&created.grant, state.clock().now());
    Ok(Html(JitCreatedPage { chrome: Chrome::new(&user, "jit"), grant, password }))
}

/// The early end of a grant: its id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeForm {
    grant_id: String,
}

/// `POST /jit/revoke`: end one of the person's grants now.
pub async fn revoke(
    State(state): State<AppState>,
    WebForm { user, form }: WebForm<RevokeForm>,
) -> Result<Response, WebError> {
    let id = form.grant_id.trim().to_owned();
    if id.is_empty() || id.len() > MAX_GRANT_ID {
        return Err(WebError::not_found("grant"));
    }
    let _revoking =
        crate::routes::revoke_jit(State(state), Caller::User(user.user.clone()), Path((user.tenant.slug.clone(), id)))
            .await?;
    Ok(Redirect::to("/jit?done=revoked").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(provider: Provider, max_minutes: i64) -> JitPolicy {
        JitPolicy {
            tenant: "acme".into(),
            provider,
            max_minutes,
            approval_required: true,
            admin_group: String::new(),
            accounts_ou: None,
            tenant_prefix: None,
            on_revoke: crate::jit::OnRevoke::Disable,
        }
    }

    fn form(provider: &str, minutes: &str) -> RequestForm {
        RequestForm {
            provider: provider.into(),
            ticket: "12".into(),
            device: "d-1".into(),
            minutes: minutes.into(),
            reason: "replace the driver".into(),
        }
    }

    #[test]
    fn minutes_are_a_number_within_the_policy_of_the_chosen_provider() {
        let device = policy(Provider::Device, 60);
        let policies = [&device];
        let ok = check_request(&form("device", " 60 "), &policies).unwrap();
        assert_eq!((ok.minutes, ok.device_id.as_deref()), (60, Some("d-1")));
        for bad in ["61", "0", "-5", "ten", "", "1e3", "99999999999999999999"] {
            let e = check_request(&form("device", bad), &policies).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains("from 1 to 60"), "{bad}: {}", e.message);
        }
        let e = check_request(&form("directory", "5"), &policies).unwrap_err();
        assert!(e.message.contains("not set up"), "{}", e.message);
    }

    #[test]
    fn over_long_fields_are_refused_with_their_name() {
        let device = policy(Provider::Device, 60);
        let mut f = form("device", "5");
        f.reason = "x".repeat(MAX_REASON + 1);
        let e = check_request(&f, &[&device]).unwrap_err();
        assert!(e.message.contains("reason is longer than 500"), "{}", e.message);
        let mut f = form("device", "5");
        f.ticket = "7".repeat(MAX_TICKET + 1);
        assert!(check_request(&f, &[&device]).unwrap_err().message.contains("ticket"));
    }

    #[test]
    fn times_read_in_utc_and_minutes() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(when(t), "2023-11-14 22:13 UTC");
        assert_eq!(minutes_left(time::Duration::minutes(65)), "1 h 5 min");
        assert_eq!(minutes_left(time::Duration::seconds(30)), "under a minute");
    }
}
