//! Walk-forward evaluation: rolling (or anchored) folds — train window, a gap of the label
//! horizon plus an embargo, test window, roll — over every symbol at once. Each fold trains with
//! the code clm uses ([`qt_models::train::train_on`] on a [`Dataset`]), and the folds' models
//! then trade their test windows in **one** continuous backtest (the model switches at each
//! fold's test start, as a refit swaps it live), so the out-of-sample equity is one curve with
//! the exits, limits, sizing, fees, slippage, funding and the drawdown breaker carried across
//! folds. In the same run and on the same window and costs: buy-and-hold (equal weight), the
//! momentum rule, and random entries with the same exits and trade rate (seeded paths), so the
//! report can say where the strategy falls in that distribution.
//!
//! Only what the test windows earned is reported. The purge is exact: a training row needs
//! `horizon` candles after it for its label, and the training data ends `embargo` candles
//! before the test start, so no label or feature of a training row reads a test candle.
//!
//! Pure CPU work on candles already loaded; the `cli` module reads and writes the files.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use qt_candles::Candle;
use qt_exits::ExitConfig;
use qt_features::FeatureVector;
use qt_models::dataset::{Dataset, Series};
use qt_models::ev::EvReport;
use qt_models::exit_choice::train_choosing_exits;
use qt_models::train::{Decision, TrainConfig};
use qt_models::{
    EnsembleConfig, ExitChoice, ExitGrid, GbdtParams, LabelConfig, Model, ModelArtifact, ModelKind,
    MomentumConfig, MomentumModel, Signal, SignalAction, build_model,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::BacktestError;
use crate::engine::{
    Backtest, BacktestConfig, BacktestOutcome, EquityPoint, ModelFactory, PreparedSeries,
    SymbolSeries, Trade,
};
use crate::report::{Metrics, compute_metrics, daily_returns};
use crate::stats;

const DAY_MS: i64 = 86_400_000;

/// How the model of each fold is trained (the settings clm trains with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// `gbdt` (default), `temporal`, `ensemble`, `meta` (the gbdt filtering the trend rule's
    /// trades), or a rule with nothing to fit: `momentum`, `trend`.
    pub kind: ModelKind,
    /// Candles a training row's trade is followed for its label (see
    /// [`LabelConfig::horizon`]); the labels' exits and costs are the backtest's, so the model
    /// learns the trades the backtest (and exit-brain) will make.
    pub label_horizon: usize,
    /// Share of each training window held out inside it (the validation slice `train_on`
    /// reports on; never the fold's test window). Default 0.2.
    pub validation_fraction: f64,
    pub gbdt: GbdtParams,
    pub momentum: MomentumConfig,
    pub ensemble: EnsembleConfig,
    /// The temporal model's architecture and training (kind `temporal`, and the ensemble's
    /// temporal member).
    pub temporal: qt_models::TemporalParams,
    /// How the gbdt decides: by expected value (default, as clm trains it), with the
    /// backtest's taker fee, slippage and default funding rate as its costs; or `{"target_mix": [buy, sell]}`, or `"fixed_edges"` (those in `gbdt`).
    pub decision: Decision,
    /// The exit plans each fold tries around the backtest's exits, choosing on its validation
    /// slice (deciding by expected value; see [`qt_models::exit_choice`]). Every plan is a
    /// trial of the deflated Sharpe ratio.
    pub exit_grid: ExitGrid,
}

impl Default for ModelSettings {
    fn default() -> Self {
        let t = TrainConfig::new(ModelKind::Gbdt, "");
        Self {
            kind: ModelKind::Gbdt,
            label_horizon: t.labeling.horizon,
            validation_fraction: t.test_fraction,
            gbdt: t.gbdt,
            momentum: t.momentum,
            ensemble: t.ensemble,
            temporal: t.temporal,
            decision: t.decision,
            exit_grid: t.exit_grid,
        }
    }
}

/// A walk-forward run's settings. Every field has a default suited to 5m and 15m candles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalkForwardConfig {
    /// Days of candles each fold trains on (rolling); with `anchored`, the first fold's.
    /// Default 60.
    pub train_days: f64,
    /// Days each fold trades out of sample. Default 30 (a monthly refit).
    pub test_days: f64,
    /// Days from one fold's test start to the next; default (`null`) = `test_days`.
    pub step_days: Option<f64>,
    /// Every fold trains from the start of the data (growing window) instead of a fixed-length
    /// window. Default false (rolling).
    pub anchored: bool,
    /// Candles dropped between the end of the training data and the test start, beyond the
    /// purge of the label horizon (features with memory). Default 12.
    pub embargo_candles: usize,
    /// Candles before the first test start fed to the feature engine only. Default 1,000.
    pub warmup_candles: usize,
    /// The last fold is kept only when its test window has at least this many days. Default 7.
    pub min_test_days: f64,
    pub model: ModelSettings,
    /// Exits, limits, sizing, fill model and funding: the same for strategy and baselines.
    pub backtest: BacktestConfig,
    /// Random-entry paths (default 200; the report needs at least 100 to place the strategy).
    pub random_paths: usize,
    /// Seed of the random-entry paths.
    pub seed: u64,
    /// Configurations tried before this run (and not in its sweep) on this data, counted as
    /// trials by the deflated Sharpe ratio. Default 0: this run's configurations only.
    pub prior_trials: usize,
    /// Worker threads (folds, baselines and paths run in parallel). Default 2.
    pub threads: usize,
    /// A grid of backtest settings to try with the same fold models (every combination of
    /// the axes' values is one configuration, and one trial of the deflated Sharpe ratio). The
    /// configuration with the best out-of-sample Sharpe is reported as the strategy — a choice
    /// made on the test windows, which is exactly what the deflated Sharpe ratio and the
    /// probability of backtest overfitting are there to price. Empty: no sweep.
    pub sweep: Vec<SweepAxis>,
}

/// One axis of a sweep: a setting of [`BacktestConfig`] by its dotted path (`min_confidence`,
/// `exits.stop_pct`, `sizing.fixed_notional.margin`, …) and the values to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    pub key: String,
    pub values: Vec<serde_json::Value>,
}

