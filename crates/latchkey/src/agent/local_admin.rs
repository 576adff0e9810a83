//! Just-in-time local administrators: grant and revoke jobs, and removal at the end time by
//! the agent itself (before every check-in, so also when the server cannot be reached).
//!
//! The server seals the temporary password to this device's key; it is opened here, set on the
//! account and never written anywhere else. Accounts are recorded in the state directory (see
//! [`latchkey_agent::local_admin`]) and only recorded accounts are ever removed.

use latchkey_agent::AccountName;
use latchkey_agent::local_admin::{self, Grant, LocalAdmins, Revoked};
use secrecy::SecretString;
use time::OffsetDateTime;

use super::session::{Interrupted, JobEnd, Session, already_finished, interrupted};

impl Session {
    /// Remove the just-in-time administrators whose end time passed. Needs no server.
    pub async fn expire_local_admins(&self, now: OffsetDateTime) -> Result<(), String> {
        let dir = self.file.dir();
        let (removed, errors) = self
            .device
            .run(move |accounts| {
                let mut admins = match LocalAdmins::load(&dir) {
                    Ok(a) => a,
                    Err(e) => return Ok((Vec::new(), vec![e.to_string()])),
                };
                Ok(admins.expire(accounts, now))
            })
            .await?;
        for name in removed {
            println!("removed just-in-time administrator {name} (its grant ended)");
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    /// When the first recorded just-in-time administrator ends, if any: the agent wakes then
    /// rather than at its next check-in.
    pub fn next_local_admin_end(&self) -> Option<OffsetDateTime> {
        let admins = LocalAdmins::load(&self.file.dir()).ok()?;
        admins.records().iter().map(|r| r.until).min()
    }

    /// Carry out a grant job.
    pub async fn grant_local_admin(
        &mut self,
        job_id: &str,
        (username, grant_id): (&str, &str),
        sealed_password: &str,
        until: OffsetDateTime,
    ) -> Result<JobEnd, Interrupted> {
        let name = match AccountName::new(username) {
            Ok(n) => n,
            Err(e) => return self.fail(job_id, format!("refusing to grant {username:?}: {e}")).await,
        };
        let password = match self.open_password(job_id, grant_id, username, sealed_password) {
            Ok(p) => p,
            Err(why) => return self.fail(job_id, why).await,
        };
        let dir = self.file.dir();
        let (group, reserved) = (self.admin_group.clone(), self.account.to_string());
        let job = job_id.to_owned();
        let shown = name.to_string();
        let done = self
            .device
            .run(move |accounts| {
                let grant = Grant {
                    name: &name,
                    password: &password,
                    until,
                    job_id: &job,
                    admin_group: &group,
                    reserved: &[reserved.as_str()],
                };
                Ok(LocalAdmins::load(&dir)
                    .and_then(|mut admins| admins.grant(accounts, &grant, OffsetDateTime::now_utc()))
                    .map_err(|e| e.to_string()))
            })
            .await
            .and_then(|r| r);
        if let Err(why) = done {
            return self.fail(job_id, format!("cannot grant local admin to {shown}: {why}")).await;
        }
        let done = format!("{shown} is a local administrator until {until}");
        self.confirm_local_admin(job_id, done).await
    }

    /// Carry out a revoke job: only an account this agent recorded is removed.
    pub async fn revoke_local_admin(&mut self, job_id: &str, username: &str) -> Result<JobEnd, Interrupted> {
        let name = match AccountName::new(username) {
            Ok(n) => n,
            Err(e) => return self.fail(job_id, format!("refusing to revoke {username:?}: {e}")).await,
        };
        let dir = self.file.dir();
        let revoked = self
            .device
            .run(move |accounts| {
                Ok(LocalAdmins::load(&dir).and_then(|mut a| a.revoke(accounts, &name)).map_err(|e| e.to_string()))
            })
            .await
            .and_then(|r| r);
        let done = match revoked {
            Ok(Revoked::Removed) => format!("removed just-in-time administrator {username}"),
            Ok(Revoked::NotRecorded) => {
                format!("{username} is not a just-in-time administrator here; nothing to remove")
            }
            Err(why) => return self.fail(job_id, format!("cannot revoke local admin of {username}: {why}")).await,
        };
        self.confirm_local_admin(job_id, done).await
    }

    async fn confirm_local_admin(&self, job_id: &str, done: String) -> Result<JobEnd, Interrupted> {
        match self.client.agent_confirm(&self.key, &self.state.device_id, job_id, None).await {
            Ok(_) => Ok(JobEnd::Done(done)),
            Err(e) if already_finished(&e) => Ok(JobEnd::AlreadyFinished),
            Err(e) => Err(interrupted(&e, "confirming the local admin job (the job comes again)")),
        }
    }

    /// The temporary password sealed to this device for this job.
    fn open_password(
        &self,
        job_id: &str,
        grant_id: &str,
        username: &str,
        sealed: &str,
    ) -> Result<SecretString, String> {
        local_admin::open_password(
            &self.key,
            (&self.state.tenant, &self.state.device_id),
            (job_id, grant_id, username),
            sealed,
        )
    }
}
