//! Position sizing: how much to buy or sell for an entry, rounded to the exchange's filters.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::filters::{FilterError, SymbolFilters};

/// How an entry is sized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Sizing {
    /// A fixed margin at a leverage: notional = `margin × leverage` (e.g. $250 at 10× = $2,500).
    FixedNotional { margin: Decimal, leverage: u32 },
    /// Lose `risk` (quote asset) if the stop is hit: qty = risk / |entry − stop|, with the
    /// notional capped at `max_notional`.
    RiskPerTrade {
        risk: Decimal,
        max_notional: Decimal,
        leverage: u32,
    },
}

impl Default for Sizing {
    fn default() -> Self {
        Sizing::FixedNotional {
            margin: Decimal::from(250),
            leverage: 10,
        }
    }
}

/// Why no order size could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizingError {
    #[error("entry price must be positive, got {0}")]
    BadPrice(Decimal),
    #[error("the stop {stop} must differ from the entry {entry}")]
    NoStopDistance { entry: Decimal, stop: Decimal },
    #[error("sized order fails the exchange filters: {0}")]
    Filter(#[from] FilterError),
}

impl SizingError {
    /// Sizing errors depend on the inputs only: retrying the same inputs fails again.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl Sizing {
    /// The leverage the entry is placed with.
    pub fn leverage(&self) -> u32 {
        match self {
            Sizing::FixedNotional { leverage, .. } | Sizing::RiskPerTrade { leverage, .. } => {
                *leverage
            }
        }
    }

    /// The quantity for an entry at `price` with its protective stop at `stop`, floored to the
    /// step and checked against the minimum quantity and notional.
    pub fn quantity(
        &self,
        price: Decimal,
        stop: Decimal,
        filters: &SymbolFilters,
    ) -> Result<Decimal, SizingError> {
        if price <= Decimal::ZERO {
            return Err(SizingError::BadPrice(price));
        }
        let raw = match self {
            Sizing::FixedNotional { margin, leverage } => {
                *margin * Decimal::from(*leverage) / price
            }
            Sizing::RiskPerTrade {
                risk, max_notional, ..
            } => {
                let dist = (price - stop).abs();
                if dist.is_zero() {
                    return Err(SizingError::NoStopDistance { entry: price, stop });
                }
                (*risk / dist).min(*max_notional / price)
            }
        };
        let mut qty = filters.round_qty(raw);
        if filters.max_qty > Decimal::ZERO {
            qty = qty.min(filters.max_qty);
        }
        filters.check_order(qty, price)?;
        Ok(qty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn f() -> SymbolFilters {
        SymbolFilters {
            tick_size: dec!(0.1),
            step_size: dec!(0.001),
            min_qty: dec!(0.001),
            max_qty: dec!(100),
            min_notional: dec!(100),
        }
    }

    #[test]
    fn fixed_notional_is_margin_times_leverage_floored_to_the_step() {
        // 250 × 10 / 30_000 = 0.08333… → 0.083
        let q = Sizing::default().quantity(dec!(30000), dec!(29400), &f());
        assert_eq!(q, Ok(dec!(0.083)));
    }

    #[test]
    fn risk_per_trade_divides_the_risk_by_the_stop_distance_and_caps_the_notional() {
        let s = Sizing::RiskPerTrade {
            risk: dec!(20),
            max_notional: dec!(5000),
            leverage: 10,
        };
        // 20 / (30000 − 29400) = 0.0333… → 0.033
        assert_eq!(s.quantity(dec!(30000), dec!(29400), &f()), Ok(dec!(0.033)));
        // 20 / 30 = 0.666 → capped at 5000 / 30000 = 0.1666 → 0.166
        assert_eq!(s.quantity(dec!(30000), dec!(29970), &f()), Ok(dec!(0.166)));
        assert!(matches!(
            s.quantity(dec!(30000), dec!(30000), &f()),
            Err(SizingError::NoStopDistance { .. })
        ));
    }

    #[test]
    fn a_size_under_the_minimum_notional_is_an_error_not_a_smaller_order() {
        let s = Sizing::FixedNotional {
            margin: dec!(5),
            leverage: 10,
        };
        assert!(matches!(
            s.quantity(dec!(30000), dec!(29000), &f()),
            Err(SizingError::Filter(FilterError::BelowMinNotional { .. }))
        ));
    }
}
