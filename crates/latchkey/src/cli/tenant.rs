//! `latchkey tenant …`

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (needs a global admin token).
    Add {
        /// 1–63 lowercase letters, digits and hyphens.
        slug: String,
        /// Display name [default: the slug].
        #[arg(long)]
        name: Option<String>,
    },
    /// List the tenants this token may see.
    List,
}

pub async fn run(ctx: &Ctx, cmd: TenantCommand) -> Result<(), String> {
    match cmd {
        TenantCommand::Add { slug, name } => {
            let t = ctx.client.create_tenant(&proto::TenantCreate { slug, name }).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&t);
            }
            print_fields(&[("slug", t.slug), ("name", t.name), ("id", t.id), ("created", output::time(t.created_at))])
        }
        TenantCommand::List => {
            let list = ctx.client.list_tenants().await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list.items.into_iter().map(|t| vec![t.slug, t.name, t.id, output::time(t.created_at)]).collect();
            print_table(&["SLUG", "NAME", "ID", "CREATED"], rows, "no tenants")
        }
    }
}
