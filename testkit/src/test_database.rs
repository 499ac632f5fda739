//! Databases for tests. Each call gives a database nobody else uses, so tests run in
//! parallel. PostgreSQL databases are created from `PARLEY_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped when the guard goes.

use sqlx::Connection;

/// Where a test's database lives; keep it alive for the test's duration.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_admin: Option<(String, String)>,
}

impl TestDatabase {
    /// A SQLite file in a fresh temp dir.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        Self {
            url,
            _dir: Some(dir),
            postgres_admin: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` when `PARLEY_TEST_POSTGRES_URL` is unset (the
    /// test then skips its PostgreSQL run, saying so).
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var("PARLEY_TEST_POSTGRES_URL") else {
            // Straight to stderr: libtest captures the print macros of passing tests, and a
            // skipped run must show in the output.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "PARLEY_TEST_POSTGRES_URL is not set: skipping the PostgreSQL run"
            );
            return None;
        };
        let name = format!("parley_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PARLEY_TEST_POSTGRES_URL: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        let url = replace_database(&admin_url, &name);
        Some(Self {
            url,
            _dir: None,
            postgres_admin: Some((admin_url, name)),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres_admin.take() else {
            return;
        };
        // Dropping needs a connection of its own; do it on a separate thread so this works
        // whether or not a runtime is running here.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// Runs an async test body once on SQLite and once on PostgreSQL (when configured).
///
/// ```ignore
/// parley_testkit::on_every_backend!(registers_and_logs_in, |db_url| async move { ... });
/// ```
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::test_database::TestDatabase::sqlite();
                ($body)(db.url.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::test_database::TestDatabase::postgres().await else {
                    return;
                };
                ($body)(db.url.clone()).await;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
