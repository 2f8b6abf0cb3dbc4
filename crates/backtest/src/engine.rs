//! The event loop: every symbol's candles merged by open time, each candle through the live
//! feature engine and model, the risk guard, the exit plan and the fill model.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use qt_candles::Candle;
use qt_events::{PositionSide, SignalAction};
use qt_exits::{EntrySpec, ExitAction, ExitConfig, ExitPlan, StopMove, SymbolProfile};
use qt_features::{FeatureConfig, FeatureEngine, feature_index};
use qt_matching::{Bar, ExitHit, Fill, FillModel, RestingOrder, first_exit};
use qt_models::Model;
use qt_risk::{
    BookFill, IntentKind, RiskBook, RiskGuard, RiskIntent, RiskLimits, Sizing, SymbolFilters,
    reason_code,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::BacktestError;

/// Everything a run needs besides candles and models. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BacktestConfig {
    /// Candle interval, ms. Default 5 minutes.
    pub interval_ms: i64,
    /// Trade only candles opening at or after this time (ms); earlier candles warm up the
    /// features. `None`: from the start of the data.
    pub start_ms: Option<i64>,
    /// Stop before candles opening at or after this time (ms). `None`: to the end of the data.
    pub end_ms: Option<i64>,
    /// Starting equity in the quote asset. Default 10,000.
    pub initial_equity: Decimal,
    /// Smallest model confidence that opens a position. Default 0.5.
    pub min_confidence: f64,
    pub sizing: Sizing,
    pub limits: RiskLimits,
    pub exits: ExitConfig,
    pub fill: FillModel,
    /// Let symbol profiles learn from closed trades during the run (as exit-brain does live).
    /// Default true.
    pub learn_profiles: bool,
    /// Exchange filters by symbol; symbols not listed get filters inferred from their first
    /// price (see [`infer_filters`]).
    pub filters: BTreeMap<String, SymbolFilters>,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        Self {
            interval_ms: 300_000,
            start_ms: None,
            end_ms: None,
            initial_equity: Decimal::from(10_000),
            min_confidence: 0.5,
            sizing: Sizing::default(),
            limits: RiskLimits::default(),
            exits: ExitConfig::default(),
            fill: FillModel::default(),
            learn_profiles: true,
            filters: BTreeMap::new(),
        }
    }
}

/// Plausible filters for a symbol whose `exchangeInfo` is not at hand: a step worth about $1–10
/// of notional, a tick about 1/100,000 of the price, a $5 minimum notional.
pub fn infer_filters(price: Decimal) -> SymbolFilters {
    let p = price.to_f64().unwrap_or(1.0).max(1e-9);
    let step_exp = (10.0 / p).log10().floor() as i32;
    let tick_exp = p.log10().floor() as i32 - 5;
    let pow10 = |e: i32| {
        if e >= 0 {
            Decimal::from(10i64.pow(e.min(18) as u32))
        } else {
            Decimal::new(1, (-e).min(28) as u32)
        }
    };
    let step = pow10(step_exp);
    SymbolFilters {
        tick_size: pow10(tick_exp),
        step_size: step,
        min_qty: step,
        max_qty: Decimal::ZERO,
        min_notional: Decimal::from(5),
    }
}

/// Builds the model of one symbol (models keep per-symbol state, so each symbol gets its own).
pub type ModelFactory<'a> = dyn FnMut(&str) -> Result<Box<dyn Model>, BacktestError> + 'a;

/// One symbol's candles, in open-time order.
#[derive(Debug, Clone)]
pub struct SymbolSeries {
    pub symbol: String,
    pub candles: Vec<Candle>,
}

/// Why a position ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The initial stop.
    Stop,
    /// The stop after it moved to break-even.
    BreakEven,
    /// The trailing stop.
    Trailing,
    /// The last take-profit leg.
    TakeProfit,
    /// The time stop.
    TimeStop,
    /// Still open when the data ended: closed at the last close.
    EndOfData,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Stop => "stop",
            ExitReason::BreakEven => "break_even",
            ExitReason::Trailing => "trailing",
            ExitReason::TakeProfit => "take_profit",
            ExitReason::TimeStop => "time_stop",
            ExitReason::EndOfData => "end_of_data",
        }
    }
}

