//! `latchkey account grant|revoke|permissions|ssh-key …`: who may view or change an account,
//! and its SSH key.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};
use latchkey_proto as proto;
use zeroize::Zeroizing;

use super::Ctx;
use super::output::{self, print_json, print_table, yes_no};

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Grant an application or a person a permission on an account.
    Grant {
        /// Account id.
        account: String,
        #[command(flatten)]
        who: Who,
        /// May view the credentials.
        #[arg(long)]
        view: bool,
        /// May change the credentials (and approve view requests, for people).
        #[arg(long)]
        change: bool,
    },
    /// Remove an application's or a person's permission on an account.
    Revoke {
        /// Account id.
        account: String,
        #[command(flatten)]
        who: Who,
    },
    /// List the permissions on an account.
    Permissions {
        /// Account id.
        account: String,
    },
    /// The account's SSH key.
    #[command(subcommand)]
    SshKey(SshKeyCommand),
}

/// An application or a person.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("who").required(true).args(["app", "user"])))]
pub struct Who {
    /// Application name or id.
    #[arg(long)]
    app: Option<String>,
    /// User name or id.
    #[arg(long)]
    user: Option<String>,
}

impl Who {
    fn kind_and_name(self) -> (proto::PrincipalKind, String) {
        match (self.app, self.user) {
            (Some(app), _) => (proto::PrincipalKind::Application, app),
            (None, user) => (proto::PrincipalKind::User, user.unwrap_or_default()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SshKeyCommand {
    /// Generate a key (Ed25519, or RSA 3072 with --rsa); prints the public key.
    Generate {
        /// Account id.
        account: String,
        #[arg(long)]
        rsa: bool,
    },
    /// Import an unencrypted OpenSSH private key from a file; prints the public key.
    Import {
        /// Account id.
        account: String,
        #[arg(long, value_name = "PATH")]
        file: PathBuf,
    },
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: AccessCommand) -> Result<(), String> {
    match cmd {
        AccessCommand::Grant { account, who, view, change } => {
            if !view && !change {
                return Err("give --view, --change or both".into());
            }
            let (kind, principal) = who.kind_and_name();
            let body = proto::PermissionSet { principal_kind: kind, principal: principal.clone(), view, change };
            ctx.client.set_account_permission(tenant, &account, &body).await.map_err(|e| ctx.err(e))?;
            outln!("granted {principal} {} on account {account}", rights(view, change))
        }
        AccessCommand::Revoke { account, who } => {
            let (kind, principal) = who.kind_and_name();
            ctx.client.remove_account_permission(tenant, &account, kind, &principal).await.map_err(|e| ctx.err(e))?;
            outln!("revoked {principal}'s permission on account {account}")
        }
        AccessCommand::Permissions { account } => {
            let list = ctx.client.account_permissions(tenant, &account).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|p| {
                    let kind = match p.principal_kind {
                        proto::PrincipalKind::Application => "application",
                        proto::PrincipalKind::User => "user",
                    };
                    vec![
                        kind.to_owned(),
                        p.principal_name,
                        p.principal_id,
                        yes_no(p.view),
                        yes_no(p.change),
                        output::time(p.updated_at),
                    ]
                })
                .collect();
            print_table(
                &["KIND", "NAME", "ID", "VIEW", "CHANGE", "UPDATED"],
                rows,
                &format!("no permissions on account {account}"),
            )
        }
        AccessCommand::SshKey(cmd) => {
            let (account, body) = match cmd {
                SshKeyCommand::Generate { account, rsa } => {
                    let alg = if rsa { proto::SshKeyAlgorithm::Rsa3072 } else { proto::SshKeyAlgorithm::Ed25519 };
                    (account, proto::SshKeySet { generate: Some(alg), private_key: None })
                }
                SshKeyCommand::Import { account, file } => {
                    let pem = Zeroizing::new(
                        std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?,
                    );
                    (account, proto::SshKeySet { generate: None, private_key: Some(pem.to_string()) })
                }
            };
            let stored = ctx.client.set_account_ssh_key(tenant, &account, &body).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&stored);
            }
            eprintln!("stored as version {} ({})", stored.version, stored.fingerprint);
            outln!("{}", stored.public_key)
        }
    }
}

fn rights(view: bool, change: bool) -> &'static str {
    match (view, change) {
        (true, true) => "view and change",
        (true, false) => "view",
        _ => "change",
    }
}
