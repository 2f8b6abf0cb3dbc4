//! The event loop: every symbol's candles merged by open time, each candle through the live
//! feature engine and model, the risk guard, the exit plan and the fill model.

use std::collections::BTreeMap;

use qt_candles::Candle;
use qt_events::{PositionSide, SignalAction};
use qt_exits::{EntrySpec, ExitAction, ExitConfig, ExitPlan, StopMove, SymbolProfile};
use qt_features::{FeatureConfig, FeatureVector, UniverseFeatures, feature_index};
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
use crate::funding::{FundingClock, FundingConfig};

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
    /// Smallest model confidence that opens a position. Default 0.5. A model that prices its
    /// trades (an expected return on the signal) is judged by its own validated margin instead.
    pub min_confidence: f64,
    pub sizing: Sizing,
    pub limits: RiskLimits,
    pub exits: ExitConfig,
    pub fill: FillModel,
    /// Funding of open positions at each funding time (history files or a default rate).
    pub funding: FundingConfig,
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
            funding: FundingConfig::default(),
            learn_profiles: true,
            filters: BTreeMap::new(),
        }
    }
}

impl BacktestConfig {
    /// The costs this configuration charges a round trip, as a model that prices its trades
    /// ([`qt_models::ev`]) counts them: the taker fee and slippage per side, and the default
    /// funding rate per 8 hours.
    pub fn trade_costs(&self) -> qt_models::TradeCosts {
        let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
        let per_8h = 8.0 / f64::from(self.funding.interval_hours.max(1));
        qt_models::TradeCosts {
            fee_rate: f(self.fill.taker_fee),
            slippage: f(self.fill.slippage),
            funding_rate_8h: f(self.funding.default_rate) * per_8h,
        }
    }

