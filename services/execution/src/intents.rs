//! Intents in: `OpenPosition`, `ReducePosition`, `ClosePosition`, `CancelOrder` (and the
//! dispatch to `ProtectPosition`, see [`protect`](crate::protect)). Each becomes at most one
//! order per leg, with a client order id derived from the intent id and the leg; an intent
//! refused before any order is recorded too, so a redelivery answers the same.

use std::collections::HashSet;

use qt_events::ids::client_order_id;
use qt_events::{
    CancelOrder, ClosePosition, Envelope, Event, OpenPosition, OrderKind, PositionSide,
    ProtectPosition, ReducePosition, RejectReason, Side, Stream,
};
use qt_exchange::{ErrorClass, Exchange, Orders};
use qt_risk::{IntentKind, RiskIntent};
use rust_decimal::Decimal;

use crate::admission::{Placement, Throttled};
use crate::error::ExecError;
use crate::order::{Leg, OrderRecord, OrderSpec, OrderState, PlainOrder, Pricing, Rejection};
use crate::protect::LOOKAHEAD;
use crate::service::Execution;

/// How a plain order of `kind` is priced (a limit order without a price goes at market).
fn pricing(kind: OrderKind, limit_price: Option<Decimal>) -> Pricing {
    match (kind, limit_price) {
        (OrderKind::Limit, Some(price)) => Pricing::Limit { price },
        _ => Pricing::Market,
    }
}

