//! A person reading a device's admin password: the tenant's access targets decide, and in
//! one transaction the read (or its denial) is audited, the matched target's expire-after
//! is applied and its audit notices are queued.

use latchkey_core::access::{Operation, Target};
use latchkey_core::model::Device;
use latchkey_core::notification::{EmailAddress, Notification, PasswordReadNotice};
use latchkey_core::{NewAuditEvent, Outcome};
use latchkey_proto as proto;
use latchkey_store::{GovernedRead, StoreError};
use time::OffsetDateTime;

use super::access::decide;
use super::support_account::failed_at_device;
use crate::auth::SignedInUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::vault;

/// What the person asked for.
pub(crate) struct ReadRequest<'a> {
    pub tenant_slug: &'a str,
    pub device: &'a Device,
    /// A version from the history; `None` for the active password.
    pub version: Option<i64>,
    /// The read's audit event (reason and ticket set).
    pub event: NewAuditEvent,
}

/// Decide, read and answer. A denial is audited (and notified) before the 403 leaves.
pub(crate) async fn read_as_user(
    state: &AppState,
    user: &SignedInUser,
    req: ReadRequest<'_>,
) -> Result<proto::RevealedSecret, ApiError> {
    let tenant_id = user.tenant_id.clone();
    let op = if req.version.is_some() { Operation::ReadHistory } else { Operation::ReadPassword };
    let index = state.access().index(state.store(), &tenant_id).await.map_err(|e| ApiError::store("targets", e))?;
    let decision = decide(state, &index, &tenant_id, &user.user_id, req.device, op).await?;
    let target = decision.matched.as_ref().map(|m| index.targets()[m.target].clone());
    let now = state.clock().now();
    let notices = Notices { req: &req, user, target: target.as_ref(), now };
    let mut event = req.event.clone().object(req.device.id.clone());
    event.object_type = latchkey_core::ObjectType::Device;
    if let Some(denied) = decision.denied {
        let event = event.outcome(Outcome::Denied).details(&serde_json::json!({
            "operation": op.as_str(),
            "target": target.as_ref().map(|t| &t.id),
            "deniedBecause": denied.as_str(),
        }));
        state
            .store()
            .audit_with_notices(&tenant_id, vec![event], notices.on(Outcome::Denied), now)
            .await
            .map_err(|e| ApiError::store("audit", e))?;
        state.metrics().secret_read("denied");
        return Err(ApiError::forbidden(format!("you may not read this device's password: {}", denied.as_str())));
    }
    let target = target.as_ref().ok_or_else(|| ApiError::Internal("an allowed decision names no target".into()))?;
    let admin_state =
        state.store().admin_password_state(&req.device.id).await.map_err(|e| ApiError::store("device", e))?;
    let Some(account) = admin_state else {
        let failed = failed_at_device(event, &req.device.id, "no escrowed admin password");
        state
            .store()
            .audit_with_notices(&tenant_id, vec![failed], notices.on(Outcome::Failed), now)
            .await
            .map_err(|e| ApiError::store("audit", e))?;
        state.metrics().secret_read("failed");
        return Err(ApiError::not_found("escrowed admin password for this device"));
    };
    let keyring = state.keyring_handle();
    let open = move |a: &latchkey_core::model::Account, v: &latchkey_core::model::SecretVersion| {
        let ring = keyring.read().unwrap_or_else(|e| e.into_inner());
        let opened = vault::open_version(&ring, v).map_err(|e| e.to_string())?;
        Ok((a.name.clone(), opened))
    };
    let mut event = event.object(account.account_id.clone());
    event.object_type = latchkey_core::ObjectType::Account;
    let read = GovernedRead {
        tenant_id: tenant_id.clone(),
        account_id: account.account_id.clone(),
        version: req.version,
        expire_after: target.expire_after,
        now,
        event,
        on_success: notices.on(Outcome::Success),
        on_failure: notices.on(Outcome::Failed),
    };
    let found = match state.store().read_secret_governed(read, open).await {
        Ok(found) => found,
        Err(StoreError::NotFound) => {
            state.metrics().secret_read("failed");
            return Err(match req.version {
                Some(v) => ApiError::not_found(&format!("version {v} of this device's admin password")),
                None => ApiError::not_found("active admin password for this device"),
            });
        }
        Err(StoreError::Seal(why)) => {
            state.metrics().secret_read("failed");
            let msg = format!("admin password of device {} cannot be opened: {why}", req.device.id);
            return Err(ApiError::Internal(msg));
        }
        Err(e) => return Err(ApiError::store("device", e)),
    };
    state.metrics().secret_read("success");
    let (account_name, opened) = found.value;
    Ok(proto::RevealedSecret {
        account_id: account.account_id,
        account_name,
        version: found.version,
        password: opened.password.map(|p| p.as_str().to_owned()),
        ssh_private_key: None,
        expires_at: found.expires_at,
        rotation_expected_at: found.expires_at.map(|at| expected_rotation(req.device, at)),
    })
}

