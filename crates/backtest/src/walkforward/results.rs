//! What a walk-forward reports.

use qt_models::ExitChoice;
use qt_models::ev::EvReport;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::{EquityPoint, Trade};
use crate::report::Metrics;

use super::*;

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
    /// Each symbol's candles over the out-of-sample window, thinned for the charts.
    pub candles: Vec<crate::charts::ChartSeries>,
}
