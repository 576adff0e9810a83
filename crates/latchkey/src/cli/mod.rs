//! Client commands: talk to a server through the typed client.
//!
//! Every command takes the connection options (`--url`, `--token`, `--ca-cert`, `--json`),
//! and the commands that act inside a tenant also take `--tenant`. Errors come back as
//! `Err(String)`; `main` prints them as `error: …` and exits with code 1.

#[macro_use]
mod output;

mod access;
mod account;
mod account_access;
mod account_policy;
mod admin;
mod api_client;
mod app;
mod approvals;
mod audit;
mod device;
mod directory_sync;
mod group;
mod jit;
mod login;
mod policy;
mod support_account;
mod tenant;
mod ticket;
mod token;
mod user;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use latchkey_client::{Client, ClientError};
use latchkey_proto::ProblemCode;

/// Where the server is, how to authenticate, and how to print.
#[derive(Debug, Args)]
pub struct Connection {
    /// Server URL.
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "LATCHKEY_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub url: String,
    /// Admin API token or session token (prefer the environment variable: arguments are
    /// visible to other local users). When absent: the session saved by `latchkey login --save`
    /// for this server, else $LATCHKEY_DATA_DIR/admin-token or ./latchkey-data/admin-token if
    /// that file exists.
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "LATCHKEY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// PEM file of the CA certificate(s) to trust for an https:// URL.
    #[arg(long, global = true, help_heading = "Connection", env = "LATCHKEY_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true, help_heading = "Connection")]
    pub json: bool,
}

/// The tenant a command acts in.
#[derive(Debug, Args)]
pub struct TenantArg {
    /// Tenant slug.
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "LATCHKEY_TENANT",
        default_value = "default",
        value_name = "SLUG"
    )]
    pub tenant: String,
}

/// The client commands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Check that the server is up and its store answers.
    Health {
        #[command(flatten)]
        conn: Connection,
    },
    /// Tenants: add and list (adding needs a global admin token).
    Tenant {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        cmd: tenant::TenantCommand,
    },
    /// Devices of a tenant.
    Device {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: device::DeviceCommand,
    },
    /// Rotation policies of the tenant and of device groups.
    Policy {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: policy::PolicyCommand,
    },
    /// Short-lived support accounts on devices.
    SupportAccount {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: support_account::SupportAccountCommand,
    },
    /// Access targets: who may read which device's password, and why.
    Access {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: access::AccessCommand,
    },
    /// Import configuration from other products.
    Import {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: access::ImportCommand,
    },
    /// Groups of a tenant and their members.
    Group {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: group::GroupCommand,
    },
    /// Users of a tenant's built-in directory.
    User {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: user::UserCommand,
    },
    /// Privileged accounts and their secrets.
    Account {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: account::AccountCommand,
    },
    /// Account policies: reason, confirmation, reset after showing, SSH key encryption.
    AccountPolicy {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: account_policy::AccountPolicyCommand,
    },
    /// Applications of the Axidian-compatible API (token endpoint clients).
    App {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: app::AppCommand,
    },
    /// Requests to view accounts whose policy requires confirmation.
    Approvals {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: approvals::ApprovalsCommand,
    },
    /// Just-in-time admin elevation: request, list, approve, revoke, extend.
    Jit {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: jit::JitCommand,
    },
    /// Built-in tickets: create, list, close.
    Ticket {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: ticket::TicketCommand,
    },
    /// API clients for the compatible APIs.
    ApiClient {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: api_client::ApiClientCommand,
    },
    /// Admin API tokens.
    Token {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        cmd: token::TokenCommand,
    },
    /// Directory sync from LDAP / Active Directory: sync now, and the recent runs.
    Directory {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: directory_sync::DirectoryCommand,
    },
    /// The audit log: list events and verify the hash chain.
    Audit {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(subcommand)]
        cmd: audit::AuditCommand,
    },
    /// Server administration: the vault's keys.
    Admin {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        cmd: admin::AdminCommand,
    },
    /// Sign in as a person and get a session token (printed, or saved with --save).
    Login {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        args: login::LoginArgs,
    },
    /// End the session (the saved one, or the one given with --token) and forget it.
    Logout {
        #[command(flatten)]
        conn: Connection,
    },
    /// Who the session token belongs to, and until when it lasts.
    Whoami {
        #[command(flatten)]
        conn: Connection,
    },
}