impl SweepAxis {
    /// Parses `key=v1,v2,…` (values as JSON, bare words as strings).
    ///
    /// # Errors
    /// [`BacktestError::Config`] when there is no `=` or no value.
    pub fn parse(text: &str) -> Result<Self, BacktestError> {
        let (key, values) = text.split_once('=').ok_or_else(|| {
            BacktestError::Config(format!("sweep {text:?} is not key=value,value,…"))
        })?;
        let values: Vec<serde_json::Value> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v)))
            .collect();
        if key.trim().is_empty() || values.is_empty() {
            return Err(BacktestError::Config(format!(
                "sweep {text:?} names no key or no value"
            )));
        }
        Ok(Self {
            key: key.trim().to_owned(),
            values,
        })
    }
}

/// Every configuration of a sweep grid over `base`, with its label (`key=value …`).
///
/// # Errors
/// [`BacktestError::Config`] when a key names no setting or a value does not fit it.
pub fn sweep_grid(
    base: &BacktestConfig,
    axes: &[SweepAxis],
) -> Result<Vec<(String, BacktestConfig)>, BacktestError> {
    let root = serde_json::to_value(base).map_err(|e| BacktestError::Config(e.to_string()))?;
    let mut grid: Vec<(Vec<String>, serde_json::Value)> = vec![(Vec::new(), root)];
    for axis in axes {
        let mut next = Vec::new();
        for (labels, v) in &grid {
            for value in &axis.values {
                let mut v = v.clone();
                let mut at = &mut v;
                for part in axis.key.split('.') {
                    at = at.get_mut(part).ok_or_else(|| {
                        BacktestError::Config(format!("sweep key {:?} names no setting", axis.key))
                    })?;
                }
                *at = value.clone();
                let mut labels = labels.clone();
                labels.push(format!("{}={value}", axis.key));
                next.push((labels, v));
            }
        }
        grid = next;
    }
    grid.into_iter()
        .map(|(labels, v)| {
            let mut cfg: BacktestConfig = serde_json::from_value(v)
                .map_err(|e| BacktestError::Config(format!("sweep {}: {e}", labels.join(" "))))?;
            cfg.funding.history = base.funding.history.clone();
            Ok((labels.join(" "), cfg))
        })
        .collect()
}

impl Default for WalkForwardConfig {
    fn default() -> Self {
        Self {
            train_days: 60.0,
            test_days: 30.0,
            step_days: None,
            anchored: false,
            embargo_candles: 12,
            warmup_candles: 1_000,
            min_test_days: 7.0,
            model: ModelSettings::default(),
            backtest: BacktestConfig::default(),
            random_paths: 200,
            seed: 7,
            prior_trials: 0,
            threads: 2,
            sweep: Vec::new(),
        }
    }
}

impl WalkForwardConfig {
    /// The labels every fold's model is trained with: the backtest's exits and costs.
    pub fn labeling(&self) -> LabelConfig {
        self.backtest.labeling(self.model.label_horizon)
    }

    /// How each fold's model is trained (the settings clm trains with), as version `version`.
    pub fn train_config(&self, version: String) -> TrainConfig {
        let m = &self.model;
        let mut tc = TrainConfig::new(m.kind, version);
        tc.labeling = self.labeling();
        tc.test_fraction = m.validation_fraction;
        tc.gbdt = m.gbdt;
        tc.momentum = m.momentum;
        tc.ensemble = m.ensemble;
        tc.temporal = m.temporal.clone();
        tc.decision = m.decision.clone();
        tc.exit_grid = m.exit_grid.clone();
        tc.threads = 1;
        tc
    }

    /// The exit plans each fold tries: trials of the deflated Sharpe ratio, for every
    /// configuration of the sweep.
    pub fn exit_plans(&self) -> usize {
        self.train_config(String::new())
            .exit_candidates()
            .len()
            .max(1)
    }

    /// Checks the windows.
    ///
    /// # Errors
    /// [`BacktestError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), BacktestError> {
        let pos = |v: f64, name: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(BacktestError::Config(format!(
                    "{name} must be positive, not {v}"
                )))
            }
        };
        pos(self.train_days, "train_days")?;
        pos(self.test_days, "test_days")?;
        pos(self.step_days.unwrap_or(self.test_days), "step_days")?;
        pos(self.min_test_days, "min_test_days")?;
        let v = self.model.validation_fraction;
        if !(v > 0.0 && v < 1.0) {
            return Err(BacktestError::Config(format!(
                "validation_fraction must be in (0, 1), not {v}"
            )));
        }
        if self.threads == 0 {
            return Err(BacktestError::Config("threads must be at least 1".into()));
        }
        self.model
            .exit_grid
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))?;
        self.labeling()
            .validate()
            .map_err(|e| BacktestError::Config(e.to_string()))
    }
}

/// One fold's windows, ms (starts inclusive, ends exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub index: usize,
    pub train_start: i64,
    /// End of the training data: `test_start` minus the embargo. The last `horizon` candles
    /// before it have no label and are purged by the dataset.
    pub train_end: i64,
    pub test_start: i64,
    pub test_end: i64,
}

/// The folds over data spanning `[start, end)` at `interval_ms`.
///
/// # Errors
/// [`BacktestError::Config`] when the data is too short for one fold.
pub fn plan_folds(
    start: i64,
    end: i64,
    interval_ms: i64,
    cfg: &WalkForwardConfig,
) -> Result<Vec<Fold>, BacktestError> {
    cfg.validate()?;
    let days = |d: f64| (d * DAY_MS as f64) as i64 / interval_ms * interval_ms;
    let (train, test) = (days(cfg.train_days), days(cfg.test_days));
    let step = days(cfg.step_days.unwrap_or(cfg.test_days));
    let min_test = days(cfg.min_test_days);
    let gap = i64::try_from(cfg.embargo_candles).unwrap_or(i64::MAX / 4) * interval_ms;
    let mut folds = Vec::new();
    let mut test_start = start + train;
    while test_start < end {
        let test_end = (test_start + test).min(end);
        if test_end - test_start < min_test {
            break;
        }
        folds.push(Fold {
            index: folds.len(),
            train_start: if cfg.anchored {
                start
            } else {
                test_start - train
            },
            train_end: test_start - gap,
            test_start,
            test_end,
        });
        test_start += step;
    }
    if folds.is_empty() {
        return Err(BacktestError::Config(format!(
            "the data spans {:.1} days: too short for {} training days and {} test days",
            (end - start) as f64 / DAY_MS as f64,
            cfg.train_days,
            cfg.min_test_days
        )));
    }
    // Overlapping test windows (step < test) would count the same candles twice.
    for w in folds.windows(2) {
        if w[1].test_start < w[0].test_end {
            return Err(BacktestError::Config(
                "step_days is shorter than test_days: test windows would overlap".into(),
            ));
        }
    }
    Ok(folds)
}

