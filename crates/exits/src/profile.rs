//! [`SymbolProfile`]: per-symbol multipliers of the take-profit and stop distances that learn
//! from closed trades, always within the configured bounds.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::ExitConfig;

/// What a closed trade teaches: its excursions and how many legs it hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradeOutcome {
    /// Maximum favorable excursion, percent of the entry price (≥ 0).
    pub mfe_pct: Decimal,
    /// Maximum adverse excursion, percent of the entry price (≥ 0).
    pub mae_pct: Decimal,
    /// How many take-profit legs filled.
    pub legs_hit: usize,
    /// How many legs the plan had.
    pub legs: usize,
    /// The plan's furthest target distance, percent.
    pub last_target_pct: Decimal,
    /// The plan's stop distance, percent.
    pub stop_pct: Decimal,
}

/// Learned multipliers for one symbol. Serializable: exit-brain persists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolProfile {
    /// Scales every take-profit distance (and the trailing activation).
    pub tp_mult: Decimal,
    /// Scales the stop distance.
    pub stop_mult: Decimal,
    /// Closed trades learned from.
    pub trades: u64,
}

impl Default for SymbolProfile {
    fn default() -> Self {
        Self {
            tp_mult: Decimal::ONE,
            stop_mult: Decimal::ONE,
            trades: 0,
        }
    }
}

fn clamp(v: Decimal, lo: Decimal, hi: Decimal) -> Decimal {
    v.max(lo).min(hi)
}

impl SymbolProfile {
    /// Learns from one closed trade.
    ///
    /// Targets: `ratio = MFE / furthest target` (clamped to 0..2); `tp_mult ×= 1 + rate ×
    /// (ratio − 1)`, so trades that ran past the last leg widen the ladder and trades that never
    /// came near it tighten it. Stop: only trades that hit at least one leg (winners) teach it;
    /// `s = MAE / stop` (clamped to 0..2); `stop_mult ×= 1 + rate × (s − 0.5)`, so winners that
    /// came close to their stop widen it and winners that never looked back tighten it. Both
    /// stay within `[min_multiplier, max_multiplier]`.
    pub fn learn(&mut self, t: &TradeOutcome, cfg: &ExitConfig) {
        let two = Decimal::TWO;
        let rate = cfg.learning_rate;
        if t.last_target_pct > Decimal::ZERO {
            let ratio = clamp(t.mfe_pct / t.last_target_pct, Decimal::ZERO, two);
            self.tp_mult *= Decimal::ONE + rate * (ratio - Decimal::ONE);
        }
        if t.legs_hit > 0 && t.stop_pct > Decimal::ZERO {
            let s = clamp(t.mae_pct / t.stop_pct, Decimal::ZERO, two);
            self.stop_mult *= Decimal::ONE + rate * (s - Decimal::new(5, 1));
        }
        self.tp_mult = clamp(self.tp_mult, cfg.min_multiplier, cfg.max_multiplier).round_dp(8);
        self.stop_mult = clamp(self.stop_mult, cfg.min_multiplier, cfg.max_multiplier).round_dp(8);
        self.trades += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn outcome(mfe: Decimal, mae: Decimal, legs_hit: usize) -> TradeOutcome {
        TradeOutcome {
            mfe_pct: mfe,
            mae_pct: mae,
            legs_hit,
            legs: 3,
            last_target_pct: dec!(5.2),
            stop_pct: dec!(2),
        }
    }

    #[test]
    fn a_trade_that_ran_past_the_last_leg_widens_the_targets() {
        let mut p = SymbolProfile::default();
        // ratio 7.8 / 5.2 = 1.5 → ×1.05 ; s = 1.8 / 2 = 0.9 → ×1.04
        p.learn(&outcome(dec!(7.8), dec!(1.8), 3), &ExitConfig::default());
        assert_eq!(
            (p.tp_mult, p.stop_mult, p.trades),
            (dec!(1.05), dec!(1.04), 1)
        );
    }

    #[test]
    fn a_loser_that_never_came_near_the_targets_tightens_them_and_leaves_the_stop() {
        let mut p = SymbolProfile::default();
        // ratio 2.6 / 5.2 = 0.5 → ×0.95
        p.learn(&outcome(dec!(2.6), dec!(2), 0), &ExitConfig::default());
        assert_eq!((p.tp_mult, p.stop_mult), (dec!(0.95), dec!(1)));
    }

    #[test]
    fn multipliers_stay_within_bounds_however_many_trades() {
        let cfg = ExitConfig::default();
        let mut up = SymbolProfile::default();
        let mut down = SymbolProfile::default();
        for _ in 0..500 {
            up.learn(&outcome(dec!(50), dec!(10), 3), &cfg);
            down.learn(&outcome(dec!(0), dec!(0), 1), &cfg);
        }
        assert_eq!((up.tp_mult, up.stop_mult), (dec!(2), dec!(2)));
        assert_eq!((down.tp_mult, down.stop_mult), (dec!(0.5), dec!(0.5)));
    }

    #[test]
    fn profile_round_trips_through_json() {
        let p = SymbolProfile {
            tp_mult: dec!(1.25),
            stop_mult: dec!(0.8),
            trades: 7,
        };
        let s = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(serde_json::from_str::<SymbolProfile>(&s).ok(), Some(p));
    }
}
