//! Admission: what may go out now. The order-rate budget (an order the budget cannot take is
//! deferred, or refused `RATE_LIMITED` once too old), the symbol's leverage, and the risk guard
//! deciding on a copy of the book under the book's lock (orders in flight counted), before the
//! SENDING record and the request ([`send`](crate::send)).

use std::collections::HashMap;

use qt_events::ids::client_order_id;
use qt_events::{Envelope, Event, RejectReason, Side};
use qt_exchange::{Exchange, Orders};
use qt_risk::RiskIntent;
use rust_decimal::Decimal;

use crate::error::ExecError;
use crate::order::{Leg, OrderRecord, OrderSpec, OrderState, Rejection};
use crate::service::Execution;

/// An order the order-rate budget cannot take now (see `Execution::budget`).
pub(crate) enum Throttled {
    /// Read the intent again when the budget returns.
    Defer(ExecError),
    /// Refuse the order `RATE_LIMITED`, with this message.
    Refuse(String),
}

/// A plain order or a close to record, admit and send (see `Execution::place`).
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub(crate) intent_id: String,
    pub(crate) leg: Leg,
    pub(crate) symbol: String,
    pub(crate) side: Side,
    pub(crate) spec: OrderSpec,
    /// Why a close or reduction is asked for.
    pub(crate) exit_reason: Option<String>,
    pub(crate) risk: RiskIntent,
}

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// What to do with a new order of `class`, client order id `coid`, that the order-rate
    /// budget cannot take now (`None`: it can, or the order was recorded before and resumes
    /// from its record, budget or not). Waiting for the budget in the handler would hold up
    /// every intent behind this one, protective ones included; so the intent is deferred until
    /// the budget returns (`ExecError::Later`: the intents behind it go on meanwhile), or,
    /// when by then it would be older than `order_budget_max_wait`, the order is refused
    /// `RATE_LIMITED`.
    pub(crate) async fn budget(
        &self,
        env: &Envelope,
        class: Orders,
        coid: &str,
    ) -> Result<Option<Throttled>, ExecError> {
        let Some(wait) = self.budget_wait(class) else {
            return Ok(None);
        };
        if self.db.order(coid).await?.is_some() {
            return Ok(None);
        }
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        let age_ms = self.now().saturating_sub(env.ts).max(0);
        let max_ms =
            i64::try_from(self.settings.order_budget_max_wait.as_millis()).unwrap_or(i64::MAX);
        if age_ms.saturating_add(wait_ms) > max_ms {
            return Ok(Some(Throttled::Refuse(format!(
                "the order-rate budget for {class:?} orders is used up for another {wait_ms} ms; \
                 the intent is {age_ms} ms old and may wait {max_ms} ms"
            ))));
        }
        metrics::counter!("execution_intents_deferred_total").increment(1);
        Ok(Some(Throttled::Defer(ExecError::Later {
            reason: format!(
                "order-rate budget for {class:?} orders used up for another {wait_ms} ms"
            ),
            retry_in: wait,
        })))
    }

    /// How long an order of `class` would wait for the order-rate budget now. Every other lane
    /// may be between its own check and its send: they are counted, so an order that passes
    /// never waits inside its send (which would hold up its lane, and the batch with it, until
    /// the next window).
    pub(crate) fn budget_wait(&self, class: Orders) -> Option<std::time::Duration> {
        let others = u32::try_from(self.settings.intent_lanes.saturating_sub(1)).unwrap_or(0);
        self.exchange.orders_wait(class, others)
    }

    /// Admits, records and sends a plain order or a close.
    pub(crate) async fn place(
        &self,
        env: &Envelope,
        order: Placement,
    ) -> Result<Vec<Envelope>, ExecError> {
        let plain = order.spec.plain();
        let leverage = plain.map_or(0, |p| p.leverage);
        let reference_price = plain.and_then(|p| p.reference_price);
        if leverage > 0 {
            self.ensure_leverage(&order.symbol, leverage).await;
        }
        let now = self.now();
        let unsure = self.unsure_since(env);
        let mut row = OrderRecord {
            client_order_id: client_order_id(&order.intent_id, &order.leg.name()),
            intent_id: order.intent_id.clone(),
            leg: order.leg,
            symbol: order.symbol.clone(),
            side: order.side,
            spec: order.spec,
            state: OrderState::Sending,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            exit_reason: order.exit_reason,
            rejection: None,
            sent_at: unsure.unwrap_or_else(|| self.exchange.server_now_ms()),
            updated_at: now,
        };
        // An entry already in flight was recorded by an earlier delivery of this intent: it
        // resumes from its record and is not admitted again.
        let in_flight = self
            .book
            .lock()
            .await
            .in_flight()
            .contains_key(&row.intent_id);
        if in_flight && let Some(known) = self.db.order(&row.client_order_id).await? {
            return self.resume(env, known).await;
        }
        // Admitted under the book's lock, on a copy: concurrent intents cannot pass a limit
        // together, as the admission reserves the order in flight in the book before the lock
        // is released. The SENDING record is written after it, without the lock (a durable
        // insert must not hold up the other lanes' admissions), and before the request leaves.
        // The record is the only write: it is also the idempotency check (an intent seen
        // before finds its record and resumes from it, and its reservation made here is taken
        // back), and the order in flight is restored from it after a restart (see
        // `restore_in_flight`), so the book is saved with the next fill.
        let refused = {
            let mut book = self.book.lock().await;
            let mut next = book.clone();
            if let Some(p) = reference_price {
                next.on_price(&row.symbol, p);
            }
            match self.guard.admit(&mut next, &order.risk, now) {
                qt_risk::Decision::Reject(reason, message) => {
                    // A daily-loss pause has a known end: the bot holds its entries until then.
                    let until = next
                        .paused_until_ms
                        .filter(|_| reason == RejectReason::DailyLossPause);
                    row.state = OrderState::Rejected;
                    row.rejection = Some(Rejection {
                        reason,
                        message,
                        exchange_code: None,
                    });
                    Some(until)
                }
                _ => {
                    *book = next;
                    None
                }
            }
        };
        let recorded = self.record_new(&row).await;
        if refused.is_none() && !matches!(recorded, Ok(None)) {
            // Not recorded now (seen before, or the store failed): no reservation of its own.
            self.book.lock().await.on_ended(&row.intent_id);
        }
        if let Some(known) = recorded? {
            return self.resume(env, known).await;
        }
        if let Some(until) = refused {
            metrics::counter!("execution_intents_rejected_total").increment(1);
            let mut refused = self.rejected_event(env, &row);
            if let Event::OrderRejected(r) = &mut refused.event {
                r.until_ms = until;
            }
            return Ok(vec![refused]);
        }
        if unsure.is_some() {
            return self.resume(env, row).await;
        }
        self.send(env, row).await
    }

    /// Sets the symbol's leverage on the exchange unless it is known to be set already. The
    /// known values sit behind a short lock that is never held across the request, so another
    /// symbol's entry never waits for this one's round trip; one symbol's intents are handled
    /// in order, so two requests for one symbol do not overlap.
    pub(crate) async fn ensure_leverage(&self, symbol: &str, leverage: u32) {
        if self.known_leverage().get(symbol) == Some(&leverage) {
            return;
        }
        match self.exchange.set_leverage(symbol, leverage).await {
            Ok(_) => {
                self.known_leverage().insert(symbol.to_owned(), leverage);
            }
            Err(e) => tracing::warn!(symbol, leverage, error = %e, "cannot set leverage"),
        }
    }

    /// The leverage known to be set per symbol (a short lock: never held across an await).
    pub(crate) fn known_leverage(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.leverage.lock().unwrap_or_else(|p| p.into_inner())
    }
}
