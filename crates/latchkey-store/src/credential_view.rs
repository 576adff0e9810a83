//! An application viewing an account's credentials, decided by its permission and the
//! account's policy, in one transaction: the permission, the reason, the approval (created
//! when needed), the read, the reset scheduled after showing and the audit events.

use latchkey_core::clock::to_millis;
use latchkey_core::model::{Account, SecretVersion};
use latchkey_core::{Action, NewAuditEvent, ObjectType, Outcome};
use sqlx::AnyConnection;
use time::OffsetDateTime;

use crate::account_policies::{AccountPolicy, policy_from_row};
use crate::accounts::{account_and_version, account_from_row};
use crate::approvals::{ApprovalState, close_request, count_view, insert_request, latest_request};
use crate::rows::get;
use crate::{Store, StoreError};

/// A view to decide.
#[derive(Debug)]
pub struct CredentialView {
    pub tenant_id: String,
    pub account_id: String,
    pub application_id: String,
    /// The person the application acts for (the body's `UserId`).
    pub on_behalf_of: String,
    pub reason: Option<String>,
    pub now: OffsetDateTime,
    /// The `credentials.view` event (actor, request facts, reason); the store sets its
    /// outcome and details.
    pub event: NewAuditEvent,
}

/// What the view found.
#[derive(Debug)]
pub enum ViewOutcome<T> {
    /// No such account, or the application may not view it (audited as denied).
    NotPermitted,
    /// The policy requires a reason and none was given (audited as denied).
    ReasonRequired,
    /// The policy requires confirmation and no approval allows the view now (audited as
    /// denied); `created` when this view created the request.
    ApprovalRequired { request_id: String, created: bool },
    /// The account has no credentials set (audited as failed).
    NoCredentials,
    /// The credentials.
    Viewed(Box<Viewed<T>>),
}

/// A successful view.
#[derive(Debug)]
pub struct Viewed<T> {
    pub value: T,
    pub account: Account,
    pub version: i64,
    pub policy: Option<AccountPolicy>,
    /// When the reset scheduled by this view (or one already open) is due.
    pub reset_due_at: Option<OffsetDateTime>,
}

impl Store {
    /// Decide and carry out a view (see [`ViewOutcome`]). `open` runs inside the transaction
    /// (keep it short: decrypting one version is); when it fails the view is audited as failed
    /// and answered `Seal`.
    pub async fn view_credentials<T, F>(&self, v: CredentialView, open: F) -> Result<ViewOutcome<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Account, &SecretVersion) -> Result<T, String> + Send + 'static,
    {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| Box::pin(async move { decide(conn, v, open).await }))
            .await?
    }
}

type Decided<T> = (Result<ViewOutcome<T>, StoreError>, Vec<NewAuditEvent>);

