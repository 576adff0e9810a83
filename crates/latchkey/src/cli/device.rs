//! `latchkey device …`

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, opt, opt_time, print_fields, print_json, print_table, yes_no};

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
    /// Queue a rotation of the device's admin password (the agent does it at its next
    /// check-in; while one is queued, that job is shown and nothing new is queued).
    Rotate {
        /// Device id (UUID).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List the device's jobs, newest first.
    Jobs {
        /// Device id (UUID).
        #[arg(value_name = "ID")]
        id: String,
        /// Most jobs to show (1–1000).
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
    /// Read the device's admin password (audited; a reason is required). Prints only the
    /// password, so it can be piped.
    #[command(disable_version_flag = true)]
    Password {
        /// Device id (UUID).
        #[arg(value_name = "ID")]
        id: String,
        /// Why you need it; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Ticket or change number; recorded in the audit log.
        #[arg(long, value_name = "T")]
        ticket: Option<String>,
        /// A version from the password history (see `device history`) instead of the active one.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        version: Option<i64>,
    },
    /// List the versions of the device's admin password (never their values).
    History {
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
                        opt_time(d.last_seen_at),
                        opt_time(d.last_rotated_at),
                        opt_version(d.password_version),
                        d.open_jobs.to_string(),
                        yes_no(d.check_in_overdue),
                    ]
                })
                .collect();
            print_table(
                &["DEVICE ID", "NAME", "OS", "LAST SEEN", "LAST ROTATION", "PW VERSION", "OPEN JOBS", "OVERDUE"],
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
        DeviceCommand::Rotate { id } => {
            let job = ctx.client.rotate_device(tenant, &id).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&job);
            }
            outln!(
                "rotation of device {id} queued as job {} (since {}); the agent rotates at its next check-in",
                job.id,
                output::time(job.created_at)
            )
        }
        DeviceCommand::Jobs { id, limit } => {
            let jobs = ctx.client.device_jobs(tenant, &id, Some(limit)).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&jobs);
            }
            let rows = jobs
                .items
                .into_iter()
                .map(|j| {
                    vec![
                        j.id,
                        job_kind(j.kind).to_owned(),
                        job_state(j.state).to_owned(),
                        job_cause(j.cause).to_owned(),
                        output::time(j.created_at),
                        output::time(j.updated_at),
                        opt(j.error.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &["JOB ID", "KIND", "STATE", "CAUSE", "CREATED", "UPDATED", "ERROR"],
                rows,
                &format!("no jobs for device {id}"),
            )
        }
        DeviceCommand::Password { id, reason, ticket, version } => {
            let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).ok_or_else(|| {
                "a reason is required to read a password: pass --reason TEXT (it is recorded in the audit log)"
                    .to_owned()
            })?;
            let body = proto::DevicePasswordRequest { reason, ticket, version };
            let secret = ctx.client.reveal_device_password(tenant, &id, &body).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&secret);
            }
            match secret.password.as_deref() {
                Some(p) => outln!("{p}"),
                None => Err(format!("version {} of device {id}'s admin password holds no password", secret.version)),
            }
        }
        DeviceCommand::History { id } => {
            let history = ctx.client.device_password_history(tenant, &id).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&history);
            }
            let rows = history
                .items
                .into_iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        super::account::state_name(v.state).to_owned(),
                        output::time(v.created_at),
                        opt_time(v.expires_at),
                    ]
                })
                .collect();
            print_table(
                &["VERSION", "STATE", "CREATED", "EXPIRES"],
                rows,
                &format!("no admin password escrowed for device {id} yet"),
            )
        }
    }
}

fn opt_version(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".to_owned())
}

fn job_kind(k: proto::DeviceJobKind) -> &'static str {
    match k {
        proto::DeviceJobKind::RotatePassword => "rotate_password",
        proto::DeviceJobKind::CreateSupportAccount => "create_support_account",
        proto::DeviceJobKind::RemoveSupportAccount => "remove_support_account",
        proto::DeviceJobKind::GrantLocalAdmin => "grant_local_admin",
        proto::DeviceJobKind::RevokeLocalAdmin => "revoke_local_admin",
    }
}

fn job_state(s: proto::DeviceJobState) -> &'static str {
    match s {
        proto::DeviceJobState::Open => "open",
        proto::DeviceJobState::Done => "done",
        proto::DeviceJobState::Failed => "failed",
    }
}

fn job_cause(c: proto::DeviceJobCause) -> &'static str {
    match c {
        proto::DeviceJobCause::Initial => "initial",
        proto::DeviceJobCause::Age => "age",
        proto::DeviceJobCause::Expired => "expired",
        proto::DeviceJobCause::Requested => "requested",
        proto::DeviceJobCause::Reconcile => "reconcile",
        proto::DeviceJobCause::Lifetime => "lifetime",
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
        ("check-in overdue", yes_no(d.check_in_overdue)),
        ("poll interval", format!("{}s", d.poll_interval_seconds)),
        ("password version", opt_version(d.password_version)),
        ("last rotation", opt_time(d.last_rotated_at)),
        ("open jobs", d.open_jobs.to_string()),
        ("created", output::time(d.created_at)),
    ])
}
