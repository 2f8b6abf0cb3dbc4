//! [`SqlStore`]: the [`PlanStore`] in the service's database through `qt-store` (a SQLite file by
//! default, PostgreSQL when `QT_DATABASE_URL` says so). Plans and outcomes are JSON documents
//! (their `Decimal`s as strings), profiles are columns of decimal text, and the outputs of a
//! handled event are its envelopes' stream fields (the payload as hex MessagePack) — the exact
//! bytes are published again on a redelivery.

use qt_events::{Envelope, PositionSide};
use qt_exits::SymbolProfile;
use qt_store::{Store, dec_text, row_dec};

use sqlx::Row;

use crate::store::{Commit, Handled, OutcomeRecord, PlanStore, Snapshot, StoreError, Tracked};

qt_store::service_migrations!("_exit_brain_migrations");

/// Handled-event records older than this are pruned at start (an entry cannot stay pending for
/// longer: the bus dead-letters it after a few deliveries).
pub const PROCESSED_TTL_MS: i64 = 7 * 86_400_000;

/// The database-backed [`PlanStore`].
#[derive(Debug, Clone)]
pub struct SqlStore {
    store: Store,
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

fn from_store(e: qt_store::StoreError) -> StoreError {
    if e.is_retryable() {
        StoreError::Database(e.to_string())
    } else {
        StoreError::Corrupt(e.to_string())
    }
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(s: &str) -> Result<Vec<u8>, StoreError> {
    if !s.len().is_multiple_of(2) {
        return Err(corrupt("odd hex length"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| corrupt("bad hex"))
        })
        .collect()
}

/// Envelopes as JSON: a list of field lists `[[name, hex bytes], …]`.
fn encode_outputs(envs: &[Envelope]) -> Result<String, StoreError> {
    let fields: Vec<Vec<(&str, String)>> = envs
        .iter()
        .map(|e| {
            e.to_fields()
                .into_iter()
                .map(|(k, v)| (k, hex(&v)))
                .collect()
        })
        .collect();
    serde_json::to_string(&fields).map_err(corrupt)
}

fn decode_outputs(text: &str) -> Result<Vec<Envelope>, StoreError> {
    let fields: Vec<Vec<(String, String)>> = serde_json::from_str(text).map_err(corrupt)?;
    fields
        .into_iter()
        .map(|f| {
            let bytes: Vec<(String, Vec<u8>)> = f
                .into_iter()
                .map(|(k, v)| unhex(&v).map(|b| (k, b)))
                .collect::<Result<_, _>>()?;
            Envelope::from_fields(bytes.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
                .map_err(corrupt)
        })
        .collect()
}

fn side_text(s: PositionSide) -> &'static str {
    match s {
        PositionSide::Long => "LONG",
        PositionSide::Short => "SHORT",
    }
}

impl SqlStore {
    /// Opens (and migrates) the database at `url`, and prunes old handled-event records.
    pub async fn connect(url: &str, now_ms: i64) -> Result<Self, StoreError> {
        let store = Store::connect(url, migrations())
            .await
            .map_err(from_store)?;
        sqlx::query("DELETE FROM exit_processed WHERE handled_at < $1")
            .bind(now_ms.saturating_sub(PROCESSED_TTL_MS))
            .execute(store.pool())
            .await
            .map_err(db)?;
        Ok(Self { store })
    }

    pub async fn close(&self) {
        self.store.close().await;
    }
}

impl PlanStore for SqlStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let pool = self.store.pool();
        let mut snap = Snapshot::default();
        for row in sqlx::query("SELECT body FROM exit_plans ORDER BY position_id")
            .fetch_all(pool)
            .await
            .map_err(db)?
        {
            let body: String = row.try_get("body").map_err(db)?;
            snap.plans
                .push(serde_json::from_str::<Tracked>(&body).map_err(corrupt)?);
        }
        for row in sqlx::query("SELECT symbol, tp_mult, stop_mult, trades FROM exit_profiles")
            .fetch_all(pool)
            .await
            .map_err(db)?
        {
            let symbol: String = row.try_get("symbol").map_err(db)?;
            let trades: i64 = row.try_get("trades").map_err(db)?;
            let p = SymbolProfile {
                tp_mult: row_dec(&row, "tp_mult").map_err(from_store)?,
                stop_mult: row_dec(&row, "stop_mult").map_err(from_store)?,
                trades: u64::try_from(trades).unwrap_or(0),
            };
            snap.profiles.insert(symbol, p);
        }
        Ok(snap)
    }

    async fn outputs_of(&self, event_id: &str) -> Result<Option<Handled>, StoreError> {
        let row = sqlx::query("SELECT source, outputs FROM exit_processed WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(db)?;
        match row {
            None => Ok(None),
            Some(r) => {
                let text: String = r.try_get("outputs").map_err(db)?;
                let source: String = r.try_get("source").map_err(db)?;
                Ok(Some(Handled {
                    source,
                    outputs: decode_outputs(&text)?,
                }))
            }
        }
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(db)?;
        for t in &c.upsert {
            let body = serde_json::to_string(t).map_err(corrupt)?;
            sqlx::query(
                "INSERT INTO exit_plans (position_id, symbol, body, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (position_id) DO UPDATE SET symbol = excluded.symbol, body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(&t.position_id)
            .bind(&t.symbol)
            .bind(body)
            .bind(c.ts)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for id in &c.delete {
            sqlx::query("DELETE FROM exit_plans WHERE position_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        for (symbol, p) in &c.profiles {
            sqlx::query(
                "INSERT INTO exit_profiles (symbol, tp_mult, stop_mult, trades, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (symbol) DO UPDATE SET tp_mult = excluded.tp_mult, stop_mult = excluded.stop_mult, trades = excluded.trades, updated_at = excluded.updated_at",
            )
            .bind(symbol)
            .bind(dec_text(p.tp_mult))
            .bind(dec_text(p.stop_mult))
            .bind(i64::try_from(p.trades).unwrap_or(i64::MAX))
            .bind(c.ts)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for o in &c.outcomes {
            let body = serde_json::to_string(o).map_err(corrupt)?;
            sqlx::query(
                "INSERT INTO exit_outcomes (position_id, symbol, side, entry_price, exit_price, net_pnl, reason, closed_at, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (position_id) DO NOTHING",
            )
            .bind(&o.position_id)
            .bind(&o.symbol)
            .bind(side_text(o.side))
            .bind(dec_text(o.entry_price))
            .bind(dec_text(o.exit_price))
            .bind(dec_text(o.net_pnl))
            .bind(&o.reason)
            .bind(o.closed_at)
            .bind(body)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        if let Some(id) = &c.event_id {
            sqlx::query(
                "INSERT INTO exit_processed (event_id, source, outputs, handled_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(id)
            .bind(&c.source)
            .bind(encode_outputs(&c.outputs)?)
            .bind(c.ts)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn outcomes(&self, symbol: &str) -> Result<Vec<OutcomeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM exit_outcomes WHERE symbol = $1 ORDER BY closed_at, position_id",
        )
        .bind(symbol)
        .fetch_all(self.store.pool())
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body").map_err(db)?;
                serde_json::from_str(&body).map_err(corrupt)
            })
            .collect()
    }
}
