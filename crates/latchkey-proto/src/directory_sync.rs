//! Directory sync: the record of a sync run and a tenant's sync status.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// How a sync run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirectorySyncOutcome {
    Success,
    Failed,
}

/// Objects of one kind a sync run saw and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryObjectCounts {
    /// Objects of this kind in the directory.
    pub total: u64,
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
}

/// What a sync run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySyncCounts {
    pub users: DirectoryObjectCounts,
    pub groups: DirectoryObjectCounts,
    /// Directory computers, kept as devices.
    pub devices: DirectoryObjectCounts,
    pub memberships_added: u64,
    pub memberships_removed: u64,
    /// Group members outside the synced users, groups and computers (left out).
    pub ignored_members: u64,
}

/// One directory sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySyncRun {
    pub id: String,
    /// The tenant's slug.
    pub tenant: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: OffsetDateTime,
    pub outcome: DirectorySyncOutcome,
    pub counts: DirectorySyncCounts,
    /// Why the run failed (the last good data was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A tenant's directory: whether one is configured, and its recent sync runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySyncStatus {
    /// The tenant's slug.
    pub tenant: String,
    /// Whether the server has a directory configured for this tenant.
    pub configured: bool,
    /// The directory's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Minutes between scheduled syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_minutes: Option<u64>,
    /// The most recent runs, newest first.
    pub runs: Vec<DirectorySyncRun>,
}
