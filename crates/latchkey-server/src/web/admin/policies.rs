//! Policies: the rotation policies of the tenant and its device groups (the tenant's can be
//! set here), and the account policies (created and deleted here).

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use latchkey_core::{CharClasses, TimeSpan};
use latchkey_proto as proto;
use serde::Deserialize;

use super::targets::Empty;
use super::{Done, admin_of, at_most, chrome, ticked, when};
use crate::extract::ApiJson;
use crate::routes::{
    create_account_policy, delete_account_policy, list_account_policies, list_rotation_policies,
    set_tenant_rotation_policy,
};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{WebForm, new_form_id};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

const NOTICES: &[(&str, &str)] = &[
    ("rotation", "Rotation policy saved."),
    ("created", "Account policy created."),
    ("deleted", "Account policy deleted."),
];

/// A rotation policy as a row.
pub struct RotationRow {
    /// `tenant` or the device group's id.
    pub scope: String,
    pub priority: String,
    pub max_age_hours: i64,
    pub generator: String,
    pub history: i64,
    pub support_lifetime_minutes: i64,
    pub poll_interval_seconds: i64,
    pub updated: String,
}

impl RotationRow {
    fn of(p: &proto::RotationPolicy) -> RotationRow {
        RotationRow {
            scope: p.group_id.clone().map_or_else(|| "tenant".to_owned(), |g| format!("group {g}")),
            priority: p.priority.map(|n| n.to_string()).unwrap_or_default(),
            max_age_hours: p.max_age_seconds / 3600,
            generator: match p.passphrase_words {
                Some(words) => format!("passphrase of {words} words"),
                None => format!("{} characters: {}", p.length, p.classes.replace(',', ", ")),
            },
            history: p.history,
            support_lifetime_minutes: p.support_lifetime_seconds / 60,
            poll_interval_seconds: p.poll_interval_seconds,
            updated: when(p.updated_at),
        }
    }
}

/// The values the tenant's rotation form starts with: the current policy, else the default.
pub struct RotationValues {
    pub max_age_hours: i64,
    pub length: i64,
    pub lower: bool,
    pub upper: bool,
    pub digits: bool,
    pub symbols: bool,
    pub passphrase_words: String,
    pub history: i64,
    pub support_lifetime_minutes: i64,
    pub poll_interval_seconds: i64,
}

