//! Applications of the application credential API: the list, creating one (its password is
//! shown once), enabling and disabling.

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use latchkey_proto as proto;
use serde::Deserialize;

use super::targets::Empty;
use super::{Done, admin_of, at_most, chrome, when};
use crate::extract::ApiJson;
use crate::routes::{create_application, disable_application, enable_application, list_applications};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

const NOTICES: &[(&str, &str)] =
    &[("enabled", "Application enabled."), ("disabled", "Application disabled: its tokens no longer work.")];

/// An application as a row.
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub username: String,
    pub enabled: bool,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin_applications.html")]
pub struct ApplicationsPage {
    chrome: Chrome,
    admin_page: &'static str,
    rows: Vec<AppRow>,
    form_id: String,
}

/// `GET /admin/applications`.
pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    q: Result<Query<Done>, QueryRejection>,
) -> Result<Html<ApplicationsPage>, WebError> {
    let done = Done::of(q);
    let (admin, slug) = admin_of(&user)?;
    let Json(list) = list_applications(State(state), admin, slug).await?;
    let rows = list
        .items
        .into_iter()
        .map(|a| AppRow {
            created: when(a.created_at),
            id: a.id,
            name: a.name,
            username: a.username,
            enabled: a.enabled,
        })
        .collect();
    Ok(Html(ApplicationsPage {
        chrome: chrome(&user, &done, NOTICES),
        admin_page: "applications",
        rows,
        form_id: new_form_id(),
    }))
}

/// The create form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppForm {
    name: String,
}

#[derive(Template)]
#[template(path = "admin_application_created.html")]
pub struct CreatedPage {
    chrome: Chrome,
    admin_page: &'static str,
    username: String,
    password: String,
}

/// `POST /admin/applications`: the new application's password, shown on this page only.
pub async fn create(State(state): State<AppState>, form: WebForm<AppForm>) -> Result<Html<CreatedPage>, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    at_most("Name", &form.form.name, 256)?;
    let body = proto::ApplicationCreate { name: form.form.name.trim().to_owned() };
    let (_, Json(created)) = create_application(State(state), admin, slug, ApiJson(body)).await?;
    Ok(Html(CreatedPage {
        chrome: Chrome::new(&form.user, "admin"),
        admin_page: "applications",
        username: created.application.username.clone(),
        password: created.password.clone(),
    }))
}

/// `POST /admin/applications/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<Empty>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let _ = enable_application(State(state), admin, Path((slug.0, id))).await?;
    Ok(Redirect::to("/admin/applications?done=enabled"))
}

/// `POST /admin/applications/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<Empty>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let _ = disable_application(State(state), admin, Path((slug.0, id))).await?;
    Ok(Redirect::to("/admin/applications?done=disabled"))
}
