//! Built-in tickets: open, list, close, and read the comments written to a ticket (built-in
//! or PSA).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_core::{Action, ObjectType};
use latchkey_proto as proto;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

fn ticket_dto(t: &latchkey_store::Ticket) -> proto::Ticket {
    proto::Ticket {
        number: t.number,
        title: t.title.clone(),
        open: t.open,
        created_by: t.created_by.clone(),
        created_at: t.created_at,
        closed_at: t.closed_at,
    }
}

fn number(raw: &str) -> Result<i64, ApiError> {
    raw.trim().trim_start_matches('#').parse().map_err(|_| ApiError::bad_param("a ticket number is a whole number"))
}

/// Open a built-in ticket.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets", tag = "tickets", request_body = proto::TicketCreateRequest,
    security(("bearer" = [])), params(("tenant" = String, Path, description = "tenant slug")),
    responses((status = 201, body = proto::Ticket), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem)))]
pub async fn create_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<proto::TicketCreateRequest>,
) -> Result<(StatusCode, Json<proto::Ticket>), ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let title = body.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::invalid("title is required (at most 200 characters)"));
    }
    let event = caller.event(&state, Action::TicketCreate, ObjectType::Ticket).tenant(tenant.id.clone());
    let by = match &caller {
        Caller::Admin(a) => a.actor(),
        Caller::User(u) => u.actor(),
    };
    let now = state.clock().now();
    let t = state
        .store()
        .create_ticket(&tenant.id, title, &by, now, event)
        .await
        .map_err(|e| ApiError::store("ticket", e))?;
    Ok((StatusCode::CREATED, Json(ticket_dto(&t))))
}

/// Which tickets to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketsQuery {
    /// Only open tickets.
    #[serde(default)]
    pub open: Option<bool>,
}

/// Built-in tickets, newest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets", tag = "tickets", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), TicketsQuery),
    responses((status = 200, body = proto::TicketList), (status = 404, body = proto::Problem)))]
pub async fn list_tickets(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    ApiQuery(q): ApiQuery<TicketsQuery>,
) -> Result<Json<proto::TicketList>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let tickets = state
        .store()
        .list_tickets(&tenant.id, q.open.unwrap_or(false), 1000)
        .await
        .map_err(|e| ApiError::store("ticket", e))?;
    Ok(Json(proto::TicketList { tickets: tickets.iter().map(ticket_dto).collect() }))
}

/// Close a built-in ticket; closing it twice is a conflict.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{number}/close", tag = "tickets", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("number" = String, Path, description = "ticket number")),
    responses((status = 200, body = proto::Ticket), (status = 400, body = proto::Problem), (status = 404, body = proto::Problem),
        (status = 409, body = proto::Problem)))]
pub async fn close_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, raw)): Path<(String, String)>,
) -> Result<Json<proto::Ticket>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let n = number(&raw)?;
    let mut event = caller.event(&state, Action::TicketClose, ObjectType::Ticket).tenant(tenant.id.clone());
    event.ticket = Some(n.to_string());
    let now = state.clock().now();
    let t = state.store().close_ticket(&tenant.id, n, now, event).await.map_err(|e| ApiError::store("ticket", e))?;
    Ok(Json(ticket_dto(&t)))
}

/// The comments written to a ticket (by number or PSA reference), oldest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets/{number}/comments", tag = "tickets", security(("bearer" = [])),
    params(("tenant" = String, Path, description = "tenant slug"), ("number" = String, Path, description = "ticket as named in grants")),
    responses((status = 200, body = proto::TicketCommentList), (status = 404, body = proto::Problem)))]
pub async fn list_ticket_comments(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, ticket)): Path<(String, String)>,
) -> Result<Json<proto::TicketCommentList>, ApiError> {
    let tenant = caller.tenant(&state, &tenant).await?;
    let comments =
        state.store().ticket_comments(&tenant.id, &ticket).await.map_err(|e| ApiError::store("ticket", e))?;
    Ok(Json(proto::TicketCommentList {
        comments: comments
            .into_iter()
            .map(|c| proto::TicketComment {
                ticket: c.ticket,
                grant_id: c.grant_id,
                adapter: c.adapter,
                body: c.body,
                created_at: c.created_at,
                delivered: c.delivered_at.is_some(),
                attempts: c.attempts,
                last_error: c.last_error,
            })
            .collect(),
    }))
}
