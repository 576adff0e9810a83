//! `latchkey device …`

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, opt_time, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device.
    Add {
        /// Display name (e.g. the host name).
        name: String,
        /// The device's UUID (e.g. its directory object GUID) [default: generated].
        #[arg(long, value_name = "UUID")]
        device_id: Option<String>,
        /// Directory container, e.g. `OU=Workstations,DC=corp,DC=local`.
        #[arg(long, value_name = "DN")]
        container_dn: Option<String>,
        /// Operating system.
        #[arg(long)]
        os: Option<String>,
    },
    /// List every device of the tenant (fetched page by page).
    List {
        /// Devices per request (1–1000); every page is fetched.
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
    /// Show one device.
    Show {
        /// Device id (UUID).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Create a one-time enrollment token for `latchkey agent --enroll-token` (shown once).
    EnrollToken {
        /// Lifetime in seconds (60 to 2592000) [default: 24 hours].
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(60..=2_592_000))]
        expires_in: Option<i64>,
    },
    /// Remove a device with its accounts and their secrets.
    Remove {
        /// Device id (UUID).
        #[arg(value_name = "ID")]
        id: String,
    },
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: DeviceCommand) -> Result<(), String> {
    match cmd {
        DeviceCommand::Add { name, device_id, container_dn, os } => {
            let body = proto::DeviceCreate { device_id, name, container_dn, os };
            let d = ctx.client.create_device(tenant, &body).await.map_err(|e| ctx.err(e))?;
            show(ctx, d)
        }
        DeviceCommand::List { limit } => {
            let mut items = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page =
                    ctx.client.list_devices(tenant, after.as_deref(), Some(limit)).await.map_err(|e| ctx.err(e))?;
                let got = page.items.len();
                items.extend(page.items);
                match page.next {
                    // A page that brings nothing new would repeat forever.
                    Some(next) if got > 0 && after.as_deref() != Some(next.as_str()) => after = Some(next),
                    _ => break,
                }
            }
            if ctx.json {
                return print_json(&proto::ListResponse { items, next: None });
            }
            let rows = items
                .into_iter()
                .map(|d| {
                    vec![
                        d.device_id,
                        d.name,
                        opt(d.os.as_deref()),
                        opt(d.container_dn.as_deref()),
                        opt_time(d.last_seen_at),
                    ]
                })
                .collect();
            print_table(
                &["DEVICE ID", "NAME", "OS", "CONTAINER", "LAST SEEN"],
                rows,
                &format!("no devices in tenant {tenant}"),
            )
        }
        DeviceCommand::EnrollToken { expires_in } => {
            let body = proto::EnrollmentTokenCreate { expires_in_seconds: expires_in };
            let created = ctx.client.create_enrollment_token(tenant, &body).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&created);
            }
            outln!(
                "created enrollment token {} for tenant {}, good for one device until {}",
                created.id,
                created.tenant,
                crate::cli::output::time(created.expires_at)
            )?;
            eprintln!("The token is shown once and not stored by the server; copy it now:");
            outln!("{}", created.token)
        }
        DeviceCommand::Show { id } => {
            let d = ctx.client.device(tenant, &id).await.map_err(|e| ctx.err(e))?;
            show(ctx, d)
        }
        DeviceCommand::Remove { id } => {
            ctx.client.delete_device(tenant, &id).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&serde_json::json!({ "deviceId": id, "removed": true }));
            }
            outln!("removed device {id} (with its accounts and secrets)")
        }
    }
}

fn show(ctx: &Ctx, d: proto::Device) -> Result<(), String> {
    if ctx.json {
        return print_json(&d);
    }
    print_fields(&[
        ("device id", d.device_id),
        ("tenant", d.tenant),
        ("name", d.name),
        ("os", opt(d.os.as_deref())),
        ("container", opt(d.container_dn.as_deref())),
        ("enrolled", opt_time(d.enrolled_at)),
        ("last seen", opt_time(d.last_seen_at)),
        ("poll interval", format!("{}s", d.poll_interval_seconds)),
        ("created", output::time(d.created_at)),
    ])
}
