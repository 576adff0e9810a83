//! `latchkey policy …`: rotation policies of the tenant and of device groups.

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{self, print_fields, print_json, print_table};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Set the tenant's rotation policy, or a device group's with --group. It replaces the
    /// policy there; an option left out takes the default (30 days, 24 characters of every
    /// class, 12 in history, support accounts for 24 hours, check-in every 30 minutes).
    Set {
        /// A device group, by id or name [default: the tenant's own policy].
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        /// Rotate passwords older than this (1–366 days).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(i64).range(1..=366))]
        max_age_days: Option<i64>,
        /// Characters of a generated password (8–256).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(8..=256))]
        length: Option<i64>,
        /// Character classes, separated by commas: lower,upper,digits,symbols.
        #[arg(long, value_name = "LIST")]
        classes: Option<String>,
        /// Generate passphrases of this many words instead (4–20).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(4..=20))]
        passphrase_words: Option<i64>,
        /// Retired passwords kept besides the active one (1–100).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=100))]
        history: Option<i64>,
        /// Lifetime of a support account (1–720 hours).
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(i64).range(1..=720))]
        support_lifetime_hours: Option<i64>,
        /// How often agents check in (1–10080 minutes).
        #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(i64).range(1..=10_080))]
        poll_interval_minutes: Option<i64>,
        /// With --group: among the group policies of a device, the lowest priority wins
        /// [default: 100].
        #[arg(long, value_name = "N", requires = "group", allow_negative_numbers = true,
            value_parser = clap::value_parser!(i64).range(-1_000_000..=1_000_000))]
        priority: Option<i64>,
    },
    /// List the tenant's rotation policies: its own, then group policies by priority.
    List,
}

pub async fn run(ctx: &Ctx, tenant: &str, cmd: PolicyCommand) -> Result<(), String> {
    match cmd {
        PolicyCommand::Set {
            group,
            max_age_days,
            length,
            classes,
            passphrase_words,
            history,
            support_lifetime_hours,
            poll_interval_minutes,
            priority,
        } => {
            let body = proto::RotationPolicySet {
                max_age_seconds: max_age_days.map(|d| d * 86_400),
                length,
                classes,
                passphrase_words,
                history,
                support_lifetime_seconds: support_lifetime_hours.map(|h| h * 3600),
                poll_interval_seconds: poll_interval_minutes.map(|m| m * 60),
                priority,
            };
            let set = match &group {
                None => ctx.client.set_tenant_rotation_policy(tenant, &body).await,
                Some(g) => {
                    let id = group_id(ctx, tenant, g).await?;
                    ctx.client.set_group_rotation_policy(tenant, &id, &body).await
                }
            }
            .map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&set);
            }
            let scope = match &group {
                Some(g) => format!("group {g}"),
                None => format!("tenant {tenant}"),
            };
            let mut fields = vec![("scope", scope)];
            if let Some(p) = set.priority {
                fields.push(("priority", p.to_string()));
            }
            fields.extend([
                ("max age", span(set.max_age_seconds)),
                ("password", generator(&set)),
                ("history", set.history.to_string()),
                ("support lifetime", span(set.support_lifetime_seconds)),
                ("poll interval", span(set.poll_interval_seconds)),
                ("updated", output::time(set.updated_at)),
            ]);
            print_fields(&fields)
        }
        PolicyCommand::List => {
            let policies = ctx.client.rotation_policies(tenant).await.map_err(|e| ctx.err(e))?;
            if ctx.json {
                return print_json(&policies);
            }
            let names = if policies.items.iter().any(|p| p.group_id.is_some()) {
                ctx.client.list_groups(tenant).await.map_err(|e| ctx.err(e))?.items
            } else {
                Vec::new()
            };
            let rows = policies
                .items
                .iter()
                .map(|p| {
                    let scope = match &p.group_id {
                        None => "tenant".to_owned(),
                        Some(id) => match names.iter().find(|g| &g.id == id) {
                            Some(g) => format!("group {}", g.name),
                            None => format!("group {id}"),
                        },
                    };
                    vec![
                        scope,
                        p.priority.map(|n| n.to_string()).unwrap_or_else(|| "-".to_owned()),
                        span(p.max_age_seconds),
                        generator(p),
                        p.history.to_string(),
                        span(p.support_lifetime_seconds),
                        span(p.poll_interval_seconds),
                    ]
                })
                .collect();
            print_table(
                &["SCOPE", "PRIORITY", "MAX AGE", "PASSWORD", "HISTORY", "SUPPORT LIFETIME", "POLL INTERVAL"],
                rows,
                &format!(
                    "no rotation policies in tenant {tenant}: devices follow the default (30d, 24 characters of \
                     lower,upper,digits,symbols, history 12, support accounts 24h, check-in every 30m)"
                ),
            )
        }
    }
}

/// A group id as given, or the id of the group with this name (case-insensitive).
async fn group_id(ctx: &Ctx, tenant: &str, given: &str) -> Result<String, String> {
    if uuid::Uuid::parse_str(given.trim()).is_ok() {
        return Ok(given.trim().to_owned());
    }
    let groups = ctx.client.list_groups(tenant).await.map_err(|e| ctx.err(e))?;
    groups
        .items
        .into_iter()
        .find(|g| g.name.eq_ignore_ascii_case(given.trim()))
        .map(|g| g.id)
        .ok_or_else(|| format!("no group named {given:?} in tenant {tenant} (give its id or name)"))
}

/// How passwords are generated: `24 chars lower,upper` or `6 words`.
fn generator(p: &proto::RotationPolicy) -> String {
    match p.passphrase_words {
        Some(words) => format!("{words} words"),
        None => format!("{} chars {}", p.length, p.classes),
    }
}

/// Seconds in the largest unit that divides them: `30d`, `24h`, `30m`, `90s`.
fn span(secs: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_use_the_largest_whole_unit() {
        assert_eq!(span(30 * 86_400), "30d");
        assert_eq!(span(36 * 3600), "36h");
        assert_eq!(span(1800), "30m");
        assert_eq!(span(90), "90s");
        assert_eq!(span(0), "0s");
    }
}
