//! Test support for Latchkey's integration tests: a fresh database per test, on SQLite (a
//! temporary directory) or on PostgreSQL (a new database in the cluster named by
//! `LATCHKEY_TEST_PG_URL`, see `scripts/services/postgres.sh`).
//!
//! Dev-only: never a dependency of a shipped crate.

// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The environment variable naming a PostgreSQL superuser URL for tests.
pub const PG_URL_VAR: &str = "LATCHKEY_TEST_PG_URL";

/// A fresh, empty PostgreSQL database for one test, as a URL.
///
/// Reads `LATCHKEY_TEST_PG_URL` (a superuser URL such as
/// `postgres://postgres:pw@127.0.0.1:55433/postgres`), creates `lk_test_<uuid>` and returns the
/// URL of that database (same credentials and host).
///
/// When the variable is unset, the PostgreSQL variant of a test is skipped (`None`, with a note
/// on stderr) — unless `LATCHKEY_REQUIRE_SERVICES=1` or `CI=true`, in which case this panics.
pub async fn fresh_postgres_url() -> Option<String> {
    let admin_url = match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            if services_required() {
                panic!(
                    "PostgreSQL is required: run ./scripts/test or set {PG_URL_VAR} \
                     (LATCHKEY_REQUIRE_SERVICES=1 or CI=true is set)"
                );
            }
            eprintln!(
                "note: {PG_URL_VAR} is not set; skipping the PostgreSQL variant \
                 (start one with scripts/services/postgres.sh start)"
            );
            return None;
        }
    };
    let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_URL_VAR} ({}): {e}", redact(&admin_url)));
    create_database(&mut conn, &name).await;
    let _ = conn.close().await;
    Some(with_database(&admin_url, &name))
}

/// The store URL of a SQLite database file inside `dir`: `sqlite://<dir>/latchkey.db`.
pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("latchkey.db").display())
}

fn services_required() -> bool {
    std::env::var("LATCHKEY_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
        || std::env::var("CI").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `CREATE DATABASE`, retried briefly: concurrent creates from parallel tests can collide on
/// the template database.
async fn create_database(conn: &mut PgConnection, name: &str) {
    // `name` is `lk_test_` plus 32 hex digits: safe as an identifier.
    let sql = format!("CREATE DATABASE {name}");
    let mut attempt = 0;
    loop {
        match conn.execute(AssertSqlSafe(sql.as_str())).await {
            Ok(_) => return,
            Err(e) if attempt < 10 => {
                attempt += 1;
                eprintln!("note: CREATE DATABASE {name} failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => panic!("CREATE DATABASE {name} failed: {e}"),
        }
    }
}

/// `url` with its database (path) replaced by `name`; the query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/postgres", "lk_test_x"),
            "postgres://u:p@127.0.0.1:5432/lk_test_x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "d"),
            "postgres://u:p@h/d?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u:p@h:1", "d"), "postgres://u:p@h:1/d");
        assert_eq!(with_database("postgresql://h/", "d"), "postgresql://h/d");
    }

    #[test]
    fn password_is_redacted() {
        assert_eq!(redact("postgres://u:secret@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn sqlite_url_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir);
        assert!(url.starts_with("sqlite://"));
        assert!(url.ends_with("/latchkey.db"));
    }
}