    /// The labels a model for this configuration is trained with: its exits and costs, each
    /// trade followed for up to `horizon` candles.
    pub fn labeling(&self, horizon: usize) -> qt_models::LabelConfig {
        qt_models::LabelConfig {
            exits: self.exits.clone(),
            horizon,
            costs: self.trade_costs(),
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
        ..SymbolFilters::NONE
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

/// One symbol's candles with their features computed once (the batch path of the live
/// engine, so bit-identical), for many runs over the same data: a walk-forward's strategy,
/// baselines and random paths share them instead of each recomputing every feature.
#[derive(Debug, Clone)]
pub struct PreparedSeries {
    pub symbol: String,
    pub candles: std::sync::Arc<[Candle]>,
    features: std::sync::Arc<[Option<FeatureVector>]>,
    /// Whether each candle can be traded on (`Bar::is_valid`), checked once.
    valid: std::sync::Arc<[bool]>,
}

impl PreparedSeries {
    /// Computes the features of a universe's series at `interval_ms`, each with the market
    /// factor read from the universe's reference series (as
    /// [`qt_features::UniverseFeatures`] gives them live).
    pub fn prepare_all(series: &[SymbolSeries], interval_ms: i64) -> Vec<Self> {
        let fcfg = FeatureConfig { interval_ms };
        let refs: Vec<(&str, &[Candle])> = series
            .iter()
            .map(|s| (s.symbol.as_str(), s.candles.as_slice()))
            .collect();
        let market = qt_features::market_history(fcfg, &refs);
        series
            .iter()
            .map(|s| Self::with_market(s.clone(), fcfg, &market))
            .collect()
    }

    fn with_market(
        series: SymbolSeries,
        fcfg: FeatureConfig,
        market: &qt_features::MarketFactor,
    ) -> Self {
        let features = qt_features::batch_with_market(fcfg, market, &series.candles);
        let valid: Vec<bool> = series
            .candles
            .iter()
            .map(|c| Bar::from(c).is_valid())
            .collect();
        Self {
            symbol: series.symbol,
            candles: series.candles.into(),
            features: features.into(),
            valid: valid.into(),
        }
    }
}

/// Where a run takes each candle's features from.
enum Features<'d> {
    /// Computed as the candles pass, as trading-bot does live (the run's
    /// [`UniverseFeatures`]).
    Live,
    /// Computed beforehand, indexed like the candles, with each candle's validity.
    Shared(&'d [Option<FeatureVector>], &'d [bool]),
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
    /// Funding paid over the trade's life (negative: earned).
    #[serde(default)]
    pub funding: Decimal,
    /// Gross PnL minus fees and funding.
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
    /// When the drawdown breaker stopped entries (ms); nobody resumes in a backtest.
    pub breaker_tripped_at: Option<i64>,
}

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

/// The backtester. Build it with [`Backtest::new`], then [`Backtest::run`].
#[derive(Debug)]
pub struct Backtest {
    config: BacktestConfig,
    guard: RiskGuard,
    /// Size and check entries by the risk crate's reference arithmetic (see
    /// [`Backtest::with_reference_arithmetic`]).
    reference: bool,
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
        config
            .limits
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))?;
        let mut guard = RiskGuard::new(config.limits.clone());
        guard.filters = config.filters.clone();
        Ok(Self {
            config,
            guard,
            reference: false,
        })
    }

    /// The same backtest sizing entries with `Sizing::quantity_reference` and admitting them
    /// with `RiskGuard::admit_reference`: every figure of those steps in `Decimal` arithmetic,
    /// as they are defined, instead of the exact integer paths the engine takes. Slower, and
    /// the same outcome to the bit — tests run both and compare.
    pub fn with_reference_arithmetic(mut self) -> Self {
        self.reference = true;
        self
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
        let inputs = series
            .iter()
            .map(|s| (s.symbol.as_str(), s.candles.as_slice(), None))
            .collect();
        self.run_inner(inputs, model_for, progress)
    }

    /// [`Backtest::run`] over series whose features were computed beforehand (see
    /// [`PreparedSeries`]); the same result, without recomputing them.
    ///
    /// # Errors
    /// As [`Backtest::run`]; a series prepared at another interval than the run's is refused.
    pub fn run_prepared(
        &self,
        series: &[PreparedSeries],
        model_for: &mut ModelFactory<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<BacktestOutcome, BacktestError> {
        let inputs = series
            .iter()
            .map(|s| {
                let prepared = (&s.features[..], &s.valid[..]);
                (s.symbol.as_str(), &s.candles[..], Some(prepared))
            })
            .collect();
        self.run_inner(inputs, model_for, progress)
    }

    #[allow(clippy::type_complexity)]
    fn run_inner(
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
                    guard.filters.insert(symbol.to_owned(), f);
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
            universe: UniverseFeatures::new(fcfg),
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
        let flat = s.open.is_none() && s.entry.is_none() && s.pending_exit.is_none();
        if !(tradable && in_range && flat && signal.clears(self.cfg.min_confidence)) {
            return Ok(());
        }
        let side = match signal.action {
            SignalAction::Buy => PositionSide::Long,
            SignalAction::Sell => PositionSide::Short,
            SignalAction::Hold => return Ok(()),
        };
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
            let distance = exits.map_or(self.cfg.exits.stop_pct, |e| e.stop_pct);
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
            self.guard.admit_code(&mut self.book, intent, now)
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

    /// A market entry works for one candle: it fills at the open (plus slippage) up to the
    /// volume cap; what is left is cancelled and the exit legs are sized to what filled.
    fn fill_entry(
        &mut self,
        s: &mut SymState<'_>,
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
            let exits = e.exits.as_deref().unwrap_or(&self.cfg.exits);
            let mut plan = ExitPlan::new(spec, e.volatility, &s.profile, exits)
                .map_err(|err| BacktestError::Config(err.to_string()))?;
            plan.on_entry_fill(f.qty);
            s.open = Some(OpenTrade {
                plan,
                entry_time: bar.open_time,
                gross: Decimal::ZERO,
                fees: f.fee,
                funding: Decimal::ZERO,
                exit_value: Decimal::ZERO,
                exit_qty: Decimal::ZERO,
                stop_kind: None,
            });
        }
        self.book.on_ended(&e.intent_id);
        Ok(())
    }

    /// Stop and take-profit legs against the candle, the stop first whenever both are inside it.
    fn check_exits(&mut self, s: &mut SymState<'_>, bar: &Bar, now: i64) {
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
    fn manage(&mut self, s: &mut SymState<'_>, bar: &Bar, now: i64) {
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
        s: &mut SymState<'_>,
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
        s: &mut SymState<'_>,
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

    fn finish(&mut self, s: &mut SymState<'_>, now: i64, reason: ExitReason) {
        let Some(t) = s.open.take() else { return };
        s.pending_exit = None;
        if self.cfg.learn_profiles {
            s.profile.learn(&t.plan.outcome(), &self.cfg.exits);
            s.stop_factors = None;
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
            funding: t.funding,
            net_pnl: t.gross - t.fees - t.funding,
            legs_hit: t.plan.outcome().legs_hit,
            exit_reason: reason,
        });
    }

    /// Positions still open when the data ends are closed at the last close, with a taker fee.
    fn close_at_end(&mut self, s: &mut SymState<'_>) {
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
