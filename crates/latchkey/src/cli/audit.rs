//! `latchkey audit …`

use clap::Subcommand;
use latchkey_client::AuditQuery;
use latchkey_proto as proto;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use super::output::{self, opt, print_json, print_table};

/// Most events the server returns per request.
const PAGE: i64 = 1000;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first (of --tenant unless --all-tenants).
    List {
        /// Only events by this actor (e.g. `admin-token:<id>`).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (e.g. `secret.read`).
        #[arg(long)]
        action: Option<String>,
        /// Only events about this object.
        #[arg(long, value_name = "ID")]
        object_id: Option<String>,
        /// Only this outcome: success, denied or failed.
        #[arg(long)]
        outcome: Option<String>,
        /// Events at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
        /// Events before this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
        /// Most events to show (the oldest matching first).
        #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// Events of every tenant the token may see, and those of no tenant (e.g. vault).
        #[arg(long)]
        all_tenants: bool,
    },
    /// Check the audit log's hash chain; exits non-zero when it is broken.
    Verify,
}

fn check_time(flag: &str, v: &Option<String>) -> Result<(), String> {
    match v {
        Some(s) if OffsetDateTime::parse(s, &Rfc3339).is_err() => {
            Err(format!("--{flag} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got `{s}`"))
        }
        _ => Ok(()),
    }
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: AuditCommand) -> Result<(), String> {
    match cmd {
        AuditCommand::List { actor, action, object_id, outcome, since, until, limit, all_tenants } => {
            check_time("since", &since)?;
            check_time("until", &until)?;
            let mut query = AuditQuery {
                tenant: (!all_tenants).then(|| tenant.to_owned()),
                actor,
                action,
                object_id,
                outcome,
                since,
                until,
                after: None,
                before: None,
                limit: None,
            };
            let mut events: Vec<proto::AuditEvent> = Vec::new();
            let mut more = false;
            loop {
                let want = limit - events.len() as i64;
                query.limit = Some(want.min(PAGE));
                let page = ctx.client.list_audit(&query).await.map_err(|e| ctx.err(e))?;
                let got = page.items.len();
                events.extend(page.items);
                let next = page.next.and_then(|n| n.parse::<i64>().ok());
                match next {
                    Some(after) if got > 0 && query.after != Some(after) => {
                        if events.len() as i64 >= limit {
                            more = true;
                            break;
                        }
                        query.after = Some(after);
                    }
                    _ => break,
                }
            }
            if ctx.json {
                return print_json(&proto::ListResponse { items: events, next: None });
            }
            let rows = events
                .into_iter()
                .map(|e| {
                    let object = match &e.object_id {
                        Some(id) => format!("{}:{id}", e.object_type),
                        None => e.object_type.clone(),
                    };
                    vec![
                        e.seq.to_string(),
                        output::time(e.at),
                        opt(e.tenant.as_deref()),
                        e.actor,
                        e.action,
                        object,
                        e.outcome,
                        opt(e.reason.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &["SEQ", "TIME", "TENANT", "ACTOR", "ACTION", "OBJECT", "OUTCOME", "REASON"],
                rows,
                "no matching audit events",
            )?;
            if more {
                eprintln!("(stopped at --limit {limit}; more events may match: raise --limit or narrow with --since)");
            }
            Ok(())
        }
        AuditCommand::Verify => {
            let v = ctx.client.verify_audit().await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                print_json(&v)?;
            }
            if v.ok {
                if !ctx.json {
                    outln!("audit chain OK: {} events verified", v.checked)?;
                }
                return Ok(());
            }
            let at = v.broken_at.map_or_else(|| "?".to_owned(), |s| s.to_string());
            let problem = v.problem.as_deref().unwrap_or("unknown problem");
            Err(format!("audit chain BROKEN at event {at}: {problem}"))
        }
    }
}
