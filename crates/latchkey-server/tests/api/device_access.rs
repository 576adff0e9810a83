//! The native device access API: rotation policies, queued rotations and jobs, the device
//! admin password (active and history, audited) and support accounts.

use latchkey_client::AuditQuery;
use latchkey_proto as proto;
use proto::ProblemCode;

use crate::both;
use crate::device_agent::{Agent, Kind, job_of};
use crate::helpers::TestApp;

async fn events(app: &TestApp, action: &str) -> Vec<proto::AuditEvent> {
    let q = AuditQuery { action: Some(action.into()), limit: Some(1000), ..Default::default() };
    app.client.list_audit(&q).await.unwrap().items
}

fn reveal(reason: &str, version: Option<i64>) -> proto::DevicePasswordRequest {
    proto::DevicePasswordRequest { reason: reason.into(), ticket: None, version }
}

both!(policies_are_set_listed_validated_and_followed, |app: TestApp| async move {
    let c = &app.client;
    let set = proto::RotationPolicySet {
        length: Some(32),
        classes: Some("lower, Digits".into()),
        poll_interval_seconds: Some(600),
        ..Default::default()
    };
    let tenant_policy = c.set_tenant_rotation_policy("default", &set).await.unwrap();
    assert_eq!(tenant_policy.group_id, None);
    assert_eq!(tenant_policy.priority, None);
    assert_eq!((tenant_policy.length, tenant_policy.classes.as_str()), (32, "lower,digits"));
    // Missing fields take the defaults.
    assert_eq!(tenant_policy.max_age_seconds, 30 * 86_400);
    assert_eq!((tenant_policy.history, tenant_policy.support_lifetime_seconds), (12, 86_400));
    assert_eq!(tenant_policy.passphrase_words, None);

    let group =
        c.create_group("default", &proto::GroupCreate { name: "kiosks".into(), description: None }).await.unwrap();
    let group_set = proto::RotationPolicySet { passphrase_words: Some(6), priority: Some(5), ..Default::default() };
    let group_policy = c.set_group_rotation_policy("default", &group.id, &group_set).await.unwrap();
    assert_eq!((group_policy.group_id.as_deref(), group_policy.priority), (Some(group.id.as_str()), Some(5)));
    let listed = c.rotation_policies("default").await.unwrap().items;
    assert_eq!(listed, vec![tenant_policy.clone(), group_policy.clone()]);

    // Every bad value is refused with a message that names the field.
    let bad = |f: fn(&mut proto::RotationPolicySet)| {
        let mut b = proto::RotationPolicySet::default();
        f(&mut b);
        b
    };
    for (body, field) in [
        (bad(|b| b.length = Some(7)), "length"),
        (bad(|b| b.length = Some(257)), "length"),
        (bad(|b| b.classes = Some(String::new())), "classes"),
        (bad(|b| b.classes = Some("lower,emoji".into())), "classes"),
        (bad(|b| b.max_age_seconds = Some(60)), "maxAgeSeconds"),
        (bad(|b| b.history = Some(0)), "history"),
        (bad(|b| b.support_lifetime_seconds = Some(10)), "supportLifetimeSeconds"),
        (bad(|b| b.poll_interval_seconds = Some(5)), "pollIntervalSeconds"),
        (bad(|b| b.passphrase_words = Some(3)), "passphraseWords"),
        (bad(|b| b.priority = Some(1)), "priority"),
    ] {
        let e = c.set_tenant_rotation_policy("default", &body).await.unwrap_err();
        assert_eq!(e.code(), Some(ProblemCode::InvalidField), "{field}: {e}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let e =
        c.set_group_rotation_policy("default", &group.id, &bad(|b| b.priority = Some(2_000_000))).await.unwrap_err();
    assert!(e.to_string().contains("priority"), "{e}");
    let e = c.set_group_rotation_policy("default", &uuid::Uuid::new_v4().to_string(), &set).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound));
    let e = c.set_group_rotation_policy("default", "not-a-uuid", &set).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::InvalidParameter));
    let resp = app
        .raw()
        .put(app.url("/api/v1/tenants/default/rotation-policy"))
        .bearer_auth(&app.token)
        .json(&serde_json::json!({ "lenght": 20 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // Nothing changed.
    assert_eq!(c.rotation_policies("default").await.unwrap().items, listed);
    assert_eq!(events(&app, "rotation_policy.set").await.len(), 2);

    // Agents follow the tenant's policy.
    let agent = Agent::enroll(&app, "default").await;
    let r = agent.check_in(None).await;
    assert_eq!(r.poll_interval_seconds, 600);
    let proto::AgentWork::RotatePassword { policy } = &r.jobs[0].work else { panic!("{r:?}") };
    assert_eq!(
        (policy.length, policy.lower, policy.upper, policy.digits, policy.symbols),
        (32, true, false, true, false)
    );
});

both!(rotate_queues_one_job_and_jobs_are_listed, |app: TestApp| async move {
    let c = &app.client;
    let agent = Agent::enroll(&app, "default").await;
    let v1 = agent.rotate(None, "first-Password-1").await;
    app.clock.advance(time::Duration::minutes(1));
    let first = c.rotate_device("default", &agent.id).await.unwrap();
    let second = c.rotate_device("default", &agent.id).await.unwrap();
    assert_eq!(first.id, second.id, "an open rotation is answered, not queued twice");
    assert_eq!(
        (first.kind, first.state, first.cause),
        (proto::DeviceJobKind::RotatePassword, proto::DeviceJobState::Open, proto::DeviceJobCause::Requested)
    );
    let jobs = c.device_jobs("default", &agent.id, None).await.unwrap().items;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].id, first.id);
    assert_eq!((jobs[1].cause, jobs[1].state), (proto::DeviceJobCause::Initial, proto::DeviceJobState::Done));
    assert_eq!(c.device("default", &agent.id).await.unwrap().open_jobs, 1);
    let requested = events(&app, "rotation.request").await;
    assert_eq!(requested.iter().filter(|e| e.actor.starts_with("admin-token:")).count(), 1);

    // The agent gets the job at its next check-in.
    assert_eq!(job_of(&agent.check_in(Some(v1)).await, Kind::Rotate), Some(first.id.clone()));

    // Bad device ids and other tenants' devices change nothing.
    c.create_tenant(&proto::TenantCreate { slug: "acme".into(), name: None }).await.unwrap();
    let other = Agent::enroll(&app, "acme").await;
    let before = crate::helpers::audit_count(&app).await;
    let e = c.rotate_device("default", &other.id).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound));
    assert_eq!(c.rotate_device("default", "nope").await.unwrap_err().code(), Some(ProblemCode::InvalidParameter));
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(c.rotate_device("default", &unknown).await.unwrap_err().code(), Some(ProblemCode::NotFound));
    assert_eq!(c.device_jobs("default", &other.id, None).await.unwrap_err().code(), Some(ProblemCode::NotFound));
    let e = c.device_jobs("default", &agent.id, Some(0)).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::InvalidParameter));
    assert!(c.device_jobs("acme", &other.id, None).await.unwrap().items.is_empty());
    assert_eq!(crate::helpers::audit_count(&app).await, before);
});

