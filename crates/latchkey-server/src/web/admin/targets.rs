//! Access targets as an ordered list: add, edit, move up and down, disable and enable, delete.

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use latchkey_proto as proto;
use serde::Deserialize;

use super::{Done, admin_of, at_most, chrome, ticked};
use crate::extract::ApiJson;
use crate::routes::{create_target, delete_target, get_target, list_targets, move_target, replace_target};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

const NOTICES: &[(&str, &str)] = &[
    ("added", "Target added."),
    ("saved", "Target saved."),
    ("moved", "Target moved."),
    ("enabled", "Target enabled."),
    ("disabled", "Target disabled: it stays in the list and matches nothing."),
    ("deleted", "Target deleted."),
    ("imported", "Targets imported."),
];

/// The most readers or addresses one form gives (the API's own limit).
const MAX_LINES: usize = 500;

/// The target form's fields (checkboxes are absent when not ticked).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetForm {
    kind: String,
    name: String,
    #[serde(default)]
    expire_after: String,
    /// One reader a line.
    #[serde(default)]
    readers: String,
    #[serde(default)]
    grant_password: Option<String>,
    #[serde(default)]
    grant_history: Option<String>,
    #[serde(default)]
    grant_support_account: Option<String>,
    #[serde(default)]
    email_on_success: Option<String>,
    #[serde(default)]
    email_on_failure: Option<String>,
    /// Separated by commas or lines.
    #[serde(default)]
    email_addresses: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: Option<String>,
}

fn lines(field: &str, text: &str, split: &[char]) -> Result<Vec<String>, WebError> {
    let items: Vec<String> = text.split(split).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if items.len() > MAX_LINES {
        return Err(WebError::bad_request(format!(
            "{field} holds more than {MAX_LINES} entries. Nothing was changed."
        )));
    }
    Ok(items)
}

impl TargetForm {
    /// The API's target spec, after the form's own length limits.
    fn spec(self) -> Result<proto::TargetSpec, WebError> {
        at_most("Type", &self.kind, 32)?;
        at_most("Name", &self.name, 1024)?;
        at_most("Expire after", &self.expire_after, 32)?;
        at_most("Readers", &self.readers, 64 * 1024)?;
        at_most("E-mail addresses", &self.email_addresses, 64 * 1024)?;
        at_most("Description", &self.description, 1000)?;
        let mut grants = Vec::new();
        for (on, name) in [
            (&self.grant_password, "password"),
            (&self.grant_history, "history"),
            (&self.grant_support_account, "support-account"),
        ] {
            if ticked(on) {
                grants.push(name.to_owned());
            }
        }
        Ok(proto::TargetSpec {
            kind: self.kind.trim().to_owned(),
            name: self.name.trim().to_owned(),
            expire_after: Some(self.expire_after.trim().to_owned()).filter(|s| !s.is_empty()),
            readers: lines("Readers", &self.readers, &['\n'])?,
            grants: Some(grants),
            audit: proto::TargetAudit {
                email_on_success: ticked(&self.email_on_success),
                email_on_failure: ticked(&self.email_on_failure),
                email_addresses: lines("E-mail addresses", &self.email_addresses, &['\n', ',', ';'])?,
            },
            enabled: ticked(&self.enabled),
            description: Some(self.description.trim().to_owned()).filter(|s| !s.is_empty()),
            position: None,
        })
    }
}

/// A target's values as the form shows them.
pub struct TargetFields {
    pub kind: String,
    pub name: String,
    pub expire_after: String,
    pub readers: String,
    pub grant_password: bool,
    pub grant_history: bool,
    pub grant_support_account: bool,
    pub email_on_success: bool,
    pub email_on_failure: bool,
    pub email_addresses: String,
    pub description: String,
    pub enabled: bool,
}

impl TargetFields {
    fn new_target() -> Self {
        TargetFields {
            kind: "Computer".into(),
            name: String::new(),
            expire_after: String::new(),
            readers: String::new(),
            grant_password: true,
            grant_history: false,
            grant_support_account: false,
            email_on_success: true,
            email_on_failure: true,
            email_addresses: String::new(),
            description: String::new(),
            enabled: true,
        }
    }

    fn of(t: &proto::TargetView) -> Self {
        let has = |g: &str| t.grants.iter().any(|x| x == g);
        TargetFields {
            kind: t.kind.clone(),
            name: t.name.clone(),
            expire_after: t.expire_after.clone().unwrap_or_default(),
            readers: t.readers.iter().map(|r| r.principal.as_str()).collect::<Vec<_>>().join("\n"),
            grant_password: has("password"),
            grant_history: has("history"),
            grant_support_account: has("support-account"),
            email_on_success: t.audit.email_on_success,
            email_on_failure: t.audit.email_on_failure,
            email_addresses: t.audit.email_addresses.join(", "),
            description: t.description.clone().unwrap_or_default(),
            enabled: t.enabled,
        }
    }

    /// Whether the select shows `kind`.
    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }
}

