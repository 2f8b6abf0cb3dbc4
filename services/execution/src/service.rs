//! The service's state ([`Execution`]): the database, the exchange client, the bus, the clock,
//! the risk guard and the risk book, shared by the intent lanes, the user data stream and the
//! periodic passes; and the helpers they share — the one way to change the risk book
//! ([`Execution::commit_book`]), envelopes and alerts with deterministic ids, and the orders
//! in flight rebuilt from the records after a restart.

use std::collections::HashMap;
use std::sync::Arc;

use qt_bus::Bus;
use qt_events::clock::SharedClock;
use qt_events::ids::derived_event_id;
use qt_events::{AlertRaised, Envelope, Event, PositionSide, Severity};
use qt_exchange::Exchange;
use qt_risk::{InFlight, RiskBook, RiskGuard};
use qt_store::StoreError;
use rust_decimal::Decimal;
use tokio::sync::Mutex;

use crate::db::Db;
use crate::error::ExecError;
use crate::order::{Leg, OrderRecord};
use crate::settings::Settings;

/// The service's name on the bus.
pub const SERVICE: &str = "execution";

/// Everything execution needs, shared by its handlers and background tasks.
#[derive(Debug)]
pub struct Execution<E> {
    pub db: Db,
    pub exchange: E,
    pub bus: Bus,
    pub clock: SharedClock,
    pub guard: RiskGuard,
    /// The risk state; saved with every change. Held while an order is admitted (not while it
    /// is recorded or sent: see `place_plain`).
    pub book: Mutex<RiskBook>,
    pub settings: Settings,
    pub recv_window_ms: u64,
    pub resolve_margin_ms: u64,
    /// The leverage known to be set per symbol (see `ensure_leverage`).
    pub(crate) leverage: std::sync::Mutex<HashMap<String, u32>>,
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
    /// The `traceparent` of each intent handled by this process (intent id → header), so the
    /// fills and position facts of its orders, which arrive without a cause, continue its
    /// trace. Tracing only: lost on restart, and forgotten wholesale past `TRACES_KEPT`.
    pub(crate) intent_traces: std::sync::Mutex<HashMap<String, String>>,
}

/// How many intents' traces [`Execution::intent_traces`] keeps before it starts again.
const TRACES_KEPT: usize = 4096;

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

/// Puts back into `book` the entry orders in flight that the records hold and the saved book
/// does not: an entry's SENDING record is its only write before the request (the book is saved
/// with the next fill), so a restart in between finds it here.
pub(crate) fn restore_in_flight(book: &mut RiskBook, live: &[OrderRecord]) {
    for o in live {
        let Some(plain) = o.spec.plain() else {
            continue;
        };
        let remaining = plain.quantity - o.filled_qty;
        if plain.reduce_only
            || o.leg != Leg::Entry
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
                reference_price: o.price_in_flight(),
                reduce_only: false,
            },
        );
    }
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
            leverage: std::sync::Mutex::new(HashMap::new()),
            host_restart,
            fills_lock: Mutex::new(()),
            suspects: Mutex::new(None),
            positions_tail: Mutex::new(PositionsTail::default()),
            reconcile_soon: tokio::sync::Notify::new(),
            intent_traces: std::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// For an order about to be recorded and sent for the first time: `Some(t)` when a request
    /// for it may have left before a crash of the host that lost its record, i.e. the host
    /// restarted since the last start and the intent is older than this start (the store that
    /// can lose commits is a SQLite file on this host, where every service reads the same
    /// clock). The order is then recorded SENDING with `t`, this start on the exchange's clock,
    /// as its latest possible send time, and looked up on the exchange before it is sent, as
    /// after an unknown outcome (`resume`).
    pub(crate) fn unsure_since(&self, env: &Envelope) -> Option<i64> {
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
    ) -> Result<(), ExecError> {
        Db::save_book(&mut tx, &next, now).await?;
        Db::enqueue(&mut tx, events, self.clock.as_ref()).await?;
        tx.commit().await?;
        *book = next;
        Ok(())
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Keeps the trace of an intent being handled (when it carries one).
    pub(crate) fn remember_trace(&self, intent_id: &str, traceparent: Option<&str>) {
        let Some(tp) = traceparent else { return };
        let mut traces = self
            .intent_traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if traces.len() >= TRACES_KEPT && !traces.contains_key(intent_id) {
            traces.clear();
        }
        traces.insert(intent_id.to_owned(), tp.to_owned());
    }

    /// Gives the events without a trace the trace of `intent_id`, when this process knows it.
    pub(crate) fn continue_trace(&self, intent_id: Option<&str>, events: &mut [Envelope]) {
        let Some(id) = intent_id else { return };
        let tp = self
            .intent_traces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(tp) = tp {
            for e in events.iter_mut().filter(|e| e.traceparent.is_none()) {
                e.traceparent = Some(tp.clone());
            }
        }
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

    /// The signed position amount on the exchange (positive long, negative short).
    pub(crate) async fn exchange_position(&self, symbol: &str) -> Result<Decimal, ExecError> {
        let positions = self.exchange.positions(Some(symbol)).await?;
        Ok(positions
            .iter()
            .filter(|p| p.symbol == symbol)
            .map(|p| p.position_amt)
            .sum())
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