both!(password_reveal_needs_a_reason_and_is_audited, |app: TestApp| async move {
    let c = &app.client;
    let agent = Agent::enroll(&app, "default").await;
    let v1 = agent.rotate(None, "first-Password-1").await;
    c.rotate_device("default", &agent.id).await.unwrap();
    let v2 = agent.rotate(Some(v1), "second-Password-2").await;
    assert_eq!((v1, v2), (1, 2));

    // No reason: refused before anything is read or recorded.
    let url = app.url(&format!("/api/v1/tenants/default/devices/{}/password/reveal", agent.id));
    let resp = app.raw().post(&url).bearer_auth(&app.token).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    for bad in [reveal("   ", None), reveal("fine", Some(0))] {
        let e = c.reveal_device_password("default", &agent.id, &bad).await.unwrap_err();
        assert_eq!(e.code(), Some(ProblemCode::InvalidField), "{e}");
    }
    assert!(events(&app, "secret.read").await.is_empty());

    let active = c.reveal_device_password("default", &agent.id, &reveal("locked out", None)).await.unwrap();
    assert_eq!((active.password.as_deref(), active.version), (Some("second-Password-2"), 2));
    assert_eq!(active.account_name, "latchkey-admin");
    let mut old = reveal("restore from backup", Some(1));
    old.ticket = Some("INC-7".into());
    let first = c.reveal_device_password("default", &agent.id, &old).await.unwrap();
    assert_eq!((first.password.as_deref(), first.version), (Some("first-Password-1"), 1));
    let missing = c.reveal_device_password("default", &agent.id, &reveal("typo", Some(9))).await.unwrap_err();
    assert_eq!(missing.code(), Some(ProblemCode::NotFound));

    let reads = events(&app, "secret.read").await;
    let seen: Vec<(&str, Option<&str>, Option<&str>)> =
        reads.iter().map(|e| (e.outcome.as_str(), e.reason.as_deref(), e.ticket.as_deref())).collect();
    assert_eq!(
        seen,
        vec![
            ("success", Some("locked out"), None),
            ("success", Some("restore from backup"), Some("INC-7")),
            ("failed", Some("typo"), None),
        ]
    );
    assert_eq!(reads[1].details["version"], 1);
    let all = c.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("first-Password-1") && !text.contains("second-Password-2"));

    // A device with no escrowed password: 404, recorded as a failed read.
    let fresh = Agent::enroll(&app, "default").await;
    let e = c.reveal_device_password("default", &fresh.id, &reveal("check", None)).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound));
    let last = events(&app, "secret.read").await.pop().unwrap();
    assert_eq!((last.outcome.as_str(), last.object_id.as_deref()), ("failed", Some(fresh.id.as_str())));
});

