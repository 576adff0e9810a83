//! The auditor's pages: the audit log (filters, newest first, CSV export, the hash chain's
//! state) and "who can read this device and why". Everything is read through the API's
//! handlers as the person, so a tenant's auditor sees only the tenant's events.

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey_core::{Action, Role};
use latchkey_proto as proto;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::auth::Admin;
use crate::extract::ApiQuery;
use crate::routes::{AuditQuery, ExplainQuery, WhoCanReadQuery, explain_access, list_audit, who_can_read};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// Events on one page of the log.
const PAGE_SIZE: usize = 50;
/// Events the API returns at most per call.
const API_LIMIT: usize = 1000;
/// Rows one CSV export holds at most.
const EXPORT_MAX: usize = 100_000;
/// The longest filter value accepted.
const FILTER_MAX: usize = 256;

/// The filters of the audit pages, as the query string carries them (empty means no filter).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilters {
    /// The actor: `user:alice`, `admin-token:<id>`, or a bare user name.
    #[serde(default)]
    who: String,
    /// The object's id (a deviceId, an account id, ...).
    #[serde(default)]
    object: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    /// UTC, `2026-01-31T12:00` or RFC 3339; events at or after.
    #[serde(default)]
    from: String,
    /// UTC, `2026-01-31T12:00` or RFC 3339; events before.
    #[serde(default)]
    to: String,
    /// Paging: only events older than this sequence number.
    #[serde(default)]
    before: String,
}

impl AuditFilters {
    /// The API query for these filters: oldest first after `after`, or newest first before
    /// `before`.
    fn api_query(&self, after: Option<i64>, before: Option<i64>, limit: usize) -> Result<AuditQuery, WebError> {
        for (field, value) in [
            ("who", &self.who),
            ("object", &self.object),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if value.len() > FILTER_MAX {
                return Err(WebError::bad_request(format!(
                    "The {field} filter is longer than {FILTER_MAX} characters."
                )));
            }
        }
        let who = self.who.trim();
        let actor = match who {
            "" => None,
            w if w.contains(':') => Some(w.to_owned()),
            w => Some(crate::auth::user_actor(&w.to_lowercase())),
        };
        Ok(AuditQuery {
            tenant: None,
            actor,
            action: non_empty(&self.action),
            object_id: non_empty(&self.object),
            outcome: non_empty(&self.outcome),
            since: utc_time("From", &self.from)?,
            until: utc_time("To", &self.to)?,
            after,
            before,
            limit: Some(limit as i64),
        })
    }

    /// The paging cursor: events older than this sequence number.
    fn before(&self) -> Result<Option<i64>, WebError> {
        match self.before.trim() {
            "" => Ok(None),
            s => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| WebError::bad_request("The page cursor is not a positive number.")),
        }
    }

    /// The filters as a query string (without the cursor).
    fn query_string(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("who", &self.who),
            ("object", &self.object),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.as_str()))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A time from a filter field as RFC 3339: RFC 3339 as given, or a browser's local date and
/// time (`2026-01-31T12:00`, seconds optional) taken as UTC.
fn utc_time(field: &str, raw: &str) -> Result<Option<String>, WebError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if OffsetDateTime::parse(raw, &Rfc3339).is_ok() {
        return Ok(Some(raw.to_owned()));
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(raw, minutes)
        .or_else(|_| PrimitiveDateTime::parse(raw, seconds))
        .ok()
        .and_then(|t| t.assume_utc().format(&Rfc3339).ok())
        .map(Some)
        .ok_or_else(|| WebError::bad_request(format!("{field} must be a time such as 2026-01-31T12:00 (UTC).")))
}

fn query_or_400<T: Default>(q: Result<Query<T>, QueryRejection>) -> Result<T, WebError> {
    q.map(|Query(q)| q).map_err(|_| WebError::bad_request("The page's address has a parameter it does not know."))
}

/// An event as a row of the table.
pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub outcome: String,
    pub success: bool,
    pub reason: String,
    pub ticket: String,
    pub client_addr: String,
    pub details: String,
}

fn display_time(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC).format(f).unwrap_or_default()
}

fn event_row(e: proto::AuditEvent) -> EventRow {
    let details = match &e.details {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        d => d.to_string(),
    };
    EventRow {
        seq: e.seq,
        at: display_time(e.at),
        success: e.outcome == "success",
        actor: e.actor,
        action: e.action,
        object_type: e.object_type,
        object_id: e.object_id.unwrap_or_default(),
        outcome: e.outcome,
        reason: e.reason.unwrap_or_default(),
        ticket: e.ticket.unwrap_or_default(),
        client_addr: e.client_addr.unwrap_or_default(),
        details,
    }
}

