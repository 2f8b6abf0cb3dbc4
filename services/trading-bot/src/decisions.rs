//! The bot's decisions, without I/O: closed candle → `CandleClosed`, features, model,
//! `SignalGenerated` and maybe an `OpenPosition`; mark price → throttled `MarkPriceUpdated`;
//! facts from `positions`, `orders` and `control` → the entry gate and the kill switch.
//!
//! One [`Core`] is owned by one task, so a model swap always falls between two candles.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use qt_candles::Candle;
use qt_events::clock::SharedClock;
use qt_events::ids::derived_event_id;
use qt_events::{
    CandleClosed, Decimal, Envelope, Event, MarkPriceUpdated, OpenPosition, OrderKind,
    PositionSide, RejectReason, SignalAction, SignalGenerated, SignalRef,
};
use qt_features::{CONTEXT_OFFSET, FeatureConfig, FeatureVector, UniverseFeatures};
use qt_models::Model;
use qt_risk::{Sizing, SymbolFilters};

use crate::gate::{Blocked, EntryGate};

/// Entry settings the core needs.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Name written in every envelope's `src`.
    pub src: String,
    pub interval: String,
    pub interval_ms: i64,
    pub min_confidence: f64,
    pub sizing: Sizing,
    pub sizing_stop_fraction: f64,
    pub cooldown_ms: i64,
    pub pending_timeout_ms: i64,
    pub mark_price_min_interval_ms: i64,
}

/// Recent feature vectors kept per symbol, replayed into a model swapped in so that one that
/// reads a symbol's history (the temporal model's 32 candles) decides at once.
const REPLAY: usize = 256;

#[derive(Debug)]
struct SymbolState {
    /// Open time of the last candle fed to the features.
    last_open_time: Option<i64>,
    /// The latest feature vectors with their candles (at most [`REPLAY`]).
    recent: VecDeque<(FeatureVector, Candle)>,
    filters: SymbolFilters,
    /// When the last mark price of the symbol was published (clock ms).
    last_mark_ms: Option<i64>,
}

/// What happened to a candle, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandleOutcome {
    /// Not in the universe, or not the configured interval.
    Ignored,
    /// Already seen (open time not after the last one).
    Duplicate,
    /// Published; the features are still warming up, so no signal.
    Warming,
    /// Published with a signal; `intent` says whether an open intent went with it.
    Signalled { intent: bool },
}

/// See the module docs.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    clock: SharedClock,
    symbols: HashMap<String, SymbolState>,
    /// Every symbol's features and the market factor they read (BTC's and ETH's candles).
    features: UniverseFeatures,
    /// Behind a mutex only so that the bot's task future is `Send` (a model is `Send`, not
    /// `Sync`); one task owns the core, so the lock is never contended.
    model: Mutex<Box<dyn Model>>,
    gate: EntryGate,
    kill_switch: bool,
    /// Entries execution refuses for the whole account, learnt from its refusals: no entry is
    /// sent while it lasts (each would only be refused and stored as an order row).
    paused: Option<Pause>,
    /// The account's equity from the latest `PortfolioSnapshot` (Kelly sizing reads it).
    equity: Option<Decimal>,
}

/// Why execution refuses every entry for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// A daily-loss pause, until this time (ms).
    DailyLoss { until_ms: i64 },
    /// The drawdown breaker: until an operator resumes (`ResumeTrading` on `control`).
    DrawdownBreaker,
}

/// How long entries are held after a daily-loss refusal that does not say when the pause ends
/// (a refusal answered again from its record): then one entry finds out.
const PAUSE_RECHECK_MS: i64 = 15 * 60_000;

/// The deterministic event id of a closed candle.
pub fn candle_event_id(symbol: &str, interval: &str, open_time: i64) -> String {
    derived_event_id(&["CandleClosed", symbol, interval, &open_time.to_string()])
}

/// The deterministic intent id of an entry on the candle that opened at `open_time`.
pub fn intent_id(symbol: &str, open_time: i64) -> String {
    format!("tb-open-{symbol}-{open_time}")
}

fn current_pause(paused: &mut Option<Pause>, now: i64) -> Option<Pause> {
    if let Some(Pause::DailyLoss { until_ms }) = *paused
        && now >= until_ms
    {
        tracing::info!("the daily-loss pause has ended: entries again");
        *paused = None;
    }
    *paused
}

/// Keeps `fv` and its candle among a symbol's latest [`REPLAY`].
fn remember(recent: &mut VecDeque<(FeatureVector, Candle)>, fv: FeatureVector, candle: Candle) {
    if recent.len() == REPLAY {
        recent.pop_front();
    }
    recent.push_back((fv, candle));
}