/// One closed position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub symbol: String,
    pub side: PositionSide,
    pub entry_time: i64,
    pub exit_time: i64,
    pub entry_price: Decimal,
    /// Average exit price over every leg and stop.
    pub exit_price: Decimal,
    pub qty: Decimal,
    /// PnL before fees.
    pub gross_pnl: Decimal,
    /// Entry and exit fees.
    pub fees: Decimal,
    pub net_pnl: Decimal,
    pub legs_hit: usize,
    pub exit_reason: ExitReason,
}

/// One point of the equity curve: equity (realized + unrealized at close) after a candle time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    pub time_ms: i64,
    pub equity: Decimal,
    /// Gross notional held at that time.
    pub exposure: Decimal,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestOutcome {
    pub trades: Vec<Trade>,
    pub equity: Vec<EquityPoint>,
    /// Candles processed (warm-up included).
    pub candles: u64,
    /// Entries the risk guard or sizing refused, by reason code.
    pub rejections: BTreeMap<String, u64>,
    /// Learned profiles at the end of the run.
    pub profiles: BTreeMap<String, SymbolProfile>,
    pub initial_equity: Decimal,
    pub leverage: u32,
}

struct PendingEntry {
    intent_id: String,
    side: PositionSide,
    qty: Decimal,
    volatility: f64,
}

struct OpenTrade {
    plan: ExitPlan,
    entry_time: i64,
    gross: Decimal,
    fees: Decimal,
    exit_value: Decimal,
    exit_qty: Decimal,
    stop_kind: Option<StopMove>,
}

struct SymState {
    symbol: String,
    candles: Vec<Candle>,
    cursor: usize,
    features: FeatureEngine,
    model: Box<dyn Model>,
    filters: SymbolFilters,
    profile: SymbolProfile,
    entry: Option<PendingEntry>,
    open: Option<OpenTrade>,
    pending_exit: Option<(Decimal, ExitReason)>,
    last_bar: Option<(Bar, i64)>,
    intent: RiskIntent,
}

fn to_bar(c: &Candle) -> Bar {
    Bar {
        open_time: c.open_time,
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        volume: c.volume,
    }
}

fn exit_side(side: PositionSide) -> qt_events::Side {
    side.exit_side()
}

/// The backtester. Build it with [`Backtest::new`], then [`Backtest::run`].
#[derive(Debug)]
pub struct Backtest {
    config: BacktestConfig,
    guard: RiskGuard,
}

impl std::fmt::Debug for SymState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymState")
            .field("symbol", &self.symbol)
            .field("cursor", &self.cursor)
            .finish()
    }
}

struct Run<'a> {
    cfg: &'a BacktestConfig,
    guard: &'a RiskGuard,
    book: RiskBook,
    realized: Decimal,
    trades: Vec<Trade>,
    rejections: BTreeMap<&'static str, u64>,
    next_intent: u64,
    rv_idx: usize,
    day_scale: f64,
}