async fn decide<T, F>(conn: &mut AnyConnection, v: CredentialView, open: F) -> Result<Decided<T>, StoreError>
where
    F: FnOnce(&Account, &SecretVersion) -> Result<T, String>,
{
    let row = sqlx::query(
        "SELECT a.id, a.tenant_id, a.kind, a.name, a.device_id, a.description, a.created_at, \
         a.expires_at AS a_expires_at, p.can_view, \
         pol.id AS pol_id, pol.tenant_id AS pol_tenant_id, pol.name AS pol_name, pol.require_reason, \
         pol.require_confirmation, pol.confirmation_timeout_secs, pol.reset_after_showing, pol.reset_after_minutes, \
         pol.encrypt_key, pol.can_set_if_not_set, pol.created_at AS pol_created_at, pol.updated_at AS pol_updated_at, \
         v.account_id, v.version, v.state, v.password_envelope, v.ssh_key_envelope, v.key_id, \
         v.created_at AS v_created_at, v.expires_at \
         FROM account_permissions p \
         JOIN accounts a ON a.id = p.account_id AND a.tenant_id = p.tenant_id \
         LEFT JOIN account_policy_links l ON l.account_id = a.id \
         LEFT JOIN account_policies pol ON pol.id = l.policy_id \
         LEFT JOIN secret_versions v ON v.account_id = a.id AND v.state = 'active' \
         WHERE a.removed_at IS NULL AND p.tenant_id = $1 AND p.principal_kind = 'application' \
         AND p.principal_id = $2 AND a.id = $3",
    )
    .bind(v.tenant_id.clone())
    .bind(v.application_id.clone())
    .bind(v.account_id.clone())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    let event = v.event.clone();
    let denied = |problem: &str, extra: serde_json::Value| {
        let mut details = serde_json::json!({ "problem": problem, "onBehalfOf": v.on_behalf_of });
        if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        event.clone().outcome(Outcome::Denied).details(&details)
    };
    let Some(row) = row.filter(|r| get::<i64>(r, "can_view").is_ok_and(|n| n != 0)) else {
        return Ok((Ok(ViewOutcome::NotPermitted), vec![denied("not permitted", serde_json::json!({}))]));
    };
    let account = account_from_row(&row)?;
    let policy = match get::<Option<String>>(&row, "pol_id")? {
        Some(_) => Some(policy_from_row(&row, "pol_")?),
        None => None,
    };
    let reason = v.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if policy.as_ref().is_some_and(|p| p.require_reason) && reason.is_none() {
        return Ok((Ok(ViewOutcome::ReasonRequired), vec![denied("reason required", serde_json::json!({}))]));
    }
    let mut events = Vec::new();
    let mut approval_id = None;
    if policy.as_ref().is_some_and(|p| p.require_confirmation) {
        let approved =
            latest_request(conn, &account.id, &v.application_id, &v.on_behalf_of, ApprovalState::Approved).await?;
        match approved {
            Some(r) if r.valid_until.is_some_and(|until| until > v.now) => approval_id = Some(r.id),
            other => {
                if let Some(r) = other {
                    close_request(conn, &r).await?;
                }
                let pending =
                    latest_request(conn, &account.id, &v.application_id, &v.on_behalf_of, ApprovalState::Pending)
                        .await?;
                let (request_id, created) = match pending {
                    Some(r) => (r.id, false),
                    None => {
                        let id = insert_request(
                            conn,
                            &v.tenant_id,
                            &account.id,
                            &v.application_id,
                            &v.on_behalf_of,
                            reason,
                            v.now,
                        )
                        .await?;
                        let mut request =
                            event.sibling(Action::ApprovalRequest, ObjectType::Approval).object(id.clone());
                        request.reason = reason.map(str::to_owned);
                        events.push(request.details(&serde_json::json!({
                            "account": account.id, "requester": v.application_id, "onBehalfOf": v.on_behalf_of
                        })));
                        (id, true)
                    }
                };
                events.push(denied("confirmation required", serde_json::json!({ "approval": request_id })));
                return Ok((Ok(ViewOutcome::ApprovalRequired { request_id, created }), events));
            }
        }
    }
    if get::<Option<i64>>(&row, "version")?.is_none() {
        let failed = event.outcome(Outcome::Failed).details(&serde_json::json!({ "problem": "no credentials set" }));
        return Ok((Ok(ViewOutcome::NoCredentials), vec![failed]));
    }
    let (account, version) = account_and_version(&row)?;
    let value = match open(&account, &version) {
        Ok(value) => value,
        Err(why) => {
            let failed = event
                .outcome(Outcome::Failed)
                .details(&serde_json::json!({ "version": version.version, "problem": "decryption failed" }));
            return Ok((Err(StoreError::Seal(why)), vec![failed]));
        }
    };
    if let Some(id) = &approval_id {
        count_view(conn, id).await?;
    }
    let reset_due_at = match policy.as_ref().filter(|p| p.reset_after_showing) {
        Some(p) => Some(
            crate::credential_resets::schedule(
                conn,
                &v.tenant_id,
                &account.id,
                v.now + time::Duration::minutes(p.reset_after_minutes),
                v.now,
            )
            .await?,
        ),
        None => None,
    };
    events.push(event.details(&serde_json::json!({
        "version": version.version,
        "onBehalfOf": v.on_behalf_of,
        "approval": approval_id,
        "resetDueAt": reset_due_at.map(to_millis),
    })));
    let viewed = Viewed { value, account, version: version.version, policy, reset_due_at };
    Ok((Ok(ViewOutcome::Viewed(Box::new(viewed))), events))
}
