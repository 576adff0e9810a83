//! Users of the tenant and the roles they hold in the web UI.

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use latchkey_core::Role;
use latchkey_proto as proto;
use serde::Deserialize;

use super::{Done, admin_of, chrome, ticked};
use crate::extract::ApiJson;
use crate::routes::{get_user_roles, list_users, set_user_roles};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::WebForm;
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

const NOTICES: &[(&str, &str)] = &[("saved", "Roles saved.")];
/// Users on one page.
const PAGE: usize = 100;

/// A user as a row with role checkboxes.
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub admin: bool,
    pub auditor: bool,
    pub approver: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub struct UsersPage {
    chrome: Chrome,
    admin_page: &'static str,
    q: String,
    rows: Vec<UserRow>,
    next: Option<String>,
}

/// `GET /admin/users[?q=…&after=…]`: users whose name, display name or e-mail contains the
/// search, a page at a time, in name order.
pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    q: Result<Query<Done>, QueryRejection>,
) -> Result<Html<UsersPage>, WebError> {
    let done = Done::of(q);
    let (admin, slug) = admin_of(&user)?;
    let Json(all) = list_users(State(state.clone()), admin.clone(), Path(slug.0.clone())).await?;
    let search = done.search().trim().to_lowercase();
    let mut users: Vec<proto::User> = all
        .items
        .into_iter()
        .filter(|u| {
            search.is_empty()
                || [Some(&u.name), u.display_name.as_ref(), u.email.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|s| s.to_lowercase().contains(&search))
        })
        .collect();
    users.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
    let start = match done.after() {
        Some(after) => users.iter().position(|u| u.id == after).map_or(0, |i| i + 1),
        None => 0,
    };
    let shown: Vec<proto::User> = users.into_iter().skip(start).take(PAGE + 1).collect();
    let next = (shown.len() > PAGE).then(|| shown[PAGE - 1].id.clone());
    let mut rows = Vec::with_capacity(PAGE);
    for u in shown.into_iter().take(PAGE) {
        let Json(roles) =
            get_user_roles(State(state.clone()), admin.clone(), Path((slug.0.clone(), u.id.clone()))).await?;
        let has = |r: Role| roles.roles.iter().any(|x| x == r.as_str());
        rows.push(UserRow {
            admin: has(Role::Admin),
            auditor: has(Role::Auditor),
            approver: has(Role::Approver),
            id: u.id,
            name: u.name,
            display_name: u.display_name.unwrap_or_default(),
            email: u.email.unwrap_or_default(),
        });
    }
    let next = next.map(|n| {
        let mut q: Vec<(&str, &str)> = vec![("after", &n)];
        if !search.is_empty() {
            q.push(("q", &search));
        }
        format!("/admin/users?{}", serde_urlencoded::to_string(q).unwrap_or_default())
    });
    Ok(Html(UsersPage { chrome: chrome(&user, &done, NOTICES), admin_page: "users", q: done.search(), rows, next }))
}

/// The roles form: one checkbox a role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesForm {
    #[serde(default)]
    admin: Option<String>,
    #[serde(default)]
    auditor: Option<String>,
    #[serde(default)]
    approver: Option<String>,
}

/// `POST /admin/users/{id}/roles`.
pub async fn set_roles(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<RolesForm>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let f = &form.form;
    let roles = [(Role::Admin, &f.admin), (Role::Auditor, &f.auditor), (Role::Approver, &f.approver)]
        .into_iter()
        .filter(|(_, on)| ticked(on))
        .map(|(r, _)| r.as_str().to_owned())
        .collect();
    // The user must be of this tenant: reading their roles answers 404 otherwise.
    let _ = get_user_roles(State(state.clone()), admin.clone(), Path((slug.0.clone(), id.clone()))).await?;
    let _ = set_user_roles(State(state), admin, Path((slug.0, id)), ApiJson(proto::UserRoles { roles })).await?;
    Ok(Redirect::to("/admin/users?done=saved"))
}
