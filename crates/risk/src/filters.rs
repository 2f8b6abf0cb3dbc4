//! A symbol's exchange filters (`PRICE_FILTER`, `LOT_SIZE`, `MIN_NOTIONAL` of `exchangeInfo`) and
//! the rounding the exchange demands: quantity floored to the step, price rounded to the tick.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::exact::{Exact, pow10};

/// The trading rules of one symbol — the one type every crate rounds and checks with. `qt-exchange`
/// reads it from `exchangeInfo` (refusing a value that does not parse); the pure crates build it
/// by hand or with [`SymbolFilters::NONE`]. A zero value disables the rule it stands for, as on
/// Binance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolFilters {
    /// `PRICE_FILTER.tickSize`: prices and trigger prices are multiples of it.
    pub tick_size: Decimal,
    /// `LOT_SIZE.stepSize`: quantities are multiples of it.
    pub step_size: Decimal,
    /// `LOT_SIZE.minQty`.
    pub min_qty: Decimal,
    /// `LOT_SIZE.maxQty` (zero: no maximum).
    pub max_qty: Decimal,
    /// `MIN_NOTIONAL.notional`: price × quantity of a non-reduce-only order must reach it.
    pub min_notional: Decimal,
    /// `PRICE_FILTER.minPrice`: the start of the tick grid and the lowest price (zero: none).
    #[serde(default)]
    pub min_price: Decimal,
    /// `PRICE_FILTER.maxPrice` (zero: no maximum).
    #[serde(default)]
    pub max_price: Decimal,
    /// `MARKET_LOT_SIZE.stepSize` (the exchange client copies `LOT_SIZE` when it is absent).
    #[serde(default)]
    pub market_step_size: Decimal,
    /// `MARKET_LOT_SIZE.minQty`.
    #[serde(default)]
    pub market_min_qty: Decimal,
    /// `MARKET_LOT_SIZE.maxQty`.
    #[serde(default)]
    pub market_max_qty: Decimal,
}

/// How a price is brought onto the tick grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRounding {
    Nearest,
    Down,
    Up,
}

/// Why an order does not pass the filters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("quantity {qty} is not a multiple of the step {step}")]
    QtyPrecision { qty: Decimal, step: Decimal },
    #[error("price {price} is not a multiple of the tick {tick}")]
    PricePrecision { price: Decimal, tick: Decimal },
    #[error("quantity {qty} is below the minimum {min}")]
    BelowMinQty { qty: Decimal, min: Decimal },
    #[error("quantity {qty} is above the maximum {max}")]
    AboveMaxQty { qty: Decimal, max: Decimal },
    #[error("notional {notional} is below the minimum {min}")]
    BelowMinNotional { notional: Decimal, min: Decimal },
}

