//! Mapping domain records to wire types.

use latchkey_core::model;
use latchkey_proto as proto;

pub fn tenant(t: model::Tenant) -> proto::Tenant {
    proto::Tenant { id: t.id, slug: t.slug, name: t.name, created_at: t.created_at }
}

/// A device as seen at `now`: its check-in is overdue when it was never seen or not within
/// two poll intervals.
pub fn device(d: model::Device, tenant_slug: &str, now: time::OffsetDateTime) -> proto::Device {
    let overdue = d.enrolled_at.is_some()
        && d.last_seen_at.is_none_or(|seen| seen + time::Duration::seconds(2 * d.poll_interval_secs) < now);
    proto::Device {
        device_id: d.id,
        tenant: tenant_slug.to_owned(),
        name: d.name,
        container_dn: d.container_dn,
        os: d.os,
        enrolled_at: d.enrolled_at,
        last_seen_at: d.last_seen_at,
        poll_interval_seconds: d.poll_interval_secs,
        created_at: d.created_at,
        password_version: d.reported_version,
        last_rotated_at: d.last_rotated_at,
        open_jobs: d.open_jobs,
        check_in_overdue: overdue,
    }
}

pub fn group(g: model::Group, tenant_slug: &str) -> proto::Group {
    proto::Group {
        id: g.id,
        tenant: tenant_slug.to_owned(),
        name: g.name,
        description: g.description,
        created_at: g.created_at,
    }
}

pub fn member(m: model::GroupMember) -> proto::GroupMember {
    proto::GroupMember {
        kind: match m.kind {
            model::MemberKind::Device => proto::MemberKind::Device,
            model::MemberKind::User => proto::MemberKind::User,
            model::MemberKind::Group => proto::MemberKind::Group,
        },
        id: m.id,
    }
}

pub fn member_kind(k: proto::MemberKind) -> model::MemberKind {
    match k {
        proto::MemberKind::Device => model::MemberKind::Device,
        proto::MemberKind::User => model::MemberKind::User,
        proto::MemberKind::Group => model::MemberKind::Group,
    }
}

pub fn user(u: model::User, tenant_slug: &str) -> proto::User {
    proto::User {
        id: u.id,
        tenant: tenant_slug.to_owned(),
        name: u.name,
        display_name: u.display_name,
        email: u.email,
        created_at: u.created_at,
    }
}

pub fn account_kind(k: proto::AccountKind) -> model::AccountKind {
    match k {
        proto::AccountKind::DeviceAdmin => model::AccountKind::DeviceAdmin,
        proto::AccountKind::Support => model::AccountKind::Support,
        proto::AccountKind::Directory => model::AccountKind::Directory,
        proto::AccountKind::Generic => model::AccountKind::Generic,
    }
}

pub fn account(a: model::Account, active_version: Option<i64>, tenant_slug: &str) -> proto::Account {
    proto::Account {
        id: a.id,
        tenant: tenant_slug.to_owned(),
        kind: match a.kind {
            model::AccountKind::DeviceAdmin => proto::AccountKind::DeviceAdmin,
            model::AccountKind::Support => proto::AccountKind::Support,
            model::AccountKind::Directory => proto::AccountKind::Directory,
            model::AccountKind::Generic => proto::AccountKind::Generic,
        },
        name: a.name,
        device_id: a.device_id,
        description: a.description,
        active_version,
        created_at: a.created_at,
    }
}

pub fn secret_version(v: &model::SecretVersion) -> proto::SecretVersionInfo {
    proto::SecretVersionInfo {
        account_id: v.account_id.clone(),
        version: v.version,
        state: match v.state {
            model::SecretState::Pending => proto::SecretState::Pending,
            model::SecretState::Active => proto::SecretState::Active,
            model::SecretState::Retired => proto::SecretState::Retired,
        },
        has_password: v.password_envelope.is_some(),
        has_ssh_private_key: v.ssh_key_envelope.is_some(),
        key_id: v.key_id.clone(),
        created_at: v.created_at,
        expires_at: v.expires_at,
    }
}

