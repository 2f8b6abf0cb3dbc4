//! The goal check: is a profit target within reach, given what a backtest showed, and what would
//! it take?

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Serialize;

use crate::report::Metrics;

/// The answer to "can this strategy make `target` in `hours`?".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalAssessment {
    pub target: Decimal,
    pub hours: f64,
    /// Mean net PnL per trade: `win_rate × avg_win − (1 − win_rate) × avg_loss`.
    pub expectancy: Decimal,
    /// Trades expected in the window at the backtest's rate.
    pub expected_trades: f64,
    /// `expectancy × expected_trades`.
    pub expected_pnl: Decimal,
    pub realistic: bool,
    /// Trades per day it would take at the same size (when the expectancy is positive).
    pub needed_trades_per_day: Option<f64>,
    /// Leverage it would take at the same trade rate (PnL scales with size).
    pub needed_leverage: Option<f64>,
    /// Hours it would take at the same rate and size.
    pub needed_hours: Option<f64>,
    /// Plain-language verdict and caveats.
    pub notes: Vec<String>,
}

/// Assesses a target from a backtest's metrics. `max_leverage` is the configured cap.
pub fn assess(m: &Metrics, target: Decimal, hours: f64, max_leverage: u32) -> GoalAssessment {
    let wr = Decimal::from_f64(m.win_rate)
        .unwrap_or_default()
        .round_dp(6);
    let expectancy = (wr * m.avg_win - (Decimal::ONE - wr) * m.avg_loss).round_dp(8);
    let expected_trades = m.trades_per_day * hours / 24.0;
    let expected_pnl =
        (expectancy * Decimal::from_f64(expected_trades).unwrap_or_default()).round_dp(8);
    let mut notes = Vec::new();
    let mut a = GoalAssessment {
        target,
        hours,
        expectancy,
        expected_trades,
        expected_pnl,
        realistic: expectancy > Decimal::ZERO && expected_pnl >= target,
        needed_trades_per_day: None,
        needed_leverage: None,
        needed_hours: None,
        notes: Vec::new(),
    };
    if m.trades == 0 {
        notes.push("the backtest made no trade: nothing to extrapolate from".to_owned());
    } else if expectancy <= Decimal::ZERO {
        notes.push(format!(
            "the strategy loses {} per trade on average: more trades, size or time only lose more",
            (-expectancy).round_dp(2)
        ));
    } else if expected_pnl > Decimal::ZERO {
        let factor = (target / expected_pnl).to_f64().unwrap_or(f64::INFINITY);
        a.needed_trades_per_day = Some(m.trades_per_day * factor);
        a.needed_leverage = Some(f64::from(m.leverage) * factor);
        a.needed_hours = Some(hours * factor);
        if a.realistic {
            notes.push(format!(
                "realistic: about {:.1} trades in {hours} h at {} each make {}",
                expected_trades,
                expectancy.round_dp(2),
                expected_pnl.round_dp(2)
            ));
        } else {
            notes.push(format!(
                "not realistic as is: {:.1} trades in {hours} h at {} each make {}, {:.1}× short of {}",
                expected_trades,
                expectancy.round_dp(2),
                expected_pnl.round_dp(2),
                factor,
                target
            ));
            notes.push(format!(
                "it would take {:.1} trades/day (now {:.2}), or {:.1}× leverage (now {}×, cap {max_leverage}×), or {:.0} hours",
                m.trades_per_day * factor,
                m.trades_per_day,
                f64::from(m.leverage) * factor,
                m.leverage,
                hours * factor
            ));
            if f64::from(m.leverage) * factor > f64::from(max_leverage) {
                notes.push(format!(
                    "more size alone cannot do it within the {max_leverage}× leverage cap"
                ));
            }
        }
    } else {
        notes.push("the backtest's trade rate gives no trade in this window".to_owned());
    }
    if m.trades < 30 {
        notes.push(format!(
            "caution: only {} trades in the backtest, a small sample",
            m.trades
        ));
    }
    if m.max_drawdown > Decimal::ZERO {
        notes.push(format!(
            "the backtest's max drawdown was {}",
            m.max_drawdown.round_dp(2)
        ));
    }
    a.notes = notes;
    a
}

/// The assessment for people.
pub fn render(a: &GoalAssessment) -> String {
    let mut s = format!(
        "goal: {} in {} h\nexpectancy per trade {}, expected trades {:.1}, expected PnL {}\nverdict: {}\n",
        a.target,
        a.hours,
        a.expectancy.round_dp(2),
        a.expected_trades,
        a.expected_pnl.round_dp(2),
        if a.realistic {
            "REALISTIC"
        } else {
            "NOT REALISTIC"
        }
    );
    for n in &a.notes {
        s.push_str("- ");
        s.push_str(n);
        s.push('\n');
    }
    s
}
