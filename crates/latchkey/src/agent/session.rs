//! One run of the agent: housekeeping, the signed check-in, then every job of the answer in
//! order.

use latchkey_agent::AccountName;
use latchkey_client::{Client, ClientError};
use latchkey_crypto::DeviceSigningKey;
use latchkey_proto as proto;

use super::device::Device;
use super::state::{AgentState, StateFile};

/// Most support account names a check-in reports.
const MAX_REPORTED_ACCOUNTS: usize = 64;
/// Longest failure message the server takes, in characters.
const MAX_FAILURE_CHARS: usize = 500;

/// The agent between runs: its server, key, device, state and settings.
pub struct Session {
    pub client: Client,
    pub key: DeviceSigningKey,
    pub device: Device,
    pub file: StateFile,
    pub state: AgentState,
    /// The managed admin account.
    pub account: AccountName,
    /// The group that makes an account an administrator.
    pub admin_group: String,
}

/// How a job ended, when it did not stop the run.
pub enum JobEnd {
    /// Done and confirmed (or confirmed by an earlier attempt).
    Done(String),
    /// The server no longer had it open (404/409): someone else finished it.
    AlreadyFinished,
    /// Could not be done (its password was not set); reported to the server as failed.
    Failed(String),
}

/// What stops a job part-way without a failure report; the next check-in reconciles.
pub enum Interrupted {
    /// The server could not be reached: later jobs cannot be posted or confirmed either.
    Unreachable(String),
    /// A step did not complete (after the password was set, or the server refused a post).
    Stopped(String),
}

impl Session {
    /// Housekeeping, check-in, then the jobs. Errors of single jobs do not stop the others
    /// (unless the server is unreachable); they are all returned at the end.
    pub async fn run_once(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Err(e) = self.housekeeping(time::OffsetDateTime::now_utc()).await {
            eprintln!("warning: {e}");
        }
        if let Err(e) = self.expire_local_admins(time::OffsetDateTime::now_utc()).await {
            eprintln!("warning: {e}");
        }
        let managed = match self.device.support_accounts(MAX_REPORTED_ACCOUNTS).await {
            Ok(names) => names,
            Err(e) => {
                eprintln!("warning: cannot list the support accounts on this device: {e}");
                Vec::new()
            }
        };
        let report = proto::AgentCheckIn { password_version: self.state.password_version, managed_accounts: managed };
        let answer = self
            .client
            .agent_check_in(&self.key, &self.state.device_id, &report)
            .await
            .map_err(|e| format!("check-in failed: {e}"))?;
        if answer.poll_interval_seconds != self.state.poll_interval_seconds {
            self.state.poll_interval_seconds = answer.poll_interval_seconds;
            self.save()?;
        }
        println!(
            "checked in as {} (tenant {}); {} job(s); next check-in in about {} s",
            self.state.device_id,
            self.state.tenant,
            answer.jobs.len(),
            answer.poll_interval_seconds
        );
        for job in &answer.jobs {
            match self.run_job(job).await {
                Ok(JobEnd::Done(what)) => println!("job {}: {what}", job.id),
                Ok(JobEnd::AlreadyFinished) => println!("job {}: already finished; skipped", job.id),
                Ok(JobEnd::Failed(why)) => {
                    errors.push(format!("job {} failed: {why}", job.id));
                }
                Err(Interrupted::Stopped(why)) => errors.push(format!("job {} interrupted: {why}", job.id)),
                Err(Interrupted::Unreachable(why)) => {
                    errors.push(format!("job {} interrupted: {why}", job.id));
                    break;
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    async fn run_job(&mut self, job: &proto::AgentJob) -> Result<JobEnd, Interrupted> {
        match &job.work {
            proto::AgentWork::RotatePassword { policy } => self.rotate(&job.id, policy).await,
            proto::AgentWork::CreateSupportAccount { policy } => self.create_support(&job.id, policy).await,
            proto::AgentWork::RemoveSupportAccount { username } => self.remove_support(&job.id, username).await,
            proto::AgentWork::GrantLocalAdmin { username, grant_id, sealed_password, until } => {
                self.grant_local_admin(&job.id, (username, grant_id), sealed_password, *until).await
            }
            proto::AgentWork::RevokeLocalAdmin { username } => self.revoke_local_admin(&job.id, username).await,
        }
    }

    /// Write the state durably.
    pub fn save(&self) -> Result<(), String> {
        self.file.write(&self.state)
    }

    /// Report a job as failed (its password was not set on the device).
    pub async fn fail(&self, job_id: &str, why: String) -> Result<JobEnd, Interrupted> {
        let message: String = why.chars().take(MAX_FAILURE_CHARS).collect();
        match self.client.agent_fail(&self.key, &self.state.device_id, job_id, &message).await {
            Ok(_) => Ok(JobEnd::Failed(why)),
            Err(e) if already_finished(&e) => Ok(JobEnd::AlreadyFinished),
            Err(e) => Err(interrupted(&e, &format!("{why}; reporting the failure failed"))),
        }
    }
}

/// The server answered that the job is no longer open (done, failed, or never this device's).
pub fn already_finished(e: &ClientError) -> bool {
    matches!(e.status(), Some(404 | 409))
}

/// The job stops at `step` because of `e`.
pub fn interrupted(e: &ClientError, step: &str) -> Interrupted {
    match e {
        ClientError::Transport(_) => Interrupted::Unreachable(format!("{step}: {e}")),
        _ => Interrupted::Stopped(format!("{step}: {e}")),
    }
}
