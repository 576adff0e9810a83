//! The application credential API's store, on both backends: applications and their tokens,
//! failed-request counters, account policies and permissions, the permitted-accounts view,
//! credential views with reasons, approvals and resets scheduled after showing.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Db, T0, both, ev, new_id, new_tenant, new_user};
use latchkey_core::model::{Account, AccountKind, SecretState};
use latchkey_core::{Action, AuditEvent, ObjectType, Outcome};
use latchkey_store::{
    AccountPolicy, AuditFilter, CredentialView, Decision, FailureRule, NewAccount, NewAppToken, NewApplication,
    PrincipalKind, ResetEnd, ResetState, SealedSecret, Store, StoreError, ViewOutcome,
};
use time::Duration;

both!(
    applications_and_tokens,
    failures_lock_and_clear,
    policies_and_permissions,
    views_follow_the_policy,
    approvals_allow_views_for_a_while,
    resets_are_claimed_once_and_finished,
);

// ---------------------------------------------------------------------------------------------
// Helpers

const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

async fn events(store: &Store) -> Vec<AuditEvent> {
    store.list_audit(&AuditFilter { limit: 1000, ..AuditFilter::default() }).await.unwrap()
}

fn count(events: &[AuditEvent], action: Action, outcome: Outcome) -> usize {
    events.iter().filter(|e| e.body.action == action && e.body.outcome == outcome).count()
}