/// The hash chain's state as the page says it.
pub struct ChainState {
    pub verified: bool,
    pub text: String,
}

/// Check the whole chain. The chain spans every tenant, so only whether it holds is shown,
/// never the number of events in it.
async fn chain_state(state: &AppState) -> Result<ChainState, WebError> {
    let result = state.store().verify_audit_chain().await.map_err(|e| WebError::from_store("audit", e))?;
    Ok(match result {
        Ok(_) => ChainState {
            verified: true,
            text: "Verified: every event's hash matches the chain; nothing was changed or removed.".into(),
        },
        Err(brk) => ChainState {
            verified: false,
            text: format!("Broken at event {}: {}. Events from there on cannot be trusted.", brk.seq, brk.problem),
        },
    })
}

/// One option of a select.
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

fn choices(values: impl IntoIterator<Item = String>, current: &str) -> Vec<Choice> {
    values.into_iter().map(|value| Choice { selected: value == current.trim(), value }).collect()
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    chrome: Chrome,
    who: String,
    object: String,
    from: String,
    to: String,
    actions: Vec<Choice>,
    outcomes: Vec<Choice>,
    chain: Option<ChainState>,
    rows: Vec<EventRow>,
    filters: String,
    older: Option<String>,
    paged: bool,
}

/// The events of one API call: oldest first after `after`, or newest first before `before`.
async fn fetch_events(
    state: &AppState,
    admin: &Admin,
    filters: &AuditFilters,
    (after, before): (Option<i64>, Option<i64>),
    limit: usize,
) -> Result<proto::ListResponse<proto::AuditEvent>, WebError> {
    let q = filters.api_query(after, before, limit)?;
    let Json(list) = list_audit(State(state.clone()), admin.clone(), ApiQuery(q)).await?;
    Ok(list)
}

/// `GET /audit`.
pub async fn audit_page(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<AuditFilters>, QueryRejection>,
) -> Result<Html<AuditPage>, WebError> {
    let admin = user.acting_as(Role::Auditor)?;
    let filters = query_or_400(query)?;
    // Refuse bad filters before any work.
    filters.api_query(None, None, API_LIMIT)?;
    let before = filters.before()?;
    // One event more than a page says whether there are older ones.
    let mut events =
        fetch_events(&state, &admin, &filters, (None, Some(before.unwrap_or(i64::MAX))), PAGE_SIZE + 1).await?.items;
    let next = (events.len() > PAGE_SIZE).then(|| {
        events.truncate(PAGE_SIZE);
        events.last().map(|e| e.seq)
    });
    let next = next.flatten();
    let chain = if before.is_none() { Some(chain_state(&state).await?) } else { None };
    let qs = filters.query_string();
    let older =
        next.map(|n| if qs.is_empty() { format!("/audit?before={n}") } else { format!("/audit?{qs}&before={n}") });
    let mut actions: Vec<String> = Action::ALL.iter().map(|a| a.as_str().to_owned()).collect();
    actions.sort();
    let page = AuditPage {
        chrome: Chrome::new(&user, "audit"),
        actions: choices(actions, &filters.action),
        outcomes: choices(["success", "denied", "failed"].map(String::from), &filters.outcome),
        who: filters.who,
        object: filters.object,
        from: filters.from,
        to: filters.to,
        chain,
        rows: events.into_iter().map(event_row).collect(),
        filters: qs,
        older,
        paged: before.is_some(),
    };
    Ok(Html(page))
}

/// A CSV field: always quoted, quotes doubled, and a leading `=`, `+`, `-`, `@`, tab or
/// carriage return prefixed with `'` so a spreadsheet never runs it as a formula.
pub fn csv_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    out.push('"');
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
    out
}

/// The columns of the CSV export.
const CSV_HEADER: [&str; 14] = [
    "seq",
    "at",
    "tenant",
    "actor",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "reason",
    "ticket",
    "client_addr",
    "request_id",
    "details",
    "hash",
];