impl RotationValues {
    fn of(current: Option<&proto::RotationPolicy>) -> RotationValues {
        let d = latchkey_core::RotationPolicy::default();
        let (max_age, length, classes, words, history, support, poll) = match current {
            Some(p) => (
                p.max_age_seconds,
                p.length,
                p.classes.clone(),
                p.passphrase_words,
                p.history,
                p.support_lifetime_seconds,
                p.poll_interval_seconds,
            ),
            None => (
                d.max_age.whole_seconds(),
                d.length,
                d.classes.as_list(),
                d.passphrase_words,
                d.history,
                d.support_lifetime.whole_seconds(),
                d.poll_interval.whole_seconds(),
            ),
        };
        let has = |c: &str| classes.split(',').any(|x| x.trim() == c);
        RotationValues {
            max_age_hours: max_age / 3600,
            length,
            lower: has("lower"),
            upper: has("upper"),
            digits: has("digits"),
            symbols: has("symbols"),
            passphrase_words: words.map(|w| w.to_string()).unwrap_or_default(),
            history,
            support_lifetime_minutes: support / 60,
            poll_interval_seconds: poll,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_policies.html")]
pub struct PoliciesPage {
    chrome: Chrome,
    admin_page: &'static str,
    rotation: Vec<RotationRow>,
    values: RotationValues,
    accounts: Vec<proto::AccountPolicy>,
    rotation_form_id: String,
    account_form_id: String,
}

/// `GET /admin/policies`.
pub async fn list(
    State(state): State<AppState>,
    user: WebUser,
    q: Result<Query<Done>, QueryRejection>,
) -> Result<Html<PoliciesPage>, WebError> {
    let done = Done::of(q);
    let (admin, slug) = admin_of(&user)?;
    let Json(rotation) = list_rotation_policies(State(state.clone()), admin.clone(), Path(slug.0.clone())).await?;
    let Json(accounts) = list_account_policies(State(state), admin, slug).await?;
    let tenant_policy = rotation.items.iter().find(|p| p.group_id.is_none());
    Ok(Html(PoliciesPage {
        chrome: chrome(&user, &done, NOTICES),
        admin_page: "policies",
        values: RotationValues::of(tenant_policy),
        rotation: rotation.items.iter().map(RotationRow::of).collect(),
        accounts: accounts.items,
        rotation_form_id: new_form_id(),
        account_form_id: new_form_id(),
    }))
}

/// A whole number typed into `field`.
fn number(field: &str, value: &str) -> Result<i64, WebError> {
    value
        .trim()
        .parse()
        .map_err(|_| WebError::bad_request(format!("{field} must be a whole number. Nothing was changed.")))
}

/// A whole number typed into `field`, or none when it is left empty.
fn optional_number(field: &str, value: &str) -> Result<Option<i64>, WebError> {
    if value.trim().is_empty() { Ok(None) } else { number(field, value).map(Some) }
}

/// A number of `unit`s in `field` as seconds.
fn seconds(field: &str, value: &str, unit: i64) -> Result<i64, WebError> {
    number(field, value)?
        .checked_mul(unit)
        .ok_or_else(|| WebError::bad_request(format!("{field} is far too large. Nothing was changed.")))
}

/// The tenant's rotation form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationForm {
    max_age_hours: String,
    length: String,
    #[serde(default)]
    lower: Option<String>,
    #[serde(default)]
    upper: Option<String>,
    #[serde(default)]
    digits: Option<String>,
    #[serde(default)]
    symbols: Option<String>,
    #[serde(default)]
    passphrase_words: String,
    history: String,
    support_lifetime_minutes: String,
    poll_interval_seconds: String,
}

impl RotationForm {
    /// The API body; numbers that do not parse are refused here, ranges by the API.
    fn body(&self) -> Result<proto::RotationPolicySet, WebError> {
        let classes = CharClasses {
            lower: ticked(&self.lower),
            upper: ticked(&self.upper),
            digits: ticked(&self.digits),
            symbols: ticked(&self.symbols),
        };
        Ok(proto::RotationPolicySet {
            max_age_seconds: Some(seconds("Maximum age", &self.max_age_hours, 3600)?),
            length: Some(number("Length", &self.length)?),
            classes: Some(classes.as_list()),
            passphrase_words: optional_number("Passphrase words", &self.passphrase_words)?,
            history: Some(number("History", &self.history)?),
            support_lifetime_seconds: Some(seconds("Support account lifetime", &self.support_lifetime_minutes, 60)?),
            poll_interval_seconds: Some(number("Check-in interval", &self.poll_interval_seconds)?),
            priority: None,
        })
    }
}

/// `POST /admin/policies/rotation`: replace the tenant's rotation policy.
pub async fn set_rotation(State(state): State<AppState>, form: WebForm<RotationForm>) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let body = form.form.body()?;
    let _ = set_tenant_rotation_policy(State(state), admin, slug, ApiJson(body)).await?;
    Ok(Redirect::to("/admin/policies?done=rotation"))
}

/// The account policy form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountForm {
    name: String,
    #[serde(default)]
    require_reason: Option<String>,
    #[serde(default)]
    require_confirmation: Option<String>,
    #[serde(default)]
    confirmation_minutes: String,
    #[serde(default)]
    reset_after_showing: Option<String>,
    #[serde(default)]
    reset_after_minutes: String,
    #[serde(default)]
    encrypt_key_before_showing: Option<String>,
    #[serde(default)]
    can_set_if_not_set: Option<String>,
}

impl AccountForm {
    /// The API body; numbers that do not parse are refused here, ranges by the API.
    fn body(&self) -> Result<proto::AccountPolicySpec, WebError> {
        at_most("Name", &self.name, 256)?;
        let timeout = optional_number("Confirmation timeout", &self.confirmation_minutes)?
            .map(|m| {
                m.checked_mul(60)
                    .map(|s| TimeSpan::from_seconds(s).to_string())
                    .ok_or_else(|| WebError::bad_request("Confirmation timeout is far too large. Nothing was changed."))
            })
            .transpose()?;
        Ok(proto::AccountPolicySpec {
            name: self.name.trim().to_owned(),
            require_reason: ticked(&self.require_reason),
            require_confirmation: ticked(&self.require_confirmation),
            confirmation_timeout: timeout,
            reset_after_showing: ticked(&self.reset_after_showing),
            reset_after_minutes: optional_number("Reset after", &self.reset_after_minutes)?,
            encrypt_key_before_showing: ticked(&self.encrypt_key_before_showing),
            can_set_if_not_set: ticked(&self.can_set_if_not_set),
        })
    }
}

/// `POST /admin/policies/account`: create an account policy.
pub async fn create_account(State(state): State<AppState>, form: WebForm<AccountForm>) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    let body = form.form.body()?;
    let _ = create_account_policy(State(state), admin, slug, ApiJson(body)).await?;
    Ok(Redirect::to("/admin/policies?done=created"))
}

/// `POST /admin/policies/account/{id}/delete`: delete an account policy no account uses.
pub async fn delete_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: WebForm<Empty>,
) -> Result<Redirect, WebError> {
    let (admin, slug) = admin_of(&form.user)?;
    delete_account_policy(State(state), admin, Path((slug.0, id))).await?;
    Ok(Redirect::to("/admin/policies?done=deleted"))
}