async fn new_app(store: &Store, tenant_id: &str, name: &str) -> String {
    let id = new_id();
    let app = NewApplication {
        id: id.clone(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        name_key: name.to_lowercase(),
        password_hash: PHC.into(),
        created_at: T0,
    };
    store
        .create_application(app, ev(Action::ApplicationCreate, ObjectType::Application, tenant_id, &id))
        .await
        .unwrap();
    id
}

async fn new_account(store: &Store, tenant_id: &str, name: &str, with_secret: bool) -> Account {
    let id = new_id();
    let a = NewAccount {
        id: id.clone(),
        tenant_id: tenant_id.into(),
        kind: AccountKind::Generic,
        name: name.into(),
        name_key: name.to_lowercase(),
        device_id: None,
        description: None,
        created_at: T0,
    };
    let account =
        store.create_account(a, ev(Action::AccountCreate, ObjectType::Account, tenant_id, &id)).await.unwrap();
    if with_secret {
        let seal = Box::new(|v: i64| {
            Ok(SealedSecret { password: Some(format!("pw-{v}").into_bytes()), ssh_key: None, key_id: "k1".into() })
        });
        store
            .add_secret_version(
                tenant_id,
                &id,
                SecretState::Active,
                None,
                seal,
                ev(Action::SecretSet, ObjectType::Account, tenant_id, &id),
            )
            .await
            .unwrap();
    }
    account
}

fn policy(tenant_id: &str, name: &str) -> AccountPolicy {
    AccountPolicy {
        id: new_id(),
        tenant_id: tenant_id.into(),
        name: name.into(),
        require_reason: false,
        require_confirmation: false,
        confirmation_timeout_secs: 0,
        reset_after_showing: false,
        reset_after_minutes: 0,
        encrypt_key: false,
        can_set_if_not_set: false,
        created_at: T0,
        updated_at: T0,
    }
}

async fn put_policy(store: &Store, p: AccountPolicy) -> AccountPolicy {
    let key = p.name.to_lowercase();
    let e = ev(Action::AccountPolicySet, ObjectType::AccountPolicy, &p.tenant_id, &p.id);
    store.put_account_policy(p, key, e).await.unwrap()
}

async fn attach(store: &Store, tenant_id: &str, account_id: &str, policy_id: Option<&str>) {
    let e = ev(Action::AccountPolicySet, ObjectType::Account, tenant_id, account_id);
    store.attach_account_policy(tenant_id, account_id, policy_id.map(str::to_owned), e).await.unwrap();
}

async fn grant(store: &Store, tenant_id: &str, account_id: &str, app_id: &str, view: bool, change: bool) {
    let e = ev(Action::AccountPermissionSet, ObjectType::Account, tenant_id, account_id);
    store
        .set_account_permission(tenant_id, account_id, PrincipalKind::Application, app_id, view, change, T0, e)
        .await
        .unwrap();
}

fn view(
    tenant_id: &str,
    account_id: &str,
    app_id: &str,
    reason: Option<&str>,
    at: time::OffsetDateTime,
) -> CredentialView {
    let mut event = ev(Action::CredentialsView, ObjectType::Account, tenant_id, account_id);
    event.at = at;
    CredentialView {
        tenant_id: tenant_id.into(),
        account_id: account_id.into(),
        application_id: app_id.into(),
        on_behalf_of: "00000000-0000-0000-0000-000000000000".into(),
        reason: reason.map(str::to_owned),
        now: at,
        event,
    }
}

/// View and return the outcome with the password as text.
async fn do_view(store: &Store, v: CredentialView) -> ViewOutcome<String> {
    store
        .view_credentials(v, |_, version| {
            Ok(String::from_utf8(version.password_envelope.clone().unwrap_or_default()).unwrap())
        })
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn applications_and_tokens(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let other = new_tenant(&store, "other").await;
    let app = new_app(&store, &t.id, "Billing").await;
    // Names are unique per tenant (by key), not across tenants.
    let dup = NewApplication {
        id: new_id(),
        tenant_id: t.id.clone(),
        name: "BILLING".into(),
        name_key: "billing".into(),
        password_hash: PHC.into(),
        created_at: T0,
    };
    let e = store.create_application(dup, ev(Action::ApplicationCreate, ObjectType::Application, &t.id, "x")).await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    new_app(&store, &other.id, "Billing").await;

    let secret = store.application_secret(&t.id, "billing").await.unwrap();
    assert_eq!(secret.application.id, app);
    assert_eq!(secret.password_hash, PHC);
    assert!(!format!("{secret:?}").contains("argon2id"));
    assert!(matches!(store.application_secret(&t.id, "nope").await, Err(StoreError::NotFound)));
    assert_eq!(store.list_applications(&t.id).await.unwrap().len(), 1);
    assert!(matches!(store.application(&other.id, &app).await, Err(StoreError::NotFound)));

    let token = |byte: u8, expires| NewAppToken {
        id: new_id(),
        token_hash: [byte; 32],
        tenant_id: t.id.clone(),
        application_id: app.clone(),
        created_at: T0,
        expires_at: expires,
    };
    let issue = ev(Action::TokenIssue, ObjectType::Application, &t.id, &app);
    store.issue_app_token(token(1, T0 + Duration::seconds(60)), vec![], issue.clone()).await.unwrap();
    let owner = store.app_token_owner(&[1; 32], T0).await.unwrap();
    assert_eq!((owner.application_id.as_str(), owner.application_name.as_str()), (app.as_str(), "Billing"));
    // Expired at its expiry; unknown hashes are not found.
    assert!(matches!(store.app_token_owner(&[1; 32], T0 + Duration::seconds(60)).await, Err(StoreError::NotFound)));
    assert!(matches!(store.app_token_owner(&[9; 32], T0).await, Err(StoreError::NotFound)));
    // Revoked.
    store.revoke_app_token(&owner.token_id, T0).await.unwrap();
    assert!(matches!(store.app_token_owner(&[1; 32], T0).await, Err(StoreError::NotFound)));
    assert!(matches!(store.revoke_app_token(&owner.token_id, T0).await, Err(StoreError::NotFound)));

    // Disabling revokes live tokens and refuses new ones; enabling does not bring them back.
    store.issue_app_token(token(2, T0 + Duration::seconds(60)), vec![], issue.clone()).await.unwrap();
    let off = store
        .set_application_enabled(
            &t.id,
            &app,
            false,
            T0,
            ev(Action::ApplicationUpdate, ObjectType::Application, &t.id, &app),
        )
        .await
        .unwrap();
    assert!(!off.enabled);
    assert!(matches!(store.app_token_owner(&[2; 32], T0).await, Err(StoreError::NotFound)));
    let refused = store.issue_app_token(token(3, T0 + Duration::seconds(60)), vec![], issue.clone()).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    store
        .set_application_enabled(
            &t.id,
            &app,
            true,
            T0,
            ev(Action::ApplicationUpdate, ObjectType::Application, &t.id, &app),
        )
        .await
        .unwrap();
    assert!(matches!(store.app_token_owner(&[2; 32], T0).await, Err(StoreError::NotFound)));
    assert!(matches!(store.app_token_owner(&[3; 32], T0).await, Err(StoreError::NotFound)));

    // Purging drops expired tokens only.
    store.issue_app_token(token(4, T0 + Duration::seconds(60)), vec![], issue).await.unwrap();
    assert!(store.purge_app_tokens(T0 + Duration::seconds(61)).await.unwrap() >= 1);
    assert!(matches!(store.app_token_owner(&[4; 32], T0).await, Err(StoreError::NotFound)));

    // Deleting removes the application, its tokens and its permissions.
    let account = new_account(&store, &t.id, "db", true).await;
    grant(&store, &t.id, &account.id, &app, true, false).await;
    store
        .delete_application(&t.id, &app, ev(Action::ApplicationDelete, ObjectType::Application, &t.id, &app))
        .await
        .unwrap();
    assert!(store.account_permissions(&t.id, &account.id).await.unwrap().is_empty());
    assert!(matches!(
        store
            .delete_application(&t.id, &app, ev(Action::ApplicationDelete, ObjectType::Application, &t.id, &app))
            .await,
        Err(StoreError::NotFound)
    ));
    let all = events(&store).await;
    assert_eq!(count(&all, Action::TokenIssue, Outcome::Success), 3);
    assert_eq!(count(&all, Action::ApplicationDelete, Outcome::Success), 1);
    assert!(store.verify_audit_chain().await.unwrap().is_ok());
}

async fn failures_lock_and_clear(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let app = new_app(&store, &t.id, "Billing").await;
    let rule = FailureRule { window: Duration::minutes(15), max_failures: 3, lockout: Duration::minutes(10) };
    let scopes = vec!["app:x:billing".to_owned(), "addr:203.0.113.7".to_owned()];
    let fail = |at| {
        let mut e = ev(Action::TokenIssue, ObjectType::Application, &t.id, "billing").outcome(Outcome::Denied);
        e.at = at;
        e
    };
    assert_eq!(store.token_failures(&scopes).await.unwrap()[0].failures, 0);
    let c1 = store.record_token_failure(scopes.clone(), T0, rule, fail(T0)).await.unwrap();
    assert_eq!((c1[0].failures, c1[1].failures), (1, 1));
    assert!(c1[0].locked_until.is_none());
    store.record_token_failure(scopes[..1].to_vec(), T0, rule, fail(T0)).await.unwrap();
    let c3 = store.record_token_failure(scopes.clone(), T0, rule, fail(T0)).await.unwrap();
    assert_eq!((c3[0].failures, c3[1].failures), (3, 2));
    assert_eq!(c3[0].locked_until, Some(T0 + Duration::minutes(10)));
    assert!(c3[1].locked_until.is_none());
    let read = store.token_failures(&scopes).await.unwrap();
    assert_eq!(read[0], c3[0]);

    // A success clears unlocked scopes only.
    let token = NewAppToken {
        id: new_id(),
        token_hash: [7; 32],
        tenant_id: t.id.clone(),
        application_id: app.clone(),
        created_at: T0,
        expires_at: T0 + Duration::seconds(60),
    };
    store
        .issue_app_token(token, scopes.clone(), ev(Action::TokenIssue, ObjectType::Application, &t.id, &app))
        .await
        .unwrap();
    let after = store.token_failures(&scopes).await.unwrap();
    assert_eq!(after[0].failures, 3, "a locked scope stays locked");
    assert_eq!(after[1].failures, 0);

    // After the window the count starts again.
    let later = T0 + Duration::minutes(16);
    let again = store.record_token_failure(scopes.clone(), later, rule, fail(later)).await.unwrap();
    assert_eq!(again[0].failures, 1);
    assert_eq!(count(&events(&store).await, Action::TokenIssue, Outcome::Denied), 4);
}

async fn policies_and_permissions(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let other = new_tenant(&store, "other").await;
    let app = new_app(&store, &t.id, "Billing").await;
    let stranger = new_app(&store, &other.id, "Stranger").await;
    let user = new_user(&store, &t.id, "alice").await;
    let a = new_account(&store, &t.id, "db-root", true).await;
    let b = new_account(&store, &t.id, "api-key", false).await;

    let mut p = policy(&t.id, "Strict");
    p.require_reason = true;
    p.reset_after_showing = true;
    p.reset_after_minutes = 5;
    let p = put_policy(&store, p).await;
    // Replacing keeps the creation time; the name stays unique in the tenant.
    let mut changed = p.clone();
    changed.require_confirmation = true;
    changed.confirmation_timeout_secs = 420;
    changed.created_at = T0 + Duration::days(1);
    changed.updated_at = T0 + Duration::hours(1);
    let changed = put_policy(&store, changed).await;
    assert_eq!(changed.created_at, T0);
    assert_eq!(store.account_policy(&t.id, &p.id).await.unwrap(), changed);
    assert_eq!(store.account_policy_by_name(&t.id, "strict").await.unwrap().id, p.id);
    let clash = policy(&t.id, "STRICT");
    let e = store
        .put_account_policy(clash, "strict".into(), ev(Action::AccountPolicySet, ObjectType::AccountPolicy, &t.id, "x"))
        .await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    assert!(matches!(store.account_policy(&other.id, &p.id).await, Err(StoreError::NotFound)));

    attach(&store, &t.id, &a.id, Some(&p.id)).await;
    assert_eq!(store.policy_of_account(&t.id, &a.id).await.unwrap().map(|p| p.id), Some(p.id.clone()));
    // Another tenant's policy or account cannot be attached.
    let foreign = put_policy(&store, policy(&other.id, "Foreign")).await;
    let e = store
        .attach_account_policy(
            &t.id,
            &b.id,
            Some(foreign.id.clone()),
            ev(Action::AccountPolicySet, ObjectType::Account, &t.id, &b.id),
        )
        .await;
    assert!(matches!(e, Err(StoreError::Invalid(_))), "{e:?}");
    let e = store
        .attach_account_policy(
            &other.id,
            &a.id,
            None,
            ev(Action::AccountPolicySet, ObjectType::Account, &other.id, &a.id),
        )
        .await;
    assert!(matches!(e, Err(StoreError::NotFound)), "{e:?}");
    // An attached policy cannot be deleted.
    let e = store
        .delete_account_policy(&t.id, &p.id, ev(Action::AccountPolicyDelete, ObjectType::AccountPolicy, &t.id, &p.id))
        .await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");

    grant(&store, &t.id, &a.id, &app, true, false).await;
    grant(&store, &t.id, &b.id, &app, false, true).await;
    let e = store
        .set_account_permission(
            &t.id,
            &a.id,
            PrincipalKind::Application,
            &stranger,
            true,
            true,
            T0,
            ev(Action::AccountPermissionSet, ObjectType::Account, &t.id, &a.id),
        )
        .await;
    assert!(matches!(e, Err(StoreError::Invalid(_))), "another tenant's application: {e:?}");
    store
        .set_account_permission(
            &t.id,
            &a.id,
            PrincipalKind::User,
            &user.id,
            true,
            true,
            T0,
            ev(Action::AccountPermissionSet, ObjectType::Account, &t.id, &a.id),
        )
        .await
        .unwrap();
    let perms = store.account_permissions(&t.id, &a.id).await.unwrap();
    assert_eq!(perms.len(), 2);
    assert_eq!((perms[0].principal_kind, perms[0].principal_name.as_str()), (PrincipalKind::Application, "Billing"));
    assert_eq!((perms[1].principal_kind, perms[1].principal_name.as_str()), (PrincipalKind::User, "alice"));

    let permitted = store.permitted_accounts(&t.id, PrincipalKind::Application, &app).await.unwrap();
    let names: Vec<&str> = permitted.iter().map(|p| p.account.name.as_str()).collect();
    assert_eq!(names, ["api-key", "db-root"]);
    let (key, root) = (&permitted[0], &permitted[1]);
    assert!(!key.has_password && !key.has_key && !key.view && key.change && key.policy.is_none());
    assert!(root.has_password && !root.has_key && root.view && !root.change);
    assert_eq!(root.policy.as_ref().map(|p| p.confirmation_timeout_secs), Some(420));
    assert!(root.next_reset.is_none() && !root.resetting_now);
    assert!(store.permitted_accounts(&other.id, PrincipalKind::Application, &app).await.unwrap().is_empty());
    assert!(matches!(
        store.permitted_account(&t.id, PrincipalKind::Application, &stranger, &a.id).await,
        Err(StoreError::NotFound)
    ));
    let rule = store.view_rule(&t.id, &app, &a.id).await.unwrap();
    assert_eq!((rule.account_name.as_str(), rule.view), ("db-root", true));
    assert_eq!(rule.policy.map(|p| p.confirmation_timeout_secs), Some(420));
    let rule = store.view_rule(&t.id, &app, &b.id).await.unwrap();
    assert!(!rule.view && rule.policy.is_none());
    assert!(matches!(store.view_rule(&t.id, &stranger, &a.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.view_rule(&other.id, &app, &a.id).await, Err(StoreError::NotFound)));

    // A permission with neither right lists nothing; removing it twice is not found.
    grant(&store, &t.id, &b.id, &app, false, false).await;
    assert_eq!(store.permitted_accounts(&t.id, PrincipalKind::Application, &app).await.unwrap().len(), 1);
    let rm = || ev(Action::AccountPermissionRemove, ObjectType::Account, &t.id, &b.id);
    store.remove_account_permission(&t.id, &b.id, PrincipalKind::Application, &app, rm()).await.unwrap();
    assert!(matches!(
        store.remove_account_permission(&t.id, &b.id, PrincipalKind::Application, &app, rm()).await,
        Err(StoreError::NotFound)
    ));
    // The rules read above are not used once a change is committed.
    assert!(matches!(store.view_rule(&t.id, &app, &b.id).await, Err(StoreError::NotFound)));

    attach(&store, &t.id, &a.id, None).await;
    assert!(store.view_rule(&t.id, &app, &a.id).await.unwrap().policy.is_none());
    store
        .delete_account_policy(&t.id, &p.id, ev(Action::AccountPolicyDelete, ObjectType::AccountPolicy, &t.id, &p.id))
        .await
        .unwrap();
    assert!(store.list_account_policies(&t.id).await.unwrap().is_empty());
}

async fn views_follow_the_policy(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let app = new_app(&store, &t.id, "Billing").await;
    let other_app = new_app(&store, &t.id, "Other").await;
    let a = new_account(&store, &t.id, "db-root", true).await;
    let empty = new_account(&store, &t.id, "empty", false).await;
    grant(&store, &t.id, &a.id, &app, true, false).await;
    grant(&store, &t.id, &empty.id, &app, true, false).await;
    grant(&store, &t.id, &a.id, &other_app, false, true).await;

    // No policy: a view needs no reason.
    match do_view(&store, view(&t.id, &a.id, &app, None, T0)).await {
        ViewOutcome::Viewed(v) => {
            assert_eq!(v.value, "pw-1");
            assert_eq!(v.version, 1);
            assert!(v.reset_due_at.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Change-only permission, unknown account, other tenant: not permitted.
    assert!(matches!(do_view(&store, view(&t.id, &a.id, &other_app, None, T0)).await, ViewOutcome::NotPermitted));
    assert!(matches!(do_view(&store, view(&t.id, &new_id(), &app, None, T0)).await, ViewOutcome::NotPermitted));
    assert!(matches!(do_view(&store, view(&t.id, &empty.id, &app, None, T0)).await, ViewOutcome::NoCredentials));

    let mut p = policy(&t.id, "Reason and reset");
    p.require_reason = true;
    p.reset_after_showing = true;
    p.reset_after_minutes = 5;
    let p = put_policy(&store, p).await;
    attach(&store, &t.id, &a.id, Some(&p.id)).await;
    assert!(matches!(do_view(&store, view(&t.id, &a.id, &app, None, T0)).await, ViewOutcome::ReasonRequired));
    assert!(matches!(do_view(&store, view(&t.id, &a.id, &app, Some("  "), T0)).await, ViewOutcome::ReasonRequired));
    let due = T0 + Duration::minutes(5);
    match do_view(&store, view(&t.id, &a.id, &app, Some("month end"), T0)).await {
        ViewOutcome::Viewed(v) => assert_eq!(v.reset_due_at, Some(due)),
        other => panic!("{other:?}"),
    }
    // A second view keeps the first reset's time.
    match do_view(&store, view(&t.id, &a.id, &app, Some("again"), T0 + Duration::minutes(1))).await {
        ViewOutcome::Viewed(v) => assert_eq!(v.reset_due_at, Some(due)),
        other => panic!("{other:?}"),
    }
    let resets = store.credential_resets(&t.id, &a.id).await.unwrap();
    assert_eq!(resets.len(), 1);
    assert_eq!((resets[0].state, resets[0].due_at), (ResetState::Scheduled, due));
    let listed = store.permitted_account(&t.id, PrincipalKind::Application, &app, &a.id).await.unwrap();
    assert_eq!(listed.next_reset, Some(due));

    let all = events(&store).await;
    assert_eq!(count(&all, Action::CredentialsView, Outcome::Success), 3);
    assert_eq!(count(&all, Action::CredentialsView, Outcome::Denied), 4);
    assert_eq!(count(&all, Action::CredentialsView, Outcome::Failed), 1);
    assert!(store.verify_audit_chain().await.unwrap().is_ok());
}

async fn approvals_allow_views_for_a_while(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let app = new_app(&store, &t.id, "Billing").await;
    let alice = new_user(&store, &t.id, "alice").await;
    let a = new_account(&store, &t.id, "db-root", true).await;
    grant(&store, &t.id, &a.id, &app, true, false).await;
    let mut p = policy(&t.id, "Confirm");
    p.require_confirmation = true;
    p.confirmation_timeout_secs = 420;
    let p = put_policy(&store, p).await;
    attach(&store, &t.id, &a.id, Some(&p.id)).await;
    let as_alice = |at| {
        let mut v = view(&t.id, &a.id, &app, Some("close the books"), at);
        v.on_behalf_of = alice.id.clone();
        v
    };

    let first = match do_view(&store, as_alice(T0)).await {
        ViewOutcome::ApprovalRequired { request_id, created: true } => request_id,
        other => panic!("{other:?}"),
    };
    // Asking again answers the same pending request.
    match do_view(&store, as_alice(T0)).await {
        ViewOutcome::ApprovalRequired { request_id, created: false } => assert_eq!(request_id, first),
        other => panic!("{other:?}"),
    }
    let req = store.approval(&t.id, &first).await.unwrap();
    assert_eq!(
        (req.state, req.on_behalf_of.as_str(), req.requester_name.as_str()),
        (latchkey_store::ApprovalState::Pending, alice.id.as_str(), "Billing")
    );
    assert_eq!(req.reason.as_deref(), Some("close the books"));

    let decide = |approve: bool, at| Decision {
        tenant_id: t.id.clone(),
        approval_id: first.clone(),
        approve,
        decided_by: "admin-token:x".into(),
        comment: Some("ok".into()),
        now: at,
        event: ev(
            if approve { Action::ApprovalApprove } else { Action::ApprovalDeny },
            ObjectType::Approval,
            &t.id,
            &first,
        ),
        notices: Box::new(|_, email| {
            assert_eq!(email.as_deref(), Some("alice@example.com"));
            Vec::new()
        }),
    };
    let approved = store.decide_approval(decide(true, T0 + Duration::minutes(1))).await.unwrap();
    assert_eq!(approved.valid_until, Some(T0 + Duration::minutes(8)));
    let again = store.decide_approval(decide(false, T0 + Duration::minutes(1))).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    for minute in [2, 7] {
        assert!(matches!(do_view(&store, as_alice(T0 + Duration::minutes(minute))).await, ViewOutcome::Viewed(_)));
    }
    assert_eq!(store.approval(&t.id, &first).await.unwrap().views, 2);
    // After the timeout, a new request is needed and the old one is used up.
    let second = match do_view(&store, as_alice(T0 + Duration::minutes(9))).await {
        ViewOutcome::ApprovalRequired { request_id, created: true } => request_id,
        other => panic!("{other:?}"),
    };
    assert_ne!(second, first);
    assert_eq!(store.approval(&t.id, &first).await.unwrap().state, latchkey_store::ApprovalState::Used);
    let pending = store.list_approvals(&t.id, Some(latchkey_store::ApprovalState::Pending), 100).await.unwrap();
    assert_eq!(pending.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [second.as_str()]);
    assert_eq!(store.list_approvals(&t.id, None, 100).await.unwrap().len(), 2);
    let all = events(&store).await;
    assert_eq!(count(&all, Action::ApprovalRequest, Outcome::Success), 2);
    assert_eq!(count(&all, Action::ApprovalApprove, Outcome::Success), 1);
}

async fn resets_are_claimed_once_and_finished(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let app = new_app(&store, &t.id, "Billing").await;
    let a = new_account(&store, &t.id, "db-root", true).await;
    grant(&store, &t.id, &a.id, &app, true, false).await;
    let mut p = policy(&t.id, "Reset");
    p.reset_after_showing = true;
    p.reset_after_minutes = 1;
    let p = put_policy(&store, p).await;
    attach(&store, &t.id, &a.id, Some(&p.id)).await;
    assert!(matches!(do_view(&store, view(&t.id, &a.id, &app, None, T0)).await, ViewOutcome::Viewed(_)));

    let lease = Duration::minutes(5);
    assert!(!store.credential_resets_due(T0).await.unwrap());
    assert!(store.claim_due_resets(T0, lease, 10).await.unwrap().is_empty());
    let due = T0 + Duration::minutes(1);
    assert!(store.credential_resets_due(due).await.unwrap());
    let claimed = store.claim_due_resets(due, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let (reset, account) = &claimed[0];
    assert_eq!((account.id.as_str(), account.name.as_str()), (a.id.as_str(), "db-root"));
    assert_eq!((reset.state, reset.attempts), (ResetState::Running, 1));
    // Claimed: nobody else gets it until the lease ends.
    assert!(store.claim_due_resets(due, lease, 10).await.unwrap().is_empty());
    let listed = store.permitted_account(&t.id, PrincipalKind::Application, &app, &a.id).await.unwrap();
    assert!(listed.resetting_now);

    // A retry puts it back on schedule with the error.
    let retry_at = due + Duration::minutes(1);
    let event = || ev(Action::CredentialsReset, ObjectType::Account, &t.id, &a.id);
    store
        .finish_reset(
            &reset.id,
            ResetEnd::Retry { at: retry_at, error: "agent busy".into() },
            due,
            event().outcome(Outcome::Failed),
        )
        .await
        .unwrap();
    let again = store.claim_due_resets(retry_at, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0.attempts, 2);
    assert_eq!(again[0].0.last_error.as_deref(), Some("agent busy"));

    // A new secret finishes it, in one transaction with the version and the event.
    let seal = Box::new(|v: i64| {
        Ok(SealedSecret { password: Some(format!("pw-{v}").into_bytes()), ssh_key: None, key_id: "k1".into() })
    });
    let version =
        store.reset_with_new_secret(&again[0].0.id, &again[0].1, seal, Vec::new(), retry_at, event()).await.unwrap();
    assert_eq!(version, 2);
    let resets = store.credential_resets(&t.id, &a.id).await.unwrap();
    assert_eq!(resets[0].state, ResetState::Done);
    match do_view(&store, view(&t.id, &a.id, &app, None, retry_at)).await {
        ViewOutcome::Viewed(v) => assert_eq!(v.value, "pw-2"),
        other => panic!("{other:?}"),
    }
    // Finishing a reset that is not running is a conflict.
    let e = store.finish_reset(&reset.id, ResetEnd::Done, retry_at, event()).await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    // The view above scheduled the next reset; a failure ends it for good.
    let next = store.claim_due_resets(retry_at + Duration::minutes(1), lease, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    store
        .finish_reset(
            &next[0].0.id,
            ResetEnd::Failed { error: "x".repeat(900) },
            retry_at,
            event().outcome(Outcome::Failed),
        )
        .await
        .unwrap();
    let resets = store.credential_resets(&t.id, &a.id).await.unwrap();
    assert_eq!(resets[0].state, ResetState::Failed);
    assert_eq!(resets[0].last_error.as_ref().map(|e| e.len()), Some(500));
    assert_eq!(count(&events(&store).await, Action::CredentialsReset, Outcome::Success), 1);
}
