//! One database per service: SQLite (a file, WAL mode) by default, PostgreSQL by URL. The
//! same queries run on both through sqlx's `Any` driver, written with `$1` placeholders,
//! BIGINT ids and times as Unix milliseconds; each backend has its own migrations.

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// A service's migrations, one set per backend (`sqlx::migrate!("./migrations/sqlite")`, …).
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

#[derive(Clone)]
pub struct Database {
    pub pool: AnyPool,
    pub backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("database URL must start with sqlite: or postgres:, got {0:?}")]
    UnsupportedUrl(String),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot create the database file {path}: {source}")]
    CreateFile { path: String, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The URL of a SQLite file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Every SQLite connection's settings: WAL, foreign keys, and waiting for a writer instead of
/// failing at once.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

/// Connects and brings the schema up to date.
pub async fn connect(url: &str, migrations: &Migrations) -> Result<Database, DatabaseError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::from_url(url).ok_or_else(|| DatabaseError::UnsupportedUrl(redact(url)))?;
    if backend == Backend::Sqlite {
        prepare_sqlite_file(url)?;
    }
    probe(url, backend).await?;
    let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
    let pool = match backend {
        Backend::Sqlite => {
            options
                .max_connections(8)
                .after_connect(|conn, _meta| {
                    Box::pin(async move { sqlx::raw_sql(SQLITE_PRAGMAS).execute(conn).await.map(|_| ()) })
                })
                .connect(url)
                .await
        }
        Backend::Postgres => options.max_connections(16).connect(url).await,
    }
    .map_err(DatabaseError::Connect)?;
    let migrator = match backend {
        Backend::Sqlite => migrations.sqlite,
        Backend::Postgres => migrations.postgres,
    };
    migrator.run(&pool).await?;
    Ok(Database { pool, backend })
}

/// Creates a directory (and any missing parents) readable by the owner only (0700 on Unix),
/// as a data directory holding keys and databases must be. An existing one is left as it is.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Before SQLite creates a database file (a `mode=rwc` URL), creates its directory (0700) and
/// the empty file itself, owner-only (0600): SQLite would create it with the umask's mode
/// (usually 0644, readable by every local user), and gives its `-wal` and `-shm` files the
/// database file's mode. An existing file keeps its mode.
fn prepare_sqlite_file(url: &str) -> Result<(), DatabaseError> {
    let Some(path) = sqlite_path(url).map(Path::new) else {
        return Ok(());
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        create_private_dir(parent).map_err(|source| DatabaseError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    if !url.contains("mode=rwc") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(DatabaseError::CreateFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// One connection made by hand before the pool, so a database that cannot work (a file that
/// is not a database, a refused connection, a wrong password) fails start-up at once with its
/// real cause; the pool would retry until its acquire timeout and report only that it timed out.
async fn probe(url: &str, backend: Backend) -> Result<(), DatabaseError> {
    let mut connection = AnyConnection::connect(url).await.map_err(DatabaseError::Connect)?;
    if backend == Backend::Sqlite {
        sqlx::raw_sql(SQLITE_PRAGMAS)
            .execute(&mut connection)
            .await
            .map_err(DatabaseError::Connect)?;
    }
    let _ = connection.close().await;
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}://…{}", &url[..scheme_end], &url[at..]),
        _ => url.to_string(),
    }
}

/// Whether an error means the database could not be reached or had no connection free in time
/// (a refused or broken connection, the pool's acquire timeout, a pool closed at shutdown), so
/// the same request may well succeed shortly: UNAVAILABLE to the caller, not INTERNAL.
pub fn is_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    )
}

/// Whether an error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| e.is_unique_violation())
}

