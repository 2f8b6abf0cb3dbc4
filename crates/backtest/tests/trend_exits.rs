//! Trend-following exits in the backtest engine: the close on the opposite signal (at the
//! next candle's open), the chandelier stop, sizing that risks a fixed amount at the
//! chandelier's distance, and the trend rule with these exits on planted markets where it
//! must win, lose (one stop's risk) and hold.

use qt_backtest::{Backtest, BacktestConfig, BacktestOutcome, ExitReason, SymbolSeries};
use qt_candles::Candle;
use qt_events::SignalAction;
use qt_exits::ExitConfig;
use qt_features::FeatureVector;
use qt_models::{Model, Signal, TrendConfig, TrendModel};
use qt_risk::Sizing;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal_macros::dec;

/// On an hour.
const T0: i64 = 1_700_006_400_000;
const M5: i64 = 300_000;

/// The pre-registered exits (`docs/perf/wf-trend-exits.json`).
fn trend_exits() -> ExitConfig {
    ExitConfig {
        low_vol_targets_pct: vec![],
        high_vol_targets_pct: vec![],
        leg_fractions: vec![],
        stop_pct: dec!(10),
        trailing_activation_pct: None,
        chandelier_vol_mult: Some(dec!(4.8)),
        close_on_flip: true,
        time_stop_minutes: Some(40_320),
        ..ExitConfig::default()
    }
}

fn config(exits: ExitConfig) -> BacktestConfig {
    BacktestConfig {
        exits,
        sizing: Sizing::RiskPerTrade {
            risk: dec!(100),
            max_notional: dec!(2500),
            leverage: 10,
        },
        ..BacktestConfig::default()
    }
}

/// 5m candles following `price(hours)`, with an hour-by-hour ±0.2 % wiggle (so hourly returns
/// have a spread) and a candle-by-candle ±0.05 % one (the day's realized volatility is then
/// about 2.6 %, a chandelier distance near 12.5 %); open = previous close, high/low around them.
fn market(hours: usize, price: impl Fn(f64) -> f64) -> SymbolSeries {
    let mut prev: Option<Decimal> = None;
    let candles = (0..hours * 12)
        .map(|i| {
            let h = i as f64 / 12.0;
            let hour_w = if (i / 12) % 2 == 0 { 1.002 } else { 0.998 };
            let bar_w = if i % 2 == 0 { 1.0005 } else { 0.9995 };
            let close = Decimal::from_f64(price(h) * hour_w * bar_w)
                .unwrap_or(Decimal::ONE)
                .round_dp(4);
            let open = prev.unwrap_or(close);
            prev = Some(close);
            Candle::new(
                T0 + i as i64 * M5,
                open,
                open.max(close),
                open.min(close),
                close,
                dec!(1000000),
            )
        })
        .collect();
    SymbolSeries {
        symbol: "TRENDUSDT".into(),
        candles,
    }
}

fn run_trend(cfg: BacktestConfig, data: SymbolSeries) -> BacktestOutcome {
    let bt = Backtest::new(cfg).unwrap_or_else(|e| panic!("config: {e}"));
    bt.run(
        vec![data],
        &mut |_| {
            Ok(Box::new(
                TrendModel::new(TrendConfig::default(), "t").unwrap_or_else(|e| panic!("{e}")),
            ) as Box<dyn Model>)
        },
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("run: {e}"))
}

/// Says `.1` on the candles that open at the times of `.0`, HOLD otherwise.
#[derive(Debug)]
struct Script(Vec<(i64, SignalAction)>);