/// A reduce-only order against the position of `symbol` (see `Execution::exit`).
struct Exit<'a> {
    intent_id: &'a str,
    leg: Leg,
    symbol: &'a str,
    reason: &'a str,
    /// The side of the position the intent is about; `None`: whatever the symbol holds.
    position_side: Option<PositionSide>,
    /// A reduction: the quantity asked for (at most the position) and its pricing; `None`
    /// closes the whole position at market.
    part: Option<(Decimal, Pricing)>,
    risk: RiskIntent,
}

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
        let intent_id = match &env.event {
            Event::OpenPosition(o) => Some(&o.intent_id),
            Event::ReducePosition(r) => Some(&r.intent_id),
            Event::ClosePosition(c) => Some(&c.intent_id),
            Event::ProtectPosition(p) => Some(&p.intent_id),
            _ => None,
        };
        if let Some(id) = intent_id {
            self.remember_trace(id, env.traceparent.as_deref());
        }
        match &env.event {
            Event::OpenPosition(o) => {
                if let Some(id) = entry_id {
                    self.protect_ahead(id, &o.symbol).await;
                }
                self.open(env, o).await
            }
            Event::ReducePosition(r) => self.reduce(env, r).await,
            Event::ClosePosition(c) => self.close(env, c).await,
            Event::ProtectPosition(p) => self.handle_protect(env, p, entry_id).await,
            Event::CancelOrder(c) => self.cancel(env, c).await,
            _ => Ok(Vec::new()),
        }
    }

    /// A `ProtectPosition` read at `entry_id` (`None`: from elsewhere).
    async fn handle_protect(
        &self,
        env: &Envelope,
        p: &ProtectPosition,
        entry_id: Option<&str>,
    ) -> Result<Vec<Envelope>, ExecError> {
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

    /// Before an entry of `symbol` read at `entry_id`: a protect intent of the symbol further
    /// on in `qt:intents`, with only entries of the symbol between, is handled now when the
    /// symbol has no stop placed (or being placed) and that intent has not placed its stop yet —
    /// so a position is not left bare while its pending adds go out one by one ahead of its
    /// stop. Safe because the stop is `closePosition` (it covers whatever is held when it
    /// fires, the adds included) and the take-profit legs are sized for the position as it is
    /// now (exit-brain resizes them when an add fills: `PositionChanged`). The protect intent is
    /// acknowledged in its own turn, where it answers from its records (same client order ids,
    /// same event ids), so a crash anywhere in between places nothing twice. What it placed
    /// is published now. Best effort: a failure here is logged and left to that turn; the entry
    /// goes on as it would have.
    async fn protect_ahead(&self, entry_id: &str, symbol: &str) {
        // Asked first: a symbol with a stop working needs nothing moved, and the look further
        // on in the stream (up to 1,000 entries read and parsed) is what costs, on every entry
        // of a backlog.
        match self.has_live_stop(symbol).await {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                tracing::warn!(error = %e, symbol, "cannot read the symbol's stops");
                return;
            }
        }
        let found = match self.protect_behind(entry_id, symbol).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, symbol, "cannot look for a protect intent ahead");
                return;
            }
        };
        let Some((protect_entry, env)) = found else {
            return;
        };
        let Event::ProtectPosition(p) = &env.event else {
            return;
        };
        let own_stop = client_order_id(&p.intent_id, ProtectPosition::STOP_LEG);
        match self.db.order(&own_stop).await {
            Ok(None) => {}
            Ok(Some(_)) => return,
            Err(e) => {
                tracing::warn!(error = %e, symbol, "cannot read a protect intent's stop");
                return;
            }
        }
        tracing::info!(symbol, entry_id, protect_entry = %protect_entry, intent_id = %p.intent_id,
            "protect intent handled ahead of the symbol's pending entries");
        self.remember_trace(&p.intent_id, env.traceparent.as_deref());
        match self.handle_protect(&env, p, Some(&protect_entry)).await {
            Ok(out) => {
                if !out.is_empty()
                    && let Err(e) = self.bus.publish_all(&out).await
                {
                    tracing::warn!(error = %e, symbol, "facts of a protect handled ahead not published; its own turn publishes them");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, symbol, intent_id = %p.intent_id,
                    "protect intent ahead not finished; its own turn goes on from its records");
            }
        }
    }

    /// The first protect intent (with a stop) of `symbol` after `entry_id` on `qt:intents`,
    /// with its entry id, if only entries (`OpenPosition`) of the symbol come between.
    async fn protect_behind(
        &self,
        entry_id: &str,
        symbol: &str,
    ) -> Result<Option<(String, Envelope)>, ExecError> {
        let key = self.bus.key(Stream::Intents);
        let later = self
            .bus
            .range(&key, &format!("({entry_id}"), "+", LOOKAHEAD)
            .await?;
        for entry in &later {
            let field = |name: &[u8]| {
                entry
                    .field_pairs()
                    .find_map(|(k, v)| (k == name).then_some(v))
            };
            if field(b"sym") != Some(symbol.as_bytes()) {
                continue;
            }
            match field(b"type") {
                Some(b"OpenPosition") => continue,
                Some(b"ProtectPosition") => {}
                // A close, a reduce, a cancel of the symbol: what follows it waits its turn.
                _ => return Ok(None),
            }
            // An entry that does not decode is the consumer's to dead-letter, not a protect.
            return Ok(match Envelope::from_fields(entry.field_pairs()) {
                Ok(env) if matches!(&env.event, Event::ProtectPosition(p) if p.stop.is_some()) => {
                    Some((entry.id.clone(), env))
                }
                _ => None,
            });
        }
        Ok(None)
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
            let coid = client_order_id(&o.intent_id, Leg::ENTRY);
            match self.budget(env, Orders::Opening, &coid).await? {
                None => None,
                Some(Throttled::Defer(later)) => return Err(later),
                Some(Throttled::Refuse(message)) => Some((RejectReason::RateLimited, message)),
            }
        };
        if let Some((reason, message)) = refusal {
            return self
                .reject_intent(env, &o.intent_id, &Leg::Entry, &o.symbol, reason, message)
                .await;
        }
        self.place(
            env,
            Placement {
                intent_id: o.intent_id.clone(),
                leg: Leg::Entry,
                symbol: o.symbol.clone(),
                side: o.side.entry_side(),
                spec: OrderSpec::Plain(PlainOrder {
                    pricing: pricing(o.order_type, o.limit_price),
                    quantity: o.quantity,
                    reduce_only: false,
                    leverage: o.leverage,
                    reference_price: Some(o.reference_price),
                    signal: o.signal.clone(),
                }),
                exit_reason: None,
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
        self.exit(
            env,
            Exit {
                intent_id: &r.intent_id,
                leg: Leg::Reduce,
                symbol: &r.symbol,
                reason: &r.reason,
                position_side: r.position_side,
                part: Some((r.quantity, pricing(r.order_type, r.limit_price))),
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
        self.close_symbol(
            env,
            &c.intent_id,
            Leg::Close,
            &c.symbol,
            &c.reason,
            c.position_side,
        )
        .await
    }

    /// Closes the whole position of `symbol` at market (reduce-only), or only when it is on
    /// `position_side` if one is named; `leg` names the order.
    pub(crate) async fn close_symbol(
        &self,
        env: &Envelope,
        intent_id: &str,
        leg: Leg,
        symbol: &str,
        reason: &str,
        position_side: Option<PositionSide>,
    ) -> Result<Vec<Envelope>, ExecError> {
        let risk = RiskIntent {
            intent_id: intent_id.to_owned(),
            symbol: symbol.to_owned(),
            kind: IntentKind::Close,
        };
        self.exit(
            env,
            Exit {
                intent_id,
                leg,
                symbol,
                reason,
                position_side,
                part: None,
                risk,
            },
        )
        .await
    }

    /// A reduce-only order against the position of the symbol as the exchange holds it: part
    /// of it, or all of it at market; refused `NO_POSITION` when there is none — or none on
    /// the side the intent names: an intent about a long never closes the short that replaced
    /// it (a flip in one-way mode; the other position in hedge mode).
    async fn exit(&self, env: &Envelope, x: Exit<'_>) -> Result<Vec<Envelope>, ExecError> {
        let coid = client_order_id(x.intent_id, &x.leg.name());
        if let Some(row) = self.db.order(&coid).await? {
            return self.resume(env, row).await;
        }
        let amt = self.exchange_position(x.symbol).await?;
        let held = match amt.cmp(&Decimal::ZERO) {
            std::cmp::Ordering::Greater => Some(PositionSide::Long),
            std::cmp::Ordering::Less => Some(PositionSide::Short),
            std::cmp::Ordering::Equal => None,
        };
        let other_side = x.position_side.is_some_and(|want| held != Some(want));
        if held.is_none() || other_side || x.part.is_some_and(|(qty, _)| qty <= Decimal::ZERO) {
            let verb = if x.part.is_some() { "reduce" } else { "close" };
            let what = match x.position_side {
                Some(PositionSide::Long) => "LONG ",
                Some(PositionSide::Short) => "SHORT ",
                None => "",
            };
            return self
                .reject_intent(
                    env,
                    x.intent_id,
                    &x.leg,
                    x.symbol,
                    RejectReason::NoPosition,
                    format!("no {what}{} position to {verb}", x.symbol),
                )
                .await;
        }
        let spec = match x.part {
            Some((qty, pricing)) => OrderSpec::Plain(PlainOrder {
                pricing,
                quantity: qty.min(amt.abs()),
                reduce_only: true,
                leverage: 0,
                reference_price: None,
                signal: None,
            }),
            None => OrderSpec::Close {
                quantity: amt.abs(),
            },
        };
        self.place(
            env,
            Placement {
                intent_id: x.intent_id.to_owned(),
                leg: x.leg,
                symbol: x.symbol.to_owned(),
                side: if amt > Decimal::ZERO {
                    Side::Sell
                } else {
                    Side::Buy
                },
                spec,
                exit_reason: Some(x.reason.to_owned()),
                risk: x.risk,
            },
        )
        .await
    }

    /// Refuses an intent (or one leg of it) before any order: recorded (so a redelivery
    /// answers the same) and published with its reason.
    pub(crate) async fn reject_intent(
        &self,
        env: &Envelope,
        intent_id: &str,
        leg: &Leg,
        symbol: &str,
        reason: RejectReason,
        message: String,
    ) -> Result<Vec<Envelope>, ExecError> {
        let now = self.now();
        let row = OrderRecord {
            client_order_id: client_order_id(intent_id, &leg.name()),
            intent_id: intent_id.to_owned(),
            leg: leg.clone(),
            symbol: symbol.to_owned(),
            side: Side::Buy,
            spec: OrderSpec::Refused,
            state: OrderState::Rejected,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            exit_reason: None,
            rejection: Some(Rejection {
                reason,
                message,
                exchange_code: None,
            }),
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
