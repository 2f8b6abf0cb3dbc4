//! One trade run through its exit plan over the candles after its entry, as the backtester runs
//! it: each candle is checked against the stop and the next take-profit (the stop first when
//! both are inside it, [`qt_matching::first_exit`]), then the plan sees the candle's range
//! (trailing, break-even, time stop at the close). Fills are whole and at the level: costs and
//! slippage are the caller's to add. Training labels use this, so a model learns the outcomes
//! of the trades the live exits will make.

use qt_events::PositionSide;
use qt_matching::{Bar, ExitHit, first_exit};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::{ExitAction, ExitPlan};

/// How a simulated trade ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatedTrade {
    /// Gross return on the entry notional, in the side's favour (0.01 = +1%).
    pub gross_return: f64,
    /// Candles the position was open, the entry candle included.
    pub held: usize,
}

/// Runs `plan` (built at the open of `bars[0]`, which is also the first candle checked) until
/// it is closed; `None` when the candles end first. `interval_ms` is the candle length (a
/// candle is seen at its close, `open_time + interval_ms − 1`, as in the backtester).
pub fn simulate(mut plan: ExitPlan, bars: &[Bar], interval_ms: i64) -> Option<SimulatedTrade> {
    let entry_value = plan.entry_price * plan.qty;
    if entry_value <= Decimal::ZERO {
        return None;
    }
    let mut exit_value = Decimal::ZERO;
    let result = |exit_value: Decimal, held: usize, plan: &ExitPlan| {
        let pnl = match plan.side {
            PositionSide::Long => exit_value - entry_value,
            PositionSide::Short => entry_value - exit_value,
        };
        Some(SimulatedTrade {
            gross_return: (pnl / entry_value).to_f64().unwrap_or(0.0),
            held,
        })
    };
    for (k, bar) in bars.iter().enumerate() {
        loop {
            let next = plan.legs.iter().position(|l| !l.is_done());
            let target = next.map(|i| plan.legs[i].price);
            match (
                first_exit(plan.side, Some(plan.stop_price), target, bar),
                next,
            ) {
                (ExitHit::Stop(p), _) => {
                    exit_value += plan.open_qty * p;
                    return result(exit_value, k + 1, &plan);
                }
                (ExitHit::Target(p), Some(i)) => {
                    let qty = plan.legs[i].open_qty().min(plan.open_qty);
                    exit_value += qty * p;
                    let name = plan.legs[i].name.clone();
                    // The leg exists: it was found above.
                    let _ = plan.on_leg_hit(&name, qty);
                    if plan.is_closed() {
                        return result(exit_value, k + 1, &plan);
                    }
                }
                _ => break,
            }
        }
        let now = bar.open_time + interval_ms - 1;
        for a in plan.on_range(bar.high, bar.low, now) {
            if let ExitAction::TimeStop { qty } = a {
                exit_value += qty * bar.close;
                return result(exit_value, k + 1, &plan);
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{EntrySpec, ExitConfig, SymbolProfile};
    use qt_risk::SymbolFilters;
    use rust_decimal_macros::dec;

    const MIN: i64 = 60_000;

    fn plan(side: PositionSide, cfg: &ExitConfig) -> ExitPlan {
        let filters = SymbolFilters {
            tick_size: dec!(0.01),
            step_size: dec!(0.001),
            min_qty: dec!(0.001),
            max_qty: Decimal::ZERO,
            min_notional: Decimal::ZERO,
            ..SymbolFilters::NONE
        };
        let spec = EntrySpec {
            side,
            price: dec!(100),
            qty: dec!(1),
            opened_ms: 0,
            filters,
        };
        ExitPlan::new(spec, 0.0, &SymbolProfile::default(), cfg).unwrap()
    }

    fn bar(k: i64, open: Decimal, high: Decimal, low: Decimal, close: Decimal) -> Bar {
        Bar {
            open_time: k * 5 * MIN,
            open,
            high,
            low,
            close,
            volume: dec!(1),
        }
    }

    fn flat(k: i64) -> Bar {
        bar(k, dec!(100), dec!(100.5), dec!(99.5), dec!(100))
    }

    #[test]
    fn a_ladder_then_break_even_books_each_leg_at_its_level() {
        // Calm ladder +1.95 / +3.25 / +5.2%, 30/30/40%, stop −2%, break-even after tp1.
        let cfg = ExitConfig::default();
        let bars = [
            flat(0),
            bar(1, dec!(100.2), dec!(102), dec!(100.2), dec!(101.5)), // tp1 at 101.95
            bar(2, dec!(101.5), dec!(101.5), dec!(99.9), dec!(100)),  // back to break-even
        ];
        let t = simulate(plan(PositionSide::Long, &cfg), &bars, 5 * MIN).unwrap();
        // 0.3 × 1.95% + 0.7 × 0 = 0.585%.
        assert!((t.gross_return - 0.00585).abs() < 1e-9, "{t:?}");
        assert_eq!(t.held, 3);
    }

    #[test]
    fn a_stop_inside_the_same_candle_as_a_target_counts_first_for_a_short() {
        let cfg = ExitConfig::default();
        let bars = [bar(0, dec!(100), dec!(102.5), dec!(97), dec!(100))];
        let t = simulate(plan(PositionSide::Short, &cfg), &bars, 5 * MIN).unwrap();
        assert!((t.gross_return + 0.02).abs() < 1e-9, "{t:?}");
        assert_eq!(t.held, 1);
    }

    #[test]
    fn the_time_stop_closes_the_rest_at_the_candle_close_and_unfinished_trades_are_none() {
        let cfg = ExitConfig {
            time_stop_minutes: Some(10),
            ..ExitConfig::default()
        };
        let mut bars = vec![flat(0), flat(1)];
        assert_eq!(
            simulate(plan(PositionSide::Long, &cfg), &bars, 5 * MIN),
            None
        );
        bars.push(bar(2, dec!(100), dec!(101), dec!(99.5), dec!(100.8)));
        let t = simulate(plan(PositionSide::Long, &cfg), &bars, 5 * MIN).unwrap();
        assert!((t.gross_return - 0.008).abs() < 1e-9, "{t:?}");
        assert_eq!(t.held, 3);
    }
}
