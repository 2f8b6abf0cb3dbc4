//! The order protocol: intents in, risk-checked orders out, every step recorded before the next.
//!
//! For each order: client order id from the intent id and the leg; the risk guard admits it
//! (counting orders in flight, in memory) and the order is recorded SENDING — one durable
//! insert, which is also the idempotency check and from which the order in flight is rebuilt
//! after a restart; only then does the request leave. An unknown outcome (timeout, 5xx, -1007)
//! is settled by query: adopt the order if the exchange has it, else, once the recvWindow fence
//! has passed, resend it with the same id; until then the intent waits pending while the ones
//! behind it are handled. A redelivered intent finds its record and resumes from it; it never
//! sends a second order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use qt_bus::{Bus, HandlerError};
use qt_events::clock::SharedClock;
use qt_events::ids::{client_order_id, derived_event_id};
use qt_events::{
    AlertRaised, CancelOrder, ClosePosition, Envelope, Event, OpenPosition, OrderAccepted,
    OrderEnded, OrderKind, OrderRejected, PositionSide, ProtectPosition, ReducePosition,
    RejectReason, Severity, Side, SignalRef, Stream,
};
use qt_exchange::{
    AlgoOrderType, ApiCode, ErrorClass, Exchange, ExchangeError, Fence, NewAlgoOrder, NewOrder,
    Orders, Refusal, Settled, check_unknown_algo_order, check_unknown_order,
};
use qt_risk::{InFlight, IntentKind, RiskBook, RiskGuard, RiskIntent};
use qt_store::StoreError;
use rust_decimal::Decimal;
use tokio::sync::Mutex;

use crate::db::{Db, OrderRow, OrderState};
use crate::settings::Settings;

/// The service's name on the bus.
pub const SERVICE: &str = "execution";

/// How many later intents a protect intent looks at for ones that supersede its legs.
const LOOKAHEAD: usize = 1000;

/// An order the order-rate budget cannot take now (see `Execution::budget`).
enum Throttled {
    /// Read the intent again when the budget returns.
    Defer(HandlerError),
    /// Refuse the order `RATE_LIMITED`, with this message.
    Refuse(String),
}

/// A store failure is transient for the handler (the intent stays pending).
pub(crate) fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

/// Everything execution needs, shared by its handlers and background tasks.
#[derive(Debug)]
pub struct Execution<E> {
    pub db: Db,
    pub exchange: E,
    pub bus: Bus,
    pub clock: SharedClock,
    pub guard: RiskGuard,
    /// The risk state; saved with every change. Held while an order is admitted and recorded.
    pub book: Mutex<RiskBook>,
    pub settings: Settings,
    pub recv_window_ms: u64,
    pub resolve_margin_ms: u64,
    leverage: Mutex<HashMap<String, u32>>,
    /// Serializes fill processing (stream, poll and reconciliation).
    pub(crate) fills_lock: Mutex<()>,
    /// Set when the host restarted since execution last ran (see [`host`](crate::host)): this
    /// start's time on the clock and on the exchange's clock.
    host_restart: Option<(i64, i64)>,
    /// Position differences the last reconciliation pass saw but did not act on: symbol →
    /// (exchange amount, recorded amount). See `reconcile`.
    pub(crate) suspects: Mutex<Option<HashMap<String, (Decimal, Decimal)>>>,
    /// What this process knows of the `positions` stream's tail. See `restate_if_lost`.
    pub(crate) positions_tail: Mutex<PositionsTail>,
    /// Woken when a publish finds that Redis lost position facts: the periodic task
    /// reconciles and restates at once instead of at its next tick.
    pub(crate) reconcile_soon: tokio::sync::Notify,
}

/// What execution knows of the tail of the `positions` stream, of which it is the only writer.
#[derive(Debug, Default, Clone)]
pub(crate) struct PositionsTail {
    /// The entry id of the last fact this process published there.
    pub published: Option<String>,
    /// A published entry that a later publish found missing (Redis lost it), until the
    /// restatement that heals it.
    pub lost: Option<String>,
    /// Whether the positions have been restated since the start.
    pub restated: bool,
}

/// The leg name of an entry order.
pub(crate) const ENTRY_LEG: &str = "entry";

/// Puts back into `book` the entry orders in flight that the records hold and the saved book
/// does not: an entry's SENDING record is its only write before the request (the book is saved
/// with the next fill), so a restart in between finds it here.
pub(crate) fn restore_in_flight(book: &mut RiskBook, live: &[OrderRow]) {
    for o in live {
        let remaining = o.quantity - o.filled_qty;
        if o.conditional
            || o.reduce_only
            || o.leg != ENTRY_LEG
            || o.state.is_final()
            || remaining <= Decimal::ZERO
            || book.in_flight().contains_key(&o.intent_id)
        {
            continue;
        }
        book.on_accepted(
            &o.intent_id,
            InFlight {
                symbol: o.symbol.clone(),
                side: o.side,
                remaining_qty: remaining,
                // The price it was sized with until it fills, then its fill average.
                reference_price: o.avg_price,
                reduce_only: false,
            },
        );
    }
}

