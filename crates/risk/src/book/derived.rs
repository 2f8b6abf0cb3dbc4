//! What the book derives from its positions, marks and closes for the guard's checks (kept by
//! the transitions, never saved): each position's terms at its mark, their sums, the last
//! closes by symbol key and the drawdown test's last answer.

use std::collections::BTreeMap;

use qt_events::PositionSide;
use rust_decimal::Decimal;

use super::types::BookPosition;

/// One position's figures at its mark, as [`RiskBook::unrealized`] and [`RiskBook::exposure`]
/// define them: computed by the transition that changed the position or its mark, with the
/// same operations in the same order, so the same `Decimal`s to the bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct PositionTerms {
    pub(super) side: PositionSide,
    pub(super) qty: Decimal,
    pub(super) entry_price: Decimal,
    /// `(mark − entry) × qty × sign` ([`BookPosition::unrealized`] at the mark).
    pub(super) unrealized: Decimal,
    /// `qty × mark`.
    pub(super) notional: Decimal,
}

impl PositionTerms {
    pub(super) fn new(p: &BookPosition, mark: Decimal) -> Self {
        Self {
            side: p.side,
            qty: p.qty,
            entry_price: p.entry_price,
            unrealized: p.unrealized(mark),
            notional: p.qty * mark,
        }
    }

    /// The figures at a new mark.
    pub(super) fn at(&mut self, mark: Decimal) {
        let p = BookPosition {
            side: self.side,
            qty: self.qty,
            entry_price: self.entry_price,
        };
        *self = Self::new(&p, mark);
    }
}

/// The drawdown test's last answer and its inputs (see `RiskGuard::observe`): asked again with
/// the same inputs (compared bit for bit), the guard reuses it instead of multiplying again.
/// The inputs are kept as their 16 serialized bytes, taken once when the answer is kept, so a
/// question serializes only its own three inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DrawdownMemo {
    peak: u128,
    equity: u128,
    limit: u128,
    reached: bool,
}

/// A `Decimal`'s 16 bytes (mantissa, scale and sign) as one integer: equal exactly when the
/// two are the same to the bit.
#[inline(always)]
fn bits(d: Decimal) -> u128 {
    u128::from_ne_bytes(d.serialize())
}

impl DrawdownMemo {
    pub(crate) fn new(peak: Decimal, equity: Decimal, limit: Decimal, reached: bool) -> Self {
        Self {
            peak: bits(peak),
            equity: bits(equity),
            limit: bits(limit),
            reached,
        }
    }

    #[inline]
    pub(crate) fn answers(&self, peak: Decimal, equity: Decimal, limit: Decimal) -> Option<bool> {
        // Bit for bit: the 16 bytes of each (measured cheaper than comparing the mantissa,
        // scale and sign apart: 122M against 202M instructions in the drawdown test on the
        // throughput bench's no-breaker run, callgrind).
        (self.equity == bits(equity) && self.peak == bits(peak) && self.limit == bits(limit))
            .then_some(self.reached)
    }
}

/// A symbol's first 15 bytes (zero-padded, big-endian) and its length, as one integer: for
/// names of at most 15 bytes (every exchange symbol), two keys compare as the names do (a
/// name's zero padding ties only with NUL bytes of a longer name it is a prefix of, and the
/// length then orders them) and are equal exactly when the names are; longer names fall back
/// to comparing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SymbolKey(u128);

impl SymbolKey {
    pub(crate) fn of(symbol: &str) -> Self {
        let b = symbol.as_bytes();
        let mut bytes = [0u8; 16];
        let n = b.len().min(15);
        bytes[..n].copy_from_slice(&b[..n]);
        bytes[15] = u8::try_from(b.len()).unwrap_or(u8::MAX);
        Self(u128::from_be_bytes(bytes))
    }

    /// Whether the key alone stands for the name.
    pub(crate) fn exact(symbol: &str) -> bool {
        symbol.len() <= 15
    }
}

/// The positions' terms by symbol, sorted by symbol as the positions' map is (a short list:
/// cheaper to walk and to search than a map of a dozen symbols; searched by [`SymbolKey`]).
#[derive(Debug, Clone)]
pub(super) struct Terms {
    pub(super) items: Vec<(SymbolKey, String, PositionTerms)>,
    /// Every name ever listed is one its key stands for (see [`SymbolKey::exact`]).
    pub(super) keyed: bool,
}

impl Default for Terms {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            keyed: true,
        }
    }
}

impl Terms {
    /// The list of these terms, sorted by symbol.
    pub(super) fn from_sorted(items: Vec<(SymbolKey, String, PositionTerms)>) -> Self {
        let keyed = items.iter().all(|(_, k, _)| SymbolKey::exact(k));
        Self { items, keyed }
    }

    pub(super) fn find(&self, symbol: &str) -> Result<usize, usize> {
        if self.keyed && SymbolKey::exact(symbol) {
            let key = SymbolKey::of(symbol);
            self.items.binary_search_by(|(k, _, _)| k.cmp(&key))
        } else {
            self.items
                .binary_search_by(|(_, k, _)| k.as_str().cmp(symbol))
        }
    }

