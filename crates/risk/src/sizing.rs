//! Position sizing: how much to buy or sell for an entry, rounded to the exchange's filters.

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::{Deserialize, Serialize};

use crate::filters::{FilterError, SymbolFilters, is_positive};

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
    /// Fractional Kelly on the signal's calibrated edge: lose `fraction × f* × equity` if the
    /// stop is hit, with the notional capped at `max_notional` (and every risk limit after
    /// sizing). For a trade that loses the stop distance `d` or wins `g`, with P(gain) `p` and
    /// expected net return `E = p·g − (1 − p)·d`, the Kelly share of equity to risk is
    /// `f* = E / g = E·p / (E + (1 − p)·d)`. Only a priced signal with `E > 0` is sized; any
    /// other entry is refused ([`SizingError::NoEdge`]).
    Kelly {
        fraction: Decimal,
        max_notional: Decimal,
        leverage: u32,
    },
}

/// A signal's calibrated edge, for [`Sizing::Kelly`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// P(the trade nets a gain), 0..1.
    pub win_probability: f64,
    /// Expected net return on the notional, after costs (0.002 = +0.2%).
    pub expected_return: f64,
}

/// What sizing may use beyond price and stop: the signal's edge and the account's equity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SizingContext {
    pub edge: Option<Edge>,
    pub equity: Option<Decimal>,
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
    #[error("Kelly sizing needs a priced signal with a positive expected return")]
    NoEdge,
    #[error("Kelly sizing needs the account's equity, and a positive one")]
    NoEquity,
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
            Sizing::FixedNotional { leverage, .. }
            | Sizing::RiskPerTrade { leverage, .. }
            | Sizing::Kelly { leverage, .. } => *leverage,
        }
    }

    /// Whether the size depends on the stop (risk per trade and Kelly do; a fixed notional
    /// does not, so a caller may skip computing the stop for it).
    pub fn reads_stop(&self) -> bool {
        !matches!(self, Sizing::FixedNotional { .. })
    }

    /// The quantity for an entry at `price` with its protective stop at `stop`, floored to the
    /// step and checked against the minimum quantity and notional.
    pub fn quantity(
        &self,
        price: Decimal,
        stop: Decimal,
        filters: &SymbolFilters,
    ) -> Result<Decimal, SizingError> {
        self.quantity_with(price, stop, filters, &SizingContext::default())
    }

    /// [`Sizing::quantity`] with the signal's edge and the equity (which only Kelly reads).
    pub fn quantity_with(
        &self,
        price: Decimal,
        stop: Decimal,
        filters: &SymbolFilters,
        ctx: &SizingContext,
    ) -> Result<Decimal, SizingError> {
        if let Sizing::FixedNotional { margin, leverage } = self
            && let Some(qty) = filters.fixed_notional_qty(*margin, *leverage, price)
        {
            return Ok(qty);
        }
        self.quantity_reference(price, stop, filters, ctx)
    }

    /// [`Sizing::quantity_with`] computed as it is defined, in `Decimal` arithmetic: the
    /// quotient, then the floor to the step, then the filters. `quantity_with` gives the same
    /// result (a property test compares them); it only takes an exact integer path for a
    /// fixed notional where it can.
    pub fn quantity_reference(
        &self,
        price: Decimal,
        stop: Decimal,
        filters: &SymbolFilters,
        ctx: &SizingContext,
    ) -> Result<Decimal, SizingError> {
        if !is_positive(price) {
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
            Sizing::Kelly {
                fraction,
                max_notional,
                ..
            } => {
                let dist = (price - stop).abs();
                if dist.is_zero() {
                    return Err(SizingError::NoStopDistance { entry: price, stop });
                }
                let edge = ctx
                    .edge
                    .filter(|e| e.expected_return > 0.0 && e.expected_return.is_finite())
                    .ok_or(SizingError::NoEdge)?;
                let equity = ctx
                    .equity
                    .filter(|e| *e > Decimal::ZERO)
                    .ok_or(SizingError::NoEquity)?;
                let d = (dist / price).to_f64().unwrap_or(0.0);
                let p = edge.win_probability.clamp(0.0, 1.0);
                let e = edge.expected_return;
                let kelly = (e * p / (e + (1.0 - p) * d)).clamp(0.0, 1.0);
                let share = Decimal::from_f64(kelly).unwrap_or(Decimal::ZERO);
                (*fraction * share * equity / dist).min(*max_notional / price)
            }
        };
        let mut qty = filters.round_qty(raw);
        if is_positive(filters.max_qty) {
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
            ..SymbolFilters::NONE
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
    fn kelly_risks_a_fraction_of_the_kelly_share_of_equity_at_the_stop_and_needs_an_edge() {
        let s = Sizing::Kelly {
            fraction: dec!(0.25),
            max_notional: dec!(50000),
            leverage: 10,
        };
        // Stop 2% away; P(gain) 0.5, E = +0.5%: g = (E + (1 − p)·d) / p = 3%, so
        // f* = E / g = 1/6 of equity at risk; a quarter of it on 10,000 is 416.67 lost at the
        // stop: 416.67 / 600 = 0.6944 → 0.694.
        let edge = Edge {
            win_probability: 0.5,
            expected_return: 0.005,
        };
        let ctx = SizingContext {
            edge: Some(edge),
            equity: Some(dec!(10000)),
        };
        assert_eq!(
            s.quantity_with(dec!(30000), dec!(29400), &f(), &ctx),
            Ok(dec!(0.694))
        );
        // A bigger edge, a bigger size; capped by max_notional (50,000 / 30,000 = 1.666).
        let strong = SizingContext {
            edge: Some(Edge {
                win_probability: 0.7,
                expected_return: 0.02,
            }),
            ..ctx
        };
        assert_eq!(
            s.quantity_with(dec!(30000), dec!(29400), &f(), &strong),
            Ok(dec!(1.666))
        );
        // No edge, no trade; no equity, no size.
        for (edge, equity, err) in [
            (None, Some(dec!(10000)), SizingError::NoEdge),
            (
                Some(Edge {
                    win_probability: 0.6,
                    expected_return: -0.001,
                }),
                Some(dec!(10000)),
                SizingError::NoEdge,
            ),
            (Some(edge), None, SizingError::NoEquity),
        ] {
            let ctx = SizingContext { edge, equity };
            assert_eq!(
                s.quantity_with(dec!(30000), dec!(29400), &f(), &ctx),
                Err(err)
            );
        }
        assert_eq!(
            s.quantity(dec!(30000), dec!(29400), &f()),
            Err(SizingError::NoEdge)
        );
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