/// What to place for a plain (non-conditional) order.
#[derive(Debug, Clone)]
struct PlainSpec {
    intent_id: String,
    leg: String,
    symbol: String,
    side: Side,
    kind: OrderKind,
    quantity: Decimal,
    price: Option<Decimal>,
    reduce_only: bool,
    leverage: u32,
    reference_price: Option<Decimal>,
    signal: Option<SignalRef>,
    reason: Option<String>,
    risk: RiskIntent,
}

impl<E: Exchange + Clone + 'static> Execution<E> {
    /// Builds the engine: the risk book is loaded from the database (or starts empty).
    ///
    /// # Errors
    /// A database error.
    pub async fn new(
        db: Db,
        exchange: E,
        bus: Bus,
        clock: SharedClock,
        settings: Settings,
        recv_window_ms: u64,
        resolve_margin_ms: u64,
    ) -> Result<Arc<Self>, StoreError> {
        let now = clock.now_ms();
        let boot = crate::host::boot_id();
        let before = db
            .note_boot(boot.as_deref().unwrap_or(crate::host::UNKNOWN), now)
            .await?;
        let host_restart = crate::host::restarted(before.as_deref(), boot.as_deref()).then(|| {
            tracing::warn!(
                "the host restarted since execution last ran: the orders of intents \
                from before this start are looked up on the exchange before they are sent"
            );
            (now, exchange.server_now_ms())
        });
        let mut book = db.risk_book().await?.unwrap_or_else(|| RiskBook::new(now));
        restore_in_flight(&mut book, &db.live_orders().await?);
        Ok(Arc::new(Self {
            db,
            exchange,
            bus,
            clock,
            guard: RiskGuard::new(settings.limits.clone()),
            book: Mutex::new(book),
            settings,
            recv_window_ms,
            resolve_margin_ms,
            leverage: Mutex::new(HashMap::new()),
            host_restart,
            fills_lock: Mutex::new(()),
            suspects: Mutex::new(None),
            positions_tail: Mutex::new(PositionsTail::default()),
            reconcile_soon: tokio::sync::Notify::new(),
        }))
    }

    /// For an order about to be recorded and sent for the first time: `Some(t)` when a request
    /// for it may have left before a crash of the host that lost its record, i.e. the host
    /// restarted since the last start and the intent is older than this start (the store that
    /// can lose commits is a SQLite file on this host, where every service reads the same
    /// clock). The order is then recorded SENDING with `t`, this start on the exchange's clock,
    /// as its latest possible send time, and looked up on the exchange before it is sent, as
    /// after an unknown outcome (`resume`).
    fn unsure_since(&self, env: &Envelope) -> Option<i64> {
        let (started, server) = self.host_restart?;
        (env.ts < started).then_some(server)
    }

    /// Ends a change of the risk book: saves `next` and queues `events` in the outbox, both in
    /// `tx`, commits, and only then makes `next` the book in memory (`book`, held by the caller
    /// since it cloned it).
    pub(crate) async fn commit_book(
        &self,
        mut tx: crate::db::Tx,
        book: &mut RiskBook,
        next: RiskBook,
        events: &[Envelope],
        now: i64,
    ) -> Result<(), HandlerError> {
        Db::save_book(&mut tx, &next, now)
            .await
            .map_err(transient)?;
        Db::enqueue(&mut tx, events, self.clock.as_ref())
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        *book = next;
        Ok(())
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// An envelope from execution with a deterministic id, caused by `cause` when given.
    pub(crate) fn envelope(&self, event: Event, id: String, cause: Option<&Envelope>) -> Envelope {
        let env = Envelope::new(event, SERVICE, self.clock.as_ref()).with_id(id);
        match cause {
            Some(c) => env.caused_by(c),
            None => env,
        }
    }

    /// An `AlertRaised` with a deterministic id from its rule, key and `discriminator`.
    pub(crate) fn alert(
        &self,
        rule: &str,
        key: &str,
        severity: Severity,
        message: String,
        discriminator: &str,
    ) -> Envelope {
        let id = derived_event_id(&["alert", rule, key, discriminator]);
        self.envelope(
            Event::AlertRaised(AlertRaised {
                rule: rule.to_owned(),
                key: key.to_owned(),
                severity,
                message,
                service: SERVICE.to_owned(),
                details: Default::default(),
            }),
            id,
            None,
        )
    }

    /// Handles one intent; returns what to publish with its acknowledgement.
    ///
    /// # Errors
    /// Transient when the database or the exchange is unreachable (the intent stays pending
    /// and resumes from its records); never permanent for a well-formed intent.
    pub async fn handle_intent(&self, env: &Envelope) -> Result<Vec<Envelope>, HandlerError> {
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
    ) -> Result<Vec<Envelope>, HandlerError> {
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
                    let recorded = self.db.order(&own).await.map_err(transient)?.is_some();
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

    async fn open(&self, env: &Envelope, o: &OpenPosition) -> Result<Vec<Envelope>, HandlerError> {
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

    /// What to do with a new order of `class`, client order id `coid`, that the order-rate
    /// budget cannot take now (`None`: it can, or the order was recorded before and resumes
    /// from its record, budget or not). Waiting for the budget in the handler would hold up
    /// every intent behind this one, protective ones included; so the intent is deferred until
    /// the budget returns (`HandlerError::Later`: the intents behind it go on meanwhile), or,
    /// when by then it would be older than `order_budget_max_wait`, the order is refused
    /// `RATE_LIMITED`.
    async fn budget(
        &self,
        env: &Envelope,
        class: Orders,
        coid: &str,
    ) -> Result<Option<Throttled>, HandlerError> {
        let Some(wait) = self.budget_wait(class) else {
            return Ok(None);
        };
        if self.db.order(coid).await.map_err(transient)?.is_some() {
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
        Ok(Some(Throttled::Defer(HandlerError::Later {
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
    fn budget_wait(&self, class: Orders) -> Option<std::time::Duration> {
        let others = u32::try_from(self.settings.intent_lanes.saturating_sub(1)).unwrap_or(0);
        self.exchange.orders_wait(class, others)
    }

    /// The signed position amount on the exchange (positive long, negative short).
    async fn exchange_position(&self, symbol: &str) -> Result<Decimal, HandlerError> {
        let positions = self
            .exchange
            .positions(Some(symbol))
            .await
            .map_err(transient)?;
        Ok(positions
            .iter()
            .filter(|p| p.symbol == symbol)
            .map(|p| p.position_amt)
            .sum())
    }

    async fn reduce(
        &self,
        env: &Envelope,
        r: &ReducePosition,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let coid = client_order_id(&r.intent_id, "reduce");
        if let Some(row) = self.db.order(&coid).await.map_err(transient)? {
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

    async fn close(
        &self,
        env: &Envelope,
        c: &ClosePosition,
    ) -> Result<Vec<Envelope>, HandlerError> {
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
    ) -> Result<Vec<Envelope>, HandlerError> {
        let coid = client_order_id(intent_id, leg);
        if let Some(row) = self.db.order(&coid).await.map_err(transient)? {
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
    async fn reject_intent(
        &self,
        env: &Envelope,
        intent_id: &str,
        leg: &str,
        symbol: &str,
        reason: RejectReason,
        message: String,
    ) -> Result<Vec<Envelope>, HandlerError> {
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

    /// Records a new order, durably, before anything else is done with it; when its client
    /// order id was recorded before (a redelivered intent), returns that record instead.
    async fn record_new(&self, row: &OrderRow) -> Result<Option<OrderRow>, HandlerError> {
        if self.db.record_order(row).await.map_err(transient)? {
            return Ok(None);
        }
        match self
            .db
            .order(&row.client_order_id)
            .await
            .map_err(transient)?
        {
            Some(known) => Ok(Some(known)),
            None => Err(transient(format!(
                "order {} neither new nor recorded",
                row.client_order_id
            ))),
        }
    }

    async fn place_plain(
        &self,
        env: &Envelope,
        spec: PlainSpec,
    ) -> Result<Vec<Envelope>, HandlerError> {
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
        {
            // Admit and record under the book's lock: concurrent intents cannot pass a limit
            // together, and SENDING is durable before the request leaves. The record is the
            // only write: it is also the idempotency check (an intent seen before finds its
            // record and resumes from it, and the admission made for it here is dropped), and
            // the order in flight it adds to the book is restored from it after a restart (see
            // `restore_in_flight`), so the book is saved with the next fill.
            let mut book = self.book.lock().await;
            let mut next = book.clone();
            if let Some(p) = spec.reference_price {
                next.on_price(&spec.symbol, p);
            }
            let decision = self.guard.admit(&mut next, &spec.risk, now);
            let rejected = if let qt_risk::Decision::Reject(reason, message) = decision {
                row.state = OrderState::Rejected;
                row.reason = Some(crate::db::enum_text(&reason));
                row.message = Some(message);
                true
            } else {
                false
            };
            if let Some(known) = self.record_new(&row).await? {
                drop(book);
                return self.resume(env, known).await;
            }
            if rejected {
                metrics::counter!("execution_intents_rejected_total").increment(1);
                let mut refused = self.rejected_event(env, &row);
                // A daily-loss pause has a known end: the bot holds its entries until then.
                if let Event::OrderRejected(r) = &mut refused.event
                    && r.reason == RejectReason::DailyLossPause
                {
                    r.until_ms = next.paused_until_ms;
                }
                return Ok(vec![refused]);
            }
            *book = next;
        }
        if unsure.is_some() {
            return self.resume(env, row).await;
        }
        self.send_plain(env, row).await
    }

    async fn ensure_leverage(&self, symbol: &str, leverage: u32) {
        let mut known = self.leverage.lock().await;
        if known.get(symbol) == Some(&leverage) {
            return;
        }
        match self.exchange.set_leverage(symbol, leverage).await {
            Ok(_) => {
                known.insert(symbol.to_owned(), leverage);
            }
            Err(e) => tracing::warn!(symbol, leverage, error = %e, "cannot set leverage"),
        }
    }

    fn new_order(row: &OrderRow) -> NewOrder {
        let mut o = match (row.kind, row.price) {
            (OrderKind::Limit, Some(p)) => NewOrder::limit(
                row.symbol.clone(),
                row.side,
                row.quantity,
                p,
                row.client_order_id.clone(),
            ),
            _ => NewOrder::market(
                row.symbol.clone(),
                row.side,
                row.quantity,
                row.client_order_id.clone(),
            ),
        }
        .reduce_only(row.reduce_only);
        if row.avg_price > Decimal::ZERO {
            o = o.with_reference_price(row.avg_price);
        }
        o
    }

    /// Sends a recorded SENDING order; settles an unknown outcome by query (`settle_unknown`).
    async fn send_plain(
        &self,
        env: &Envelope,
        row: OrderRow,
    ) -> Result<Vec<Envelope>, HandlerError> {
        for attempt in 0..self.settings.max_sends.max(1) {
            if attempt > 0 {
                let at = self.exchange.server_now_ms();
                self.db
                    .mark_resent(&row.client_order_id, at)
                    .await
                    .map_err(transient)?;
            }
            metrics::counter!("execution_orders_sent_total").increment(1);
            match self.exchange.new_order(&Self::new_order(&row)).await {
                Ok(o) => return self.acked(env, &row, &o.order_id.to_string()).await,
                Err(e) => match e.class() {
                    ErrorClass::Rejected => return self.exchange_rejected(env, &row, &e).await,
                    ErrorClass::Retryable => return Err(transient(e)),
                    ErrorClass::Unknown => {
                        if let Some(id) = self.settle_unknown(&row, &e).await? {
                            return self.acked(env, &row, &id).await;
                        }
                    }
                },
            }
        }
        Err(HandlerError::Transient(format!(
            "order {} still unknown after {} sends",
            row.client_order_id, self.settings.max_sends
        )))
    }

    /// After a request with an unknown outcome: the exchange id if the order reached the
    /// exchange, `None` once it is proven never to have executed (the caller resends it with
    /// the same id). While that cannot be known yet (the request may still arrive until its
    /// receive window closes) the intent is put off until then (`HandlerError::Later`): its
    /// record stays SENDING, and the consumer handles the intents behind it meanwhile.
    async fn settle_unknown(
        &self,
        row: &OrderRow,
        e: &ExchangeError,
    ) -> Result<Option<String>, HandlerError> {
        tracing::warn!(client_order_id = %row.client_order_id, error = %e,
            "order outcome unknown; settling it by query");
        let fence = e.fence().unwrap_or(Fence {
            timestamp_ms: self.exchange.server_now_ms(),
            recv_window_ms: self.recv_window_ms,
        });
        self.settle(row, fence).await
    }

    /// One look at an order whose request may or may not have reached the exchange (see
    /// [`settle_unknown`](Self::settle_unknown)).
    async fn settle(&self, row: &OrderRow, fence: Fence) -> Result<Option<String>, HandlerError> {
        let coid = &row.client_order_id;
        let margin = self.resolve_margin_ms;
        let settled = if row.conditional {
            check_unknown_algo_order(&self.exchange, coid, fence, margin)
                .await
                .map(|s| s.map(|a| a.algo_id.to_string()))
        } else {
            check_unknown_order(&self.exchange, &row.symbol, coid, fence, margin)
                .await
                .map(|s| s.map(|o| o.order_id.to_string()))
        }
        .map_err(transient)?;
        match settled {
            Settled::Found(id) => Ok(Some(id)),
            Settled::NeverExecuted => Ok(None),
            // Asking again before the window closes cannot settle it: the intent is read
            // again then, and the ones behind it are handled meanwhile (no retries in place,
            // which would hold them up, after a restart most of all).
            Settled::Undecided { until_ms } => {
                let window = i64::try_from(self.recv_window_ms)
                    .unwrap_or(i64::MAX)
                    .max(50);
                let wait_ms = until_ms
                    .saturating_sub(self.exchange.server_now_ms())
                    .clamp(50, window);
                Err(HandlerError::Later {
                    reason: format!(
                        "order {coid} not on the exchange yet; its request may still arrive \
                         until {until_ms}"
                    ),
                    retry_in: std::time::Duration::from_millis(
                        u64::try_from(wait_ms).unwrap_or(50),
                    ),
                })
            }
        }
    }

    /// Resumes an intent whose order is already recorded (a redelivery, or a retry).
    async fn resume(&self, env: &Envelope, row: OrderRow) -> Result<Vec<Envelope>, HandlerError> {
        match row.state {
            OrderState::Sending => {
                // The request may have left before a crash (or its answer was lost): settle
                // it by query.
                let fence = Fence {
                    timestamp_ms: row.sent_at,
                    recv_window_ms: self.recv_window_ms,
                };
                match self.settle(&row, fence).await? {
                    Some(id) => {
                        let mut out = self.acked(env, &row, &id).await?;
                        if row.conditional && self.replaced_since(&row).await? {
                            out.extend(self.cancel_row(Some(env), &row, "replaced").await?);
                        }
                        Ok(out)
                    }
                    None => {
                        // Never executed: sent again, within the budget like a first send.
                        let class = if row.conditional {
                            Orders::of_algo(&Self::new_algo(&row))
                        } else {
                            Orders::of_order(&Self::new_order(&row))
                        };
                        if let Some(wait) = self.budget_wait(class) {
                            metrics::counter!("execution_intents_deferred_total").increment(1);
                            return Err(HandlerError::Later {
                                reason: format!(
                                    "order {} is to be sent again; the order-rate budget for \
                                     {class:?} orders is used up for another {} ms",
                                    row.client_order_id,
                                    wait.as_millis()
                                ),
                                retry_in: wait,
                            });
                        }
                        let at = self.exchange.server_now_ms();
                        self.db
                            .mark_resent(&row.client_order_id, at)
                            .await
                            .map_err(transient)?;
                        let mut row = row;
                        row.sent_at = at;
                        if row.conditional {
                            self.send_algo(env, row).await
                        } else {
                            self.send_plain(env, row).await
                        }
                    }
                }
            }
            OrderState::Rejected => Ok(vec![self.rejected_event(env, &row)]),
            _ => Ok(vec![self.accepted_event(Some(env), &row)]),
        }
    }

    async fn acked(
        &self,
        env: &Envelope,
        row: &OrderRow,
        exchange_id: &str,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let mut row = row.clone();
        row.exchange_order_id = Some(exchange_id.to_owned());
        let accepted = self.accepted_event(Some(env), &row);
        // Published before the record leaves SENDING: a fill processed after that point can
        // never reach `qt:orders` ahead of the acceptance (one processed before it carries the
        // acceptance itself). The same event, same id, also goes out with the intent's ack.
        self.publish_now(std::slice::from_ref(&accepted)).await?;
        self.db
            .mark_acked(&row.client_order_id, exchange_id, self.now())
            .await
            .map_err(transient)?;
        Ok(vec![accepted])
    }

    async fn exchange_rejected(
        &self,
        env: &Envelope,
        row: &OrderRow,
        e: &ExchangeError,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let reason = reject_reason(e);
        let message = e.to_string();
        let now = self.now();
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        next.on_ended(&row.intent_id);
        let mut tx = self.db.begin().await.map_err(transient)?;
        Db::set_state(
            &mut tx,
            &row.client_order_id,
            OrderState::Rejected,
            Some((reason, &message, e.code())),
            now,
        )
        .await
        .map_err(transient)?;
        self.commit_book(tx, &mut book, next, &[], now).await?;
        let mut row = row.clone();
        row.state = OrderState::Rejected;
        row.reason = Some(crate::db::enum_text(&reason));
        row.message = Some(message);
        row.exchange_code = e.code();
        Ok(vec![self.rejected_event(env, &row)])
    }

    pub(crate) fn accepted_event(&self, cause: Option<&Envelope>, row: &OrderRow) -> Envelope {
        self.envelope(
            Event::OrderAccepted(OrderAccepted {
                intent_id: row.intent_id.clone(),
                client_order_id: row.client_order_id.clone(),
                exchange_order_id: row.exchange_order_id.clone(),
                symbol: row.symbol.clone(),
                side: row.side,
                kind: row.kind,
                quantity: row.quantity,
                price: row.price,
                trigger_price: row.trigger_price,
                reduce_only: row.reduce_only || row.close_position,
            }),
            derived_event_id(&[&row.client_order_id, "accepted"]),
            cause,
        )
    }

    /// A SENDING order that never executed and that nobody will resend: REJECTED, its
    /// in-flight reservation released.
    pub(crate) async fn record_abandoned(&self, row: &OrderRow) -> Result<(), HandlerError> {
        let now = self.now();
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        next.on_ended(&row.intent_id);
        let mut tx = self.db.begin().await.map_err(transient)?;
        Db::set_state(
            &mut tx,
            &row.client_order_id,
            OrderState::Rejected,
            Some((
                RejectReason::Other,
                "abandoned: never reached the exchange",
                None,
            )),
            now,
        )
        .await
        .map_err(transient)?;
        self.commit_book(tx, &mut book, next, &[], now).await?;
        Ok(())
    }

    pub(crate) fn rejected_event(&self, env: &Envelope, row: &OrderRow) -> Envelope {
        let reason = row
            .reason
            .as_deref()
            .and_then(|r| serde_json::from_value(serde_json::Value::String(r.to_owned())).ok())
            .unwrap_or(RejectReason::Other);
        self.envelope(
            Event::OrderRejected(OrderRejected {
                intent_id: row.intent_id.clone(),
                client_order_id: Some(row.client_order_id.clone()),
                symbol: row.symbol.clone(),
                reason,
                message: row.message.clone().unwrap_or_default(),
                exchange_code: row.exchange_code,
                until_ms: None,
            }),
            derived_event_id(&[&row.client_order_id, "rejected"]),
            Some(env),
        )
    }

    pub(crate) fn ended_event(
        &self,
        cause: Option<&Envelope>,
        row: &OrderRow,
        expired: bool,
        reason: &str,
    ) -> Envelope {
        let ended = OrderEnded {
            intent_id: row.intent_id.clone(),
            client_order_id: row.client_order_id.clone(),
            exchange_order_id: row.exchange_order_id.clone(),
            symbol: row.symbol.clone(),
            filled_qty: row.filled_qty,
            reason: reason.to_owned(),
        };
        if expired {
            self.envelope(
                Event::OrderExpired(ended),
                derived_event_id(&[&row.client_order_id, "expired"]),
                cause,
            )
        } else {
            self.envelope(
                Event::OrderCancelled(ended),
                derived_event_id(&[&row.client_order_id, "cancelled"]),
                cause,
            )
        }
    }

    // ---- conditional orders -------------------------------------------------------------

    /// The legs that a `ProtectPosition` of `symbol` after `entry_id` on `qt:intents` names.
    ///
    /// A protect intent states the whole wanted state of the legs it names, so an earlier one's
    /// legs would only be placed to be replaced a moment later; and when the later intent was
    /// handled first (the earlier one failed transiently and came back), placing them would
    /// replace newer legs with older ones. A burst of position changes (adds filling one after
    /// another) thus costs one placement per leg, not one per change.
    pub(crate) async fn superseded_legs(
        &self,
        entry_id: &str,
        symbol: &str,
    ) -> Result<HashSet<String>, HandlerError> {
        let key = self.bus.key(Stream::Intents);
        let later = self
            .bus
            .range(&key, &format!("({entry_id}"), "+", LOOKAHEAD)
            .await
            .map_err(transient)?;
        let mut legs = HashSet::new();
        for entry in &later {
            let field = |name: &[u8]| {
                entry
                    .field_pairs()
                    .find_map(|(k, v)| (k == name).then_some(v))
            };
            if field(b"type") != Some(b"ProtectPosition".as_slice())
                || field(b"sym") != Some(symbol.as_bytes())
            {
                continue;
            }
            // An entry that does not decode is the consumer's to dead-letter, not a protect.
            if let Ok(Envelope {
                event: Event::ProtectPosition(p),
                ..
            }) = Envelope::from_fields(entry.field_pairs())
            {
                legs.extend(p.leg_names().map(str::to_owned));
            }
        }
        Ok(legs)
    }

    /// Whether `symbol` has a stop placed (or being placed) by a protect intent.
    async fn has_live_stop(&self, symbol: &str) -> Result<bool, HandlerError> {
        Ok(self
            .db
            .live_orders()
            .await
            .map_err(transient)?
            .iter()
            .any(|o| o.conditional && o.symbol == symbol && o.leg == ProtectPosition::STOP_LEG))
    }

    /// Places the legs of a protect intent, except those in `superseded` (recorded and
    /// answered as refused with [`RejectReason::Superseded`]).
    async fn protect(
        &self,
        env: &Envelope,
        p: &ProtectPosition,
        superseded: &HashSet<String>,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let exit = p.position_side.exit_side();
        let mut legs: Vec<OrderRow> = Vec::new();
        let now = self.now();
        let base = |leg: &str, kind: OrderKind, qty: Decimal, trigger: Decimal| OrderRow {
            client_order_id: client_order_id(&p.intent_id, leg),
            intent_id: p.intent_id.clone(),
            leg: leg.to_owned(),
            symbol: p.symbol.clone(),
            side: exit,
            kind,
            conditional: true,
            quantity: qty,
            price: None,
            trigger_price: Some(trigger),
            reduce_only: true,
            close_position: false,
            state: OrderState::Sending,
            exchange_order_id: None,
            filled_qty: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            reason: None,
            message: None,
            exchange_code: None,
            leverage: 0,
            signal: None,
            sent_at: 0,
            updated_at: now,
        };
        if let Some(stop) = &p.stop {
            let mut r = base(
                ProtectPosition::STOP_LEG,
                OrderKind::StopMarket,
                Decimal::ZERO,
                stop.trigger_price,
            );
            r.reduce_only = false;
            r.close_position = true;
            // working type is carried in `message` for the request builder.
            r.message = Some(crate::db::enum_text(&stop.working_type));
            legs.push(r);
        }
        for tp in &p.take_profits {
            legs.push(base(
                &tp.leg,
                OrderKind::TakeProfitMarket,
                tp.quantity,
                tp.trigger_price,
            ));
        }
        if let Some(t) = &p.trailing {
            let mut r = base(
                ProtectPosition::TRAILING_LEG,
                OrderKind::TrailingStopMarket,
                t.quantity,
                t.activation_price,
            );
            r.price = Some(t.callback_rate);
            legs.push(r);
        }
        let mut out = Vec::new();
        let unsure = self.unsure_since(env);
        for leg in legs {
            // The stop goes first and may use the whole budget; a take-profit the budget
            // cannot take now waits for it (what this intent did so far is published now, and
            // the intent is read again later) or, past the wait allowed, is refused.
            let class = Orders::of_algo(&Self::new_algo(&leg));
            let refusal = if superseded.contains(&leg.leg) {
                Some((
                    RejectReason::Superseded,
                    format!("a later protect intent of {} replaces this leg", p.symbol),
                ))
            } else if class == Orders::Protective {
                None
            } else {
                match self.budget(env, class, &leg.client_order_id).await? {
                    None => None,
                    Some(Throttled::Refuse(message)) => Some((RejectReason::RateLimited, message)),
                    Some(Throttled::Defer(later)) => {
                        if !out.is_empty() {
                            self.bus.publish_all(&out).await.map_err(transient)?;
                        }
                        return Err(later);
                    }
                }
            };
            if let Some((reason, message)) = refusal {
                out.extend(
                    self.reject_intent(env, &p.intent_id, &leg.leg, &p.symbol, reason, message)
                        .await?,
                );
                continue;
            }
            let mut leg = leg;
            leg.sent_at = unsure.unwrap_or_else(|| self.exchange.server_now_ms());
            let is_stop = leg.leg == ProtectPosition::STOP_LEG;
            let placed = match self.record_new(&leg).await? {
                Some(existing) => self.resume(env, existing).await?,
                None => {
                    let name = leg.leg.clone();
                    let coid = leg.client_order_id.clone();
                    let placed = if unsure.is_some() {
                        self.resume(env, leg).await?
                    } else {
                        self.send_algo(env, leg).await?
                    };
                    if placed
                        .iter()
                        .any(|e| matches!(e.event, Event::OrderAccepted(_)))
                    {
                        out.extend(
                            self.replace_older_legs(env, &p.symbol, &name, &coid)
                                .await?,
                        );
                    }
                    placed
                }
            };
            let through = is_stop
                && placed.iter().any(|e| {
                    matches!(&e.event, Event::OrderRejected(r)
                        if r.reason == RejectReason::WouldImmediatelyTrigger)
                });
            out.extend(placed);
            if through {
                // The price is already through the stop: the position closes at market now, in
                // this intent (a redelivery finds the close by its client order id), rather
                // than after a round trip through exit-brain. The other legs have nothing left
                // to protect.
                out.extend(
                    self.close_symbol(
                        env,
                        &p.intent_id,
                        ProtectPosition::STOP_CLOSE_LEG,
                        &p.symbol,
                        "stop",
                    )
                    .await?,
                );
                break;
            }
        }
        Ok(out)
    }

    /// Cancels the live conditional orders of the same leg placed by earlier intents.
    async fn replace_older_legs(
        &self,
        env: &Envelope,
        symbol: &str,
        leg: &str,
        keep: &str,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let mut out = Vec::new();
        for old in self.db.live_orders().await.map_err(transient)? {
            if old.conditional
                && old.symbol == symbol
                && old.leg == leg
                && old.client_order_id != keep
                && old.state != OrderState::Sending
            {
                out.extend(self.cancel_row(Some(env), &old, "replaced").await?);
            }
        }
        Ok(out)
    }

    /// Whether a newer conditional order of the same symbol and leg has been placed since `row`
    /// was sent: an order whose outcome was settled late must then go (a later protect intent
    /// could not cancel it while it was unknown).
    async fn replaced_since(&self, row: &OrderRow) -> Result<bool, HandlerError> {
        Ok(self
            .db
            .live_orders()
            .await
            .map_err(transient)?
            .iter()
            .any(|o| {
                o.conditional
                    && o.symbol == row.symbol
                    && o.leg == row.leg
                    && o.client_order_id != row.client_order_id
                    && o.state != OrderState::Sending
                    && o.sent_at > row.sent_at
            }))
    }

    fn new_algo(row: &OrderRow) -> NewAlgoOrder {
        let trigger = row.trigger_price.unwrap_or_default();
        let mut a = NewAlgoOrder::stop_close_position(
            row.symbol.clone(),
            row.side,
            trigger,
            row.client_order_id.clone(),
        );
        if let Some(w) = row
            .message
            .as_deref()
            .and_then(|m| serde_json::from_value(serde_json::Value::String(m.to_owned())).ok())
        {
            a.working_type = w;
        }
        match row.kind {
            OrderKind::TakeProfitMarket => {
                a.order_type = AlgoOrderType::TakeProfitMarket;
                a.close_position = false;
                a.reduce_only = true;
                a.quantity = Some(row.quantity);
            }
            OrderKind::TrailingStopMarket => {
                a.order_type = AlgoOrderType::TrailingStopMarket;
                a.close_position = false;
                a.reduce_only = true;
                a.quantity = Some(row.quantity);
                a.trigger_price = None;
                a.activate_price = row.trigger_price;
                a.callback_rate = row.price;
            }
            _ => {}
        }
        a
    }

    async fn send_algo(
        &self,
        env: &Envelope,
        row: OrderRow,
    ) -> Result<Vec<Envelope>, HandlerError> {
        for attempt in 0..self.settings.max_sends.max(1) {
            if attempt > 0 {
                let at = self.exchange.server_now_ms();
                self.db
                    .mark_resent(&row.client_order_id, at)
                    .await
                    .map_err(transient)?;
            }
            match self.exchange.new_algo_order(&Self::new_algo(&row)).await {
                Ok(a) => return self.acked(env, &row, &a.algo_id.to_string()).await,
                Err(e) => match e.class() {
                    ErrorClass::Rejected => return self.exchange_rejected(env, &row, &e).await,
                    ErrorClass::Retryable => return Err(transient(e)),
                    ErrorClass::Unknown => {
                        if let Some(id) = self.settle_unknown(&row, &e).await? {
                            return self.acked(env, &row, &id).await;
                        }
                    }
                },
            }
        }
        Err(HandlerError::Transient(format!(
            "conditional order {} still unknown after {} sends",
            row.client_order_id, self.settings.max_sends
        )))
    }

    // ---- cancels ------------------------------------------------------------------------

    async fn cancel(&self, env: &Envelope, c: &CancelOrder) -> Result<Vec<Envelope>, HandlerError> {
        match self.db.order(&c.client_order_id).await.map_err(transient)? {
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
                    Err(e) => Err(transient(e)),
                }
            }
        }
    }

    /// Cancels a recorded order on the exchange and records the end.
    pub(crate) async fn cancel_row(
        &self,
        cause: Option<&Envelope>,
        row: &OrderRow,
        reason: &str,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let r = if row.conditional {
            self.exchange.cancel_algo_order(&row.client_order_id).await
        } else {
            self.exchange
                .cancel_order(&row.symbol, &row.client_order_id)
                .await
                .map(|_| ())
        };
        match r {
            Ok(()) => {}
            // Unknown to the exchange (already ended): the stream or reconciliation tells how.
            Err(e) if e.class() == ErrorClass::Rejected => {
                tracing::info!(client_order_id = %row.client_order_id, error = %e,
                    "cancel refused; the order had already ended");
                return Ok(Vec::new());
            }
            Err(e) => return Err(transient(e)),
        }
        self.record_ended(cause, row, false, reason).await
    }

    /// Records that an order ended without further fills and returns its event.
    pub(crate) async fn record_ended(
        &self,
        cause: Option<&Envelope>,
        row: &OrderRow,
        expired: bool,
        reason: &str,
    ) -> Result<Vec<Envelope>, HandlerError> {
        let now = self.now();
        let state = if expired {
            OrderState::Expired
        } else {
            OrderState::Cancelled
        };
        let mut book = self.book.lock().await;
        let mut next = book.clone();
        next.on_ended(&row.intent_id);
        let mut tx = self.db.begin().await.map_err(transient)?;
        Db::set_state(&mut tx, &row.client_order_id, state, None, now)
            .await
            .map_err(transient)?;
        self.commit_book(tx, &mut book, next, &[], now).await?;
        Ok(vec![self.ended_event(cause, row, expired, reason)])
    }

    /// The position side of a signed amount.
    pub(crate) fn side_of(amt: Decimal) -> PositionSide {
        if amt >= Decimal::ZERO {
            PositionSide::Long
        } else {
            PositionSide::Short
        }
    }
}

/// The wire reason of an exchange refusal.
#[must_use]
pub fn reject_reason(e: &ExchangeError) -> RejectReason {
    match e {
        ExchangeError::Refused(r) => match r {
            Refusal::MinNotional { .. } => RejectReason::MinNotional,
            Refusal::QtyBelowMin { .. }
            | Refusal::QtyAboveMax { .. }
            | Refusal::PriceOutOfRange { .. } => RejectReason::ExchangeFilter,
            Refusal::InvalidClientOrderId(_) | Refusal::InvalidOrder(_) => {
                RejectReason::InvalidIntent
            }
            Refusal::UnknownSymbol(_) => RejectReason::ExchangeFilter,
            Refusal::MissingCredentials => RejectReason::ExchangeError,
        },
        _ => match e.api_code() {
            Some(ApiCode::MarginInsufficient | ApiCode::BalanceInsufficient) => {
                RejectReason::MarginInsufficient
            }
            Some(ApiCode::BadPrecision | ApiCode::FilterFailure) => RejectReason::Precision,
            Some(ApiCode::MinNotional) => RejectReason::MinNotional,
            Some(ApiCode::ReduceOnlyRejected) => RejectReason::ReduceOnlyRejected,
            Some(ApiCode::WouldImmediatelyTrigger) => RejectReason::WouldImmediatelyTrigger,
            _ => RejectReason::ExchangeError,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> ExchangeError {
        ExchangeError::Api {
            status,
            code,
            msg: "x".into(),
            fence: None,
        }
    }

    #[test]
    fn exchange_refusals_map_to_wire_reason_codes() {
        assert_eq!(
            reject_reason(&api(400, -2019)),
            RejectReason::MarginInsufficient
        );
        assert_eq!(reject_reason(&api(400, -1111)), RejectReason::Precision);
        assert_eq!(reject_reason(&api(400, -4164)), RejectReason::MinNotional);
        assert_eq!(
            reject_reason(&api(400, -2022)),
            RejectReason::ReduceOnlyRejected
        );
        assert_eq!(
            reject_reason(&api(400, -2021)),
            RejectReason::WouldImmediatelyTrigger
        );
        assert_eq!(reject_reason(&api(400, -9999)), RejectReason::ExchangeError);
        let local = ExchangeError::Refused(Refusal::MinNotional {
            notional: "5".into(),
            min: "100".into(),
        });
        assert_eq!(reject_reason(&local), RejectReason::MinNotional);
        let unknown = ExchangeError::Refused(Refusal::UnknownSymbol("XUSDT".into()));
        assert_eq!(reject_reason(&unknown), RejectReason::ExchangeFilter);
    }

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
            assert_eq!(crate::db::OrderState::parse_text(s.as_str()), Some(s));
        }
        assert!(OrderState::Filled.is_final() && OrderState::Rejected.is_final());
        assert!(!OrderState::Sending.is_final() && !OrderState::Triggered.is_final());
    }
}
