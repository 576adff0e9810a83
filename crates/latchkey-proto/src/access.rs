//! Access targets, decisions and the Lithnet import.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Who is told about reads through a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetAudit {
    /// Send mail after a successful read (default true).
    #[serde(default = "yes")]
    pub email_on_success: bool,
    /// Send mail after a denied or failed read (default true).
    #[serde(default = "yes")]
    pub email_on_failure: bool,
    /// Who receives the mail.
    #[serde(default)]
    pub email_addresses: Vec<String>,
}

impl Default for TargetAudit {
    fn default() -> Self {
        Self { email_on_success: true, email_on_failure: true, email_addresses: Vec::new() }
    }
}

fn yes() -> bool {
    true
}

/// A target to create or replace.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    /// `Computer`, `Group` or `Container`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A computer name, a group name or a container DN.
    pub name: String,
    /// How long a password stays valid after it was read, as a .NET TimeSpan (`6` = 6 days,
    /// `6:12` = 6 h 12 min, `1.00:00:00` = 1 day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<String>,
    /// Users or groups: `DOMAIN\name`, `name@upn` or `name`.
    #[serde(default)]
    pub readers: Vec<String>,
    /// What readers may do: `password`, `history`, `support-account` (default `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<String>>,
    #[serde(default)]
    pub audit: TargetAudit,
    /// Disabled targets are kept in the list and never match (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Place in the list, from 1 (on create; default: the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

/// A reader as written and as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetReader {
    pub principal: String,
    /// `user` or `group`.
    pub kind: String,
    pub id: String,
}

/// A stored target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    pub id: String,
    pub position: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// TimeSpan "c" format, e.g. `6.00:00:00`.
    pub expire_after: Option<String>,
    pub readers: Vec<TargetReader>,
    pub grants: Vec<String>,
    pub audit: TargetAudit,
    pub enabled: bool,
    pub description: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// Move a target to another place in the list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetMove {
    /// From 1; beyond the end means the end.
    pub position: i64,
}

/// A target as the answer names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub id: String,
    pub position: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

/// Which target decides a user's access to a device, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessExplanation {
    pub allowed: bool,
    /// `password`, `history` or `support-account`.
    pub operation: String,
    pub user_id: String,
    pub user_name: String,
    pub device_id: String,
    pub device_name: String,
    /// The target that decides, if any matches.
    pub target: Option<TargetRef>,
    /// How the target matched: the computer name, a group the device is in, or a container.
    pub matched_by: Option<String>,
    /// How the user is a reader of the target, if they are.
    pub reader_by: Option<String>,
    /// Why access is denied.
    pub denied_because: Option<String>,
    /// The whole answer as one sentence.
    pub summary: String,
}

/// Who may read a device's password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoCanRead {
    pub device_id: String,
    pub device_name: String,
    /// The target that decides; no target means nobody.
    pub target: Option<TargetRef>,
    pub matched_by: Option<String>,
    /// The target's readers (groups count with every nested member).
    pub readers: Vec<TargetReader>,
    /// What the readers may do.
    pub grants: Vec<String>,
}

/// Import the `<targets>` of a Lithnet LAPS web.config.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LithnetImportRequest {
    /// The whole web.config text.
    pub web_config: String,
    /// Report what would be imported and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Replace the tenant's targets instead of appending.
    #[serde(default)]
    pub replace: bool,
}

/// One target found in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportedTarget {
    /// Line of the `<target>` element.
    pub line: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub expire_after: Option<String>,
    pub readers: Vec<String>,
    pub audit: TargetAudit,
    /// The stored target (absent in a dry run or when the import was refused).
    pub id: Option<String>,
}

/// A problem that stops the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportProblem {
    pub line: u32,
    pub message: String,
}

/// What an import found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LithnetImportReport {
    pub dry_run: bool,
    /// Whether the targets were stored.
    pub imported: bool,
    pub targets: Vec<ImportedTarget>,
    /// Empty unless the import was refused.
    pub problems: Vec<ImportProblem>,
}