/// Refuse unless a target lets `user` do `op` on `device`; a refusal is audited.
pub(crate) async fn require_grant(
    state: &AppState,
    user: &SignedInUser,
    device: &Device,
    op: Operation,
) -> Result<(), ApiError> {
    let index =
        state.access().index(state.store(), &user.tenant_id).await.map_err(|e| ApiError::store("targets", e))?;
    let decision = decide(state, &index, &user.tenant_id, &user.user_id, device, op).await?;
    let Some(denied) = decision.denied else { return Ok(()) };
    let target = decision.matched.as_ref().map(|m| &index.targets()[m.target].id);
    let event = user
        .event(state, latchkey_core::Action::AccessDenied, latchkey_core::ObjectType::Device)
        .object(device.id.clone())
        .outcome(Outcome::Denied)
        .details(&serde_json::json!({ "operation": op.as_str(), "target": target, "deniedBecause": denied.as_str() }));
    state.store().append_audit(vec![event]).await.map_err(|e| ApiError::store("audit", e))?;
    Err(ApiError::forbidden(format!("you may not do this on this device: {}", denied.as_str())))
}

/// When the agent is expected to rotate a password that expires at `at`: at its first
/// check-in from then on (its last check-in plus whole poll intervals), or at `at` when the
/// device never checked in.
pub(crate) fn expected_rotation(device: &Device, at: OffsetDateTime) -> OffsetDateTime {
    let Some(seen) = device.last_seen_at else { return at };
    let interval = time::Duration::seconds(device.poll_interval_secs.max(1));
    if seen + interval >= at {
        return seen + interval;
    }
    let behind = (at - seen).whole_seconds();
    let steps = (behind + interval.whole_seconds() - 1) / interval.whole_seconds();
    seen + interval * i32::try_from(steps).unwrap_or(i32::MAX)
}

/// The notices of one read, by outcome.
struct Notices<'a> {
    req: &'a ReadRequest<'a>,
    user: &'a SignedInUser,
    target: Option<&'a Target>,
    now: OffsetDateTime,
}

impl Notices<'_> {
    /// The notice for `outcome`: mailed to the target's addresses when its audit settings ask
    /// for this outcome, and always offered to the webhook.
    fn on(&self, outcome: Outcome) -> Vec<Notification> {
        let recipients = match self.target {
            Some(t)
                if (outcome == Outcome::Success && t.audit.email_on_success)
                    || (outcome != Outcome::Success && t.audit.email_on_failure) =>
            {
                t.audit.email_addresses.iter().filter_map(|a| EmailAddress::parse(a).ok()).collect()
            }
            _ => Vec::new(),
        };
        vec![Notification::PasswordRead(PasswordReadNotice {
            tenant_slug: self.req.tenant_slug.to_owned(),
            actor: self.user.actor(),
            device_name: self.req.device.name.clone(),
            device_id: self.req.device.id.clone(),
            at: self.now,
            client_addr: self.user.facts.client_addr.clone(),
            reason: self.req.event.reason.clone(),
            outcome,
            target_name: self.target.map(|t| t.name.clone()),
            recipients,
        })]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn device(last_seen: Option<OffsetDateTime>) -> Device {
        Device {
            id: "d".into(),
            tenant_id: "t".into(),
            name: "pc".into(),
            container_dn: None,
            os: None,
            agent_public_key: None,
            enrolled_at: None,
            last_seen_at: last_seen,
            poll_interval_secs: 1800,
            created_at: datetime!(2030-01-01 0:00 UTC),
            reported_version: None,
            last_rotated_at: None,
            open_jobs: 0,
        }
    }

    #[test]
    fn rotation_is_expected_at_the_first_check_in_after_the_expiry() {
        let seen = datetime!(2030-01-01 12:00 UTC);
        // Expiry before the next check-in: that check-in rotates.
        assert_eq!(expected_rotation(&device(Some(seen)), seen), datetime!(2030-01-01 12:30 UTC));
        // Expiry 50 minutes after the last check-in: the check-in at 13:00.
        let at = datetime!(2030-01-01 12:50 UTC);
        assert_eq!(expected_rotation(&device(Some(seen)), at), datetime!(2030-01-01 13:00 UTC));
        // Exactly on a check-in.
        let on = datetime!(2030-01-01 13:30 UTC);
        assert_eq!(expected_rotation(&device(Some(seen)), on), on);
        // Never seen: the expiry itself.
        assert_eq!(expected_rotation(&device(None), at), at);
    }
}
