//! The approver's inbox (`/approvals`): pending credential-view approvals and other people's
//! just-in-time requests, each approved or denied here. The page needs the approver role;
//! deciding runs the API's handlers as the person, so a request is never decided by the person
//! it is for (the page offers no buttons on one's own, and a forged form gets the API's 403).

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_core::Role;
use latchkey_proto as proto;
use latchkey_store::StoreError;
use serde::Deserialize;

use crate::auth::Caller;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::WebForm;
use crate::web::jit::{DoneQuery, GrantRow, MAX_GRANT_ID, when};
use crate::web::page::{Chrome, Html};
use crate::web::session::WebUser;

/// Longest comment (as the API).
const MAX_COMMENT: usize = 1000;

/// A pending credential-view approval as the inbox shows it.
pub struct ViewRow {
    pub id: String,
    pub account: String,
    pub requester: String,
    /// The person the view is for.
    pub for_person: String,
    pub reason: String,
    pub requested_at: String,
    /// The request is the approver's own: no buttons.
    pub own: bool,
}

/// A pending JIT request of someone, as the inbox shows it.
pub struct JitRow {
    pub grant: GrantRow,
    pub own: bool,
}

#[derive(Template)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    chrome: Chrome,
    views: Vec<ViewRow>,
    grants: Vec<JitRow>,
}

/// A person's name, or their id when it cannot be found.
async fn person_name(state: &AppState, tenant_id: &str, user_id: &str) -> Result<String, WebError> {
    match state.store().user_name(tenant_id, user_id).await {
        Ok(name) => Ok(name),
        Err(StoreError::NotFound) => Ok(user_id.to_owned()),
        Err(e) => Err(WebError::from_store("user", e)),
    }
}

/// `GET /approvals`: what waits for the approver's decision.
pub async fn page(
    State(state): State<AppState>,
    user: WebUser,
    query: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<ApprovalsPage>, WebError> {
    let tenant_rights = user.acting_as(Role::Approver)?;
    let slug = user.tenant.slug.clone();
    let q = crate::routes::ApprovalQuery { state: Some("pending".into()) };
    let Json(pending) = crate::routes::list_approvals(
        State(state.clone()),
        Caller::User(user.user.clone()),
        Path(slug.clone()),
        ApiQuery(q),
    )
    .await?;
    let mut views = Vec::with_capacity(pending.items.len());
    for a in pending.items {
        views.push(ViewRow {
            own: a.on_behalf_of == user.user.user_id,
            for_person: person_name(&state, &user.tenant.id, &a.on_behalf_of).await?,
            id: a.id,
            account: a.account_name,
            requester: a.requester_name,
            reason: a.reason.unwrap_or_default(),
            requested_at: when(a.created_at),
        });
    }
    let Json(list) = crate::routes::list_jit(State(state.clone()), Caller::Admin(tenant_rights), Path(slug)).await?;
    let now = state.clock().now();
    let me = user.user.user_name.to_lowercase();
    let grants = list
        .grants
        .iter()
        .filter(|g| g.state == "requested")
        .map(|g| JitRow { own: g.requester.to_lowercase() == me, grant: GrantRow::new(g, now) })
        .collect();
    let mut chrome = Chrome::new(&user, "approvals");
    match query.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("approved") => chrome = chrome.notice("Approved."),
        Some("denied") => chrome = chrome.notice("Denied."),
        _ => {}
    }
    Ok(Html(ApprovalsPage { chrome, views, grants }))
}

/// Approve or deny, from the path.
fn decision(raw: &str) -> Result<bool, WebError> {
    match raw {
        "approve" => Ok(true),
        "deny" => Ok(false),
        _ => Err(WebError::not_found("decision")),
    }
}

/// Where the inbox goes after a decision.
fn decided(approve: bool) -> Response {
    Redirect::to(if approve { "/approvals?done=approved" } else { "/approvals?done=denied" }).into_response()
}

/// A request id from the path, refused as unknown when it cannot be one.
fn request_id(raw: &str, what: &str) -> Result<String, WebError> {
    let id = raw.trim();
    if id.is_empty() || id.len() > MAX_GRANT_ID {
        return Err(WebError::not_found(what));
    }
    Ok(id.to_owned())
}

/// A decision: an optional comment (for the requester of a credential view; kept in the audit
/// event of a JIT decision).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
}

impl DecisionForm {
    /// The comment, if any, at most [`MAX_COMMENT`] characters.
    fn comment(&self) -> Result<Option<String>, WebError> {
        if self.comment.chars().count() > MAX_COMMENT {
            return Err(WebError::bad_request(format!(
                "The comment is longer than {MAX_COMMENT} characters. Nothing was changed."
            )));
        }
        Ok(Some(self.comment.trim().to_owned()).filter(|c| !c.is_empty()))
    }
}

/// `POST /approvals/view/{id}/approve|deny`.
pub async fn decide_view(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
    WebForm { user, form }: WebForm<DecisionForm>,
) -> Result<Response, WebError> {
    user.require(Role::Approver)?;
    let approve = decision(&raw)?;
    let id = request_id(&id, "approval")?;
    let body = proto::ApprovalDecision { comment: form.comment()? };
    let caller = Caller::User(user.user.clone());
    let path = Path((user.tenant.slug.clone(), id));
    if approve {
        let _decided = crate::routes::approve_approval(State(state), caller, path, ApiJson(body)).await?;
    } else {
        let _decided = crate::routes::deny_approval(State(state), caller, path, ApiJson(body)).await?;
    }
    Ok(decided(approve))
}

/// `POST /approvals/jit/{id}/approve|deny`: the comment is kept in the decision's audit event.
pub async fn decide_jit(
    State(state): State<AppState>,
    Path((id, raw)): Path<(String, String)>,
    WebForm { user, form }: WebForm<DecisionForm>,
) -> Result<Response, WebError> {
    user.require(Role::Approver)?;
    let approve = decision(&raw)?;
    let id = request_id(&id, "grant")?;
    let comment = form.comment()?;
    let caller = Caller::User(user.user.clone());
    let _decided = crate::routes::decide_jit(state, caller, user.tenant.slug.clone(), id, approve, comment).await?;
    Ok(decided(approve))
}
