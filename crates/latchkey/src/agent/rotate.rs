//! Two-phase rotation of the managed admin password.
//!
//! 1. Generate the password and post it, sealed to the server, as a pending version.
//! 2. Only once the server acknowledged it: make sure the account exists and is an
//!    administrator, and set the password.
//! 3. Record the version in the state file (durably), then confirm it.
//!
//! A crash or error anywhere leaves the device with a password the server holds: before the
//! acknowledgement nothing is set; after it, the server keeps the pending version until a
//! later one is confirmed. A version recorded but not confirmed is confirmed by the next
//! check-in, which reports it.

use latchkey_core::crashpoint;
use latchkey_proto as proto;
use secrecy::SecretString;

use super::secret;
use super::session::{Interrupted, JobEnd, Session, already_finished, interrupted};
use SetError::{MaybeSet, NotSet};

impl Session {
    /// Carry out a rotation job.
    pub async fn rotate(&mut self, job_id: &str, policy: &proto::PasswordPolicy) -> Result<JobEnd, Interrupted> {
        let password = match secret::generate(policy) {
            Ok(p) => p,
            Err(why) => return self.fail(job_id, why).await,
        };
        let sealed = match secret::seal(&self.state.server_sealing_key, &self.state.device_id, job_id, &password) {
            Ok(s) => s,
            Err(why) => return self.fail(job_id, why).await,
        };
        let body = proto::AgentPending { account: self.account.to_string(), sealed_password: sealed };
        let ack = match self.client.agent_post_pending(&self.key, &self.state.device_id, job_id, &body).await {
            Ok(ack) => ack,
            Err(e) if already_finished(&e) => return Ok(JobEnd::AlreadyFinished),
            // The server may or may not have stored it; nothing is set, the job comes again.
            Err(e) => return Err(interrupted(&e, "posting the new password")),
        };
        crashpoint("agent-after-pending");
        if let Err(why) = self.prepare_account().await {
            return self.fail(job_id, why).await;
        }
        if let Err(why) = self.set_password(password).await {
            return match why {
                NotSet(why) => self.fail(job_id, why).await,
                MaybeSet(why) => Err(Interrupted::Stopped(why)),
            };
        }
        crashpoint("agent-after-set");
        self.state.password_version = Some(ack.version);
        self.save().map_err(Interrupted::Stopped)?;
        crashpoint("agent-after-record");
        let done = format!("the password of {} is now version {}", self.account, ack.version);
        match self.client.agent_confirm(&self.key, &self.state.device_id, job_id, Some(ack.version)).await {
            Ok(_) => Ok(JobEnd::Done(done)),
            // Confirmed already (by a check-in that reported the version).
            Err(e) if already_finished(&e) => Ok(JobEnd::Done(done)),
            Err(e) => Err(interrupted(&e, "confirming the new password (the next check-in reports it)")),
        }
    }

    /// The managed account exists and is in the admin group.
    async fn prepare_account(&self) -> Result<(), String> {
        let (name, group) = (self.account.clone(), self.admin_group.clone());
        self.device
            .run(move |a| {
                a.ensure_user(&name)?;
                a.add_to_group(&name, &group)
            })
            .await
            .map_err(|e| format!("cannot prepare account {}: {e}", self.account))
    }

    /// Set the password. When the tool fails, whether the password was set anyway is checked
    /// against the account's hash; if that cannot be told, it counts as maybe set.
    async fn set_password(&self, password: SecretString) -> Result<(), SetError> {
        let name = self.account.clone();
        let account = self.account.to_string();
        self.device
            .run(move |a| match a.set_password(&name, &password) {
                Ok(()) => Ok(Ok(())),
                Err(e) => {
                    let why = format!("cannot set the password of {account}: {e}");
                    Ok(Err(match a.verify_password(&name, &password) {
                        Ok(false) => NotSet(why),
                        _ => MaybeSet(why),
                    }))
                }
            })
            .await
            .map_err(MaybeSet)?
    }
}

/// Why setting the password failed.
enum SetError {
    /// The device still has the old password.
    NotSet(String),
    /// The new password may be set.
    MaybeSet(String),
}