both!(history_lists_versions_never_values, |app: TestApp| async move {
    let c = &app.client;
    let agent = Agent::enroll(&app, "default").await;
    assert!(c.device_password_history("default", &agent.id).await.unwrap().items.is_empty());
    let v1 = agent.rotate(None, "first-Password-1").await;
    c.rotate_device("default", &agent.id).await.unwrap();
    agent.rotate(Some(v1), "second-Password-2").await;
    let history = c.device_password_history("default", &agent.id).await.unwrap();
    let facts: Vec<(i64, proto::SecretState)> = history.items.iter().map(|v| (v.version, v.state)).collect();
    assert_eq!(facts, vec![(2, proto::SecretState::Active), (1, proto::SecretState::Retired)]);
    let text = serde_json::to_string(&history).unwrap();
    assert!(!text.contains("Password-"), "{text}");
    let e = c.device_password_history("default", &uuid::Uuid::new_v4().to_string()).await.unwrap_err();
    assert_eq!(e.code(), Some(ProblemCode::NotFound));
});

both!(support_accounts_through_the_native_api, |app: TestApp| async move {
    let c = &app.client;
    let agent = Agent::enroll(&app, "default").await;
    let v1 = agent.rotate(None, "admin-Password-1").await;
    let queued = c.request_support_account("default", &agent.id).await.unwrap();
    assert_eq!(queued.state, proto::SupportAccountState::Queued);
    assert!(queued.estimated_wait_time.is_some());
    let again = c.request_support_account("default", &agent.id).await.unwrap();
    assert_eq!(again.job_id, queued.job_id, "one job for both requests");

    let none = c
        .reveal_support_account("default", &agent.id, &proto::SecretReadRequest { reason: "help".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Some(ProblemCode::NotFound));

    let expires = agent.create_support(Some(v1), "ADM-0000BEEF", "support-Pass-1").await;
    let ready = c.request_support_account("default", &agent.id).await.unwrap();
    assert_eq!(
        (ready.state, ready.estimated_wait_time.as_deref()),
        (proto::SupportAccountState::Ready, Some("00:00:00"))
    );
    let bad = c
        .reveal_support_account("default", &agent.id, &proto::SecretReadRequest { reason: " ".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some(ProblemCode::InvalidField));
    let body = proto::SecretReadRequest { reason: "user locked out".into(), ticket: Some("T-1".into()) };
    let shown = c.reveal_support_account("default", &agent.id, &body).await.unwrap();
    assert_eq!((shown.username.as_str(), shown.password.as_str()), ("ADM-0000BEEF", "support-Pass-1"));
    assert_eq!(shown.expires_at.unix_timestamp(), expires.unix_timestamp());

    let reads = events(&app, "secret.read").await;
    let outcomes: Vec<&str> = reads.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "success"]);
    assert_eq!(reads[1].reason.as_deref(), Some("user locked out"));
    assert_eq!(reads[1].object_id.as_deref(), Some(shown.account_id.as_str()));
    assert_eq!(events(&app, "support_account.request").await.len(), 3);
});