impl FilterError {
    /// A filter failure never heals by retrying the same order.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// `d > 0`, as `Decimal`'s comparison answers it (a zero of either sign is not positive), without
/// the call: the hot checks compare with zero several times per entry.
#[inline]
pub(crate) fn is_positive(d: Decimal) -> bool {
    !d.is_zero() && d.is_sign_positive()
}

pub(crate) fn is_multiple(value: Decimal, unit: Decimal) -> bool {
    if !is_positive(unit) {
        return true;
    }
    // A unit of 10^-k however it is written (how exchanges write steps and ticks: 0.001 is 1 at
    // scale 3, 10 is 10 at scale 0): the value m × 10^-s is a multiple when m is a multiple of
    // 10^(s − k) — always when s ≤ k. The same answer as the remainder below (a property test
    // compares them), without a division by a `Decimal`.
    if let Some(k) = decimals_of_power_of_ten(unit) {
        let Ok(digits) = u32::try_from(i64::from(value.scale()) - k) else {
            return true;
        };
        if digits == 0 {
            return true;
        }
        let m = value.mantissa().unsigned_abs();
        return match pow10(digits) {
            Some(p) => match (u64::try_from(m), u64::try_from(p)) {
                (Ok(m), Ok(p)) => m.is_multiple_of(p),
                _ => m.is_multiple_of(p),
            },
            // 10^39 and more: beyond any mantissa (below 2^96), so only zero is a multiple.
            None => m == 0,
        };
    }
    (value % unit).is_zero()
}

/// `Some(k)` when `unit` is 10^-k however it is written (0.001, 0.0010, 1, 10, 100 — k is
/// negative for 10 and more).
fn decimals_of_power_of_ten(unit: Decimal) -> Option<i64> {
    let m = unit.mantissa();
    let mut k = i64::from(unit.scale());
    if m <= 0 {
        return None;
    }
    // In 64 bits when the mantissa fits (the compiler divides by ten with a multiplication).
    if let Ok(mut m) = u64::try_from(m) {
        while m.is_multiple_of(10) {
            m /= 10;
            k -= 1;
        }
        return (m == 1).then_some(k);
    }
    let mut m = m;
    while m % 10 == 0 {
        m /= 10;
        k -= 1;
    }
    (m == 1).then_some(k)
}

/// `m × 10^-s` without the trailing zeros after the point: the mantissa divided by ten while
/// it ends in a zero and the scale is positive (in 64 bits when the mantissa fits, where the
/// compiler divides by ten with a multiplication instead of a 128-bit division call).
#[inline]
fn strip_zeros(m: u128, s: u32) -> (u128, u32) {
    let (mut m, mut s) = (m, s);
    if let Ok(mut small) = u64::try_from(m) {
        while s > 0 && small.is_multiple_of(10) {
            small /= 10;
            s -= 1;
        }
        return (u128::from(small), s);
    }
    while s > 0 && m.is_multiple_of(10) {
        m /= 10;
        s -= 1;
    }
    (m, s)
}

/// `Some(k)` when `unit` is written as 1 at scale `k`, i.e. is 10^-k (0.001, 0.1, 1).
fn power_of_ten_scale(unit: Decimal) -> Option<u32> {
    (unit.mantissa() == 1).then(|| unit.scale())
}

impl SymbolFilters {
    /// Filters that let everything through (no tick, no step, no minimums).
    pub const NONE: SymbolFilters = SymbolFilters {
        tick_size: Decimal::ZERO,
        step_size: Decimal::ZERO,
        min_qty: Decimal::ZERO,
        max_qty: Decimal::ZERO,
        min_notional: Decimal::ZERO,
        min_price: Decimal::ZERO,
        max_price: Decimal::ZERO,
        market_step_size: Decimal::ZERO,
        market_min_qty: Decimal::ZERO,
        market_max_qty: Decimal::ZERO,
    };

    /// The rules a market order is held to: `MARKET_LOT_SIZE`'s step and bounds where they are
    /// set (non-zero), `LOT_SIZE`'s otherwise. Entries are market orders.
    pub fn for_market_orders(&self) -> SymbolFilters {
        let pick = |market: Decimal, plain: Decimal| {
            if market > Decimal::ZERO {
                market
            } else {
                plain
            }
        };
        SymbolFilters {
            step_size: pick(self.market_step_size, self.step_size),
            min_qty: pick(self.market_min_qty, self.min_qty),
            max_qty: pick(self.market_max_qty, self.max_qty),
            ..*self
        }
    }

    /// The step and `(min, max)` bounds of a limit (`market == false`) or market order, as
    /// exchangeInfo states them (no fallback: the exchange client fills in `MARKET_LOT_SIZE`).
    pub fn lot(&self, market: bool) -> (Decimal, Decimal, Decimal) {
        if market {
            (
                self.market_step_size,
                self.market_min_qty,
                self.market_max_qty,
            )
        } else {
            (self.step_size, self.min_qty, self.max_qty)
        }
    }

    /// Price on the tick grid anchored at `minPrice`, as the exchange checks it
    /// (`(price − minPrice) % tickSize == 0`).
    pub fn round_price_on_grid(&self, price: Decimal, how: PriceRounding) -> Decimal {
        if self.tick_size <= Decimal::ZERO {
            return price.normalize();
        }
        let steps = (price - self.min_price) / self.tick_size;
        let steps = match how {
            PriceRounding::Nearest => {
                steps.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            }
            PriceRounding::Down => steps.floor(),
            PriceRounding::Up => steps.ceil(),
        };
        (self.min_price + steps * self.tick_size).normalize()
    }

