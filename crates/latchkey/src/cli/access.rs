//! `latchkey access …`: the ordered access targets, "explain" and "who can read", and
//! `latchkey import lithnet-targets`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// The tenant's targets in the order they are considered within their type.
    List,
    /// Add a target (at the end, or at --position).
    Add {
        #[command(flatten)]
        target: TargetArgs,
        /// Place in the list, from 1.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        position: Option<i64>,
    },
    /// Replace a target's settings and readers (its place stays).
    Set {
        /// The target's id.
        id: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Move a target to another place in the list.
    Move {
        /// The target's id.
        id: String,
        /// The new place, from 1.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        position: i64,
    },
    /// Delete a target.
    Remove {
        /// The target's id.
        id: String,
    },
    /// Which target decides whether a user may read a device's password, and why.
    Explain {
        /// The user: `DOMAIN\name`, `name@upn`, name or id.
        #[arg(long)]
        user: String,
        /// The device: name or deviceId.
        #[arg(long)]
        device: String,
        /// password, history or support-account.
        #[arg(long, default_value = "password")]
        operation: String,
    },
    /// The readers of the target that decides access to a device.
    WhoCanRead {
        /// The device: name or deviceId.
        device: String,
    },
}

/// A target's settings.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Computer, Group or Container.
    #[arg(long = "type", value_name = "TYPE")]
    kind: String,
    /// A computer name, a group name or a container DN.
    #[arg(long)]
    name: String,
    /// A reader (user or group): `DOMAIN\name`, `name@upn` or name; repeat for more.
    #[arg(long = "reader", value_name = "PRINCIPAL")]
    readers: Vec<String>,
    /// How long a password stays valid after it was read, as a .NET TimeSpan (`6` = 6 days,
    /// `6:12` = 6 h 12 min).
    #[arg(long, value_name = "TIMESPAN")]
    expire_after: Option<String>,
    /// What readers may do: password, history, support-account; repeat for more
    /// [default: password].
    #[arg(long = "grant", value_name = "OPERATION")]
    grants: Vec<String>,
    /// Who is mailed about reads; repeat for more.
    #[arg(long = "email", value_name = "ADDRESS")]
    emails: Vec<String>,
    /// Do not mail successful reads.
    #[arg(long)]
    no_email_on_success: bool,
    /// Do not mail denied or failed reads.
    #[arg(long)]
    no_email_on_failure: bool,
    /// Keep the target in the list without it matching.
    #[arg(long)]
    disabled: bool,
    #[arg(long)]
    description: Option<String>,
}

impl TargetArgs {
    fn spec(self, position: Option<i64>) -> proto::TargetSpec {
        proto::TargetSpec {
            kind: self.kind,
            name: self.name,
            expire_after: self.expire_after,
            readers: self.readers,
            grants: (!self.grants.is_empty()).then_some(self.grants),
            audit: proto::TargetAudit {
                email_on_success: !self.no_email_on_success,
                email_on_failure: !self.no_email_on_failure,
                email_addresses: self.emails,
            },
            enabled: !self.disabled,
            description: self.description,
            position,
        }
    }
}

