//! The random-entry baseline, run the same way for a walk-forward and for a single backtest:
//! seeded paths that enter at random (BUY or SELL, even odds) at the strategy's trade rate, with
//! the strategy's exits, sizing, limits and costs, on the same prepared candles and window.
//! Only the entry decision differs, so where the strategy's return falls among the paths'
//! says how much of it the entries earned.

use std::sync::atomic::{AtomicUsize, Ordering};

use qt_models::Model;

use crate::BacktestError;
use crate::engine::{Backtest, BacktestConfig, BacktestOutcome, EquityPoint, PreparedSeries};
use crate::report::daily_returns;
use crate::stats;

use super::baselines::{RandomEntries, hash};
use super::fold::WithFoldExits;
use super::results::RandomBaseline;
use super::run::par_map;
use super::summary::f;

/// What the random paths are run with (beside the data and the configuration).
#[derive(Debug, Clone, Copy)]
pub struct RandomSettings {
    /// Paths (the report needs at least 100 to place the strategy).
    pub paths: usize,
    pub seed: u64,
    pub threads: usize,
}

/// The paths' distribution, the path with the median final equity, and the per-day Sharpe
/// ratio of each path (the spread luck alone gives, for the deflated Sharpe ratio).
#[derive(Debug, Clone)]
pub struct RandomRun {
    pub baseline: RandomBaseline,
    pub median_path: Vec<EquityPoint>,
    pub null_sharpes: Vec<f64>,
}

/// Random entries trading `exits` (`None`: the run's), as a strategy whose model carries
/// those exits trades them.
pub fn with_exits(exits: Option<qt_exits::ExitConfig>, inner: RandomEntries) -> Box<dyn Model> {
    Box::new(WithFoldExits {
        starts: vec![i64::MIN],
        exits: vec![exits],
        current: 0,
        inner,
    })
}

/// The chance of an entry per flat symbol-candle that matches `strategy`'s trade rate over
/// `[from, to)`: its trades over the candles of the window in which it held nothing.
pub fn entry_probability(
    data: &[PreparedSeries],
    strategy: &BacktestOutcome,
    interval_ms: i64,
    from: i64,
    to: i64,
) -> f64 {
    let symbol_candles: usize = data
        .iter()
        .map(|s| {
            s.candles
                .iter()
                .filter(|c| c.open_time >= from && c.open_time < to)
                .count()
        })
        .sum();
    let held_candles: i64 = strategy
        .trades
        .iter()
        .map(|t| (t.exit_time - t.entry_time) / interval_ms + 1)
        .sum();
    let flat = (symbol_candles as f64 - held_candles as f64).max(1.0);
    (strategy.trades.len() as f64 / flat).clamp(0.0, 1.0)
}

/// Runs `settings.paths` random-entry paths of `cfg` over `data` in `[from, to)` (the window
/// `cfg` trades) and places `strategy_return` (net, fraction of the starting equity) among
/// them. `model(entries)` wraps each symbol's random entries in what gives them the strategy's
/// exits; `progress(done, total)` is called after each path.
///
/// # Errors
/// [`BacktestError`] when a path cannot run (bad configuration).
#[allow(clippy::too_many_arguments)]
pub fn run_random(
    data: &[PreparedSeries],
    cfg: &BacktestConfig,
    (from, to): (i64, i64),
    strategy: &BacktestOutcome,
    strategy_return: f64,
    settings: RandomSettings,
    model: &(dyn Fn(RandomEntries) -> Box<dyn Model> + Sync),
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RandomRun, BacktestError> {
    let p = entry_probability(data, strategy, cfg.interval_ms, from, to);
    let bt = Backtest::new(cfg.clone())?;
    let done = AtomicUsize::new(0);
    let paths = par_map(settings.paths, settings.threads, &|k| {
        let r = bt.run_prepared(
            data,
            &mut |sym| {
                let seed = settings.seed ^ (k as u64).wrapping_mul(0x9E37_79B9) ^ hash(sym);
                Ok(model(RandomEntries::new(seed, p)))
            },
            &mut |_, _| {},
        );
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, settings.paths);
        r
    });
    let paths: Vec<BacktestOutcome> = paths.into_iter().collect::<Result<_, _>>()?;
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
    let baseline = RandomBaseline {
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
            returns.iter().filter(|&&r| r < strategy_return).count() as f64 / returns.len() as f64
        },
        returns,
    };
    let median_path = path_returns
        .get(path_returns.len() / 2)
        .map(|&(_, k)| paths[k].equity.clone())
        .unwrap_or_default();
    let null_sharpes = paths
        .iter()
        .filter_map(|o| stats::sharpe_per_period(&daily_returns(o.initial_equity, &o.equity)))
        .collect();
    Ok(RandomRun {
        baseline,
        median_path,
        null_sharpes,
    })
}