impl Backtest {
    /// Checks the configuration.
    pub fn new(config: BacktestConfig) -> Result<Self, BacktestError> {
        config
            .exits
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))?;
        if config.interval_ms <= 0 {
            return Err(BacktestError::Config("interval must be positive".into()));
        }
        if config.initial_equity <= Decimal::ZERO {
            return Err(BacktestError::Config(
                "initial equity must be positive".into(),
            ));
        }
        let mut guard = RiskGuard::new(config.limits.clone());
        guard.filters = config.filters.clone();
        Ok(Self { config, guard })
    }

    pub fn config(&self) -> &BacktestConfig {
        &self.config
    }

    /// Runs every series at once, candle by candle in open-time order. `model_for` builds the
    /// model of one symbol (models keep per-symbol state); `progress(done, total)` is called
    /// now and then with candle counts.
    pub fn run(
        &self,
        series: Vec<SymbolSeries>,
        model_for: &mut ModelFactory<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BacktestOutcome, BacktestError> {
        let cfg = &self.config;
        let fcfg = FeatureConfig {
            interval_ms: cfg.interval_ms,
        };
        let mut guard = self.guard.clone();
        let mut syms = Vec::with_capacity(series.len());
        let mut total = 0u64;
        for s in series {
            let end = cfg.end_ms.unwrap_or(i64::MAX);
            let mut candles = s.candles;
            candles.truncate(candles.partition_point(|c| c.open_time < end));
            let Some(first) = candles.first() else {
                continue;
            };
            let filters = match cfg.filters.get(&s.symbol) {
                Some(f) => *f,
                None => {
                    let f = infer_filters(first.close);
                    guard.filters.insert(s.symbol.clone(), f);
                    f
                }
            };
            total += candles.len() as u64;
            syms.push(SymState {
                model: model_for(&s.symbol)?,
                symbol: s.symbol.clone(),
                candles,
                cursor: 0,
                features: FeatureEngine::new(fcfg),
                filters,
                profile: SymbolProfile::default(),
                entry: None,
                open: None,
                pending_exit: None,
                last_bar: None,
                intent: RiskIntent {
                    intent_id: String::new(),
                    symbol: s.symbol,
                    kind: IntentKind::Close,
                },
            });
        }
        let start_t = syms
            .iter()
            .filter_map(|s| s.candles.first())
            .map(|c| c.open_time)
            .min()
            .unwrap_or(0);
        let mut run = Run {
            cfg,
            guard: &guard,
            book: RiskBook::new(start_t),
            realized: Decimal::ZERO,
            trades: Vec::new(),
            rejections: BTreeMap::new(),
            next_intent: 0,
            rv_idx: feature_index("rv_24h").unwrap_or(0),
            day_scale: (fcfg.day_candles() as f64).sqrt(),
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
                let Some(c) = s.candles.get(s.cursor) else {
                    continue;
                };
                if c.open_time != t {
                    continue;
                }
                let c = *c;
                s.cursor += 1;
                done += 1;
                run.candle(s, &c, now)?;
            }
            run.guard.observe(&mut run.book, now);
            if cfg.start_ms.is_none_or(|st| t >= st) {
                let eq = cfg.initial_equity + run.realized + run.book.unrealized();
                run.book.equity = Some(eq);
                equity.push(EquityPoint {
                    time_ms: now,
                    equity: eq,
                    exposure: run.book.exposure().gross(),
                });
            }
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
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            profiles: syms.into_iter().map(|s| (s.symbol, s.profile)).collect(),
            initial_equity: cfg.initial_equity,
            leverage: cfg.sizing.leverage(),
        })
    }
}