/// The model each symbol trades: fold `k`'s model from its test start on. A model that reads
/// the symbol's recent vectors ([`Model::memory`]) is fed the latest of them when it takes
/// over, as trading-bot does when it swaps a model in.
#[derive(Debug)]
struct FoldModels {
    starts: Vec<i64>,
    models: Vec<Box<dyn Model>>,
    current: usize,
    /// The symbol's latest vectors, as many as the most any fold model reads (none for
    /// models without memory).
    recent: std::collections::VecDeque<(FeatureVector, Candle)>,
    memory: usize,
}

impl FoldModels {
    fn new(starts: Vec<i64>, models: Vec<Box<dyn Model>>) -> Self {
        let memory = models.iter().map(|m| m.memory()).max().unwrap_or(0);
        Self {
            starts,
            models,
            current: 0,
            recent: std::collections::VecDeque::with_capacity(memory),
            memory,
        }
    }
}

impl Model for FoldModels {
    fn name(&self) -> &str {
        self.models[self.current].name()
    }
    fn version(&self) -> &str {
        self.models[self.current].version()
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        while self.current + 1 < self.starts.len()
            && candle.open_time >= self.starts[self.current + 1]
        {
            self.current += 1;
            let model = &mut self.models[self.current];
            let skip = self.recent.len().saturating_sub(model.memory());
            for (fv, c) in self.recent.iter().skip(skip) {
                model.predict_for(symbol, fv, c);
            }
        }
        if self.memory > 0 {
            if self.recent.len() == self.memory {
                self.recent.pop_front();
            }
            self.recent.push_back((*features, *candle));
        }
        self.models[self.current].predict_for(symbol, features, candle)
    }
    fn exits(&self) -> Option<&ExitConfig> {
        self.models[self.current].exits()
    }
    fn memory(&self) -> usize {
        self.memory
    }
}

/// A baseline traded with the exits of the fold model of the window the candle is in (the
/// random entries: only the entry decision differs from the strategy's).
#[derive(Debug)]
struct WithFoldExits<M> {
    starts: Vec<i64>,
    exits: Vec<Option<ExitConfig>>,
    current: usize,
    inner: M,
}

impl<M: Model> Model for WithFoldExits<M> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn version(&self) -> &str {
        self.inner.version()
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        while self.current + 1 < self.starts.len()
            && candle.open_time >= self.starts[self.current + 1]
        {
            self.current += 1;
        }
        self.inner.predict_for(symbol, features, candle)
    }
    fn exits(&self) -> Option<&ExitConfig> {
        self.exits.get(self.current).and_then(Option::as_ref)
    }
}

/// The random-entry baseline: on each candle, BUY or SELL (even odds) with probability `p`.
/// The exits, sizing and limits are the backtest's, so only the entry decision is random.
#[derive(Debug)]
pub struct RandomEntries {
    state: u64,
    p: f64,
}

impl RandomEntries {
    /// A path seeded by `seed`; `p` is the chance of an entry signal per candle.
    pub fn new(seed: u64, p: f64) -> Self {
        Self {
            state: splitmix(seed) | 1,
            p: p.clamp(0.0, 1.0),
        }
    }

    fn next_f64(&mut self) -> f64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Model for RandomEntries {
    fn name(&self) -> &str {
        "random"
    }
    fn version(&self) -> &str {
        "random"
    }
    fn predict(&mut self, _: &FeatureVector, _: &Candle) -> Signal {
        let u = self.next_f64();
        if u < self.p / 2.0 {
            Signal::new(SignalAction::Buy, 1.0)
        } else if u < self.p {
            Signal::new(SignalAction::Sell, 1.0)
        } else {
            Signal::hold(1.0)
        }
    }
}

/// The figures of one run over the out-of-sample window: the backtest's metrics plus the
/// ones that cannot flatter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFigures {
    pub name: String,
    pub metrics: Metrics,
    /// Net return over the window, fraction of the starting equity.
    pub total_return: f64,
    /// Compound annual growth rate, fraction.
    pub cagr: f64,
    /// CAGR over the max drawdown; `None` without a drawdown.
    pub calmar: Option<f64>,
    /// Longest stretch below a previous equity peak, days.
    pub max_drawdown_days: f64,
    /// Mean net PnL per trade, after every cost.
    pub expectancy: Decimal,
    /// Traded notional (entries and exits) over the mean equity.
    pub turnover: f64,
    /// Funding paid (positive) or earned (negative) over the window.
    pub funding: Decimal,
    /// Per-day (not annualized) Sharpe ratio of daily returns, its skewness and kurtosis, and
    /// the number of days: the inputs of the probabilistic Sharpe ratio.
    pub daily_sharpe: Option<f64>,
    pub skewness: Option<f64>,
    pub kurtosis: Option<f64>,
    pub days: usize,
    /// Probability that the true Sharpe ratio is above 0 (PSR with SR* = 0).
    pub psr: Option<f64>,
}

/// One fold's windows and figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: Fold,
    pub model_version: String,
    /// Labelled training rows, and the candles of the window without a row (the feature
    /// warm-up and the purged label horizon).
    pub train_rows: usize,
    pub purged_rows: usize,
    /// AUC of "a long wins" and "a short wins" on the fold's validation slice (gbdt).
    pub validation_auc_buy: Option<f64>,
    pub validation_auc_sell: Option<f64>,
    /// How the fold's model prices its trades (a gbdt deciding by expected value): the
    /// reliability of its calibrated probabilities, its costs, the margins tried on its
    /// validation slice and the one chosen (none: it found no edge and holds).
    #[serde(default)]
    pub expected_value: Option<EvReport>,
    /// The exit plans the fold tried on its validation slice and the one its model trades.
    #[serde(default)]
    pub exits: Option<ExitChoice>,
    pub strategy: RunFigures,
    pub momentum: RunFigures,
    pub buy_and_hold: RunFigures,
    pub strategy_without_breaker: RunFigures,
}

