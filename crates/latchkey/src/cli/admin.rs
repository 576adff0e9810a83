//! `latchkey admin …`: the vault's keys.

use clap::Subcommand;
use latchkey_proto as proto;

use super::Ctx;
use super::output::{print_json, print_table, yes_no};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show the vault's keys and how much still needs re-wrapping.
    VaultStatus,
    /// Add a new vault key and re-wrap every secret under it (needs a global token).
    Rekey {
        /// Secret versions per re-wrap request (1–5000).
        #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=5000))]
        batch: i64,
        /// Afterwards, retire every old key that no longer wraps anything.
        #[arg(long)]
        retire_old: bool,
        /// Do not add a key: continue an interrupted re-wrap under the active key.
        #[arg(long)]
        resume: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::VaultStatus => {
            let status = ctx.client.vault_status().await.map_err(|e| ctx.err(e))?;
            print_status(ctx, &status)
        }
        AdminCommand::Rekey { batch, retire_old, resume } => rekey(ctx, batch, retire_old, resume).await,
    }
}

/// Progress goes to stdout, or to stderr when stdout carries JSON.
fn progress(ctx: &Ctx, line: &str) -> Result<(), String> {
    if ctx.json {
        eprintln!("{line}");
        Ok(())
    } else {
        outln!("{line}")
    }
}

async fn rekey(ctx: &Ctx, batch: i64, retire_old: bool, resume: bool) -> Result<(), String> {
    let status = if resume {
        let s = ctx.client.vault_status().await.map_err(|e| ctx.err(e))?;
        progress(ctx, &format!("resuming: active key {}, {} remaining", s.active_key_id, s.remaining))?;
        s
    } else {
        let s = ctx.client.add_vault_key().await.map_err(|e| ctx.err(e))?;
        progress(ctx, &format!("added key {} (now active), {} to re-wrap", s.active_key_id, s.remaining))?;
        s
    };
    let mut remaining = status.remaining;
    let mut done: i64 = 0;
    while remaining > 0 {
        let step = ctx.client.rewrap_vault(batch).await.map_err(|e| {
            format!("{} (re-wrapped {done} so far; run `latchkey admin rekey --resume` to continue)", ctx.err(e))
        })?;
        if step.rewrapped == 0 && step.remaining > 0 {
            return Err(format!("the server re-wrapped nothing but reports {} remaining; stopping", step.remaining));
        }
        done += step.rewrapped;
        remaining = step.remaining;
        progress(ctx, &format!("re-wrapped {done}, {remaining} remaining"))?;
    }
    if done == 0 {
        progress(ctx, "nothing to re-wrap")?;
    }
    let mut status = ctx.client.vault_status().await.map_err(|e| ctx.err(e))?;
    if retire_old {
        let old: Vec<proto::VaultKey> = status.keys.iter().filter(|k| !k.active).cloned().collect();
        for key in old {
            if key.envelopes > 0 {
                progress(ctx, &format!("key {} still wraps {} envelopes; not retired", key.id, key.envelopes))?;
                continue;
            }
            status = ctx.client.retire_vault_key(&key.id).await.map_err(|e| ctx.err(e))?;
            progress(ctx, &format!("retired key {}", key.id))?;
        }
    }
    print_status(ctx, &status)
}

fn print_status(ctx: &Ctx, status: &proto::VaultStatus) -> Result<(), String> {
    if ctx.json {
        return print_json(status);
    }
    let rows = status.keys.iter().map(|k| vec![k.id.clone(), yes_no(k.active), k.envelopes.to_string()]).collect();
    print_table(&["KEY", "ACTIVE", "ENVELOPES"], rows, "no keys")?;
    outln!("active key: {}; to re-wrap: {}", status.active_key_id, status.remaining)
}
