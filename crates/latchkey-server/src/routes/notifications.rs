//! The notification outbox of a tenant, for admins: recent notices, their channel and how
//! delivery went. Metadata and subject only.

use axum::Json;
use axum::extract::{Path, State};
use latchkey_core::clock::{from_millis, to_millis};
use latchkey_core::{Channel, Notification};
use latchkey_proto as proto;
use latchkey_store::OutboxEntry;
use serde::Deserialize;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

/// Paging of the outbox, newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    /// Most items to return (1–1000, default 100).
    pub limit: Option<i64>,
    /// The `next` value of the previous page.
    pub after: Option<String>,
}

/// Recent notifications of a tenant, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/notifications", tag = "notifications", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), NotificationsQuery),
    responses((status = 200, body = proto::ListResponse<proto::OutboxNotification>), (status = 400, body = proto::Problem),
        (status = 404, body = proto::Problem)))]
pub async fn list_notifications(
    State(state): State<AppState>,
    admin: Admin,
    Path(tenant): Path<String>,
    ApiQuery(q): ApiQuery<NotificationsQuery>,
) -> Result<Json<proto::ListResponse<proto::OutboxNotification>>, ApiError> {
    let tenant = admin.tenant(&state, &tenant).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_param("limit must be between 1 and 1000"));
    }
    let cursor = q.after.as_deref().map(parse_cursor).transpose()?;
    let rows = state
        .store()
        .list_notifications(Some(&tenant.id), cursor.as_ref().map(|(ms, id)| (from_millis(*ms), id.as_str())), limit)
        .await
        .map_err(|e| ApiError::store("notification", e))?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(cursor_of)).flatten();
    Ok(Json(proto::ListResponse { items: rows.into_iter().map(entry).collect(), next }))
}

/// `<created ms>_<id>` of a row: where the next page starts.
fn cursor_of(row: &OutboxEntry) -> String {
    format!("{}_{}", to_millis(row.created_at), row.id)
}

fn parse_cursor(raw: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::bad_param("after must be the `next` value of a previous page");
    let (ms, id) = raw.split_once('_').ok_or_else(bad)?;
    let ms: i64 = ms.parse().map_err(|_| bad())?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(bad());
    }
    Ok((ms, id.to_owned()))
}

fn entry(row: OutboxEntry) -> proto::OutboxNotification {
    let notice = Notification::from_payload(&row.payload).ok();
    let state = match (row.delivered_at, &row.last_error) {
        (None, _) => proto::NotificationState::Pending,
        (Some(_), None) => proto::NotificationState::Delivered,
        (Some(_), Some(_)) => proto::NotificationState::Dropped,
    };
    let channel = match row.channel {
        Channel::Email => proto::NotificationChannel::Email,
        Channel::Webhook => proto::NotificationChannel::Webhook,
    };
    let recipients = match (row.channel, &notice) {
        (Channel::Email, Some(n)) => n.recipients().iter().map(|r| r.as_str().to_owned()).collect(),
        _ => Vec::new(),
    };
    proto::OutboxNotification {
        id: row.id,
        channel,
        state,
        event: notice.as_ref().map(|n| n.event_name().to_owned()),
        subject: notice.as_ref().map(Notification::subject),
        recipients,
        created_at: row.created_at,
        attempts: row.attempts,
        next_attempt_at: row.delivered_at.is_none().then_some(row.next_attempt_at),
        finished_at: row.delivered_at,
        last_error: row.last_error,
    }
}