/// Where the strategy falls among the random-entry paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomBaseline {
    pub paths: usize,
    /// The chance of an entry signal per flat candle, matched to the strategy's trade rate.
    pub entry_probability: f64,
    /// Net return of each path, sorted.
    pub returns: Vec<f64>,
    pub median_return: f64,
    pub p95_return: f64,
    pub median_trades: f64,
    /// Share of paths whose net return is below the strategy's, 0..1.
    pub strategy_percentile: f64,
}

/// What a sweep tried and how likely its choice is an overfit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// (label, net return, annualized Sharpe, trades) of each configuration.
    pub configurations: Vec<(String, f64, Option<f64>, u64)>,
    /// The configuration reported as the strategy (best out-of-sample Sharpe).
    pub chosen: String,
    /// Probability of backtest overfitting by combinatorially symmetric cross-validation of
    /// the configurations' daily returns (16 blocks, or fewer on short runs).
    pub pbo: Option<f64>,
    pub pbo_combinations: usize,
}

/// The deflated Sharpe ratio of the strategy and what it counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deflated {
    /// Trials counted: this run's configurations (each sweep configuration times the exit
    /// plans each fold tried) plus `prior_trials`.
    pub trials: usize,
    /// Exit plans each fold tried (counted in `trials`).
    #[serde(default)]
    pub exit_plans: usize,
    /// Variance of the trials' per-day Sharpe ratios (0 with one trial).
    pub trial_sharpe_variance: f64,
    /// The per-day Sharpe ratio the best of `trials` unskilled trials would reach.
    pub expected_max_sharpe: f64,
    /// PSR against that benchmark; `None` when the moments are undefined.
    pub dsr: Option<f64>,
}

/// Everything a walk-forward run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalkForwardReport {
    pub config: WalkForwardConfig,
    pub symbols: Vec<String>,
    pub folds: Vec<FoldResult>,
    pub strategy: RunFigures,
    pub momentum: RunFigures,
    pub buy_and_hold: RunFigures,
    /// The strategy with the drawdown breaker at its loosest: what its decisions would have
    /// done after the breaker stopped it (a diagnostic, never the reported result).
    pub strategy_without_breaker: RunFigures,
    pub random: RandomBaseline,
    pub deflated: Deflated,
    /// With a sweep: every configuration's figures, the one reported as the strategy, and the
    /// probability of backtest overfitting of choosing it.
    pub sweep: Option<SweepResult>,
    /// When the drawdown breaker stopped the strategy's entries (no operator resumes in a
    /// backtest), ms.
    pub breaker_tripped_at: Option<i64>,
    /// Plain-words verdict: does the strategy beat every baseline with a deflated Sharpe
    /// probability of at least 0.95?
    pub verdict: String,
    pub beats_baselines: bool,
    pub seconds: f64,
}

/// The equity curves behind a report (for the CSV and the charts).
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub strategy: Vec<EquityPoint>,
    pub momentum: Vec<EquityPoint>,
    pub buy_and_hold: Vec<EquityPoint>,
    /// The random path with the median final equity.
    pub random_median: Vec<EquityPoint>,
    pub trades: Vec<Trade>,
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Runs `work(i)` for `i` in `0..n` on up to `threads` threads; results in index order.
fn par_map<T: Send>(n: usize, threads: usize, work: &(dyn Fn(usize) -> T + Sync)) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let slots: Vec<std::sync::Mutex<&mut Option<T>>> =
        out.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let v = work(i);
                    if let Ok(mut slot) = slots[i].lock() {
                        **slot = Some(v);
                    }
                }
            });
        }
    });
    drop(slots);
    out.into_iter().flatten().collect()
}

/// Figures of one run restricted to `[from, to)`: the equity points in it, the trades that
/// closed in it, the equity before it as the start.
fn figures(name: &str, o: &BacktestOutcome, from: i64, to: i64) -> RunFigures {
    let lo = o.equity.partition_point(|p| p.time_ms < from);
    let hi = o.equity.partition_point(|p| p.time_ms < to);
    let initial = if lo == 0 {
        o.initial_equity
    } else {
        o.equity[lo - 1].equity
    };
    let part = BacktestOutcome {
        trades: o
            .trades
            .iter()
            .filter(|t| t.exit_time >= from && t.exit_time < to)
            .cloned()
            .collect(),
        equity: o.equity[lo..hi].to_vec(),
        candles: o.candles,
        rejections: o.rejections.clone(),
        profiles: BTreeMap::new(),
        initial_equity: initial,
        leverage: o.leverage,
        breaker_tripped_at: o.breaker_tripped_at,
    };
    figures_of(name, &part)
}

fn figures_of(name: &str, o: &BacktestOutcome) -> RunFigures {
    let m = compute_metrics(o);
    let returns = daily_returns(o.initial_equity, &o.equity);
    let total_return = if o.initial_equity > Decimal::ZERO {
        f((m.final_equity - o.initial_equity) / o.initial_equity)
    } else {
        0.0
    };
    let cagr = stats::cagr(f(o.initial_equity), f(m.final_equity), m.days).unwrap_or(0.0);
    let times: Vec<i64> = o.equity.iter().map(|p| p.time_ms).collect();
    let eq: Vec<f64> = o.equity.iter().map(|p| f(p.equity)).collect();
    let dd_ms = stats::drawdown_duration(&times, &eq).unwrap_or(0);
    let notional: Decimal = o
        .trades
        .iter()
        .map(|t| t.qty * (t.entry_price + t.exit_price))
        .sum();
    let mean_equity = if eq.is_empty() {
        f(o.initial_equity)
    } else {
        eq.iter().sum::<f64>() / eq.len() as f64
    };
    let sr = stats::sharpe_per_period(&returns);
    let skew = stats::skewness(&returns);
    let kurt = stats::kurtosis(&returns);
    let psr = match (sr, skew, kurt) {
        (Some(sr), Some(g3), Some(g4)) => {
            stats::probabilistic_sharpe(sr, 0.0, returns.len(), g3, g4)
        }
        _ => None,
    };
    RunFigures {
        name: name.to_owned(),
        total_return,
        cagr,
        calmar: stats::calmar(cagr, m.max_drawdown_pct),
        max_drawdown_days: dd_ms as f64 / DAY_MS as f64,
        expectancy: if m.trades == 0 {
            Decimal::ZERO
        } else {
            (o.trades.iter().map(|t| t.net_pnl).sum::<Decimal>() / Decimal::from(m.trades))
                .round_dp(8)
        },
        turnover: if mean_equity > 0.0 {
            f(notional) / mean_equity
        } else {
            0.0
        },
        funding: o.trades.iter().map(|t| t.funding).sum(),
        daily_sharpe: sr,
        skewness: skew,
        kurtosis: kurt,
        days: returns.len(),
        psr,
        metrics: m,
    }
}

