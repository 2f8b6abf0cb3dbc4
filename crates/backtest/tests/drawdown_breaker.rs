//! The drawdown breaker in the backtest loop: a strategy that keeps buying a falling market stops
//! opening positions once its equity has fallen `max_drawdown_pct` from the peak (nobody resumes
//! in a backtest), the positions it holds still exit, and it loses far less than the same
//! strategy with the breaker as loose as it goes.

use qt_backtest::report::{compute_metrics, summary};
use qt_backtest::{Backtest, BacktestConfig, BacktestOutcome, SymbolSeries};
use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::FeatureVector;
use qt_models::{Model, Signal};
use qt_risk::RiskLimits;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_700_006_400_000;
const IV: i64 = 300_000;
const WARM: usize = 300;

/// Says BUY with full confidence on every candle: it enters whenever it is flat and allowed.
#[derive(Debug)]
struct AlwaysBuy;

impl Model for AlwaysBuy {
    fn name(&self) -> &str {
        "always-buy"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn predict(&mut self, _f: &FeatureVector, _c: &Candle) -> Signal {
        Signal::new(SignalAction::Buy, 1.0)
    }
}

/// `WARM` quiet candles at `start`, then `falling` candles each closing 0.3% below its open:
/// every long entry ends at its stop.
fn falling(symbol: &str, start: Decimal, falling: usize) -> SymbolSeries {
    let mut candles = Vec::with_capacity(WARM + falling);
    let mut p = start;
    for i in 0..WARM + falling {
        let (o, c) = if i < WARM {
            (p, p)
        } else {
            (p, (p * dec!(0.997)).round_dp(4))
        };
        let (h, l) = (
            (o * dec!(1.0005)).round_dp(4),
            (c * dec!(0.9995)).round_dp(4),
        );
        candles.push(Candle::new(T0 + i as i64 * IV, o, h, l, c, dec!(1000000)));
        p = c;
    }
    SymbolSeries {
        symbol: symbol.into(),
        candles,
    }
}

fn run(max_drawdown_pct: Decimal) -> BacktestOutcome {
    let cfg = BacktestConfig {
        limits: RiskLimits {
            max_drawdown_pct,
            // The daily-loss rules would stop this strategy too: only the breaker is tested.
            max_daily_loss: Decimal::from(1_000_000),
            ..RiskLimits::default()
        },
        ..BacktestConfig::default()
    };
    let data = vec![
        falling("AAAUSDT", dec!(100), 700),
        falling("BBBUSDT", dec!(40), 700),
    ];
    Backtest::new(cfg)
        .unwrap_or_else(|e| panic!("config: {e}"))
        .run(
            data,
            &mut |_| Ok(Box::new(AlwaysBuy) as Box<dyn Model>),
            &mut |_, _| {},
        )
        .unwrap_or_else(|e| panic!("run: {e}"))
}

#[test]
fn a_strategy_that_bleeds_stops_opening_positions_at_the_drawdown_limit() {
    let o = run(dec!(0.10));
    let tripped = o.breaker_tripped_at.expect("the breaker tripped");

    // It tripped on the first point of the equity curve 10% below the peak so far.
    let mut peak = o.initial_equity;
    let first_at_limit = o
        .equity
        .iter()
        .find(|p| {
            peak = peak.max(p.equity);
            peak - p.equity >= dec!(0.10) * peak
        })
        .expect("the equity fell 10% from its peak");
    assert_eq!(first_at_limit.time_ms, tripped);

    // No position opened after it (an entry admitted on the trip's candle fills at the next
    // open, one ms later); every later signal was refused for it.
    assert!(
        o.trades.len() > 5,
        "it traded before the trip: {}",
        o.trades.len()
    );
    for t in &o.trades {
        assert!(
            t.entry_time <= tripped + 1,
            "entry at {} after the trip {tripped}",
            t.entry_time
        );
    }
    let refused = o.rejections.get("DRAWDOWN_BREAKER").copied().unwrap_or(0);
    assert!(refused > 100, "refusals: {:?}", o.rejections);
    // Exits were never refused: every trade ended at its stop, none was left to the end of the
    // data (the positions held at the trip included).
    assert!(
        o.trades
            .iter()
            .all(|t| t.exit_reason == qt_backtest::ExitReason::Stop),
        "{:?}",
        o.trades.iter().map(|t| t.exit_reason).collect::<Vec<_>>()
    );

    // The report says so.
    let m = compute_metrics(&o);
    assert_eq!(m.breaker_tripped_at, Some(tripped));
    assert!(
        summary(&m).contains("drawdown breaker tripped"),
        "{}",
        summary(&m)
    );

    // It stopped bleeding: the loss is the limit plus what the positions held at the trip lost
    // on their way to their stops, far less than without a (tight) breaker.
    let loss = o.initial_equity - m.final_equity;
    assert!(loss < dec!(1200), "lost {loss}");
    let loose = run(dec!(1));
    assert_eq!(loose.breaker_tripped_at, None);
    let loose_loss = loose.initial_equity - compute_metrics(&loose).final_equity;
    assert!(
        loose_loss > loss * dec!(2),
        "with the breaker {loss}, without it {loose_loss}"
    );
    assert!(!loose.rejections.contains_key("DRAWDOWN_BREAKER"));
}

#[test]
fn a_drawdown_limit_outside_zero_to_one_is_a_configuration_error() {
    for bad in [dec!(0), dec!(1.5)] {
        let cfg = BacktestConfig {
            limits: RiskLimits {
                max_drawdown_pct: bad,
                ..RiskLimits::default()
            },
            ..BacktestConfig::default()
        };
        let e = Backtest::new(cfg).expect_err("refused");
        assert!(e.to_string().contains("max_drawdown_pct"), "{e}");
    }
}
