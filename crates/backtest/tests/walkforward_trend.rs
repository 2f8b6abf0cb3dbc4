//! The trend rule (`--kind trend`) through the walk-forward: a rule with nothing to fit, one
//! exit plan (one trial), deciding only at hour closes, so every entry fills at the open of an
//! hour; and the meta-labeler (`--kind meta`) trained per fold on the rule's trades.

use std::path::PathBuf;

use qt_backtest::SymbolSeries;
use qt_backtest::cli::load_data;
use qt_backtest::walkforward::{WalkForwardConfig, run_walkforward};
use qt_models::{ExitGrid, ModelKind};

const HOUR: i64 = 3_600_000;

fn repo_data(symbols: &[&str]) -> Vec<SymbolSeries> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m");
    let symbols: Vec<String> = symbols.iter().map(|s| (*s).to_owned()).collect();
    load_data(&[dir], "5m", &symbols).unwrap_or_else(|e| panic!("repo data: {e}"))
}

fn config(kind: ModelKind) -> WalkForwardConfig {
    let mut cfg = WalkForwardConfig {
        train_days: 20.0,
        test_days: 10.0,
        random_paths: 24,
        prior_trials: 3,
        ..WalkForwardConfig::default()
    };
    cfg.model.kind = kind;
    cfg.model.gbdt.iterations = 20;
    cfg
}

#[test]
fn the_trend_rule_walks_forward_as_one_trial_entering_only_on_the_hour() {
    let series = repo_data(&["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    let cfg = config(ModelKind::Trend);
    let (report, curves) =
        run_walkforward(series, &cfg, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.folds.len(), 4);
    assert_eq!(report.deflated.exit_plans, 1);
    assert_eq!(
        report.deflated.trials,
        1 + 3,
        "one plan plus the prior trials"
    );
    for f in &report.folds {
        assert!(f.exits.is_none(), "a rule chooses no exits");
        assert!(f.model_version.starts_with("wf-"));
    }
    assert!(
        !curves.trades.is_empty(),
        "a week-long trend is found somewhere in 40 days of three symbols"
    );
    for t in &curves.trades {
        assert_eq!(
            t.entry_time.rem_euclid(HOUR),
            0,
            "{} entered at {} (not at an hour's open)",
            t.symbol,
            t.entry_time
        );
    }
    // It is not the momentum baseline under another name.
    assert_ne!(report.strategy.metrics, report.momentum.metrics);
}

#[test]
fn the_meta_labeler_walks_forward_with_one_exit_plan_per_fold() {
    let series = repo_data(&["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    let mut cfg = config(ModelKind::Meta);
    cfg.model.exit_grid = ExitGrid::base_only();
    let (report, curves) =
        run_walkforward(series, &cfg, &|_, _, _| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.deflated.exit_plans, 1);
    assert_eq!(report.deflated.trials, 1 + 3);
    for f in &report.folds {
        let x = f
            .exits
            .as_ref()
            .unwrap_or_else(|| panic!("fold {}", f.fold.index));
        assert_eq!(x.trials.len(), 1);
    }
    // Whatever it takes is one of the rule's trades: entries on the hour only.
    for t in &curves.trades {
        assert_eq!(t.entry_time.rem_euclid(HOUR), 0, "{t:?}");
    }
}
