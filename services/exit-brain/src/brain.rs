//! [`Brain`]: exit-brain's reaction to every event, over a [`PlanStore`].
//!
//! Each handled event becomes one atomic [`Commit`]: the plans it changed, the profile it taught,
//! the outcome it recorded, and the intents it produced, recorded under the event's id. A
//! redelivered event finds that record and gets the very same intents back (same ids), so a crash
//! between the database commit and the Redis acknowledgement never loses an intent and never
//! makes a second one. Intent ids are derived from the position id and the plan revision.
//!
//! State in memory is only replaced after its commit succeeded, so a failed commit leaves the
//! brain as it was and the redelivery starts from the same state.

use std::collections::{BTreeMap, HashMap};

use qt_events::clock::SharedClock;
use qt_events::ids::{client_order_id, derived_event_id};
use qt_events::{
    AlertRaised, CancelOrder, ClosePosition, Decimal, Envelope, Event, OrderAccepted, OrderFill,
    OrderKind, OrderRejected, PositionChanged, PositionClosed, PositionOpened, PositionSide,
    ProtectPosition, RejectReason, Severity,
};
use qt_exits::{EntrySpec, ExitAction, ExitConfig, ExitPlan, SymbolProfile};
use qt_risk::SymbolFilters;

use crate::store::{Commit, OutcomeRecord, PlanStore, StoreError, Tracked};
use crate::volatility::Volatility;

/// The `src` of everything exit-brain publishes.
pub const SRC: &str = "exit-brain";
/// The leg name execution derives a stop's client order id from (the protocol's).
pub const STOP_LEG: &str = ProtectPosition::STOP_LEG;
/// Stop intents remembered per position (older ones can no longer be confirmed).
const KEEP_STOP_INTENTS: usize = 64;

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event cannot be turned into a plan (e.g. a zero entry price): never retryable.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl BrainError {
    pub fn is_retryable(&self) -> bool {
        match self {
            BrainError::Store(e) => e.is_retryable(),
            BrainError::Invalid(_) => false,
        }
    }
}

/// How plans are made and watched.
#[derive(Debug, Clone)]
pub struct BrainConfig {
    pub exits: ExitConfig,
    /// The account is in hedge mode (`QT_POSITION_MODE=hedge`): a symbol holds a LONG and a
    /// SHORT position apart, each with its own plan, stop and ladder. One-way (false): one
    /// position per symbol, and a new one replaces any plan of the symbol.
    pub hedge: bool,
    /// Time allowed for a stop to be confirmed, ms.
    pub watchdog_ms: i64,
    pub volatility_interval: String,
    pub volatility_window: usize,
}

/// Where a position lives on the exchange: its symbol and, in hedge mode, its side (`None`:
/// the symbol's one position of one-way mode, Binance's `positionSide=BOTH`).
pub type Slot = (String, Option<PositionSide>);

/// What the exchange says about the symbols that have a plan (see [`crate::reconcile`]).
#[derive(Debug, Clone, Default)]
pub struct ExchangeView {
    /// Signed position amount per slot (absent: flat).
    pub positions: HashMap<Slot, Decimal>,
    /// Client algo ids of every open conditional order.
    pub open_algo_ids: Vec<String>,
    /// Slots with an open stop-market order that reduces or closes their position.
    pub slots_with_stop: Vec<Slot>,
}

/// The exit state of every open position and how it reacts to events.
#[derive(Debug)]
pub struct Brain<S> {
    store: S,
    clock: SharedClock,
    cfg: BrainConfig,
    plans: HashMap<String, Tracked>,
    /// The plans of each symbol by the side of their slot (one-way mode: one, side `None`;
    /// hedge mode: up to two), looked up by `&str` on every mark.
    by_symbol: HashMap<String, Vec<(Option<PositionSide>, String)>>,
    by_intent: HashMap<String, String>,
    by_tp_order: HashMap<String, String>,
    profiles: HashMap<String, SymbolProfile>,
    filters: HashMap<String, SymbolFilters>,
    vol: Volatility,
}

fn zero_filters() -> SymbolFilters {
    SymbolFilters::NONE
}

