//! Running a walk-forward: train the folds, trade them in one continuous backtest, run the
//! baselines and the random paths, and stitch the report.

use std::sync::atomic::{AtomicUsize, Ordering};

use qt_exits::ExitConfig;
use qt_models::{Model, MomentumModel, build_model};
use rust_decimal::Decimal;

use crate::BacktestError;
use crate::engine::{Backtest, BacktestConfig, ModelFactory, PreparedSeries, SymbolSeries};
use crate::report::daily_returns;
use crate::stats;

use super::fold::{FoldModels, WithFoldExits};
use super::random::{RandomRun, RandomSettings, run_random};
use super::summary::{figures, figures_of, verdict};
use super::*;

/// Bars drawn per symbol in a report's candle charts.
pub(crate) const CHART_BARS: usize = 240;

/// Runs `work(i)` for `i` in `0..n` on up to `threads` threads; results in index order.
pub(super) fn par_map<T: Send>(
    n: usize,
    threads: usize,
    work: &(dyn Fn(usize) -> T + Sync),
) -> Vec<T> {
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
    let prepared = PreparedSeries::prepare_all_with(&data, iv, &cfg.backtest.context_inputs());
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

    // 3. Random entries at the strategy's trade rate (the code a single backtest's report
    //    runs too), beside the chosen configuration once more with the breaker at its loosest
    //    (it trips only when the equity is gone): a diagnostic of the model's decisions after
    //    the point where the breaker stops a bleeding strategy. Not a trial: nothing is chosen
    //    from it.
    let chosen_cfg = &grid[best].1;
    let mut loose = chosen_cfg.clone();
    loose.limits.max_drawdown_pct = Decimal::ONE;
    let with_fold_exits = |inner: RandomEntries| -> Box<dyn Model> {
        Box::new(WithFoldExits {
            starts: starts.clone(),
            exits: fold_exits.clone(),
            current: 0,
            inner,
        })
    };
    let settings = RandomSettings {
        paths: cfg.random_paths,
        seed: cfg.seed,
        threads: cfg.threads,
    };
    let (unprotected, random_run) = std::thread::scope(|scope| {
        let unprotected = scope.spawn(|| run(&loose, &mut |sym| fold_models(sym)));
        let random_run = run_random(
            &prepared,
            chosen_cfg,
            (oos_from, oos_to),
            &strategy,
            s_fig.total_return,
            settings,
            &with_fold_exits,
            &|done, total| progress("random", done, total),
        );
        let unprotected = unprotected.join().unwrap_or_else(|_| {
            Err(BacktestError::Config(
                "internal: the run without breaker panicked".into(),
            ))
        });
        (unprotected, random_run)
    });
    let unprotected = unprotected?;
    let RandomRun {
        baseline: random,
        median_path,
        null_sharpes: null,
    } = random_run?;

    let m_fig = figures("momentum", &momentum, oos_from, oos_to);
    let u_fig = figures("no breaker", &unprotected, oos_from, oos_to);
    let h_fig = figures_of("buy_and_hold", &hold);

    // 4. Deflated Sharpe: every configuration of the sweep and every prior trial counts in N.
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
        candles: data
            .iter()
            .map(|s| {
                crate::charts::chart_series(
                    &s.symbol,
                    &s.candles,
                    iv,
                    (oos_from, oos_to),
                    CHART_BARS,
                )
            })
            .collect(),
    };
    Ok((report, curves))
}
