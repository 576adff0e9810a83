//! `latchkey user …`

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user of the built-in directory.
    Add {
        /// Login name.
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// List the tenant's users.
    List,
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: UserCommand) -> Result<(), String> {
    match cmd {
        UserCommand::Add { name, display_name, email } => {
            let body = proto::UserCreate { name, display_name, email };
            let u = ctx.client.create_user(tenant, &body).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&u);
            }
            print_fields(&[
                ("id", u.id),
                ("tenant", u.tenant),
                ("name", u.name),
                ("display name", opt(u.display_name.as_deref())),
                ("email", opt(u.email.as_deref())),
                ("created", output::time(u.created_at)),
            ])
        }
        UserCommand::List => {
            let list = ctx.client.list_users(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|u| {
                    vec![
                        u.id,
                        u.name,
                        opt(u.display_name.as_deref()),
                        opt(u.email.as_deref()),
                        output::time(u.created_at),
                    ]
                })
                .collect();
            print_table(
                &["ID", "NAME", "DISPLAY NAME", "EMAIL", "CREATED"],
                rows,
                &format!("no users in tenant {tenant}"),
            )
        }
    }
}
