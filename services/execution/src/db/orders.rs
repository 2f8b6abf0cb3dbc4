//! The `exec_orders` table: one row per order (leg of an intent), its state and fills. The
//! typed record ([`OrderRecord`]) is mapped to the columns here and nowhere else; a state
//! changes only by an [`OrderEvent`], in one statement that applies the transition table
//! ([`OrderState::after`]) to the state the row holds, so a late or racing update can never
//! move an order backwards.
//!
//! Columns by spec: `kind`, `conditional`, `quantity`, `price` (a limit price; a trailing
//! stop's callback rate), `trigger_price` (a trailing stop's activation price), `reduce_only`,
//! `close_position` (the stop); `avg_price` holds the price an entry was sized with until its
//! first fill, then the fills' average; `reason` the rejection's code once REJECTED, else a
//! close's reason; `message` the rejection's message once REJECTED, else a stop's working type.
//! A leg refused before any order is a plain MARKET row of quantity 0.

use std::fmt::Write as _;

use super::*;
use crate::order::{
    Conditional, Leg, OrderEvent, OrderRecord, OrderSpec, OrderState, PlainOrder, Pricing,
    Rejection,
};

/// An order's columns, as stored.
struct Columns {
    kind: OrderKind,
    conditional: bool,
    quantity: Decimal,
    price: Option<Decimal>,
    trigger_price: Option<Decimal>,
    reduce_only: bool,
    close_position: bool,
    avg_price: Decimal,
    reason: Option<String>,
    message: Option<String>,
}

impl Columns {
    fn of(o: &OrderRecord) -> Self {
        let spec = &o.spec;
        let (reason, message) = match &o.rejection {
            Some(r) => (Some(enum_text(&r.reason)), Some(r.message.clone())),
            None => (
                o.exit_reason.clone(),
                match spec {
                    OrderSpec::Conditional(Conditional::Stop { working_type, .. }) => {
                        Some(enum_text(working_type))
                    }
                    _ => None,
                },
            ),
        };
        Self {
            kind: spec.kind(),
            conditional: spec.is_conditional(),
            quantity: spec.quantity(),
            price: spec.price(),
            trigger_price: spec.trigger_price(),
            reduce_only: match spec {
                OrderSpec::Conditional(Conditional::Stop { .. }) => false,
                other => other.reduces(),
            },
            close_position: matches!(spec, OrderSpec::Conditional(Conditional::Stop { .. })),
            avg_price: if o.filled_qty > Decimal::ZERO {
                o.avg_price
            } else {
                spec.plain()
                    .and_then(|p| p.reference_price)
                    .unwrap_or_default()
            },
            reason,
            message,
        }
    }
}

fn bad(column: &str, value: impl std::fmt::Display) -> StoreError {
    StoreError::BadValue {
        column: column.to_owned(),
        value: value.to_string(),
    }
}

