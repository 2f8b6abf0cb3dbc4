//! Walk-forward: the fold windows worked by hand, training that never reads past its window
//! (the purge), one stitched out-of-sample run with the baselines on the same window, the
//! deflated Sharpe counting the sweep's trials, and the report files.

use std::path::PathBuf;

use qt_backtest::cli::load_data;
use qt_backtest::walkforward::{
    Fold, SweepAxis, WalkForwardConfig, plan_folds, run_walkforward, sweep_grid, train_fold,
};
use qt_backtest::{BacktestConfig, SymbolSeries};
use rust_decimal::Decimal;

const DAY: i64 = 86_400_000;
const IV: i64 = 300_000;

fn repo_data(symbols: &[&str]) -> Vec<SymbolSeries> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m");
    let symbols: Vec<String> = symbols.iter().map(|s| (*s).to_owned()).collect();
    load_data(&[dir], "5m", &symbols).unwrap_or_else(|e| panic!("repo data: {e}"))
}

#[test]
fn rolling_folds_train_test_and_roll_with_the_embargo_between_training_and_test() {
    let cfg = WalkForwardConfig {
        train_days: 20.0,
        test_days: 10.0,
        embargo_candles: 12,
        ..WalkForwardConfig::default()
    };
    // 60 days of data from day 0: tests start at days 20, 30, 40, 50.
    let folds = plan_folds(0, 60 * DAY, IV, &cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(folds.len(), 4);
    assert_eq!(
        folds[1],
        Fold {
            index: 1,
            train_start: 10 * DAY,
            train_end: 30 * DAY - 12 * IV,
            test_start: 30 * DAY,
            test_end: 40 * DAY,
        }
    );
    assert_eq!(folds[3].test_end, 60 * DAY);
    for w in folds.windows(2) {
        assert_eq!(w[0].test_end, w[1].test_start, "test windows tile the span");
    }

    // Anchored: every fold trains from the start; a short tail (under min_test_days) is dropped.
    let anchored = WalkForwardConfig {
        anchored: true,
        ..cfg.clone()
    };
    let folds = plan_folds(0, 55 * DAY, IV, &anchored).unwrap_or_else(|e| panic!("{e}"));
    assert!(folds.iter().all(|f| f.train_start == 0));
    assert_eq!(folds.last().map(|f| f.test_end), Some(50 * DAY)); // days 50–55 < 7 days

    // Too short for one fold, and overlapping test windows, are refused with the reason.
    let err = plan_folds(0, 25 * DAY, IV, &cfg).unwrap_err().to_string();
    assert!(err.contains("too short"), "{err}");
    let overlap = WalkForwardConfig {
        step_days: Some(5.0),
        ..cfg
    };
    let err = plan_folds(0, 60 * DAY, IV, &overlap)
        .unwrap_err()
        .to_string();
    assert!(err.contains("overlap"), "{err}");
}

#[test]
fn a_fold_model_is_the_same_whatever_the_data_after_its_training_window_holds() {
    let series = repo_data(&["BTCUSDT", "ETHUSDT"]);
    let mut cfg = WalkForwardConfig {
        train_days: 20.0,
        test_days: 10.0,
        ..WalkForwardConfig::default()
    };
    cfg.model.gbdt.iterations = 20;
    let start = series[0].candles[0].open_time;
    let folds = plan_folds(start, start + 60 * DAY, IV, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let fold = &folds[1];
    let full = train_fold(&series, fold, &cfg, IV).unwrap_or_else(|e| panic!("{e}"));
    // The same fold trained on data cut at its training end: the test window and everything
    // after it are gone. A model that read any of it would differ.
    let cut: Vec<SymbolSeries> = series
        .iter()
        .map(|s| SymbolSeries {
            symbol: s.symbol.clone(),
            candles: s
                .candles
                .iter()
                .filter(|c| c.open_time < fold.train_end)
                .copied()
                .collect(),
        })
        .collect();
    let alone = train_fold(&cut, fold, &cfg, IV).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.artifact.params, alone.artifact.params);
    let range = full
        .artifact
        .training_range
        .unwrap_or_else(|| panic!("no training range"));
    // Rows need `horizon` candles after them for their label: the last rows before the cut
    // are purged.
    let horizon = cfg.model.label_horizon as i64;
    assert!(
        range.end_ms < fold.train_end - horizon * IV + IV,
        "{range:?}"
    );
    assert!(range.start_ms >= fold.train_start);
    assert!(full.purged_rows >= 2 * horizon as usize);
}

#[test]
fn the_walk_forward_stitches_its_folds_into_one_run_beside_the_baselines_and_writes_its_report() {
    let series = repo_data(&["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    let mut cfg = WalkForwardConfig {
        train_days: 20.0,
        test_days: 10.0,
        random_paths: 24,
        ..WalkForwardConfig::default()
    };
    cfg.model.gbdt.iterations = 20;
    cfg.sweep = vec![SweepAxis::parse("min_confidence=0.5,0.7").unwrap_or_else(|e| panic!("{e}"))];
    let (report, curves) =
        run_walkforward(series.clone(), &cfg, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(report.folds.len(), 4);
    let from = report.folds[0].fold.test_start;
    let to = report.folds[3].fold.test_end;
    // One curve over the out-of-sample window only; the baselines on the same grid.
    let first = curves
        .strategy
        .first()
        .map(|p| p.time_ms)
        .unwrap_or_default();
    let last = curves
        .strategy
        .last()
        .map(|p| p.time_ms)
        .unwrap_or_default();
    assert!(first >= from && first < from + IV, "{first} vs {from}");
    assert!(last < to, "{last} vs {to}");
    assert_eq!(curves.momentum.len(), curves.strategy.len());
    assert_eq!(curves.buy_and_hold.len(), curves.strategy.len());
    // Fold figures add up to the whole: each fold starts where the previous one ended.
    let sum: Decimal = report
        .folds
        .iter()
        .map(|f| f.strategy.metrics.net_pnl)
        .sum();
    assert_eq!(sum, report.strategy.metrics.net_pnl);

    // Buy-and-hold by hand: equal thirds bought at the first test open (+ slippage and a taker
    // fee), sold at the last close (− slippage, − fee), minus the funding a long pays.
    let fill = &cfg.backtest.fill;
    let share = cfg.backtest.initial_equity / Decimal::from(3);
    let mut equity = Decimal::ZERO;
    for s in &series {
        let window: Vec<_> = s
            .candles
            .iter()
            .filter(|c| c.open_time >= from && c.open_time < to)
            .collect();
        let buy = window[0].open * (Decimal::ONE + fill.slippage);
        let qty = (share - share * fill.taker_fee) / buy;
        let sell = window[window.len() - 1].close * (Decimal::ONE - fill.slippage);
        equity += qty * sell * (Decimal::ONE - fill.taker_fee);
    }
    let hold = &report.buy_and_hold;
    let by_hand = equity - hold.funding;
    assert!(
        (hold.metrics.final_equity - by_hand).abs() < Decimal::new(1, 6),
        "{} vs {by_hand}",
        hold.metrics.final_equity
    );
    assert!(
        hold.funding > Decimal::ZERO,
        "a long pays the default positive rate"
    );

    // Random entries: seeded paths at the strategy's trade rate, the strategy placed among them.
    let r = &report.random;
    assert_eq!((r.paths, r.returns.len()), (24, 24));
    assert!(r.returns.windows(2).all(|w| w[0] <= w[1]));
    assert!((0.0..=1.0).contains(&r.strategy_percentile));
    assert!(r.entry_probability > 0.0 || report.strategy.metrics.trades == 0);

    // Each fold tried the six exit plans of the default grid on its validation slice and its
    // model carries the one it kept.
    for f in &report.folds {
        let x = f
            .exits
            .as_ref()
            .unwrap_or_else(|| panic!("fold {}: no exits", f.fold.index));
        assert_eq!(x.trials.len(), 6);
        assert!(x.chosen < 6);
    }
    // The sweep's two configurations, each with six exit plans, are twelve trials; the chosen
    // configuration has the best Sharpe.
    let sweep = report
        .sweep
        .as_ref()
        .unwrap_or_else(|| panic!("no sweep result"));
    assert_eq!(sweep.configurations.len(), 2);
    assert_eq!(report.deflated.exit_plans, 6);
    assert_eq!(report.deflated.trials, 12);
    let best = sweep
        .configurations
        .iter()
        .map(|c| c.2.unwrap_or(f64::NEG_INFINITY))
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(
        report.strategy.metrics.sharpe.unwrap_or(f64::NEG_INFINITY),
        best
    );
    assert!(sweep.pbo.is_some_and(|p| (0.0..=1.0).contains(&p)));
    if let (Some(dsr), Some(psr)) = (report.deflated.dsr, report.strategy.psr) {
        assert!(dsr <= psr + 1e-12, "deflating never raises the probability");
    }
    assert!(!report.verdict.is_empty());

    // The same seed gives the same paths.
    let (again, _) = run_walkforward(series, &cfg, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.random.returns, report.random.returns);

    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = qt_backtest::wf_report::write(out.path(), &report, &curves)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 6);
    let svg = std::fs::read_to_string(out.path().join("equity.svg")).unwrap_or_default();
    assert!(svg.starts_with("<svg") && svg.contains("buy &amp; hold") && svg.ends_with("</svg>"));
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap_or_default();
    for part in [
        "<svg",
        "Verdict",
        "random entries",
        "Monthly returns",
        "Drawdown",
    ] {
        assert!(html.contains(part), "report.html lacks {part}");
    }
    for fetch in ["<script", "src=", "href=", "@import"] {
        assert!(
            !html.contains(fetch),
            "report.html loads something: {fetch}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("report.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(json["deflated"]["trials"].as_u64() == Some(12));
    assert!(
        html.contains("Exit plans"),
        "report.html lacks the exit plans"
    );
}

#[test]
fn a_sweep_key_that_names_no_setting_is_refused_with_its_name() {
    let axes = vec![SweepAxis::parse("exits.no_such=1,2").unwrap_or_else(|e| panic!("{e}"))];
    let err = sweep_grid(&BacktestConfig::default(), &axes)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exits.no_such"), "{err}");
    let axes = vec![
        SweepAxis::parse("min_confidence=0.5,0.6").unwrap_or_else(|e| panic!("{e}")),
        SweepAxis::parse("exits.stop_pct=\"1.5\",\"2\"").unwrap_or_else(|e| panic!("{e}")),
    ];
    let grid = sweep_grid(&BacktestConfig::default(), &axes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(grid.len(), 4);
    assert_eq!(grid[3].1.min_confidence, 0.6);
    assert_eq!(grid[3].1.exits.stop_pct, Decimal::new(2, 0));
    assert!(SweepAxis::parse("min_confidence").is_err());
}
