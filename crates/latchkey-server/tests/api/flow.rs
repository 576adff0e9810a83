//! The main paths: health, metrics, OpenAPI, tenants, devices, groups, users, accounts,
//! secrets with audited reads, API clients, and the audit log.

use latchkey_client::AuditQuery;
use latchkey_proto as proto;

use crate::both;
use crate::helpers::{TestApp, account_with_password, audit_count};

both!(health_ready_metrics_openapi, |app: TestApp| async move {
    assert_eq!(app.client.health().await.unwrap().status, "ok");
    assert_eq!(app.client.ready().await.unwrap().status, "ready");
    let metrics = app.client.get_text("/metrics").await.unwrap();
    assert!(metrics.contains("latchkey_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/readyz\""), "{metrics}");
    let doc = app.client.get_text("/api/v1/openapi.json").await.unwrap();
    assert_eq!(doc, latchkey_server::openapi::document());
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(v["paths"]["/api/v1/tenants/{tenant}/accounts/{account_id}/secret/reveal"]["post"].is_object());
});

both!(first_start_bootstraps_default_tenant_and_token_file, |app: TestApp| async move {
    let tenants = app.client.list_tenants().await.unwrap();
    assert_eq!(tenants.items.len(), 1);
    assert_eq!(tenants.items[0].slug, "default");
    let path = app.data_dir.path().join("admin-token");
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert_eq!(on_disk.trim(), app.token);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let key = app.data_dir.path().join("latchkey.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
});

both!(restart_keeps_everything_and_issues_no_new_token, |mut app: TestApp| async move {
    let id = account_with_password(&app, "default", "db", "p@ss-1").await;
    app.stop().await;
    let clock = std::sync::Arc::new(latchkey_core::ManualClock::new(app.clock.now_for_test()));
    let server = latchkey_server::start(app.config(), clock).await.unwrap();
    assert!(server.first_admin_token.is_none());
    let client = latchkey_client::Client::new(&format!("http://{}", server.addr), Some(app.token.clone())).unwrap();
    let r = client
        .reveal_secret("default", &id, &proto::SecretReadRequest { reason: "after restart".into(), ticket: None })
        .await
        .unwrap();
    assert_eq!(r.password.as_deref(), Some("p@ss-1"));
    assert!(client.verify_audit().await.unwrap().ok);
    server.shutdown().await.unwrap();
});

both!(devices_round_trip_with_paging, |app: TestApp| async move {
    let mut ids = Vec::new();
    for i in 0..5 {
        let d = app
            .client
            .create_device(
                "default",
                &proto::DeviceCreate {
                    device_id: None,
                    name: format!("PC-{i:02}"),
                    container_dn: Some("OU=Workstations,DC=dev1,DC=local".into()),
                    os: Some("Debian 12".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(d.poll_interval_seconds, 1800);
        ids.push(d.device_id);
    }
    ids.sort();
    let p1 = app.client.list_devices("default", None, Some(2)).await.unwrap();
    assert_eq!(p1.items.len(), 2);
    let p2 = app.client.list_devices("default", p1.next.as_deref(), Some(2)).await.unwrap();
    let p3 = app.client.list_devices("default", p2.next.as_deref(), Some(2)).await.unwrap();
    assert_eq!(p3.items.len(), 1);
    assert!(p3.next.is_none());
    let seen: Vec<String> = p1.items.iter().chain(&p2.items).chain(&p3.items).map(|d| d.device_id.clone()).collect();
    assert_eq!(seen, ids);
    let one = app.client.device("default", &ids[0]).await.unwrap();
    assert_eq!(one.container_dn.as_deref(), Some("OU=Workstations,DC=dev1,DC=local"));
    app.client.delete_device("default", &ids[0]).await.unwrap();
    let gone = app.client.device("default", &ids[0]).await.unwrap_err();
    assert_eq!(gone.status(), Some(404));
    let fixed = "5a2f2169-0000-4000-8000-000000000001";
    let d = app
        .client
        .create_device(
            "default",
            &proto::DeviceCreate {
                device_id: Some(fixed.to_uppercase()),
                name: "fixed".into(),
                container_dn: None,
                os: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(d.device_id, fixed);
    let dup = app
        .client
        .create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: "FIXED".into(), container_dn: None, os: None },
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some(proto::ProblemCode::Conflict));
});

both!(groups_users_and_nested_members, |app: TestApp| async move {
    let c = &app.client;
    let g1 =
        c.create_group("default", &proto::GroupCreate { name: "Helpdesk".into(), description: None }).await.unwrap();
    let g2 = c
        .create_group("default", &proto::GroupCreate { name: "IT".into(), description: Some("all IT".into()) })
        .await
        .unwrap();
    let u = c
        .create_user(
            "default",
            &proto::UserCreate {
                name: "alice".into(),
                display_name: Some("Alice".into()),
                email: Some("alice@example.test".into()),
            },
        )
        .await
        .unwrap();
    let d = c
        .create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: "PC-1".into(), container_dn: None, os: None },
        )
        .await
        .unwrap();
    c.add_group_member("default", &g1.id, &proto::GroupMember { kind: proto::MemberKind::User, id: u.id.clone() })
        .await
        .unwrap();
    c.add_group_member(
        "default",
        &g1.id,
        &proto::GroupMember { kind: proto::MemberKind::Device, id: d.device_id.clone() },
    )
    .await
    .unwrap();
    c.add_group_member("default", &g2.id, &proto::GroupMember { kind: proto::MemberKind::Group, id: g1.id.clone() })
        .await
        .unwrap();
    let cycle = c
        .add_group_member("default", &g1.id, &proto::GroupMember { kind: proto::MemberKind::Group, id: g2.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(cycle.code(), Some(proto::ProblemCode::Conflict));
    let members = c.group_members("default", &g1.id).await.unwrap();
    assert_eq!(members.items.len(), 2);
    c.remove_group_member("default", &g1.id, &proto::GroupMember { kind: proto::MemberKind::User, id: u.id.clone() })
        .await
        .unwrap();
    assert_eq!(c.group_members("default", &g1.id).await.unwrap().items.len(), 1);
    assert_eq!(c.list_users("default").await.unwrap().items[0].email.as_deref(), Some("alice@example.test"));
    assert_eq!(c.list_groups("default").await.unwrap().items.len(), 2);
});

both!(secret_set_reveal_is_audited_without_the_secret, |app: TestApp| async move {
    let c = &app.client;
    let id = account_with_password(&app, "default", "db-root", "first-Secret-1").await;
    c.set_secret(
        "default",
        &id,
        &proto::SecretSetRequest {
            password: Some("second-Secret-2".into()),
            ssh_private_key: Some(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n".into(),
            ),
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let r = c
        .reveal_secret(
            "default",
            &id,
            &proto::SecretReadRequest { reason: "restore backup".into(), ticket: Some("T-1234".into()) },
        )
        .await
        .unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(r.password.as_deref(), Some("second-Secret-2"));
    assert!(r.ssh_private_key.as_deref().unwrap().contains("OPENSSH"));
    let versions = c.secret_versions("default", &id).await.unwrap();
    assert_eq!(versions.items.len(), 2);
    assert_eq!(versions.items[0].state, proto::SecretState::Active);
    assert_eq!(versions.items[1].state, proto::SecretState::Retired);
    assert_eq!(c.account("default", &id).await.unwrap().active_version, Some(2));

    let reads = c.list_audit(&AuditQuery { action: Some("secret.read".into()), ..Default::default() }).await.unwrap();
    assert_eq!(reads.items.len(), 1);
    let ev = &reads.items[0];
    assert_eq!(ev.reason.as_deref(), Some("restore backup"));
    assert_eq!(ev.ticket.as_deref(), Some("T-1234"));
    assert_eq!(ev.object_id.as_deref(), Some(id.as_str()));
    assert_eq!(ev.outcome, "success");
    assert_eq!(ev.tenant.as_deref(), Some("default"));
    assert!(ev.actor.starts_with("admin-token:"));
    assert_eq!(ev.client_addr.as_deref(), Some("127.0.0.1"));
    assert!(ev.request_id.is_some());
    assert_eq!(ev.details["version"], 2);

    let all = serde_json::to_string(
        &c.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap().items,
    )
    .unwrap();
    assert!(!all.contains("first-Secret-1") && !all.contains("second-Secret-2") && !all.contains("AAAA"));
    let sets = c.list_audit(&AuditQuery { action: Some("secret.set".into()), ..Default::default() }).await.unwrap();
    assert_eq!(sets.items.len(), 2);
    let verified = c.verify_audit().await.unwrap();
    assert!(verified.ok);
    assert_eq!(verified.checked as usize, audit_count(&app).await);
});

both!(reading_an_unknown_account_is_a_recorded_failure, |app: TestApp| async move {
    let missing = uuid::Uuid::new_v4().to_string();
    let e = app
        .client
        .reveal_secret("default", &missing, &proto::SecretReadRequest { reason: "look".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    let failed =
        app.client.list_audit(&AuditQuery { outcome: Some("failed".into()), ..Default::default() }).await.unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(failed.items[0].object_id.as_deref(), Some(missing.as_str()));
    // An account with no secret yet is the same failure.
    let acct = app
        .client
        .create_account(
            "default",
            &proto::AccountCreate {
                kind: proto::AccountKind::Generic,
                name: "empty".into(),
                device_id: None,
                description: None,
            },
        )
        .await
        .unwrap();
    let e = app
        .client
        .reveal_secret("default", &acct.id, &proto::SecretReadRequest { reason: "look".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
});

both!(device_accounts_need_a_device_of_the_tenant, |app: TestApp| async move {
    let c = &app.client;
    let no_dev = c
        .create_account(
            "default",
            &proto::AccountCreate {
                kind: proto::AccountKind::DeviceAdmin,
                name: "latchkey-admin".into(),
                device_id: None,
                description: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(no_dev.code(), Some(proto::ProblemCode::InvalidField));
    let unknown = c
        .create_account(
            "default",
            &proto::AccountCreate {
                kind: proto::AccountKind::DeviceAdmin,
                name: "latchkey-admin".into(),
                device_id: Some(uuid::Uuid::new_v4().to_string()),
                description: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404));
    let d = c
        .create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: "PC-9".into(), container_dn: None, os: None },
        )
        .await
        .unwrap();
    let a = c
        .create_account(
            "default",
            &proto::AccountCreate {
                kind: proto::AccountKind::DeviceAdmin,
                name: "latchkey-admin".into(),
                device_id: Some(d.device_id.clone()),
                description: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(a.device_id.as_deref(), Some(d.device_id.as_str()));
    let generic_with_device = c
        .create_account(
            "default",
            &proto::AccountCreate {
                kind: proto::AccountKind::Generic,
                name: "x".into(),
                device_id: Some(d.device_id.clone()),
                description: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(generic_with_device.code(), Some(proto::ProblemCode::InvalidField));
});

both!(api_client_secret_shown_once_and_tokens_expire, |app: TestApp| async move {
    let c = &app.client;
    let created =
        c.create_api_client("default", &proto::ApiClientCreate { name: "backup-script".into() }).await.unwrap();
    assert!(created.secret.starts_with("lk_client_"));
    let listed = serde_json::to_string(&c.list_api_clients("default").await.unwrap()).unwrap();
    assert!(listed.contains("backup-script") && !listed.contains(&created.secret));
    let t = c
        .create_admin_token(&proto::AdminTokenCreate {
            name: "short".into(),
            tenant: None,
            expires_in_seconds: Some(60),
        })
        .await
        .unwrap();
    let short = app.client_with(Some(&t.token));
    assert!(short.list_tenants().await.is_ok());
    app.clock.advance(time::Duration::seconds(61));
    let e = short.list_tenants().await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Unauthenticated));
    let audit = serde_json::to_string(
        &c.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap().items,
    )
    .unwrap();
    assert!(!audit.contains(&t.token) && !audit.contains(&created.secret));
});

both!(audit_filters_and_paging, |app: TestApp| async move {
    let c = &app.client;
    for i in 0..4 {
        c.create_device(
            "default",
            &proto::DeviceCreate { device_id: None, name: format!("D{i}"), container_dn: None, os: None },
        )
        .await
        .unwrap();
    }
    let creates = c
        .list_audit(&AuditQuery { action: Some("device.create".into()), limit: Some(3), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(creates.items.len(), 3);
    let rest = c
        .list_audit(&AuditQuery {
            action: Some("device.create".into()),
            after: Some(creates.next.unwrap().parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    // Newest first with `before`: the same four, in the other order, paged.
    let newest = c
        .list_audit(&AuditQuery {
            action: Some("device.create".into()),
            before: Some(i64::MAX),
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap();
    let seqs: Vec<i64> = newest.items.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [rest.items[0].seq, creates.items[2].seq, creates.items[1].seq]);
    let oldest = c
        .list_audit(&AuditQuery {
            action: Some("device.create".into()),
            before: Some(newest.next.unwrap().parse().unwrap()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(oldest.items.iter().map(|e| e.seq).collect::<Vec<_>>(), [creates.items[0].seq]);
    let both = c.list_audit(&AuditQuery { after: Some(1), before: Some(9), ..Default::default() }).await;
    assert!(latchkey_client::is_status(&both.unwrap_err(), reqwest::StatusCode::BAD_REQUEST));
    let future = (app.clock.now_for_test() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let none = c.list_audit(&AuditQuery { since: Some(future), ..Default::default() }).await.unwrap();
    assert!(none.items.is_empty());
    let seqs: Vec<i64> = c.list_audit(&AuditQuery::default()).await.unwrap().items.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
});

/// Read the manual clock (helper trait so tests do not import the Clock trait everywhere).
trait NowForTest {
    fn now_for_test(&self) -> time::OffsetDateTime;
}

impl NowForTest for latchkey_core::ManualClock {
    fn now_for_test(&self) -> time::OffsetDateTime {
        latchkey_core::Clock::now(self)
    }
}

both!(shutdown_after_concurrent_reveals_finishes, |mut app: TestApp| async move {
    let id = account_with_password(&app, "default", "db", "pw").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let c = app.client.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                c.reveal_secret(
                    "default",
                    &id,
                    &proto::SecretReadRequest { reason: format!("load {i}"), ticket: None },
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let server = app.server.take().unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), server.shutdown()).await.expect("shutdown hung").unwrap();
});