fn csv_line(out: &mut String, fields: &[&str]) {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

fn csv_event(out: &mut String, e: &proto::AuditEvent) {
    let at = e.at.format(&Rfc3339).unwrap_or_default();
    let details = if e.details.is_null() { String::new() } else { e.details.to_string() };
    csv_line(
        out,
        &[
            &e.seq.to_string(),
            &at,
            e.tenant.as_deref().unwrap_or_default(),
            &e.actor,
            &e.action,
            &e.object_type,
            e.object_id.as_deref().unwrap_or_default(),
            &e.outcome,
            e.reason.as_deref().unwrap_or_default(),
            e.ticket.as_deref().unwrap_or_default(),
            e.client_addr.as_deref().unwrap_or_default(),
            e.request_id.as_deref().unwrap_or_default(),
            &details,
            &e.hash,
        ],
    );
}

/// `GET /audit.csv`: every event the filters match, oldest first.
pub async fn audit_csv(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<AuditFilters>, QueryRejection>,
) -> Result<Response, WebError> {
    let admin = user.acting_as(Role::Auditor)?;
    let filters = query_or_400(query)?;
    let before = filters.before()?;
    let mut out = String::new();
    csv_line(&mut out, &CSV_HEADER);
    let mut after = None;
    let mut rows = 0usize;
    loop {
        let page = fetch_events(&state, &admin, &filters, (after, None), API_LIMIT).await?;
        for e in page.items.iter().filter(|e| before.is_none_or(|b| e.seq < b)) {
            rows += 1;
            if rows > EXPORT_MAX {
                return Err(WebError::bad_request(format!(
                    "More than {EXPORT_MAX} events match; narrow the filters (a shorter time range) and export again."
                )));
            }
            csv_event(&mut out, e);
        }
        let reached_cursor = before.is_some_and(|b| page.items.last().is_some_and(|e| e.seq >= b));
        match page.next.and_then(|n| n.parse::<i64>().ok()) {
            Some(n) if !reached_cursor => after = Some(n),
            _ => break,
        }
    }
    let name = format!("attachment; filename=\"audit-{}.csv\"", user.tenant.slug);
    let disposition = HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        out,
    )
        .into_response())
}

/// The question of the who-can-read page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoCanReadForm {
    /// deviceId or name.
    #[serde(default)]
    device: String,
    /// Optional: a user whose access to explain.
    #[serde(default)]
    user: String,
    #[serde(default)]
    operation: String,
}

/// A reader as the page shows it.
pub struct ReaderRow {
    pub principal: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "audit_who_can_read.html")]
pub struct WhoCanReadPage {
    chrome: Chrome,
    device: String,
    user: String,
    operations: Vec<Choice>,
    answer: Option<proto::WhoCanRead>,
    readers: Vec<ReaderRow>,
    explanation: Option<proto::AccessExplanation>,
}

/// `GET /audit/who-can-read?device=…[&user=…&operation=…]`.
pub async fn who_can_read_page(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<WhoCanReadForm>, QueryRejection>,
) -> Result<Html<WhoCanReadPage>, WebError> {
    let admin = user.acting_as(Role::Auditor)?;
    let q = query_or_400(query)?;
    if q.device.len() > FILTER_MAX || q.user.len() > FILTER_MAX || q.operation.len() > 32 {
        return Err(WebError::bad_request(format!("A field is longer than {FILTER_MAX} characters.")));
    }
    let slug = user.tenant.slug.clone();
    let device = q.device.trim().to_owned();
    let (answer, explanation) = if device.is_empty() {
        (None, None)
    } else {
        let Json(who) = who_can_read(
            State(state.clone()),
            admin.clone(),
            Path(slug.clone()),
            ApiQuery(WhoCanReadQuery { device: device.clone() }),
        )
        .await?;
        let explanation = match q.user.trim() {
            "" => None,
            person => {
                let query = ExplainQuery {
                    user: person.to_owned(),
                    device: device.clone(),
                    operation: non_empty(&q.operation),
                };
                let Json(e) = explain_access(State(state.clone()), admin, Path(slug), ApiQuery(query)).await?;
                Some(e)
            }
        };
        (Some(who), explanation)
    };
    let readers = answer
        .as_ref()
        .map(|w| w.readers.iter().map(|r| ReaderRow { principal: r.principal.clone(), kind: r.kind.clone() }).collect())
        .unwrap_or_default();
    Ok(Html(WhoCanReadPage {
        chrome: Chrome::new(&user, "audit"),
        operations: choices(["password", "history", "support-account"].map(String::from), &q.operation),
        device,
        user: q.user.trim().to_owned(),
        answer,
        readers,
        explanation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\", then go"), "\"say \"\"hi\"\", then go\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for lead in ["+1", "-1+2", "@SUM(A1)", "\tx"] {
            assert!(csv_field(lead).starts_with("\"'"), "{lead}");
        }
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }

    #[test]
    fn filter_times_become_rfc3339() {
        assert_eq!(utc_time("From", "2026-01-31T12:00").unwrap().as_deref(), Some("2026-01-31T12:00:00Z"));
        assert_eq!(utc_time("From", "2026-01-31T12:00:05").unwrap().as_deref(), Some("2026-01-31T12:00:05Z"));
        assert_eq!(
            utc_time("From", "2026-01-31T12:00:00+01:00").unwrap().as_deref(),
            Some("2026-01-31T12:00:00+01:00")
        );
        assert_eq!(utc_time("From", " ").unwrap(), None);
        assert!(utc_time("From", "yesterday").is_err());
    }
}