/// `latchkey import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import the `<lithnet-laps><targets>` of a Lithnet LAPS web app's web.config, in order.
    /// Every problem is reported with its line, and then nothing is imported.
    LithnetTargets {
        /// The web.config file.
        file: PathBuf,
        /// Report what would be imported and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace the tenant's targets instead of appending.
        #[arg(long)]
        replace: bool,
    },
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: AccessCommand) -> Result<(), String> {
    let c = &ctx.client;
    match cmd {
        AccessCommand::List => {
            let list = c.list_targets(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list.items.iter().map(row).collect();
            print_table(
                &["#", "TYPE", "NAME", "READERS", "EXPIRE AFTER", "GRANTS", "ENABLED", "ID"],
                rows,
                "no targets",
            )
        }
        AccessCommand::Add { target, position } => {
            show(ctx, c.create_target(tenant, &target.spec(position)).await.map_err(|e| ctx.err(e))?)
        }
        AccessCommand::Set { id, target } => {
            show(ctx, c.replace_target(tenant, &id, &target.spec(None)).await.map_err(|e| ctx.err(e))?)
        }
        AccessCommand::Move { id, position } => {
            show(ctx, c.move_target(tenant, &id, position).await.map_err(|e| ctx.err(e))?)
        }
        AccessCommand::Remove { id } => {
            c.delete_target(tenant, &id).await.map_err(|e| ctx.err(e))?;
            if ctx.json { print_json(&serde_json::json!({ "deleted": id })) } else { outln!("deleted target {id}") }
        }
        AccessCommand::Explain { user, device, operation } => {
            let e = c.explain_access(tenant, &user, &device, Some(&operation)).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&e);
            }
            let target = e.target.as_ref().map(|t| format!("#{} {} {}", t.position, t.kind, t.name));
            print_fields(&[
                ("decision", if e.allowed { "allowed".into() } else { "denied".into() }),
                ("user", e.user_name.clone()),
                ("device", e.device_name.clone()),
                ("operation", e.operation.clone()),
                ("target", output::opt(target.as_deref())),
                ("matched because", output::opt(e.matched_by.as_deref())),
                ("reader because", output::opt(e.reader_by.as_deref())),
                ("denied because", output::opt(e.denied_because.as_deref())),
                ("summary", e.summary.clone()),
            ])
        }
        AccessCommand::WhoCanRead { device } => {
            let w = c.who_can_read(tenant, &device).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&w);
            }
            match &w.target {
                None => outln!("nobody: no target matches {}", w.device_name),
                Some(t) => {
                    outln!(
                        "{}: target #{} {} `{}` ({}); grants {}",
                        w.device_name,
                        t.position,
                        t.kind,
                        t.name,
                        output::opt(w.matched_by.as_deref()),
                        w.grants.join(", ")
                    )?;
                    let rows =
                        w.readers.iter().map(|r| vec![r.principal.clone(), r.kind.clone(), r.id.clone()]).collect();
                    print_table(&["READER", "KIND", "ID"], rows, "the target lists no readers")
                }
            }
        }
    }
}

pub async fn import(ctx: &Ctx, tenant: &str, cmd: ImportCommand) -> Result<(), String> {
    let ImportCommand::LithnetTargets { file, dry_run, replace } = cmd;
    let web_config = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let body = proto::LithnetImportRequest { web_config, dry_run, replace };
    let report = ctx.client.import_lithnet(tenant, &body).await.map_err(|e| ctx.err(e))?;
    if ctx.json {
        print_json(&report)?;
    } else {
        for t in &report.targets {
            let expire = t.expire_after.as_deref().map(|e| format!(", expire after {e}")).unwrap_or_default();
            outln!("line {}: {} `{}` readers [{}]{expire}", t.line, t.kind, t.name, t.readers.join(", "))?;
        }
        for p in &report.problems {
            outln!("line {}: error: {}", p.line, p.message)?;
        }
    }
    match (report.problems.is_empty(), report.imported) {
        (false, _) => Err(format!("{}: {} problem(s); nothing was imported", file.display(), report.problems.len())),
        (true, true) if !ctx.json => outln!("imported {} target(s)", report.targets.len()),
        (true, false) if !ctx.json => outln!("dry run: {} target(s) would be imported", report.targets.len()),
        _ => Ok(()),
    }
}

fn row(t: &proto::TargetView) -> Vec<String> {
    vec![
        t.position.to_string(),
        t.kind.clone(),
        t.name.clone(),
        t.readers.iter().map(|r| r.principal.as_str()).collect::<Vec<_>>().join(", "),
        output::opt(t.expire_after.as_deref()),
        t.grants.join(","),
        output::yes_no(t.enabled),
        t.id.clone(),
    ]
}

fn show(ctx: &Ctx, t: proto::TargetView) -> Result<(), String> {
    if ctx.json {
        return print_json(&t);
    }
    print_table(&["#", "TYPE", "NAME", "READERS", "EXPIRE AFTER", "GRANTS", "ENABLED", "ID"], vec![row(&t)], "")
}
