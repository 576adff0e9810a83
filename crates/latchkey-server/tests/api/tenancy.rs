//! Tenant scoping: a tenant token sees only its tenant; other tenants' objects look absent.

use latchkey_client::AuditQuery;
use latchkey_proto as proto;

use crate::both;
use crate::helpers::{TestApp, account_with_password};

both!(tenant_tokens_are_confined, |app: TestApp| async move {
    let c = &app.client;
    c.create_tenant(&proto::TenantCreate { slug: "acme".into(), name: Some("Acme Ltd".into()) }).await.unwrap();
    let dup = c.create_tenant(&proto::TenantCreate { slug: "ACME".into(), name: None }).await.unwrap_err();
    assert_eq!(dup.code(), Some(proto::ProblemCode::Conflict));
    let bad = c.create_tenant(&proto::TenantCreate { slug: "no spaces".into(), name: None }).await.unwrap_err();
    assert_eq!(bad.code(), Some(proto::ProblemCode::InvalidField));
    let secret_default = account_with_password(&app, "default", "db", "default-pw").await;
    let secret_acme = account_with_password(&app, "acme", "db", "acme-pw").await;

    let t = c
        .create_admin_token(&proto::AdminTokenCreate {
            name: "acme-admin".into(),
            tenant: Some("acme".into()),
            expires_in_seconds: None,
        })
        .await
        .unwrap();
    assert_eq!(t.tenant.as_deref(), Some("acme"));
    let acme = app.client_with(Some(&t.token));
    let seen = acme.list_tenants().await.unwrap();
    assert_eq!(seen.items.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(), vec!["acme"]);
    let r = acme
        .reveal_secret("acme", &secret_acme, &proto::SecretReadRequest { reason: "ok".into(), ticket: None })
        .await
        .unwrap();
    assert_eq!(r.password.as_deref(), Some("acme-pw"));

    // Another tenant by path: absent, and the attempt is audited as a denial.
    let e = acme
        .reveal_secret("default", &secret_default, &proto::SecretReadRequest { reason: "peek".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = acme.list_devices("default", None, None).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    // Another tenant's object under its own tenant path: absent too.
    let e = acme
        .reveal_secret("acme", &secret_default, &proto::SecretReadRequest { reason: "peek".into(), ticket: None })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    let e = acme.account("acme", &secret_default).await.unwrap_err();
    assert_eq!(e.status(), Some(404));

    // Global-only operations are refused.
    let e = acme.create_tenant(&proto::TenantCreate { slug: "evil".into(), name: None }).await.unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Forbidden));
    let e = acme
        .create_admin_token(&proto::AdminTokenCreate { name: "x".into(), tenant: None, expires_in_seconds: None })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(proto::ProblemCode::Forbidden));
    assert_eq!(acme.verify_audit().await.unwrap_err().code(), Some(proto::ProblemCode::Forbidden));
    assert_eq!(acme.vault_status().await.unwrap_err().code(), Some(proto::ProblemCode::Forbidden));

    let denied =
        c.list_audit(&AuditQuery { action: Some("access.denied".into()), ..Default::default() }).await.unwrap();
    assert_eq!(denied.items.len(), 2, "{:?}", denied.items);
    assert!(denied.items.iter().all(|e| e.outcome == "denied" && e.tenant.as_deref() == Some("default")));
    // The tenant token's own audit view holds only its tenant's events.
    let own = acme.list_audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert!(!own.items.is_empty());
    assert!(own.items.iter().all(|e| e.tenant.as_deref() == Some("acme")));
    let e = acme.list_audit(&AuditQuery { tenant: Some("default".into()), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(c.account("default", &secret_default).await.unwrap().active_version, Some(1));
});
