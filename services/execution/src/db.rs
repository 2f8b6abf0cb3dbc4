//! execution's repository: orders, fills, positions, closed trades, risk state, processed
//! events and the outbox, on SQLite or PostgreSQL through `qt-store` (decimals as TEXT).

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

/// An order's state in execution's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Recorded before the request left; the outcome is not known yet.
    Sending,
    /// The exchange has it.
    Acked,
    PartiallyFilled,
    Filled,
    /// Refused by the risk guard or by the exchange.
    Rejected,
    Cancelled,
    Expired,
    /// A conditional order that fired; its fills arrive on the order it created.
    Triggered,
}

impl OrderState {
    /// The stored text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "SENDING",
            Self::Acked => "ACKED",
            Self::PartiallyFilled => "PARTIALLY_FILLED",
            Self::Filled => "FILLED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::Triggered => "TRIGGERED",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn parse_text(s: &str) -> Option<Self> {
        Some(match s {
            "SENDING" => Self::Sending,
            "ACKED" => Self::Acked,
            "PARTIALLY_FILLED" => Self::PartiallyFilled,
            "FILLED" => Self::Filled,
            "REJECTED" => Self::Rejected,
            "CANCELLED" => Self::Cancelled,
            "EXPIRED" => Self::Expired,
            "TRIGGERED" => Self::Triggered,
            _ => return None,
        })
    }

    /// No more fills or state changes will come.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Rejected | Self::Cancelled | Self::Expired
        )
    }
}

/// One order as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub client_order_id: String,
    pub intent_id: String,
    /// `entry`, `reduce`, `close`, `stop`, a take-profit leg name, `trailing`, `close_all:SYM`.
    pub leg: String,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    pub conditional: bool,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    pub reduce_only: bool,
    pub close_position: bool,
    pub state: OrderState,
    pub exchange_order_id: Option<String>,
    pub filled_qty: Decimal,
    pub avg_price: Decimal,
    /// Reject reason code, or the intent's reason for an exit.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub exchange_code: Option<i64>,
    pub leverage: u32,
    pub signal: Option<SignalRef>,
    /// Exchange time when the (last) request left, ms: the recvWindow fence starts here.
    pub sent_at: i64,
    pub updated_at: i64,
}

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

