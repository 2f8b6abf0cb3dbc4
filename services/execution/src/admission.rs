//! Admission: what may go out now. The order-rate budget (an order the budget cannot take is
//! deferred, or refused `RATE_LIMITED` once too old), the symbol's leverage, and the risk guard
//! deciding on a copy of the book under the book's lock (orders in flight counted), before the
//! SENDING record and the request ([`send`](crate::send)).

use std::collections::HashMap;

use qt_events::ids::client_order_id;
use qt_events::{Envelope, Event, OrderKind, RejectReason, Side, SignalRef};
use qt_exchange::{Exchange, Orders};
use qt_risk::RiskIntent;
use rust_decimal::Decimal;

use crate::db::{OrderRow, OrderState};
use crate::error::ExecError;
use crate::service::Execution;

/// An order the order-rate budget cannot take now (see `Execution::budget`).
pub(crate) enum Throttled {
    /// Read the intent again when the budget returns.
    Defer(ExecError),
    /// Refuse the order `RATE_LIMITED`, with this message.
    Refuse(String),
}

/// What to place for a plain (non-conditional) order.
#[derive(Debug, Clone)]
pub(crate) struct PlainSpec {
    pub(crate) intent_id: String,
    pub(crate) leg: String,
    pub(crate) symbol: String,
    pub(crate) side: Side,
    pub(crate) kind: OrderKind,
    pub(crate) quantity: Decimal,
    pub(crate) price: Option<Decimal>,
    pub(crate) reduce_only: bool,
    pub(crate) leverage: u32,
    pub(crate) reference_price: Option<Decimal>,
    pub(crate) signal: Option<SignalRef>,
    pub(crate) reason: Option<String>,
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

    pub(crate) async fn place_plain(
        &self,
        env: &Envelope,
        spec: PlainSpec,
    ) -> Result<Vec<Envelope>, ExecError> {
        let coid = client_order_id(&spec.intent_id, &spec.leg);
        if spec.leverage > 0 {
            self.ensure_leverage(&spec.symbol, spec.leverage).await;
        }
        let now = self.now();
        let unsure = self.unsure_since(env);
        let mut row = OrderRow {
            client_order_id: coid,
            intent_id: spec.intent_id.clone(),
            leg: spec.leg.clone(),
            symbol: spec.symbol.clone(),
            side: spec.side,
            kind: spec.kind,
            conditional: false,
            quantity: spec.quantity,
            price: spec.price,
            trigger_price: None,
            reduce_only: spec.reduce_only,
            close_position: false,
            state: OrderState::Sending,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: spec.reference_price.unwrap_or_default(),
            reason: spec.reason.clone(),
            message: None,
            exchange_code: None,
            leverage: spec.leverage,
            signal: spec.signal.clone(),
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
            .contains_key(&spec.intent_id);
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
            if let Some(p) = spec.reference_price {
                next.on_price(&spec.symbol, p);
            }
            match self.guard.admit(&mut next, &spec.risk, now) {
                qt_risk::Decision::Reject(reason, message) => {
                    // A daily-loss pause has a known end: the bot holds its entries until then.
                    let until = next
                        .paused_until_ms
                        .filter(|_| reason == RejectReason::DailyLossPause);
                    row.state = OrderState::Rejected;
                    row.reason = Some(crate::db::enum_text(&reason));
                    row.message = Some(message);
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
            self.book.lock().await.on_ended(&spec.intent_id);
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
