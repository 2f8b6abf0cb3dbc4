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
    /// A chandelier stop (LeBeau): the stop trails the best price since the entry, from the
    /// entry on, at this many daily volatilities (the plan's volatility input, a fraction)
    /// instead of `stop_pct`, and the trailing stop above is not used. `stop_pct` stays the
    /// stop when no volatility is known. `None` (default): the fixed `stop_pct`.
    pub chandelier_vol_mult: Option<Decimal>,
    /// Close the position when the model that opened it signals the opposite side (a long on
    /// SELL, a short on BUY): [`crate::ExitPlan::on_signal`]. Default false.
    pub close_on_flip: bool,
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
            chandelier_vol_mult: None,
            close_on_flip: false,
            learning_rate: d(1, 1),
            min_multiplier: d(5, 1),
            max_multiplier: d(2, 0),
        }
    }
}

impl ExitConfig {
    /// Checks that the ladders line up, fractions sum to one and distances are positive. A
    /// plan without take-profits (all three lists empty) is valid: the stop, the signal or the
    /// time stop closes it.
    pub fn validate(&self) -> Result<(), ExitError> {
        let n = self.leg_fractions.len();
        let bad = |m: &str| Err(ExitError::InvalidConfig(m.to_owned()));
        if self.low_vol_targets_pct.len() != n || self.high_vol_targets_pct.len() != n {
            return bad("targets and leg fractions must have the same length");
        }
        if n > 0
            && (self.leg_fractions.iter().copied().sum::<Decimal>() != Decimal::ONE
                || self.leg_fractions.iter().any(|f| *f <= Decimal::ZERO))
        {
            return bad("leg fractions must be positive and sum to 1");
        }
        if self.chandelier_vol_mult.is_some_and(|m| m <= Decimal::ZERO) {
            return bad("chandelier_vol_mult must be positive");
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

    /// The same plan with every distance — the stop, both target ladders, the trailing stop's
    /// activation and callback, the break-even offset — multiplied by `factor` (a wider or a
    /// tighter plan of the same shape). Leg fractions, the time stop and learning are kept.
    pub fn scaled(&self, factor: Decimal) -> ExitConfig {
        let mut c = self.clone();
        for t in c
            .low_vol_targets_pct
            .iter_mut()
            .chain(c.high_vol_targets_pct.iter_mut())
        {
            *t *= factor;
        }
        c.stop_pct *= factor;
        c.break_even_offset_pct *= factor;
        c.trailing_activation_pct = c.trailing_activation_pct.map(|a| a * factor);
        c.trailing_callback_pct *= factor;
        c.chandelier_vol_mult = c.chandelier_vol_mult.map(|m| m * factor);
        c
    }

    /// The stop's distance from the entry, percent, for a daily realized volatility (a
    /// fraction), before the profile multiplier: `chandelier_vol_mult × volatility × 100` for
    /// a chandelier stop with a known, positive volatility, `stop_pct` otherwise.
    pub fn stop_distance_pct(&self, volatility: f64) -> Decimal {
        match self.chandelier_vol_mult {
            Some(m) if volatility.is_finite() && volatility > 0.0 => {
                let v = Decimal::from_f64_retain(volatility)
                    .unwrap_or_default()
                    .round_dp(8);
                let d = m * v * Decimal::ONE_HUNDRED;
                if d > Decimal::ZERO && d < Decimal::ONE_HUNDRED {
                    d
                } else if d >= Decimal::ONE_HUNDRED {
                    // a long's stop at or under zero never triggers: cap just under 100%
                    Decimal::new(99, 0)
                } else {
                    self.stop_pct
                }
            }
            _ => self.stop_pct,
        }
    }

    /// The same plan with the trailing stop on (this plan's activation, or the default's when
    /// it has none) or off.
    pub fn with_trailing(&self, on: bool) -> ExitConfig {
        let mut c = self.clone();
        c.trailing_activation_pct = if on {
            c.trailing_activation_pct
                .or(ExitConfig::default().trailing_activation_pct)
        } else {
            None
        };
        c
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

impl From<&ExitConfig> for qt_events::ExitSettings {
    fn from(c: &ExitConfig) -> Self {
        qt_events::ExitSettings {
            low_vol: c.low_vol,
            high_vol: c.high_vol,
            low_vol_targets_pct: c.low_vol_targets_pct.clone(),
            high_vol_targets_pct: c.high_vol_targets_pct.clone(),
            leg_fractions: c.leg_fractions.clone(),
            stop_pct: c.stop_pct,
            break_even_after_first_leg: c.break_even_after_first_leg,
            break_even_offset_pct: c.break_even_offset_pct,
            trailing_activation_pct: c.trailing_activation_pct,
            trailing_callback_pct: c.trailing_callback_pct,
            trailing_min_step: c.trailing_min_step,
            time_stop_minutes: c.time_stop_minutes,
            chandelier_vol_mult: c.chandelier_vol_mult,
            close_on_flip: c.close_on_flip,
            learning_rate: c.learning_rate,
            min_multiplier: c.min_multiplier,
            max_multiplier: c.max_multiplier,
        }
    }
}

impl TryFrom<&qt_events::ExitSettings> for ExitConfig {
    type Error = ExitError;

    /// The exits a wire message carries, refused when they do not make a valid plan.
    fn try_from(s: &qt_events::ExitSettings) -> Result<Self, ExitError> {
        let c = ExitConfig {
            low_vol: s.low_vol,
            high_vol: s.high_vol,
            low_vol_targets_pct: s.low_vol_targets_pct.clone(),
            high_vol_targets_pct: s.high_vol_targets_pct.clone(),
            leg_fractions: s.leg_fractions.clone(),
            stop_pct: s.stop_pct,
            break_even_after_first_leg: s.break_even_after_first_leg,
            break_even_offset_pct: s.break_even_offset_pct,
            trailing_activation_pct: s.trailing_activation_pct,
            trailing_callback_pct: s.trailing_callback_pct,
            trailing_min_step: s.trailing_min_step,
            time_stop_minutes: s.time_stop_minutes,
            chandelier_vol_mult: s.chandelier_vol_mult,
            close_on_flip: s.close_on_flip,
            learning_rate: s.learning_rate,
            min_multiplier: s.min_multiplier,
            max_multiplier: s.max_multiplier,
        };
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_has_every_field_and_round_trips() {
        let mut c = ExitConfig::default().scaled(d(15, 1)).with_trailing(false);
        c.time_stop_minutes = None;
        c.chandelier_vol_mult = Some(d(48, 1));
        c.close_on_flip = true;
        let wire = qt_events::ExitSettings::from(&c);
        // Field for field: the two serialize to the same JSON object.
        assert_eq!(
            serde_json::to_value(&wire).unwrap(),
            serde_json::to_value(&c).unwrap()
        );
        assert_eq!(ExitConfig::try_from(&wire).unwrap(), c);
        let bad = qt_events::ExitSettings {
            stop_pct: Decimal::ZERO,
            ..wire
        };
        assert!(ExitConfig::try_from(&bad).is_err());
    }

    #[test]
    fn scaling_moves_every_distance_and_trailing_switches() {
        let c = ExitConfig::default().scaled(d(75, 2));
        assert_eq!(c.stop_pct, d(15, 1));
        assert_eq!(c.low_vol_targets_pct[0], d(14625, 4));
        assert_eq!(c.high_vol_targets_pct[2], d(6, 0));
        assert_eq!(c.trailing_activation_pct, Some(d(225, 2)));
        assert_eq!(c.trailing_callback_pct, d(75, 2));
        assert_eq!(c.leg_fractions, ExitConfig::default().leg_fractions);
        assert!(c.validate().is_ok());
        let off = c.with_trailing(false);
        assert_eq!(off.trailing_activation_pct, None);
        assert_eq!(
            off.with_trailing(true).trailing_activation_pct,
            Some(d(3, 0)),
            "switched back on, a plan without its own activation takes the default's"
        );
    }
}
