//! execution's repository: orders ([`orders`]), fills, positions and closed trades
//! ([`positions`]), the risk state, processed events and the outbox, on SQLite or PostgreSQL
//! through `qt-store` (decimals as TEXT). The records' types are mapped to columns here and
//! nowhere else.

mod orders;
mod positions;

pub use positions::PositionRow;

use qt_events::{
    Envelope, Event, OrderKind, PositionSide, RejectReason, Side, SignalRef, clock::Clock,
};
use qt_risk::RiskBook;
use qt_store::{AnyRow, Store, StoreError, dec_text, row_dec, row_opt_dec};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use sqlx::{Any, Row, Transaction};

qt_store::service_migrations!("_execution_migrations");

/// A stored enum's text (`BUY`, `LONG`, `MARKET`, …): its serde name.
pub fn enum_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn enum_parse<T: DeserializeOwned>(column: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        StoreError::BadValue {
            column: column.to_owned(),
            value: s.to_owned(),
        }
    })
}

fn json_opt<T: Serialize>(v: Option<&T>) -> Option<String> {
    v.and_then(|v| serde_json::to_string(v).ok())
}

fn json_parse<T: DeserializeOwned>(
    column: &str,
    s: Option<String>,
) -> Result<Option<T>, StoreError> {
    s.map(|s| {
        serde_json::from_str(&s).map_err(|_| StoreError::BadValue {
            column: column.to_owned(),
            value: s.chars().take(80).collect(),
        })
    })
    .transpose()
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[derive(Debug, Clone)]
pub struct Db {
    pub store: Store,
}

/// A transaction on the store.
pub type Tx = Transaction<'static, Any>;

impl Db {
    /// Opens (and migrates) the database at `url`.
    ///
    /// # Errors
    /// See [`Store::connect`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::connect(url, migrations()).await?,
        })
    }

    /// Starts a transaction.
    ///
    /// # Errors
    /// A query error.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.store.pool().begin().await?)
    }

    /// Notes `boot_id` (the host's, [`host::UNKNOWN`](crate::host::UNKNOWN) when unreadable)
    /// as this start's, with a commit that waits for the disk (`Store::execute_on_disk`);
    /// returns the one noted by the start before, if any.
    ///
    /// # Errors
    /// A query error.
    pub async fn note_boot(&self, boot_id: &str, now: i64) -> Result<Option<String>, StoreError> {
        let before: Option<String> =
            sqlx::query_scalar("SELECT boot_id FROM exec_host WHERE id = 1")
                .fetch_optional(self.store.pool())
                .await?;
        self.store
            .execute_on_disk(
                sqlx::query(
                    "INSERT INTO exec_host (id, boot_id, started_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET boot_id = excluded.boot_id, \
                     started_at = excluded.started_at",
                )
                .bind(boot_id)
                .bind(now),
            )
            .await?;
        Ok(before)
    }

    /// The saved risk book.
    ///
    /// # Errors
    /// A query error or an unreadable book.
    pub async fn risk_book(&self) -> Result<Option<RiskBook>, StoreError> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT book FROM exec_risk_state WHERE id = 1")
                .fetch_optional(self.store.pool())
                .await?;
        json_parse("book", text)
    }

    /// Saves the risk book.
    ///
    /// # Errors
    /// A query error.
    pub async fn save_book(tx: &mut Tx, book: &RiskBook, now: i64) -> Result<(), StoreError> {
        let text = serde_json::to_string(book).map_err(|e| StoreError::BadValue {
            column: "book".into(),
            value: e.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO exec_risk_state (id, book, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET book = excluded.book, updated_at = excluded.updated_at",
        )
        .bind(text)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records an event id as handled; false if it already was.
    ///
    /// # Errors
    /// A query error.
    pub async fn mark_processed(tx: &mut Tx, event_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO exec_processed_events (event_id, processed_at) VALUES ($1, $2) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Queues events to publish, in the same transaction as the facts they report.
    ///
    /// # Errors
    /// A query error.
    pub async fn enqueue(
        tx: &mut Tx,
        envs: &[Envelope],
        clock: &dyn Clock,
    ) -> Result<(), StoreError> {
        if envs.is_empty() {
            return Ok(());
        }
        let base = clock.now_ms().saturating_mul(1000);
        // One statement for them all: each statement is a round trip to the database.
        let sql = format!(
            "INSERT INTO exec_outbox (event_id, seq, type_name, v, ts, corr, data, traceparent) \
             VALUES {} ON CONFLICT (event_id) DO NOTHING",
            qt_store::values(envs.len(), 8)
        );
        // Only placeholders are formatted in; the values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, e) in envs.iter().enumerate() {
            q = q
                .bind(e.id.clone())
                .bind(base.saturating_add(i64::try_from(i).unwrap_or(0)))
                .bind(e.type_name())
                .bind(i64::from(e.v))
                .bind(e.ts)
                .bind(e.corr.clone())
                .bind(e.event.encode_data())
                .bind(e.traceparent.clone());
        }
        q.execute(&mut **tx).await?;
        Ok(())
    }

    /// Events waiting in the outbox, oldest first.
    ///
    /// # Errors
    /// A query error or an undecodable event.
    pub async fn outbox(&self, src: &str, limit: i64) -> Result<Vec<Envelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, type_name, v, ts, corr, data, traceparent FROM exec_outbox \
             ORDER BY seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let type_name: String = r.try_get("type_name")?;
            let v: i64 = r.try_get("v")?;
            let data: Vec<u8> = r.try_get("data")?;
            let event = Event::decode(&type_name, u16::try_from(v).unwrap_or(u16::MAX), &data)
                .map_err(|e| StoreError::BadValue {
                    column: "data".into(),
                    value: e.to_string(),
                })?;
            let id: String = r.try_get("event_id")?;
            out.push(Envelope {
                id,
                v: event.version(),
                ts: r.try_get("ts")?,
                src: src.to_owned(),
                corr: r.try_get("corr")?,
                traceparent: r.try_get("traceparent")?,
                sym: event.symbol().map(str::to_owned),
                event,
            });
        }
        Ok(out)
    }

    /// Removes published events from the outbox.
    ///
    /// # Errors
    /// A query error.
    pub async fn dequeue(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // One statement (one commit, one sync to disk) for them all.
        let sql = format!(
            "DELETE FROM exec_outbox WHERE event_id IN ({})",
            qt_store::placeholders(1, ids.len())
        );
        // Only placeholders are formatted in; the ids are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id.clone());
        }
        q.execute(self.store.pool()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn processed_event_ids_are_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&qt_store::sqlite_url(&dir.path().join("e.db")))
            .await
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        assert!(Db::mark_processed(&mut tx, "a", 1).await.unwrap());
        assert!(!Db::mark_processed(&mut tx, "a", 2).await.unwrap());
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        assert!(!Db::mark_processed(&mut tx, "a", 3).await.unwrap());
        assert!(Db::mark_processed(&mut tx, "b", 3).await.unwrap());
    }

    #[tokio::test]
    async fn execution_shares_a_database_with_another_service_migrations() {
        static OTHER_SQLITE: sqlx::migrate::Migrator =
            sqlx::migrate!("../../crates/store/tests/migrations/sqlite");
        static OTHER_PG: sqlx::migrate::Migrator =
            sqlx::migrate!("../../crates/store/tests/migrations/postgres");
        let dir = tempfile::tempdir().unwrap();
        let url = qt_store::sqlite_url(&dir.path().join("shared.db"));
        // Another service (sqlx's default migrations table, version 1 as well) first.
        let other = Store::connect(
            &url,
            qt_store::Migrations {
                sqlite: &OTHER_SQLITE,
                postgres: &OTHER_PG,
            },
        )
        .await
        .unwrap();
        let db = Db::open(&url).await.unwrap();
        assert!(db.all_orders().await.unwrap().is_empty());
        // And both reopen cleanly.
        drop(db);
        Db::open(&url).await.unwrap();
        other.close().await;
    }
}
