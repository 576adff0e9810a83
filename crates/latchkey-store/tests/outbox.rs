//! The notification outbox on both backends: queueing, claiming (once, even with several
//! stores on one database), failing with backoff, delivering, dropping and listing. Every case
//! runs as `<case>_sqlite` and `<case>_postgres` (the latter skipped with a note when
//! `LATCHKEY_TEST_PG_URL` is unset, unless services are required).

// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::{Db, T0, both};
use latchkey_core::model::Tenant;
use latchkey_core::{
    Action, Channel, EmailAddress, NewAuditEvent, Notification, ObjectType, Outcome, PasswordReadNotice,
};
use latchkey_store::{OutboxEntry, Store};
use time::{Duration, OffsetDateTime};

const LEASE: Duration = Duration::minutes(5);

both! {
    queue_writes_one_row_per_channel => queue_writes_one_row_per_channel_sqlite, queue_writes_one_row_per_channel_postgres;
    claim_takes_due_rows_once_until_the_lease_ends => claim_takes_due_rows_once_until_the_lease_ends_sqlite, claim_takes_due_rows_once_until_the_lease_ends_postgres;
    failure_backs_off_and_delivery_finishes => failure_backs_off_and_delivery_finishes_sqlite, failure_backs_off_and_delivery_finishes_postgres;
    dropped_rows_keep_their_reason => dropped_rows_keep_their_reason_sqlite, dropped_rows_keep_their_reason_postgres;
    two_stores_never_claim_a_row_twice => two_stores_never_claim_a_row_twice_sqlite, two_stores_never_claim_a_row_twice_postgres;
    listing_is_newest_first_by_tenant_with_paging => listing_is_newest_first_by_tenant_with_paging_sqlite, listing_is_newest_first_by_tenant_with_paging_postgres;
}

async fn new_tenant(store: &Store, slug: &str) -> Tenant {
    let id = uuid::Uuid::new_v4().to_string();
    let event = NewAuditEvent::new(T0, "test", Action::TenantCreate, ObjectType::Tenant).tenant(&id).object(&id);
    store
        .create_tenant(Tenant { id: id.clone(), slug: slug.into(), name: slug.into(), created_at: T0 }, event)
        .await
        .unwrap()
}

fn notice(device: &str, recipients: &[&str]) -> Notification {
    Notification::PasswordRead(PasswordReadNotice {
        tenant_slug: "acme".into(),
        actor: "DEV1\\alice".into(),
        device_name: device.into(),
        device_id: uuid::Uuid::new_v4().to_string(),
        at: T0,
        client_addr: Some("203.0.113.7".into()),
        reason: Some("ticket 4711".into()),
        outcome: Outcome::Success,
        target_name: Some("Workstations".into()),
        recipients: recipients.iter().map(|r| EmailAddress::parse(r).unwrap()).collect(),
    })
}

async fn all(store: &Store) -> Vec<OutboxEntry> {
    store.list_notifications(None, None, 1000).await.unwrap()
}

/// A notice with recipients gets an e-mail and a webhook row, one without only a webhook row;
/// rows start due at once with no attempts, and the stored notice reads back unchanged.
async fn queue_writes_one_row_per_channel(db: Db) {
    let store = db.open().await;
    let tenant = new_tenant(&store, "acme").await;
    let with_mail = notice("PC-1", &["secops@example.com", "helpdesk@example.com"]);
    let without = notice("PC-2", &[]);
    store.enqueue_notifications(Some(&tenant.id), vec![with_mail.clone(), without.clone()], T0).await.unwrap();

    let rows = all(&store).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let mut per_device: Vec<(String, Channel)> = rows
        .iter()
        .map(|r| match Notification::from_payload(&r.payload).unwrap() {
            Notification::PasswordRead(n) => (n.device_name, r.channel),
            other => panic!("unexpected notice {other:?}"),
        })
        .collect();
    per_device.sort_by_key(|(d, c)| (d.clone(), c.as_str()));
    assert_eq!(
        per_device,
        [("PC-1".into(), Channel::Email), ("PC-1".into(), Channel::Webhook), ("PC-2".into(), Channel::Webhook)]
    );
    for r in &rows {
        assert_eq!(r.tenant_id.as_deref(), Some(tenant.id.as_str()));
        assert_eq!((r.attempts, r.created_at, r.next_attempt_at), (0, T0, T0));
        assert!(r.delivered_at.is_none() && r.last_error.is_none() && !r.is_done());
        let back = Notification::from_payload(&r.payload).unwrap();
        assert!(back == with_mail || back == without);
        assert_eq!(store.notification(&r.id).await.unwrap(), *r);
    }
    assert!(store.notifications_due(T0).await.unwrap());
    assert!(!store.notifications_due(T0 - Duration::milliseconds(1)).await.unwrap());
    assert!(matches!(store.notification("no-such-row").await, Err(latchkey_store::StoreError::NotFound)));

    // A notice without a tenant (installation-wide) is kept too.
    store.enqueue_notifications(None, vec![notice("PC-3", &[])], T0).await.unwrap();
    assert_eq!(all(&store).await.len(), 4);
    assert_eq!(store.list_notifications(Some(&tenant.id), None, 1000).await.unwrap().len(), 3);
    store.close().await;
}

