//! `latchkey support-account …`: ask for a short-lived support account on a device and read
//! it once the device's agent has created it.

use clap::Subcommand;
use latchkey_proto as proto;
use zeroize::Zeroize;

use super::Ctx;
use super::output::{self, print_fields, print_json};

#[derive(Debug, Subcommand)]
pub enum SupportAccountCommand {
    /// Ask for a support account on a device; the agent creates it at its next check-in.
    /// While one is queued or live, nothing new is queued.
    Request {
        /// Device id (UUID).
        #[arg(value_name = "DEVICE")]
        device: String,
    },
    /// Show the device's live support account with its password (audited; a reason is
    /// required).
    Get {
        /// Device id (UUID).
        #[arg(value_name = "DEVICE")]
        device: String,
        /// Why you need it; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Ticket or change number; recorded in the audit log.
        #[arg(long, value_name = "T")]
        ticket: Option<String>,
    },
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: SupportAccountCommand) -> Result<(), String> {
    match cmd {
        SupportAccountCommand::Request { device } => {
            let r = ctx.client.request_support_account(tenant, &device).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&r);
            }
            match r.state {
                proto::SupportAccountState::Ready => outln!(
                    "a support account is ready on device {device}: `latchkey support-account get {device} --reason …`"
                ),
                proto::SupportAccountState::Queued => {
                    let wait = match r.estimated_wait_time.as_deref() {
                        Some(w) => format!("expected within {w} (the device's next check-in)"),
                        None => "the device has not checked in recently, so no wait can be estimated".to_owned(),
                    };
                    outln!(
                        "support account queued on device {device} (job {}); {wait}",
                        r.job_id.as_deref().unwrap_or("-")
                    )
                }
            }
        }
        SupportAccountCommand::Get { device, reason, ticket } => {
            let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).ok_or_else(|| {
                "a reason is required to read a support account: pass --reason TEXT (it is recorded in the audit log)"
                    .to_owned()
            })?;
            let body = proto::SecretReadRequest { reason, ticket };
            let account = ctx.client.reveal_support_account(tenant, &device, &body).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&account);
            }
            let mut fields = [
                ("device", account.device_id.clone()),
                ("username", account.username.clone()),
                ("password", account.password.clone()),
                ("expires", output::time(account.expires_at)),
            ];
            let printed = print_fields(&fields);
            fields[2].1.zeroize();
            printed
        }
    }
}