/// Buy-and-hold over `[from, to)`, equal weight: at the first candle the equity is split evenly
/// across the symbols and bought at the open (taker fee and slippage of the fill model), held
/// to the end as a long perpetual position at 1× (paying or earning funding), and sold at the
/// last close (taker fee). Equity is marked at each close on the strategy's time grid.
pub fn buy_and_hold(
    series: &[SymbolSeries],
    cfg: &BacktestConfig,
    from: i64,
    to: i64,
) -> BacktestOutcome {
    let n = series
        .iter()
        .filter(|s| {
            s.candles
                .iter()
                .any(|c| c.open_time >= from && c.open_time < to)
        })
        .count();
    let mut out = BacktestOutcome {
        trades: Vec::new(),
        equity: Vec::new(),
        candles: 0,
        rejections: BTreeMap::new(),
        profiles: BTreeMap::new(),
        initial_equity: cfg.initial_equity,
        leverage: 1,
        breaker_tripped_at: None,
    };
    if n == 0 {
        return out;
    }
    let share = cfg.initial_equity / Decimal::from(n);
    let slip = cfg.fill.slippage;
    let mut cash = cfg.initial_equity;
    // (qty, last close, candles of the window, funding cursor) per symbol
    struct Held<'a> {
        symbol: &'a str,
        qty: Decimal,
        entry: Decimal,
        entry_time: i64,
        last: Decimal,
        fees: Decimal,
        funding: Decimal,
        candles: &'a [Candle],
        cursor: usize,
    }
    let mut held: Vec<Held<'_>> = Vec::new();
    for s in series {
        let lo = s.candles.partition_point(|c| c.open_time < from);
        let hi = s.candles.partition_point(|c| c.open_time < to);
        let Some(first) = s.candles[lo..hi].first() else {
            continue;
        };
        let price = first.open * (Decimal::ONE + slip);
        let fee = cfg.fill.fee(share, qt_matching::Liquidity::Taker);
        let qty = (share - fee) / price;
        cash -= share;
        held.push(Held {
            symbol: &s.symbol,
            qty,
            entry: price,
            entry_time: first.open_time,
            last: first.open,
            fees: fee,
            funding: Decimal::ZERO,
            candles: &s.candles[lo..hi],
            cursor: 0,
        });
    }
    let mut funding =
        crate::funding::FundingClock::new(&cfg.funding, held.iter().map(|h| h.symbol));
    let mut t = from;
    let iv = cfg.interval_ms;
    while t < to {
        let mut any = false;
        for (k, h) in held.iter_mut().enumerate() {
            while let Some(c) = h.candles.get(h.cursor) {
                if c.open_time > t {
                    break;
                }
                if let Some(rate) = funding.due(k, c.open_time, iv) {
                    let paid = h.qty * c.open * rate;
                    h.funding += paid;
                    cash -= paid;
                }
                h.last = c.close;
                h.cursor += 1;
                any = true;
                out.candles += 1;
            }
        }
        if any {
            let value: Decimal = held.iter().map(|h| h.qty * h.last).sum();
            out.equity.push(EquityPoint {
                time_ms: t + iv - 1,
                equity: cash + value,
                exposure: value,
            });
        }
        t += iv;
    }
    for h in &held {
        let exit = h.last * (Decimal::ONE - slip);
        let fee = cfg.fill.fee(h.qty * exit, qt_matching::Liquidity::Taker);
        let gross = h.qty * (exit - h.entry);
        cash += h.qty * exit - fee;
        out.trades.push(Trade {
            symbol: h.symbol.to_owned(),
            side: qt_events::PositionSide::Long,
            entry_time: h.entry_time,
            exit_time: to - 1,
            entry_price: h.entry,
            exit_price: exit,
            qty: h.qty,
            gross_pnl: gross,
            fees: h.fees + fee,
            funding: h.funding,
            net_pnl: gross - h.fees - fee - h.funding,
            legs_hit: 0,
            exit_reason: crate::ExitReason::EndOfData,
        });
    }
    if let Some(last) = out.equity.last_mut() {
        last.equity = cash;
        last.exposure = Decimal::ZERO;
    }
    out
}

