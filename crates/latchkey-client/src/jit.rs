//! Just-in-time admin elevation and built-in tickets.

use latchkey_proto as proto;
use reqwest::Method;

use crate::{Client, Result, seg};

impl Client {
    /// Ask for admin access; the answer holds the temporary password, this once.
    pub async fn request_jit(&self, tenant: &str, req: &proto::JitRequest) -> Result<proto::JitGrantCreated> {
        self.call(Method::POST, &format!("/api/v1/tenants/{}/jit/grants", seg(tenant)), Some(req)).await
    }

    /// Grants, newest first (admins: the tenant's; people: their own).
    pub async fn list_jit(&self, tenant: &str) -> Result<proto::JitGrantList> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/jit/grants", seg(tenant)), None).await
    }

    /// One grant.
    pub async fn jit_grant(&self, tenant: &str, id: &str) -> Result<proto::JitGrant> {
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/jit/grants/{}", seg(tenant), seg(id)), None).await
    }

    async fn jit_action(&self, tenant: &str, id: &str, action: &str) -> Result<proto::JitGrant> {
        let path = format!("/api/v1/tenants/{}/jit/grants/{}/{action}", seg(tenant), seg(id));
        self.call::<(), _>(Method::POST, &path, None).await
    }

    /// Approve a request (not one's own).
    pub async fn approve_jit(&self, tenant: &str, id: &str) -> Result<proto::JitGrant> {
        self.jit_action(tenant, id, "approve").await
    }

    /// Deny a request (not one's own).
    pub async fn deny_jit(&self, tenant: &str, id: &str) -> Result<proto::JitGrant> {
        self.jit_action(tenant, id, "deny").await
    }

    /// End a grant now.
    pub async fn revoke_jit(&self, tenant: &str, id: &str) -> Result<proto::JitGrant> {
        self.jit_action(tenant, id, "revoke").await
    }

    /// Move a grant's end later by `minutes`.
    pub async fn extend_jit(&self, tenant: &str, id: &str, minutes: i64) -> Result<proto::JitGrant> {
        let path = format!("/api/v1/tenants/{}/jit/grants/{}/extend", seg(tenant), seg(id));
        self.call(Method::POST, &path, Some(&proto::JitExtendRequest { minutes })).await
    }

    /// Recover a grant's temporary password (admins; audited with the reason).
    pub async fn recover_jit_password(&self, tenant: &str, id: &str, reason: &str) -> Result<proto::JitPassword> {
        let path = format!("/api/v1/tenants/{}/jit/grants/{}/password/recover", seg(tenant), seg(id));
        self.call(Method::POST, &path, Some(&proto::JitPasswordRecoverRequest { reason: reason.to_owned() })).await
    }

    /// Open a built-in ticket.
    pub async fn create_ticket(&self, tenant: &str, title: &str) -> Result<proto::Ticket> {
        let body = proto::TicketCreateRequest { title: title.to_owned() };
        self.call(Method::POST, &format!("/api/v1/tenants/{}/tickets", seg(tenant)), Some(&body)).await
    }

    /// Built-in tickets, newest first; only open ones when `open_only`.
    pub async fn list_tickets(&self, tenant: &str, open_only: bool) -> Result<proto::TicketList> {
        let q = if open_only { "?open=true" } else { "" };
        self.call::<(), _>(Method::GET, &format!("/api/v1/tenants/{}/tickets{q}", seg(tenant)), None).await
    }

    /// Close a built-in ticket.
    pub async fn close_ticket(&self, tenant: &str, number: i64) -> Result<proto::Ticket> {
        self.call::<(), _>(Method::POST, &format!("/api/v1/tenants/{}/tickets/{number}/close", seg(tenant)), None).await
    }

    /// The comments written to a ticket.
    pub async fn ticket_comments(&self, tenant: &str, ticket: &str) -> Result<proto::TicketCommentList> {
        let path = format!("/api/v1/tenants/{}/tickets/{}/comments", seg(tenant), seg(ticket));
        self.call::<(), _>(Method::GET, &path, None).await
    }
}