pub async fn run(cmd: ClientCommand) -> Result<(), String> {
    match cmd {
        ClientCommand::Health { conn } => health(&Ctx::connect(conn, false)?).await,
        ClientCommand::Tenant { conn, cmd } => tenant::run(&Ctx::connect(conn, true)?, cmd).await,
        ClientCommand::Device { conn, tenant, cmd } => {
            device::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Policy { conn, tenant, cmd } => {
            policy::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::SupportAccount { conn, tenant, cmd } => {
            support_account::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Access { conn, tenant, cmd } => {
            access::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Import { conn, tenant, cmd } => {
            access::import(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Group { conn, tenant, cmd } => group::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await,
        ClientCommand::User { conn, tenant, cmd } => user::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await,
        ClientCommand::Account { conn, tenant, cmd } => {
            account::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::AccountPolicy { conn, tenant, cmd } => {
            account_policy::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::App { conn, tenant, cmd } => app::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await,
        ClientCommand::Approvals { conn, tenant, cmd } => {
            approvals::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Jit { conn, tenant, cmd } => jit::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await,
        ClientCommand::Ticket { conn, tenant, cmd } => {
            ticket::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::ApiClient { conn, tenant, cmd } => {
            api_client::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Token { conn, cmd } => token::run(&Ctx::connect(conn, true)?, cmd).await,
        ClientCommand::Directory { conn, tenant, cmd } => {
            directory_sync::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await
        }
        ClientCommand::Audit { conn, tenant, cmd } => audit::run(&Ctx::connect(conn, true)?, &tenant.tenant, cmd).await,
        ClientCommand::Admin { conn, cmd } => admin::run(&Ctx::connect(conn, true)?, cmd).await,
        ClientCommand::Login { conn, tenant, args } => login::login(conn, &tenant.tenant, args).await,
        ClientCommand::Logout { conn } => login::logout(conn).await,
        ClientCommand::Whoami { conn } => login::whoami(conn).await,
    }
}

async fn health(ctx: &Ctx) -> Result<(), String> {
    let h = ctx.client.ready().await.map_err(|e| ctx.err(e))?;
    if ctx.json { output::print_json(&h) } else { outln!("{}: {}", ctx.client.base_url(), h.status) }
}

/// Where the token came from, to explain an authentication failure.
#[derive(Debug)]
enum TokenSource {
    /// `--token` or `LATCHKEY_TOKEN`.
    Given,
    /// The data directory's `admin-token` file.
    File(PathBuf),
    /// No token at all.
    None,
}

/// What every command needs: the client and the output mode.
pub struct Ctx {
    pub client: Client,
    pub json: bool,
    token_source: TokenSource,
}

impl Ctx {
    /// A client for the connection options; with `auth`, find the token (flag, variable, or
    /// the data directory's `admin-token` file).
    fn connect(conn: Connection, auth: bool) -> Result<Self, String> {
        let (token, token_source) =
            if auth { resolve_token(conn.token, &conn.url)? } else { (None, TokenSource::None) };
        let ca = match &conn.ca_cert {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let client = Client::builder(&conn.url, token, ca.as_deref()).map_err(|e| describe(&e))?;
        Ok(Self { client, json: conn.json, token_source })
    }

    /// The message for a failed call, with a hint on where the token came from when the
    /// server refused it.
    pub fn err(&self, e: ClientError) -> String {
        let message = describe(&e);
        if e.code() != Some(ProblemCode::Unauthenticated) {
            return message;
        }
        match &self.token_source {
            TokenSource::Given => format!("{message} (check --token / LATCHKEY_TOKEN)"),
            TokenSource::File(path) => {
                format!("{message} (the token was read from {})", path.display())
            }
            TokenSource::None => format!(
                "{message}: no admin token given; pass --token, set LATCHKEY_TOKEN, or set LATCHKEY_DATA_DIR \
                 to the server's data directory (its admin-token file holds the first token)"
            ),
        }
    }
}

/// `title: detail` for a problem document; the cause chain otherwise.
fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Api { problem } => {
            let mut s = problem.title.clone();
            if let Some(d) = problem.detail.as_deref().filter(|d| !d.is_empty()) {
                s.push_str(": ");
                s.push_str(d);
            }
            if let (ProblemCode::Internal | ProblemCode::Unavailable, Some(id)) = (problem.code, &problem.request_id) {
                s.push_str(&format!(" (request id {id})"));
            }
            s
        }
        ClientError::Transport(inner) => {
            let mut s = format!("cannot reach the server: {inner}");
            let mut source = std::error::Error::source(inner);
            while let Some(cause) = source {
                s.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            s
        }
        other => other.to_string(),
    }
}

/// The token from the flag or variable, else the session saved for the server at `url`, else
/// the data directory's `admin-token` file.
fn resolve_token(given: Option<String>, url: &str) -> Result<(Option<String>, TokenSource), String> {
    if let Some(t) = given.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        return Ok((Some(t), TokenSource::Given));
    }
    if let Some((t, path)) = login::saved_token(url)? {
        return Ok((Some(t), TokenSource::File(path)));
    }
    let dir = std::env::var_os("LATCHKEY_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("latchkey-data"));
    let path = dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(contents) => {
            let t = contents.trim();
            if t.is_empty() {
                return Err(format!("the token file {} is empty", path.display()));
            }
            Ok((Some(t.to_owned()), TokenSource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, TokenSource::None)),
        Err(e) => Err(format!("cannot read the admin token from {}: {e}", path.display())),
    }
}