/// A boolean as stored: flags are integer columns (0/1) on both backends, because sqlx's Any
/// driver cannot decode SQLite booleans. Read them back as `i64` and compare with 0.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// The current time as Unix milliseconds, the form every table stores times in.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    static SQLITE: Migrator = sqlx::migrate!("./tests/migrations/sqlite");
    static POSTGRES: Migrator = sqlx::migrate!("./tests/migrations/postgres");

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@host/db"), "postgres://…@host/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    /// Flags are stored as integers 0/1 (INTEGER on SQLite, SMALLINT on PostgreSQL) and read
    /// as i64: sqlx's Any driver cannot decode SQLite booleans.
    async fn placeholders_flags_and_unique_violations(url: &str) {
        let migrations = Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        };
        let db = connect(url, &migrations).await.unwrap_or_else(|e| panic!("{e}"));
        let id: (i64,) = sqlx::query_as("INSERT INTO kit_probe (name, flag) VALUES ($1, $2) RETURNING id")
            .bind("a")
            .bind(flag(true))
            .fetch_one(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let row: (String, i64) = sqlx::query_as("SELECT name, flag FROM kit_probe WHERE id = $1")
            .bind(id.0)
            .fetch_one(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row, ("a".to_string(), 1));
        let dup = sqlx::query("INSERT INTO kit_probe (name, flag) VALUES ($1, $2)")
            .bind("a")
            .bind(flag(false))
            .execute(&db.pool)
            .await;
        assert!(dup.as_ref().err().is_some_and(is_unique_violation), "{dup:?}");
        // Migrations are idempotent on restart.
        connect(url, &migrations).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// A new database, its directories and its WAL files are the owner's only (like the key
    /// files), whatever the umask would have given.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_file_and_its_directories_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("data/nested/test.db");
        let url = sqlite_url(&file);
        let db = connect(
            &url,
            &Migrations {
                sqlite: &SQLITE,
                postgres: &POSTGRES,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("INSERT INTO kit_probe (name, flag) VALUES ($1, $2)")
            .bind("written")
            .bind(flag(true))
            .execute(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        assert_eq!(mode(&dir.path().join("data/nested")), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("data/nested/test.db-wal")), 0o600);
        db.pool.close().await;

        // An existing file keeps the mode its owner gave it.
        let existing = dir.path().join("existing.db");
        std::fs::write(&existing, b"").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap_or_else(|e| panic!("{e}"));
        let db = connect(
            &sqlite_url(&existing),
            &Migrations {
                sqlite: &SQLITE,
                postgres: &POSTGRES,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        db.pool.close().await;
        assert_eq!(mode(&existing), 0o640);
    }

    #[tokio::test]
    async fn sqlite_file_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = sqlite_url(&dir.path().join("nested/test.db"));
        placeholders_flags_and_unique_violations(&url).await;
        let db = connect(
            &url,
            &Migrations {
                sqlite: &SQLITE,
                postgres: &POSTGRES,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode.0.to_lowercase(), "wal");
    }

    #[tokio::test]
    async fn postgres_when_configured() {
        let Ok(admin) = std::env::var("PARLEY_TEST_POSTGRES_URL") else {
            return;
        };
        use sqlx::Connection;
        let name = format!("parley_kit_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "{}/{name}",
            admin.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin)
        );
        placeholders_flags_and_unique_violations(&url).await;
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await;
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_fails_at_once_with_its_cause() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap_or_else(|e| panic!("{e}"));
        let migrations = Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        };
        let Err(error) = connect(&sqlite_url(&path), &migrations).await else {
            panic!("a garbage file opened as a database")
        };
        // The cause itself, not the pool's "timed out while waiting for an open connection".
        assert!(error.to_string().contains("not a database"), "{error}");
    }

    /// A database nobody answers at, and a pool closed at shutdown, are "unreachable"; a
    /// statement the database refused is not.
    #[tokio::test]
    async fn unreachable_databases_are_told_apart_from_refused_statements() {
        sqlx::any::install_default_drivers();
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let nobody = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/none"))
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = sqlx::query("SELECT 1").execute(&nobody).await;
        assert!(refused.as_ref().err().is_some_and(is_unreachable), "{refused:?}");

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let migrations = Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        };
        let db = connect(&sqlite_url(&dir.path().join("t.db")), &migrations)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let bad = sqlx::query("SELECT no_such_column FROM kit_probe")
            .execute(&db.pool)
            .await;
        assert!(bad.as_ref().err().is_some_and(|e| !is_unreachable(e)), "{bad:?}");
        db.pool.close().await;
        let closed = sqlx::query("SELECT 1").execute(&db.pool).await;
        assert!(closed.as_ref().err().is_some_and(is_unreachable), "{closed:?}");
    }

    #[tokio::test]
    async fn refuses_unknown_urls() {
        let err = connect(
            "mysql://x",
            &Migrations {
                sqlite: &SQLITE,
                postgres: &POSTGRES,
            },
        )
        .await
        .err();
        assert!(matches!(err, Some(DatabaseError::UnsupportedUrl(_))));
    }
}
