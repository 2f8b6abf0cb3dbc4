//! Exact arithmetic on `Decimal` values as scaled integers, for the guard's and the sizing's hot
//! paths.
//!
//! An [`Exact`] is `±m × 10^-s` with `m` a `u128`: the value of a `Decimal`, or the exact result
//! of adding or multiplying such values. An operation that stands for a `Decimal` operation
//! gives `Some` only when its exact result is a `Decimal` again (mantissa below 2^96, scale at
//! most 28) — then `Decimal`'s own result is that exact value too, so a comparison of the two
//! gives the same answer — and `None` otherwise (an overflow here, or a result `Decimal` would
//! have rounded): the caller then takes the `Decimal` path. Comparisons are exact for any
//! operands. A property test in this module checks every operation against `Decimal`'s.

use std::cmp::Ordering;

use rust_decimal::Decimal;

/// 2^96: every `Decimal` mantissa is below it.
const MANTISSA_END: u128 = 1 << 96;

/// The largest scale a `Decimal` has.
const MAX_SCALE: u32 = 28;

/// 10^0 ..= 10^38 (10^38 < 2^127).
const POW10: [i128; 39] = {
    let mut p = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// 10^0 ..= 10^18 as `i64`s: a small mantissa times one of them is an `i64` × `i64` product,
/// which the compiler makes one widening multiplication instead of a 128-bit one.
const POW10_SMALL: [i64; 19] = {
    let mut p = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// `10^k` for `k ≤ 38`.
#[inline]
pub(crate) fn pow10(k: u32) -> Option<u128> {
    POW10.get(k as usize).map(|p| p.unsigned_abs())
}

/// Whether `m` fits in an `i64` (then `m × 10^k` for `k ≤ 18` cannot overflow an `i128`).
#[inline(always)]
fn small(m: i128) -> bool {
    m == i128::from(m as i64)
}

/// An exact value `m × 10^-s` (the sign is the mantissa's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exact {
    pub m: i128,
    pub s: u32,
}

impl Exact {
    pub(crate) const ZERO: Exact = Exact { m: 0, s: 0 };

    /// The value of a `Decimal`.
    #[inline(always)]
    pub(crate) fn of(d: Decimal) -> Self {
        Self {
            m: d.mantissa(),
            s: d.scale(),
        }
    }

    /// A non-negative integer.
    #[inline(always)]
    pub(crate) fn int(n: u64) -> Self {
        Self {
            m: i128::from(n),
            s: 0,
        }
    }

    /// Whether it is a `Decimal`'s value as it stands (mantissa and scale in range).
    #[inline(always)]
    fn representable(self) -> Option<Self> {
        (self.m.unsigned_abs() < MANTISSA_END && self.s <= MAX_SCALE).then_some(self)
    }

    #[inline(always)]
    pub(crate) fn neg(self) -> Self {
        Self {
            m: -self.m,
            s: self.s,
        }
    }

    #[inline(always)]
    pub(crate) fn is_positive(self) -> bool {
        self.m > 0
    }

    /// `m × 10^k`, when it fits an `i128`.
    #[inline(always)]
    fn scaled(m: i128, k: u32) -> Option<i128> {
        if k <= 18 && small(m) {
            // Both factors are `i64`s: one widening multiplication.
            Some(i128::from(m as i64) * i128::from(POW10_SMALL[k as usize]))
        } else {
            m.checked_mul(*POW10.get(k as usize)?)
        }
    }

    /// Both mantissas at the larger scale, when that fits an `i128`.
    #[inline(always)]
    fn aligned(self, o: Self) -> Option<(i128, i128, u32)> {
        if self.s == o.s {
            Some((self.m, o.m, self.s))
        } else if self.s < o.s {
            Some((Self::scaled(self.m, o.s - self.s)?, o.m, o.s))
        } else {
            Some((self.m, Self::scaled(o.m, self.s - o.s)?, self.s))
        }
    }

    /// `self + o` as `Decimal` computes it, when that is exact: both operands at the larger
    /// scale and the sum fit a `Decimal` mantissa.
    #[inline(always)]
    pub(crate) fn add(self, o: Self) -> Option<Self> {
        let (a, b, s) = self.aligned(o)?;
        if a.unsigned_abs() >= MANTISSA_END || b.unsigned_abs() >= MANTISSA_END {
            return None;
        }
        Self { m: a + b, s }.representable()
    }

    /// `self × o` as `Decimal` computes it, when that is exact (the product fits a `Decimal`
    /// mantissa at a scale of at most 28).
    #[inline(always)]
    pub(crate) fn mul(self, o: Self) -> Option<Self> {
        let m = if small(self.m) && small(o.m) {
            // Both factors are `i64`s: one widening multiplication.
            i128::from(self.m as i64) * i128::from(o.m as i64)
        } else {
            self.m.checked_mul(o.m)?
        };
        Self { m, s: self.s + o.s }.representable()
    }

    /// The exact order of the two values, whatever their size.
    #[inline(always)]
    pub(crate) fn cmp(self, o: Self) -> Ordering {
        match self.aligned(o) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.cmp_wide(o),
        }
    }

    /// [`Exact::cmp`] when one side does not fit an `i128` at the other's scale: then its
    /// magnitude is the larger (a `Decimal` mantissa is below 2^96), unless the signs decide.
    #[cold]
    fn cmp_wide(self, o: Self) -> Ordering {
        let sign = |m: i128| m.signum();
        if sign(self.m) != sign(o.m) || self.m == 0 {
            return sign(self.m).cmp(&sign(o.m));
        }
        // Same sign, both non-zero: the side scaled up is the one that overflowed.
        let up_is_self = self.s < o.s;
        let bigger_magnitude_is_self = up_is_self;
        match (self.m > 0, bigger_magnitude_is_self) {
            (true, true) | (false, false) => Ordering::Greater,
            (true, false) | (false, true) => Ordering::Less,
        }
    }

    #[inline(always)]
    pub(crate) fn gt(self, o: Self) -> bool {
        self.cmp(o) == Ordering::Greater
    }

    #[inline(always)]
    pub(crate) fn lt(self, o: Self) -> bool {
        self.cmp(o) == Ordering::Less
    }

    #[inline(always)]
    pub(crate) fn le(self, o: Self) -> bool {
        self.cmp(o) != Ordering::Greater
    }

    #[inline(always)]
    pub(crate) fn ge(self, o: Self) -> bool {
        self.cmp(o) != Ordering::Less
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decimals of every size and scale, with values that sit on or next to each other often.
    fn decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (-(1i128 << 95)..(1i128 << 95), 0u32..=28)
                .prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s)),
            (-100_000i128..100_000, 0u32..=8)
                .prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s)),
            (-3i128..=3, 0u32..=28).prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s)),
            (0u32..=28).prop_map(|s| Decimal::from_i128_with_scale((1i128 << 96) - 1, s)),
            Just(Decimal::ZERO),
            Just(-Decimal::ZERO),
            Just(Decimal::from(2_500)),
            Just(Decimal::new(25_000_000, 4)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// Comparisons answer as `Decimal`'s; sums, differences and products, when given,
        /// are `Decimal`'s results (in value), and the values around them order as theirs.
        #[test]
        fn exact_operations_agree_with_decimal(a in decimal(), b in decimal()) {
            let (x, y) = (Exact::of(a), Exact::of(b));
            prop_assert_eq!(x.cmp(y), a.cmp(&b), "{} vs {}", a, b);
            prop_assert_eq!(x.neg().cmp(y), (-a).cmp(&b));
            let same = |e: Exact, d: Decimal| e.cmp(Exact::of(d)) == Ordering::Equal;
            if let Some(sum) = x.add(y) {
                let d = a.checked_add(b);
                prop_assert!(d.is_some_and(|d| same(sum, d)), "{} + {}", a, b);
            }
            if let Some(diff) = x.add(y.neg()) {
                let d = a.checked_sub(b);
                prop_assert!(d.is_some_and(|d| same(diff, d)), "{} - {}", a, b);
            }
            if let Some(p) = x.mul(y) {
                let d = a.checked_mul(b);
                prop_assert!(d.is_some_and(|d| same(p, d)), "{} * {}", a, b);
            }
        }
    }

    #[test]
    fn small_operands_stay_on_the_exact_path() {
        let q = Exact::of(Decimal::new(83, 3));
        let p = Exact::of(Decimal::new(3_012_345, 2));
        let n = q.mul(p);
        assert_eq!(n.map(|n| (n.m, n.s)), Some((250_024_635, 5)));
        let sum = q.add(p);
        assert_eq!(sum.map(|n| (n.m, n.s)), Some((30_123_533, 3)));
        assert_eq!(q.neg().add(Exact::ZERO).map(|n| n.m), Some(-83));
        assert!(Exact::of(Decimal::from(2_500)).gt(Exact::of(Decimal::new(2_499_999, 3))));
    }
}