/// The vector a model reads: the funding inputs as computed for a model trained with them
/// ([`Model::funding_inputs`]), missing (0, `funding_known` 0) for any other, as every row it
/// was trained and backtested on had them.
fn for_model(fv: &FeatureVector, funding: bool) -> FeatureVector {
    let mut v = *fv;
    if !funding {
        v.values[CONTEXT_OFFSET..].fill(0.0);
    }
    v
}

fn to_decimal(x: f64) -> Decimal {
    Decimal::try_from(x).unwrap_or(Decimal::ZERO)
}

impl Core {
    pub fn new(cfg: CoreConfig, clock: SharedClock, model: Box<dyn Model>) -> Self {
        let gate = EntryGate::new(cfg.cooldown_ms, cfg.pending_timeout_ms);
        let features = UniverseFeatures::new(FeatureConfig {
            interval_ms: cfg.interval_ms,
        });
        Self {
            cfg,
            clock,
            symbols: HashMap::new(),
            features,
            model: Mutex::new(model),
            gate,
            kill_switch: false,
            paused: None,
            equity: None,
        }
    }

    /// Candles the feature engine needs before its first vector.
    pub fn warmup_candles(&self) -> usize {
        FeatureConfig {
            interval_ms: self.cfg.interval_ms,
        }
        .warmup()
    }

    pub fn interval_ms(&self) -> i64 {
        self.cfg.interval_ms
    }

    fn model(&self) -> MutexGuard<'_, Box<dyn Model>> {
        self.model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn model_version(&self) -> String {
        self.model().version().to_owned()
    }

    pub fn model_name(&self) -> String {
        self.model().name().to_owned()
    }

    /// The running model reads the funding inputs ([`Model::funding_inputs`]).
    pub fn model_uses_funding(&self) -> bool {
        self.model().funding_inputs()
    }

    /// Funding rates of `symbol` fetched from the exchange's history (`(funding time, rate)`):
    /// each is read from the first candle closing at or after its publication time
    /// (`qt_features::FundingSeries::fetched`).
    pub fn funding_fetched(&mut self, symbol: &str, rates: &[(i64, f64)]) {
        for &(t, r) in rates {
            self.features.fetched_funding(symbol, t, r);
        }
    }

    pub fn kill_switch(&self) -> bool {
        self.kill_switch
    }

    /// The pause execution imposes on entries at `now`, if any (an ended daily-loss pause is
    /// forgotten).
    pub fn pause(&mut self, now: i64) -> Option<Pause> {
        current_pause(&mut self.paused, now)
    }

    pub fn gate(&self) -> &EntryGate {
        &self.gate
    }

    /// Symbols in the universe.
    pub fn symbols(&self) -> Vec<String> {
        let mut v: Vec<String> = self.symbols.keys().cloned().collect();
        v.sort();
        v
    }

    /// Adds a symbol with fresh features (its warm-up follows).
    pub fn add_symbol(&mut self, symbol: &str, filters: SymbolFilters) {
        self.symbols.insert(
            symbol.to_owned(),
            SymbolState {
                last_open_time: None,
                recent: VecDeque::new(),
                filters,
                last_mark_ms: None,
            },
        );
    }

    /// Drops a symbol from the universe (what the gate knows of it is kept).
    pub fn remove_symbol(&mut self, symbol: &str) {
        self.symbols.remove(symbol);
        self.features.remove(symbol);
        self.features.forget_funding(symbol);
    }

    /// Open time of the last candle of `symbol` seen.
    pub fn last_open_time(&self, symbol: &str) -> Option<i64> {
        self.symbols.get(symbol).and_then(|s| s.last_open_time)
    }

    /// Feeds a history candle to the features without publishing anything (warm-up). The
    /// model sees its features too (its decision is dropped), as the backtester's model sees
    /// every candle before its start: a model that reads a symbol's recent history (the
    /// temporal model) then decides on the first live candle as a backtest over the same
    /// candles does.
    pub fn warm(&mut self, symbol: &str, candle: &Candle) -> bool {
        let Some(s) = self.symbols.get_mut(symbol) else {
            return false;
        };
        if s.last_open_time.is_some_and(|t| candle.open_time <= t) {
            return false;
        }
        s.last_open_time = Some(candle.open_time);
        if let Some(fv) = self.features.update(symbol, candle) {
            let mut m = self
                .model
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let funding = m.funding_inputs();
            m.predict_for(symbol, &for_model(&fv, funding), candle);
            remember(&mut s.recent, fv, *candle);
        }
        true
    }

    /// Swaps the model; the next candle uses it. The model first sees each symbol's latest
    /// [`Model::memory`] feature vectors (its decisions dropped), so a model that reads a
    /// symbol's history decides on the next candle as a backtest running it all along would.
    pub fn swap_model(&mut self, mut model: Box<dyn Model>) {
        let memory = model.memory().min(REPLAY);
        let funding = model.funding_inputs();
        let mut replayed = 0usize;
        if memory > 0 {
            let mut symbols: Vec<&String> = self.symbols.keys().collect();
            symbols.sort();
            for symbol in symbols {
                let recent = &self.symbols[symbol].recent;
                for (fv, c) in recent.iter().skip(recent.len().saturating_sub(memory)) {
                    model.predict_for(symbol, &for_model(fv, funding), c);
                    replayed += 1;
                }
            }
        }
        tracing::info!(from = %self.model_version(), to = %model.version(), model = %model.name(), replayed, "model swapped");
        *self.model() = model;
    }

