//! Just-in-time grants and built-in tickets on both backends: creation and the owner of each
//! tech account name, approval (never by the requester), revoke (twice is a conflict), extend,
//! claims that several engines never share, the move to `revoking` at the end, step results
//! guarded by state, overdue reported once, and built-in tickets with their comments.

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{Db, T0, both, ev, new_tenant};
use latchkey_core::jit::{GrantState, Provider};
use latchkey_core::{Action, ObjectType};
use latchkey_store::{FinishedStep, JitGrant, NewJitGrant, NewTicketComment, StepResult, Store, StoreError};
use time::Duration;

const LEASE: Duration = Duration::minutes(2);

both! {
    creation_records_the_account_owner => creation_records_the_account_owner_sqlite, creation_records_the_account_owner_postgres;
    approval_revoke_and_extend_follow_the_states => approval_revoke_and_extend_follow_the_states_sqlite, approval_revoke_and_extend_follow_the_states_postgres;
    claims_are_never_shared_and_results_are_guarded => claims_are_never_shared_and_results_are_guarded_sqlite, claims_are_never_shared_and_results_are_guarded_postgres;
    overdue_is_reported_once => overdue_is_reported_once_sqlite, overdue_is_reported_once_postgres;
    tickets_number_close_and_collect_comments => tickets_number_close_and_collect_comments_sqlite, tickets_number_close_and_collect_comments_postgres;
}

fn new_grant(tenant_id: &str, requester: &str, account: &str, state: GrantState, minutes: i64) -> NewJitGrant {
    NewJitGrant {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_owned(),
        provider: Provider::Directory,
        device_id: None,
        requester: requester.to_owned(),
        requester_key: format!("user:{requester}"),
        account_name: account.to_owned(),
        ticket: "7".into(),
        reason: "fix it".into(),
        minutes,
        state,
        created_at: T0,
        end_at: T0 + Duration::minutes(minutes),
        password_envelope: vec![1, 2, 3],
        key_id: "k1".into(),
    }
}

async fn create(store: &Store, g: NewJitGrant) -> Result<JitGrant, StoreError> {
    let event = ev(Action::JitRequest, ObjectType::JitGrant, &g.tenant_id, &g.id);
    store.create_jit_grant(g, event).await
}

async fn count_actions(db: &Db, action: &str) -> i64 {
    db.raw_i64(format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'")).await
}

async fn creation_records_the_account_owner(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let g = create(&store, new_grant(&t.id, "maximilian.mustermann", "maximilian.m-acme", GrantState::Approved, 30))
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Approved);
    assert_eq!(g.next_step_at, T0);
    // Another requester whose name maps to the same tech account is refused.
    let other =
        create(&store, new_grant(&t.id, "maximilian.meier", "maximilian.m-acme", GrantState::Approved, 30)).await;
    assert!(matches!(other, Err(StoreError::Conflict(m)) if m.contains("another requester")), "{other:?}");
    // The same requester cannot hold two open grants for one account.
    let twice =
        create(&store, new_grant(&t.id, "maximilian.mustermann", "maximilian.m-acme", GrantState::Approved, 30)).await;
    assert!(matches!(twice, Err(StoreError::Conflict(m)) if m.contains("open grant")), "{twice:?}");
    // Refused requests left no row and no audit event behind.
    assert_eq!(db.raw_i64("SELECT COUNT(*) FROM jit_grants").await, 1);
    assert_eq!(count_actions(&db, "jit.request").await, 1);
    // Once the first is revoked, the owner may ask again.
    store.revoke_jit_grant(&t.id, &g.id, T0, ev(Action::JitRevoke, ObjectType::JitGrant, &t.id, &g.id)).await.unwrap();
    let claimed = store.claim_due_jit_grants("n1", T0, LEASE, 10).await.unwrap();
    let step = FinishedStep {
        from: GrantState::Revoking,
        result: StepResult::Moved { to: GrantState::Revoked, next_step_at: T0, provider_job: None, error: None },
        events: vec![],
        comments: vec![],
    };
    assert!(store.finish_jit_step(&claimed[0].id, "n1", T0, step).await.unwrap());
    create(&store, new_grant(&t.id, "maximilian.mustermann", "maximilian.m-acme", GrantState::Approved, 30))
        .await
        .unwrap();
}

