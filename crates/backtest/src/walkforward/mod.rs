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

mod baselines;
mod config;
mod fold;
mod random;
mod results;
mod run;
mod summary;
#[cfg(test)]
mod tests;

pub use baselines::{RandomEntries, buy_and_hold};
pub use config::{Fold, ModelSettings, SweepAxis, WalkForwardConfig, plan_folds, sweep_grid};
pub use fold::{TrainedFold, train_fold};
pub use random::{RandomRun, RandomSettings, entry_probability, run_random, with_exits};
pub use results::{
    Curves, Deflated, FoldResult, RandomBaseline, RunFigures, SweepResult, WalkForwardReport,
};
pub(crate) use run::CHART_BARS;
pub use run::run_walkforward;
pub use summary::deflate;

const DAY_MS: i64 = 86_400_000;
