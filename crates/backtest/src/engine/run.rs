//! One run: the symbols' state, the merge by open time and each candle's entry decision
//! (exits and fills in [`exits`]).

mod exits;

use std::collections::BTreeMap;

use qt_candles::Candle;
use qt_events::{PositionSide, SignalAction};
use qt_exits::{ExitConfig, ExitPlan, StopMove, SymbolProfile};
use qt_features::{FeatureConfig, FeatureVector, UniverseFeatures, feature_index};
use qt_matching::Bar;
use qt_models::Model;
use qt_risk::{IntentKind, RiskBook, RiskGuard, RiskIntent, SymbolFilters, reason_code};
use rust_decimal::Decimal;

use super::config::{BacktestConfig, infer_filters};
use super::outcome::{BacktestOutcome, EquityPoint, ExitReason, Trade};
use super::series::Features;
use super::{Backtest, ModelFactory};
use crate::BacktestError;
use crate::funding::FundingClock;

struct PendingEntry {
    intent_id: String,
    side: PositionSide,
    qty: Decimal,
    volatility: f64,
    /// The exits of the model that decided the entry (`None`: the run's), taken at the
    /// decision: a model swapped in before the fill does not change them.
    exits: Option<Box<ExitConfig>>,
}

struct OpenTrade {
    plan: ExitPlan,
    /// The stop as placed at the entry (the trade's record keeps it for the charts).
    initial_stop: Decimal,
    entry_time: i64,
    gross: Decimal,
    fees: Decimal,
    funding: Decimal,
    exit_value: Decimal,
    exit_qty: Decimal,
    stop_kind: Option<StopMove>,
}

struct SymState<'d> {
    /// Index among the run's symbols (its funding schedule).
    index: usize,
    symbol: String,
    /// The candles before the run's end.
    candles: &'d [Candle],
    cursor: usize,
    features: Features<'d>,
    model: Box<dyn Model>,
    filters: SymbolFilters,
    /// The guard's exchange filters of the symbol (`RiskGuard::filters`), looked up once for
    /// every entry it checks.
    guard_filters: Option<SymbolFilters>,
    profile: SymbolProfile,
    entry: Option<PendingEntry>,
    open: Option<OpenTrade>,
    pending_exit: Option<(Decimal, ExitReason)>,
    last_bar: Option<(Bar, i64)>,
    intent: RiskIntent,
    /// `1 − stop%` and `1 + stop%` of the symbol's profile (the long and the short stop as a
    /// share of the entry price) for the stop distance they were computed with, computed when
    /// first needed and again after the profile learns or the model's exits change.
    stop_factors: Option<(Decimal, Decimal, Decimal)>,
}

/// Adds one to the decimal number that ends `id` (`bt-129` becomes `bt-130`, `bt-99` becomes
/// `bt-100`): the next intent id, written as `format!("bt-{n}")` writes it, without formatting.
fn increment_id(id: &mut String) {
    let mut nines = 0;
    while id.ends_with('9') {
        id.pop();
        nines += 1;
    }
    match id.pop() {
        Some(d) if d.is_ascii_digit() => {
            let next = d.to_digit(10).map_or(1, |v| v + 1);
            id.push(char::from_digit(next, 10).unwrap_or('1'));
        }
        Some(other) => {
            id.push(other);
            id.push('1');
        }
        None => id.push('1'),
    }
    id.extend(std::iter::repeat_n('0', nines));
}

fn exit_side(side: PositionSide) -> qt_events::Side {
    side.exit_side()
}

impl std::fmt::Debug for SymState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymState")
            .field("symbol", &self.symbol)
            .field("cursor", &self.cursor)
            .finish()
    }
}

struct Run<'a> {
    cfg: &'a BacktestConfig,
    funding: FundingClock<'a>,
    guard: &'a RiskGuard,
    book: RiskBook,
    realized: Decimal,
    trades: Vec<Trade>,
    /// Refused entries by reason code, in the order the codes first came (a handful of codes,
    /// counted at every refused entry: a short list beats a map).
    rejections: Vec<(&'static str, u64)>,
    /// The last intent id given (`bt-N`, N counting every sized entry).
    intent_id: String,
    rv_idx: usize,
    day_scale: f64,
    /// Size and admit by the reference arithmetic.
    reference: bool,
    /// Features of the series run without prepared features, as trading-bot computes them.
    universe: UniverseFeatures,
}