    pub(super) fn get(&self, symbol: &str) -> Option<&PositionTerms> {
        self.find(symbol).ok().map(|i| &self.items[i].2)
    }

    pub(super) fn get_mut(&mut self, symbol: &str) -> Option<&mut PositionTerms> {
        self.find(symbol).ok().map(|i| &mut self.items[i].2)
    }

    pub(super) fn set(&mut self, symbol: &str, t: PositionTerms) {
        match self.find(symbol) {
            Ok(i) => self.items[i].2 = t,
            Err(i) => {
                self.keyed &= SymbolKey::exact(symbol);
                self.items
                    .insert(i, (SymbolKey::of(symbol), symbol.to_owned(), t));
            }
        }
    }

    pub(super) fn remove(&mut self, symbol: &str) {
        if let Ok(i) = self.find(symbol) {
            self.items.remove(i);
        }
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &PositionTerms> {
        self.items.iter().map(|(_, _, t)| t)
    }
}

/// What the book derives from its own fields for the guard's checks, kept by the transitions.
/// Never serialized, and never part of the book's equality: it is a function of the rest.
#[derive(Debug, Clone)]
pub(super) struct Derived {
    /// False for a book just loaded: the figures are then computed from the positions until the
    /// first transition rebuilds them.
    pub(super) fresh: bool,
    /// One entry per position, under the same keys (so iterated in the same order).
    pub(super) terms: Terms,
    /// The terms summed in that order, as [`RiskBook::unrealized`] and the positions' part of
    /// [`RiskBook::exposure`] sum them: redone whenever a term changes, except after a price
    /// update, which only marks them stale (a backtest moves many marks between two reads).
    pub(super) sums: PositionSums,
    /// The sums are behind the terms: reads sum the terms until [`RiskBook::settle`].
    pub(super) sums_stale: bool,
    pub(super) drawdown: Option<DrawdownMemo>,
    /// `last_closed_ms` by symbol key, kept with it by the transitions.
    pub(super) closes: Closes,
}

/// A copy of the last close of each symbol, searched by [`SymbolKey`].
#[derive(Debug, Clone)]
pub(super) struct Closes {
    pub(super) items: Vec<(SymbolKey, i64)>,
    /// Every name ever added is one its key stands for.
    pub(super) keyed: bool,
    /// The latest close ever set (at least every close listed).
    pub(super) latest: Option<i64>,
}

impl Default for Closes {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            keyed: true,
            latest: None,
        }
    }
}

impl Closes {
    pub(super) fn of(map: &BTreeMap<String, i64>) -> Self {
        let mut c = Self::default();
        for (sym, t) in map {
            c.set(sym, *t);
        }
        c
    }

    pub(super) fn set(&mut self, symbol: &str, t: i64) {
        self.keyed &= SymbolKey::exact(symbol);
        self.latest = Some(self.latest.map_or(t, |l| l.max(t)));
        let key = SymbolKey::of(symbol);
        match self.items.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.items[i].1 = t,
            Err(i) => self.items.insert(i, (key, t)),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PositionSums {
    pub(super) unrealized: Decimal,
    pub(super) long: Decimal,
    pub(super) short: Decimal,
}

impl PositionSums {
    pub(super) fn of(terms: &Terms) -> Self {
        let mut s = Self::default();
        for t in terms.values() {
            s.unrealized += t.unrealized;
            match t.side {
                PositionSide::Long => s.long += t.notional,
                PositionSide::Short => s.short += t.notional,
            }
        }
        s
    }
}

impl Default for Derived {
    /// The figures of an empty book.
    fn default() -> Self {
        Self {
            fresh: true,
            terms: Terms::default(),
            sums: PositionSums::default(),
            sums_stale: false,
            drawdown: None,
            closes: Closes::default(),
        }
    }
}

impl Derived {
    /// For a loaded book: nothing derived yet.
    pub(super) fn stale() -> Self {
        Self {
            fresh: false,
            ..Self::default()
        }
    }
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn the_drawdown_memo_answers_only_the_same_inputs_to_the_bit() {
        let memo = DrawdownMemo::new(dec!(10000), dec!(9000.5), dec!(0.2), false);
        assert_eq!(
            memo.answers(dec!(10000), dec!(9000.5), dec!(0.2)),
            Some(false)
        );
        // Equal values written otherwise, another value, a zero of the other sign: asked anew.
        assert_eq!(memo.answers(dec!(10000.0), dec!(9000.5), dec!(0.2)), None);
        assert_eq!(memo.answers(dec!(10000), dec!(9000.50), dec!(0.2)), None);
        assert_eq!(memo.answers(dec!(10000), dec!(9000.4), dec!(0.2)), None);
        assert_eq!(memo.answers(dec!(10000), dec!(9000.5), dec!(0.25)), None);
        let zero = DrawdownMemo::new(dec!(10000), Decimal::ZERO, dec!(0.2), false);
        assert_eq!(
            zero.answers(dec!(10000), Decimal::ZERO, dec!(0.2)),
            Some(false)
        );
        assert_eq!(zero.answers(dec!(10000), -Decimal::ZERO, dec!(0.2)), None);
        assert_eq!(memo.answers(dec!(-10000), dec!(9000.5), dec!(0.2)), None);
    }
}
