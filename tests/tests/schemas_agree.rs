//! Each service keeps its schema twice, `migrations/sqlite` and `migrations/postgres`, because
//! the two databases spell a few types differently (`BLOB`/`BYTEA`). This test is the one
//! definition they are held to: every service's two folders hold the same migrations, and
//! applied to a real SQLite file and a real PostgreSQL server they give the same tables, columns,
//! column types (mapped to one vocabulary), nullability, primary keys and indexes. A migration
//! added to one folder only, or a column typed differently, fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use qt_e2e::repo_root;
use qt_store::sqlx::{self, AnyPool, Row};

/// What a schema is made of, comparable across the two databases.
#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    /// (table, column, type, nullable)
    columns: BTreeSet<(String, String, String, bool)>,
    /// (table, column) of the primary keys.
    primary_keys: BTreeSet<(String, String)>,
    /// (table, index) of the indexes created by name.
    indexes: BTreeSet<(String, String)>,
}

/// One vocabulary for the declared SQLite types and PostgreSQL's `data_type`.
fn canonical_type(db: &str, declared: &str) -> String {
    let t = declared.trim().to_ascii_uppercase();
    let canon = match t.as_str() {
        "BIGINT" | "INT8" => "int64",
        "INTEGER" | "INT" | "INT4" => "int32",
        "TEXT" => "text",
        "BLOB" | "BYTEA" => "bytes",
        "DOUBLE PRECISION" | "FLOAT8" => "float64",
        "BOOLEAN" | "BOOL" => "bool",
        _ => panic!(
            "{db}: column type {declared:?} has no mapping here: add it to canonical_type \
             (and make sure both databases store the same values)"
        ),
    };
    canon.to_owned()
}

/// The services whose crate has both migration folders.
fn services() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(repo_root().join("services"))
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path().join("migrations");
            (dir.join("sqlite").is_dir() || dir.join("postgres").is_dir()).then(|| {
                let name = dir
                    .parent()
                    .and_then(Path::file_name)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (name, dir)
            })
        })
        .collect();
    out.sort();
    out
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn migrate(url: &str, dir: &Path) -> AnyPool {
    let pool = AnyPool::connect(url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    migrator
        .run(&pool)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    pool
}

async fn sqlite_schema(pool: &AnyPool) -> Schema {
    let mut s = Schema::default();
    let rows = sqlx::query(
        "SELECT m.name AS tbl, p.name AS col, p.type AS ty, p.\"notnull\" AS nn, p.pk AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND substr(m.name, 1, 1) <> '_' \
         AND substr(m.name, 1, 7) <> 'sqlite_'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in rows {
        let (tbl, col, ty): (String, String, String) = (r.get("tbl"), r.get("col"), r.get("ty"));
        let (nn, pk): (i64, i64) = (r.get("nn"), r.get("pk"));
        // A primary key column is NOT NULL on PostgreSQL whether or not it says so.
        s.columns.insert((
            tbl.clone(),
            col.clone(),
            canonical_type("sqlite", &ty),
            nn == 0 && pk == 0,
        ));
        if pk > 0 {
            s.primary_keys.insert((tbl, col));
        }
    }
    let rows = sqlx::query(
        "SELECT tbl_name AS tbl, name FROM sqlite_master \
         WHERE type = 'index' AND sql IS NOT NULL AND substr(tbl_name, 1, 1) <> '_'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in rows {
        s.indexes.insert((r.get("tbl"), r.get("name")));
    }
    s
}

async fn postgres_schema(pool: &AnyPool) -> Schema {
    let mut s = Schema::default();
    let rows = sqlx::query(
        "SELECT table_name::text AS tbl, column_name::text AS col, data_type::text AS ty, \
         is_nullable::text AS nullable FROM information_schema.columns \
         WHERE table_schema = 'public' AND substr(table_name, 1, 1) <> '_'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in rows {
        let ty: String = r.get("ty");
        let nullable: String = r.get("nullable");
        s.columns.insert((
            r.get("tbl"),
            r.get("col"),
            canonical_type("postgres", &ty),
            nullable == "YES",
        ));
    }
    let rows = sqlx::query(
        "SELECT k.table_name::text AS tbl, k.column_name::text AS col \
         FROM information_schema.table_constraints c \
         JOIN information_schema.key_column_usage k \
           ON c.constraint_name = k.constraint_name AND c.table_schema = k.table_schema \
          AND c.table_name = k.table_name \
         WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = 'public' \
           AND substr(c.table_name, 1, 1) <> '_'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in rows {
        s.primary_keys.insert((r.get("tbl"), r.get("col")));
    }
    let rows = sqlx::query(
        "SELECT tablename::text AS tbl, indexname::text AS name FROM pg_indexes \
         WHERE schemaname = 'public' AND substr(tablename, 1, 1) <> '_' \
           AND indexname NOT IN (SELECT conname::text FROM pg_constraint)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in rows {
        s.indexes.insert((r.get("tbl"), r.get("name")));
    }
    s
}

#[test]
fn every_service_keeps_the_same_migrations_for_sqlite_and_postgres() {
    let services = services();
    assert!(services.len() >= 4, "{services:?}");
    for (name, dir) in &services {
        assert_eq!(
            file_names(&dir.join("sqlite")),
            file_names(&dir.join("postgres")),
            "{name}: the two migration folders hold different migrations"
        );
    }
}

#[test]
fn sqlite_and_postgres_migrations_give_the_same_schema() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let admin = AnyPool::connect(&pg.url()).await.unwrap();
        for (name, dir) in services() {
            let db = format!("schema_{}", name.replace('-', "_"));
            // The name is built here from a folder name of the repository.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&admin)
                .await
                .unwrap();
            let pg_url = format!("{}/{db}", pg.url().rsplit_once('/').unwrap().0);
            let pg_pool = migrate(&pg_url, &dir.join("postgres")).await;
            let file = tmp.path().join(format!("{name}.db"));
            let sqlite_url = format!("sqlite://{}?mode=rwc", file.display());
            let sqlite_pool = migrate(&sqlite_url, &dir.join("sqlite")).await;
            let (lite, post) = (
                sqlite_schema(&sqlite_pool).await,
                postgres_schema(&pg_pool).await,
            );
            assert!(!lite.columns.is_empty(), "{name}: no table");
            assert_eq!(
                lite.columns
                    .symmetric_difference(&post.columns)
                    .collect::<Vec<_>>(),
                Vec::<&(String, String, String, bool)>::new(),
                "{name}: columns differ (table, column, type, nullable)"
            );
            assert_eq!(lite.primary_keys, post.primary_keys, "{name}: primary keys");
            assert_eq!(lite.indexes, post.indexes, "{name}: indexes");
            sqlite_pool.close().await;
            pg_pool.close().await;
        }
    });
}