/// The spec that keeps a stored target as it is, except for `enabled`.
fn spec_of(t: &proto::TargetView, enabled: bool) -> proto::TargetSpec {
    proto::TargetSpec {
        kind: t.kind.clone(),
        name: t.name.clone(),
        expire_after: t.expire_after.clone(),
        readers: t.readers.iter().map(|r| r.principal.clone()).collect(),
        grants: Some(t.grants.clone()),
        audit: t.audit.clone(),
        enabled,
        description: t.description.clone(),
        position: None,
    }
}

/// A target as a row of the list.
pub struct TargetRow {
    pub id: String,
    pub position: i64,
    pub kind: String,
    pub name: String,
    pub readers: String,
    pub grants: String,
    pub expire_after: String,
    pub enabled: bool,
    pub first: bool,
    pub last: bool,
}

#[derive(Template)]
#[template(path = "admin_targets.html")]
pub struct TargetsPage {
    chrome: Chrome,
    admin_page: &'static str,
    rows: Vec<TargetRow>,
    fields: TargetFields,
    form_id: String,
}

/// `GET /admin/targets`.
pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    q: Result<Query<Done>, QueryRejection>,
) -> Result<Html<TargetsPage>, WebError> {
    let done = Done::of(q);
    let (admin, slug) = admin_of(&user)?;
    let Json(list) = list_targets(State(state), admin, slug).await?;
    let count = list.items.len();
    let rows = list
        .items
        .into_iter()
        .enumerate()
        .map(|(i, t)| TargetRow {
            readers: t.readers.iter().map(|r| r.principal.as_str()).collect::<Vec<_>>().join(", "),
            grants: t.grants.join(", "),
            expire_after: t.expire_after.unwrap_or_default(),
            id: t.id,
            position: t.position,
            kind: t.kind,
            name: t.name,
            enabled: t.enabled,
            first: i == 0,
            last: i + 1 == count,
        })
        .collect();
    Ok(Html(TargetsPage {
        chrome: chrome(&user, &done, NOTICES),
        admin_page: "targets",
        rows,
        fields: TargetFields::new_target(),
        form_id: new_form_id(),
    }))
}

/// `POST /admin/targets`: add a target at the end.
pub async fn create(State(state): State<AppState>, form: WebForm<TargetForm>) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let spec = form.form.spec()?;
    let _ = create_target(State(state), admin, slug, ApiJson(spec)).await?;
    Ok(Redirect::to("/admin/targets?done=added"))
}

#[derive(Template)]
#[template(path = "admin_target_edit.html")]
pub struct EditPage {
    chrome: Chrome,
    admin_page: &'static str,
    id: String,
    position: i64,
    fields: TargetFields,
}

/// `GET /admin/targets/{id}`.
pub async fn edit(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Html<EditPage>, WebError> {
    let (admin, slug) = admin_of(&user)?;
    let Json(t) = get_target(State(state), admin, Path((slug.0, id))).await?;
    Ok(Html(EditPage {
        chrome: Chrome::new(&user, "admin"),
        admin_page: "targets",
        fields: TargetFields::of(&t),
        id: t.id,
        position: t.position,
    }))
}

/// `POST /admin/targets/{id}`: replace the target's settings; its place stays.
pub async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<TargetForm>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let spec = form.form.spec()?;
    let _ = replace_target(State(state), admin, Path((slug.0, id)), ApiJson(spec)).await?;
    Ok(Redirect::to("/admin/targets?done=saved"))
}

/// Which way to move a target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// The move form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveForm {
    direction: Direction,
}

/// `POST /admin/targets/{id}/move`: one place up or down.
pub async fn move_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<MoveForm>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let Json(t) = get_target(State(state.clone()), admin.clone(), Path((slug.0.clone(), id.clone()))).await?;
    let position = match form.form.direction {
        Direction::Up if t.position <= 1 => return Ok(Redirect::to("/admin/targets")),
        Direction::Up => t.position - 1,
        Direction::Down => t.position + 1,
    };
    let _ = move_target(State(state), admin, Path((slug.0, id)), ApiJson(proto::TargetMove { position })).await?;
    Ok(Redirect::to("/admin/targets?done=moved"))
}

/// A form with only the token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

async fn set_enabled(state: AppState, form: WebForm<Empty>, id: String, enabled: bool) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let Json(t) = get_target(State(state.clone()), admin.clone(), Path((slug.0.clone(), id.clone()))).await?;
    let _ = replace_target(State(state), admin, Path((slug.0, id)), ApiJson(spec_of(&t, enabled))).await?;
    Ok(Redirect::to(if enabled { "/admin/targets?done=enabled" } else { "/admin/targets?done=disabled" }))
}

/// `POST /admin/targets/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<Empty>,
) -> Result<Redirect, WebError> {
    set_enabled(state, form, id, true).await
}

/// `POST /admin/targets/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<Empty>,
) -> Result<Redirect, WebError> {
    set_enabled(state, form, id, false).await
}

/// `POST /admin/targets/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<Empty>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    delete_target(State(state), admin, Path((slug.0, id))).await?;
    Ok(Redirect::to("/admin/targets?done=deleted"))
}
