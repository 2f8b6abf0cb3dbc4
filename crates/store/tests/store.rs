//! qt-store against real databases: a SQLite file, and PostgreSQL when installed.

#![allow(clippy::unwrap_used)] // tests: a failure is the finding

use qt_store::{Backend, Migrations, Store, dec_text, row_dec, row_opt_dec};
use rust_decimal_macros::dec;

static MIGRATIONS: Migrations = Migrations {
    sqlite: &sqlx::migrate!("tests/migrations/sqlite"),
    postgres: &sqlx::migrate!("tests/migrations/postgres"),
};

async fn round_trip(store: &Store) {
    let pool = store.pool();
    sqlx::query("INSERT INTO notes (id, amount, label) VALUES ($1, $2, $3)")
        .bind(1_i64)
        .bind(dec_text(dec!(12.3400)))
        .bind(None::<String>)
        .execute(pool)
        .await
        .unwrap();
    let row = sqlx::query("SELECT id, amount, label FROM notes WHERE id = $1")
        .bind(1_i64)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(row_dec(&row, "amount").unwrap(), dec!(12.34));
    assert_eq!(row_opt_dec(&row, "label").unwrap(), None);
    let id: i64 = sqlx::Row::get(&row, "id");
    assert_eq!(id, 1);
}

#[tokio::test]
async fn sqlite_file_is_created_migrated_and_reopened_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = qt_store::sqlite_url(&dir.path().join("nested/exec.db"));
    let store = Store::connect(&url, MIGRATIONS).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    round_trip(&store).await;
    store.close().await;

    // Reopening runs the migrations again (already applied) and keeps the data.
    let store = Store::connect(&url, MIGRATIONS).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn sqlite_commits_skip_the_fsync_except_a_write_run_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let url = qt_store::sqlite_url(&dir.path().join("sync.db"));
    let store = Store::connect(&url, MIGRATIONS).await.unwrap();
    let synchronous = || async {
        sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    assert_eq!(synchronous().await, 1, "NORMAL");
    let write = sqlx::query("INSERT INTO notes (id, amount, label) VALUES ($1, $2, $3)")
        .bind(7_i64)
        .bind(dec_text(dec!(1)))
        .bind(None::<String>);
    assert_eq!(
        store.execute_on_disk(write).await.unwrap().rows_affected(),
        1
    );
    assert_eq!(synchronous().await, 1, "back to NORMAL");
    // A failing write sets it back too.
    let dup = sqlx::query("INSERT INTO notes (id, amount, label) VALUES ($1, $2, $3)")
        .bind(7_i64)
        .bind(dec_text(dec!(1)))
        .bind(None::<String>);
    assert!(store.execute_on_disk(dup).await.is_err());
    assert_eq!(synchronous().await, 1, "back to NORMAL after an error");
}

#[tokio::test]
async fn unsupported_url_is_refused_before_connecting() {
    let err = Store::connect("mysql://localhost/x", MIGRATIONS)
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn postgres_url_runs_the_postgres_migrations() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let store = Store::connect(&pg.url(), MIGRATIONS).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    round_trip(&store).await;
    store.close().await;
}