async fn approval_revoke_and_extend_follow_the_states(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let g = create(&store, new_grant(&t.id, "alice", "alice-acme", GrantState::Requested, 30)).await.unwrap();
    let approve = |who: &str| ev(Action::JitApprove, ObjectType::JitGrant, &t.id, &g.id).tap_actor(who);
    // The requester cannot approve their own request.
    let own = store.decide_jit_grant(&t.id, &g.id, true, "user:alice", T0, approve("user:alice")).await;
    assert!(matches!(own, Err(StoreError::Invalid(_))), "{own:?}");
    // A requested grant is not due for the engine.
    assert!(store.claim_due_jit_grants("n1", T0 + Duration::hours(1), LEASE, 10).await.unwrap().is_empty());
    let later = T0 + Duration::minutes(10);
    let g = store.decide_jit_grant(&t.id, &g.id, true, "user:bob", later, approve("user:bob")).await.unwrap();
    assert_eq!(g.state, GrantState::Approved);
    assert_eq!(g.approver.as_deref(), Some("user:bob"));
    // It runs for its minutes from the approval.
    assert_eq!(g.end_at, later + Duration::minutes(30));
    let again = store.decide_jit_grant(&t.id, &g.id, false, "user:bob", later, approve("user:bob")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // Extend moves the end; an end that is not later is refused.
    let ext = |g: &JitGrant| ev(Action::JitExtend, ObjectType::JitGrant, &t.id, &g.id);
    let g = store.extend_jit_grant(&t.id, &g.id, g.end_at + Duration::minutes(15), later, ext(&g)).await.unwrap();
    assert_eq!(g.end_at, later + Duration::minutes(45));
    let same = store.extend_jit_grant(&t.id, &g.id, g.end_at, later, ext(&g)).await;
    assert!(matches!(same, Err(StoreError::Invalid(_))), "{same:?}");
    // Revoke once moves it to revoking; twice is a conflict.
    let rev = |g: &JitGrant| ev(Action::JitRevoke, ObjectType::JitGrant, &t.id, &g.id);
    let r = store.revoke_jit_grant(&t.id, &g.id, later, rev(&g)).await.unwrap();
    assert_eq!(r.state, GrantState::Revoking);
    assert_eq!(r.end_at, later);
    assert!(r.is_expired(later));
    let twice = store.revoke_jit_grant(&t.id, &g.id, later, rev(&g)).await;
    assert!(matches!(twice, Err(StoreError::Conflict(m)) if m.contains("already revoked")), "{twice:?}");
    // A grant of another tenant is not found.
    let other = new_tenant(&store, "other").await;
    assert!(matches!(store.jit_grant(&other.id, &g.id).await, Err(StoreError::NotFound)));
    // A denied request is final.
    let d = create(&store, new_grant(&t.id, "carol", "carol-acme", GrantState::Requested, 30)).await.unwrap();
    let d = store
        .decide_jit_grant(&t.id, &d.id, false, "user:bob", T0, ev(Action::JitDeny, ObjectType::JitGrant, &t.id, &d.id))
        .await
        .unwrap();
    assert_eq!(d.state, GrantState::Denied);
    let revoke_denied = store.revoke_jit_grant(&t.id, &d.id, T0, rev(&d)).await;
    assert!(matches!(revoke_denied, Err(StoreError::Conflict(_))), "{revoke_denied:?}");
}

trait TapActor {
    fn tap_actor(self, who: &str) -> Self;
}

impl TapActor for latchkey_core::NewAuditEvent {
    fn tap_actor(mut self, who: &str) -> Self {
        self.actor = who.to_owned();
        self
    }
}

async fn claims_are_never_shared_and_results_are_guarded(db: Db) {
    let store = db.open().await;
    let second = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let mut ids = HashSet::new();
    for i in 0..20 {
        let g = create(&store, new_grant(&t.id, &format!("u{i}"), &format!("u{i}-acme"), GrantState::Approved, 5))
            .await
            .unwrap();
        ids.insert(g.id);
    }
    // Two engines on one database claim at the same time: every grant goes to exactly one.
    let (a, b) = tokio::join!(
        store.claim_due_jit_grants("n1", T0, LEASE, 1000),
        second.claim_due_jit_grants("n2", T0, LEASE, 1000)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let a_ids: HashSet<String> = a.iter().map(|g| g.id.clone()).collect();
    let b_ids: HashSet<String> = b.iter().map(|g| g.id.clone()).collect();
    assert!(a_ids.is_disjoint(&b_ids));
    assert_eq!(a_ids.len() + b_ids.len(), 20);
    // Claimed grants are not claimed again until the lease ends.
    assert!(store.claim_due_jit_grants("n3", T0 + Duration::minutes(1), LEASE, 1000).await.unwrap().is_empty());
    // A step result from a node that does not hold the claim writes nothing.
    let g = a.first().or(b.first()).unwrap().clone();
    let holder = if a_ids.contains(&g.id) { "n1" } else { "n2" };
    let active = |job: Option<String>| FinishedStep {
        from: GrantState::Approved,
        result: StepResult::Moved { to: GrantState::Active, next_step_at: g.end_at, provider_job: job, error: None },
        events: vec![ev(Action::JitActivate, ObjectType::JitGrant, &t.id, &g.id)],
        comments: vec![],
    };
    assert!(!store.finish_jit_step(&g.id, "n3", T0, active(None)).await.unwrap());
    assert_eq!(store.jit_grant_any(&g.id).await.unwrap().state, GrantState::Approved);
    // The holder's result moves it and releases the claim; an illegal move is refused.
    assert!(store.finish_jit_step(&g.id, holder, T0, active(None)).await.unwrap());
    let got = store.jit_grant_any(&g.id).await.unwrap();
    assert_eq!(got.state, GrantState::Active);
    assert_eq!(got.start_at, Some(T0));
    assert_eq!(got.next_step_at, g.end_at);
    assert_eq!(count_actions(&db, "jit.activate").await, 1);
    // At the end, the claim moves grants to revoking (audited by the scheduler).
    let end = g.end_at;
    let due = store.claim_due_jit_grants("n1", end, LEASE, 1000).await.unwrap();
    let mine = due.iter().find(|x| x.id == g.id).unwrap();
    assert_eq!(mine.state, GrantState::Revoking);
    // Every grant past its end moves, whatever step it was at (the others' claims ran out).
    assert_eq!(due.len(), 20);
    assert!(due.iter().all(|x| x.state == GrantState::Revoking));
    assert_eq!(count_actions(&db, "jit.revoke").await, 20);
    // A retry keeps it revoking, counts the attempt and releases the claim.
    let retry = FinishedStep {
        from: GrantState::Revoking,
        result: StepResult::Retry { error: "directory unreachable".into(), next_step_at: end + Duration::seconds(1) },
        events: vec![],
        comments: vec![],
    };
    assert!(store.finish_jit_step(&g.id, "n1", end, retry).await.unwrap());
    let got = store.jit_grant_any(&g.id).await.unwrap();
    assert_eq!(
        (got.state, got.attempts, got.last_error.as_deref()),
        (GrantState::Revoking, 1, Some("directory unreachable"))
    );
    assert_eq!(store.next_jit_step(end).await.unwrap().map(|t| t <= end + Duration::seconds(1)), Some(true));
    // Claims held by a node are released when it starts again.
    let held = store.claim_due_jit_grants("n9", end + Duration::seconds(1), LEASE, 1000).await.unwrap();
    assert!(!held.is_empty());
    assert_eq!(store.release_jit_claims("n9").await.unwrap(), held.len() as u64);
    let moved_illegally = FinishedStep {
        from: GrantState::Revoking,
        result: StepResult::Moved { to: GrantState::Active, next_step_at: end, provider_job: None, error: None },
        events: vec![],
        comments: vec![],
    };
    assert!(matches!(store.finish_jit_step(&g.id, "n1", end, moved_illegally).await, Err(StoreError::Invalid(_))));
}

async fn overdue_is_reported_once(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let g = create(&store, new_grant(&t.id, "alice", "alice-acme", GrantState::Approved, 5)).await.unwrap();
    let grace = Duration::seconds(60);
    assert!(store.mark_overdue_jit_grants(g.end_at + Duration::seconds(30), grace).await.unwrap().is_empty());
    assert_eq!(
        store.mark_overdue_jit_grants(g.end_at + Duration::seconds(61), grace).await.unwrap(),
        vec![g.id.clone()]
    );
    assert!(store.mark_overdue_jit_grants(g.end_at + Duration::hours(1), grace).await.unwrap().is_empty());
    assert_eq!(count_actions(&db, "jit.overdue").await, 1);
    assert!(store.jit_grant_any(&g.id).await.unwrap().overdue_at.is_some());
    assert_eq!(store.count_overdue_jit_grants(g.end_at).await.unwrap(), 1);
}

async fn tickets_number_close_and_collect_comments(db: Db) {
    let store = db.open().await;
    let t = new_tenant(&store, "acme").await;
    let other = new_tenant(&store, "other").await;
    let e = |tenant: &str| ev(Action::TicketCreate, ObjectType::Ticket, tenant, "-");
    let one = store.create_ticket(&t.id, "first", "admin", T0, e(&t.id)).await.unwrap();
    let two = store.create_ticket(&t.id, "second", "admin", T0, e(&t.id)).await.unwrap();
    let elsewhere = store.create_ticket(&other.id, "x", "admin", T0, e(&other.id)).await.unwrap();
    assert_eq!((one.number, two.number, elsewhere.number), (1, 2, 1));
    assert!(one.open);
    let closed =
        store.close_ticket(&t.id, 1, T0, ev(Action::TicketClose, ObjectType::Ticket, &t.id, "-")).await.unwrap();
    assert!(!closed.open);
    assert_eq!(closed.closed_at, Some(T0));
    let twice = store.close_ticket(&t.id, 1, T0, ev(Action::TicketClose, ObjectType::Ticket, &t.id, "-")).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert!(matches!(store.ticket(&t.id, 99).await, Err(StoreError::NotFound)));
    let open: Vec<i64> = store.list_tickets(&t.id, true, 100).await.unwrap().iter().map(|t| t.number).collect();
    assert_eq!(open, vec![2]);
    // Comments: built-in ones are delivered at once, PSA ones wait for the worker.
    let g = create(&store, new_grant(&t.id, "alice", "alice-acme", GrantState::Approved, 5)).await.unwrap();
    let claimed = store.claim_due_jit_grants("n1", T0, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let comment = |adapter: &str| NewTicketComment {
        tenant_id: t.id.clone(),
        ticket: "7".into(),
        grant_id: Some(g.id.clone()),
        adapter: adapter.into(),
        body: format!("{adapter} comment"),
    };
    let step = FinishedStep {
        from: GrantState::Approved,
        result: StepResult::Moved { to: GrantState::Active, next_step_at: g.end_at, provider_job: None, error: None },
        events: vec![],
        comments: vec![comment("builtin"), comment("psa")],
    };
    assert!(store.finish_jit_step(&g.id, "n1", T0, step).await.unwrap());
    let all = store.ticket_comments(&t.id, "7").await.unwrap();
    assert_eq!(all.len(), 2);
    let due = store.claim_due_ticket_comments(T0, LEASE, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].adapter, "psa");
    assert!(store.claim_due_ticket_comments(T0, LEASE, 10).await.unwrap().is_empty());
    assert!(store.mark_ticket_comment_failed(&due[0].id, "PSA down", T0 + Duration::seconds(5)).await.unwrap());
    let again = store.claim_due_ticket_comments(T0 + Duration::seconds(5), LEASE, 10).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    let delivered = ev(Action::TicketComment, ObjectType::Ticket, &t.id, "7");
    assert!(store.mark_ticket_comment_delivered(&due[0].id, T0, delivered.clone()).await.unwrap());
    assert!(!store.mark_ticket_comment_delivered(&due[0].id, T0, delivered).await.unwrap());
    assert_eq!(count_actions(&db, "ticket.comment").await, 1);
}
