//! The admin's pages: the tenant's facts, access targets (with the Lithnet import), devices
//! and enrollment tokens, applications, account policies, users and their roles, and
//! directory sync. Every change goes through the API's handler as the person, so the API's
//! checks and audit events apply.

pub mod applications;
pub mod devices;
pub mod directory;
pub mod lithnet;
pub mod policies;
pub mod targets;
pub mod users;

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use latchkey_core::Role;
use latchkey_proto as proto;
use serde::Deserialize;

use crate::auth::Admin;
use crate::routes::{get_tenant, list_account_policies};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// The admin's rights in the person's tenant, and the tenant's slug.
pub(crate) fn admin_of(user: &WebUser) -> Result<(Admin, Path<String>), WebError> {
    let admin = user.acting_as(Role::Admin)?;
    Ok((admin, Path(user.tenant.slug.clone())))
}

/// What a page was sent back with after a change (`?done=…`): only fixed words, so a link
/// cannot put text of its own on the page.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
    /// Paging of lists.
    #[serde(default)]
    after: Option<String>,
    /// A search in lists.
    #[serde(default)]
    q: Option<String>,
}

impl Done {
    /// The query of an admin page; an unreadable one is the same as none.
    pub fn of(q: Result<Query<Done>, QueryRejection>) -> Done {
        q.map(|Query(d)| d).unwrap_or_default()
    }

    /// The notice for the `done` word, looked up in `notices`.
    pub fn notice(&self, notices: &[(&str, &'static str)]) -> Option<&'static str> {
        let done = self.done.as_deref()?;
        notices.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
    }

    /// The paging cursor.
    pub fn after(&self) -> Option<String> {
        self.after.clone().filter(|a| !a.is_empty() && a.len() <= 64)
    }

    /// The search text.
    pub fn search(&self) -> String {
        self.q.clone().unwrap_or_default().chars().take(256).collect()
    }
}

/// The chrome of an admin page, with the notice of `done`.
pub(crate) fn chrome(user: &WebUser, done: &Done, notices: &[(&str, &'static str)]) -> Chrome {
    let chrome = Chrome::new(user, "admin");
    match done.notice(notices) {
        Some(n) => chrome.notice(n),
        None => chrome,
    }
}

/// Refuse a field longer than `max` characters.
pub(crate) fn at_most(field: &str, value: &str, max: usize) -> Result<(), WebError> {
    if value.chars().count() > max {
        return Err(WebError::bad_request(format!("{field} is longer than {max} characters. Nothing was changed.")));
    }
    Ok(())
}

/// Whether a checkbox was ticked.
pub(crate) fn ticked(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| !v.is_empty())
}

/// A time as the admin pages show it.
pub(crate) fn when(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(f).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminHome {
    chrome: Chrome,
    admin_page: &'static str,
    tenant: proto::Tenant,
    created: String,
    policies: Vec<proto::AccountPolicy>,
}

/// `GET /admin`: the tenant's facts, its account policies and the admin sections.
pub async fn home(State(state): State<AppState>, user: WebUser) -> Result<Html<AdminHome>, WebError> {
    let (admin, slug) = admin_of(&user)?;
    let Json(tenant) = get_tenant(State(state.clone()), admin.clone(), Path(slug.0.clone())).await?;
    let Json(policies) = list_account_policies(State(state), admin, slug).await?;
    Ok(Html(AdminHome {
        chrome: Chrome::new(&user, "admin"),
        admin_page: "home",
        created: when(tenant.created_at),
        tenant,
        policies: policies.items,
    }))
}