    /// Makes the gate's positions those open on the exchange (`open`: their symbols).
    pub fn reconcile_positions(&mut self, open: &[String]) {
        self.gate.reconcile_positions(open);
    }

    /// An open intent sent at `at_ms` by a previous run and maybe still in flight.
    pub fn restore_pending(&mut self, symbol: &str, intent_id: &str, at_ms: i64) {
        self.gate.sent(symbol, intent_id, at_ms);
    }

    /// Handles a closed candle: returns what to publish (candle, signal, maybe an intent), in
    /// that order. `live` is false for candles fetched to fill a gap: they get their signal but
    /// never an intent, since the market has moved on.
    pub fn on_candle(&mut self, c: &CandleClosed, live: bool) -> (CandleOutcome, Vec<Envelope>) {
        if c.interval != self.cfg.interval {
            return (CandleOutcome::Ignored, Vec::new());
        }
        let Some(s) = self.symbols.get_mut(&c.symbol) else {
            return (CandleOutcome::Ignored, Vec::new());
        };
        if s.last_open_time.is_some_and(|t| c.open_time <= t) {
            return (CandleOutcome::Duplicate, Vec::new());
        }
        s.last_open_time = Some(c.open_time);
        let candle = Candle::from(c);
        let features = self.features.update(&c.symbol, &candle);
        let filters = s.filters;
        let src = self.cfg.src.as_str();
        let clock = self.clock.as_ref();
        let candle_env = Envelope::new(Event::CandleClosed(c.clone()), src, clock)
            .with_id(candle_event_id(&c.symbol, &c.interval, c.open_time));
        let Some(fv) = features else {
            return (CandleOutcome::Warming, vec![candle_env]);
        };
        remember(&mut s.recent, fv, candle);
        let (signal, version, name, exits, fv) = {
            let mut m = self
                .model
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The signal carries the inputs the model read.
            let fv = for_model(&fv, m.funding_inputs());
            let signal = m.predict_for(&c.symbol, &fv, &candle);
            // The exits the model was trained for travel with its entries (exit-brain manages
            // the position with them); only an entry needs them.
            let exits = (signal.action != SignalAction::Hold)
                .then(|| m.exits().map(qt_events::ExitSettings::from))
                .flatten();
            (
                signal,
                m.version().to_owned(),
                m.name().to_owned(),
                exits,
                fv,
            )
        };
        let feature_map = fv.to_map();
        let signal_id = derived_event_id(&[
            "SignalGenerated",
            &c.symbol,
            &c.interval,
            &c.open_time.to_string(),
            &version,
        ]);
        let signal_env = Envelope::new(
            Event::SignalGenerated(SignalGenerated {
                symbol: c.symbol.clone(),
                action: signal.action,
                confidence: signal.confidence,
                model: name.clone(),
                model_version: version.clone(),
                candle_open_time: c.open_time,
                features: feature_map.clone(),
                expected_return: signal.expected_return,
            }),
            src,
            clock,
        )
        .with_id(signal_id.clone())
        .caused_by(&candle_env);

        let side = match signal.action {
            SignalAction::Buy => Some(PositionSide::Long),
            SignalAction::Sell => Some(PositionSide::Short),
            SignalAction::Hold => None,
        };
        let mut out = vec![candle_env, signal_env];
        let Some(side) = side else {
            return (CandleOutcome::Signalled { intent: false }, out);
        };
        if !live || !signal.clears(self.cfg.min_confidence) {
            return (CandleOutcome::Signalled { intent: false }, out);
        }
        if self.kill_switch {
            tracing::info!(symbol = %c.symbol, "kill switch on: no entry");
            return (CandleOutcome::Signalled { intent: false }, out);
        }
        let now = self.clock.now_ms();
        if let Some(p) = current_pause(&mut self.paused, now) {
            tracing::debug!(symbol = %c.symbol, pause = ?p, "entries paused by execution: no entry");
            return (CandleOutcome::Signalled { intent: false }, out);
        }
        if let Err(why) = self.gate.check(&c.symbol, now) {
            let why = match why {
                Blocked::Position => "position open",
                Blocked::Pending => "intent pending",
                Blocked::Cooldown => "cooldown",
            };
            tracing::debug!(symbol = %c.symbol, why, "no entry");
            return (CandleOutcome::Signalled { intent: false }, out);
        }
        let price = c.close;
        // The stop the position will have: the model's exits' distance, else the setting.
        let stop_frac = exits.as_ref().map_or_else(
            || to_decimal(self.cfg.sizing_stop_fraction),
            |e| e.stop_pct / Decimal::ONE_HUNDRED,
        );
        let stop = match side {
            PositionSide::Long => price * (Decimal::ONE - stop_frac),
            PositionSide::Short => price * (Decimal::ONE + stop_frac),
        };
        let ctx = qt_risk::SizingContext {
            edge: signal.expected_return.map(|e| qt_risk::Edge {
                win_probability: signal.confidence,
                expected_return: e,
            }),
            equity: self.equity,
        };
        let quantity = match self.cfg.sizing.quantity_with(price, stop, &filters, &ctx) {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(symbol = %c.symbol, error = %e, "entry cannot be sized");
                return (CandleOutcome::Signalled { intent: false }, out);
            }
        };
        let intent = intent_id(&c.symbol, c.open_time);
        let open = OpenPosition {
            intent_id: intent.clone(),
            symbol: c.symbol.clone(),
            side,
            quantity,
            order_type: OrderKind::Market,
            limit_price: None,
            leverage: self.cfg.sizing.leverage(),
            reference_price: price,
            signal: Some(SignalRef {
                signal_id,
                model: name,
                model_version: version,
                confidence: signal.confidence,
                features: feature_map,
                exits,
            }),
        };
        let intent_env = Envelope::new(Event::OpenPosition(open), src, clock)
            .with_id(derived_event_id(&["OpenPosition", &intent]))
            .caused_by(&out[1]);
        self.gate.sent(&c.symbol, &intent, now);
        out.push(intent_env);
        (CandleOutcome::Signalled { intent: true }, out)
    }

    /// A mark price, published at most once per `mark_price_min_interval_ms` per symbol.
    pub fn on_mark(&mut self, m: MarkPriceUpdated) -> Option<Envelope> {
        let now = self.clock.now_ms();
        let s = self.symbols.get_mut(&m.symbol)?;
        if s.last_mark_ms
            .is_some_and(|t| now.saturating_sub(t) < self.cfg.mark_price_min_interval_ms)
        {
            return None;
        }
        s.last_mark_ms = Some(now);
        let id = derived_event_id(&["MarkPriceUpdated", &m.symbol, &m.event_time.to_string()]);
        Some(
            Envelope::new(
                Event::MarkPriceUpdated(m),
                &self.cfg.src,
                self.clock.as_ref(),
            )
            .with_id(id),
        )
    }

    /// Learns from a fact on `positions`, `orders` or `control`.
    pub fn on_fact(&mut self, env: &Envelope) {
        match &env.event {
            Event::PositionOpened(p) => self.gate.position_opened(&p.symbol, &p.position_id),
            Event::PositionChanged(p) if p.quantity > Decimal::ZERO => {
                self.gate.position_opened(&p.symbol, &p.position_id);
            }
            Event::PositionClosed(p) => self.gate.position_closed(&p.symbol, p.closed_at),
            Event::OrderRejected(r) => {
                self.gate.intent_ended(&r.symbol, &r.intent_id);
                let pause = match r.reason {
                    RejectReason::DailyLossPause => Some(Pause::DailyLoss {
                        // From the refusal's own time, so one read back at a restart does
                        // not start the wait again.
                        until_ms: r.until_ms.unwrap_or(env.ts + PAUSE_RECHECK_MS),
                    }),
                    RejectReason::DrawdownBreaker => Some(Pause::DrawdownBreaker),
                    _ => None,
                };
                if let Some(p) = pause
                    && self.paused != Some(p)
                {
                    tracing::info!(pause = ?p, "execution refuses entries: none are sent until the pause ends");
                    self.paused = Some(p);
                }
            }
            Event::ResumeTrading(r) if self.paused == Some(Pause::DrawdownBreaker) => {
                tracing::info!(reason = %r.reason, "trading resumed after the drawdown breaker");
                self.paused = None;
            }
            Event::OrderCancelled(e) | Event::OrderExpired(e) if e.filled_qty.is_zero() => {
                self.gate.intent_ended(&e.symbol, &e.intent_id);
            }
            Event::PortfolioSnapshot(p) => self.equity = Some(p.equity),
            Event::SetKillSwitch(k) => {
                tracing::info!(enabled = k.enabled, reason = %k.reason, "kill switch");
                self.kill_switch = k.enabled;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qt_events::clock::{Clock, ManualClock};
    use qt_models::{MomentumConfig, MomentumModel};
    use rust_decimal_macros::dec;
    use std::sync::Arc;

    fn core(buy: f64) -> (Core, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let model = MomentumModel::new(
            MomentumConfig {
                buy_threshold: buy,
                sell_threshold: -buy,
            },
            "m1",
        )
        .expect("valid");
        let cfg = CoreConfig {
            src: "trading-bot".into(),
            interval: "1h".into(),
            interval_ms: 3_600_000,
            min_confidence: 0.5,
            sizing: Sizing::default(),
            sizing_stop_fraction: 0.02,
            cooldown_ms: 900_000,
            pending_timeout_ms: 120_000,
            mark_price_min_interval_ms: 1_000,
        };
        let mut c = Core::new(cfg, clock.clone(), Box::new(model));
        c.add_symbol(
            "BTCUSDT",
            SymbolFilters {
                tick_size: dec!(0.1),
                step_size: dec!(0.001),
                min_qty: dec!(0.001),
                max_qty: dec!(1000),
                min_notional: dec!(100),
                ..SymbolFilters::NONE
            },
        );
        (c, clock)
    }

    fn candle(i: i64, close: Decimal) -> CandleClosed {
        CandleClosed {
            symbol: "BTCUSDT".into(),
            interval: "1h".into(),
            open_time: i * 3_600_000,
            close_time: (i + 1) * 3_600_000 - 1,
            open: close,
            high: close,
            low: close,
            close,
            volume: dec!(10),
            quote_volume: dec!(0),
            trades: 0,
        }
    }

    #[test]
    fn a_rising_market_gives_one_intent_sized_250_at_10x_then_waits_for_its_outcome() {
        let (mut c, _clock) = core(0.01);
        let warm = c.warmup_candles() as i64;
        let mut price = dec!(30000);
        for i in 0..warm {
            assert!(c.warm("BTCUSDT", &Candle::from(&candle(i, price))));
            price += dec!(30);
        }
        let (o, out) = c.on_candle(&candle(warm, price), true);
        assert_eq!(o, CandleOutcome::Signalled { intent: true });
        assert_eq!(out.len(), 3);
        let Event::OpenPosition(open) = &out[2].event else {
            panic!("expected an intent, got {:?}", out[2].event)
        };
        assert_eq!(open.side, PositionSide::Long);
        assert_eq!(open.leverage, 10);
        // 2500 / price floored to 0.001
        assert_eq!(
            open.quantity,
            (dec!(2500) / price * dec!(1000)).floor() / dec!(1000)
        );
        assert_eq!(open.intent_id, intent_id("BTCUSDT", warm * 3_600_000));
        assert_eq!(out[2].corr, out[0].id);
        // Same candle again: nothing. Next candle: pending blocks.
        assert_eq!(
            c.on_candle(&candle(warm, price), true).0,
            CandleOutcome::Duplicate
        );
        let (o, _) = c.on_candle(&candle(warm + 1, price + dec!(30)), true);
        assert_eq!(o, CandleOutcome::Signalled { intent: false });
    }

    #[test]
    fn candle_ids_are_deterministic_and_marks_are_throttled() {
        let (mut c, clock) = core(0.01);
        let (_, a) = c.on_candle(&candle(1, dec!(100)), true);
        assert_eq!(a[0].id, candle_event_id("BTCUSDT", "1h", 3_600_000));
        let m = |t| MarkPriceUpdated {
            symbol: "BTCUSDT".into(),
            mark_price: dec!(100),
            index_price: None,
            funding_rate: None,
            event_time: t,
        };
        assert!(c.on_mark(m(1)).is_some());
        assert!(c.on_mark(m(2)).is_none());
        clock.advance(1_000);
        assert!(c.on_mark(m(3)).is_some());
        assert!(
            c.on_mark(MarkPriceUpdated {
                symbol: "XRPUSDT".into(),
                ..m(4)
            })
            .is_none()
        );
    }

    #[test]
    fn entries_wait_out_a_daily_loss_pause_and_the_drawdown_breaker_until_resumed() {
        let (mut c, clock) = core(0.01);
        let warm = c.warmup_candles() as i64;
        let mut price = dec!(30000);
        for i in 0..warm {
            assert!(c.warm("BTCUSDT", &Candle::from(&candle(i, price))));
            price += dec!(30);
        }
        let mut i = warm;
        let mut next = |c: &mut Core| {
            price += dec!(30);
            i += 1;
            c.on_candle(&candle(i, price), true)
        };
        let refused = |c: &mut Core, out: &[Envelope], reason, until_ms| {
            let Event::OpenPosition(o) = &out[2].event else {
                panic!("no intent: {out:?}")
            };
            let r = qt_events::OrderRejected {
                intent_id: o.intent_id.clone(),
                client_order_id: None,
                symbol: o.symbol.clone(),
                reason,
                message: "refused".into(),
                exchange_code: None,
                until_ms,
            };
            c.on_fact(&Envelope::new(
                Event::OrderRejected(r),
                "execution",
                &ManualClock::new(0),
            ));
        };
        let (o, out) = next(&mut c);
        assert_eq!(o, CandleOutcome::Signalled { intent: true });
        let until = clock.now_ms() + 7_200_000;
        refused(&mut c, &out, RejectReason::DailyLossPause, Some(until));
        assert!(matches!(
            c.pause(clock.now_ms()),
            Some(Pause::DailyLoss { .. })
        ));
        // While it lasts: signals, no entry.
        clock.advance(3_600_000);
        assert_eq!(next(&mut c).0, CandleOutcome::Signalled { intent: false });
        // Once it has ended: entries again.
        clock.advance(3_600_000);
        let (o, out) = next(&mut c);
        assert_eq!(o, CandleOutcome::Signalled { intent: true });
        // The breaker holds entries however long, until an operator resumes.
        refused(&mut c, &out, RejectReason::DrawdownBreaker, None);
        clock.advance(86_400_000);
        assert_eq!(next(&mut c).0, CandleOutcome::Signalled { intent: false });
        c.on_fact(&Envelope::new(
            Event::ResumeTrading(qt_events::ResumeTrading {
                command_id: "r1".into(),
                reason: "reviewed".into(),
                requested_by: "ops".into(),
            }),
            "qtctl",
            &ManualClock::new(0),
        ));
        assert_eq!(c.pause(clock.now_ms()), None);
        assert_eq!(next(&mut c).0, CandleOutcome::Signalled { intent: true });
    }

    /// BUY on every candle, priced: P(gain) 0.5, expected net return +0.5%.
    #[derive(Debug)]
    struct Priced;

    impl Model for Priced {
        fn name(&self) -> &str {
            "gbdt"
        }
        fn version(&self) -> &str {
            "g1"
        }
        fn predict(&mut self, _f: &qt_features::FeatureVector, _c: &Candle) -> qt_models::Signal {
            qt_models::Signal::priced(SignalAction::Buy, 0.5, 0.005)
        }
    }

    #[test]
    fn kelly_sizing_reads_the_signals_edge_and_the_equity_of_the_latest_snapshot() {
        let (c0, clock) = core(0.01);
        let mut cfg = c0.cfg.clone();
        cfg.sizing = Sizing::Kelly {
            fraction: dec!(0.25),
            max_notional: dec!(100000),
            leverage: 10,
        };
        let mut c = Core::new(cfg, clock.clone(), Box::new(Priced));
        c.add_symbol("BTCUSDT", c0.symbols["BTCUSDT"].filters);
        let warm = c.warmup_candles() as i64;
        for i in 0..warm {
            assert!(c.warm("BTCUSDT", &Candle::from(&candle(i, dec!(30000)))));
        }
        // No equity known yet: nothing to size a Kelly bet with.
        let (o, _) = c.on_candle(&candle(warm, dec!(30000)), true);
        assert_eq!(o, CandleOutcome::Signalled { intent: false });
        let snap = qt_events::PortfolioSnapshot {
            ts: 0,
            equity: dec!(10000),
            wallet_balance: dec!(10000),
            unrealized_pnl: Decimal::ZERO,
            realized_pnl_today: Decimal::ZERO,
            daily_pnl: Decimal::ZERO,
            gross_exposure: Decimal::ZERO,
            net_exposure: Decimal::ZERO,
            long_exposure: Decimal::ZERO,
            short_exposure: Decimal::ZERO,
            open_positions: 0,
        };
        c.on_fact(&Envelope::new(
            Event::PortfolioSnapshot(snap),
            "portfolio-intelligence",
            &ManualClock::new(0),
        ));
        let (o, out) = c.on_candle(&candle(warm + 1, dec!(30000)), true);
        assert_eq!(o, CandleOutcome::Signalled { intent: true });
        let Event::OpenPosition(open) = &out[2].event else {
            panic!("{out:?}")
        };
        // Stop 2% below 30,000 (600): f* = 1/6, a quarter of it of 10,000 = 416.67 at risk,
        // 416.67 / 600 = 0.694.
        assert_eq!(open.quantity, dec!(0.694));
    }

    /// The two symbols the temporal-model tests run on.
    const PAIR: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

    /// The repo's futures candles of [`PAIR`], from `from_end` candles before the end, stopping
    /// short of the last 4,000.
    fn futures_pair(from_end: usize) -> Vec<Vec<Candle>> {
        let data =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/futures/5m");
        PAIR.iter()
            .map(|s| {
                let c = qt_candles::read_klines(data.join(format!("{s}-5m.csv.gz")))
                    .expect("the repo's futures candles");
                c[c.len() - from_end..c.len() - 4000].to_vec()
            })
            .collect()
    }

    /// A live core trading [`PAIR`] with `model`, as trading-bot runs it.
    fn pair_core(model: Box<dyn qt_models::Model>) -> Core {
        let cfg = CoreConfig {
            src: "trading-bot".into(),
            interval: "5m".into(),
            interval_ms: 300_000,
            min_confidence: 0.5,
            sizing: Sizing::default(),
            sizing_stop_fraction: 0.02,
            cooldown_ms: 900_000,
            pending_timeout_ms: 120_000,
            mark_price_min_interval_ms: 1_000,
        };
        let mut core = Core::new(cfg, Arc::new(ManualClock::new(1_000_000)), model);
        for s in PAIR {
            core.add_symbol(
                s,
                SymbolFilters {
                    tick_size: dec!(0.01),
                    step_size: dec!(0.001),
                    min_qty: dec!(0.001),
                    max_qty: dec!(1000),
                    min_notional: dec!(5),
                    ..SymbolFilters::NONE
                },
            );
        }
        core
    }

    /// The backtester's features of `series` ([`PAIR`]'s candles), market factor included.
    fn pair_features(series: &[Vec<Candle>]) -> Vec<Vec<Option<qt_features::FeatureVector>>> {
        let universe: Vec<(&str, &[Candle])> = PAIR
            .iter()
            .zip(series)
            .map(|(s, c)| (*s, c.as_slice()))
            .collect();
        qt_features::batch_universe(
            qt_features::FeatureConfig {
                interval_ms: 300_000,
            },
            &universe,
        )
    }

    /// The decisions of the live path (one model for every symbol, candles interleaved by
    /// time, the first ones through `warm` as at a start) equal, bit for bit, those of the
    /// backtester's path over the same candles (features by `qt_features::batch_universe`, with
    /// the market factor read from both symbols; one model
    /// per symbol as the engine's factory builds them, `predict_for` on every vector).
    #[test]
    fn a_temporal_model_decides_live_exactly_as_in_a_backtest_over_the_same_candles() {
        use qt_models::build_model;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, artifact) = crate::model::temporal_artifact(dir.path(), "t-live");
        let symbols = PAIR;
        // Candles the model was not trained on: 1,500 before its last 4,000.
        let series = futures_pair(5500);
        let mut live = pair_core(build_model(&artifact).expect("builds"));
        let warm = 400;
        // The published signal carries the model's expected return as the backtest sees it.
        type Decided = (i64, SignalAction, u64, Option<u64>);
        let mut live_signals: Vec<Vec<Decided>> = vec![Vec::new(); 2];
        for (i, (btc, eth)) in series[0].iter().zip(&series[1]).enumerate() {
            for (k, (s, c)) in symbols.iter().zip([btc, eth]).enumerate() {
                if i < warm {
                    assert!(live.warm(s, c));
                    continue;
                }
                let (_, out) = live.on_candle(&c.to_event(s, 300_000).expect("5m"), false);
                for e in out {
                    if let Event::SignalGenerated(g) = e.event {
                        assert_eq!(g.model, "temporal");
                        live_signals[k].push((
                            g.candle_open_time,
                            g.action,
                            g.confidence.to_bits(),
                            g.expected_return.map(f64::to_bits),
                        ));
                    }
                }
            }
        }
        let mut priced = 0;
        let features = pair_features(&series);
        for (k, s) in symbols.iter().enumerate() {
            let mut model = build_model(&artifact).expect("builds");
            let mut replay = Vec::new();
            for (i, (c, fv)) in series[k].iter().zip(&features[k]).enumerate() {
                let Some(fv) = fv else { continue };
                let sig = model.predict_for(s, fv, c);
                if i >= warm {
                    priced += usize::from(sig.expected_return.is_some());
                    replay.push((
                        c.open_time,
                        sig.action,
                        sig.confidence.to_bits(),
                        sig.expected_return.map(f64::to_bits),
                    ));
                }
            }
            assert_eq!(replay.len(), series[k].len() - warm);
            assert_eq!(
                live_signals[k], replay,
                "{s}: live and backtest decisions differ"
            );
        }
        assert!(priced > 2000, "the model priced {priced} candles");
    }

    /// A temporal model deployed mid-stream decides on the first candle after the swap as the
    /// same model does in a backtest that ran it from the start: the swap replays each
    /// symbol's recent vectors into it instead of letting it hold for 31 candles.
    #[test]
    fn a_temporal_model_swapped_in_decides_at_once_as_in_a_backtest() {
        use qt_models::build_model;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, artifact) = crate::model::temporal_artifact(dir.path(), "t-swap");
        let symbols = PAIR;
        let series = futures_pair(5000);
        // Trading nothing until the deployment, as a fresh stack does.
        let mut live = pair_core(Box::new(qt_models::NoModel));
        let (warm, swap_at) = (350, 600);
        let mut live_signals: Vec<Vec<(i64, SignalAction, u64)>> = vec![Vec::new(); 2];
        for (i, (btc, eth)) in series[0].iter().zip(&series[1]).enumerate() {
            if i == swap_at {
                live.swap_model(build_model(&artifact).expect("builds"));
            }
            for (k, (s, c)) in symbols.iter().zip([btc, eth]).enumerate() {
                if i < warm {
                    assert!(live.warm(s, c));
                    continue;
                }
                let (_, out) = live.on_candle(&c.to_event(s, 300_000).expect("5m"), false);
                for e in out {
                    if let Event::SignalGenerated(g) = e.event
                        && i >= swap_at
                    {
                        assert_eq!(g.model_version, "t-swap");
                        live_signals[k].push((
                            g.candle_open_time,
                            g.action,
                            g.confidence.to_bits(),
                        ));
                    }
                }
            }
        }
        let features = pair_features(&series);
        for (k, s) in symbols.iter().enumerate() {
            let mut model = build_model(&artifact).expect("builds");
            let mut replay = Vec::new();
            for (i, (c, fv)) in series[k].iter().zip(&features[k]).enumerate() {
                let Some(fv) = fv else { continue };
                let sig = model.predict_for(s, fv, c);
                if i == swap_at {
                    assert!(
                        sig.expected_return.is_some(),
                        "{s}: the backtest's model is warm at the swap candle"
                    );
                }
                if i >= swap_at {
                    replay.push((c.open_time, sig.action, sig.confidence.to_bits()));
                }
            }
            assert_eq!(live_signals[k].len(), series[k].len() - swap_at);
            assert_eq!(
                live_signals[k].first(),
                replay.first(),
                "{s}: the first decision after the swap differs from the backtest's"
            );
            assert_eq!(
                live_signals[k], replay,
                "{s}: decisions after the swap differ"
            );
        }
    }

    /// The funding inputs a core computes from rates fetched ahead (the whole history at once,
    /// the worst case for a look-ahead) equal, bit for bit, the training path's over the same
    /// candles and funding file (`qtctl train --funding`): each rate is read only from the
    /// first candle closing at or after its publication time. A model trained with them reads
    /// them; one trained without reads them missing, as it was trained.
    #[test]
    fn funding_inputs_fetched_ahead_equal_the_training_paths_and_only_a_funding_model_reads_them() {
        use qt_features::{CONTEXT_OFFSET, FeatureConfig};
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/futures");
        let candles = qt_candles::read_klines(root.join("5m/BTCUSDT-5m.csv.gz"))
            .expect("the repo's futures candles");
        let candles = &candles[..12_000];
        let history = qt_candles::read_funding_dir(&root.join("funding")).expect("funding");
        let context = qt_models::dataset::funding_inputs(&history);
        let config = FeatureConfig {
            interval_ms: 300_000,
        };
        let offline = qt_features::batch_with_context(
            config,
            &qt_features::market_history(config, &[]),
            context.funding("BTCUSDT"),
            candles,
        );
        let rates: Vec<(i64, f64)> = history["BTCUSDT"]
            .iter()
            .filter_map(|(t, r)| Some((*t, qt_models::dataset::funding_rate_value(*r)?)))
            .collect();
        let mut flagged =
            qt_models::ModelArtifact::momentum(&MomentumConfig::default(), "m-f").expect("valid");
        flagged.funding_features = true;
        let mut funded = pair_core(qt_models::build_model(&flagged).expect("builds"));
        let mut plain = pair_core(Box::new(
            MomentumModel::new(MomentumConfig::default(), "m-p").expect("valid"),
        ));
        for core in [&mut funded, &mut plain] {
            core.funding_fetched("BTCUSDT", &rates);
        }
        let mut compared = 0;
        let mut at_funding_time = 0;
        for (c, want) in candles.iter().zip(&offline) {
            let event = c.to_event("BTCUSDT", 300_000).expect("5m");
            let inputs = |core: &mut Core| {
                let (_, out) = core.on_candle(&event, false);
                out.into_iter().find_map(|e| match e.event {
                    Event::SignalGenerated(g) => {
                        Some(qt_features::context::CONTEXT_NAMES.map(|n| g.features[n].to_bits()))
                    }
                    _ => None,
                })
            };
            let (got, missing) = (inputs(&mut funded), inputs(&mut plain));
            let Some(want) = want else {
                assert_eq!(got, None);
                continue;
            };
            let mut expected = [0u64; 5];
            for (e, v) in expected.iter_mut().zip(&want.values[CONTEXT_OFFSET..]) {
                *e = v.to_bits();
            }
            assert_eq!(got, Some(expected), "candle {}", c.open_time);
            assert_eq!(
                missing,
                Some([0.0f64.to_bits(); 5]),
                "candle {}",
                c.open_time
            );
            compared += 1;
            at_funding_time += usize::from((c.open_time + 300_000) % (8 * 3_600_000) == 0);
        }
        assert!(
            compared > 11_000 && at_funding_time > 100,
            "{compared} {at_funding_time}"
        );
        assert!(funded.model_uses_funding() && !plain.model_uses_funding());
    }
}
