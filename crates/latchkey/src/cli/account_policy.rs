//! `latchkey account-policy …`: policies shared by accounts (reason, confirmation, reset after
//! showing, SSH key encryption, self-service setting).

use clap::{Args, Subcommand};
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, print_json, print_table, yes_no};

#[derive(Debug, Subcommand)]
pub enum AccountPolicyCommand {
    /// Create a policy.
    Create(PolicyArgs),
    /// List the tenant's policies.
    List,
    /// Replace a policy's settings (by name or id; flags not given are off).
    Set(PolicyArgs),
    /// Delete a policy that no account uses.
    Delete { policy: String },
    /// Attach a policy to an account (replacing its policy).
    Attach {
        /// Account id.
        account: String,
        /// Policy name or id.
        policy: String,
    },
    /// Detach an account's policy.
    Detach {
        /// Account id.
        account: String,
    },
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy name (for `set`: the policy to change, by name or id).
    name: String,
    /// Views need a reason.
    #[arg(long)]
    require_reason: bool,
    /// Views need an approval, valid this long (.NET TimeSpan, e.g. 00:07:00).
    #[arg(long, value_name = "TIMESPAN")]
    require_confirmation: Option<String>,
    /// Reset the credentials this many minutes after each view.
    #[arg(long, value_name = "MINUTES")]
    reset_after: Option<i64>,
    /// Return SSH keys encrypted with a fresh passphrase.
    #[arg(long)]
    encrypt_key: bool,
    /// Permitted applications may set credentials while none are set.
    #[arg(long)]
    can_set_if_not_set: bool,
}

impl PolicyArgs {
    fn spec(&self, name: String) -> proto::AccountPolicySpec {
        proto::AccountPolicySpec {
            name,
            require_reason: self.require_reason,
            require_confirmation: self.require_confirmation.is_some(),
            confirmation_timeout: self.require_confirmation.clone(),
            reset_after_showing: self.reset_after.is_some(),
            reset_after_minutes: self.reset_after,
            encrypt_key_before_showing: self.encrypt_key,
            can_set_if_not_set: self.can_set_if_not_set,
        }
    }
}

fn show(ctx: &Ctx, p: proto::AccountPolicy) -> Result<(), String> {
    if ctx.json {
        return print_json(&p);
    }
    outln!("account policy {} ({})", p.name, p.id)
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: AccountPolicyCommand) -> Result<(), String> {
    match cmd {
        AccountPolicyCommand::Create(args) => {
            let p = ctx
                .client
                .create_account_policy(tenant, &args.spec(args.name.clone()))
                .await
                .map_err(|e| ctx.err(e))?;
            show(ctx, p)
        }
        AccountPolicyCommand::Set(args) => {
            let current = ctx.client.list_account_policies(tenant).await.map_err(|e| ctx.err(e))?;
            let name = current
                .items
                .iter()
                .find(|p| p.id == args.name || p.name.eq_ignore_ascii_case(&args.name))
                .map(|p| p.name.clone())
                .unwrap_or_else(|| args.name.clone());
            let p = ctx
                .client
                .replace_account_policy(tenant, &args.name, &args.spec(name))
                .await
                .map_err(|e| ctx.err(e))?;
            show(ctx, p)
        }
        AccountPolicyCommand::List => {
            let list = ctx.client.list_account_policies(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|p| {
                    vec![
                        p.id,
                        p.name,
                        yes_no(p.require_reason),
                        if p.require_confirmation { p.confirmation_timeout } else { "no".into() },
                        if p.reset_after_showing { format!("{} min", p.reset_after_minutes) } else { "no".into() },
                        yes_no(p.encrypt_key_before_showing),
                        yes_no(p.can_set_if_not_set),
                        output::time(p.updated_at),
                    ]
                })
                .collect();
            print_table(
                &["ID", "NAME", "REASON", "CONFIRMATION", "RESET AFTER", "ENCRYPT KEY", "SET IF NOT SET", "UPDATED"],
                rows,
                &format!("no account policies in tenant {tenant}"),
            )
        }
        AccountPolicyCommand::Delete { policy } => {
            ctx.client.delete_account_policy(tenant, &policy).await.map_err(|e| ctx.err(e))?;
            outln!("deleted account policy {policy}")
        }
        AccountPolicyCommand::Attach { account, policy } => {
            ctx.client.attach_account_policy(tenant, &account, Some(&policy)).await.map_err(|e| ctx.err(e))?;
            outln!("account {account} is governed by policy {policy}")
        }
        AccountPolicyCommand::Detach { account } => {
            ctx.client.attach_account_policy(tenant, &account, None).await.map_err(|e| ctx.err(e))?;
            outln!("account {account} has no policy")
        }
    }
}
