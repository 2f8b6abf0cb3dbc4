//! `qt-store`: the services' door to their own database.
//!
//! One function opens a pool from a URL — a SQLite file by default (`sqlite://path`, created if
//! missing, WAL, `synchronous = NORMAL`, one connection), PostgreSQL when the URL says `postgres://` (the services take it
//! from `QT_DATABASE_URL`) — and runs the calling service's embedded migrations for that
//! database (each service keeps `migrations/sqlite` and `migrations/postgres` side by side and
//! embeds both with `sqlx::migrate!`). Queries go through sqlx's `Any` driver with `$1`
//! placeholders, which both databases accept; money is stored as TEXT (`dec_text`/`row_dec`)
//! because the `Any` driver cannot bind `Decimal`, and integers as 64-bit (`BIGINT` on Postgres).
//!
//! This crate knows no table, no event and no trading rule: schemas belong to the services. It
//! never logs a URL (it may carry a password).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Executor, Row};

#[cfg(feature = "test-support")]
pub mod pg;

pub use sqlx;
pub use sqlx::AnyPool;
pub use sqlx::any::AnyRow;

/// The environment variable that selects the database (any service).
pub const DATABASE_URL_ENV: &str = "QT_DATABASE_URL";

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A service's embedded migrations, one set per database.
///
/// ```ignore
/// static MIGRATIONS: qt_store::Migrations = qt_store::Migrations {
///     sqlite: &sqlx::migrate!("migrations/sqlite"),
///     postgres: &sqlx::migrate!("migrations/postgres"),
/// };
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// Run when the URL is `sqlite:`.
    pub sqlite: &'static Migrator,
    /// Run when the URL is `postgres:`/`postgresql:`.
    pub postgres: &'static Migrator,
}

/// Errors of the store. [`StoreError::is_retryable`] says whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database this crate supports.
    #[error("unsupported database url scheme (expected sqlite: or postgres:)")]
    UnsupportedUrl,
    /// The database could not be opened or reached.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed (a bug or a database edited by hand).
    #[error("migration failed: {0}")]
    Migrate(#[from] MigrateError),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value could not be read back (corrupt row).
    #[error("column {column} holds an unreadable value {value:?}")]
    BadValue {
        /// Column name.
        column: String,
        /// The text found.
        value: String,
    },
}

impl StoreError {
    /// Whether the same operation may succeed later (I/O, pool exhausted, database busy).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Query(e) => sqlx_retryable(e),
            Self::UnsupportedUrl | Self::Migrate(_) | Self::BadValue { .. } => false,
        }
    }
}

fn sqlx_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let msg = db.message().to_ascii_lowercase();
            // SQLite busy/locked; Postgres serialization failure / deadlock / connection issues.
            msg.contains("database is locked")
                || msg.contains("busy")
                || matches!(
                    db.code().as_deref(),
                    Some("5" | "6" | "40001" | "40P01" | "57P01" | "08006" | "08003")
                )
        }
        _ => false,
    }
}

/// The database URL: `QT_DATABASE_URL` when set and not empty, else a SQLite file at
/// `default_sqlite_path`.
#[must_use]
pub fn url_from_env(default_sqlite_path: &Path) -> String {
    match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => sqlite_url(default_sqlite_path),
    }
}

/// `sqlite://<path>` for a file path.
#[must_use]
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Which backend a URL selects.
///
/// # Errors
/// [`StoreError::UnsupportedUrl`] for any scheme other than `sqlite:`, `postgres:`, `postgresql:`.
pub fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// An open pool plus the backend it talks to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the database at `url` (creating a SQLite file and its folder if missing) and runs
    /// the migrations for its backend.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`], [`StoreError::Connect`] (retryable), [`StoreError::Migrate`].
    pub async fn connect(url: &str, migrations: Migrations) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(StoreError::Connect)?;
        let pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => pool_options
                // One connection: SQLite takes one writer at a time, and a second connection
                // that finds the file locked sleeps in SQLite's busy handler (1 ms, then 2, 5
                // ...) where a wait for the pool is exact.
                .max_connections(1)
                // A file cannot drop the connection: no ping before each use (it would double
                // the round trips to the connection's worker thread).
                .test_before_acquire(false)
                // `synchronous = NORMAL` in WAL mode: a commit is in the operating system's
                // hands when it returns, so it survives the process being killed; only a crash
                // of the host can drop the last commits (they are synced at checkpoints). A
                // service whose records must outlive that too checks for it (execution: see
                // its `host` module).
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?,
            Backend::Postgres => pool_options
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?,
        };
        let migrator = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        migrator.run(&pool).await?;
        tracing::debug!(backend = ?backend, "database open and migrated");
        Ok(Self { pool, backend })
    }

    /// The pool, for queries (`sqlx::query("… $1 …").bind(..).execute(store.pool())`).
    #[must_use]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend behind the pool (for the rare statement that differs).
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs one write that commits on its own so that it is on disk when this returns. SQLite
    /// commits here do not wait for the disk (`synchronous = NORMAL`), so the write runs with
    /// `synchronous = FULL` on the store's connection, which is set back afterwards; on
    /// PostgreSQL every commit is on disk already.
    ///
    /// # Errors
    /// The write's error, or one from switching the setting.
    pub async fn execute_on_disk<'q>(
        &self,
        write: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        if self.backend == Backend::Postgres {
            return Ok(write.execute(&self.pool).await?);
        }
        let mut conn = self.pool.acquire().await?;
        conn.execute("PRAGMA synchronous = FULL").await?;
        let result = write.execute(&mut *conn).await;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        Ok(result?)
    }

    /// Closes every connection (waits for the ones in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` (create if missing) and creates the parent folder of a SQLite file.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or(StoreError::UnsupportedUrl)?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if let Some(parent) = Path::new(path).parent()
        && !path.is_empty()
        && path != ":memory:"
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect(sqlx::Error::Io(e)))?;
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    })
}

