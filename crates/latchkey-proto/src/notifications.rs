//! The notification outbox as admins see it: what was queued, over which channel, and how
//! delivery went. Metadata and subject only; a notice never holds a secret.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// How a notice is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationChannel {
    Email,
    Webhook,
}

/// Where a notice stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    /// Not delivered yet; retried with backoff.
    Pending,
    /// Delivered.
    Delivered,
    /// Finished without delivery (nothing configured for the channel, or given up); see
    /// `lastError`.
    Dropped,
}

/// One queued notice on one channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxNotification {
    pub id: String,
    pub channel: NotificationChannel,
    pub state: NotificationState,
    /// e.g. `password.read`; absent when the stored notice cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The e-mail subject (also given for webhooks, as a summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// E-mail recipients (e-mail rows only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due (pending rows only).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When it was delivered or dropped.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    /// Why the last attempt failed, or why the notice was dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
