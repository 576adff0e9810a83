//! `latchkey account …`: accounts, setting their secrets, and the audited secret read.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use latchkey_proto as proto;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::Ctx;
use super::output::{self, opt, opt_time, print_fields, print_json, print_table, yes_no};

/// Default length of a generated password.
const DEFAULT_LENGTH: u16 = 24;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account.
    Add {
        /// Account name (e.g. the login name).
        name: String,
        /// What the account is for; device_admin and support accounts need --device-id.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The device the account belongs to.
        #[arg(long, value_name = "UUID")]
        device_id: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the tenant's accounts.
    List,
    /// Show one account (never its secret).
    Show {
        /// Account id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List the versions of an account's secret (never their values).
    Versions {
        /// Account id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Set a new secret version. The password is read from stdin (first line), or generated
    /// with --generate and printed once; it is never taken as an argument.
    SetPassword {
        /// Account id.
        #[arg(value_name = "ID")]
        id: String,
        /// Generate a random password locally, store it, and print it once.
        #[arg(long)]
        generate: bool,
        /// Length of the generated password (8–256) [default: 24].
        #[arg(long, value_name = "N", requires = "generate",
            value_parser = clap::value_parser!(u16).range(8..=256))]
        length: Option<u16>,
        /// Also set an SSH private key, read from this file.
        #[arg(long, value_name = "PATH")]
        ssh_key_file: Option<PathBuf>,
        /// Set only the SSH private key (no password).
        #[arg(long, requires = "ssh_key_file", conflicts_with = "generate")]
        no_password: bool,
    },
    /// Read an account's current password (audited; a reason is required). Prints only the
    /// password, so it can be piped.
    GetPassword {
        /// Account id.
        #[arg(value_name = "ID")]
        id: String,
        /// Why you need it; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Ticket or change number; recorded in the audit log.
        #[arg(long, value_name = "T")]
        ticket: Option<String>,
        /// Print the SSH private key instead of the password.
        #[arg(long)]
        ssh_key: bool,
    },
    #[command(flatten)]
    Access(super::account_access::AccessCommand),
}

/// What an account is for.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Kind {
    Generic,
    #[value(alias = "device-admin")]
    DeviceAdmin,
    Support,
    Directory,
}

impl From<Kind> for proto::AccountKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Generic => proto::AccountKind::Generic,
            Kind::DeviceAdmin => proto::AccountKind::DeviceAdmin,
            Kind::Support => proto::AccountKind::Support,
            Kind::Directory => proto::AccountKind::Directory,
        }
    }
}

fn kind_name(k: proto::AccountKind) -> &'static str {
    match k {
        proto::AccountKind::Generic => "generic",
        proto::AccountKind::DeviceAdmin => "device_admin",
        proto::AccountKind::Support => "support",
        proto::AccountKind::Directory => "directory",
    }
}

/// How a secret version's state is shown.
pub(super) fn state_name(s: proto::SecretState) -> &'static str {
    match s {
        proto::SecretState::Pending => "pending",
        proto::SecretState::Active => "active",
        proto::SecretState::Retired => "retired",
    }
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: AccountCommand) -> Result<(), String> {
    match cmd {
        AccountCommand::Add { name, kind, device_id, description } => {
            let body = proto::AccountCreate { kind: kind.into(), name, device_id, description };
            let a = ctx.client.create_account(tenant, &body).await.map_err(|e| ctx.err(e))?;
            show(ctx, a)
        }
        AccountCommand::List => {
            let list = ctx.client.list_accounts(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|a| {
                    vec![
                        a.id,
                        a.name,
                        kind_name(a.kind).to_owned(),
                        opt(a.device_id.as_deref()),
                        a.active_version.map(|v| v.to_string()).unwrap_or_else(|| "none".to_owned()),
                    ]
                })
                .collect();
            print_table(
                &["ID", "NAME", "KIND", "DEVICE", "SECRET VERSION"],
                rows,
                &format!("no accounts in tenant {tenant}"),
            )
        }
        AccountCommand::Show { id } => {
            let a = ctx.client.account(tenant, &id).await.map_err(|e| ctx.err(e))?;
            show(ctx, a)
        }
        AccountCommand::Versions { id } => {
            let list = ctx.client.secret_versions(tenant, &id).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&list);
            }
            let rows = list
                .items
                .into_iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        state_name(v.state).to_owned(),
                        yes_no(v.has_password),
                        yes_no(v.has_ssh_private_key),
                        v.key_id,
                        output::time(v.created_at),
                        opt_time(v.expires_at),
                    ]
                })
                .collect();
            print_table(
                &["VERSION", "STATE", "PASSWORD", "SSH KEY", "KEY", "CREATED", "EXPIRES"],
                rows,
                &format!("account {id} has no secret yet"),
            )
        }
        AccountCommand::SetPassword { id, generate, length, ssh_key_file, no_password } => {
            set_password(ctx, tenant, &id, generate, length, ssh_key_file, no_password).await
        }
        AccountCommand::GetPassword { id, reason, ticket, ssh_key } => {
            get_password(ctx, tenant, &id, reason, ticket, ssh_key).await
        }
        AccountCommand::Access(cmd) => super::account_access::run(ctx, tenant, cmd).await,
    }
}

