//! Just-in-time local administrators on both backends: grant jobs queued once per (grant, end
//! time) and handed out by the batched check-in with what they carry; confirmations and
//! failures with their audit events and the sealed password dropped; a revoke queued once per
//! grant that supersedes the grant's open jobs; and every refusal changing nothing.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Db, T0, both, ev, new_id, new_tenant};
use latchkey_core::model::Device;
use latchkey_core::{Action, JobKind, JobState, NewAuditEvent, ObjectType};
use latchkey_store::{
    AuditFilter, CheckInContext, CheckInWrite, Decide, Enrollment, LocalAdminWork, NewEnrollmentToken,
    NewLocalAdminGrant, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

/// The public key the test devices enroll with.
const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

both!(
    grants_are_queued_once_per_end_time_and_handed_out_at_check_in,
    confirmations_finish_jobs_and_drop_the_sealed_password,
    a_revoke_is_queued_once_and_supersedes_open_grants,
    a_failed_job_is_queued_afresh,
    refusals_change_nothing,
);

async fn enrolled_device(store: &Store, tenant_id: &str, name: &str) -> Device {
    let mut token_hash = [0u8; 32];
    token_hash[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    token_hash[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let token = NewEnrollmentToken {
        id: new_id(),
        tenant_id: tenant_id.to_owned(),
        token_hash,
        created_at: T0,
        expires_at: T0 + Duration::hours(1),
    };
    let token_id = token.id.clone();
    store
        .create_enrollment_token(
            token,
            ev(Action::EnrollmentTokenCreate, ObjectType::EnrollmentToken, tenant_id, &token_id),
        )
        .await
        .unwrap();
    let e = Enrollment {
        device_id: new_id(),
        hostname: name.to_owned(),
        hostname_key: name.to_lowercase(),
        os: Some("linux".into()),
        public_key: KEY.into(),
    };
    store.enroll_device(token_hash, T0, e, ev(Action::DeviceEnroll, ObjectType::Device, tenant_id, "")).await.unwrap()
}

fn grant(device: &Device, grant_id: &str, username: &str, until: OffsetDateTime) -> NewLocalAdminGrant {
    NewLocalAdminGrant {
        job_id: new_id(),
        tenant_id: device.tenant_id.clone(),
        device_id: device.id.clone(),
        grant_id: grant_id.to_owned(),
        username: username.to_owned(),
        sealed_password: format!("sealed-for-{username}-until-{}", until.unix_timestamp()),
        device_key: KEY.to_owned(),
        until,
    }
}

fn engine_ev(action: Action, tenant_id: &str, grant_id: &str) -> NewAuditEvent {
    NewAuditEvent::new(T0, "jit-engine", action, ObjectType::JitGrant).tenant(tenant_id).object(grant_id)
}

fn agent_ev(device: &Device) -> NewAuditEvent {
    NewAuditEvent::new(T0, format!("agent:{}", device.id), Action::RotationConfirm, ObjectType::Account)
        .tenant(device.tenant_id.clone())
}

/// A signed check-in as the server makes it (nothing to confirm or queue): the device's open
/// jobs from the batch's context.
async fn open_jobs(store: &Store, device: &Device, nonce: &str) -> Vec<(String, JobKind)> {
    let decide: Decide = Box::new({
        let (id, tenant, nonce) = (device.id.clone(), device.tenant_id.clone(), nonce.to_owned());
        move |_: &CheckInContext| CheckInWrite {
            device_id: id,
            tenant_id: tenant,
            nonce,
            nonce_expires_at: T0 + Duration::minutes(10),
            reported_version: None,
            poll_interval_secs: 1800,
            confirm: None,
            rotate: None,
            remove_support: Vec::new(),
        }
    });
    let template = NewAuditEvent::new(T0, "agent:test", Action::RotationRequest, ObjectType::DeviceJob);
    let (context, queued) = store.check_in(&device.id, KEY, T0, template, decide).await.unwrap();
    assert!(queued.is_empty());
    context.snapshot.open_jobs.into_iter().map(|(j, _)| (j.id, j.kind)).collect()
}

async fn events(store: &Store, action: Action) -> Vec<latchkey_core::AuditEvent> {
    let filter = AuditFilter { action: Some(action.as_str().to_owned()), limit: 100, ..Default::default() };
    store.list_audit(&filter).await.unwrap()
}

async fn job_rows(db: &Db) -> i64 {
    db.raw_i64("SELECT COUNT(*) FROM device_jobs").await + db.raw_i64("SELECT COUNT(*) FROM local_admin_jobs").await
}

async fn grants_are_queued_once_per_end_time_and_handed_out_at_check_in(db: Db) {
    let store = db.open().await;
    let tenant = new_tenant(&store, "acme").await;
    let device = enrolled_device(&store, &tenant.id, "pc1").await;
    let until = T0 + Duration::hours(1);

    let first = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", until),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    // The same grant and end time again (a retried step): the same job, no second event.
    let again = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", until),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    assert_eq!(first, again);
    let queued = events(&store, Action::JitActivate).await;
    assert_eq!(queued.len(), 1);
    let details: serde_json::Value = serde_json::from_str(&queued[0].body.details).unwrap();
    assert_eq!(details["job"], first.as_str());
    assert_eq!(details["username"], "alice-jit");
    assert_eq!(queued[0].body.object_id.as_deref(), Some("g1"), "the caller's object is kept");
    assert!(!queued[0].body.details.contains("sealed-for"), "the sealed password is not in the audit log");

    // Extended: a new job with the later end time.
    let later = until + Duration::hours(1);
    let extended = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", later),
            T0 + Duration::seconds(1),
            engine_ev(Action::JitExtend, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    assert_ne!(extended, first);

    // Both are handed out by the batched check-in, oldest first, with what they carry.
    let open = open_jobs(&store, &device, "nonce-1").await;
    let ids: Vec<&str> = open.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), extended.as_str()]);
    assert!(open.iter().all(|(_, k)| *k == JobKind::GrantLocalAdmin));
    let work = store.local_admin_work(&ids).await.unwrap();
    assert_eq!(
        work[&first],
        LocalAdminWork::Grant {
            username: "alice-jit".into(),
            grant_id: "g1".into(),
            sealed_password: format!("sealed-for-alice-jit-until-{}", until.unix_timestamp()),
            until,
        }
    );
    assert!(matches!(&work[&extended], LocalAdminWork::Grant { until: u, .. } if *u == later));
    let shown = store.local_admin_job(&first).await.unwrap();
    assert_eq!((shown.job.state, shown.grant_id.as_str(), shown.until), (JobState::Open, "g1", Some(until)));
    assert_eq!(store.device(&tenant.id, &device.id).await.unwrap().open_jobs, 2);
}

async fn confirmations_finish_jobs_and_drop_the_sealed_password(db: Db) {
    let store = db.open().await;
    let tenant = new_tenant(&store, "acme").await;
    let device = enrolled_device(&store, &tenant.id, "pc1").await;
    let job = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", T0 + Duration::hours(1)),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    // A local admin job takes no pending password and no version.
    let pending = store
        .post_pending(
            &device.id,
            &job,
            ("alice-jit".into(), "alice-jit".into()),
            Duration::hours(1),
            T0,
            Box::new(|_: &str| -> latchkey_store::SealFn { Box::new(|_| Err("never sealed".into())) }),
            agent_ev(&device),
        )
        .await;
    assert!(matches!(pending, Err(StoreError::Conflict(_))), "{pending:?}");
    let with_version = store.confirm_job(&device.id, &job, Some(1), 12, T0, agent_ev(&device)).await;
    assert!(matches!(with_version, Err(StoreError::Conflict(_))), "{with_version:?}");
    // Only the device the job is for can confirm it.
    let other = enrolled_device(&store, &tenant.id, "pc2").await;
    assert!(matches!(
        store.confirm_job(&other.id, &job, None, 12, T0, agent_ev(&other)).await,
        Err(StoreError::NotFound)
    ));

    let done = store.confirm_job(&device.id, &job, None, 12, T0, agent_ev(&device)).await.unwrap();
    assert_eq!((done.kind, done.state), (JobKind::GrantLocalAdmin, JobState::Done));
    assert_eq!(store.local_admin_job(&job).await.unwrap().job.state, JobState::Done);
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM local_admin_jobs WHERE sealed_password IS NOT NULL").await, 0);
    let granted = events(&store, Action::LocalAdminGrant).await;
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0].body.object_id.as_deref(), Some(job.as_str()));
    assert!(granted[0].body.details.contains("alice-jit"));
    // Done: not handed out again, not confirmed twice.
    assert!(open_jobs(&store, &device, "nonce-1").await.is_empty());
    assert!(matches!(
        store.confirm_job(&device.id, &job, None, 12, T0, agent_ev(&device)).await,
        Err(StoreError::NotFound)
    ));

    let revoke = store
        .queue_local_admin_revoke(
            (&tenant.id, &device.id),
            "g1",
            "alice-jit",
            T0,
            engine_ev(Action::JitRevoke, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    let open = open_jobs(&store, &device, "nonce-2").await;
    assert_eq!(open, [(revoke.clone(), JobKind::RevokeLocalAdmin)]);
    let work = store.local_admin_work(&[revoke.as_str()]).await.unwrap();
    assert_eq!(work[&revoke], LocalAdminWork::Revoke { username: "alice-jit".into() });
    store.confirm_job(&device.id, &revoke, None, 12, T0, agent_ev(&device)).await.unwrap();
    assert_eq!(events(&store, Action::LocalAdminRevoke).await.len(), 1);
    assert_eq!(store.verify_audit_chain().await.unwrap().map(|_| ()), Ok(()));
}

async fn a_revoke_is_queued_once_and_supersedes_open_grants(db: Db) {
    let store = db.open().await;
    let tenant = new_tenant(&store, "acme").await;
    let device = enrolled_device(&store, &tenant.id, "pc1").await;
    let job = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", T0 + Duration::hours(1)),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    let revoke_ev = || engine_ev(Action::JitRevoke, &tenant.id, "g1");
    let revoke =
        store.queue_local_admin_revoke((&tenant.id, &device.id), "g1", "alice-jit", T0, revoke_ev()).await.unwrap();
    let again =
        store.queue_local_admin_revoke((&tenant.id, &device.id), "g1", "alice-jit", T0, revoke_ev()).await.unwrap();
    assert_eq!(revoke, again);
    assert_eq!(events(&store, Action::JitRevoke).await.len(), 1);

    // The device never gets the grant it had not carried out.
    let superseded = store.local_admin_job(&job).await.unwrap().job;
    assert_eq!(superseded.state, JobState::Failed);
    assert!(superseded.error.unwrap().contains("revoked"));
    assert_eq!(open_jobs(&store, &device, "nonce-1").await, [(revoke.clone(), JobKind::RevokeLocalAdmin)]);
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM local_admin_jobs WHERE sealed_password IS NOT NULL").await, 0);

    // A revoked grant is not granted again, and its jobs always name one device and account.
    let before = job_rows(&db).await;
    let regrant = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", T0 + Duration::hours(2)),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await;
    assert!(matches!(regrant, Err(StoreError::Conflict(_))), "{regrant:?}");
    let renamed = store.queue_local_admin_revoke((&tenant.id, &device.id), "g1", "bob-jit", T0, revoke_ev()).await;
    assert!(matches!(renamed, Err(StoreError::Conflict(_))), "{renamed:?}");
    assert_eq!(job_rows(&db).await, before);
}

async fn a_failed_job_is_queued_afresh(db: Db) {
    let store = db.open().await;
    let tenant = new_tenant(&store, "acme").await;
    let device = enrolled_device(&store, &tenant.id, "pc1").await;
    let until = T0 + Duration::hours(1);
    let job = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", until),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    let failed = store
        .fail_job(&device.id, &job, "the sealed password does not open".into(), T0, agent_ev(&device))
        .await
        .unwrap();
    assert_eq!(failed.state, JobState::Failed);
    let shown = store.local_admin_job(&job).await.unwrap().job;
    assert_eq!(shown.error.as_deref(), Some("the sealed password does not open"));
    let fails = events(&store, Action::LocalAdminFail).await;
    assert_eq!(fails.len(), 1);
    assert_eq!(fails[0].body.outcome, latchkey_core::Outcome::Failed);
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM local_admin_jobs WHERE sealed_password IS NOT NULL").await, 0);

    let retry = store
        .queue_local_admin_grant(
            grant(&device, "g1", "alice-jit", until),
            T0,
            engine_ev(Action::JitActivate, &tenant.id, "g1"),
        )
        .await
        .unwrap();
    assert_ne!(retry, job);
    assert_eq!(open_jobs(&store, &device, "nonce-1").await, [(retry, JobKind::GrantLocalAdmin)]);
}

async fn refusals_change_nothing(db: Db) {
    let store = db.open().await;
    let tenant = new_tenant(&store, "acme").await;
    let other_tenant = new_tenant(&store, "other").await;
    let device = enrolled_device(&store, &tenant.id, "pc1").await;
    let until = T0 + Duration::hours(1);
    let before = (job_rows(&db).await, store.audit_head().await.unwrap().seq);
    let activate = || engine_ev(Action::JitActivate, &tenant.id, "g1");

    let mut unknown = grant(&device, "g1", "alice-jit", until);
    unknown.device_id = new_id();
    assert!(matches!(store.queue_local_admin_grant(unknown, T0, activate()).await, Err(StoreError::NotFound)));
    let mut elsewhere = grant(&device, "g1", "alice-jit", until);
    elsewhere.tenant_id = other_tenant.id.clone();
    assert!(matches!(store.queue_local_admin_grant(elsewhere, T0, activate()).await, Err(StoreError::NotFound)));
    let mut rekeyed = grant(&device, "g1", "alice-jit", until);
    rekeyed.device_key = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".into();
    assert!(matches!(store.queue_local_admin_grant(rekeyed, T0, activate()).await, Err(StoreError::Conflict(_))));
    let revoke =
        store.queue_local_admin_revoke((&other_tenant.id, &device.id), "g1", "alice-jit", T0, activate()).await;
    assert!(matches!(revoke, Err(StoreError::NotFound)), "{revoke:?}");
    assert_eq!((job_rows(&db).await, store.audit_head().await.unwrap().seq), before);

    // A grant's jobs name one device.
    store.queue_local_admin_grant(grant(&device, "g1", "alice-jit", until), T0, activate()).await.unwrap();
    let second = enrolled_device(&store, &tenant.id, "pc2").await;
    let moved = store.queue_local_admin_grant(grant(&second, "g1", "alice-jit", until), T0, activate()).await;
    assert!(matches!(moved, Err(StoreError::Conflict(_))), "{moved:?}");

    // Other jobs are not local admin jobs.
    assert!(matches!(store.local_admin_job(&new_id()).await, Err(StoreError::NotFound)));
    let rotation = store
        .request_rotation(
            &tenant.id,
            &device.id,
            T0,
            ev(Action::RotationRequest, ObjectType::DeviceJob, &tenant.id, ""),
        )
        .await
        .unwrap();
    assert!(matches!(store.local_admin_job(&rotation.id).await, Err(StoreError::NotFound)));
}