/// Bind placeholders `$first, $first+1, …` (`n` of them), for a statement built at run time
/// (`IN (…)`, multi-row `VALUES`); the values themselves are always bound.
#[must_use]
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rows` parenthesized groups of `cols` placeholders numbered from `$1`, for a multi-row
/// `INSERT … VALUES`: `values(2, 3)` is `($1, $2, $3), ($4, $5, $6)`.
#[must_use]
pub fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `Decimal` as stored: its canonical text without trailing zeros (`"1.5"`, `"-0.001"`).
#[must_use]
pub fn dec_text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// Parses stored decimal text.
///
/// # Errors
/// [`StoreError::BadValue`] when the text is not a decimal.
pub fn parse_dec(column: &str, text: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_str(text))
        .map_err(|_| StoreError::BadValue {
            column: column.to_owned(),
            value: text.to_owned(),
        })
}

/// Reads a TEXT column holding a decimal.
///
/// # Errors
/// [`StoreError::Query`] if the column is missing or not text, [`StoreError::BadValue`] if the
/// text is not a decimal.
pub fn row_dec(row: &AnyRow, column: &str) -> Result<Decimal, StoreError> {
    let text: String = row.try_get(column)?;
    parse_dec(column, &text)
}

/// Reads a nullable TEXT column holding a decimal.
///
/// # Errors
/// As [`row_dec`].
pub fn row_opt_dec(row: &AnyRow, column: &str) -> Result<Option<Decimal>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| parse_dec(column, &t)).transpose()
}

/// Declares the calling service's embedded migrations — the `migrations/sqlite` and
/// `migrations/postgres` folders of its crate — recorded in a table of its own, as
/// `MIGRATIONS_TABLE` and `migrations()`. Its own table (not sqlx's shared `_sqlx_migrations`)
/// lets services share one database (one `QT_DATABASE_URL`) without their version numbers
/// colliding; their tables carry a prefix of their own for the same reason. The caller depends
/// on `sqlx` (the macro embeds the folders at compile time).
#[macro_export]
macro_rules! service_migrations {
    ($table:expr) => {
        /// The table that records this service's applied migrations.
        pub const MIGRATIONS_TABLE: &str = $table;

        /// Embedded migrations, one folder per database, recorded in [`MIGRATIONS_TABLE`].
        pub fn migrations() -> $crate::Migrations {
            static SQLITE: ::std::sync::LazyLock<::sqlx::migrate::Migrator> =
                ::std::sync::LazyLock::new(|| {
                    let mut m = ::sqlx::migrate!("migrations/sqlite");
                    m.dangerous_set_table_name(MIGRATIONS_TABLE);
                    m
                });
            static POSTGRES: ::std::sync::LazyLock<::sqlx::migrate::Migrator> =
                ::std::sync::LazyLock::new(|| {
                    let mut m = ::sqlx::migrate!("migrations/postgres");
                    m.dangerous_set_table_name(MIGRATIONS_TABLE);
                    m
                });
            $crate::Migrations {
                sqlite: &SQLITE,
                postgres: &POSTGRES,
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_value_once() {
        assert_eq!(placeholders(1, 1), "$1");
        assert_eq!(placeholders(4, 3), "$4, $5, $6");
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
    use rust_decimal_macros::dec;

    #[test]
    fn decimal_text_round_trips_without_trailing_zeros() {
        for d in [dec!(0), dec!(1.50), dec!(-0.001), dec!(123456789.123456789)] {
            let text = dec_text(d);
            assert!(!text.contains('.') || !text.ends_with('0'), "{text}");
            assert_eq!(parse_dec("c", &text).ok(), Some(d));
        }
        assert!(matches!(
            parse_dec("price", "abc"),
            Err(StoreError::BadValue { .. })
        ));
    }

    #[test]
    fn url_scheme_selects_the_backend() {
        assert_eq!(backend_of("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(
            backend_of("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            backend_of("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(matches!(
            backend_of("mysql://h/db"),
            Err(StoreError::UnsupportedUrl)
        ));
    }

    #[test]
    fn sqlite_url_gets_create_mode_once() {
        let dir = tempfile::tempdir().ok();
        let base = dir.as_ref().map(|d| d.path().join("a/b.db"));
        let Some(base) = base else { return };
        let url = sqlite_url(&base);
        let prepared = prepare_sqlite_url(&url).ok();
        assert_eq!(prepared, Some(format!("{url}?mode=rwc")));
        assert!(base.parent().is_some_and(Path::exists));
        let explicit = format!("{url}?mode=ro");
        assert_eq!(prepare_sqlite_url(&explicit).ok(), Some(explicit.clone()));
    }
}
