//! `latchkey token …`

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, print_json};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an admin API token; it is printed once.
    Create {
        /// What the token is for.
        name: String,
        /// Limit the token to one tenant [default: every tenant; needs a global token].
        #[arg(long, value_name = "SLUG")]
        tenant_scope: Option<String>,
        /// Lifetime in seconds [default: no expiry].
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(1..))]
        expires_in: Option<i64>,
    },
}

pub async fn run(ctx: &Ctx, cmd: TokenCommand) -> Result<(), String> {
    match cmd {
        TokenCommand::Create { name, tenant_scope, expires_in } => {
            let body = proto::AdminTokenCreate { name, tenant: tenant_scope, expires_in_seconds: expires_in };
            let created = ctx.client.create_admin_token(&body).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&created);
            }
            let scope = created.tenant.as_deref().map_or_else(|| "every tenant".to_owned(), |t| format!("tenant {t}"));
            outln!(
                "created admin token {} ({}) for {scope}, expires {}",
                created.name,
                created.id,
                created.expires_at.map_or_else(|| "never".to_owned(), output::time)
            )?;
            eprintln!("The token is shown once and not stored by the server; copy it now:");
            outln!("{}", created.token)
        }
    }
}