fn show(ctx: &Ctx, a: proto::Account) -> Result<(), String> {
    if ctx.json {
        return print_json(&a);
    }
    print_fields(&[
        ("id", a.id),
        ("tenant", a.tenant),
        ("name", a.name),
        ("kind", kind_name(a.kind).to_owned()),
        ("device", opt(a.device_id.as_deref())),
        ("description", opt(a.description.as_deref())),
        ("secret version", a.active_version.map(|v| v.to_string()).unwrap_or_else(|| "none".to_owned())),
        ("created", output::time(a.created_at)),
    ])
}

async fn set_password(
    ctx: &Ctx,
    tenant: &str,
    id: &str,
    generate: bool,
    length: Option<u16>,
    ssh_key_file: Option<PathBuf>,
    no_password: bool,
) -> Result<(), String> {
    // Fail on a wrong id or tenant before anyone types a password.
    let account = ctx.client.account(tenant, id).await.map_err(|e| ctx.err(e))?;
    let ssh_key = match &ssh_key_file {
        Some(path) => {
            let key = Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the SSH key file {}: {e}", path.display()))?,
            );
            if key.trim().is_empty() {
                return Err(format!("the SSH key file {} is empty", path.display()));
            }
            Some(key)
        }
        None => None,
    };
    let password: Option<Zeroizing<String>> = if no_password {
        None
    } else if generate {
        let spec = latchkey_crypto::PasswordSpec {
            length: usize::from(length.unwrap_or(DEFAULT_LENGTH)),
            ..latchkey_crypto::PasswordSpec::default()
        };
        let p = latchkey_crypto::generate_password(&spec)
            .ok_or_else(|| "cannot generate a password of that length (8–256)".to_owned())?;
        Some(Zeroizing::new(p.expose_secret().to_owned()))
    } else {
        Some(read_password(&account.name)?)
    };
    let body = proto::SecretSetRequest {
        password: password.as_ref().map(|p| p.as_str().to_owned()),
        ssh_private_key: ssh_key.as_ref().map(|k| k.as_str().to_owned()),
        expires_at: None,
    };
    let info = ctx.client.set_secret(tenant, id, &body).await.map_err(|e| ctx.err(e))?;
    drop(body);
    let generated = if generate { password.as_ref() } else { None };
    if ctx.json {
        let mut v = serde_json::to_value(&info).map_err(|e| format!("cannot encode JSON: {e}"))?;
        if let (Some(p), serde_json::Value::Object(map)) = (generated, &mut v) {
            map.insert("generatedPassword".to_owned(), serde_json::Value::String(p.as_str().to_owned()));
        }
        return print_json(&v);
    }
    match generated {
        Some(p) => {
            // stdout holds only the password (for a pipe); the rest goes to stderr.
            eprintln!(
                "account {} ({}): secret version {} is active; generated password (shown once):",
                account.name, account.id, info.version
            );
            outln!("{}", p.as_str())
        }
        None => outln!("account {} ({}): secret version {} is active", account.name, account.id, info.version),
    }
}

/// The first line of stdin, without its line ending. On a terminal, prompts with echo off.
fn read_password(account_name: &str) -> Result<Zeroizing<String>, String> {
    let stdin = std::io::stdin();
    let _echo = if stdin.is_terminal() {
        eprint!("New password for {account_name}: ");
        Some(EchoOff::new())
    } else {
        None
    };
    let mut line = Zeroizing::new(String::new());
    let n = stdin.lock().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    if n == 0 {
        return Err("no password on stdin: pipe it in (first line), or use --generate".to_owned());
    }
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    if line.is_empty() {
        return Err("the password read from stdin is empty".to_owned());
    }
    Ok(line)
}

/// Terminal echo off while a password is typed (best effort, via `stty`).
struct EchoOff {
    active: bool,
}

impl EchoOff {
    fn new() -> Self {
        let active = stty("-echo");
        if !active {
            eprint!("(warning: the input will be visible) ");
        }
        Self { active }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.active {
            stty("echo");
        }
        eprintln!();
    }
}

fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn get_password(
    ctx: &Ctx,
    tenant: &str,
    id: &str,
    reason: Option<String>,
    ticket: Option<String>,
    ssh_key: bool,
) -> Result<(), String> {
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).ok_or_else(|| {
        "a reason is required to read a password: pass --reason TEXT (it is recorded in the audit log)".to_owned()
    })?;
    let body = proto::SecretReadRequest { reason, ticket };
    let secret = ctx.client.reveal_secret(tenant, id, &body).await.map_err(|e| ctx.err(e))?;
    if ctx.json {
        return print_json(&secret);
    }
    if ssh_key {
        return match secret.ssh_private_key.as_deref() {
            Some(key) => outln!("{}", key.trim_end_matches('\n')),
            None => Err(format!(
                "account {} (secret version {}) has no SSH private key",
                secret.account_name, secret.version
            )),
        };
    }
    match secret.password.as_deref() {
        Some(p) => outln!("{p}"),
        None => Err(format!(
            "account {} (secret version {}) has no password; it has an SSH private key: use --ssh-key",
            secret.account_name, secret.version
        )),
    }
}