/// Runs a walk-forward over `series` (one per symbol, same interval). `progress(step, done,
/// total)` reports the phases: `train`, `strategy`, `baselines`, `random`.
///
/// # Errors
/// [`BacktestError`] for bad settings, data too short for one fold, or a fold that cannot be
/// trained (for example no BUY or SELL label in its window).
pub fn run_walkforward(
    series: Vec<SymbolSeries>,
    cfg: &WalkForwardConfig,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<(WalkForwardReport, Curves), BacktestError> {
    let started = std::time::Instant::now();
    cfg.validate()?;
    let iv = cfg.backtest.interval_ms;
    let start = series
        .iter()
        .filter_map(|s| s.candles.first())
        .map(|c| c.open_time)
        .min()
        .ok_or_else(|| BacktestError::Config("no candles".into()))?;
    let end = series
        .iter()
        .filter_map(|s| s.candles.last())
        .map(|c| c.open_time + iv)
        .max()
        .unwrap_or(start);
    let folds = plan_folds(start, end, iv, cfg)?;
    let oos_from = folds[0].test_start;
    let oos_to = folds[folds.len() - 1].test_end;

    // 1. Train every fold (in parallel), each on its own window only.
    progress("train", 0, folds.len());
    let done = AtomicUsize::new(0);
    let trained = par_map(folds.len(), cfg.threads, &|k| {
        let r = train_fold(&series, &folds[k], cfg, iv);
        progress(
            "train",
            done.fetch_add(1, Ordering::Relaxed) + 1,
            folds.len(),
        );
        r
    });
    let trained: Vec<TrainedFold> = trained.into_iter().collect::<Result<_, _>>()?;

    // The data every run sees: warm-up candles before the first test start, none after the end.
    let warm_from = oos_from - i64::try_from(cfg.warmup_candles).unwrap_or(0) * iv;
    let data: Vec<SymbolSeries> = series
        .iter()
        .map(|s| {
            let lo = s.candles.partition_point(|c| c.open_time < warm_from);
            let hi = s.candles.partition_point(|c| c.open_time < oos_to);
            SymbolSeries {
                symbol: s.symbol.clone(),
                candles: s.candles[lo..hi].to_vec(),
            }
        })
        .collect();
    let window = |mut c: BacktestConfig| {
        c.start_ms = Some(oos_from);
        c.end_ms = Some(oos_to);
        c
    };
    let bt_cfg = window(cfg.backtest.clone());
    let grid: Vec<(String, BacktestConfig)> = if cfg.sweep.is_empty() {
        vec![("strategy".into(), bt_cfg.clone())]
    } else {
        sweep_grid(&cfg.backtest, &cfg.sweep)?
            .into_iter()
            .map(|(l, c)| (l, window(c)))
            .collect()
    };
    // Features computed once for every run below.
    let prepared = PreparedSeries::prepare_all(&data, iv);
    let run = |c: &BacktestConfig, factory: &mut ModelFactory<'_>| {
        Backtest::new(c.clone())?.run_prepared(&prepared, factory, &mut |_, _| {})
    };
    let starts: Vec<i64> = folds.iter().map(|f| f.test_start).collect();
    let fold_exits: Vec<Option<ExitConfig>> = trained
        .iter()
        .map(|t| t.artifact.exits().cloned())
        .collect();
    let fold_models = |_: &str| -> Result<Box<dyn Model>, BacktestError> {
        let models = trained
            .iter()
            .map(|t| build_model(&t.artifact).map_err(|e| BacktestError::Model(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(FoldModels::new(starts.clone(), models)))
    };

    // 2. The strategy (fold models switched at each test start) in every configuration of the
    //    sweep, and momentum, in parallel.
    let n_runs = grid.len() + 1;
    progress("strategy", 0, n_runs);
    let done = AtomicUsize::new(0);
    let mut runs = par_map(n_runs, cfg.threads, &|k| {
        let r = match grid.get(k) {
            Some((_, c)) => run(c, &mut |sym| fold_models(sym)),
            None => run(&bt_cfg, &mut |_| {
                MomentumModel::new(cfg.model.momentum, "momentum")
                    .map(|m| Box::new(m) as Box<dyn Model>)
                    .map_err(|e| BacktestError::Model(e.to_string()))
            }),
        };
        progress("strategy", done.fetch_add(1, Ordering::Relaxed) + 1, n_runs);
        r
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let Some(momentum) = runs.pop() else {
        return Err(BacktestError::Config(
            "internal: momentum run missing".into(),
        ));
    };
    let tried: Vec<RunFigures> = runs
        .iter()
        .zip(&grid)
        .map(|(o, (label, _))| figures(label, o, oos_from, oos_to))
        .collect();
    let best = (0..tried.len())
        .max_by(|&a, &b| {
            let sr = |i: usize| tried[i].metrics.sharpe.unwrap_or(f64::NEG_INFINITY);
            sr(a).total_cmp(&sr(b)).then(b.cmp(&a))
        })
        .unwrap_or(0);
    let sweep = (grid.len() > 1).then(|| {
        let cols: Vec<Vec<f64>> = runs
            .iter()
            .map(|o| daily_returns(o.initial_equity, &o.equity))
            .collect();
        let t = cols.iter().map(Vec::len).min().unwrap_or(0);
        let matrix: Vec<Vec<f64>> = (0..t)
            .map(|i| cols.iter().map(|c| c[i]).collect())
            .collect();
        let blocks = (t / 4 * 2).clamp(2, 16);
        let pbo = stats::pbo_cscv(&matrix, blocks);
        SweepResult {
            configurations: tried
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        r.total_return,
                        r.metrics.sharpe,
                        r.metrics.trades,
                    )
                })
                .collect(),
            chosen: grid[best].0.clone(),
            pbo: pbo.as_ref().map(|p| p.pbo),
            pbo_combinations: pbo.map_or(0, |p| p.combinations),
        }
    });
    let others: Vec<f64> = tried
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != best)
        .filter_map(|(_, r)| r.daily_sharpe)
        .collect();
    let strategy = runs.swap_remove(best);
    let s_fig = tried[best].clone();
    let hold = buy_and_hold(&data, &bt_cfg, oos_from, oos_to);

    // 3. Random entries at the strategy's trade rate: entries per flat symbol-candle.
    let symbol_candles: usize = data
        .iter()
        .map(|s| {
            s.candles
                .iter()
                .filter(|c| c.open_time >= oos_from && c.open_time < oos_to)
                .count()
        })
        .sum();
    let held_candles: i64 = strategy
        .trades
        .iter()
        .map(|t| (t.exit_time - t.entry_time) / iv + 1)
        .sum();
    let flat = (symbol_candles as f64 - held_candles as f64).max(1.0);
    let p = (strategy.trades.len() as f64 / flat).clamp(0.0, 1.0);
    let chosen_cfg = &grid[best].1;
    // The chosen configuration once more with the breaker at its loosest (it trips only when
    // the equity is gone): a diagnostic of the model's decisions after the point where the
    // breaker stops a bleeding strategy. Not a trial: nothing is chosen from it.
    let mut loose = chosen_cfg.clone();
    loose.limits.max_drawdown_pct = Decimal::ONE;
    let done = AtomicUsize::new(0);
    let mut paths = par_map(cfg.random_paths + 1, cfg.threads, &|k| {
        if k == cfg.random_paths {
            return run(&loose, &mut |sym| fold_models(sym));
        }
        let r = run(chosen_cfg, &mut |sym| {
            let seed = cfg.seed ^ (k as u64).wrapping_mul(0x9E37_79B9) ^ hash(sym);
            Ok(Box::new(WithFoldExits {
                starts: starts.clone(),
                exits: fold_exits.clone(),
                current: 0,
                inner: RandomEntries::new(seed, p),
            }) as Box<dyn Model>)
        });
        progress(
            "random",
            done.fetch_add(1, Ordering::Relaxed) + 1,
            cfg.random_paths,
        );
        r
    });
    let Some(unprotected) = paths.pop() else {
        return Err(BacktestError::Config(
            "internal: unprotected run missing".into(),
        ));
    };
    let unprotected = unprotected?;
    let paths: Vec<BacktestOutcome> = paths.into_iter().collect::<Result<_, _>>()?;

    let m_fig = figures("momentum", &momentum, oos_from, oos_to);
    let u_fig = figures("no breaker", &unprotected, oos_from, oos_to);
    let h_fig = figures_of("buy_and_hold", &hold);
    let mut path_returns: Vec<(f64, usize)> = paths
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let fin = o.equity.last().map_or(o.initial_equity, |e| e.equity);
            (f((fin - o.initial_equity) / o.initial_equity), k)
        })
        .collect();
    path_returns.sort_by(|a, b| a.0.total_cmp(&b.0));
    let returns: Vec<f64> = path_returns.iter().map(|r| r.0).collect();
    let quantile = |q: f64| -> f64 {
        if returns.is_empty() {
            return 0.0;
        }
        let i = ((returns.len() - 1) as f64 * q).round() as usize;
        returns[i.min(returns.len() - 1)]
    };
    let mut trade_counts: Vec<usize> = paths.iter().map(|o| o.trades.len()).collect();
    trade_counts.sort_unstable();
    let random = RandomBaseline {
        paths: paths.len(),
        entry_probability: p,
        median_return: quantile(0.5),
        p95_return: quantile(0.95),
        median_trades: trade_counts
            .get(trade_counts.len() / 2)
            .copied()
            .unwrap_or(0) as f64,
        strategy_percentile: if returns.is_empty() {
            0.0
        } else {
            returns.iter().filter(|&&r| r < s_fig.total_return).count() as f64
                / returns.len() as f64
        },
        returns,
    };
    let median_path = path_returns
        .get(path_returns.len() / 2)
        .map(|&(_, k)| paths[k].equity.clone())
        .unwrap_or_default();

    // 4. Deflated Sharpe: every configuration of the sweep and every prior trial counts in N.
    let null: Vec<f64> = paths
        .iter()
        .filter_map(|o| stats::sharpe_per_period(&daily_returns(o.initial_equity, &o.equity)))
        .collect();
    let exit_plans = cfg.exit_plans();
    let mut deflated = deflate(
        &s_fig,
        &others,
        grid.len() * exit_plans,
        cfg.prior_trials,
        &null,
    );
    deflated.exit_plans = exit_plans;

    let fold_results = folds
        .iter()
        .zip(&trained)
        .map(|(fold, t)| {
            let hold_part = buy_and_hold(&data, &bt_cfg, fold.test_start, fold.test_end);
            FoldResult {
                fold: *fold,
                model_version: t.artifact.version.clone(),
                train_rows: t.train_rows,
                purged_rows: t.purged_rows,
                validation_auc_buy: t.auc_buy,
                validation_auc_sell: t.auc_sell,
                expected_value: t.expected_value.clone(),
                exits: t.exits.clone(),
                strategy: figures(&s_fig.name, &strategy, fold.test_start, fold.test_end),
                momentum: figures("momentum", &momentum, fold.test_start, fold.test_end),
                buy_and_hold: figures_of("buy_and_hold", &hold_part),
                strategy_without_breaker: figures(
                    "no breaker",
                    &unprotected,
                    fold.test_start,
                    fold.test_end,
                ),
            }
        })
        .collect();
    let beats = s_fig.total_return > m_fig.total_return
        && s_fig.total_return > h_fig.total_return
        && s_fig.total_return > random.p95_return
        && deflated.dsr.is_some_and(|d| d >= 0.95);
    let verdict = verdict(&s_fig, &m_fig, &h_fig, &random, &deflated, beats);
    let report = WalkForwardReport {
        config: cfg.clone(),
        symbols: data.iter().map(|s| s.symbol.clone()).collect(),
        folds: fold_results,
        breaker_tripped_at: strategy.breaker_tripped_at,
        strategy: s_fig,
        momentum: m_fig,
        buy_and_hold: h_fig,
        strategy_without_breaker: u_fig,
        random,
        deflated,
        sweep,
        verdict,
        beats_baselines: beats,
        seconds: started.elapsed().as_secs_f64(),
    };
    let curves = Curves {
        strategy: strategy.equity,
        momentum: momentum.equity,
        buy_and_hold: hold.equity,
        random_median: median_path,
        trades: strategy.trades,
    };
    Ok((report, curves))
}

