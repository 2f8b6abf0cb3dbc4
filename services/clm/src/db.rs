//! clm's repository on SQLite or PostgreSQL through `qt-store`: candles, signals, closed trades,
//! the model registry, gate decisions and the scheduler's state. Decimals are TEXT.

use qt_candles::Candle;
use qt_events::{PositionClosed, SignalAction, SignalGenerated};
use qt_models::SignalMix;
use qt_store::{AnyRow, Store, StoreError, dec_text, row_dec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;

qt_store::service_migrations!("_clm_migrations");

/// A registry row.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelRow {
    pub version: String,
    pub kind: String,
    pub created_at: i64,
    pub artifact_uri: String,
    pub sha256: String,
    /// `challenger` (trained, not shipped), `rejected`, `champion`, `retired`.
    pub status: String,
    pub deployed_at: Option<i64>,
    /// Training range, samples, features, metrics, backtests, gate decision (JSON).
    pub metadata: serde_json::Value,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Db {
    pub store: Store,
}

fn model_row(r: &AnyRow) -> Result<ModelRow, StoreError> {
    let meta: String = r.try_get("metadata")?;
    Ok(ModelRow {
        version: r.try_get("version")?,
        kind: r.try_get("kind")?,
        created_at: r.try_get("created_at")?,
        artifact_uri: r.try_get("artifact_uri")?,
        sha256: r.try_get("sha256")?,
        status: r.try_get("status")?,
        deployed_at: r.try_get("deployed_at")?,
        metadata: serde_json::from_str(&meta).map_err(|_| StoreError::BadValue {
            column: "metadata".into(),
            value: meta.chars().take(64).collect(),
        })?,
    })
}

const MODEL_COLS: &str =
    "version, kind, created_at, artifact_uri, sha256, status, deployed_at, metadata";

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

    /// Stores closed candles (a candle already stored is left alone); returns how many were new.
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_candles(
        &self,
        symbol: &str,
        candles: &[Candle],
    ) -> Result<u64, StoreError> {
        let mut tx = self.store.pool().begin().await?;
        let mut added = 0;
        for chunk in candles.chunks(100) {
            let sql = format!(
                "INSERT INTO clm_candles (symbol, open_time, open, high, low, close, volume, \
                 quote_volume, trades) VALUES {} ON CONFLICT (symbol, open_time) DO NOTHING",
                qt_store::values(chunk.len(), 9)
            );
            // Only placeholders are formatted in; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                q = q
                    .bind(symbol)
                    .bind(c.open_time)
                    .bind(dec_text(c.open))
                    .bind(dec_text(c.high))
                    .bind(dec_text(c.low))
                    .bind(dec_text(c.close))
                    .bind(dec_text(c.volume))
                    .bind(dec_text(c.quote_volume))
                    .bind(i64::try_from(c.trades).unwrap_or(i64::MAX));
            }
            added += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The symbols with candles.
    ///
    /// # Errors
    /// A query error.
    pub async fn symbols(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT symbol FROM clm_candles ORDER BY symbol")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get("symbol").map_err(StoreError::from))
            .collect()
    }

    /// A symbol's candles opening in `[from_ms, to_ms)`, in time order.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn candles(
        &self,
        symbol: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Candle>, StoreError> {
        let rows = sqlx::query(
            "SELECT open_time, open, high, low, close, volume, quote_volume, trades \
             FROM clm_candles WHERE symbol = $1 AND open_time >= $2 AND open_time < $3 \
             ORDER BY open_time",
        )
        .bind(symbol)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let trades: i64 = r.try_get("trades")?;
                Ok(Candle {
                    open_time: r.try_get("open_time")?,
                    open: row_dec(r, "open")?,
                    high: row_dec(r, "high")?,
                    low: row_dec(r, "low")?,
                    close: row_dec(r, "close")?,
                    volume: row_dec(r, "volume")?,
                    quote_volume: row_dec(r, "quote_volume")?,
                    trades: u64::try_from(trades).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Open time of the newest candle of any symbol.
    ///
    /// # Errors
    /// A query error.
    pub async fn last_candle_time(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(open_time) AS t FROM clm_candles")
            .fetch_one(self.store.pool())
            .await?;
        Ok(row.try_get("t")?)
    }

    /// Deletes candles opening before `before_ms` (older than any window will read); returns
    /// how many.
    ///
    /// # Errors
    /// A query error.
    pub async fn prune_candles(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM clm_candles WHERE open_time < $1")
            .bind(before_ms)
            .execute(self.store.pool())
            .await?
            .rows_affected())
    }

    /// Candles opening after `after_ms` (all symbols).
    ///
    /// # Errors
    /// A query error.
    pub async fn count_candles_after(&self, after_ms: i64) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM clm_candles WHERE open_time > $1")
            .bind(after_ms)
            .fetch_one(self.store.pool())
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Stores a signal once (by event id).
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_signal(
        &self,
        event_id: &str,
        s: &SignalGenerated,
    ) -> Result<(), StoreError> {
        let features = serde_json::to_string(&s.features).unwrap_or_else(|_| "{}".into());
        sqlx::query(
            "INSERT INTO clm_signals (event_id, symbol, action, confidence, model, model_version, \
             candle_time, features) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(&s.symbol)
        .bind(action_text(s.action))
        .bind(s.confidence.to_string())
        .bind(&s.model)
        .bind(&s.model_version)
        .bind(s.candle_open_time)
        .bind(features)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The mix of the signals a version published with candles at or after `since_ms`.
    ///
    /// # Errors
    /// A query error.
    pub async fn signal_mix(&self, version: &str, since_ms: i64) -> Result<SignalMix, StoreError> {
        let rows = sqlx::query(
            "SELECT action, COUNT(*) AS n FROM clm_signals WHERE model_version = $1 \
             AND candle_time >= $2 GROUP BY action",
        )
        .bind(version)
        .bind(since_ms)
        .fetch_all(self.store.pool())
        .await?;
        let (mut b, mut s, mut h) = (0i64, 0i64, 0i64);
        for r in &rows {
            let a: String = r.try_get("action")?;
            let n: i64 = r.try_get("n")?;
            match a.as_str() {
                "BUY" => b += n,
                "SELL" => s += n,
                _ => h += n,
            }
        }
        let total = b + s + h;
        let share = |x: i64| {
            if total > 0 {
                x as f64 / total as f64
            } else {
                0.0
            }
        };
        Ok(SignalMix {
            buy: share(b),
            sell: share(s),
            hold: share(h),
            count: usize::try_from(total).unwrap_or(0),
        })
    }

    /// Stores a closed trade once (by position id).
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_trade(&self, p: &PositionClosed) -> Result<(), StoreError> {
        let signal = p
            .signal
            .as_ref()
            .and_then(|s| serde_json::to_string(s).ok());
        let version = p.signal.as_ref().map(|s| s.model_version.clone());
        sqlx::query(
            "INSERT INTO clm_trades (position_id, symbol, side, net_pnl, fees, opened_at, \
             closed_at, reason, model_version, signal) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) \
             ON CONFLICT (position_id) DO NOTHING",
        )
        .bind(&p.position_id)
        .bind(&p.symbol)
        .bind(format!("{:?}", p.side).to_uppercase())
        .bind(dec_text(p.net_pnl))
        .bind(dec_text(p.fees))
        .bind(p.opened_at)
        .bind(p.closed_at)
        .bind(&p.reason)
        .bind(version)
        .bind(signal)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Closed trades after `after_ms` (by close time).
    ///
    /// # Errors
    /// A query error.
    pub async fn count_trades_after(&self, after_ms: i64) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM clm_trades WHERE closed_at > $1")
            .bind(after_ms)
            .fetch_one(self.store.pool())
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many gate decisions were made (each judged one configuration: a trial).
    ///
    /// # Errors
    /// A query error.
    pub async fn count_decisions(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM clm_decisions")
            .fetch_one(self.store.pool())
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// (wins, trades) of the trades opened on a version's signals.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn live_results(&self, version: &str) -> Result<(u64, u64), StoreError> {
        let rows = sqlx::query("SELECT net_pnl FROM clm_trades WHERE model_version = $1")
            .bind(version)
            .fetch_all(self.store.pool())
            .await?;
        let mut wins = 0;
        for r in &rows {
            if row_dec(r, "net_pnl")? > rust_decimal::Decimal::ZERO {
                wins += 1;
            }
        }
        Ok((wins, rows.len() as u64))
    }

    /// A state value (JSON), when set.
    ///
    /// # Errors
    /// A query error or a value that does not parse.
    pub async fn get_state<T: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query("SELECT value FROM clm_state WHERE name = $1")
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("value")?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| StoreError::BadValue {
                column: format!("clm_state.{name}"),
                value: text.chars().take(64).collect(),
            })
    }

    /// Sets a state value (JSON).
    ///
    /// # Errors
    /// A query error.
    pub async fn put_state<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
        sqlx::query(
            "INSERT INTO clm_state (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(text)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Adds or replaces a registry row.
    ///
    /// # Errors
    /// A query error.
    pub async fn upsert_model(&self, m: &ModelRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clm_models (version, kind, created_at, artifact_uri, sha256, status, \
             deployed_at, metadata) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) \
             ON CONFLICT (version) DO UPDATE SET status = excluded.status, \
             deployed_at = excluded.deployed_at, metadata = excluded.metadata",
        )
        .bind(&m.version)
        .bind(&m.kind)
        .bind(m.created_at)
        .bind(&m.artifact_uri)
        .bind(&m.sha256)
        .bind(&m.status)
        .bind(m.deployed_at)
        .bind(m.metadata.to_string())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Every registry row, newest first.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn models(&self) -> Result<Vec<ModelRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MODEL_COLS} FROM clm_models ORDER BY created_at DESC, version DESC"
        )))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(model_row).collect()
    }

    /// One registry row.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn model(&self, version: &str) -> Result<Option<ModelRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MODEL_COLS} FROM clm_models WHERE version = $1"
        )))
        .bind(version)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(model_row).transpose()
    }

    /// Makes `version` the only champion (the previous one becomes `retired`).
    ///
    /// # Errors
    /// A query error.
    pub async fn set_champion(&self, version: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.store.pool().begin().await?;
        sqlx::query(
            "UPDATE clm_models SET status = 'retired' WHERE status = 'champion' AND version <> $1",
        )
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE clm_models SET status = 'champion', deployed_at = $2 WHERE version = $1",
        )
        .bind(version)
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a registry row.
    ///
    /// # Errors
    /// A query error.
    pub async fn delete_model(&self, version: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM clm_models WHERE version = $1")
            .bind(version)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Records a gate decision (once per run).
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_decision(
        &self,
        run_id: &str,
        at_ms: i64,
        challenger: &str,
        champion: Option<&str>,
        promoted: bool,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clm_decisions (run_id, decided_at, challenger, champion, promoted, report) \
             VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(run_id)
        .bind(at_ms)
        .bind(challenger)
        .bind(champion)
        .bind(i64::from(promoted))
        .bind(report.to_string())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Every decision, newest first: (run id, time, challenger, champion, promoted, report).
    ///
    /// # Errors
    /// A query error.
    pub async fn decisions(&self) -> Result<Vec<DecisionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, decided_at, challenger, champion, promoted, report FROM clm_decisions \
             ORDER BY decided_at DESC",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let report: String = r.try_get("report")?;
                let promoted: i64 = r.try_get("promoted")?;
                Ok(DecisionRow {
                    run_id: r.try_get("run_id")?,
                    decided_at: r.try_get("decided_at")?,
                    challenger: r.try_get("challenger")?,
                    champion: r.try_get("champion")?,
                    promoted: promoted != 0,
                    report: serde_json::from_str(&report).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }
}

/// A stored gate decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRow {
    pub run_id: String,
    pub decided_at: i64,
    pub challenger: String,
    pub champion: Option<String>,
    pub promoted: bool,
    pub report: serde_json::Value,
}

fn action_text(a: SignalAction) -> &'static str {
    match a {
        SignalAction::Buy => "BUY",
        SignalAction::Sell => "SELL",
        SignalAction::Hold => "HOLD",
    }
}
