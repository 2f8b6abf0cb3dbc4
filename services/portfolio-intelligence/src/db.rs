//! portfolio-intelligence's repository: snapshots, closed trades, funding fees, the open
//! positions it believes and small state (the model), on SQLite or PostgreSQL through `qt-store` (decimals as TEXT,
//! structured rows as JSON text).

use qt_events::PortfolioSnapshot;
use qt_events::api::KillSwitchView;
use qt_store::{Store, StoreError, dec_text};
use sqlx::Row;

use crate::book::{FundingCharge, ModelInfo, OpenPosition};
use crate::metrics::ClosedTrade;

qt_store::service_migrations!("_portfolio_migrations");

/// The repository.
#[derive(Debug, Clone)]
pub struct Db {
    store: Store,
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::BadValue {
        column: "json".into(),
        value: e.to_string(),
    }
}

impl Db {
    /// Opens the database at `url` and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::connect(url, migrations()).await?,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores a snapshot with its full report (JSON); a second one at the same ms replaces it.
    pub async fn save_snapshot(
        &self,
        s: &PortfolioSnapshot,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pi_snapshots WHERE ts = $1")
            .bind(s.ts)
            .execute(self.store.pool())
            .await?;
        sqlx::query(
            "INSERT INTO pi_snapshots (ts, equity, wallet_balance, unrealized_pnl, \
             realized_pnl_today, gross_exposure, net_exposure, open_positions, report) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.ts)
        .bind(dec_text(s.equity))
        .bind(dec_text(s.wallet_balance))
        .bind(dec_text(s.unrealized_pnl))
        .bind(dec_text(s.realized_pnl_today))
        .bind(dec_text(s.gross_exposure))
        .bind(dec_text(s.net_exposure))
        .bind(i64::from(s.open_positions))
        .bind(report.to_string())
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Deletes the snapshots taken before `ts`; returns how many.
    pub async fn prune_snapshots(&self, before_ts: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM pi_snapshots WHERE ts < $1")
            .bind(before_ts)
            .execute(self.store.pool())
            .await?;
        Ok(r.rows_affected())
    }

    /// The equity of the last `limit` snapshots, oldest first.
    pub async fn equity_curve(
        &self,
        limit: usize,
    ) -> Result<Vec<(i64, rust_decimal::Decimal)>, StoreError> {
        let rows = sqlx::query("SELECT ts, equity FROM pi_snapshots ORDER BY ts DESC LIMIT $1")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.store.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter().rev() {
            out.push((r.try_get::<i64, _>("ts")?, qt_store::row_dec(r, "equity")?));
        }
        Ok(out)
    }

    pub async fn snapshot_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM pi_snapshots")
            .fetch_one(self.store.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Records a closed trade once per position id.
    pub async fn save_trade(&self, t: &ClosedTrade) -> Result<(), StoreError> {
        let text = serde_json::to_string(t).map_err(json_err)?;
        sqlx::query(
            "INSERT INTO pi_trades (position_id, symbol, model_version, net_pnl, closed_at, trade) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (position_id) DO NOTHING",
        )
        .bind(&t.position_id)
        .bind(&t.symbol)
        .bind(&t.model_version)
        .bind(dec_text(t.net_pnl))
        .bind(t.closed_at)
        .bind(text)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The last `limit` closed trades, oldest first.
    pub async fn trades(&self, limit: usize) -> Result<Vec<ClosedTrade>, StoreError> {
        let rows = sqlx::query(
            "SELECT trade FROM pi_trades ORDER BY closed_at DESC, position_id DESC LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter().rev() {
            let text: String = r.try_get("trade")?;
            out.push(serde_json::from_str(&text).map_err(json_err)?);
        }
        Ok(out)
    }

    /// Records a funding fee once per exchange transaction; false when it was recorded before.
    pub async fn save_funding(&self, c: &FundingCharge) -> Result<bool, StoreError> {
        let text = serde_json::to_string(c).map_err(json_err)?;
        let r = sqlx::query(
            "INSERT INTO pi_funding (charge_key, symbol, amount, time, charge) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (charge_key) DO NOTHING",
        )
        .bind(&c.key)
        .bind(&c.symbol)
        .bind(dec_text(c.amount))
        .bind(c.time)
        .bind(text)
        .execute(self.store.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The last `limit` funding fees, oldest first.
    pub async fn funding(&self, limit: usize) -> Result<Vec<FundingCharge>, StoreError> {
        let rows = sqlx::query(
            "SELECT charge FROM pi_funding ORDER BY time DESC, charge_key DESC LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter().rev() {
            let text: String = r.try_get("charge")?;
            out.push(serde_json::from_str(&text).map_err(json_err)?);
        }
        Ok(out)
    }

    /// Replaces the open position of a symbol (`None` removes it).
    pub async fn save_position(
        &self,
        symbol: &str,
        p: Option<&OpenPosition>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pi_positions WHERE symbol = $1")
            .bind(symbol)
            .execute(self.store.pool())
            .await?;
        if let Some(p) = p {
            sqlx::query("INSERT INTO pi_positions (symbol, position) VALUES ($1, $2)")
                .bind(symbol)
                .bind(serde_json::to_string(p).map_err(json_err)?)
                .execute(self.store.pool())
                .await?;
        }
        Ok(())
    }

    pub async fn positions(&self) -> Result<Vec<OpenPosition>, StoreError> {
        let rows = sqlx::query("SELECT position FROM pi_positions ORDER BY symbol")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("position")?;
                serde_json::from_str(&text).map_err(json_err)
            })
            .collect()
    }

    pub async fn save_model(&self, m: &ModelInfo) -> Result<(), StoreError> {
        self.put_state("model", &serde_json::to_string(m).map_err(json_err)?)
            .await
    }

    pub async fn model(&self) -> Result<Option<ModelInfo>, StoreError> {
        match self.get_state("model").await? {
            Some(t) => Ok(Some(serde_json::from_str(&t).map_err(json_err)?)),
            None => Ok(None),
        }
    }

    /// The kill switch as last seen on `qt:control` (kept because the stream is trimmed after
    /// 7 days).
    pub async fn save_kill_switch(&self, k: &KillSwitchView) -> Result<(), StoreError> {
        self.put_state("kill_switch", &serde_json::to_string(k).map_err(json_err)?)
            .await
    }

    pub async fn kill_switch(&self) -> Result<Option<KillSwitchView>, StoreError> {
        match self.get_state("kill_switch").await? {
            Some(t) => Ok(Some(serde_json::from_str(&t).map_err(json_err)?)),
            None => Ok(None),
        }
    }

    async fn put_state(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pi_state WHERE name = $1")
            .bind(name)
            .execute(self.store.pool())
            .await?;
        sqlx::query("INSERT INTO pi_state (name, value) VALUES ($1, $2)")
            .bind(name)
            .bind(value)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    async fn get_state(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM pi_state WHERE name = $1")
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?)
    }
}
