//! Directory sync of the tenant: whether a directory is configured, the recent runs, and a
//! button to sync now.

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Redirect;
use latchkey_proto as proto;

use super::targets::Empty;
use super::{Done, admin_of, chrome, when};
use crate::routes::{directory_sync_status, run_directory_sync};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

const NOTICES: &[(&str, &str)] = &[("synced", "Directory synced.")];

/// A sync run as a row.
pub struct RunRow {
    pub started: String,
    pub seconds: i64,
    pub ok: bool,
    pub users: String,
    pub groups: String,
    pub devices: String,
    pub memberships: String,
    pub error: String,
}

fn counts(c: &proto::DirectoryObjectCounts) -> String {
    format!("{} (+{} ~{} −{})", c.total, c.created, c.updated, c.deleted)
}

fn run_row(r: &proto::DirectorySyncRun) -> RunRow {
    RunRow {
        started: when(r.started_at),
        seconds: (r.finished_at - r.started_at).whole_seconds(),
        ok: matches!(r.outcome, proto::DirectorySyncOutcome::Success),
        users: counts(&r.counts.users),
        groups: counts(&r.counts.groups),
        devices: counts(&r.counts.devices),
        memberships: format!("+{} −{}", r.counts.memberships_added, r.counts.memberships_removed),
        error: r.error.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "admin_directory.html")]
pub struct DirectoryPage {
    chrome: Chrome,
    admin_page: &'static str,
    configured: bool,
    url: String,
    interval_minutes: u64,
    runs: Vec<RunRow>,
    form_id: String,
}

/// `GET /admin/directory`.
pub async fn status(
    State(state): State<AppState>,
    user: WebUser,
    q: Result<Query<Done>, QueryRejection>,
) -> Result<Html<DirectoryPage>, WebError> {
    let done = Done::of(q);
    let (admin, slug) = admin_of(&user)?;
    let Json(s) = directory_sync_status(State(state), admin, slug).await?;
    Ok(Html(DirectoryPage {
        chrome: chrome(&user, &done, NOTICES),
        admin_page: "directory",
        configured: s.configured,
        url: s.url.unwrap_or_default(),
        interval_minutes: s.interval_minutes.unwrap_or_default(),
        runs: s.runs.iter().map(run_row).collect(),
        form_id: new_form_id(),
    }))
}

/// `POST /admin/directory/sync`: sync now; a failed run is an error page with its reason.
pub async fn sync_now(State(state): State<AppState>, form: WebForm<Empty>) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let _ = run_directory_sync(State(state), admin, slug).await?;
    Ok(Redirect::to("/admin/directory?done=synced"))
}