    /// Floors a quantity to the step (never rounds up: an order is never larger than asked).
    /// Negative inputs give zero.
    pub fn round_qty(&self, qty: Decimal) -> Decimal {
        if !is_positive(qty) {
            return Decimal::ZERO;
        }
        if !is_positive(self.step_size) {
            return qty.normalize();
        }
        // A step of 10^-k and a quantity with at least k decimals: flooring to the step is
        // cutting the digits past the k-th — what the division below computes (dividing by
        // 1 at scale k only shifts the scale), without dividing.
        if let Some(k) = power_of_ten_scale(self.step_size)
            && qty.scale() >= k
        {
            return qty.trunc_with_scale(k).normalize();
        }
        ((qty / self.step_size).floor() * self.step_size).normalize()
    }

    /// The size of a fixed notional `margin × leverage` at `price` as
    /// [`Sizing::quantity_with`](crate::Sizing::quantity_with) defines it — the `Decimal`
    /// quotient floored to the step by [`SymbolFilters::round_qty`], capped at `max_qty` and
    /// passing [`SymbolFilters::check_order`] — computed exactly in integers, without the
    /// `Decimal` division. `None` whenever this path cannot vouch for that answer: a step that
    /// is not 10^-k, operands too large, a size the filters refuse (the caller's `Decimal` path
    /// then gives the error), or a quotient within 10^-(k+4) below a step, where `Decimal`'s
    /// rounded quotient (28 significant digits) could reach the step the exact one misses.
    pub(crate) fn fixed_notional_qty(
        &self,
        margin: Decimal,
        leverage: u32,
        price: Decimal,
    ) -> Option<Decimal> {
        /// Digits computed past the step's, to tell a quotient that `Decimal` may round up to
        /// the next step (they are all nines) from one it cannot.
        const GUARD_DIGITS: i64 = 4;
        // The step is 10^-k (k < 0 for steps of 10 and more).
        let k = decimals_of_power_of_ten(self.step_size)?;
        let notional = Exact::of(margin).mul(Exact::int(u64::from(leverage)))?;
        let p = Exact::of(price);
        if !notional.is_positive() || !p.is_positive() || k + GUARD_DIGITS < 0 {
            return None;
        }
        // The price without trailing zeros (files write 8 decimals): smaller integers below.
        let (d, ps) = strip_zeros(p.m.unsigned_abs(), p.s);
        let n = notional.m.unsigned_abs();
        // floor(notional / price × 10^(k + GUARD_DIGITS)), in integers.
        let e = i64::from(ps) + k + GUARD_DIGITS - i64::from(notional.s);
        let x = n.checked_mul(pow10(u32::try_from(e).ok()?)?)?;
        let scaled = match (u64::try_from(x), u64::try_from(d)) {
            (Ok(x), Ok(d)) => u128::from(x / d),
            _ => x / d,
        };
        const UNIT: u64 = 10u64.pow(GUARD_DIGITS as u32);
        // `Decimal` keeps at least k + GUARD_DIGITS + 2 decimals of a quotient this small (or
        // the quotient exactly): rounding at that scale cannot cross a step unless the guard
        // digits are all nines.
        if scaled >= (1u128 << 96) / 1_000 {
            return None;
        }
        // The whole steps and the guard digits (in 64 bits when the quotient fits).
        let (steps, guard) = match u64::try_from(scaled) {
            Ok(s) => (u128::from(s / UNIT), u128::from(s % UNIT)),
            Err(_) => (scaled / u128::from(UNIT), scaled % u128::from(UNIT)),
        };
        if guard == u128::from(UNIT - 1) {
            return None;
        }
        if steps == 0 || k + GUARD_DIGITS + 2 > 28 {
            return None;
        }
        // `normalize`: no trailing zeros after the point (an integer keeps its own).
        let (m, scale) = if k >= 0 {
            strip_zeros(steps, k as u32)
        } else {
            (steps.checked_mul(pow10((-k) as u32)?)?, 0)
        };
        let qty = Exact {
            m: i128::try_from(m).ok()?,
            s: scale,
        };
        let too_big = is_positive(self.max_qty) && qty.gt(Exact::of(self.max_qty));
        let too_small = qty.lt(Exact::of(self.min_qty));
        let small_notional =
            is_positive(self.min_notional) && qty.mul(p)?.lt(Exact::of(self.min_notional));
        if too_big || too_small || small_notional || m >= (1u128 << 96) {
            return None;
        }
        Some(Decimal::from_parts(
            m as u32,
            (m >> 32) as u32,
            (m >> 64) as u32,
            false,
            scale,
        ))
    }

