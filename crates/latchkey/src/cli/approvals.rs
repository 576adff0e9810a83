//! `latchkey approvals …`: requests to view accounts whose policy requires confirmation.

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, opt_time, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List requests, newest first (pending ones unless --state says otherwise).
    List {
        /// pending, approved, denied, expired, used or all.
        #[arg(long, default_value = "pending")]
        state: String,
    },
    /// Approve a request: views are allowed for the policy's confirmation timeout.
    Approve {
        id: String,
        /// A comment for the requester.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny a request.
    Deny {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
}

fn state_name(s: proto::ApprovalState) -> &'static str {
    match s {
        proto::ApprovalState::Pending => "pending",
        proto::ApprovalState::Approved => "approved",
        proto::ApprovalState::Denied => "denied",
        proto::ApprovalState::Expired => "expired",
        proto::ApprovalState::Used => "used",
    }
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: ApprovalsCommand) -> Result<(), String> {
    let (id, approve, comment) = match cmd {
        ApprovalsCommand::List { state } => {
            let filter = (state != "all").then_some(state.as_str());
            let list = ctx.client.list_approvals(tenant, filter).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|r| {
                    vec![
                        r.id,
                        r.account_name,
                        r.requester_name,
                        r.on_behalf_of,
                        opt(r.reason.as_deref()),
                        state_name(r.state).to_owned(),
                        output::time(r.created_at),
                        opt_time(r.valid_until),
                    ]
                })
                .collect();
            return print_table(
                &["ID", "ACCOUNT", "REQUESTER", "ON BEHALF OF", "REASON", "STATE", "CREATED", "VALID UNTIL"],
                rows,
                &format!("no {state} approval requests in tenant {tenant}"),
            );
        }
        ApprovalsCommand::Approve { id, comment } => (id, true, comment),
        ApprovalsCommand::Deny { id, comment } => (id, false, comment),
    };
    let r = ctx.client.decide_approval(tenant, &id, approve, comment).await.map_err(|e| ctx.err(e))?;
    if ctx.json {
        return print_json(&r);
    }
    match r.valid_until {
        Some(until) => outln!("request {} approved; views allowed until {}", r.id, output::time(until)),
        None => outln!("request {} {}", r.id, state_name(r.state)),
    }
}
