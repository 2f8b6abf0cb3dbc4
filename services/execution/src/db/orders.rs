//! The `exec_orders` table: one row per order (leg of an intent), its state and fills.

use super::*;

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

impl Db {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_states_round_trip_and_know_which_are_final() {
        for s in [
            OrderState::Sending,
            OrderState::Acked,
            OrderState::PartiallyFilled,
            OrderState::Filled,
            OrderState::Rejected,
            OrderState::Cancelled,
            OrderState::Expired,
            OrderState::Triggered,
        ] {
            assert_eq!(OrderState::parse_text(s.as_str()), Some(s));
        }
        assert!(OrderState::Filled.is_final() && OrderState::Rejected.is_final());
        assert!(!OrderState::Sending.is_final() && !OrderState::Triggered.is_final());
    }
}