impl<S: PlanStore> Brain<S> {
    /// Loads every plan and profile from `store`.
    pub async fn load(store: S, clock: SharedClock, cfg: BrainConfig) -> Result<Self, BrainError> {
        cfg.exits
            .validate()
            .map_err(|e| BrainError::Invalid(e.to_string()))?;
        let snap = store.load().await?;
        let mut b = Self {
            store,
            clock,
            vol: Volatility::new(&cfg.volatility_interval, cfg.volatility_window),
            cfg,
            plans: HashMap::new(),
            by_symbol: HashMap::new(),
            by_intent: HashMap::new(),
            by_tp_order: HashMap::new(),
            profiles: snap.profiles,
            filters: HashMap::new(),
        };
        for t in snap.plans {
            b.index(&t);
            b.plans.insert(t.position_id.clone(), t);
        }
        Ok(b)
    }

    /// The symbol's exchange filters, used to round the levels of new plans.
    pub fn set_filters(&mut self, symbol: &str, f: SymbolFilters) {
        self.filters.insert(symbol.to_owned(), f);
    }

    pub fn plans(&self) -> impl Iterator<Item = &Tracked> {
        self.plans.values()
    }

    pub fn plan(&self, position_id: &str) -> Option<&Tracked> {
        self.plans.get(position_id)
    }

    pub fn profile(&self, symbol: &str) -> SymbolProfile {
        self.profiles.get(symbol).cloned().unwrap_or_default()
    }

    /// True when `symbol` has no volatility estimate yet (after a start, before a day of
    /// candles): the caller may [`warm`](Self::warm) it from the exchange's klines.
    pub fn needs_history(&self, symbol: &str) -> bool {
        self.vol.of(symbol).is_nan()
    }

    /// The interval and the number of closed candles a full volatility window takes.
    pub fn history_wanted(&self) -> (&str, usize) {
        (self.vol.interval(), self.vol.window())
    }

    /// Feeds closed candles (`open_time`, `close`), oldest first, to the volatility estimate.
    pub fn warm(&mut self, symbol: &str, closes: &[(i64, Decimal)]) {
        for (t, c) in closes {
            self.vol.on_close(symbol, *t, *c);
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The side of the slot of a position on `side`: it counts in hedge mode only.
    fn slot_side(&self, side: PositionSide) -> Option<PositionSide> {
        self.cfg.hedge.then_some(side)
    }

    /// The slot of a plan's position.
    fn slot(&self, t: &Tracked) -> Slot {
        (t.symbol.clone(), self.slot_side(t.side))
    }

    /// The plans of `symbol`'s positions with their slot's side.
    fn symbol_plans(&self, symbol: &str) -> &[(Option<PositionSide>, String)] {
        self.by_symbol.get(symbol).map_or(&[], Vec::as_slice)
    }

    /// The plan in the slot of a position of `symbol` on `side`.
    fn slot_plan(&self, symbol: &str, side: PositionSide) -> Option<&String> {
        let side = self.slot_side(side);
        self.symbol_plans(symbol)
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, p)| p)
    }

    fn index(&mut self, t: &Tracked) {
        let side = self.slot_side(t.side);
        let plans = self.by_symbol.entry(t.symbol.clone()).or_default();
        match plans.iter_mut().find(|(s, _)| *s == side) {
            Some(slot) => slot.1.clone_from(&t.position_id),
            None => plans.push((side, t.position_id.clone())),
        }
        for i in &t.stop_intents {
            self.by_intent.insert(i.clone(), t.position_id.clone());
        }
        for coid in t.tp_orders.keys() {
            self.by_tp_order.insert(coid.clone(), t.position_id.clone());
        }
    }

    fn unindex(&mut self, t: &Tracked) {
        let side = self.slot_side(t.side);
        if let Some(plans) = self.by_symbol.get_mut(&t.symbol) {
            plans.retain(|(s, p)| !(*s == side && *p == t.position_id));
            if plans.is_empty() {
                self.by_symbol.remove(&t.symbol);
            }
        }
        for i in &t.stop_intents {
            self.by_intent.remove(i);
        }
        for coid in t.tp_orders.keys() {
            self.by_tp_order.remove(coid);
        }
    }

