//! The event loop on scripted candles: conservative intra-candle exits, the take-profit ladder
//! with break-even, partial entry fills, the risk guard in the loop, and a run on the repo's
//! real candles whose books balance to the cent.

use std::path::PathBuf;

use qt_backtest::cli::load_data;
use qt_backtest::report::{compute_metrics, write_report};
use qt_backtest::{Backtest, BacktestConfig, BacktestError, ExitReason, SymbolSeries};
use qt_candles::Candle;
use qt_events::{PositionSide, SignalAction};
use qt_features::FeatureVector;
use qt_models::{Model, MomentumConfig, MomentumModel, Signal};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_700_006_400_000;
const IV: i64 = 300_000;
const WARM: usize = 300;

/// Says `.1` on the candle that opens at `.0`, HOLD otherwise.
#[derive(Debug)]
struct Once(i64, Signal);

impl Model for Once {
    fn name(&self) -> &str {
        "script"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn predict(&mut self, _f: &FeatureVector, c: &Candle) -> Signal {
        if c.open_time == self.0 {
            self.1
        } else {
            Signal::hold(0.0)
        }
    }
}

/// BUY with full confidence, unpriced.
fn buy() -> Signal {
    Signal::new(SignalAction::Buy, 1.0)
}

fn candle(i: usize, o: Decimal, h: Decimal, l: Decimal, c: Decimal, v: Decimal) -> Candle {
    Candle::new(T0 + i as i64 * IV, o, h, l, c, v)
}

/// `WARM` quiet candles at 100, then `tail` (open, high, low, close, volume).
fn series(symbol: &str, tail: &[(Decimal, Decimal, Decimal, Decimal, Decimal)]) -> SymbolSeries {
    let mut candles: Vec<Candle> = (0..WARM)
        .map(|i| {
            candle(
                i,
                dec!(100),
                dec!(100.05),
                dec!(99.95),
                dec!(100),
                dec!(1000000),
            )
        })
        .collect();
    for (k, (o, h, l, c, v)) in tail.iter().enumerate() {
        candles.push(candle(WARM + k, *o, *h, *l, *c, *v));
    }
    SymbolSeries {
        symbol: symbol.into(),
        candles,
    }
}

fn run(cfg: BacktestConfig, data: Vec<SymbolSeries>) -> qt_backtest::BacktestOutcome {
    // the signal comes on the last warm-up candle; the entry fills at the next open
    let signal_at = T0 + (WARM as i64 - 1) * IV;
    let bt = Backtest::new(cfg).unwrap_or_else(|e| panic!("config: {e}"));
    bt.run(
        data,
        &mut |_| Ok(Box::new(Once(signal_at, buy())) as Box<dyn Model>),
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("run: {e}"))
}

const BIG: Decimal = dec!(1000000);

#[test]
fn when_stop_and_target_both_lie_inside_one_candle_the_stop_counts() {
    let o = run(
        BacktestConfig::default(),
        vec![series(
            "AAAUSDT",
            &[(dec!(100), dec!(103), dec!(97), dec!(100), BIG)],
        )],
    );
    assert_eq!(o.trades.len(), 1);
    let t = &o.trades[0];
    assert_eq!(t.exit_reason, ExitReason::Stop);
    assert_eq!(t.entry_price, dec!(100.02)); // open + 2 bp slippage
    assert_eq!(t.qty, dec!(25)); // 250 × 10 / 100
    assert!(t.net_pnl < Decimal::ZERO);
    assert_eq!(t.legs_hit, 0);
}

/// [`Once`] trained for its own exits (as a model built from an artifact carries its labels'
/// exits).
#[derive(Debug)]
struct OnceWithExits(Once, qt_exits::ExitConfig);

impl Model for OnceWithExits {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn version(&self) -> &str {
        self.0.version()
    }
    fn predict(&mut self, f: &FeatureVector, c: &Candle) -> Signal {
        self.0.predict(f, c)
    }
    fn exits(&self) -> Option<&qt_exits::ExitConfig> {
        Some(&self.1)
    }
}

#[test]
fn a_model_carrying_its_own_exits_is_traded_with_them_not_with_the_runs() {
    // One leg at +0.5%, a 0.25% stop, no trailing: far tighter than the run's exits (a 2%
    // stop, +1.95% first leg), which this data never reaches.
    let exits = qt_exits::ExitConfig {
        low_vol_targets_pct: vec![dec!(0.5)],
        high_vol_targets_pct: vec![dec!(0.5)],
        leg_fractions: vec![Decimal::ONE],
        stop_pct: dec!(0.25),
        trailing_activation_pct: None,
        ..qt_exits::ExitConfig::default()
    };
    let signal_at = T0 + (WARM as i64 - 1) * IV;
    let run_with = |tail: &[(Decimal, Decimal, Decimal, Decimal, Decimal)], own: bool| {
        let bt = Backtest::new(BacktestConfig::default()).unwrap();
        bt.run(
            vec![series("AAAUSDT", tail)],
            &mut |_| {
                let once = Once(signal_at, buy());
                Ok(if own {
                    Box::new(OnceWithExits(once, exits.clone())) as Box<dyn Model>
                } else {
                    Box::new(once)
                })
            },
            &mut |_, _| {},
        )
        .unwrap()
    };
    let up = [
        (dec!(100), dec!(100.3), dec!(99.9), dec!(100.2), BIG),
        (dec!(100.2), dec!(100.6), dec!(100.1), dec!(100.5), BIG), // +0.5% from 100.02: 100.52
        (dec!(100.5), dec!(100.6), dec!(100.4), dec!(100.5), BIG),
    ];
    let o = run_with(&up, true);
    assert_eq!(o.trades.len(), 1);
    let t = &o.trades[0];
    assert_eq!(t.entry_price, dec!(100.02));
    assert_eq!(
        (t.exit_reason, t.legs_hit),
        (ExitReason::TakeProfit, 1),
        "{t:?}"
    );
    assert!(
        t.exit_price > dec!(100.49) && t.exit_price <= dec!(100.52),
        "filled at the +0.5% leg, 100.52 (less slippage): {t:?}"
    );
    let o = run_with(&up, false);
    assert_eq!(
        o.trades[0].exit_reason,
        ExitReason::EndOfData,
        "the run's exits hold on"
    );
    let down = [
        (dec!(100), dec!(100.1), dec!(99.9), dec!(100), BIG),
        (dec!(100), dec!(100.1), dec!(99.7), dec!(99.8), BIG), // 0.25% under 100.02: 99.77
        (dec!(99.8), dec!(99.9), dec!(99.7), dec!(99.8), BIG),
    ];
    let o = run_with(&down, true);
    let t = &o.trades[0];
    assert_eq!(t.exit_reason, ExitReason::Stop, "{t:?}");
    assert!(
        t.exit_price < dec!(99.78) && t.exit_price > dec!(99.74),
        "stopped near 99.77 (less slippage): {t:?}"
    );
    assert_eq!(t.exit_time, T0 + (WARM as i64 + 1) * IV + IV - 1);
    let o = run_with(&down, false);
    assert_eq!(o.trades[0].exit_reason, ExitReason::EndOfData);
}

#[test]
fn the_first_leg_moves_the_stop_to_break_even_and_the_rest_exits_there() {
    let o = run(
        BacktestConfig::default(),
        vec![series(
            "AAAUSDT",
            &[
                (dec!(100), dec!(100.5), dec!(99.8), dec!(100.3), BIG),
                (dec!(100.3), dec!(102.2), dec!(100.2), dec!(102), BIG), // tp1 at 101.97
                (dec!(102), dec!(102.1), dec!(99.5), dec!(99.6), BIG),   // back through entry
            ],
        )],
    );
    assert_eq!(o.trades.len(), 1);
    let t = &o.trades[0];
    assert_eq!((t.exit_reason, t.legs_hit), (ExitReason::BreakEven, 1));
    // 7.5 sold near 101.97 and 17.5 near 100.02: a small gain before fees
    assert!(t.gross_pnl > Decimal::ZERO, "{t:?}");
}

#[test]
fn kelly_sizing_sizes_a_priced_signal_by_its_edge_and_refuses_an_unpriced_one() {
    let cfg = BacktestConfig {
        sizing: qt_backtest::Sizing::Kelly {
            fraction: dec!(0.02),
            max_notional: dec!(50000),
            leverage: 10,
        },
        ..BacktestConfig::default()
    };
    let data = || {
        vec![series(
            "AAAUSDT",
            &[(dec!(100), dec!(100.5), dec!(99.8), dec!(100.3), BIG)],
        )]
    };
    let signal_at = T0 + (WARM as i64 - 1) * IV;
    let bt = Backtest::new(cfg.clone()).unwrap_or_else(|e| panic!("config: {e}"));
    let o = bt
        .run(
            data(),
            &mut |_| {
                // Priced: P(gain) 0.5, expected net return +0.5%.
                let priced = Signal::priced(SignalAction::Buy, 0.5, 0.005);
                Ok(Box::new(Once(signal_at, priced)) as Box<dyn Model>)
            },
            &mut |_, _| {},
        )
        .unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(o.trades.len(), 1);
    // Stop 2% below 100: f* = 1/6 of the 10,000 equity at risk, 2% of it = 33.33 lost at the
    // stop, so 33.33 / 2 = 16.67 units (floored to the step).
    let q = o.trades[0].qty;
    assert!(q > dec!(16.5) && q <= dec!(16.67), "{q}");
    // The same entry unpriced (momentum-like): Kelly has no edge to size it by.
    let o = run(cfg, data());
    assert!(o.trades.is_empty());
    assert_eq!(o.rejections.get("SIZING"), Some(&1), "{:?}", o.rejections);
}

#[test]
fn a_partly_filled_entry_sizes_the_trade_to_what_filled() {
    // volume 100 and a 10% volume cap: only 10 of 25 fill
    let o = run(
        BacktestConfig::default(),
        vec![series(
            "AAAUSDT",
            &[(dec!(100), dec!(100.5), dec!(99.8), dec!(100.3), dec!(100))],
        )],
    );
    assert_eq!(o.trades.len(), 1);
    assert_eq!(o.trades[0].qty, dec!(10));
    assert_eq!(o.trades[0].exit_reason, ExitReason::EndOfData);
}

#[test]
fn the_risk_guard_runs_in_the_loop_and_caps_one_side() {
    // ten symbols buy at once; longs may hold 60% of 20,000 = 12,000: four entries of 2,500
    let quiet = [(dec!(100), dec!(100.2), dec!(99.9), dec!(100.1), BIG)];
    let data: Vec<SymbolSeries> = (0..10)
        .map(|i| series(&format!("S{i}USDT"), &quiet))
        .collect();
    let o = run(BacktestConfig::default(), data);
    assert_eq!(o.trades.len(), 4);
    assert!(o.trades.iter().all(|t| t.side == PositionSide::Long));
    assert_eq!(o.rejections.get("SIDE_IMBALANCE"), Some(&6));
}

#[test]
fn symbols_are_merged_by_open_time() {
    let mut late = series("BBBUSDT", &[]);
    late.candles.drain(..10);
    let o = run(
        BacktestConfig::default(),
        vec![series("AAAUSDT", &[]), late],
    );
    assert_eq!(o.candles, (2 * WARM - 10) as u64);
    assert_eq!(o.equity.len(), WARM); // one point per distinct candle time
    assert!(o.equity.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
}

fn repo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m")
}

#[test]
fn a_momentum_run_on_real_candles_balances_to_the_cent_and_writes_its_report() {
    let data = load_data(&[repo_data()], "5m", &["BTCUSDT".into(), "SOLUSDT".into()])
        .unwrap_or_else(|e| panic!("data: {e:#}"));
    assert_eq!(data.len(), 2);
    let bt = Backtest::new(BacktestConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let o = bt
        .run(
            data,
            &mut |_| {
                MomentumModel::new(MomentumConfig::default(), "t")
                    .map(|m| Box::new(m) as Box<dyn Model>)
                    .map_err(|e| BacktestError::Model(e.to_string()))
            },
            &mut |_, _| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!o.trades.is_empty());
    let m = compute_metrics(&o);
    let sum: Decimal = o.trades.iter().map(|t| t.net_pnl).sum();
    assert_eq!(m.net_pnl, sum, "equity and the trade list must agree");
    assert_eq!(
        m.total_fees,
        o.trades.iter().map(|t| t.fees).sum::<Decimal>()
    );
    assert!(
        o.trades
            .iter()
            .all(|t| t.exit_time >= t.entry_time && t.fees > Decimal::ZERO)
    );
    // never more than one position per symbol at a time
    for sym in ["BTCUSDT", "SOLUSDT"] {
        let mut ts: Vec<_> = o.trades.iter().filter(|t| t.symbol == sym).collect();
        ts.sort_by_key(|t| t.entry_time);
        assert!(ts.windows(2).all(|w| w[1].entry_time > w[0].exit_time));
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = write_report(dir.path(), &o, &m, "momentum").unwrap_or_else(|e| panic!("{e}"));
    let csv = std::fs::read_to_string(files.trades_csv).unwrap_or_default();
    assert_eq!(csv.lines().count(), o.trades.len() + 1);
    let svg = std::fs::read_to_string(files.equity_svg).unwrap_or_default();
    assert!(svg.starts_with("<svg"));
    let json = std::fs::read_to_string(files.metrics_json).unwrap_or_default();
    assert!(json.contains("\"sharpe\""));
}

#[test]
fn a_position_open_at_a_funding_time_pays_its_notional_times_the_rate_and_the_other_side_earns_it()
{
    // T0 is 00:00 UTC; the entry fills at the open of candle WARM (01:00 the next day), and the
    // next funding time is 08:00, 84 candles later. 100 quiet candles at 100: held across it.
    let quiet = [(dec!(100), dec!(100.05), dec!(99.95), dec!(100), BIG); 100];
    let funding_at = T0 + 32 * 3_600_000;
    let mut cfg = BacktestConfig::default();
    cfg.exits.time_stop_minutes = None;
    cfg.funding.default_rate = Decimal::ZERO;
    cfg.funding
        .history
        .insert("AAAUSDT".into(), vec![(funding_at, dec!(0.001))]);
    let signal_at = T0 + (WARM as i64 - 1) * IV;
    for (action, paid) in [
        (SignalAction::Buy, dec!(2.5)),
        (SignalAction::Sell, dec!(-2.5)),
    ] {
        let bt = Backtest::new(cfg.clone()).unwrap_or_else(|e| panic!("config: {e}"));
        let o = bt
            .run(
                vec![series("AAAUSDT", &quiet)],
                &mut |_| Ok(Box::new(Once(signal_at, Signal::new(action, 1.0))) as Box<dyn Model>),
                &mut |_, _| {},
            )
            .unwrap_or_else(|e| panic!("run: {e}"));
        assert_eq!(o.trades.len(), 1, "{action:?}");
        let t = &o.trades[0];
        // 25 × 100 (the funding candle's open) × 0.001 = 2.5, paid by the long
        assert_eq!(t.funding, paid, "{action:?}");
        assert_eq!(t.net_pnl, t.gross_pnl - t.fees - t.funding);
        let m = compute_metrics(&o);
        assert_eq!(m.total_funding, paid);
        assert_eq!(m.net_pnl, t.net_pnl, "equity carries the funding");
    }
    // Without history, the default rate falls every 8 h from 00:00 UTC: 08:00 only here.
    let mut cfg = BacktestConfig::default();
    cfg.exits.time_stop_minutes = None;
    let bt = Backtest::new(cfg).unwrap_or_else(|e| panic!("config: {e}"));
    let o = bt
        .run(
            vec![series("AAAUSDT", &quiet)],
            &mut |_| Ok(Box::new(Once(signal_at, buy())) as Box<dyn Model>),
            &mut |_, _| {},
        )
        .unwrap_or_else(|e| panic!("run: {e}"));
    assert_eq!(o.trades[0].funding, dec!(0.25)); // 2,500 × 0.0001
}

/// Follows BTC: buys after BTC rose over its last 12 candles, sells after it fell — a model that
/// reads the market factor, so both feature paths must give it the same values.
#[derive(Debug)]
struct FollowBtc;

impl Model for FollowBtc {
    fn name(&self) -> &str {
        "follow-btc"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn predict(&mut self, f: &FeatureVector, _c: &Candle) -> Signal {
        let btc = f.get("btc_ret_12").unwrap_or(0.0);
        if f.get("market_known").unwrap_or(0.0) == 0.0 {
            Signal::hold(1.0)
        } else if btc > 0.004 {
            Signal::new(SignalAction::Buy, 0.9)
        } else if btc < -0.004 {
            Signal::new(SignalAction::Sell, 0.9)
        } else {
            Signal::hold(1.0)
        }
    }
}

#[test]
fn a_run_on_prepared_features_equals_a_run_that_computes_them_as_it_goes() {
    let series = load_data(&[repo_data()], "5m", &["BTCUSDT".into(), "SOLUSDT".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    let cfg = BacktestConfig {
        start_ms: Some(series[0].candles[2_000].open_time),
        end_ms: Some(series[0].candles[9_000].open_time),
        ..BacktestConfig::default()
    };
    let bt = Backtest::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let mut momentum = |_: &str| {
        MomentumModel::new(MomentumConfig::default(), "m")
            .map(|m| Box::new(m) as Box<dyn Model>)
            .map_err(|e| BacktestError::Model(e.to_string()))
    };
    let live = bt
        .run(series.clone(), &mut momentum, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    let prepared = qt_backtest::PreparedSeries::prepare_all(&series, IV);
    let shared = bt
        .run_prepared(&prepared, &mut momentum, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(live.trades.len() > 5, "{} trades", live.trades.len());
    assert_eq!(live, shared);
    // A model reading the market factor (BTC's candles, for both symbols).
    let mut follow = |_: &str| Ok(Box::new(FollowBtc) as Box<dyn Model>);
    let live = bt
        .run(series, &mut follow, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    let shared = bt
        .run_prepared(&prepared, &mut follow, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        live.trades.iter().any(|t| t.symbol == "SOLUSDT"),
        "SOL traded on BTC's moves"
    );
    assert_eq!(live, shared);
}
