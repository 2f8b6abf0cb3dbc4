//! A one-way-mode position: signed quantity, average entry price, realized PnL.

use qt_events::{Decimal, Side};
use serde::{Deserialize, Serialize};

/// A one-way position: `qty > 0` long, `< 0` short, `0` flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    pub qty: Decimal,
    /// Average entry price; zero when flat.
    pub entry_price: Decimal,
}

/// What one fill did to a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionChange {
    /// Realized PnL in quote (before fees).
    pub realized_pnl: Decimal,
    /// Quantity that closed existing exposure.
    pub closed_qty: Decimal,
    /// Quantity that opened or added exposure.
    pub opened_qty: Decimal,
}

fn signed(side: Side, qty: Decimal) -> Decimal {
    match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    }
}

impl Position {
    pub fn is_flat(&self) -> bool {
        self.qty.is_zero()
    }

    /// Unrealized PnL at `mark`.
    pub fn unrealized_pnl(&self, mark: Decimal) -> Decimal {
        (mark - self.entry_price) * self.qty
    }

    /// Absolute notional at `mark`.
    pub fn notional(&self, mark: Decimal) -> Decimal {
        (self.qty * mark).abs()
    }

    /// The most a reduce-only order of `side` may fill: the opposite exposure, never more, so
    /// it can never flip the position. Zero when it would add to or open a position.
    pub fn reduce_only_cap(&self, side: Side) -> Decimal {
        match side {
            Side::Buy if self.qty < Decimal::ZERO => -self.qty,
            Side::Sell if self.qty > Decimal::ZERO => self.qty,
            _ => Decimal::ZERO,
        }
    }

    /// Apply one fill; returns the realized PnL and how much closed and opened.
    pub fn apply(&mut self, side: Side, qty: Decimal, price: Decimal) -> PositionChange {
        let delta = signed(side, qty);
        let same_direction =
            self.qty.is_zero() || (self.qty > Decimal::ZERO) == (delta > Decimal::ZERO);
        if same_direction {
            let new_qty = self.qty + delta;
            if !new_qty.is_zero() {
                self.entry_price =
                    (self.entry_price * self.qty.abs() + price * qty) / new_qty.abs();
            }
            self.qty = new_qty;
            return PositionChange {
                realized_pnl: Decimal::ZERO,
                closed_qty: Decimal::ZERO,
                opened_qty: qty,
            };
        }
        let closed = qty.min(self.qty.abs());
        let direction = if self.qty > Decimal::ZERO {
            Decimal::ONE
        } else {
            -Decimal::ONE
        };
        let realized = (price - self.entry_price) * closed * direction;
        let opened = qty - closed;
        self.qty += delta;
        if self.qty.is_zero() {
            self.entry_price = Decimal::ZERO;
        } else if !opened.is_zero() {
            self.entry_price = price;
        }
        PositionChange {
            realized_pnl: realized,
            closed_qty: closed,
            opened_qty: opened,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn adding_averages_the_entry_and_closing_realizes_pnl() {
        let mut p = Position::default();
        p.apply(Side::Buy, dec!(1), dec!(100));
        p.apply(Side::Buy, dec!(1), dec!(110));
        assert_eq!(p.entry_price, dec!(105));
        let ch = p.apply(Side::Sell, dec!(0.5), dec!(125));
        assert_eq!(ch.realized_pnl, dec!(10));
        assert_eq!(p.qty, dec!(1.5));
        let ch = p.apply(Side::Sell, dec!(2), dec!(95));
        assert_eq!(ch.realized_pnl, dec!(-15));
        assert_eq!((p.qty, p.entry_price), (dec!(-0.5), dec!(95)));
        assert_eq!(p.unrealized_pnl(dec!(90)), dec!(2.5));
    }

    proptest! {
        #[test]
        fn a_reduce_only_fill_never_flips_or_grows_a_position(
            start in -1_000i64..1_000, want in 1i64..5_000, buy in any::<bool>(), px in 1i64..100_000)
        {
            let mut p = Position { qty: Decimal::new(start, 1), entry_price: dec!(100) };
            let before = p.qty;
            let side = if buy { Side::Buy } else { Side::Sell };
            let q = Decimal::new(want, 1).min(p.reduce_only_cap(side));
            if q > Decimal::ZERO {
                p.apply(side, q, Decimal::new(px, 2));
            }
            prop_assert!(p.qty.abs() <= before.abs());
            prop_assert!(p.qty.is_zero() || before.is_zero() || (p.qty > Decimal::ZERO) == (before > Decimal::ZERO));
        }

        #[test]
        fn round_trip_pnl_equals_price_difference_times_quantity(q in 1i64..10_000, a in 1i64..100_000, b in 1i64..100_000) {
            let (q, a, b) = (Decimal::new(q, 3), Decimal::new(a, 2), Decimal::new(b, 2));
            let mut p = Position::default();
            p.apply(Side::Sell, q, a);
            let ch = p.apply(Side::Buy, q, b);
            prop_assert_eq!(ch.realized_pnl, (a - b) * q);
            prop_assert!(p.is_flat());
        }
    }
}