    /// Makes `commit` durable, then the new state current.
    pub async fn apply(&mut self, commit: Commit) -> Result<Vec<Envelope>, BrainError> {
        if commit.is_empty() && commit.event_id.is_none() {
            return Ok(Vec::new());
        }
        self.store.commit(commit.clone()).await?;
        for t in commit.upsert {
            if let Some(old) = self.plans.remove(&t.position_id) {
                self.unindex(&old);
            }
            self.index(&t);
            self.plans.insert(t.position_id.clone(), t);
        }
        for id in &commit.delete {
            if let Some(old) = self.plans.remove(id) {
                self.unindex(&old);
            }
        }
        for (s, p) in commit.profiles {
            self.profiles.insert(s, p);
        }
        Ok(commit.outputs)
    }

    fn envelope(&self, event: Event, id: String, cause: Option<&Envelope>) -> Envelope {
        let e = Envelope::new(event, SRC, self.clock.as_ref()).with_id(id);
        match cause {
            Some(c) => e.caused_by(c),
            None => e,
        }
    }

    /// A new `ProtectPosition` for `t` (revision bumped): the stop, and the resting take-profit
    /// legs when `with_tps`.
    fn protect(&self, t: &mut Tracked, with_tps: bool, cause: Option<&Envelope>) -> Envelope {
        t.revision += 1;
        let intent_id =
            derived_event_id(&[SRC, &t.position_id, "protect", &t.revision.to_string()]);
        let mut p = t.plan.to_protect(intent_id.clone(), t.symbol.clone());
        if with_tps {
            for leg in &p.take_profits {
                t.tp_orders
                    .insert(client_order_id(&intent_id, &leg.leg), leg.leg.clone());
            }
        } else {
            p.take_profits.clear();
        }
        t.stop_intents.push(intent_id.clone());
        if t.stop_intents.len() > KEEP_STOP_INTENTS {
            t.stop_intents.remove(0);
        }
        self.envelope(Event::ProtectPosition(p), intent_id, cause)
    }

    fn close(&self, t: &Tracked, why: &str, cause: Option<&Envelope>) -> Envelope {
        let intent_id = derived_event_id(&[SRC, &t.position_id, "close", why]);
        let c = ClosePosition {
            intent_id: intent_id.clone(),
            symbol: t.symbol.clone(),
            reason: why.to_owned(),
            // Only this plan's position: never one of the other side that replaced it (one-way
            // mode) or stands beside it (hedge mode).
            position_side: Some(t.side),
        };
        self.envelope(Event::ClosePosition(c), intent_id, cause)
    }

    fn alert(
        &self,
        t: &Tracked,
        rule: &str,
        severity: Severity,
        message: String,
        cause: Option<&Envelope>,
    ) -> Envelope {
        let id = derived_event_id(&[SRC, &t.position_id, "alert", rule]);
        let mut details = BTreeMap::new();
        details.insert("position_id".to_owned(), t.position_id.clone());
        let a = AlertRaised {
            rule: rule.to_owned(),
            key: t.symbol.clone(),
            severity,
            message,
            service: SRC.to_owned(),
            details,
        };
        self.envelope(Event::AlertRaised(a), id, cause)
    }