    /// Rounds a price to the nearest tick (half away from zero).
    pub fn round_price(&self, price: Decimal) -> Decimal {
        self.round_price_with(price, RoundingStrategy::MidpointAwayFromZero)
    }

    /// Rounds a price down to a tick.
    pub fn floor_price(&self, price: Decimal) -> Decimal {
        self.round_price_with(price, RoundingStrategy::ToNegativeInfinity)
    }

    /// Rounds a price up to a tick.
    pub fn ceil_price(&self, price: Decimal) -> Decimal {
        self.round_price_with(price, RoundingStrategy::ToPositiveInfinity)
    }

    fn round_price_with(&self, price: Decimal, strategy: RoundingStrategy) -> Decimal {
        if self.tick_size <= Decimal::ZERO {
            return price.normalize();
        }
        ((price / self.tick_size).round_dp_with_strategy(0, strategy) * self.tick_size).normalize()
    }

    /// Checks `price × qty` against `MIN_NOTIONAL` (reduce-only orders are exempt on Binance and
    /// are not checked here).
    pub fn check_notional(&self, qty: Decimal, price: Decimal) -> Result<(), FilterError> {
        // A product past 28 digits is above any minimum: the other limits refuse such a size.
        let Some(notional) = qty.checked_mul(price) else {
            return Ok(());
        };
        if is_positive(self.min_notional) && notional < self.min_notional {
            return Err(FilterError::BelowMinNotional {
                notional,
                min: self.min_notional,
            });
        }
        Ok(())
    }

    /// Checks a quantity's precision and bounds.
    pub fn check_qty(&self, qty: Decimal) -> Result<(), FilterError> {
        if !is_multiple(qty, self.step_size) {
            return Err(FilterError::QtyPrecision {
                qty,
                step: self.step_size,
            });
        }
        if qty < self.min_qty || !is_positive(qty) {
            return Err(FilterError::BelowMinQty {
                qty,
                min: self.min_qty,
            });
        }
        if is_positive(self.max_qty) && qty > self.max_qty {
            return Err(FilterError::AboveMaxQty {
                qty,
                max: self.max_qty,
            });
        }
        Ok(())
    }

    /// Checks a price's precision.
    pub fn check_price(&self, price: Decimal) -> Result<(), FilterError> {
        if !is_multiple(price, self.tick_size) {
            return Err(FilterError::PricePrecision {
                price,
                tick: self.tick_size,
            });
        }
        Ok(())
    }

