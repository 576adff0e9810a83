//! `latchkey directory …`: sync a tenant's LDAP / Active Directory directory and see how the
//! recent syncs went.

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Sync the tenant's directory now (users, groups with members, computers).
    Sync,
    /// The tenant's directory and its recent sync runs.
    Status,
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: DirectoryCommand) -> Result<(), String> {
    match cmd {
        DirectoryCommand::Sync => {
            let run = ctx.client.directory_sync(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&run);
            }
            let c = &run.counts;
            print_fields(&[
                ("run", run.id.clone()),
                ("tenant", run.tenant.clone()),
                ("outcome", outcome(run.outcome).to_owned()),
                ("started", output::time(run.started_at)),
                ("finished", output::time(run.finished_at)),
                ("users", kind(&c.users)),
                ("groups", kind(&c.groups)),
                ("devices", kind(&c.devices)),
                ("memberships", format!("+{} -{}", c.memberships_added, c.memberships_removed)),
                ("ignored members", c.ignored_members.to_string()),
            ])
        }
        DirectoryCommand::Status => {
            let status = ctx.client.directory_sync_status(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&status);
            }
            match (&status.url, status.interval_minutes) {
                (Some(url), Some(minutes)) => outln!("directory {url}, synced every {minutes} min")?,
                _ => outln!("no directory is configured for tenant {}", status.tenant)?,
            }
            let rows = status
                .runs
                .into_iter()
                .map(|r| {
                    vec![
                        output::time(r.started_at),
                        outcome(r.outcome).to_owned(),
                        kind(&r.counts.users),
                        kind(&r.counts.groups),
                        kind(&r.counts.devices),
                        format!("+{} -{}", r.counts.memberships_added, r.counts.memberships_removed),
                        opt(r.error.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &["STARTED", "OUTCOME", "USERS", "GROUPS", "DEVICES", "MEMBERSHIPS", "ERROR"],
                rows,
                &format!("no directory sync has run for tenant {tenant}"),
            )
        }
    }
}

fn outcome(o: proto::DirectorySyncOutcome) -> &'static str {
    match o {
        proto::DirectorySyncOutcome::Success => "success",
        proto::DirectorySyncOutcome::Failed => "failed",
    }
}

/// `12 (+1 ~2 -0)`: objects in the directory, then created, updated and deleted.
fn kind(k: &proto::DirectoryObjectCounts) -> String {
    format!("{} (+{} ~{} -{})", k.total, k.created, k.updated, k.deleted)
}
