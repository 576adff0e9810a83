//! First run: enroll the device with a one-time token.

use latchkey_client::Client;
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;

use super::state::{AgentState, StateFile};

/// Enroll this device and record the enrollment.
pub async fn enroll(
    client: &Client,
    key: &DeviceSigningKey,
    token: Option<String>,
    device_id: Option<String>,
    file: &StateFile,
) -> Result<AgentState, String> {
    let token = token.ok_or_else(|| {
        "this device is not enrolled yet: pass --enroll-token (create one with `latchkey device enroll-token`)"
            .to_owned()
    })?;
    let device_id = device_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
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
        password_version: None,
        support_accounts: Vec::new(),
    };
    file.write(&state)?;
    println!("enrolled as device {} in tenant {}", state.device_id, state.tenant);
    Ok(state)
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
