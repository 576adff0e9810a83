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
    /// Set a local user's password (12 to 1024 characters; asked twice on the terminal, or the
    /// first line of stdin with --password-stdin). The user's sessions end.
    SetPassword {
        /// The user's name or id.
        user: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show a user's roles, or replace them with --set (admin, auditor, approver; comma
    /// separated; an empty --set "" removes them all). Roles open the web UI's admin, audit
    /// and approvals pages.
    Roles {
        /// The user's name or id.
        user: String,
        /// The roles to hold from now on.
        #[arg(long, value_delimiter = ',')]
        set: Option<Vec<String>>,
    },
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
        UserCommand::SetPassword { user, password_stdin } => {
            let (id, name) = find_user(ctx, tenant, &user).await?;
            let password = super::login::read_password(&format!("New password for {name}: "), password_stdin)?;
            if !password_stdin {
                let again = super::login::read_password("Again: ", false)?;
                if *again != *password {
                    return Err("the two passwords differ; nothing was changed".to_owned());
                }
            }
            let body = proto::PasswordSetRequest { password: password.to_string() };
            ctx.client.set_user_password(tenant, &id, &body).await.map_err(|e| ctx.err(e))?;
            outln!("password of {name} ({id}) in tenant {tenant} is set")
        }
        UserCommand::Roles { user, set } => {
            let (id, name) = find_user(ctx, tenant, &user).await?;
            let roles = match set {
                Some(roles) => {
                    let roles: Vec<&str> = roles.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).collect();
                    ctx.client.set_user_roles(tenant, &id, &roles).await.map_err(|e| ctx.err(e))?
                }
                None => ctx.client.user_roles(tenant, &id).await.map_err(|e| ctx.err(e))?,
            };
            if ctx.json {
                return print_json(&roles);
            }
            let list = if roles.roles.is_empty() { "none".to_owned() } else { roles.roles.join(", ") };
            outln!("roles of {name} ({id}) in tenant {tenant}: {list}")
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

/// The id and name of the user named (case-insensitively) or identified by `user`.
async fn find_user(ctx: &Ctx, tenant: &str, user: &str) -> Result<(String, String), String> {
    let users = ctx.client.list_users(tenant).await.map_err(|e| ctx.err(e))?;
    let wanted = user.trim();
    users
        .items
        .into_iter()
        .find(|u| u.id.eq_ignore_ascii_case(wanted) || u.name.to_lowercase() == wanted.to_lowercase())
        .map(|u| (u.id, u.name))
        .ok_or_else(|| format!("no user {wanted} in tenant {tenant}"))
}