impl Model for Script {
    fn name(&self) -> &str {
        "script"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn predict(&mut self, _f: &FeatureVector, c: &Candle) -> Signal {
        match self.0.iter().find(|(t, _)| *t == c.open_time) {
            Some((_, a)) => Signal::new(*a, 1.0),
            None => Signal::hold(0.0),
        }
    }
}

#[test]
fn the_opposite_signal_closes_at_the_next_open_and_only_with_close_on_flip() {
    // A flat market: neither stop is ever reached. BUY at candle 400, SELL at candle 500.
    let data = market(60, |_| 100.0);
    let at = |k: usize| data.candles[k].open_time;
    let script = vec![(at(400), SignalAction::Buy), (at(500), SignalAction::Sell)];
    let run = |exits: ExitConfig| {
        let bt = Backtest::new(config(exits)).unwrap_or_else(|e| panic!("{e}"));
        bt.run(
            vec![data.clone()],
            &mut |_| Ok(Box::new(Script(script.clone())) as Box<dyn Model>),
            &mut |_, _| {},
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let o = run(trend_exits());
    assert_eq!(o.trades.len(), 1, "{:?}", o.trades);
    let t = &o.trades[0];
    assert_eq!(t.exit_reason, ExitReason::SignalFlip);
    assert_eq!(t.entry_time, at(401));
    // Filled at candle 501's open, less 2 bp of slippage.
    let open = data.candles[501].open;
    assert!(
        (t.exit_price - open * dec!(0.9998)).abs() <= dec!(0.001),
        "{t:?} against the open {open}"
    );
    assert_eq!(t.exit_time, at(501) + M5 - 1);
    // The SELL did not open a short on the same decision.
    let o = run(ExitConfig {
        close_on_flip: false,
        ..trend_exits()
    });
    assert_eq!(o.trades.len(), 1);
    assert_eq!(o.trades[0].exit_reason, ExitReason::EndOfData);
}

#[test]
fn the_trend_rule_with_trend_exits_rides_a_planted_trend_and_exits_on_the_chandelier() {
    // 0.2 %/hour up for 12 days (the rule goes long after its first week), then −1 %/hour.
    let top = 12.0 * 24.0;
    let price = move |h: f64| {
        if h <= top {
            100.0 * (0.002 * h).exp()
        } else {
            100.0 * (0.002 * top).exp() * (-0.01 * (h - top)).exp()
        }
    };
    let o = run_trend(config(trend_exits()), market(13 * 24 + 12, price));
    let first = o.trades.first().unwrap_or_else(|| panic!("no trade"));
    assert_eq!(first.side, qt_events::PositionSide::Long);
    assert_eq!(first.exit_reason, ExitReason::Trailing, "{first:?}");
    // Entered in the second week, out after the top: about five days of +0.2 %/hour (+10 %)
    // less one chandelier distance, so a gain.
    assert!(first.net_pnl > Decimal::ZERO, "{first:?}");
    assert!(first.exit_time > T0 + (top as i64) * 3_600_000, "{first:?}");
    // With the repo's default exits the same entry is cut by the ladder and 12-hour time stop
    // and makes less.
    let ladder = run_trend(BacktestConfig::default(), market(13 * 24 + 12, price));
    let first_ladder = ladder.trades.first().unwrap_or_else(|| panic!("no trade"));
    assert!(first_ladder.exit_time < first.exit_time);
}

#[test]
fn a_trend_that_reverses_at_the_entry_loses_the_risked_amount_at_the_chandelier() {
    // Up 0.2 %/hour for a week and three hours, then −0.5 %/hour: the rule goes long once it
    // has a week of hourly closes after the features' warm-up (the week's return is still
    // strongly positive), and the long is stopped at its initial chandelier stop.
    let turn = 171.0;
    let price = move |h: f64| {
        if h <= turn {
            100.0 * (0.002 * h).exp()
        } else {
            100.0 * (0.002 * turn).exp() * (-0.005 * (h - turn)).exp()
        }
    };
    let o = run_trend(config(trend_exits()), market(300, price));
    let first = o.trades.first().unwrap_or_else(|| panic!("no trade"));
    assert_eq!(first.exit_reason, ExitReason::Stop, "{first:?}");
    // Sized to lose 100 at the stop — the chandelier's distance, the one the plan placed:
    // the gross loss is 100 plus slippage and tick rounding (sizing on any other distance
    // would lose another amount).
    assert!(
        first.gross_pnl < dec!(-95) && first.gross_pnl > dec!(-110),
        "{first:?}"
    );
}

#[test]
fn the_trend_rule_with_trend_exits_holds_in_a_market_without_a_trend() {
    let o = run_trend(config(trend_exits()), market(400, |_| 100.0));
    assert!(o.trades.is_empty(), "{:?}", o.trades);
}

#[test]
fn a_slow_reversal_closes_the_long_on_the_opposite_signal_before_the_chandelier() {
    // Up 0.2 %/hour for 8 days, then down 0.035 %/hour: the week's strength reaches −1 (a
    // SELL) about a week later, with the price ~6 % under the top, well inside the chandelier.
    let top = 8.0 * 24.0;
    let price = move |h: f64| {
        if h <= top {
            100.0 * (0.002 * h).exp()
        } else {
            100.0 * (0.002 * top).exp() * (-0.00035 * (h - top)).exp()
        }
    };
    let o = run_trend(config(trend_exits()), market(8 * 24 + 200, price));
    let first = o.trades.first().unwrap_or_else(|| panic!("no trade"));
    assert_eq!(first.exit_reason, ExitReason::SignalFlip, "{first:?}");
    assert_eq!(first.exit_time.rem_euclid(3_600_000), M5 - 1, "{first:?}");
    let second = o.trades.get(1).unwrap_or_else(|| panic!("no short"));
    assert_eq!(second.side, qt_events::PositionSide::Short);
}

#[test]
fn the_pre_registered_configuration_file_holds_these_exits_and_sizing() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/perf/wf-trend-exits.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let cfg: qt_backtest::walkforward::WalkForwardConfig =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.model.kind, qt_models::ModelKind::Trend);
    let want = config(trend_exits());
    assert_eq!(cfg.backtest.exits, want.exits);
    assert_eq!(cfg.backtest.sizing, want.sizing);
    // Everything else is the walk-forward's default.
    let mut rest = cfg.clone();
    rest.backtest.exits = ExitConfig::default();
    rest.backtest.sizing = Sizing::default();
    rest.model.kind = qt_models::ModelKind::Gbdt;
    assert_eq!(rest, qt_backtest::walkforward::WalkForwardConfig::default());
}