pub fn api_client(c: model::ApiClient, tenant_slug: &str) -> proto::ApiClient {
    proto::ApiClient {
        id: c.id,
        tenant: tenant_slug.to_owned(),
        name: c.name,
        disabled: c.disabled_at.is_some(),
        created_at: c.created_at,
    }
}

pub fn audit_event(e: latchkey_core::AuditEvent, tenant_slug: Option<String>) -> proto::AuditEvent {
    let b = e.body;
    proto::AuditEvent {
        seq: e.seq,
        at: b.at,
        tenant: tenant_slug,
        actor: b.actor,
        action: b.action.as_str().to_owned(),
        object_type: b.object_type.as_str().to_owned(),
        object_id: b.object_id,
        outcome: b.outcome.as_str().to_owned(),
        reason: b.reason,
        ticket: b.ticket,
        client_addr: b.client_addr,
        request_id: b.request_id,
        details: serde_json::from_str(&b.details).unwrap_or(serde_json::Value::Null),
        hash: hex::encode(e.hash),
    }
}

/// Optional free text (description, OS, e-mail): trimmed, at most `max` characters, no
/// control characters; empty means absent.
pub fn optional_text(
    field: &'static str,
    v: Option<String>,
    max: usize,
) -> Result<Option<String>, crate::error::ApiError> {
    let Some(v) = v else { return Ok(None) };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > max {
        return Err(crate::error::ApiError::invalid(format!("{field} is longer than {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(crate::error::ApiError::invalid(format!("{field} contains a character that is not allowed")));
    }
    Ok(Some(v.to_owned()))
}

/// A stored rotation policy.
pub fn rotation_policy(p: latchkey_store::ScopedPolicy, tenant_slug: &str) -> proto::RotationPolicy {
    let r = p.policy;
    proto::RotationPolicy {
        tenant: tenant_slug.to_owned(),
        priority: p.group_id.as_ref().map(|_| p.priority),
        group_id: p.group_id,
        max_age_seconds: r.max_age.whole_seconds(),
        length: r.length,
        classes: r.classes.as_list(),
        passphrase_words: r.passphrase_words,
        history: r.history,
        support_lifetime_seconds: r.support_lifetime.whole_seconds(),
        poll_interval_seconds: r.poll_interval.whole_seconds(),
        updated_at: p.updated_at,
    }
}

/// A device job.
pub fn device_job(j: latchkey_core::DeviceJob) -> proto::DeviceJob {
    use latchkey_core::{JobCause, JobKind, JobState};
    proto::DeviceJob {
        id: j.id,
        device_id: j.device_id,
        kind: match j.kind {
            JobKind::RotatePassword => proto::DeviceJobKind::RotatePassword,
            JobKind::CreateSupportAccount => proto::DeviceJobKind::CreateSupportAccount,
            JobKind::RemoveSupportAccount => proto::DeviceJobKind::RemoveSupportAccount,
            JobKind::GrantLocalAdmin => proto::DeviceJobKind::GrantLocalAdmin,
            JobKind::RevokeLocalAdmin => proto::DeviceJobKind::RevokeLocalAdmin,
        },
        state: match j.state {
            JobState::Open => proto::DeviceJobState::Open,
            JobState::Done => proto::DeviceJobState::Done,
            JobState::Failed => proto::DeviceJobState::Failed,
        },
        cause: match j.cause {
            JobCause::Initial => proto::DeviceJobCause::Initial,
            JobCause::Age => proto::DeviceJobCause::Age,
            JobCause::Expired => proto::DeviceJobCause::Expired,
            JobCause::Requested => proto::DeviceJobCause::Requested,
            JobCause::Reconcile => proto::DeviceJobCause::Reconcile,
            JobCause::Lifetime => proto::DeviceJobCause::Lifetime,
        },
        account_id: j.account_id,
        created_at: j.created_at,
        updated_at: j.updated_at,
        error: j.error,
    }
}

/// Now, at the store's precision (milliseconds), so an answer equals what a later list shows.
pub fn stored_now(state: &crate::state::AppState) -> time::OffsetDateTime {
    use latchkey_core::clock::{from_millis, to_millis};
    from_millis(to_millis(state.clock().now()))
}
