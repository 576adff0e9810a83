//! `latchkey api-client …`

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, print_json, print_table, yes_no};

#[derive(Debug, Subcommand)]
pub enum ApiClientCommand {
    /// Create an API client; its secret is printed once.
    Create { name: String },
    /// List the tenant's API clients (never their secrets).
    List,
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: ApiClientCommand) -> Result<(), String> {
    match cmd {
        ApiClientCommand::Create { name } => {
            let created =
                ctx.client.create_api_client(tenant, &proto::ApiClientCreate { name }).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&created);
            }
            let c = &created.client;
            outln!("created API client {} ({}) in tenant {}", c.name, c.id, c.tenant)?;
            eprintln!("The secret is shown once and not stored by the server; copy it now:");
            outln!("{}", created.secret)
        }
        ApiClientCommand::List => {
            let list = ctx.client.list_api_clients(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|c| vec![c.id, c.name, yes_no(c.disabled), output::time(c.created_at)])
                .collect();
            print_table(&["ID", "NAME", "DISABLED", "CREATED"], rows, &format!("no API clients in tenant {tenant}"))
        }
    }
}
