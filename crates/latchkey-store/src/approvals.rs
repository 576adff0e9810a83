//! Approval requests: an application asks to view an account whose policy requires
//! confirmation; an approver decides; the requester is notified through the outbox; views are
//! allowed until the approval's time runs out.

use latchkey_core::NewAuditEvent;
use latchkey_core::clock::to_millis;
use latchkey_core::notification::Notification;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::rows::{get, opt_time, time};
use crate::{Store, StoreError};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalState {
    /// Waiting for a decision.
    Pending,
    /// Approved: views are allowed until `valid_until`.
    Approved,
    Denied,
    /// Approved, but its time ran out before any view.
    Expired,
    /// Approved, viewed, and its time ran out.
    Used,
}

impl ApprovalState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Used => "used",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Denied,
            ApprovalState::Expired,
            ApprovalState::Used,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A request to view an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: String,
    pub tenant_id: String,
    pub account_id: String,
    /// The account's name.
    pub account_name: String,
    /// `application`.
    pub requester_kind: String,
    pub requester_id: String,
    /// The requester's name (the application's).
    pub requester_name: String,
    /// The person the application acts for (the view's `UserId`).
    pub on_behalf_of: String,
    pub reason: Option<String>,
    pub state: ApprovalState,
    pub created_at: OffsetDateTime,
    /// The audit actor of the approver.
    pub decided_by: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    pub comment: Option<String>,
    /// Until when an approved request allows views.
    pub valid_until: Option<OffsetDateTime>,
    /// Views made under the approval.
    pub views: i64,
}

/// A decision on a pending request.
pub struct Decision {
    pub tenant_id: String,
    pub approval_id: String,
    pub approve: bool,
    /// The approver's audit actor.
    pub decided_by: String,
    pub comment: Option<String>,
    pub now: OffsetDateTime,
    /// `approval.approve` or `approval.deny`; the store adds the details.
    pub event: NewAuditEvent,
    /// The notices to the requester, given the decided request and the e-mail address of the
    /// person it was made for (when that person is a user of the tenant with an address).
    pub notices: NoticesFn,
}

/// Makes the notices of a decision (see [`Decision::notices`]).
pub type NoticesFn = Box<dyn FnOnce(&ApprovalRequest, Option<String>) -> Vec<Notification> + Send>;

/// `SELECT` every request column with the account's and the application's names.
macro_rules! select_requests {
    () => {
        "SELECT r.id, r.tenant_id, r.account_id, a.name AS account_name, r.requester_kind, r.requester_id, \
         COALESCE(ap.name, '') AS requester_name, r.on_behalf_of, r.reason, r.state, r.created_at, r.decided_by, \
         r.decided_at, r.comment, r.valid_until, r.views FROM approval_requests r \
         JOIN accounts a ON a.id = r.account_id \
         LEFT JOIN applications ap ON ap.id = r.requester_id"
    };
}

impl Store {
    /// A tenant's requests, newest first, optionally in one state.
    pub async fn list_approvals(
        &self,
        tenant_id: &str,
        state: Option<ApprovalState>,
        limit: i64,
    ) -> Result<Vec<ApprovalRequest>, StoreError> {
        sqlx::query(concat!(
            select_requests!(),
            " WHERE r.tenant_id = $1 AND ($2 = '' OR r.state = $2) ORDER BY r.created_at DESC, r.id DESC LIMIT $3"
        ))
        .bind(tenant_id.to_owned())
        .bind(state.map(|s| s.as_str()).unwrap_or_default())
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await
        .map_err(StoreError::db)?
        .iter()
        .map(request_from_row)
        .collect()
    }

    /// One request of a tenant.
    pub async fn approval(&self, tenant_id: &str, id: &str) -> Result<ApprovalRequest, StoreError> {
        let row = sqlx::query(concat!(select_requests!(), " WHERE r.tenant_id = $1 AND r.id = $2"))
            .bind(tenant_id.to_owned())
            .bind(id.to_owned())
            .fetch_optional(&self.read)
            .await
            .map_err(StoreError::db)?
            .ok_or(StoreError::NotFound)?;
        request_from_row(&row)
    }