/// Only due rows are claimed, oldest first and at most `limit`; a claimed row is not claimed
/// again until its lease runs out, and then it is (the worker that held it died).
async fn claim_takes_due_rows_once_until_the_lease_ends(db: Db) {
    let store = db.open().await;
    store.enqueue_notifications(None, vec![notice("PC-early", &[])], T0).await.unwrap();
    store.enqueue_notifications(None, vec![notice("PC-late", &[])], T0 + Duration::seconds(10)).await.unwrap();

    assert!(store.claim_due_notifications(T0 - Duration::seconds(1), LEASE, 10).await.unwrap().is_empty());
    let first = store.claim_due_notifications(T0 + Duration::seconds(20), LEASE, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].next_attempt_at, T0, "the oldest due row comes first");
    let second = store.claim_due_notifications(T0 + Duration::seconds(20), LEASE, 10).await.unwrap();
    assert_eq!(second.len(), 1, "only the row not yet claimed");
    assert_ne!(second[0].id, first[0].id);
    assert!(store.claim_due_notifications(T0 + Duration::seconds(21), LEASE, 10).await.unwrap().is_empty());
    assert!(!store.notifications_due(T0 + Duration::seconds(21)).await.unwrap());

    let leased = store.notification(&first[0].id).await.unwrap();
    assert_eq!(leased.next_attempt_at, T0 + Duration::seconds(20) + LEASE);
    assert_eq!(leased.attempts, 0, "a claim is not an attempt");

    let after_lease = T0 + Duration::seconds(20) + LEASE;
    let again = store.claim_due_notifications(after_lease, LEASE, 10).await.unwrap();
    let ids: HashSet<String> = again.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, HashSet::from([first[0].id.clone(), second[0].id.clone()]));
    store.close().await;
}

