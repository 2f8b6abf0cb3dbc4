//! Property: on random price paths with a model that trades at random, the books balance and
//! the risk limits hold in the backtest exactly as in the guard's own tests.

use proptest::prelude::*;
use qt_backtest::report::compute_metrics;
use qt_backtest::{Backtest, BacktestConfig, SymbolSeries};
use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::FeatureVector;
use qt_models::{Model, Signal};
use qt_risk::RiskLimits;
use rust_decimal::Decimal;

const T0: i64 = 1_700_006_400_000;
const IV: i64 = 300_000;

/// Buys, sells or holds by a hash of the candle time and a seed.
#[derive(Debug)]
struct Dice(u64);

impl Model for Dice {
    fn name(&self) -> &str {
        "dice"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn predict(&mut self, _f: &FeatureVector, c: &Candle) -> Signal {
        let h = (c.open_time as u64 ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
        match h {
            0..=2 => Signal::new(SignalAction::Buy, 0.9),
            3..=5 => Signal::new(SignalAction::Sell, 0.9),
            _ => Signal::hold(0.0),
        }
    }
}

fn walk(symbol: &str, start: i64, moves: &[i64]) -> SymbolSeries {
    let mut price = Decimal::new(start, 0);
    let candles = moves
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let open = price;
            let close = (open * (Decimal::ONE + Decimal::new(*m, 4)))
                .max(Decimal::new(1, 2))
                .round_dp(4);
            let wick = (open.max(close) * Decimal::new(3, 3)).round_dp(4);
            price = close;
            Candle::new(
                T0 + i as i64 * IV,
                open,
                open.max(close) + wick,
                open.min(close) - wick / Decimal::TWO,
                close,
                Decimal::from(50_000),
            )
        })
        .collect();
    SymbolSeries {
        symbol: symbol.into(),
        candles,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn books_balance_and_concurrent_positions_stay_within_the_limit(
        paths in prop::collection::vec(prop::collection::vec(-120i64..120, 700), 4),
        seed in any::<u64>(),
    ) {
        let cfg = BacktestConfig {
            limits: RiskLimits { max_concurrent_positions: 2, cooldown_minutes: 0, ..RiskLimits::default() },
            ..BacktestConfig::default()
        };
        let data: Vec<SymbolSeries> = paths.iter().enumerate().map(|(i, p)| walk(&format!("R{i}USDT"), 50 + 40 * i as i64, p)).collect();
        let bt = Backtest::new(cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let o = bt
            .run(data, &mut |s| Ok(Box::new(Dice(seed ^ s.len() as u64 ^ u64::from(s.as_bytes()[1]))) as Box<dyn Model>), &mut |_, _| {})
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(o.trades.len() > 4, "the dice must trade: {} trades", o.trades.len());
        let m = compute_metrics(&o);
        prop_assert_eq!(m.net_pnl, o.trades.iter().map(|t| t.net_pnl).sum::<Decimal>());
        for t in &o.trades {
            prop_assert!(t.entry_price * t.qty <= Decimal::from(2_500) * Decimal::new(1001, 3), "notional {}", t.entry_price * t.qty);
            let open_at_entry = o.trades.iter().filter(|u| u.entry_time <= t.entry_time && u.exit_time >= t.entry_time).count();
            prop_assert!(open_at_entry <= 2, "{open_at_entry} positions open at {}", t.entry_time);
        }
    }
}
