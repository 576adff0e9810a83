//! Shared harness of the store's integration tests: a fresh database per test (`Db`) on either
//! backend, the `both!` macro that runs each case as a SQLite and a PostgreSQL test (the latter
//! skipped with a note when `LATCHKEY_TEST_PG_URL` is unset, unless services are required), the
//! tests' clock `T0`, and small fixtures several suites share.

// Each test binary uses a different subset of this module.
#![allow(dead_code)]
// Test code: helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use latchkey_core::model::{Tenant, User};
use latchkey_core::{Action, NewAuditEvent, ObjectType};
use latchkey_store::{Backend, NewUser, Store};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqliteConnection};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Harness

/// A fresh database for one test.
pub struct Db {
    pub backend: Backend,
    pub url: String,
    /// Holds the SQLite file's temporary directory for as long as the test runs.
    pub dir: Option<TempDir>,
}

impl Db {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self { backend: Backend::Sqlite, url: latchkey_testkit::sqlite_url(&dir), dir: Some(dir) }
    }

    pub async fn postgres() -> Option<Self> {
        Some(Self { backend: Backend::Postgres, url: latchkey_testkit::fresh_postgres_url().await?, dir: None })
    }

    pub async fn open(&self) -> Store {
        let store = Store::open(&self.url).await.unwrap();
        assert_eq!(store.backend(), self.backend);
        store
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().join("latchkey.db")
    }

    /// Run one statement on a raw connection of the backend, bypassing the store (e.g. for
    /// tampering, or columns only the directory sync writes); returns the rows affected.
    pub async fn raw_execute(&self, sql: impl Into<String>) -> u64 {
        let sql = AssertSqlSafe(sql.into());
        match self.backend {
            Backend::Sqlite => {
                let mut c = SqliteConnection::connect(&self.url).await.unwrap();
                let n = c.execute(sql).await.unwrap().rows_affected();
                c.close().await.unwrap();
                n
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                let n = c.execute(sql).await.unwrap().rows_affected();
                c.close().await.unwrap();
                n
            }
        }
    }

    /// Read one integer on a raw connection of the backend.
    pub async fn raw_i64(&self, sql: impl Into<String>) -> i64 {
        let sql = AssertSqlSafe(sql.into());
        match self.backend {
            Backend::Sqlite => {
                let mut c = SqliteConnection::connect(&self.url).await.unwrap();
                let v = sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                v
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                let v = sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                v
            }
        }
    }

    /// One text column of every row on a raw connection of the backend, sorted; NULL as `-`.
    pub async fn raw_strings(&self, sql: impl Into<String>) -> Vec<String> {
        let sql = AssertSqlSafe(sql.into());
        let mut v: Vec<String> = match self.backend {
            Backend::Sqlite => {
                let mut c = SqliteConnection::connect(&self.url).await.unwrap();
                let v: Vec<Option<String>> = sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap();
                c.close().await.unwrap();
                v.into_iter().map(|s| s.unwrap_or_else(|| "-".into())).collect()
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                let v: Vec<Option<String>> = sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap();
                c.close().await.unwrap();
                v.into_iter().map(|s| s.unwrap_or_else(|| "-".into())).collect()
            }
        };
        v.sort();
        v
    }
}

/// Every case (an `async fn(Db)`) as two tests, one on a fresh SQLite file and one on a fresh
/// PostgreSQL database (which returns early only when PostgreSQL is not configured).
///
/// - `both! { case => case_sqlite, case_postgres; ... }` names the two tests explicitly.
/// - `both!(case, ...)` puts them in a module of the case's name: `case::sqlite`, `case::postgres`.
macro_rules! both {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $case($crate::common::Db::sqlite()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(db) = $crate::common::Db::postgres().await else { return };
            $case(db).await;
        }
    )*};
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case($crate::common::Db::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::common::Db::postgres().await else { return };
                super::$case(db).await;
            }
        }
    )*};
}
pub(crate) use both;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// The tests' "now": whole milliseconds, the store's time unit.
pub const T0: OffsetDateTime = datetime!(2030-01-02 03:04:05.678 UTC);

pub fn new_id() -> String {
    Uuid::new_v4().to_string()
}

pub fn ev(action: Action, object_type: ObjectType, tenant_id: &str, object_id: &str) -> NewAuditEvent {
    NewAuditEvent::new(T0, "test", action, object_type).tenant(tenant_id).object(object_id)
}

pub async fn new_tenant(store: &Store, slug: &str) -> Tenant {
    let id = new_id();
    store
        .create_tenant(
            Tenant { id: id.clone(), slug: slug.to_owned(), name: format!("Tenant {slug}"), created_at: T0 },
            ev(Action::TenantCreate, ObjectType::Tenant, &id, &id),
        )
        .await
        .unwrap()
}

pub async fn new_user(store: &Store, tenant_id: &str, name: &str) -> User {
    let id = new_id();
    store
        .create_user(
            NewUser {
                id: id.clone(),
                tenant_id: tenant_id.to_owned(),
                name: name.to_owned(),
                name_key: name.to_lowercase(),
                display_name: Some(format!("User {name}")),
                email: Some(format!("{name}@example.com")),
                created_at: T0,
            },
            ev(Action::UserCreate, ObjectType::User, tenant_id, &id),
        )
        .await
        .unwrap()
}
