//! The `exec_fills`, `exec_positions` and `exec_closed_trades` tables.

use super::*;

/// An open or closed position as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub position_id: String,
    pub symbol: String,
    pub side: PositionSide,
    pub open: bool,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    pub max_quantity: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub exit_qty: Decimal,
    pub exit_notional: Decimal,
    pub leverage: u32,
    pub intent_id: String,
    pub signal: Option<SignalRef>,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
}

fn position_from_row(r: &AnyRow) -> Result<PositionRow, StoreError> {
    let state: String = r.try_get("state")?;
    let leverage: i64 = r.try_get("leverage")?;
    Ok(PositionRow {
        position_id: r.try_get("position_id")?,
        symbol: r.try_get("symbol")?,
        side: enum_parse("side", &r.try_get::<String, _>("side")?)?,
        open: state == "OPEN",
        quantity: row_dec(r, "quantity")?,
        entry_price: row_dec(r, "entry_price")?,
        max_quantity: row_dec(r, "max_quantity")?,
        realized_pnl: row_dec(r, "realized_pnl")?,
        fees: row_dec(r, "fees")?,
        exit_qty: row_dec(r, "exit_qty")?,
        exit_notional: row_dec(r, "exit_notional")?,
        leverage: u32::try_from(leverage).unwrap_or(0),
        intent_id: r.try_get("intent_id")?,
        signal: json_parse("signal", r.try_get("signal")?)?,
        opened_at: r.try_get("opened_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

impl Db {
    /// Inserts a fill; false when this trade was already recorded.
    ///
    /// # Errors
    /// A query error.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_fill(
        tx: &mut Tx,
        symbol: &str,
        trade_id: i64,
        client_order_id: &str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        fee_asset: &str,
        realized_pnl: Decimal,
        trade_time: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO exec_fills (symbol, trade_id, client_order_id, side, qty, price, fee, \
             fee_asset, realized_pnl, trade_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (symbol, trade_id) DO NOTHING",
        )
        .bind(symbol)
        .bind(trade_id)
        .bind(client_order_id)
        .bind(enum_text(&side))
        .bind(dec_text(qty))
        .bind(dec_text(price))
        .bind(dec_text(fee))
        .bind(fee_asset)
        .bind(dec_text(realized_pnl))
        .bind(trade_time)
        .execute(&mut **tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Number of fills recorded (tests and tools).
    ///
    /// # Errors
    /// A query error.
    pub async fn fill_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM exec_fills")
            .fetch_one(self.store.pool())
            .await?)
    }

    /// The open position of a symbol.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn open_position(
        tx: &mut Tx,
        symbol: &str,
    ) -> Result<Option<PositionRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM exec_positions WHERE symbol = $1 AND state = 'OPEN'")
            .bind(symbol)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(position_from_row).transpose()
    }

    /// Every open position.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn open_positions(&self) -> Result<Vec<PositionRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM exec_positions WHERE state = 'OPEN' ORDER BY symbol")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(position_from_row).collect()
    }

    /// Every position (tests and tools).
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn all_positions(&self) -> Result<Vec<PositionRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM exec_positions ORDER BY opened_at, position_id")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(position_from_row).collect()
    }

    /// Inserts or replaces a position.
    ///
    /// # Errors
    /// A query error.
    pub async fn upsert_position(tx: &mut Tx, p: &PositionRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM exec_positions WHERE position_id = $1")
            .bind(&p.position_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO exec_positions (position_id, symbol, side, state, quantity, entry_price, \
             max_quantity, realized_pnl, fees, exit_qty, exit_notional, leverage, intent_id, \
             signal, opened_at, closed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16)",
        )
        .bind(&p.position_id)
        .bind(&p.symbol)
        .bind(enum_text(&p.side))
        .bind(if p.open { "OPEN" } else { "CLOSED" })
        .bind(dec_text(p.quantity))
        .bind(dec_text(p.entry_price))
        .bind(dec_text(p.max_quantity))
        .bind(dec_text(p.realized_pnl))
        .bind(dec_text(p.fees))
        .bind(dec_text(p.exit_qty))
        .bind(dec_text(p.exit_notional))
        .bind(i64::from(p.leverage))
        .bind(&p.intent_id)
        .bind(json_opt(p.signal.as_ref()))
        .bind(p.opened_at)
        .bind(p.closed_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records a closed trade with what the entry was based on (for learning).
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_closed_trade(
        tx: &mut Tx,
        c: &qt_events::PositionClosed,
    ) -> Result<(), StoreError> {
        let s = c.signal.as_ref();
        sqlx::query(
            "INSERT INTO exec_closed_trades (position_id, symbol, side, max_quantity, entry_price, \
             exit_price, realized_pnl, fees, net_pnl, opened_at, closed_at, reason, signal_id, \
             model, model_version, confidence, features) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (position_id) DO NOTHING",
        )
        .bind(&c.position_id)
        .bind(&c.symbol)
        .bind(enum_text(&c.side))
        .bind(dec_text(c.max_quantity))
        .bind(dec_text(c.entry_price))
        .bind(dec_text(c.exit_price))
        .bind(dec_text(c.realized_pnl))
        .bind(dec_text(c.fees))
        .bind(dec_text(c.net_pnl))
        .bind(c.opened_at)
        .bind(c.closed_at)
        .bind(&c.reason)
        .bind(s.map(|s| s.signal_id.clone()))
        .bind(s.map(|s| s.model.clone()))
        .bind(s.map(|s| s.model_version.clone()))
        .bind(s.map(|s| s.confidence))
        .bind(s.and_then(|s| serde_json::to_string(&s.features).ok()))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Closed trades as (position id, net pnl, model version, features json) (tests and tools).
    ///
    /// # Errors
    /// A query error.
    pub async fn closed_trades(
        &self,
    ) -> Result<Vec<(String, Decimal, Option<String>, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT position_id, net_pnl, model_version, features FROM exec_closed_trades \
             ORDER BY closed_at",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("position_id")?,
                    row_dec(r, "net_pnl")?,
                    r.try_get("model_version")?,
                    r.try_get("features")?,
                ))
            })
            .collect()
    }

    /// Closed trades closed at or after `since_ms`, as the `PositionClosed` facts they were.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn closed_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<qt_events::PositionClosed>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM exec_closed_trades WHERE closed_at >= $1 ORDER BY closed_at",
        )
        .bind(since_ms)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let side: String = r.try_get("side")?;
                let signal_id: Option<String> = r.try_get("signal_id")?;
                let signal = match signal_id {
                    Some(signal_id) => {
                        let features: Option<String> = r.try_get("features")?;
                        Some(SignalRef {
                            signal_id,
                            model: r.try_get::<Option<String>, _>("model")?.unwrap_or_default(),
                            model_version: r
                                .try_get::<Option<String>, _>("model_version")?
                                .unwrap_or_default(),
                            confidence: r.try_get::<Option<f64>, _>("confidence")?.unwrap_or(0.0),
                            features: json_parse("features", features)?.unwrap_or_default(),
                            // A closed trade's exits managed nothing any more: not kept.
                            exits: None,
                        })
                    }
                    None => None,
                };
                Ok(qt_events::PositionClosed {
                    position_id: r.try_get("position_id")?,
                    symbol: r.try_get("symbol")?,
                    side: enum_parse("side", &side)?,
                    max_quantity: row_dec(r, "max_quantity")?,
                    entry_price: row_dec(r, "entry_price")?,
                    exit_price: row_dec(r, "exit_price")?,
                    realized_pnl: row_dec(r, "realized_pnl")?,
                    fees: row_dec(r, "fees")?,
                    net_pnl: row_dec(r, "net_pnl")?,
                    opened_at: r.try_get("opened_at")?,
                    closed_at: r.try_get("closed_at")?,
                    reason: r.try_get("reason")?,
                    signal,
                })
            })
            .collect()
    }
}
