//! Support accounts: short-lived administrators named `ADM-` and 8 upper-case hex digits.
//!
//! Creation is recorded in the state file before anything else, so an account begun and not
//! finished is found and removed at the next run (its job comes again and is done afresh).
//! Accounts also carry an expiry date on the device, and the agent deletes them once their
//! lifetime ends even when the server cannot be reached.

use latchkey_agent::AccountName;
use latchkey_core::rotation::is_support_account_name;
use latchkey_proto as proto;
use secrecy::SecretString;
use time::OffsetDateTime;

use super::device::SUPPORT_PREFIX;
use super::secret;
use super::session::{Interrupted, JobEnd, Session, already_finished, interrupted};
use super::state::SupportRecord;

/// Tries at a name not taken on the device.
const NAME_TRIES: usize = 8;

impl Session {
    /// Remove the support accounts that are due: those never confirmed (an interrupted
    /// creation) and those whose lifetime ended at `now`. Needs no server.
    pub async fn housekeeping(&mut self, now: OffsetDateTime) -> Result<(), String> {
        let due: Vec<String> = self
            .state
            .support_accounts
            .iter()
            .filter(|r| !r.confirmed || r.expires_at.is_some_and(|t| t <= now))
            .map(|r| r.username.clone())
            .collect();
        let mut errors = Vec::new();
        for username in due {
            match self.delete_support(&username).await {
                Ok(()) => {
                    self.state.support_accounts.retain(|r| r.username != username);
                    self.save()?;
                    println!("removed support account {username}");
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// Carry out a support account creation job.
    pub async fn create_support(
        &mut self,
        job_id: &str,
        policy: &proto::PasswordPolicy,
    ) -> Result<JobEnd, Interrupted> {
        // This agent finished the account but the server did not take the confirmation.
        if let Some(r) = self.state.support_accounts.iter().find(|r| r.job_id == job_id && r.confirmed) {
            let (username, version) = (r.username.clone(), r.version);
            return match self.client.agent_confirm(&self.key, &self.state.device_id, job_id, version).await {
                Ok(_) => Ok(JobEnd::Done(format!("support account {username} confirmed"))),
                Err(e) if already_finished(&e) => Ok(JobEnd::AlreadyFinished),
                Err(e) => Err(interrupted(&e, "confirming the support account")),
            };
        }
        let name = match self.new_support_name().await {
            Ok(n) => n,
            Err(why) => return self.fail(job_id, why).await,
        };
        let password = match secret::generate(policy) {
            Ok(p) => p,
            Err(why) => return self.fail(job_id, why).await,
        };
        let sealed = match secret::seal(&self.state.server_sealing_key, &self.state.device_id, job_id, &password) {
            Ok(s) => s,
            Err(why) => return self.fail(job_id, why).await,
        };
        self.state.support_accounts.push(SupportRecord {
            username: name.to_string(),
            job_id: job_id.to_owned(),
            expires_at: None,
            version: None,
            confirmed: false,
        });
        self.save().map_err(Interrupted::Stopped)?;
        let body = proto::AgentPending { account: name.to_string(), sealed_password: sealed };
        let ack = match self.client.agent_post_pending(&self.key, &self.state.device_id, job_id, &body).await {
            Ok(ack) => ack,
            Err(e) if already_finished(&e) => {
                self.forget(job_id).map_err(Interrupted::Stopped)?;
                return Ok(JobEnd::AlreadyFinished);
            }
            // Not created on the device; the unconfirmed record is cleared at the next run.
            Err(e) => return Err(interrupted(&e, "posting the support account's password")),
        };
        let Some(expires_at) = ack.expires_at else {
            self.forget(job_id).map_err(Interrupted::Stopped)?;
            return self.fail(job_id, "the server gave no expiry for the support account".into()).await;
        };
        self.update(job_id, |r| {
            r.expires_at = Some(expires_at);
            r.version = Some(ack.version);
        })
        .map_err(Interrupted::Stopped)?;
        if let Err(why) = self.make_support(name.clone(), password, expires_at).await {
            // Best effort: housekeeping retries an account left behind.
            if self.delete_support(name.as_str()).await.is_ok() {
                self.forget(job_id).map_err(Interrupted::Stopped)?;
            }
            return self.fail(job_id, why).await;
        }
        self.update(job_id, |r| r.confirmed = true).map_err(Interrupted::Stopped)?;
        let done = format!("created support account {name} (version {}, expires {expires_at})", ack.version);
        match self.client.agent_confirm(&self.key, &self.state.device_id, job_id, Some(ack.version)).await {
            Ok(_) => Ok(JobEnd::Done(done)),
            Err(e) if already_finished(&e) => Ok(JobEnd::Done(done)),
            Err(e) => Err(interrupted(&e, "confirming the support account (the job comes again)")),
        }
    }

    /// Carry out a support account removal job.
    pub async fn remove_support(&mut self, job_id: &str, username: &str) -> Result<JobEnd, Interrupted> {
        if !is_support_account_name(username) {
            return self.fail(job_id, format!("refusing to remove {username:?}: not a support account name")).await;
        }
        if let Err(why) = self.delete_support(username).await {
            return self.fail(job_id, why).await;
        }
        let before = self.state.support_accounts.len();
        self.state.support_accounts.retain(|r| r.username != username);
        if self.state.support_accounts.len() != before {
            self.save().map_err(Interrupted::Stopped)?;
        }
        match self.client.agent_confirm(&self.key, &self.state.device_id, job_id, None).await {
            Ok(_) => Ok(JobEnd::Done(format!("removed support account {username}"))),
            Err(e) if already_finished(&e) => Ok(JobEnd::AlreadyFinished),
            Err(e) => Err(interrupted(&e, "confirming the removal (the job comes again)")),
        }
    }

    /// A support account name not taken on the device.
    async fn new_support_name(&self) -> Result<AccountName, String> {
        for _ in 0..NAME_TRIES {
            let name = AccountName::new(format!("{SUPPORT_PREFIX}{:08X}", rand::random::<u32>()))
                .map_err(|e| e.to_string())?;
            let probe = name.clone();
            if self.device.run(move |a| a.user_info(&probe)).await?.is_none() {
                return Ok(name);
            }
        }
        Err("no free support account name found".into())
    }

    /// Create the account with its password, admin group and expiry date.
    async fn make_support(
        &self,
        name: AccountName,
        password: SecretString,
        expires_at: OffsetDateTime,
    ) -> Result<(), String> {
        let group = self.admin_group.clone();
        let expiry = expiry_date(expires_at);
        let shown = name.to_string();
        self.device
            .run(move |a| {
                a.ensure_user(&name)?;
                a.set_password(&name, &password)?;
                a.add_to_group(&name, &group)?;
                a.set_expiry(&name, Some(expiry))
            })
            .await
            .map_err(|e| format!("cannot create support account {shown}: {e}"))
    }

    /// Delete a support account from the device (a missing one is fine).
    async fn delete_support(&self, username: &str) -> Result<(), String> {
        let name = AccountName::new(username).map_err(|e| format!("support account {username:?}: {e}"))?;
        self.device.delete(name).await.map_err(|e| format!("cannot remove support account {username}: {e}"))
    }

    /// Drop the record of a job's account and save.
    fn forget(&mut self, job_id: &str) -> Result<(), String> {
        self.state.support_accounts.retain(|r| r.job_id != job_id);
        self.save()
    }

    /// Change the record of a job's account and save.
    fn update(&mut self, job_id: &str, change: impl FnOnce(&mut SupportRecord)) -> Result<(), String> {
        if let Some(r) = self.state.support_accounts.iter_mut().find(|r| r.job_id == job_id) {
            change(r);
        }
        self.save()
    }
}

/// The account expiry date for a lifetime that ends at `t`: its UTC date, or the next day
/// unless `t` is exactly midnight, so the account works until `t` (the agent deletes it then).
fn expiry_date(t: OffsetDateTime) -> time::Date {
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.time() == time::Time::MIDNIGHT { t.date() } else { t.date().next_day().unwrap_or(t.date()) }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn expiry_dates_round_up_to_the_next_day() {
        assert_eq!(expiry_date(datetime!(2030-05-01 10:00 UTC)), date!(2030 - 05 - 02));
        assert_eq!(expiry_date(datetime!(2030-05-02 00:00 UTC)), date!(2030 - 05 - 02));
        assert_eq!(expiry_date(datetime!(2030-05-01 23:30 -02:00)), date!(2030 - 05 - 03));
    }
}