    /// Handles one event, carried by stream entry `source` (`<stream>/<entry id>`), and returns
    /// what to publish with its acknowledgement.
    ///
    /// An event handled before is not handled again. When it comes back in the same entry (a
    /// redelivery: the process may have died between its commit and its acknowledgement), the
    /// recorded intents are returned again, identical; when it comes in another entry (its
    /// producer published it twice), nothing is returned, since the first entry publishes them.
    pub async fn handle(
        &mut self,
        env: &Envelope,
        source: &str,
    ) -> Result<Vec<Envelope>, BrainError> {
        if let Event::CandleClosed(c) = &env.event {
            self.vol.on_candle(c);
            return Ok(Vec::new());
        }
        // Only events about a plan it holds (or a position) can have had an effect: the others
        // skip the database entirely (marks of symbols without a position, other orders).
        let relevant = match &env.event {
            Event::MarkPriceUpdated(m) => !self.symbol_plans(&m.symbol).is_empty(),
            Event::OrderAccepted(a) => self.by_intent.contains_key(&a.intent_id),
            Event::OrderRejected(r) => self.by_intent.contains_key(&r.intent_id),
            Event::OrderFilled(f) | Event::OrderPartiallyFilled(f) => {
                self.by_tp_order.contains_key(&f.client_order_id)
            }
            Event::PositionOpened(_) | Event::PositionChanged(_) | Event::PositionClosed(_) => true,
            // Signals matter only to a plan that closes on the opposite one and has not yet.
            Event::SignalGenerated(g) => self
                .symbol_plans(&g.symbol)
                .iter()
                .filter_map(|(_, p)| self.plans.get(p))
                .any(|t| t.plan.close_on_flip && !t.plan.flip_fired),
            _ => false,
        };
        if !relevant {
            return Ok(Vec::new());
        }
        // A mark can only have been handled with an effect if it was the last event that
        // changed its plan (marks of one symbol come in order, and a later stop move supersedes
        // an earlier one), so marks skip the database lookup otherwise: they are the bulk.
        let may_be_done = match &env.event {
            Event::MarkPriceUpdated(m) => self
                .symbol_plans(&m.symbol)
                .iter()
                .filter_map(|(_, p)| self.plans.get(p))
                .any(|t| t.last_event.as_deref() == Some(env.id.as_str())),
            _ => true,
        };
        let done = if may_be_done {
            self.store.outputs_of(&env.id).await?
        } else {
            None
        };
        if let Some(done) = done {
            if done.source == source {
                tracing::info!(event_id = %env.id, n = done.outputs.len(), "redelivered event: replaying its intents");
                return Ok(done.outputs);
            }
            tracing::info!(event_id = %env.id, first = %done.source, again = %source, "duplicate event dropped");
            return Ok(Vec::new());
        }
        let commit = match &env.event {
            Event::MarkPriceUpdated(m) => self.on_mark(&m.symbol, m.mark_price, env),
            Event::PositionOpened(p) => self.on_opened(p, env)?,
            Event::PositionChanged(p) => self.on_changed(p, env)?,
            Event::PositionClosed(p) => self.on_closed(p, env),
            Event::OrderAccepted(a) => self.on_accepted(a),
            Event::OrderRejected(r) => self.on_rejected(r, env),
            Event::OrderFilled(f) | Event::OrderPartiallyFilled(f) => self.on_fill(f, env)?,
            Event::SignalGenerated(g) => self.on_signal(&g.symbol, g.action, env),
            _ => None,
        };
        match commit {
            Some(mut c) => {
                for t in &mut c.upsert {
                    t.last_event = Some(env.id.clone());
                }
                c.event_id = Some(env.id.clone());
                c.source = source.to_owned();
                c.ts = self.now();
                self.apply(c).await
            }
            None => Ok(Vec::new()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_plan(
        &self,
        position_id: &str,
        symbol: &str,
        side: PositionSide,
        qty: Decimal,
        price: Decimal,
        opened_ms: i64,
        model_exits: Option<&qt_events::ExitSettings>,
    ) -> Result<Tracked, BrainError> {
        let filters = self
            .filters
            .get(symbol)
            .copied()
            .unwrap_or_else(zero_filters);
        let entry = EntrySpec {
            side,
            price,
            qty,
            opened_ms,
            filters,
        };
        let vol = self.vol.of(symbol);
        let profile = self.profile(symbol);
        // The exits of the model that opened the position, else the configured ones.
        let model_exits = model_exits.and_then(|w| match ExitConfig::try_from(w) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(position_id, symbol, error = %e, "the model's exits are invalid: the configured exits manage the position");
                None
            }
        });
        let exits = model_exits.as_ref().unwrap_or(&self.cfg.exits);
        let plan = ExitPlan::new(entry, vol, &profile, exits)
            .map_err(|e| BrainError::Invalid(format!("position {position_id}: {e}")))?;
        tracing::info!(position_id, symbol, volatility = vol, tp_mult = %profile.tp_mult, stop = %plan.stop_price, model_exits = model_exits.is_some(), "exit plan built");
        Ok(Tracked {
            position_id: position_id.to_owned(),
            symbol: symbol.to_owned(),
            side,
            plan,
            revision: 0,
            held: qty,
            stop_intents: Vec::new(),
            stop_confirmed: false,
            tp_orders: BTreeMap::new(),
            protect_sent_ms: self.now(),
            watchdog_fired: false,
            time_stop_sent: false,
            last_event: None,
        })
    }

    fn on_opened(
        &mut self,
        p: &PositionOpened,
        env: &Envelope,
    ) -> Result<Option<Commit>, BrainError> {
        if self.plans.contains_key(&p.position_id) {
            return Ok(None);
        }
        let mut t = self.new_plan(
            &p.position_id,
            &p.symbol,
            p.side,
            p.quantity,
            p.entry_price,
            p.opened_at,
            p.signal.as_ref().and_then(|s| s.exits.as_ref()),
        )?;
        let mut c = Commit::default();
        if let Some(old) = self.slot_plan(&p.symbol, p.side).cloned() {
            tracing::warn!(symbol = %p.symbol, old_position = %old, new_position = %p.position_id, "a new position replaces a plan that was never closed");
            c.delete.push(old);
        }
        let protect = self.protect(&mut t, true, Some(env));
        c.upsert.push(t);
        c.outputs.push(protect);
        Ok(Some(c))
    }

    fn on_changed(
        &mut self,
        p: &PositionChanged,
        env: &Envelope,
    ) -> Result<Option<Commit>, BrainError> {
        let Some(old) = self.plans.get(&p.position_id) else {
            if p.quantity <= Decimal::ZERO {
                return Ok(None);
            }
            // Its opening was never seen (lost with a Redis crash): protect it now.
            tracing::warn!(position_id = %p.position_id, symbol = %p.symbol, "change of an unknown position: building its plan");
            let mut t = self.new_plan(
                &p.position_id,
                &p.symbol,
                p.side,
                p.quantity,
                p.entry_price,
                p.ts,
                None,
            )?;
            let protect = self.protect(&mut t, true, Some(env));
            return Ok(Some(Commit {
                upsert: vec![t],
                outputs: vec![protect],
                ..Commit::default()
            }));
        };
        let mut t = old.clone();
        let mut c = Commit::default();
        if p.quantity > t.held {
            // More of the entry filled: resize the legs to what is held.
            let total = t.plan.qty + (p.quantity - t.held);
            let actions = t.plan.on_entry_fill(total);
            t.held = p.quantity;
            t.plan.open_qty = p.quantity;
            if actions.contains(&ExitAction::ResizeLegs) {
                c.outputs.push(self.protect(&mut t, true, Some(env)));
            }
        } else if p.quantity < t.held {
            t.held = p.quantity;
            t.plan.open_qty = p.quantity;
        } else {
            return Ok(None);
        }
        c.upsert.push(t);
        Ok(Some(c))
    }

    fn on_closed(&mut self, p: &PositionClosed, env: &Envelope) -> Option<Commit> {
        let t = self.plans.get(&p.position_id)?.clone();
        let mut plan = t.plan.clone();
        if p.exit_price > Decimal::ZERO {
            // The exit price counts in the excursions; actions on a closed trade are moot.
            let _ = plan.on_mark(p.exit_price, p.closed_at);
        }
        let outcome = plan.outcome();
        let mut profile = self.profile(&p.symbol);
        profile.learn(&outcome, &self.cfg.exits);
        tracing::info!(position_id = %p.position_id, symbol = %p.symbol, net_pnl = %p.net_pnl, reason = %p.reason, tp_mult = %profile.tp_mult, stop_mult = %profile.stop_mult, "position closed, profile updated");
        let mut c = Commit::default();
        // Cancel what may still rest on the exchange: the last stop and the unfilled legs.
        let mut to_cancel: Vec<String> = Vec::new();
        if let Some(last) = t.stop_intents.last() {
            to_cancel.push(client_order_id(last, STOP_LEG));
        }
        if let Some(tps_intent) = t.stop_intents.iter().rev().find(|i| {
            t.plan
                .legs
                .iter()
                .any(|l| t.tp_orders.contains_key(&client_order_id(i, &l.name)))
        }) {
            for l in t.plan.legs.iter().filter(|l| !l.is_done()) {
                let coid = client_order_id(tps_intent, &l.name);
                if t.tp_orders.contains_key(&coid) {
                    to_cancel.push(coid);
                }
            }
        }
        for coid in to_cancel {
            let intent_id = derived_event_id(&[SRC, &t.position_id, "cancel", &coid]);
            let cancel = CancelOrder {
                intent_id: intent_id.clone(),
                symbol: t.symbol.clone(),
                client_order_id: coid,
                conditional: true,
            };
            c.outputs
                .push(self.envelope(Event::CancelOrder(cancel), intent_id, Some(env)));
        }
        c.outcomes.push(OutcomeRecord {
            position_id: p.position_id.clone(),
            symbol: p.symbol.clone(),
            side: p.side,
            entry_price: p.entry_price,
            exit_price: p.exit_price,
            net_pnl: p.net_pnl,
            reason: p.reason.clone(),
            closed_at: p.closed_at,
            outcome,
            profile_after: profile.clone(),
        });
        c.profiles.push((p.symbol.clone(), profile));
        c.delete.push(p.position_id.clone());
        Some(c)
    }

    fn is_stop_order(intent_id: &str, coid: Option<&str>, kind: Option<OrderKind>) -> bool {
        kind == Some(OrderKind::StopMarket)
            || coid.is_some_and(|c| c == client_order_id(intent_id, STOP_LEG))
    }

    fn on_accepted(&mut self, a: &OrderAccepted) -> Option<Commit> {
        let pos = self.by_intent.get(&a.intent_id)?;
        let t = self.plans.get(pos)?;
        if t.stop_confirmed
            || !Self::is_stop_order(&a.intent_id, Some(&a.client_order_id), Some(a.kind))
        {
            return None;
        }
        let mut t = t.clone();
        t.stop_confirmed = true;
        tracing::info!(position_id = %t.position_id, symbol = %t.symbol, client_order_id = %a.client_order_id, "stop confirmed on the exchange");
        Some(Commit {
            upsert: vec![t],
            ..Commit::default()
        })
    }

    fn on_rejected(&mut self, r: &OrderRejected, env: &Envelope) -> Option<Commit> {
        if r.reason == RejectReason::Superseded {
            // A later protect intent of the position places this leg.
            return None;
        }
        let pos = self.by_intent.get(&r.intent_id)?;
        let t = self.plans.get(pos)?;
        // A refused intent (no client order id) refuses its stop as well.
        let stop = r.client_order_id.is_none()
            || Self::is_stop_order(&r.intent_id, r.client_order_id.as_deref(), None);
        let stop_close = r.client_order_id.as_deref()
            == Some(&client_order_id(
                &r.intent_id,
                ProtectPosition::STOP_CLOSE_LEG,
            ));
        if stop_close {
            // Execution's market close after a stop the price was already through. Refused
            // because the position is already flat, it has nothing left to do.
            if matches!(
                r.reason,
                RejectReason::NoPosition | RejectReason::ReduceOnlyRejected
            ) {
                return None;
            }
            let c = Commit {
                outputs: vec![
                    self.close(t, "stop_close_rejected", Some(env)),
                    self.alert(
                        t,
                        "stop_close_rejected",
                        Severity::Critical,
                        format!(
                            "the market close of {} after its refused stop was refused too \
                             ({:?}: {}); asking for another close",
                            t.symbol, r.reason, r.message
                        ),
                        Some(env),
                    ),
                ],
                ..Commit::default()
            };
            return Some(c);
        }
        if !stop {
            let a = self.alert(
                t,
                "take_profit_rejected",
                Severity::Warning,
                format!(
                    "a take-profit leg of {} was refused: {}",
                    t.symbol, r.message
                ),
                Some(env),
            );
            return Some(Commit {
                outputs: vec![a],
                ..Commit::default()
            });
        }
        let mut t = t.clone();
        let mut c = Commit::default();
        if r.reason == RejectReason::WouldImmediatelyTrigger {
            // The price is already through the stop: execution closes the position at market
            // in the same intent (leg `stop_close`), so no close intent of ours could arrive
            // first, and none arrives late to close a newer position of the symbol.
            t.watchdog_fired = true;
            c.outputs.push(self.alert(
                &t,
                "stop_rejected",
                Severity::Critical,
                format!(
                    "the stop of {} was refused ({:?}: {}); execution closes it at market",
                    t.symbol, r.reason, r.message
                ),
                Some(env),
            ));
        } else if !t.stop_confirmed && !t.watchdog_fired {
            t.watchdog_fired = true;
            c.outputs.push(self.close(&t, "stop_rejected", Some(env)));
            c.outputs.push(self.alert(
                &t,
                "stop_rejected",
                Severity::Critical,
                format!(
                    "the stop of {} was refused ({:?}: {}); closing at market",
                    t.symbol, r.reason, r.message
                ),
                Some(env),
            ));
        } else {
            c.outputs.push(self.alert(
                &t,
                "stop_move_rejected",
                Severity::Warning,
                format!(
                    "a stop move of {} was refused ({:?}: {}); the previous stop stays",
                    t.symbol, r.reason, r.message
                ),
                Some(env),
            ));
        }
        c.upsert.push(t);
        Some(c)
    }

    fn on_fill(&mut self, f: &OrderFill, env: &Envelope) -> Result<Option<Commit>, BrainError> {
        let Some(pos) = self.by_tp_order.get(&f.client_order_id) else {
            return Ok(None);
        };
        let Some(t) = self.plans.get(pos) else {
            return Ok(None);
        };
        let Some(leg) = t.tp_orders.get(&f.client_order_id).cloned() else {
            return Ok(None);
        };
        let mut t = t.clone();
        let actions = t
            .plan
            .on_leg_hit(&leg, f.last_qty)
            .map_err(|e| BrainError::Invalid(e.to_string()))?;
        t.plan.open_qty = (t.held - f.last_qty).max(Decimal::ZERO);
        tracing::info!(position_id = %t.position_id, leg = %leg, qty = %f.last_qty, "take-profit leg filled");
        let mut c = Commit::default();
        if actions
            .iter()
            .any(|a| matches!(a, ExitAction::MoveStop { .. }))
        {
            c.outputs.push(self.protect(&mut t, false, Some(env)));
        }
        c.upsert.push(t);
        Ok(Some(c))
    }

    /// A model's decision on `symbol`: a plan with `close_on_flip` closes its position when the
    /// decision is the other side (a long on SELL, a short on BUY), once.
    fn on_signal(
        &mut self,
        symbol: &str,
        action: qt_events::SignalAction,
        env: &Envelope,
    ) -> Option<Commit> {
        let wants = match action {
            qt_events::SignalAction::Buy => PositionSide::Long,
            qt_events::SignalAction::Sell => PositionSide::Short,
            qt_events::SignalAction::Hold => return None,
        };
        let mut c = Commit::default();
        // Each of the symbol's plans (hedge mode: the long's and the short's) decides alone.
        for i in 0..self.symbol_plans(symbol).len() {
            let pos = self.symbol_plans(symbol)[i].1.clone();
            let Some(mut t) = self.plans.get(&pos).cloned() else {
                continue;
            };
            if t.plan.on_signal(wants).is_none() {
                continue;
            }
            tracing::info!(position_id = %t.position_id, symbol, ?action, "the model signalled the other side: closing");
            c.outputs.push(self.close(&t, "signal_flip", Some(env)));
            c.upsert.push(t);
        }
        (!c.upsert.is_empty()).then_some(c)
    }

    /// A mark of `symbol` for each of its plans (hedge mode: the long's and the short's, each
    /// moving only its own stop).
    fn on_mark(&mut self, symbol: &str, price: Decimal, env: &Envelope) -> Option<Commit> {
        let now = self.now();
        let mut c = Commit::default();
        for i in 0..self.symbol_plans(symbol).len() {
            let pos = self.symbol_plans(symbol)[i].1.clone();
            // On a copy: the plan in memory only changes once its commit succeeded.
            let Some(mut t) = self.plans.get(&pos).cloned() else {
                continue;
            };
            let actions = t.plan.on_mark(price, now);
            if actions.is_empty() {
                // Excursions only: kept in memory, persisted with the next change.
                self.plans.insert(pos, t);
                continue;
            }
            let mut outputs = Vec::new();
            for a in actions {
                match a {
                    ExitAction::MoveStop { price, why } => {
                        tracing::info!(position_id = %t.position_id, symbol, stop = %price, ?why, "stop moved");
                        let p = self.protect(&mut t, false, Some(env));
                        outputs
                            .retain(|o: &Envelope| !matches!(o.event, Event::ProtectPosition(_)));
                        outputs.push(p);
                    }
                    ExitAction::TimeStop { .. } if !t.time_stop_sent => {
                        t.time_stop_sent = true;
                        outputs.push(self.close(&t, "time_stop", Some(env)));
                    }
                    ExitAction::TimeStop { .. } | ExitAction::ResizeLegs => {}
                }
            }
            c.outputs.extend(outputs);
            c.upsert.push(t);
        }
        (!c.upsert.is_empty()).then_some(c)
    }

    /// The watchdog's look at `now`: every position whose stop is still unconfirmed
    /// `watchdog_ms` after its protect was sent gets a close intent and an alert. The caller
    /// publishes the outputs first, then [`apply`](Self::apply)s the commit (the ids are
    /// deterministic, so a crash in between only repeats the same intents).
    pub fn watchdog(&self, now: i64) -> Commit {
        let mut c = Commit {
            ts: now,
            ..Commit::default()
        };
        for t in self.plans.values() {
            if t.stop_confirmed
                || t.watchdog_fired
                || now.saturating_sub(t.protect_sent_ms) < self.cfg.watchdog_ms
            {
                continue;
            }
            let mut t = t.clone();
            t.watchdog_fired = true;
            tracing::error!(position_id = %t.position_id, symbol = %t.symbol, "no stop confirmed in time: closing at market");
            c.outputs.push(self.close(&t, "stop_not_confirmed", None));
            c.outputs.push(self.alert(
                &t,
                "stop_not_confirmed",
                Severity::Critical,
                format!(
                    "no stop confirmed for {} within {} s; closing at market",
                    t.symbol,
                    self.cfg.watchdog_ms / 1000
                ),
                None,
            ));
            c.upsert.push(t);
        }
        c
    }

    /// Checks every plan against the exchange after a restart: a position with a stop resting
    /// is confirmed; one without is protected again (new revision, watchdog restarted); a plan
    /// whose position is gone raises an alert and waits for its `PositionClosed`. Publish the
    /// outputs, then apply the commit.
    pub fn check_against(&self, view: &ExchangeView) -> Commit {
        let now = self.now();
        let mut c = Commit {
            ts: now,
            ..Commit::default()
        };
        for t in self.plans.values() {
            let slot = self.slot(t);
            let amt = view.positions.get(&slot).copied().unwrap_or(Decimal::ZERO);
            let mut t = t.clone();
            if amt.is_zero() {
                tracing::warn!(position_id = %t.position_id, symbol = %t.symbol, "stored plan has no position on the exchange");
                c.outputs.push(self.alert(
                    &t,
                    "plan_without_position",
                    Severity::Warning,
                    format!(
                        "exit-brain holds a plan for {} but the exchange shows no position",
                        t.symbol
                    ),
                    None,
                ));
                continue;
            }
            let has_stop = view.slots_with_stop.contains(&slot)
                || t.stop_intents
                    .iter()
                    .any(|i| view.open_algo_ids.contains(&client_order_id(i, STOP_LEG)));
            if has_stop {
                if !t.stop_confirmed {
                    t.stop_confirmed = true;
                    c.upsert.push(t);
                }
                continue;
            }
            tracing::warn!(position_id = %t.position_id, symbol = %t.symbol, "position has no stop on the exchange: protecting it again");
            t.held = amt.abs();
            t.plan.open_qty = t.held;
            t.stop_confirmed = false;
            t.watchdog_fired = false;
            t.protect_sent_ms = now;
            let p = self.protect(&mut t, true, None);
            c.outputs.push(p);
            c.upsert.push(t);
        }
        c
    }
}