impl Run<'_> {
    fn candle(&mut self, s: &mut SymState, c: &Candle, now: i64) -> Result<(), BacktestError> {
        let bar = to_bar(c);
        let tradable = bar.is_valid();
        if tradable {
            s.last_bar = Some((bar, now));
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
            self.book.on_price(&s.symbol, c.close);
        }
        let Some(fv) = s.features.update(c) else {
            return Ok(());
        };
        let signal = s.model.predict(&fv, c);
        let in_range = self.cfg.start_ms.is_none_or(|st| c.open_time >= st);
        let flat = s.open.is_none() && s.entry.is_none() && s.pending_exit.is_none();
        if !(tradable && in_range && flat) || signal.confidence < self.cfg.min_confidence {
            return Ok(());
        }
        let side = match signal.action {
            SignalAction::Buy => PositionSide::Long,
            SignalAction::Sell => PositionSide::Short,
            SignalAction::Hold => return Ok(()),
        };
        let volatility = fv.values[self.rv_idx] * self.day_scale;
        self.try_enter(s, side, c.close, volatility, now);
        Ok(())
    }

    fn reject(&mut self, code: &'static str) {
        *self.rejections.entry(code).or_insert(0) += 1;
    }

    fn try_enter(
        &mut self,
        s: &mut SymState,
        side: PositionSide,
        price: Decimal,
        volatility: f64,
        now: i64,
    ) {
        let stop_pct = self.cfg.exits.stop_pct * s.profile.stop_mult / Decimal::ONE_HUNDRED;
        let stop = match side {
            PositionSide::Long => price * (Decimal::ONE - stop_pct),
            PositionSide::Short => price * (Decimal::ONE + stop_pct),
        };
        let qty = match self.cfg.sizing.quantity(price, stop, &s.filters) {
            Ok(q) => q,
            Err(_) => return self.reject("SIZING"),
        };
        self.next_intent += 1;
        // The intent is reused from candle to candle: refused entries allocate nothing.
        let intent = &mut s.intent;
        intent.intent_id.clear();
        let _ = write!(intent.intent_id, "bt-{}", self.next_intent);
        intent.kind = IntentKind::Open {
            side,
            qty,
            reference_price: price,
            limit_price: None,
            leverage: self.cfg.sizing.leverage(),
        };
        match self.guard.admit_code(&mut self.book, intent, now).reason() {
            None => {
                s.entry = Some(PendingEntry {
                    intent_id: intent.intent_id.clone(),
                    side,
                    qty,
                    volatility,
                })
            }
            Some(r) => self.reject(reason_code(r)),
        }
    }

    /// A market entry works for one candle: it fills at the open (plus slippage) up to the
    /// volume cap; what is left is cancelled and the exit legs are sized to what filled.
    fn fill_entry(
        &mut self,
        s: &mut SymState,
        e: PendingEntry,
        bar: &Bar,
        now: i64,
    ) -> Result<(), BacktestError> {
        let order = RestingOrder {
            side: e.side.entry_side(),
            limit_price: None,
            remaining: e.qty,
        };
        let fill = self
            .cfg
            .fill
            .on_bar(&order, bar, s.filters.step_size)
            .ok()
            .flatten();
        if let Some(f) = fill.filter(|f| f.qty > Decimal::ZERO) {
            self.book.on_fill(
                &BookFill {
                    intent_id: Some(e.intent_id.clone()),
                    symbol: s.symbol.clone(),
                    side: f.side,
                    qty: f.qty,
                    price: f.price,
                    fee: f.fee,
                },
                now,
            );
            self.realized -= f.fee;
            let spec = EntrySpec {
                side: e.side,
                price: f.price,
                qty: e.qty,
                opened_ms: bar.open_time,
                filters: s.filters,
            };
            let mut plan = ExitPlan::new(spec, e.volatility, &s.profile, &self.cfg.exits)
                .map_err(|err| BacktestError::Config(err.to_string()))?;
            plan.on_entry_fill(f.qty);
            s.open = Some(OpenTrade {
                plan,
                entry_time: bar.open_time,
                gross: Decimal::ZERO,
                fees: f.fee,
                exit_value: Decimal::ZERO,
                exit_qty: Decimal::ZERO,
                stop_kind: None,
            });
        }
        self.book.on_ended(&e.intent_id);
        Ok(())
    }

    /// Stop and take-profit legs against the candle, the stop first whenever both are inside it.
    fn check_exits(&mut self, s: &mut SymState, bar: &Bar, now: i64) {
        loop {
            let Some(t) = &s.open else { return };
            let side = t.plan.side;
            // the leg's index, not its name: no allocation unless it is hit
            let next = t
                .plan
                .legs
                .iter()
                .position(|l| !l.is_done())
                .map(|i| (i, t.plan.legs[i].price, t.plan.legs[i].open_qty()));
            let hit = first_exit(
                side,
                Some(t.plan.stop_price),
                next.as_ref().map(|n| n.1),
                bar,
            );
            match (hit, next) {
                (ExitHit::Stop(p), _) => {
                    let reason = match t.stop_kind {
                        None => ExitReason::Stop,
                        Some(StopMove::BreakEven) => ExitReason::BreakEven,
                        Some(StopMove::Trailing) => ExitReason::Trailing,
                    };
                    let qty = t.plan.open_qty;
                    self.market_exit(s, qty, Some(p), bar, now, reason);
                    return;
                }
                (ExitHit::Target(p), Some((leg_idx, _, leg_qty))) => {
                    let leg = t.plan.legs[leg_idx].name.clone();
                    let wanted = leg_qty.min(t.plan.open_qty);
                    let order = RestingOrder {
                        side: exit_side(side),
                        limit_price: None,
                        remaining: wanted,
                    };
                    let fill = self
                        .cfg
                        .fill
                        .taker_at(&order, p, bar, s.filters.step_size)
                        .ok()
                        .flatten();
                    let Some(f) = fill.filter(|f| f.qty > Decimal::ZERO) else {
                        return;
                    };
                    let partial = f.qty < wanted;
                    self.apply_exit(s, &f, now, Some(&leg), ExitReason::TakeProfit);
                    if partial {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Trailing, break-even bookkeeping and the time stop after the candle has been checked, so
    /// that a stop moved by this candle only counts from the next one.
    fn manage(&mut self, s: &mut SymState, bar: &Bar, now: i64) {
        let Some(t) = &mut s.open else { return };
        for a in t.plan.on_range(bar.high, bar.low, now) {
            match a {
                ExitAction::MoveStop { why, .. } => t.stop_kind = Some(why),
                ExitAction::TimeStop { qty } => {
                    self.market_exit(s, qty, Some(bar.close), bar, now, ExitReason::TimeStop);
                    return;
                }
                ExitAction::ResizeLegs => {}
            }
        }
    }

    /// A reduce-only taker exit at `price` (or the open for a working remainder); whatever the
    /// volume cap leaves stays working into the next candle.
    fn market_exit(
        &mut self,
        s: &mut SymState,
        qty: Decimal,
        price: Option<Decimal>,
        bar: &Bar,
        now: i64,
        reason: ExitReason,
    ) {
        let Some(t) = &s.open else { return };
        let qty = qty.min(t.plan.open_qty);
        if qty <= Decimal::ZERO {
            return;
        }
        let order = RestingOrder {
            side: exit_side(t.plan.side),
            limit_price: None,
            remaining: qty,
        };
        let step = s.filters.step_size;
        let fill = match price {
            Some(p) => self.cfg.fill.taker_at(&order, p, bar, step),
            None => self.cfg.fill.on_bar(&order, bar, step),
        };
        let filled = match fill.ok().flatten().filter(|f| f.qty > Decimal::ZERO) {
            Some(f) => {
                let q = f.qty;
                self.apply_exit(s, &f, now, None, reason);
                q
            }
            None => Decimal::ZERO,
        };
        if filled < qty && s.open.is_some() {
            s.pending_exit = Some((qty - filled, reason));
        }
    }

    fn apply_exit(
        &mut self,
        s: &mut SymState,
        f: &Fill,
        now: i64,
        leg: Option<&str>,
        reason: ExitReason,
    ) {
        let Some(t) = &mut s.open else { return };
        let out = self.book.on_fill(
            &BookFill {
                intent_id: None,
                symbol: s.symbol.clone(),
                side: f.side,
                qty: f.qty,
                price: f.price,
                fee: f.fee,
            },
            now,
        );
        self.realized += out.realized_pnl - f.fee;
        t.gross += out.realized_pnl;
        t.fees += f.fee;
        t.exit_value += f.price * f.qty;
        t.exit_qty += f.qty;
        match leg {
            Some(name) => {
                for a in t.plan.on_leg_hit(name, f.qty).unwrap_or_default() {
                    if let ExitAction::MoveStop { why, .. } = a {
                        t.stop_kind = Some(why);
                    }
                }
            }
            None => t.plan.on_reduced(f.qty),
        }
        if t.plan.is_closed() {
            self.finish(s, now, reason);
        }
    }

    fn finish(&mut self, s: &mut SymState, now: i64, reason: ExitReason) {
        let Some(t) = s.open.take() else { return };
        s.pending_exit = None;
        if self.cfg.learn_profiles {
            s.profile.learn(&t.plan.outcome(), &self.cfg.exits);
        }
        let exit_price = if t.exit_qty > Decimal::ZERO {
            t.exit_value / t.exit_qty
        } else {
            Decimal::ZERO
        };
        self.trades.push(Trade {
            symbol: s.symbol.clone(),
            side: t.plan.side,
            entry_time: t.entry_time,
            exit_time: now,
            entry_price: t.plan.entry_price,
            exit_price: exit_price.round_dp(8),
            qty: t.plan.qty,
            gross_pnl: t.gross,
            fees: t.fees,
            net_pnl: t.gross - t.fees,
            legs_hit: t.plan.outcome().legs_hit,
            exit_reason: reason,
        });
    }

    /// Positions still open when the data ends are closed at the last close, with a taker fee.
    fn close_at_end(&mut self, s: &mut SymState) {
        let (Some(t), Some((bar, now))) = (&s.open, s.last_bar) else {
            return;
        };
        let qty = t.plan.open_qty;
        let price = bar.close;
        let fee = self
            .cfg
            .fill
            .fee(price * qty, qt_matching::Liquidity::Taker);
        let f = Fill {
            side: exit_side(t.plan.side),
            price,
            qty,
            fee,
            liquidity: qt_matching::Liquidity::Taker,
        };
        self.apply_exit(s, &f, now, None, ExitReason::EndOfData);
    }
}