fn order_from_row(r: &AnyRow) -> Result<OrderRow, StoreError> {
    let state: String = r.try_get("state")?;
    let leverage: i64 = r.try_get("leverage")?;
    Ok(OrderRow {
        client_order_id: r.try_get("client_order_id")?,
        intent_id: r.try_get("intent_id")?,
        leg: r.try_get("leg")?,
        symbol: r.try_get("symbol")?,
        side: enum_parse("side", &r.try_get::<String, _>("side")?)?,
        kind: enum_parse("kind", &r.try_get::<String, _>("kind")?)?,
        conditional: r.try_get::<i64, _>("conditional")? != 0,
        quantity: row_dec(r, "quantity")?,
        price: row_opt_dec(r, "price")?,
        trigger_price: row_opt_dec(r, "trigger_price")?,
        reduce_only: r.try_get::<i64, _>("reduce_only")? != 0,
        close_position: r.try_get::<i64, _>("close_position")? != 0,
        state: OrderState::parse_text(&state).ok_or(StoreError::BadValue {
            column: "state".into(),
            value: state.clone(),
        })?,
        exchange_order_id: r.try_get("exchange_order_id")?,
        filled_qty: row_dec(r, "filled_qty")?,
        avg_price: row_dec(r, "avg_price")?,
        reason: r.try_get("reason")?,
        message: r.try_get("message")?,
        exchange_code: r.try_get("exchange_code")?,
        leverage: u32::try_from(leverage).unwrap_or(0),
        signal: json_parse("signal", r.try_get("signal")?)?,
        sent_at: r.try_get("sent_at")?,
        updated_at: r.try_get("updated_at")?,
    })
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

/// Typed access to execution's tables.
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

    /// The order with this client order id.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn order(&self, client_order_id: &str) -> Result<Option<OrderRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM exec_orders WHERE client_order_id = $1")
            .bind(client_order_id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// The conditional order whose exchange (actual) order id is this.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn order_by_exchange_id(
        &self,
        exchange_order_id: &str,
    ) -> Result<Option<OrderRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM exec_orders WHERE exchange_order_id = $1")
            .bind(exchange_order_id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Orders not in a final state (oldest first).
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn live_orders(&self) -> Result<Vec<OrderRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM exec_orders WHERE state IN ('SENDING', 'ACKED', 'PARTIALLY_FILLED') \
             ORDER BY sent_at",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Every order recorded (tests and tools).
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn all_orders(&self) -> Result<Vec<OrderRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM exec_orders ORDER BY sent_at, client_order_id")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Records a new order in a statement of its own (one durable write); false, and nothing
    /// written, when its client order id is already recorded.
    ///
    /// # Errors
    /// A query error.
    pub async fn record_order(&self, o: &OrderRow) -> Result<bool, StoreError> {
        Self::insert_order(self.store.pool(), o).await
    }

    /// Records a new order within a transaction (or any executor); false, and nothing written,
    /// when its client order id is already recorded.
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_order<'e, X>(ex: X, o: &OrderRow) -> Result<bool, StoreError>
    where
        X: sqlx::Executor<'e, Database = Any>,
    {
        let r = sqlx::query(
            "INSERT INTO exec_orders (client_order_id, intent_id, leg, symbol, side, kind, conditional, \
             quantity, price, trigger_price, reduce_only, close_position, state, exchange_order_id, \
             filled_qty, avg_price, reason, message, exchange_code, leverage, signal, sent_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23) ON CONFLICT (client_order_id) DO NOTHING",
        )
        .bind(&o.client_order_id)
        .bind(&o.intent_id)
        .bind(&o.leg)
        .bind(&o.symbol)
        .bind(enum_text(&o.side))
        .bind(enum_text(&o.kind))
        .bind(flag(o.conditional))
        .bind(dec_text(o.quantity))
        .bind(o.price.map(dec_text))
        .bind(o.trigger_price.map(dec_text))
        .bind(flag(o.reduce_only))
        .bind(flag(o.close_position))
        .bind(o.state.as_str())
        .bind(o.exchange_order_id.clone())
        .bind(dec_text(o.filled_qty))
        .bind(dec_text(o.avg_price))
        .bind(o.reason.clone())
        .bind(o.message.clone())
        .bind(o.exchange_code)
        .bind(i64::from(o.leverage))
        .bind(json_opt(o.signal.as_ref()))
        .bind(o.sent_at)
        .bind(o.updated_at)
        .execute(ex)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Acknowledged by the exchange: SENDING becomes ACKED (a later state is kept).
    ///
    /// # Errors
    /// A query error.
    pub async fn mark_acked(
        &self,
        client_order_id: &str,
        exchange_order_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE exec_orders SET state = CASE WHEN state = 'SENDING' THEN 'ACKED' ELSE state END, \
             exchange_order_id = COALESCE(exchange_order_id, $2), updated_at = $3 \
             WHERE client_order_id = $1",
        )
        .bind(client_order_id)
        .bind(exchange_order_id)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Sets the exchange order id (a triggered conditional order's actual order).
    ///
    /// # Errors
    /// A query error.
    pub async fn set_exchange_id(
        &self,
        client_order_id: &str,
        exchange_order_id: &str,
        state: Option<OrderState>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE exec_orders SET exchange_order_id = $2, state = COALESCE($3, state), updated_at = $4 \
             WHERE client_order_id = $1",
        )
        .bind(client_order_id)
        .bind(exchange_order_id)
        .bind(state.map(OrderState::as_str))
        .bind(now)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// A new send of the same order: the fence starts again.
    ///
    /// # Errors
    /// A query error.
    pub async fn mark_resent(&self, client_order_id: &str, sent_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE exec_orders SET sent_at = $2, updated_at = $2 WHERE client_order_id = $1",
        )
        .bind(client_order_id)
        .bind(sent_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Sets a final state (with a reason for a rejection) inside a transaction.
    ///
    /// # Errors
    /// A query error.
    pub async fn set_state(
        tx: &mut Tx,
        client_order_id: &str,
        state: OrderState,
        reason: Option<(RejectReason, &str, Option<i64>)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (code, msg, ex) = match reason {
            Some((r, m, c)) => (Some(enum_text(&r)), Some(m.to_owned()), c),
            None => (None, None, None),
        };
        sqlx::query(
            "UPDATE exec_orders SET state = $2, reason = COALESCE($3, reason), \
             message = COALESCE($4, message), exchange_code = COALESCE($5, exchange_code), \
             updated_at = $6 WHERE client_order_id = $1",
        )
        .bind(client_order_id)
        .bind(state.as_str())
        .bind(code)
        .bind(msg)
        .bind(ex)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records the cumulative fill of an order.
    ///
    /// # Errors
    /// A query error.
    pub async fn set_filled(
        tx: &mut Tx,
        client_order_id: &str,
        filled: Decimal,
        avg: Decimal,
        state: OrderState,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE exec_orders SET filled_qty = $2, avg_price = $3, state = $4, updated_at = $5 \
             WHERE client_order_id = $1",
        )
        .bind(client_order_id)
        .bind(dec_text(filled))
        .bind(dec_text(avg))
        .bind(state.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

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
            "INSERT INTO exec_outbox (event_id, seq, type_name, v, ts, corr, data) VALUES {} \
             ON CONFLICT (event_id) DO NOTHING",
            qt_store::values(envs.len(), 7)
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
                .bind(e.event.encode_data());
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
            "SELECT event_id, type_name, v, ts, corr, data FROM exec_outbox ORDER BY seq LIMIT $1",
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
                traceparent: None,
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