/// The deflated Sharpe ratio of `best`, one of `configurations` tried in this run (`others`:
/// the per-day Sharpe ratios of the rest, where defined), with `prior` configurations tried
/// before. `V`, the variance
/// of the trials' Sharpe ratios, is measured on the sweep when it has two or more; otherwise
/// (one configuration, perhaps with prior trials whose ratios were not kept) it is the
/// variance of the random-entry paths' Sharpe ratios `null` — the spread that luck alone gives
/// a strategy with these exits and this trade rate. With a single trial the benchmark is 0 and
/// the DSR is the PSR.
pub fn deflate(
    best: &RunFigures,
    others: &[f64],
    configurations: usize,
    prior: usize,
    null: &[f64],
) -> Deflated {
    let mut srs: Vec<f64> = others.to_vec();
    if let Some(sr) = best.daily_sharpe {
        srs.push(sr);
    }
    let trials = (configurations + prior).max(1);
    let variance = |v: &[f64]| stats::std_dev(v).map_or(0.0, |s| s * s);
    let var = if srs.len() > 1 {
        variance(&srs)
    } else {
        variance(null)
    };
    let sr0 = stats::expected_max_sharpe(trials, var).unwrap_or(0.0);
    let dsr = match (best.daily_sharpe, best.skewness, best.kurtosis) {
        (Some(sr), Some(g3), Some(g4)) => stats::probabilistic_sharpe(sr, sr0, best.days, g3, g4),
        _ => None,
    };
    Deflated {
        trials,
        exit_plans: 1,
        trial_sharpe_variance: var,
        expected_max_sharpe: sr0,
        dsr,
    }
}

