//! `latchkey app …`: applications of the Axidian-compatible API (`/idp/connect/token`).

use clap::Subcommand;

use super::Ctx;
use super::output::{self, print_json, print_table, yes_no};

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an application; its password is printed once.
    Create {
        /// Application name (no backslash).
        name: String,
    },
    /// List the tenant's applications (never their passwords).
    List,
    /// Enable an application (by name or id).
    Enable { app: String },
    /// Disable an application: its tokens stop working at once.
    Disable { app: String },
    /// Delete an application with its tokens and permissions.
    Delete { app: String },
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: AppCommand) -> Result<(), String> {
    match cmd {
        AppCommand::Create { name } => {
            let created = ctx.client.create_application(tenant, &name).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&created);
            }
            let a = &created.application;
            outln!("created application {} ({}) in tenant {}", a.name, a.id, a.tenant)?;
            outln!("token endpoint user name: {}", a.username)?;
            eprintln!("The password is shown once and only its hash is stored; copy it now:");
            outln!("{}", created.password)
        }
        AppCommand::List => {
            let list = ctx.client.list_applications(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|a| vec![a.id, a.name, a.username, yes_no(a.enabled), output::time(a.created_at)])
                .collect();
            print_table(
                &["ID", "NAME", "USER NAME", "ENABLED", "CREATED"],
                rows,
                &format!("no applications in tenant {tenant}"),
            )
        }
        AppCommand::Enable { app } => toggle(ctx, tenant, &app, true).await,
        AppCommand::Disable { app } => toggle(ctx, tenant, &app, false).await,
        AppCommand::Delete { app } => {
            ctx.client.delete_application(tenant, &app).await.map_err(|e| ctx.err(e))?;
            outln!("deleted application {app}")
        }
    }
}

async fn toggle(ctx: &Ctx, tenant: &str, app: &str, enabled: bool) -> Result<(), String> {
    let a = ctx.client.set_application_enabled(tenant, app, enabled).await.map_err(|e| ctx.err(e))?;
    if ctx.json {
        return print_json(&a);
    }
    outln!("application {} is {}", a.name, if a.enabled { "enabled" } else { "disabled" })
}
