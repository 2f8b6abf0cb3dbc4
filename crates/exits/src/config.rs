//! [`ExitConfig`]: how exit plans are shaped, and how profiles learn.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ExitError;

fn d(v: i64, scale: u32) -> Decimal {
    Decimal::new(v, scale)
}

/// The shape of every exit plan. Percentages are of the entry price (2 means 2%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitConfig {
    /// Realized volatility (a fraction: 0.02 = 2%) at or under which `low_vol_targets_pct` apply.
    pub low_vol: f64,
    /// Realized volatility at or over which `high_vol_targets_pct` apply; in between, targets are
    /// interpolated linearly.
    pub high_vol: f64,
    /// Take-profit distances in calm markets. Default +1.95 / +3.25 / +5.20%.
    pub low_vol_targets_pct: Vec<Decimal>,
    /// Take-profit distances in volatile markets. Default +3 / +5 / +8%.
    pub high_vol_targets_pct: Vec<Decimal>,
    /// Share of the position closed by each leg; sums to 1. Default 30 / 30 / 40%.
    pub leg_fractions: Vec<Decimal>,
    /// Stop distance for whatever is still held. Default 2%.
    pub stop_pct: Decimal,
    /// Move the stop to the entry price once the first leg has filled. Default true.
    pub break_even_after_first_leg: bool,
    /// Distance beyond the entry the break-even stop is placed at, to cover fees. Default 0.
    pub break_even_offset_pct: Decimal,
    /// Profit at which the trailing stop activates; `None` disables trailing. Default 3%.
    pub trailing_activation_pct: Option<Decimal>,
    /// Trailing callback: the stop follows the best price at this distance. Default 1%.
    pub trailing_callback_pct: Decimal,
    /// Smallest move of a trailing stop, as a share of the callback distance (0.25: a 1%
    /// callback moves the stop in steps of at least 0.25% of the price), so a trend does not
    /// spend the order-rate budget on one re-placed stop per tick. Default 0.25; 0 follows
    /// every new best price.
    pub trailing_min_step: Decimal,
    /// Close whatever is left after this many minutes; `None` disables. Default 720 (12 h).
    pub time_stop_minutes: Option<u32>,
    /// How far one closed trade moves a profile's multipliers (0..1). Default 0.1.
    pub learning_rate: Decimal,
    /// Lowest value a profile multiplier may take. Default 0.5.
    pub min_multiplier: Decimal,
    /// Highest value a profile multiplier may take. Default 2.
    pub max_multiplier: Decimal,
}

impl Default for ExitConfig {
    fn default() -> Self {
        Self {
            low_vol: 0.02,
            high_vol: 0.05,
            low_vol_targets_pct: vec![d(195, 2), d(325, 2), d(520, 2)],
            high_vol_targets_pct: vec![d(3, 0), d(5, 0), d(8, 0)],
            leg_fractions: vec![d(3, 1), d(3, 1), d(4, 1)],
            stop_pct: d(2, 0),
            break_even_after_first_leg: true,
            break_even_offset_pct: Decimal::ZERO,
            trailing_activation_pct: Some(d(3, 0)),
            trailing_callback_pct: d(1, 0),
            trailing_min_step: d(25, 2),
            time_stop_minutes: Some(720),
            learning_rate: d(1, 1),
            min_multiplier: d(5, 1),
            max_multiplier: d(2, 0),
        }
    }
}

impl ExitConfig {
    /// Checks that the ladders line up, fractions sum to one and distances are positive.
    pub fn validate(&self) -> Result<(), ExitError> {
        let n = self.leg_fractions.len();
        let bad = |m: &str| Err(ExitError::InvalidConfig(m.to_owned()));
        if n == 0 || self.low_vol_targets_pct.len() != n || self.high_vol_targets_pct.len() != n {
            return bad("targets and leg fractions must have the same, non-zero length");
        }
        if self.leg_fractions.iter().copied().sum::<Decimal>() != Decimal::ONE
            || self.leg_fractions.iter().any(|f| *f <= Decimal::ZERO)
        {
            return bad("leg fractions must be positive and sum to 1");
        }
        let all_targets = self
            .low_vol_targets_pct
            .iter()
            .chain(&self.high_vol_targets_pct);
        if self.stop_pct <= Decimal::ZERO || all_targets.clone().any(|t| *t <= Decimal::ZERO) {
            return bad("stop and target distances must be positive");
        }
        if self.stop_pct >= Decimal::ONE_HUNDRED {
            return bad("stop distance must be under 100%");
        }
        if !(self.low_vol.is_finite() && self.high_vol.is_finite() && self.low_vol < self.high_vol)
        {
            return bad("low_vol must be below high_vol");
        }
        if self.min_multiplier <= Decimal::ZERO || self.min_multiplier > self.max_multiplier {
            return bad("multiplier bounds must satisfy 0 < min <= max");
        }
        if self.trailing_callback_pct <= Decimal::ZERO {
            return bad("trailing callback must be positive");
        }
        if self.trailing_min_step < Decimal::ZERO || self.trailing_min_step > Decimal::ONE {
            return bad("trailing_min_step must be a share of the callback in 0..=1");
        }
        Ok(())
    }

    /// Take-profit distances (percent) for a realized volatility, before the profile multiplier.
    pub fn targets_pct(&self, volatility: f64) -> Vec<Decimal> {
        let w = if volatility.is_nan() || volatility <= self.low_vol {
            0.0
        } else if volatility >= self.high_vol {
            1.0
        } else {
            (volatility - self.low_vol) / (self.high_vol - self.low_vol)
        };
        let w = Decimal::from_f64_retain(w).unwrap_or_default().round_dp(6);
        self.low_vol_targets_pct
            .iter()
            .zip(&self.high_vol_targets_pct)
            .map(|(lo, hi)| *lo + (*hi - *lo) * w)
            .collect()
    }
}
