//! `latchkey agent`: enrolls the device once, then checks in with signed requests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use latchkey_client::Client;
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;
use serde::{Deserialize, Serialize};

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
    /// Check in once and exit (for cron and tests).
    #[arg(long)]
    once: bool,
}

/// What the agent keeps between runs (besides its key).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AgentState {
    device_id: String,
    tenant: String,
    server_sealing_key: String,
    poll_interval_seconds: i64,
}

pub async fn run(args: AgentArgs) -> Result<(), String> {
    let ca = match &args.ca_cert {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?),
        None => None,
    };
    let client = Client::builder(&args.server, None, ca.as_deref()).map_err(|e| e.to_string())?;
    let (key, _) = DeviceSigningKey::load_or_create(&args.state_dir.join("device.key")).map_err(|e| e.to_string())?;
    let state_file = args.state_dir.join("agent.json");
    let mut state = match read_state(&state_file)? {
        Some(s) => s,
        None => enroll(&client, &key, &args, &state_file).await?,
    };
    loop {
        let report = proto::AgentCheckIn { password_version: None, managed_accounts: Vec::new() };
        let answer = client
            .agent_check_in(&key, &state.device_id, &report)
            .await
            .map_err(|e| format!("check-in failed: {e}"))?;
        state.poll_interval_seconds = answer.poll_interval_seconds;
        println!(
            "checked in as {} (tenant {}); next check-in in about {} s",
            state.device_id, state.tenant, answer.poll_interval_seconds
        );
        if args.once {
            return Ok(());
        }
        tokio::time::sleep(with_jitter(answer.poll_interval_seconds)).await;
    }
}

async fn enroll(
    client: &Client,
    key: &DeviceSigningKey,
    args: &AgentArgs,
    state_file: &Path,
) -> Result<AgentState, String> {
    let token = args.enroll_token.clone().ok_or_else(|| {
        "this device is not enrolled yet: pass --enroll-token (create one with `latchkey device enroll-token`)"
            .to_owned()
    })?;
    let device_id = args.device_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = proto::AgentEnrollRequest {
        token,
        device_id,
        hostname: hostname(),
        os: os_name(),
        public_key: key.verifying_key().to_base64url(),
    };
    let answer = client.enroll(&request).await.map_err(|e| format!("enrollment failed: {e}"))?;
    let state = AgentState {
        device_id: answer.device_id,
        tenant: answer.tenant,
        server_sealing_key: answer.server_sealing_key,
        poll_interval_seconds: answer.poll_interval_seconds,
    };
    let text = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
    std::fs::write(state_file, text).map_err(|e| format!("cannot write {}: {e}", state_file.display()))?;
    println!("enrolled as device {} in tenant {}", state.device_id, state.tenant);
    Ok(state)
}

fn read_state(path: &Path) -> Result<Option<AgentState>, String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{} is not agent state: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The poll interval plus or minus up to 10 %, so devices do not check in in lockstep.
fn with_jitter(seconds: i64) -> Duration {
    use rand::Rng;
    let base = seconds.max(1) as f64;
    let factor = rand::thread_rng().gen_range(0.9..=1.1);
    Duration::from_secs_f64(base * factor)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned())
}