fn order_from_row(r: &AnyRow) -> Result<OrderRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let state = OrderState::parse_text(&state).ok_or_else(|| bad("state", &state))?;
    let leg = Leg::parse(&r.try_get::<String, _>("leg")?);
    let kind: OrderKind = enum_parse("kind", &r.try_get::<String, _>("kind")?)?;
    let quantity = row_dec(r, "quantity")?;
    let price = row_opt_dec(r, "price")?;
    let trigger = row_opt_dec(r, "trigger_price")?.unwrap_or_default();
    let filled_qty = row_dec(r, "filled_qty")?;
    let stored_avg = row_dec(r, "avg_price")?;
    let reason: Option<String> = r.try_get("reason")?;
    let message: Option<String> = r.try_get("message")?;
    let rejected = state == OrderState::Rejected;
    let spec = if r.try_get::<i64, _>("conditional")? != 0 {
        OrderSpec::Conditional(match kind {
            OrderKind::StopMarket => Conditional::Stop {
                trigger,
                // A refused stop's message column holds the refusal instead.
                working_type: message
                    .as_deref()
                    .filter(|_| !rejected)
                    .and_then(|m| enum_parse("message", m).ok())
                    .unwrap_or_default(),
            },
            OrderKind::TakeProfitMarket => Conditional::TakeProfit { trigger, quantity },
            OrderKind::TrailingStopMarket => Conditional::Trailing {
                activation: trigger,
                callback_rate: price.unwrap_or_default(),
                quantity,
            },
            other => return Err(bad("kind", format!("{other:?} (conditional)"))),
        })
    } else if quantity.is_zero() {
        OrderSpec::Refused
    } else if leg.closes_all() {
        OrderSpec::Close { quantity }
    } else {
        let leverage: i64 = r.try_get("leverage")?;
        OrderSpec::Plain(PlainOrder {
            pricing: match (kind, price) {
                (OrderKind::Limit, Some(price)) => Pricing::Limit { price },
                _ => Pricing::Market,
            },
            quantity,
            reduce_only: r.try_get::<i64, _>("reduce_only")? != 0,
            leverage: u32::try_from(leverage).unwrap_or(0),
            reference_price: (filled_qty.is_zero() && stored_avg > Decimal::ZERO)
                .then_some(stored_avg),
            signal: json_parse("signal", r.try_get("signal")?)?,
        })
    };
    let rejection = if rejected {
        Some(Rejection {
            reason: reason
                .as_deref()
                .and_then(|r| enum_parse("reason", r).ok())
                .unwrap_or(RejectReason::Other),
            message: message.unwrap_or_default(),
            exchange_code: r.try_get("exchange_code")?,
        })
    } else {
        None
    };
    Ok(OrderRecord {
        client_order_id: r.try_get("client_order_id")?,
        intent_id: r.try_get("intent_id")?,
        leg,
        symbol: r.try_get("symbol")?,
        side: enum_parse("side", &r.try_get::<String, _>("side")?)?,
        spec,
        state,
        exchange_order_id: r.try_get("exchange_order_id")?,
        filled_qty,
        avg_price: if filled_qty > Decimal::ZERO {
            stored_avg
        } else {
            Decimal::ZERO
        },
        exit_reason: if rejected { None } else { reason },
        rejection,
        sent_at: r.try_get("sent_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// `CASE state WHEN … END`: the state after `event`, by the transition table, for every state
/// the table allows it in (any other keeps its state). Only the table's own names are
/// formatted in.
fn next_state_sql(event: OrderEvent) -> String {
    let mut sql = String::from("CASE state");
    for from in OrderState::ALL {
        if let Some(to) = from.after(event) {
            let _ = write!(sql, " WHEN '{}' THEN '{}'", from.as_str(), to.as_str());
        }
    }
    sql.push_str(" ELSE state END");
    sql
}

/// The states `event` is allowed in, as an SQL list (`'SENDING', 'ACKED'`).
fn allowed_in_sql(event: OrderEvent) -> String {
    OrderState::ALL
        .into_iter()
        .filter(|s| s.after(event).is_some())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// The order with this client order id.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn order(&self, client_order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM exec_orders WHERE client_order_id = $1")
            .bind(client_order_id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// Whether `symbol` has a stop (a conditional order of leg `stop`) placed or being placed:
    /// one count, no row decoded (asked before every entry, see
    /// `Execution::protect_ahead`).
    ///
    /// # Errors
    /// A query error.
    pub async fn has_live_stop(&self, symbol: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM exec_orders WHERE symbol = $1 AND leg = $2 \
             AND conditional = 1 AND state IN ('SENDING', 'ACKED', 'PARTIALLY_FILLED')",
        )
        .bind(symbol)
        .bind(crate::order::Leg::Stop.name())
        .fetch_one(self.store.pool())
        .await?;
        Ok(n > 0)
    }

    /// The conditional order whose exchange (actual) order id is this.
    ///
    /// # Errors
    /// A query error or an unreadable row.
    pub async fn order_by_exchange_id(
        &self,
        exchange_order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
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
    pub async fn live_orders(&self) -> Result<Vec<OrderRecord>, StoreError> {
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
    pub async fn all_orders(&self) -> Result<Vec<OrderRecord>, StoreError> {
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
    pub async fn record_order(&self, o: &OrderRecord) -> Result<bool, StoreError> {
        Self::insert_order(self.store.pool(), o).await
    }

    /// Records a new order within a transaction (or any executor); false, and nothing written,
    /// when its client order id is already recorded.
    ///
    /// # Errors
    /// A query error.
    pub async fn insert_order<'e, X>(ex: X, o: &OrderRecord) -> Result<bool, StoreError>
    where
        X: sqlx::Executor<'e, Database = Any>,
    {
        let c = Columns::of(o);
        let r = sqlx::query(
            "INSERT INTO exec_orders (client_order_id, intent_id, leg, symbol, side, kind, conditional, \
             quantity, price, trigger_price, reduce_only, close_position, state, exchange_order_id, \
             filled_qty, avg_price, reason, message, exchange_code, leverage, signal, sent_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23) ON CONFLICT (client_order_id) DO NOTHING",
        )
        .bind(&o.client_order_id)
        .bind(&o.intent_id)
        .bind(o.leg.name())
        .bind(&o.symbol)
        .bind(enum_text(&o.side))
        .bind(enum_text(&c.kind))
        .bind(flag(c.conditional))
        .bind(dec_text(c.quantity))
        .bind(c.price.map(dec_text))
        .bind(c.trigger_price.map(dec_text))
        .bind(flag(c.reduce_only))
        .bind(flag(c.close_position))
        .bind(o.state.as_str())
        .bind(o.exchange_order_id.clone())
        .bind(dec_text(o.filled_qty))
        .bind(dec_text(c.avg_price))
        .bind(c.reason)
        .bind(c.message)
        .bind(o.rejection.as_ref().and_then(|r| r.exchange_code))
        .bind(i64::from(o.leverage()))
        .bind(json_opt(o.signal()))
        .bind(o.sent_at)
        .bind(o.updated_at)
        .execute(ex)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Acknowledged by the exchange: SENDING becomes ACKED (a later state is kept, by the
    /// table), and the exchange's id is noted.
    ///
    /// # Errors
    /// A query error.
    pub async fn mark_acked(
        &self,
        client_order_id: &str,
        exchange_order_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE exec_orders SET state = {}, \
             exchange_order_id = COALESCE(exchange_order_id, $2), updated_at = $3 \
             WHERE client_order_id = $1",
            next_state_sql(OrderEvent::Acked)
        );
        // Only the transition table's state names are formatted in; the values are bound.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_order_id)
            .bind(exchange_order_id)
            .bind(now)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// A conditional order fired: TRIGGERED (where the table allows it), with the id of the
    /// order it placed when known.
    ///
    /// # Errors
    /// A query error.
    pub async fn mark_triggered(
        &self,
        client_order_id: &str,
        placed_order_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE exec_orders SET state = {}, \
             exchange_order_id = COALESCE($2, exchange_order_id), updated_at = $3 \
             WHERE client_order_id = $1",
            next_state_sql(OrderEvent::Triggered)
        );
        // Only the transition table's state names are formatted in; the values are bound.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_order_id)
            .bind(placed_order_id)
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

    /// An order's end without (further) fills — `Rejected` (with its rejection) or `Ended` —
    /// inside a transaction; false, and nothing written, when the table does not allow it in
    /// the state the row holds (it ended otherwise meanwhile).
    ///
    /// # Errors
    /// A query error.
    pub async fn end_order(
        tx: &mut Tx,
        client_order_id: &str,
        event: OrderEvent,
        rejection: Option<&Rejection>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE exec_orders SET state = {}, reason = COALESCE($2, reason), \
             message = COALESCE($3, message), exchange_code = COALESCE($4, exchange_code), \
             updated_at = $5 WHERE client_order_id = $1 AND state IN ({})",
            next_state_sql(event),
            allowed_in_sql(event)
        );
        // Only the transition table's state names are formatted in; the values are bound.
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_order_id)
            .bind(rejection.map(|r| enum_text(&r.reason)))
            .bind(rejection.map(|r| r.message.clone()))
            .bind(rejection.and_then(|r| r.exchange_code))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the cumulative fill of an order and its state after the fill (`Filled` or
    /// `TriggeredFill`) by the table; a fill the table does not allow (on an order that has
    /// ended) is recorded without moving its state.
    ///
    /// # Errors
    /// A query error.
    pub async fn set_filled(
        tx: &mut Tx,
        client_order_id: &str,
        filled: Decimal,
        avg: Decimal,
        event: OrderEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE exec_orders SET filled_qty = $2, avg_price = $3, state = {}, \
             updated_at = $4 WHERE client_order_id = $1",
            next_state_sql(event)
        );
        // Only the transition table's state names are formatted in; the values are bound.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_order_id)
            .bind(dec_text(filled))
            .bind(dec_text(avg))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