/// A failed attempt counts, keeps its error and is not due before its next attempt; a later
/// delivery finishes the row and clears the error; a finished row is never claimed or
/// marked again.
async fn failure_backs_off_and_delivery_finishes(db: Db) {
    let store = db.open().await;
    store.enqueue_notifications(None, vec![notice("PC-1", &["a@example.com"])], T0).await.unwrap();
    let claimed = store.claim_due_notifications(T0, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let id = claimed.iter().find(|r| r.channel == Channel::Email).unwrap().id.clone();

    let retry_at = T0 + Duration::seconds(5);
    assert!(store.mark_notification_failed(&id, "connection refused", retry_at).await.unwrap());
    let row = store.notification(&id).await.unwrap();
    assert_eq!((row.attempts, row.next_attempt_at), (1, retry_at));
    assert_eq!(row.last_error.as_deref(), Some("connection refused"));
    assert!(!row.is_done());
    assert!(store.claim_due_notifications(retry_at - Duration::milliseconds(1), LEASE, 10).await.unwrap().is_empty());

    let long = "x".repeat(5000);
    let retry_2 = retry_at + Duration::seconds(10);
    let again = store.claim_due_notifications(retry_at, LEASE, 10).await.unwrap();
    assert_eq!(again.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert_eq!(again[0].attempts, 1);
    assert!(store.mark_notification_failed(&id, &long, retry_2).await.unwrap());
    let row = store.notification(&id).await.unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_error.as_ref().unwrap().chars().count(), 500, "errors are cut");

    store.claim_due_notifications(retry_2, LEASE, 10).await.unwrap();
    let done_at = retry_2 + Duration::seconds(1);
    assert!(store.mark_notification_delivered(&id, done_at).await.unwrap());
    let row = store.notification(&id).await.unwrap();
    assert_eq!((row.attempts, row.delivered_at, row.last_error.clone()), (3, Some(done_at), None));
    assert!(row.is_done() && !row.is_dropped());

    // Finished rows stay finished.
    assert!(!store.mark_notification_delivered(&id, done_at).await.unwrap());
    assert!(!store.mark_notification_failed(&id, "late failure", done_at).await.unwrap());
    assert!(!store.drop_notification(&id, "late drop", done_at).await.unwrap());
    assert_eq!(store.notification(&id).await.unwrap(), row);
    let far = done_at + Duration::days(365);
    assert!(store.claim_due_notifications(far, LEASE, 10).await.unwrap().iter().all(|r| r.id != id));
    assert!(!store.mark_notification_failed("no-such-row", "x", far).await.unwrap());
    store.close().await;
}

async fn dropped_rows_keep_their_reason(db: Db) {
    let store = db.open().await;
    store.enqueue_notifications(None, vec![notice("PC-1", &[])], T0).await.unwrap();
    let id = all(&store).await[0].id.clone();
    assert!(store.drop_notification(&id, "no webhook is configured", T0).await.unwrap());
    let row = store.notification(&id).await.unwrap();
    assert!(row.is_done() && row.is_dropped());
    assert_eq!(row.attempts, 0);
    assert_eq!(row.last_error.as_deref(), Some("no webhook is configured"));
    assert!(store.claim_due_notifications(T0 + Duration::days(1), LEASE, 10).await.unwrap().is_empty());
    store.close().await;
}

/// Two stores on one database (two servers) claiming the same due rows at the same time:
/// every row is claimed by exactly one of them.
async fn two_stores_never_claim_a_row_twice(db: Db) {
    let a = db.open().await;
    let b = db.open().await;
    let notices: Vec<Notification> = (0..60).map(|i| notice(&format!("PC-{i}"), &[])).collect();
    a.enqueue_notifications(None, notices, T0).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due_notifications(T0, LEASE, 3).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id.clone()), "row {id} was claimed twice");
        }
    }
    assert_eq!((total, seen.len()), (60, 60));
    a.close().await;
    b.close().await;
}

async fn listing_is_newest_first_by_tenant_with_paging(db: Db) {
    let store = db.open().await;
    let acme = new_tenant(&store, "acme").await;
    let other = new_tenant(&store, "other").await;
    for i in 0..5 {
        let at = T0 + Duration::seconds(i);
        store.enqueue_notifications(Some(&acme.id), vec![notice(&format!("PC-{i}"), &[])], at).await.unwrap();
        store.enqueue_notifications(Some(&other.id), vec![notice("OTHER", &[])], at).await.unwrap();
    }
    let page = store.list_notifications(Some(&acme.id), None, 3).await.unwrap();
    let times: Vec<OffsetDateTime> = page.iter().map(|r| r.created_at).collect();
    assert_eq!(times, [T0 + Duration::seconds(4), T0 + Duration::seconds(3), T0 + Duration::seconds(2)]);
    let last = page.last().unwrap();
    let rest = store.list_notifications(Some(&acme.id), Some((last.created_at, &last.id)), 3).await.unwrap();
    let times: Vec<OffsetDateTime> = rest.iter().map(|r| r.created_at).collect();
    assert_eq!(times, [T0 + Duration::seconds(1), T0]);
    for r in page.iter().chain(&rest) {
        assert_eq!(r.tenant_id.as_deref(), Some(acme.id.as_str()));
    }
    assert_eq!(store.list_notifications(None, None, 1000).await.unwrap().len(), 10);

    // Rows created at the same time are paged by id without skipping or repeating one.
    let same: Vec<Notification> = (0..7).map(|i| notice(&format!("SAME-{i}"), &[])).collect();
    let later = T0 + Duration::hours(1);
    store.enqueue_notifications(Some(&other.id), same, later).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<(OffsetDateTime, String)> = None;
    loop {
        let page = store
            .list_notifications(Some(&other.id), cursor.as_ref().map(|(t, id)| (*t, id.as_str())), 2)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some((last.created_at, last.id.clone()));
        seen.extend(page.iter().map(|r| r.id.clone()));
    }
    assert_eq!(seen.len(), 12);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 12);
    store.close().await;
}