fn verdict(
    s: &RunFigures,
    m: &RunFigures,
    h: &RunFigures,
    r: &RandomBaseline,
    d: &Deflated,
    beats: bool,
) -> String {
    let pct = |x: f64| format!("{:+.2}%", x * 100.0);
    let mut why = Vec::new();
    if s.total_return <= m.total_return {
        why.push(format!("momentum made {}", pct(m.total_return)));
    }
    if s.total_return <= h.total_return {
        why.push(format!("buy-and-hold made {}", pct(h.total_return)));
    }
    if s.total_return <= r.p95_return {
        why.push(format!(
            "it is at the {:.0}th percentile of {} random-entry paths (95th: {})",
            r.strategy_percentile * 100.0,
            r.paths,
            pct(r.p95_return)
        ));
    }
    match d.dsr {
        Some(p) if p >= 0.95 => {}
        Some(p) => why.push(format!(
            "its deflated Sharpe probability is {p:.3} over {} trial(s), below 0.95",
            d.trials
        )),
        None => why.push("its deflated Sharpe is undefined (too few days)".into()),
    }
    if beats {
        format!(
            "the strategy made {} out of sample and beats momentum, buy-and-hold and the 95th \
             percentile of random entries with a deflated Sharpe probability of {:.3}",
            pct(s.total_return),
            d.dsr.unwrap_or(0.0)
        )
    } else {
        format!(
            "the strategy made {} out of sample and should not trade: {}",
            pct(s.total_return),
            why.join("; ")
        )
    }
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A fold's model and what its training saw.
#[derive(Debug, Clone)]
pub struct TrainedFold {
    pub artifact: ModelArtifact,
    /// Labelled rows it was fit and validated on.
    pub train_rows: usize,
    /// Candles of the training window without a row: the feature warm-up, and the last
    /// `horizon` candles, whose label would read past the training data (the purge).
    pub purged_rows: usize,
    pub auc_buy: Option<f64>,
    pub auc_sell: Option<f64>,
    pub expected_value: Option<EvReport>,
    /// The exit plans tried on the validation slice and the one kept.
    pub exits: Option<ExitChoice>,
}

/// Trains fold `fold`'s model on its training window only (`[train_start, train_end)` of each
/// series), with the code clm trains with.
///
/// # Errors
/// [`BacktestError::Model`] when the window cannot make a dataset or a model.
pub fn train_fold(
    series: &[SymbolSeries],
    fold: &Fold,
    cfg: &WalkForwardConfig,
    iv: i64,
) -> Result<TrainedFold, BacktestError> {
    let version = format!(
        "wf-{}-{}",
        fold.index,
        crate::dates::format_date(fold.test_start)
    );
    let m = &cfg.model;
    if m.kind.is_rule() {
        let artifact = match m.kind {
            ModelKind::Trend => ModelArtifact::trend(&qt_models::TrendConfig::default(), &version),
            _ => ModelArtifact::momentum(&m.momentum, &version),
        }
        .map_err(|e| BacktestError::Model(e.to_string()))?;
        return Ok(TrainedFold {
            artifact,
            train_rows: 0,
            purged_rows: 0,
            auc_buy: None,
            auc_sell: None,
            expected_value: None,
            exits: None,
        });
    }
    let train: Vec<Series> = series
        .iter()
        .map(|s| {
            let lo = s
                .candles
                .partition_point(|c| c.open_time < fold.train_start);
            let hi = s.candles.partition_point(|c| c.open_time < fold.train_end);
            Series {
                symbol: s.symbol.clone(),
                interval_ms: iv,
                candles: s.candles[lo..hi].to_vec(),
            }
        })
        .filter(|s| !s.candles.is_empty())
        .collect();
    let candles: usize = train.iter().map(|s| s.candles.len()).sum();
    let fold_err =
        |e: qt_models::ModelError| BacktestError::Model(format!("fold {}: {e}", fold.index));
    let prepared = Dataset::prepare(&train, 1).map_err(fold_err)?;
    let tc = cfg.train_config(version);
    let chosen = train_choosing_exits(&prepared, &tc, &mut |_| Ok(())).map_err(fold_err)?;
    let (artifact, report, ds) = (chosen.artifact, chosen.report, chosen.dataset);
    let purged = candles.saturating_sub(ds.len());
    Ok(TrainedFold {
        artifact,
        train_rows: ds.len(),
        purged_rows: purged,
        auc_buy: report.test.auc_buy,
        auc_sell: report.test.auc_sell,
        expected_value: report.ev,
        exits: report.exits,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use qt_features::N_FEATURES;

    /// Holds, counting the vectors it sees; reads `memory` of them.
    #[derive(Debug)]
    struct Counting {
        seen: Arc<AtomicUsize>,
        memory: usize,
        exits: Option<ExitConfig>,
    }

    impl Model for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn version(&self) -> &str {
            "1"
        }
        fn predict(&mut self, _: &FeatureVector, _: &Candle) -> Signal {
            self.seen.fetch_add(1, Ordering::Relaxed);
            Signal::hold(1.0)
        }
        fn exits(&self) -> Option<&ExitConfig> {
            self.exits.as_ref()
        }
        fn memory(&self) -> usize {
            self.memory
        }
    }

    #[test]
    fn a_fold_model_takes_over_with_its_exits_and_the_symbols_latest_vectors() {
        let wide = ExitConfig::default().scaled(Decimal::TWO);
        let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let models: Vec<Box<dyn Model>> = vec![
            Box::new(Counting {
                seen: first.clone(),
                memory: 0,
                exits: None,
            }),
            Box::new(Counting {
                seen: second.clone(),
                memory: 5,
                exits: Some(wide.clone()),
            }),
        ];
        let mut f = FoldModels::new(vec![0, 10 * 300_000], models);
        assert_eq!(f.memory(), 5);
        for k in 0..=10 {
            let one = Decimal::ONE;
            let c = Candle::new(k * 300_000, one, one, one, one, one);
            let fv = FeatureVector {
                open_time: c.open_time,
                values: [0.0; N_FEATURES],
            };
            f.predict_for("AAA", &fv, &c);
            if k < 10 {
                assert_eq!(
                    f.exits(),
                    None,
                    "the first fold's model has no exits of its own"
                );
            }
        }
        assert_eq!(
            f.exits(),
            Some(&wide),
            "the second fold's model trades its own exits"
        );
        // The second model saw the 5 latest vectors before its first candle, then that one.
        assert_eq!(first.load(Ordering::Relaxed), 10);
        assert_eq!(second.load(Ordering::Relaxed), 6);
    }
}