    /// Approve or deny a pending request, with its audit event and the notices to the
    /// requester in the same transaction. An approval allows views for the account policy's
    /// confirmation timeout from now. `Conflict` when the request is no longer pending.
    pub async fn decide_approval(&self, d: Decision) -> Result<ApprovalRequest, StoreError> {
        self.writer
            .change_audited(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(concat!(select_requests!(), " WHERE r.tenant_id = $1 AND r.id = $2"))
                        .bind(d.tenant_id.clone())
                        .bind(d.approval_id.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .ok_or(StoreError::NotFound)?;
                    let mut request = request_from_row(&row)?;
                    if request.state != ApprovalState::Pending {
                        return Err(StoreError::Conflict("the request is no longer pending"));
                    }
                    let timeout = sqlx::query(
                        "SELECT p.confirmation_timeout_secs FROM account_policies p \
                         JOIN account_policy_links l ON l.policy_id = p.id WHERE l.account_id = $1",
                    )
                    .bind(request.account_id.clone())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db)?
                    .map(|r| get::<i64>(&r, "confirmation_timeout_secs"))
                    .transpose()?
                    .unwrap_or(0);
                    let (state, valid_until) = if d.approve {
                        (ApprovalState::Approved, Some(d.now + time::Duration::seconds(timeout)))
                    } else {
                        (ApprovalState::Denied, None)
                    };
                    sqlx::query(
                        "UPDATE approval_requests SET state = $1, decided_by = $2, decided_at = $3, comment = $4, \
                         valid_until = $5 WHERE id = $6 AND state = 'pending'",
                    )
                    .bind(state.as_str())
                    .bind(d.decided_by.clone())
                    .bind(to_millis(d.now))
                    .bind(d.comment.clone())
                    .bind(valid_until.map(to_millis))
                    .bind(request.id.clone())
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db)?;
                    request.state = state;
                    request.decided_by = Some(d.decided_by);
                    request.decided_at = Some(d.now);
                    request.comment = d.comment;
                    request.valid_until = valid_until;
                    let email = sqlx::query("SELECT email FROM users WHERE tenant_id = $1 AND id = $2")
                        .bind(d.tenant_id.clone())
                        .bind(request.on_behalf_of.clone())
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(StoreError::db)?
                        .map(|r| get::<Option<String>>(&r, "email"))
                        .transpose()?
                        .flatten();
                    let notices = (d.notices)(&request, email);
                    crate::outbox::enqueue(conn, Some(&d.tenant_id), &notices, d.now).await?;
                    let event = d.event.object(request.id.clone()).details(&serde_json::json!({
                        "account": request.account_id,
                        "requester": request.requester_id,
                        "onBehalfOf": request.on_behalf_of,
                        "validUntil": valid_until.map(to_millis),
                    }));
                    Ok((request, vec![event]))
                })
            })
            .await
    }
}

/// The newest request of an application for an account on behalf of a person in one of
/// `states`, inside the caller's transaction.
pub(crate) async fn latest_request(
    conn: &mut AnyConnection,
    account_id: &str,
    requester_id: &str,
    on_behalf_of: &str,
    state: ApprovalState,
) -> Result<Option<ApprovalRequest>, StoreError> {
    sqlx::query(concat!(
        select_requests!(),
        " WHERE r.account_id = $1 AND r.requester_id = $2 AND r.on_behalf_of = $3 AND r.state = $4 \
         ORDER BY r.created_at DESC, r.id DESC LIMIT 1"
    ))
    .bind(account_id.to_owned())
    .bind(requester_id.to_owned())
    .bind(on_behalf_of.to_owned())
    .bind(state.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db)?
    .as_ref()
    .map(request_from_row)
    .transpose()
}

/// Close an approval whose time ran out: `used` when it was viewed, else `expired`.
pub(crate) async fn close_request(conn: &mut AnyConnection, r: &ApprovalRequest) -> Result<(), StoreError> {
    let state = if r.views > 0 { ApprovalState::Used } else { ApprovalState::Expired };
    sqlx::query("UPDATE approval_requests SET state = $1 WHERE id = $2 AND state = 'approved'")
        .bind(state.as_str())
        .bind(r.id.clone())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)
        .map(|_| ())
}

/// Count one view under an approval.
pub(crate) async fn count_view(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE approval_requests SET views = views + 1 WHERE id = $1")
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db)
        .map(|_| ())
}

/// Insert a pending request by an application; returns its id.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_request(
    conn: &mut AnyConnection,
    tenant_id: &str,
    account_id: &str,
    requester_id: &str,
    on_behalf_of: &str,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO approval_requests (id, tenant_id, account_id, requester_kind, requester_id, on_behalf_of, \
         reason, state, created_at) VALUES ($1, $2, $3, 'application', $4, $5, $6, 'pending', $7)",
    )
    .bind(id.clone())
    .bind(tenant_id.to_owned())
    .bind(account_id.to_owned())
    .bind(requester_id.to_owned())
    .bind(on_behalf_of.to_owned())
    .bind(reason.map(str::to_owned))
    .bind(to_millis(now))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db)?;
    Ok(id)
}

fn request_from_row(row: &AnyRow) -> Result<ApprovalRequest, StoreError> {
    let state: String = get(row, "state")?;
    Ok(ApprovalRequest {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        account_id: get(row, "account_id")?,
        account_name: get(row, "account_name")?,
        requester_kind: get(row, "requester_kind")?,
        requester_id: get(row, "requester_id")?,
        requester_name: get(row, "requester_name")?,
        on_behalf_of: get(row, "on_behalf_of")?,
        reason: get(row, "reason")?,
        state: ApprovalState::parse(&state).ok_or(StoreError::Corrupt("state"))?,
        created_at: time(row, "created_at")?,
        decided_by: get(row, "decided_by")?,
        decided_at: opt_time(row, "decided_at")?,
        comment: get(row, "comment")?,
        valid_until: opt_time(row, "valid_until")?,
        views: get(row, "views")?,
    })
}