    /// Checks a whole opening order: quantity, price (when it has one) and notional.
    pub fn check_order(&self, qty: Decimal, price: Decimal) -> Result<(), FilterError> {
        self.check_qty(qty)?;
        self.check_notional(qty, price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;
    use rust_decimal_macros::dec;

    fn btc() -> SymbolFilters {
        SymbolFilters {
            tick_size: dec!(0.10),
            step_size: dec!(0.001),
            min_qty: dec!(0.001),
            max_qty: dec!(1000),
            min_notional: dec!(100),
            ..SymbolFilters::NONE
        }
    }

    fn decimal(mantissa: i128, scale: u32) -> Decimal {
        Decimal::from_i128_with_scale(mantissa, scale)
    }

    #[test]
    fn is_positive_answers_as_the_comparison_with_zero() {
        let zero = Decimal::ZERO;
        let mut negative_zero = Decimal::ZERO;
        negative_zero.set_sign_negative(true);
        for d in [
            zero,
            negative_zero,
            dec!(0.000),
            dec!(1e-28),
            dec!(-1e-28),
            dec!(5),
            dec!(-5),
        ] {
            assert_eq!(is_positive(d), d > Decimal::ZERO, "{d}");
        }
    }

    proptest::proptest! {
        /// The shortcuts for steps and ticks of 10^-k give the answers of the division and the
        /// remainder they stand for, to the bit.
        #[test]
        fn power_of_ten_shortcuts_agree_with_the_division(
            m in -(1i128 << 95)..(1i128 << 95),
            s in 0u32..=28,
            k in 0u32..=28,
        ) {
            let v = decimal(m, s);
            let unit = decimal(1, k);
            proptest::prop_assert_eq!(is_multiple(v, unit), (v % unit).is_zero());
            if s >= k && v > Decimal::ZERO {
                let f = SymbolFilters { step_size: unit, ..SymbolFilters::NONE };
                let by_division = ((v / unit).floor() * unit).normalize();
                proptest::prop_assert_eq!(
                    f.round_qty(v).serialize(),
                    by_division.serialize(),
                    "{} at step {}", v, unit
                );
            }
        }
    }

    proptest::proptest! {
        /// Units of 10^j written any way (10, 100, 1.0, 0.0010, 10^28) and others: a value is
        /// a multiple exactly when `Decimal`'s remainder is zero.
        #[test]
        fn multiples_of_any_power_of_ten_agree_with_the_remainder(
            m in proptest::prop_oneof![
                -(1i128 << 95)..(1i128 << 95),
                -100_000i128..100_000,
                (-1_000i128..1_000).prop_map(|m| m * 1_000_000),
            ],
            s in 0u32..=28,
            ones in 0u32..=28,
            zeros in 0u32..=28,
            other in 2i128..2_000,
        ) {
            let v = decimal(m, s);
            if let Some(p) = 10i128.checked_pow(zeros).filter(|p| *p < (1i128 << 96)) {
                let unit = decimal(p, ones);
                proptest::prop_assert_eq!(is_multiple(v, unit), (v % unit).is_zero(), "{} / {}", v, unit);
            }
            let unit = decimal(other, ones.min(6));
            proptest::prop_assert_eq!(is_multiple(v, unit), (v % unit).is_zero(), "{} / {}", v, unit);
        }

        /// Stripping trailing zeros in 64 bits where the mantissa fits gives what the 128-bit
        /// loop gives, for mantissas on both sides of 2^64 and zero.
        #[test]
        fn trailing_zeros_strip_as_the_wide_loop_does(
            m in proptest::prop_oneof![
                0u128..1_000_000,
                (0u128..1_000_000).prop_map(|m| m * 100_000_000),
                (u128::from(u64::MAX) - 1_000..u128::from(u64::MAX) + 1_000),
                (0u128..(1 << 96)),
            ],
            s in 0u32..=28,
        ) {
            let (mut wide, mut ws) = (m, s);
            while ws > 0 && wide.is_multiple_of(10) {
                wide /= 10;
                ws -= 1;
            }
            proptest::prop_assert_eq!(strip_zeros(m, s), (wide, ws));
        }
    }

    #[test]
    fn quantity_is_floored_to_the_step_never_rounded_up() {
        assert_eq!(btc().round_qty(dec!(0.0129)), dec!(0.012));
        assert_eq!(btc().round_qty(dec!(0.012)), dec!(0.012));
        assert_eq!(btc().round_qty(dec!(-1)), dec!(0));
    }

    #[test]
    fn price_rounds_to_the_nearest_tick_and_can_be_floored_or_ceiled() {
        let f = btc();
        assert_eq!(f.round_price(dec!(30000.06)), dec!(30000.1));
        assert_eq!(f.round_price(dec!(30000.04)), dec!(30000));
        assert_eq!(f.floor_price(dec!(30000.09)), dec!(30000));
        assert_eq!(f.ceil_price(dec!(30000.01)), dec!(30000.1));
    }

    #[test]
    fn orders_off_step_under_min_or_under_min_notional_fail() {
        let f = btc();
        assert!(matches!(
            f.check_qty(dec!(0.0015)),
            Err(FilterError::QtyPrecision { .. })
        ));
        assert!(matches!(
            f.check_qty(dec!(0)),
            Err(FilterError::BelowMinQty { .. })
        ));
        assert!(matches!(
            f.check_qty(dec!(2000)),
            Err(FilterError::AboveMaxQty { .. })
        ));
        assert!(matches!(
            f.check_order(dec!(0.003), dec!(30000)),
            Err(FilterError::BelowMinNotional { .. })
        ));
        assert_eq!(f.check_order(dec!(0.004), dec!(30000)), Ok(()));
        assert!(f.check_price(dec!(30000.05)).is_err());
        assert!(f.check_price(dec!(30000.1)).is_ok());
    }
}
