//! `latchkey agent`: enrolls the device once, then at every run removes the support accounts
//! that are due, checks in with a signed report of what is set on the device, and carries out
//! the jobs the server answers with: two-phase password rotation of the managed admin account,
//! creation and removal of support accounts, and just-in-time local administrators (removed at
//! their end time by the agent itself, before every check-in).

mod device;
mod enroll;
mod local_admin;
mod rotate;
mod secret;
mod session;
mod state;
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use latchkey_agent::{AccountName, LinuxAccounts};
use latchkey_client::Client;
use latchkey_crypto::DeviceSigningKey;

use self::device::Device;
use self::session::Session;
use self::state::StateFile;

/// Settings of `latchkey agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Server URL.
    #[arg(long, env = "LATCHKEY_SERVER")]
    server: String,
    /// One-time enrollment token (`latchkey device enroll-token`); needed only the first time.
    #[arg(long, env = "LATCHKEY_ENROLL_TOKEN", hide_env_values = true)]
    enroll_token: Option<String>,
    /// State directory: the device's private key (mode 0600) and its enrollment.
    #[arg(long, env = "LATCHKEY_AGENT_STATE_DIR", default_value = "/var/lib/latchkey-agent")]
    state_dir: PathBuf,
    /// The device id (UUID) to enroll as [default: generated on first run and kept].
    #[arg(long, env = "LATCHKEY_DEVICE_ID")]
    device_id: Option<String>,
    /// PEM CA certificate to trust for an https server URL.
    #[arg(long, env = "LATCHKEY_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// The local admin account whose password the agent rotates (created if missing).
    #[arg(long, env = "LATCHKEY_AGENT_ACCOUNT", default_value = "latchkey-admin")]
    account: String,
    /// The local group that makes an account an administrator.
    #[arg(long, env = "LATCHKEY_AGENT_ADMIN_GROUP", default_value = "sudo")]
    admin_group: String,
    /// Root directory of every account operation (`/` is this system; another directory is
    /// a private account tree, passed to the account tools as `--root`).
    #[arg(long, env = "LATCHKEY_AGENT_ROOT", default_value = "/")]
    root: PathBuf,
    /// Check in once, do the jobs, and exit (for cron and tests).
    #[arg(long)]
    once: bool,
}

pub async fn run(args: AgentArgs) -> Result<(), String> {
    let account = AccountName::new(args.account.clone()).map_err(|e| format!("--account: {e}"))?;
    let accounts = LinuxAccounts::new(&args.root).map_err(|e| format!("--root: {e}"))?;
    let ca = match &args.ca_cert {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?),
        None => None,
    };
    let client = Client::builder(&args.server, None, ca.as_deref()).map_err(|e| e.to_string())?;
    let (key, _) = DeviceSigningKey::load_or_create(&args.state_dir.join("device.key")).map_err(|e| e.to_string())?;
    let file = StateFile::in_dir(&args.state_dir);
    let state = match file.read()? {
        Some(s) => s,
        None => enroll::enroll(&client, &key, args.enroll_token.clone(), args.device_id.clone(), &file).await?,
    };
    let mut session = Session {
        client,
        key,
        device: Device::new(Arc::new(accounts)),
        file,
        state,
        account,
        admin_group: args.admin_group.clone(),
    };
    loop {
        let result = session.run_once().await;
        if args.once {
            return result;
        }
        if let Err(e) = &result {
            eprintln!("error: {e}");
        }
        let mut wait = with_jitter(session.state.poll_interval_seconds);
        if let Some(end) = session.next_local_admin_end() {
            // Wake when a just-in-time administrator ends, to remove it on time.
            let until_end = (end - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO) + time::Duration::SECOND;
            wait = wait.min(Duration::try_from(until_end).unwrap_or(wait));
        }
        tokio::time::sleep(wait).await;
    }
}

/// The poll interval plus or minus up to 10 %, so devices do not check in in lockstep.
fn with_jitter(seconds: i64) -> Duration {
    use rand::Rng;
    let base = seconds.max(1) as f64;
    let factor = rand::thread_rng().gen_range(0.9..=1.1);
    Duration::from_secs_f64(base * factor)
}
