//! Intents in: `OpenPosition`, `ReducePosition`, `ClosePosition`, `CancelOrder` (and the
//! dispatch to `ProtectPosition`, see [`protect`](crate::protect)). Each becomes at most one
//! order per leg, with a client order id derived from the intent id and the leg; an intent
//! refused before any order is recorded too, so a redelivery answers the same.

use std::collections::HashSet;

use qt_events::ids::client_order_id;
use qt_events::{
    CancelOrder, ClosePosition, Envelope, Event, OpenPosition, OrderKind, ProtectPosition,
    ReducePosition, RejectReason, Side,
};
use qt_exchange::{ErrorClass, Exchange, Orders};
use qt_risk::{IntentKind, RiskIntent};
use rust_decimal::Decimal;

use crate::admission::{PlainSpec, Throttled};
use crate::db::{OrderRow, OrderState};
use crate::error::ExecError;
use crate::service::{ENTRY_LEG, Execution};

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// Handles one intent; returns what to publish with its acknowledgement.
    ///
    /// # Errors
    /// Transient when the database or the exchange is unreachable (the intent stays pending
    /// and resumes from its records); never permanent for a well-formed intent.
    pub async fn handle_intent(&self, env: &Envelope) -> Result<Vec<Envelope>, ExecError> {
        self.handle_intent_at(env, None).await
    }

    /// Handles one intent read from `qt:intents` at `entry_id` (`None`: from elsewhere); a
    /// protect intent skips the legs that later entries supersede (see `superseded_legs`).
    ///
    /// # Errors
    /// As [`handle_intent`](Self::handle_intent).
    pub async fn handle_intent_at(
        &self,
        env: &Envelope,
        entry_id: Option<&str>,
    ) -> Result<Vec<Envelope>, ExecError> {
        match &env.event {
            Event::OpenPosition(o) => self.open(env, o).await,
            Event::ReducePosition(r) => self.reduce(env, r).await,
            Event::ClosePosition(c) => self.close(env, c).await,
            Event::ProtectPosition(p) => {
                let mut superseded = match entry_id {
                    Some(id) => self.superseded_legs(id, &p.symbol).await?,
                    None => HashSet::new(),
                };
                // A position with no working stop takes this intent's stop even when a later
                // intent will replace it: the stop closes the whole position, so an older one
                // protects as well as the newer, and a burst of adds must not leave the position
                // bare until the burst ends. The later stop replaces it (`replace_older_legs`).
                // An intent handled again answers as the first time (its stop's record).
                if p.stop.is_some() && superseded.contains(ProtectPosition::STOP_LEG) {
                    let own = client_order_id(&p.intent_id, ProtectPosition::STOP_LEG);
                    let recorded = self.db.order(&own).await?.is_some();
                    if recorded || !self.has_live_stop(&p.symbol).await? {
                        superseded.remove(ProtectPosition::STOP_LEG);
                    }
                }
                self.protect(env, p, &superseded).await
            }
            Event::CancelOrder(c) => self.cancel(env, c).await,
            _ => Ok(Vec::new()),
        }
    }

    pub(crate) async fn open(
        &self,
        env: &Envelope,
        o: &OpenPosition,
    ) -> Result<Vec<Envelope>, ExecError> {
        let refusal = if o.quantity <= Decimal::ZERO
            || (o.order_type == OrderKind::Limit && o.limit_price.is_none())
            || !matches!(o.order_type, OrderKind::Market | OrderKind::Limit)
        {
            Some((
                RejectReason::InvalidIntent,
                "quantity must be positive; MARKET, or LIMIT with a price".to_owned(),
            ))
        } else {
            let coid = client_order_id(&o.intent_id, ENTRY_LEG);
            match self.budget(env, Orders::Opening, &coid).await? {
                None => None,
                Some(Throttled::Defer(later)) => return Err(later),
                Some(Throttled::Refuse(message)) => Some((RejectReason::RateLimited, message)),
            }
        };
        if let Some((reason, message)) = refusal {
            return self
                .reject_intent(env, &o.intent_id, ENTRY_LEG, &o.symbol, reason, message)
                .await;
        }
        self.place_plain(
            env,
            PlainSpec {
                intent_id: o.intent_id.clone(),
                leg: ENTRY_LEG.into(),
                symbol: o.symbol.clone(),
                side: o.side.entry_side(),
                kind: o.order_type,
                quantity: o.quantity,
                price: o.limit_price.filter(|_| o.order_type == OrderKind::Limit),
                reduce_only: false,
                leverage: o.leverage,
                reference_price: Some(o.reference_price),
                signal: o.signal.clone(),
                reason: None,
                risk: RiskIntent::from(o),
            },
        )
        .await
    }

    pub(crate) async fn reduce(
        &self,
        env: &Envelope,
        r: &ReducePosition,
    ) -> Result<Vec<Envelope>, ExecError> {
        let coid = client_order_id(&r.intent_id, "reduce");
        if let Some(row) = self.db.order(&coid).await? {
            return self.resume(env, row).await;
        }
        let amt = self.exchange_position(&r.symbol).await?;
        if amt.is_zero() || r.quantity <= Decimal::ZERO {
            return self
                .reject_intent(
                    env,
                    &r.intent_id,
                    "reduce",
                    &r.symbol,
                    RejectReason::NoPosition,
                    format!("no {} position to reduce", r.symbol),
                )
                .await;
        }
        let side = if amt > Decimal::ZERO {
            Side::Sell
        } else {
            Side::Buy
        };
        self.place_plain(
            env,
            PlainSpec {
                intent_id: r.intent_id.clone(),
                leg: "reduce".into(),
                symbol: r.symbol.clone(),
                side,
                kind: r.order_type,
                quantity: r.quantity.min(amt.abs()),
                price: r.limit_price.filter(|_| r.order_type == OrderKind::Limit),
                reduce_only: true,
                leverage: 0,
                reference_price: None,
                signal: None,
                reason: Some(r.reason.clone()),
                risk: RiskIntent::from(r),
            },
        )
        .await
    }

    pub(crate) async fn close(
        &self,
        env: &Envelope,
        c: &ClosePosition,
    ) -> Result<Vec<Envelope>, ExecError> {
        self.close_symbol(env, &c.intent_id, "close", &c.symbol, &c.reason)
            .await
    }

    /// Closes the whole position of `symbol` at market (reduce-only); `leg` names the order.
    pub(crate) async fn close_symbol(
        &self,
        env: &Envelope,
        intent_id: &str,
        leg: &str,
        symbol: &str,
        reason: &str,
    ) -> Result<Vec<Envelope>, ExecError> {
        let coid = client_order_id(intent_id, leg);
        if let Some(row) = self.db.order(&coid).await? {
            return self.resume(env, row).await;
        }
        let amt = self.exchange_position(symbol).await?;
        if amt.is_zero() {
            return self
                .reject_intent(
                    env,
                    intent_id,
                    leg,
                    symbol,
                    RejectReason::NoPosition,
                    format!("no {symbol} position to close"),
                )
                .await;
        }
        let side = if amt > Decimal::ZERO {
            Side::Sell
        } else {
            Side::Buy
        };
        self.place_plain(
            env,
            PlainSpec {
                intent_id: intent_id.to_owned(),
                leg: leg.to_owned(),
                symbol: symbol.to_owned(),
                side,
                kind: OrderKind::Market,
                quantity: amt.abs(),
                price: None,
                reduce_only: true,
                leverage: 0,
                reference_price: None,
                signal: None,
                reason: Some(reason.to_owned()),
                risk: RiskIntent {
                    intent_id: intent_id.to_owned(),
                    symbol: symbol.to_owned(),
                    kind: IntentKind::Close,
                },
            },
        )
        .await
    }

    /// Refuses an intent before any order: recorded (so a redelivery answers the same) and
    /// published with its reason.
    pub(crate) async fn reject_intent(
        &self,
        env: &Envelope,
        intent_id: &str,
        leg: &str,
        symbol: &str,
        reason: RejectReason,
        message: String,
    ) -> Result<Vec<Envelope>, ExecError> {
        let coid = client_order_id(intent_id, leg);
        let now = self.now();
        let row = OrderRow {
            client_order_id: coid,
            intent_id: intent_id.to_owned(),
            leg: leg.to_owned(),
            symbol: symbol.to_owned(),
            side: Side::Buy,
            kind: OrderKind::Market,
            conditional: false,
            quantity: Decimal::ZERO,
            price: None,
            trigger_price: None,
            reduce_only: false,
            close_position: false,
            state: OrderState::Rejected,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            reason: Some(crate::db::enum_text(&reason)),
            message: Some(message),
            exchange_code: None,
            leverage: 0,
            signal: None,
            sent_at: now,
            updated_at: now,
        };
        if let Some(known) = self.record_new(&row).await? {
            return self.resume(env, known).await;
        }
        Ok(vec![self.rejected_event(env, &row)])
    }

    // ---- cancels ------------------------------------------------------------------------

    pub(crate) async fn cancel(
        &self,
        env: &Envelope,
        c: &CancelOrder,
    ) -> Result<Vec<Envelope>, ExecError> {
        match self.db.order(&c.client_order_id).await? {
            Some(row) if row.state.is_final() => {
                if matches!(row.state, OrderState::Cancelled | OrderState::Expired) {
                    Ok(vec![self.ended_event(
                        Some(env),
                        &row,
                        row.state == OrderState::Expired,
                        "cancelled",
                    )])
                } else {
                    Ok(Vec::new())
                }
            }
            Some(row) => self.cancel_row(Some(env), &row, "cancelled").await,
            None => {
                // Not ours (or not recorded): cancel on the exchange anyway; nothing to report.
                let r = if c.conditional {
                    self.exchange.cancel_algo_order(&c.client_order_id).await
                } else {
                    self.exchange
                        .cancel_order(&c.symbol, &c.client_order_id)
                        .await
                        .map(|_| ())
                };
                match r {
                    Ok(()) => Ok(Vec::new()),
                    Err(e) if e.class() == ErrorClass::Rejected => Ok(Vec::new()),
                    Err(e) => Err(ExecError::unavailable(e)),
                }
            }
        }
    }
}
