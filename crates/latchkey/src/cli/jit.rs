//! `latchkey jit …`: just-in-time admin elevation.

use clap::{Subcommand, ValueEnum};
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, print_fields, print_json, print_table, yes_no};

/// What grants the access.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProviderArg {
    /// Domain Admins (or the policy's group) in the tenant's Active Directory.
    Directory,
    /// Local administrators of a device, through its agent.
    Device,
}

#[derive(Debug, Subcommand)]
pub enum JitCommand {
    /// Ask for admin access; prints the temporary password once.
    Request {
        #[arg(long, value_enum)]
        provider: ProviderArg,
        /// The open ticket the work belongs to.
        #[arg(long)]
        ticket: String,
        /// How long, in minutes (within the tenant's policy).
        #[arg(long)]
        minutes: i64,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// The device (deviceId), for the device provider.
        #[arg(long, value_name = "DEVICE_ID")]
        device: Option<String>,
        /// With an admin token: the person the access is for.
        #[arg(long)]
        requester: Option<String>,
    },
    /// List grants (admins: the tenant's; people: their own).
    List,
    /// Show one grant.
    Show { grant: String },
    /// Approve a request (not your own).
    Approve { grant: String },
    /// Deny a request (not your own).
    Deny { grant: String },
    /// End a grant now.
    Revoke { grant: String },
    /// Move a grant's end later (within the policy's maximum).
    Extend {
        grant: String,
        /// Minutes added to the current end.
        #[arg(long)]
        minutes: i64,
    },
    /// Show a grant's temporary password again (admins only; audited with the reason).
    RecoverPassword {
        grant: String,
        #[arg(long)]
        reason: String,
    },
}

fn fields(g: &proto::JitGrant) -> Vec<(&'static str, String)> {
    vec![
        ("id", g.id.clone()),
        ("state", if g.expired && g.state != "revoked" { format!("{} (expired)", g.state) } else { g.state.clone() }),
        ("provider", g.provider.clone()),
        ("account", g.account.clone()),
        ("requester", g.requester.clone()),
        ("device", opt(g.device_id.as_deref())),
        ("ticket", g.ticket.clone()),
        ("reason", g.reason.clone()),
        ("minutes", g.minutes.to_string()),
        ("approver", opt(g.approver.as_deref())),
        ("created", output::time(g.created_at)),
        ("started", output::opt_time(g.start_at)),
        ("ends", output::time(g.end_at)),
        ("revoked", output::opt_time(g.revoked_at)),
        ("attempts", g.attempts.to_string()),
        ("last error", opt(g.last_error.as_deref())),
        ("overdue", yes_no(g.overdue)),
    ]
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: JitCommand) -> Result<(), String> {
    let c = &ctx.client;
    let grant = match cmd {
        JitCommand::Request { provider, ticket, minutes, reason, device, requester } => {
            let provider = match provider {
                ProviderArg::Directory => "directory",
                ProviderArg::Device => "device",
            };
            let req =
                proto::JitRequest { provider: provider.into(), ticket, minutes, reason, device_id: device, requester };
            let created = c.request_jit(tenant, &req).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&created);
            }
            print_fields(&fields(&created.grant))?;
            outln!("")?;
            outln!("account:  {}", created.grant.account)?;
            outln!("password: {}", created.password)?;
            return outln!("Copy the password now: it is shown only this once.");
        }
        JitCommand::List => {
            let list = c.list_jit(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .grants
                .into_iter()
                .map(|g| {
                    let state =
                        if g.expired && g.state != "revoked" { format!("{} (expired)", g.state) } else { g.state };
                    vec![g.id, state, g.provider, g.account, g.ticket, output::time(g.end_at)]
                })
                .collect();
            return print_table(
                &["ID", "STATE", "PROVIDER", "ACCOUNT", "TICKET", "ENDS"],
                rows,
                &format!("no grants in tenant {tenant}"),
            );
        }
        JitCommand::RecoverPassword { grant, reason } => {
            let p = c.recover_jit_password(tenant, &grant, &reason).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&p);
            }
            outln!("account:  {}", p.account)?;
            return outln!("password: {}", p.password);
        }
        JitCommand::Show { grant } => c.jit_grant(tenant, &grant).await,
        JitCommand::Approve { grant } => c.approve_jit(tenant, &grant).await,
        JitCommand::Deny { grant } => c.deny_jit(tenant, &grant).await,
        JitCommand::Revoke { grant } => c.revoke_jit(tenant, &grant).await,
        JitCommand::Extend { grant, minutes } => c.extend_jit(tenant, &grant, minutes).await,
    }
    .map_err(|e| ctx.err(e))?;
    if ctx.json {
        return print_json(&grant);
    }
    print_fields(&fields(&grant))
}
