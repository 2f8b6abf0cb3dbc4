//! `qtctl backtest` and `qtctl goal` through their library entry points, on the repo's candles.

use std::path::PathBuf;

use clap::Parser;
use qt_backtest::cli::{
    BacktestArgs, GoalArgs, config_from_args, load_metrics, run_backtest, run_goal,
};
use rust_decimal_macros::dec;

#[derive(Debug, Parser)]
struct Backtest {
    #[command(flatten)]
    args: BacktestArgs,
}

#[derive(Debug, Parser)]
struct Goal {
    #[command(flatten)]
    args: GoalArgs,
}

fn repo_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/klines/5m")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn backtest_over_a_date_range_writes_the_report_and_goal_reads_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("report");
    let out_s = out.display().to_string();
    let eth = repo_file("ETHUSDT-5m.csv.gz");
    let bnb = repo_file("BNBUSDT-5m.csv.gz");
    let cli = Backtest::try_parse_from([
        "backtest",
        &eth,
        &bnb,
        "--strategy",
        "momentum",
        "--from",
        "2023-08-10",
        "--to",
        "2023-09-20",
        "--out",
        &out_s,
        "--quiet",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let cfg = config_from_args(&cli.args).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cfg.start_ms, Some(1_691_625_600_000));
    assert_eq!(cfg.end_ms, Some(1_695_168_000_000));
    run_backtest(cli.args).unwrap_or_else(|e| panic!("{e:#}"));
    for f in [
        "trades.csv",
        "equity.csv",
        "metrics.json",
        "equity.svg",
        "report.html",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap_or_default();
    for part in [
        "buy &amp; hold",
        "Drawdown",
        "Monthly returns",
        "<svg",
        "Random entries: net return of 200 paths",
    ] {
        assert!(html.contains(part), "report.html lacks {part}");
    }
    let m = load_metrics(&out).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        m.days > 39.0 && m.days < 41.0,
        "equity curve covers the range only: {}",
        m.days
    );
    let equity = std::fs::read_to_string(out.join("equity.csv")).unwrap_or_default();
    let first_t: i64 = equity
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    assert!(first_t >= 1_691_625_600_000);

    let goal = Goal::try_parse_from([
        "goal", "--target", "1500", "--hours", "24", "--report", &out_s,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(goal.args.target, dec!(1500));
    run_goal(goal.args).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn bad_dates_unknown_strategies_and_missing_reports_are_clear_errors() {
    let eth = repo_file("ETHUSDT-5m.csv.gz");
    let bad_date = Backtest::try_parse_from(["backtest", &eth, "--from", "2023-13-01"])
        .unwrap_or_else(|e| panic!("{e}"));
    let e = config_from_args(&bad_date.args)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(e.contains("--from"), "{e}");
    let bad_model = Backtest::try_parse_from([
        "backtest",
        &eth,
        "--strategy",
        "no-such-model.json",
        "--quiet",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let e = run_backtest(bad_model.args)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(e.contains("neither `momentum` nor a model artifact"), "{e}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let goal = Goal::try_parse_from([
        "goal",
        "--target",
        "100",
        "--report",
        &dir.path().display().to_string(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let e = run_goal(goal.args)
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(e.contains("run `qtctl backtest` first"), "{e}");
}

#[test]
fn a_json_config_file_sets_limits_sizing_and_exits_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg_path = dir.path().join("bt.json");
    std::fs::write(
        &cfg_path,
        r#"{
            "min_confidence": 0.7,
            "sizing": { "mode": "risk_per_trade", "risk": "20", "max_notional": "2500", "leverage": 5 },
            "limits": { "max_concurrent_positions": 3 },
            "exits": { "stop_pct": "1.5" }
        }"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let eth = repo_file("ETHUSDT-5m.csv.gz");
    let cfg_s = cfg_path.display().to_string();
    let cli = Backtest::try_parse_from(["backtest", &eth, "--config", &cfg_s])
        .unwrap_or_else(|e| panic!("{e}"));
    let cfg = config_from_args(&cli.args).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cfg.min_confidence, 0.7);
    assert_eq!(cfg.limits.max_concurrent_positions, 3);
    assert_eq!(
        cfg.limits.max_leverage, 10,
        "unnamed fields keep their defaults"
    );
    assert_eq!(cfg.exits.stop_pct, dec!(1.5));
    assert_eq!(
        cfg.sizing,
        qt_backtest::Sizing::RiskPerTrade {
            risk: dec!(20),
            max_notional: dec!(2500),
            leverage: 5
        }
    );
    let cli = Backtest::try_parse_from([
        "backtest",
        &eth,
        "--config",
        &cfg_s,
        "--margin",
        "100",
        "--leverage",
        "3",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let cfg = config_from_args(&cli.args).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        cfg.sizing,
        qt_backtest::Sizing::FixedNotional {
            margin: dec!(100),
            leverage: 3
        }
    );
}