impl Backtest {
    #[allow(clippy::type_complexity)]
    pub(super) fn run_inner(
        &self,
        inputs: Vec<(&str, &[Candle], Option<(&[Option<FeatureVector>], &[bool])>)>,
        model_for: &mut ModelFactory<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BacktestOutcome, BacktestError> {
        let cfg = &self.config;
        let fcfg = FeatureConfig {
            interval_ms: cfg.interval_ms,
        };
        let mut guard = self.guard.clone();
        let mut syms = Vec::with_capacity(inputs.len());
        let mut total = 0u64;
        for (symbol, candles, features) in inputs {
            let end = cfg.end_ms.unwrap_or(i64::MAX);
            let candles = &candles[..candles.partition_point(|c| c.open_time < end)];
            let Some(first) = candles.first() else {
                continue;
            };
            let features = match features {
                Some((f, v)) if f.len() >= candles.len() && v.len() >= candles.len() => {
                    Features::Shared(f, v)
                }
                Some(_) => {
                    return Err(BacktestError::Config(format!(
                        "{symbol}: fewer prepared features than candles"
                    )));
                }
                None => Features::Live,
            };
            let filters = match cfg.filters.get(symbol) {
                Some(f) => *f,
                None => {
                    let f = infer_filters(first.close);
                    guard.set_filters(symbol, f);
                    f
                }
            };
            total += candles.len() as u64;
            syms.push(SymState {
                index: syms.len(),
                model: model_for(symbol)?,
                symbol: symbol.to_owned(),
                candles,
                cursor: 0,
                features,
                filters,
                guard_filters: None,
                profile: SymbolProfile::default(),
                entry: None,
                open: None,
                pending_exit: None,
                last_bar: None,
                intent: RiskIntent {
                    intent_id: String::new(),
                    symbol: symbol.to_owned(),
                    kind: IntentKind::Close,
                },
                stop_factors: None,
            });
        }
        // The guard's filters are all set now: each symbol's are looked up once.
        for s in &mut syms {
            s.guard_filters = guard.filters(&s.symbol).copied();
        }
        let start_t = syms
            .iter()
            .filter_map(|s| s.candles.first())
            .map(|c| c.open_time)
            .min()
            .unwrap_or(0);
        let mut run = Run {
            cfg,
            funding: FundingClock::new(&cfg.funding, syms.iter().map(|s| s.symbol.as_str())),
            guard: &guard,
            book: RiskBook::new(start_t),
            realized: Decimal::ZERO,
            trades: Vec::new(),
            rejections: Vec::new(),
            intent_id: String::from("bt-0"),
            rv_idx: feature_index("rv_24h").unwrap_or(0),
            reference: self.reference,
            day_scale: (fcfg.day_candles() as f64).sqrt(),
            universe: UniverseFeatures::new(fcfg).with_context(cfg.context_inputs()),
        };
        let mut equity = Vec::new();
        let mut done = 0u64;
        let mut next_report = 0u64;
        let step = (total / 200).max(50_000);
        while let Some(t) = syms
            .iter()
            .filter_map(|s| s.candles.get(s.cursor))
            .map(|c| c.open_time)
            .min()
        {
            let now = t + cfg.interval_ms - 1;
            for s in syms.iter_mut() {
                let candles = s.candles;
                let Some(c) = candles.get(s.cursor) else {
                    continue;
                };
                if c.open_time != t {
                    continue;
                }
                s.cursor += 1;
                done += 1;
                run.candle(s, c, now)?;
            }
            if cfg.start_ms.is_none_or(|st| t >= st) {
                // The marks moved: the book's sums once, then read as they are.
                run.book.settle();
                let eq = cfg.initial_equity + run.realized + run.book.unrealized();
                run.book.equity = Some(eq);
                equity.push(EquityPoint {
                    time_ms: now,
                    equity: eq,
                    exposure: run.book.exposure().gross(),
                });
            }
            // After the equity: the drawdown breaker trips on the candle time that reached it.
            run.guard.observe(&mut run.book, now);
            if done >= next_report {
                progress(done, total);
                next_report = done + step;
            }
        }
        for s in syms.iter_mut() {
            run.close_at_end(s);
        }
        if let (Some(last), false) = (equity.last_mut(), syms.is_empty()) {
            last.equity = cfg.initial_equity + run.realized;
            last.exposure = Decimal::ZERO;
        }
        progress(done, total);
        Ok(BacktestOutcome {
            trades: run.trades,
            equity,
            candles: done,
            rejections: run
                .rejections
                .iter()
                .fold(BTreeMap::new(), |mut m, (k, v)| {
                    *m.entry((*k).to_owned()).or_insert(0) += v;
                    m
                }),
            profiles: syms.into_iter().map(|s| (s.symbol, s.profile)).collect(),
            initial_equity: cfg.initial_equity,
            leverage: cfg.sizing.leverage(),
            breaker_tripped_at: run.book.drawdown_halt.map(|h| h.since_ms),
        })
    }
}

impl Run<'_> {
    fn candle<'d>(
        &mut self,
        s: &mut SymState<'d>,
        c: &Candle,
        now: i64,
    ) -> Result<(), BacktestError> {
        let bar = Bar::from(c);
        let tradable = match s.features {
            // the cursor already points past this candle
            Features::Shared(_, valid) => valid[s.cursor - 1],
            Features::Live => bar.is_valid(),
        };
        if tradable {
            s.last_bar = Some((bar, now));
            self.charge_funding(s, c);
            if let Some((qty, reason)) = s.pending_exit.take() {
                self.market_exit(s, qty, None, &bar, now, reason);
            }
            if let Some(entry) = s.entry.take() {
                self.fill_entry(s, entry, &bar, now)?;
            }
            if s.open.is_some() {
                self.check_exits(s, &bar, now);
            }
            self.manage(s, &bar, now);
            // Marks value positions only (an order in flight counts at its reference price):
            // a symbol without one needs none, and its first fill sets it.
            if s.open.is_some() {
                self.book.on_price(&s.symbol, c.close);
            }
        }
        let live;
        let fv = match &mut s.features {
            Features::Live => {
                live = self.universe.update(&s.symbol, c);
                live.as_ref()
            }
            Features::Shared(v, _) => {
                let v: &'d [Option<FeatureVector>] = v;
                v[s.cursor - 1].as_ref()
            }
        };
        let Some(fv) = fv else {
            return Ok(());
        };
        let signal = s.model.predict_for(&s.symbol, fv, c);
        let in_range = self.cfg.start_ms.is_none_or(|st| c.open_time >= st);
        if !(tradable && in_range && signal.clears(self.cfg.min_confidence)) {
            return Ok(());
        }
        let side = match signal.action {
            SignalAction::Buy => PositionSide::Long,
            SignalAction::Sell => PositionSide::Short,
            SignalAction::Hold => return Ok(()),
        };
        if s.pending_exit.is_none()
            && let Some(t) = &mut s.open
        {
            // A plan that closes on the opposite signal: at the next candle's open, as an entry
            // decided on this close would fill.
            if let Some(qty) = t.plan.on_signal(side) {
                s.pending_exit = Some((qty, ExitReason::SignalFlip));
            }
            return Ok(());
        }
        if s.open.is_some() || s.entry.is_some() || s.pending_exit.is_some() {
            return Ok(());
        }
        let volatility = fv.values[self.rv_idx] * self.day_scale;
        let edge = signal.expected_return.map(|e| qt_risk::Edge {
            win_probability: signal.confidence,
            expected_return: e,
        });
        self.try_enter(s, side, c.close, volatility, edge, now);
        Ok(())
    }

    /// Funding falling in this candle, charged on the position open at its start (at the
    /// open price) before the candle's fills: an entry filled at this open does not pay it, an
    /// exit filled at this open does.
    fn charge_funding(&mut self, s: &mut SymState<'_>, c: &Candle) {
        let Some(rate) = self.funding.due(s.index, c.open_time, self.cfg.interval_ms) else {
            return;
        };
        let Some(t) = &mut s.open else { return };
        let notional = t.plan.open_qty * c.open;
        let paid = match t.plan.side {
            PositionSide::Long => notional * rate,
            PositionSide::Short => -(notional * rate),
        };
        t.funding += paid;
        self.realized -= paid;
    }

    fn reject(&mut self, code: &'static str) {
        // The codes are the same literals each time: compare addresses first, text if need be.
        let at = (self.rejections.iter())
            .position(|(c, _)| std::ptr::eq(*c, code))
            .or_else(|| self.rejections.iter().position(|(c, _)| *c == code));
        match at {
            Some(i) => self.rejections[i].1 += 1,
            None => self.rejections.push((code, 1)),
        }
    }

    fn try_enter(
        &mut self,
        s: &mut SymState<'_>,
        side: PositionSide,
        price: Decimal,
        volatility: f64,
        edge: Option<qt_risk::Edge>,
        now: i64,
    ) {
        // A halt refuses every entry: no need to size this one first.
        if let Some(r) = self.guard.entries_halted(&self.book) {
            return self.reject(reason_code(r));
        }
        // The exits of the model that decided (a per-entry look-up, not a per-candle one).
        let exits = s.model.exits();
        // Only the sizings that risk a loss at the stop read it.
        let stop = if self.cfg.sizing.reads_stop() {
            let distance = exits
                .unwrap_or(&self.cfg.exits)
                .stop_distance_pct(volatility);
            if s.stop_factors.is_some_and(|f| f.0 != distance) {
                s.stop_factors = None;
            }
            let (_, below, above) = *s.stop_factors.get_or_insert_with(|| {
                let stop_pct = distance * s.profile.stop_mult / Decimal::ONE_HUNDRED;
                (distance, Decimal::ONE - stop_pct, Decimal::ONE + stop_pct)
            });
            match side {
                PositionSide::Long => price * below,
                PositionSide::Short => price * above,
            }
        } else {
            price
        };
        let ctx = qt_risk::SizingContext {
            edge,
            equity: self.book.equity,
        };
        let sized = if self.reference {
            self.cfg
                .sizing
                .quantity_reference(price, stop, &s.filters, &ctx)
        } else {
            self.cfg.sizing.quantity_with(price, stop, &s.filters, &ctx)
        };
        let qty = match sized {
            Ok(q) => q,
            Err(_) => return self.reject("SIZING"),
        };
        increment_id(&mut self.intent_id);
        // The intent is reused from candle to candle: refused entries allocate nothing.
        let intent = &mut s.intent;
        intent.intent_id.clone_from(&self.intent_id);
        intent.kind = IntentKind::Open {
            side,
            qty,
            reference_price: price,
            limit_price: None,
            leverage: self.cfg.sizing.leverage(),
        };
        let decision = if self.reference {
            self.guard.admit_reference(&mut self.book, intent, now)
        } else {
            let filters = s.guard_filters.as_ref();
            self.guard
                .admit_code_with_filters(&mut self.book, intent, now, filters)
        };
        match decision.reason() {
            None => {
                s.entry = Some(PendingEntry {
                    intent_id: intent.intent_id.clone(),
                    side,
                    qty,
                    volatility,
                    exits: s.model.exits().map(|e| Box::new(e.clone())),
                })
            }
            Some(r) => self.reject(reason_code(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::increment_id;

    #[test]
    fn intent_ids_count_up_as_the_formatter_writes_them() {
        let mut id = String::from("bt-0");
        for n in 1..=120_000u64 {
            increment_id(&mut id);
            assert_eq!(id, format!("bt-{n}"));
        }
        let mut id = String::from("bt-9999999999");
        increment_id(&mut id);
        assert_eq!(id, "bt-10000000000");
    }
}
