//! [`RiskBook`]: the state the risk guard reads — positions, orders in flight, marks, daily PnL,
//! cooldowns, the loss pause, the kill switch, close-only mode, the equity with its peak and the
//! drawdown breaker. It is serializable so that execution can persist it (fields added later
//! default, so older saved books still load), and it changes only through its transitions.
//!
//! The transitions also keep what the guard reads on every check from the positions and marks
//! (each position's unrealized PnL and notional at its mark) up to date, so
//! that a check does not look every mark up and multiply again. Those figures are never saved:
//! a loaded book computes them from its positions (as they are defined) until its first
//! transition rebuilds them, so saved books load and save exactly as before.

mod derived;
mod types;

use std::collections::{BTreeMap, BTreeSet};

use qt_events::{PositionSide, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::exact::Exact;
use derived::{Closes, Derived, PositionSums, PositionTerms, Terms};
pub(crate) use derived::{DrawdownMemo, SymbolKey};
pub(crate) use types::fall;
use types::open_notional_exact;
pub use types::{
    BookFill, BookPosition, DAY_MS, DrawdownHalt, DrawdownLevel, Exposure, FillOutcome, InFlight,
    utc_day,
};

/// The risk state. See the crate documentation for the transitions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RiskBook {
    /// Open positions by symbol (read with [`RiskBook::positions`]).
    positions: BTreeMap<String, BookPosition>,
    /// Orders in flight by intent id (read with [`RiskBook::in_flight`]).
    in_flight: BTreeMap<String, InFlight>,
    /// Last known price of each symbol (read with [`RiskBook::marks`]).
    marks: BTreeMap<String, Decimal>,
    /// UTC day (days since the epoch) that `realized_today` belongs to.
    pub day: i64,
    /// Realized PnL since 00:00 UTC of `day`, net of fees.
    pub realized_today: Decimal,
    /// When each symbol's last position closed (ms), for cooldowns (read with
    /// [`RiskBook::last_closed_ms`]).
    last_closed_ms: BTreeMap<String, i64>,
    /// New positions are refused until then (ms) after a daily-loss breach.
    pub paused_until_ms: Option<i64>,
    /// Kill switch: only exits and reductions pass.
    pub kill_switch: bool,
    /// Close-only mode: only exits and reductions pass.
    pub close_only: bool,
    /// Account equity in the quote asset, when known (from portfolio snapshots).
    pub equity: Option<Decimal>,
    /// Highest equity seen since the start or the last resume; the drawdown is measured from
    /// it. Raised by `RiskGuard::observe`.
    #[serde(default)]
    pub equity_peak: Option<Decimal>,
    /// Set when the drawdown breaker tripped: only exits and reductions pass until
    /// [`RiskBook::resume_after_drawdown`].
    #[serde(default)]
    pub drawdown_halt: Option<DrawdownHalt>,
    /// The drawdown level the last alert reported (see `RiskGuard::drawdown_crossing`): a level
    /// is reported once each time the drawdown reaches it.
    #[serde(default)]
    pub drawdown_alerted: DrawdownLevel,
    /// Kept by the transitions; rebuilt, never saved.
    #[serde(skip, default = "Derived::stale")]
    derived: Derived,
}

impl RiskBook {
    /// An empty book on the UTC day of `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            day: utc_day(now_ms),
            ..Self::default()
        }
    }

    /// Open positions by symbol.
    pub fn positions(&self) -> &BTreeMap<String, BookPosition> {
        &self.positions
    }

    /// Orders in flight by intent id.
    pub fn in_flight(&self) -> &BTreeMap<String, InFlight> {
        &self.in_flight
    }

    /// Last known price of each symbol.
    pub fn marks(&self) -> &BTreeMap<String, Decimal> {
        &self.marks
    }

    /// When each symbol's last position closed (ms), for cooldowns.
    pub fn last_closed_ms(&self) -> &BTreeMap<String, i64> {
        &self.last_closed_ms
    }

    /// Whether `symbol` is cooling down at `now_ms`: its last close plus `cooldown_ms` is
    /// later (saturating). Nothing cools when even the latest close of any symbol is past it.
    pub(crate) fn cooling(&self, symbol: &str, now_ms: i64, cooldown_ms: i64) -> bool {
        let past = |t: i64| now_ms >= t.saturating_add(cooldown_ms);
        if self.derived.fresh && self.derived.closes.latest.is_none_or(past) {
            return false;
        }
        self.last_closed(symbol).is_some_and(|t| !past(t))
    }

    /// When `symbol`'s last position closed (ms): [`RiskBook::last_closed_ms`]'s entry, found
    /// by the kept copy's symbol key where it can be.
    pub(crate) fn last_closed(&self, symbol: &str) -> Option<i64> {
        let closes = &self.derived.closes;
        if self.derived.fresh && closes.keyed && SymbolKey::exact(symbol) {
            let key = SymbolKey::of(symbol);
            let at = closes.items.binary_search_by(|(k, _)| k.cmp(&key)).ok()?;
            Some(closes.items[at].1)
        } else {
            self.last_closed_ms.get(symbol).copied()
        }
    }

    /// The derived figures, when they are up to date.
    fn terms(&self) -> Option<&Terms> {
        self.derived.fresh.then_some(&self.derived.terms)
    }

    /// Their sums, when the terms are up to date (summed now if the kept sums are stale).
    fn sums(&self) -> Option<PositionSums> {
        let d = &self.derived;
        match (d.fresh, d.sums_stale) {
            (false, _) => None,
            (true, false) => Some(d.sums),
            (true, true) => Some(PositionSums::of(&d.terms)),
        }
    }

    /// Brings the kept sums up to date after price updates (which leave them stale), so that
    /// the reads that follow take them as they are instead of summing the terms each time.
    /// Changes no figure: the same terms summed in the same order. The guard's `observe` and
    /// `admit` do it; a caller reading the book many times after many price updates may too.
    pub fn settle(&mut self) {
        if self.derived.sums_stale {
            self.derived.sums = PositionSums::of(&self.derived.terms);
            self.derived.sums_stale = false;
        }
    }

    /// Brings the derived figures up to date (a loaded book's first transition rebuilds them).
    fn freshen(&mut self) {
        if !self.derived.fresh {
            // The positions come in key order, so the list is sorted.
            self.derived.terms = Terms::from_sorted(
                self.positions
                    .iter()
                    .map(|(sym, p)| {
                        let mark = self.marks.get(sym).copied().unwrap_or(p.entry_price);
                        (SymbolKey::of(sym), sym.clone(), PositionTerms::new(p, mark))
                    })
                    .collect(),
            );
            self.derived.sums = PositionSums::of(&self.derived.terms);
            self.derived.sums_stale = false;
            self.derived.closes = Closes::of(&self.last_closed_ms);
            self.derived.fresh = true;
        }
    }

    /// Recomputes one symbol's figures after its position or mark changed.
    fn refresh(&mut self, symbol: &str) {
        self.freshen();
        match self.positions.get(symbol) {
            Some(p) => {
                let mark = self.marks.get(symbol).copied().unwrap_or(p.entry_price);
                self.derived.terms.set(symbol, PositionTerms::new(p, mark));
            }
            None => {
                self.derived.terms.remove(symbol);
            }
        }
        self.derived.sums = PositionSums::of(&self.derived.terms);
        self.derived.sums_stale = false;
    }

    /// The drawdown test's last answer (see `RiskGuard::observe`).
    pub(crate) fn drawdown_memo(&self) -> Option<&DrawdownMemo> {
        self.derived.drawdown.as_ref()
    }

    pub(crate) fn set_drawdown_memo(&mut self, memo: DrawdownMemo) {
        self.derived.drawdown = Some(memo);
    }

    /// Transition: reconciliation found the exchange holding `position` in `symbol` (replacing
    /// whatever the book held there).
    pub fn set_position(&mut self, symbol: &str, position: BookPosition) {
        self.positions.insert(symbol.to_owned(), position);
        self.refresh(symbol);
    }

    /// Transition: reconciliation found no position in `symbol` on the exchange. Returns the one
    /// the book held.
    pub fn remove_position(&mut self, symbol: &str) -> Option<BookPosition> {
        let p = self.positions.remove(symbol);
        self.refresh(symbol);
        p
    }

    /// The price a symbol is valued at: its mark, else its entry price.
    pub fn mark(&self, symbol: &str) -> Option<Decimal> {
        self.marks
            .get(symbol)
            .copied()
            .or_else(|| self.positions.get(symbol).map(|p| p.entry_price))
    }

    /// Notional of a symbol: |position| at mark plus opening orders in flight.
    pub fn symbol_notional(&self, symbol: &str) -> Decimal {
        self.symbol_notional_with(symbol, self.position_at_mark(symbol))
    }

    /// A symbol's position: its side and its notional at the mark (one look-up, for the guard).
    pub(crate) fn position_at_mark(&self, symbol: &str) -> Option<(PositionSide, Decimal)> {
        match self.terms() {
            Some(terms) => terms.get(symbol).map(|t| (t.side, t.notional)),
            None => self
                .positions
                .get(symbol)
                .map(|p| (p.side, p.qty * self.mark(symbol).unwrap_or(p.entry_price))),
        }
    }

    /// [`RiskBook::symbol_notional`] given the symbol's [`RiskBook::position_at_mark`].
    pub(crate) fn symbol_notional_with(
        &self,
        symbol: &str,
        position: Option<(PositionSide, Decimal)>,
    ) -> Decimal {
        let pos = position.map(|(_, n)| n).unwrap_or_default();
        let flight: Decimal = self
            .in_flight
            .values()
            .filter(|f| f.symbol == symbol)
            .map(InFlight::open_notional)
            .sum();
        pos + flight
    }

    /// Long and short exposure: positions at mark plus opening orders in flight.
    pub fn exposure(&self) -> Exposure {
        let mut e = Exposure::default();
        match self.sums() {
            Some(sums) => {
                e.long = sums.long;
                e.short = sums.short;
            }
            None => {
                for (sym, p) in &self.positions {
                    let n = p.qty * self.mark(sym).unwrap_or(p.entry_price);
                    match p.side {
                        PositionSide::Long => e.long += n,
                        PositionSide::Short => e.short += n,
                    }
                }
            }
        }
        for f in self.in_flight.values() {
            match f.side {
                Side::Buy => e.long += f.open_notional(),
                Side::Sell => e.short += f.open_notional(),
            }
        }
        e
    }

    /// Symbols that hold a position or an opening order in flight.
    pub fn active_symbols(&self) -> BTreeSet<&str> {
        let mut s: BTreeSet<&str> = self.positions.keys().map(String::as_str).collect();
        s.extend(
            self.in_flight
                .values()
                .filter(|f| !f.reduce_only)
                .map(|f| f.symbol.as_str()),
        );
        s
    }

    /// How many symbols hold a position or an opening order in flight, and whether `symbol` is
    /// one of them — the same as [`RiskBook::active_symbols`] without allocating.
    pub fn active_count(&self, symbol: &str) -> (usize, bool) {
        self.active_count_with(symbol, self.positions.contains_key(symbol))
    }

    /// [`RiskBook::active_count`] given whether `symbol` holds a position.
    pub(crate) fn active_count_with(&self, symbol: &str, holds: bool) -> (usize, bool) {
        let opening = || self.in_flight.values().filter(|f| !f.reduce_only);
        let mut n = self.positions.len();
        for (i, f) in opening().enumerate() {
            let counted = self.positions.contains_key(&f.symbol)
                || opening().take(i).any(|g| g.symbol == f.symbol);
            n += usize::from(!counted);
        }
        let contains = holds || opening().any(|f| f.symbol == symbol);
        (n, contains)
    }

    /// [`RiskBook::daily_pnl`] as an exact value, when `Decimal`'s sum is exact (else `None`).
    pub(crate) fn daily_pnl_exact(&self, now_ms: i64) -> Option<Exact> {
        let realized = if utc_day(now_ms) == self.day {
            Exact::of(self.realized_today)
        } else {
            Exact::ZERO
        };
        realized.add(Exact::of(self.unrealized()))
    }

    /// The opening notional in flight for `symbol` as [`RiskBook::symbol_notional_with`] sums
    /// it, exactly (`None` where `Decimal` could round).
    pub(crate) fn in_flight_notional_exact(&self, symbol: &str) -> Option<Exact> {
        let mut sum = Exact::ZERO;
        for f in self.in_flight.values().filter(|f| f.symbol == symbol) {
            sum = sum.add(open_notional_exact(f)?)?;
        }
        Some(sum)
    }

    /// [`RiskBook::exposure`] (long, short) as exact values, summed in its order (`None` where
    /// `Decimal` could round).
    pub(crate) fn exposure_exact(&self) -> Option<(Exact, Exact)> {
        let (mut long, mut short) = match self.sums() {
            Some(sums) => (Exact::of(sums.long), Exact::of(sums.short)),
            None => {
                let e = self.exposure();
                return Some((Exact::of(e.long), Exact::of(e.short)));
            }
        };
        for f in self.in_flight.values() {
            let n = open_notional_exact(f)?;
            match f.side {
                Side::Buy => long = long.add(n)?,
                Side::Sell => short = short.add(n)?,
            }
        }
        Some((long, short))
    }

    /// Unrealized PnL of all positions at their marks.
    pub fn unrealized(&self) -> Decimal {
        match self.sums() {
            Some(sums) => sums.unrealized,
            None => self
                .positions
                .iter()
                .map(|(sym, p)| p.unrealized(self.mark(sym).unwrap_or(p.entry_price)))
                .sum(),
        }
    }

    /// A copy of the book that computes every figure from its positions and marks, by their
    /// definition, as a book just loaded does until its first transition: what the figures the
    /// transitions keep must always equal, to the bit (the property tests compare them).
    pub fn from_scratch(&self) -> Self {
        Self {
            derived: Derived::stale(),
            ..self.clone()
        }
    }

    /// Realized today (zero if `now_ms` is on a later day than the book's) plus unrealized.
    pub fn daily_pnl(&self, now_ms: i64) -> Decimal {
        let realized = if utc_day(now_ms) == self.day {
            self.realized_today
        } else {
            Decimal::ZERO
        };
        realized + self.unrealized()
    }

    /// The fall of the equity from its peak as a fraction of the peak (0.1 is 10%), when both
    /// are known and the peak is positive. For display: the guard compares without dividing.
    pub fn drawdown(&self) -> Option<Decimal> {
        let (peak, equity) = (self.equity_peak?, self.equity?);
        (peak > Decimal::ZERO).then(|| fall(peak, equity))
    }

    /// Transition: an operator resumes entries after the drawdown breaker tripped. Clears the
    /// halt, starts the peak again from the current equity (else the breaker would trip again
    /// at once) and re-arms the alerts. The only transition that clears the halt; returns it,
    /// or `None` (and changes nothing) when the breaker had not tripped.
    pub fn resume_after_drawdown(&mut self) -> Option<DrawdownHalt> {
        let halt = self.drawdown_halt.take()?;
        self.equity_peak = self.equity;
        self.drawdown_alerted = DrawdownLevel::Clear;
        Some(halt)
    }

    /// Day rollover at 00:00 UTC: realized PnL starts again from zero.
    pub fn roll_day(&mut self, now_ms: i64) {
        let day = utc_day(now_ms);
        if day != self.day {
            self.day = day;
            self.realized_today = Decimal::ZERO;
        }
    }

    /// Transition: the guard allowed an intent and it is now in flight.
    pub fn on_accepted(&mut self, intent_id: &str, order: InFlight) {
        self.in_flight.insert(intent_id.to_owned(), order);
    }

    /// Transition: an order ended (cancelled, expired, rejected) without further fills.
    pub fn on_ended(&mut self, intent_id: &str) {
        self.in_flight.remove(intent_id);
    }

    /// Transition: a price update.
    pub fn on_price(&mut self, symbol: &str, price: Decimal) {
        if crate::filters::is_positive(price) {
            // get_mut first: the hot path (every candle of a backtest) must not allocate.
            match self.marks.get_mut(symbol) {
                Some(m) => *m = price,
                None => {
                    self.marks.insert(symbol.to_owned(), price);
                }
            }
            self.freshen();
            if let Some(t) = self.derived.terms.get_mut(symbol) {
                t.at(price);
                self.derived.sums_stale = true;
            }
        }
    }

    /// Transition: an execution. Updates the in-flight order, the position (average entry on
    /// adds, realized PnL on reductions, a flip if a fill goes past flat), today's realized PnL
    /// net of the fee and the symbol's cooldown clock.
    pub fn on_fill(&mut self, fill: &BookFill, now_ms: i64) -> FillOutcome {
        self.roll_day(now_ms);
        if let Some(id) = &fill.intent_id
            && let Some(f) = self.in_flight.get_mut(id)
        {
            f.remaining_qty -= fill.qty;
            if f.remaining_qty <= Decimal::ZERO {
                self.in_flight.remove(id);
            }
        }
        let mut out = FillOutcome::default();
        if fill.qty <= Decimal::ZERO {
            return out;
        }
        let fill_side = match fill.side {
            Side::Buy => PositionSide::Long,
            Side::Sell => PositionSide::Short,
        };
        let mut remaining = fill.qty;
        if let Some(p) = self.positions.get_mut(&fill.symbol) {
            if p.side == fill_side {
                let total = p.qty + remaining;
                p.entry_price = (p.entry_price * p.qty + fill.price * remaining) / total;
                p.qty = total;
                remaining = Decimal::ZERO;
            } else {
                let closed = remaining.min(p.qty);
                let pnl = BookPosition {
                    qty: closed,
                    ..p.clone()
                }
                .unrealized(fill.price);
                out.realized_pnl = pnl;
                out.closed_qty = closed;
                p.qty -= closed;
                remaining -= closed;
                if p.qty <= Decimal::ZERO {
                    self.positions.remove(&fill.symbol);
                    self.last_closed_ms.insert(fill.symbol.clone(), now_ms);
                    self.derived.closes.set(&fill.symbol, now_ms);
                    out.position_closed = true;
                }
            }
        }
        if remaining > Decimal::ZERO {
            self.positions.insert(
                fill.symbol.clone(),
                BookPosition {
                    side: fill_side,
                    qty: remaining,
                    entry_price: fill.price,
                },
            );
        }
        self.realized_today += out.realized_pnl - fill.fee;
        if !self.marks.contains_key(&fill.symbol) {
            self.marks.insert(fill.symbol.clone(), fill.price);
        }
        self.refresh(&fill.symbol);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn fill(side: Side, qty: Decimal, price: Decimal, fee: Decimal) -> BookFill {
        BookFill {
            intent_id: None,
            symbol: "BTCUSDT".into(),
            side,
            qty,
            price,
            fee,
        }
    }

    #[test]
    fn adds_average_the_entry_and_reductions_realize_pnl_net_of_fees() {
        let mut b = RiskBook::new(0);
        b.on_fill(&fill(Side::Buy, dec!(1), dec!(100), dec!(0.1)), 1);
        b.on_fill(&fill(Side::Buy, dec!(1), dec!(110), dec!(0.1)), 2);
        assert_eq!(b.positions["BTCUSDT"].entry_price, dec!(105));
        let out = b.on_fill(&fill(Side::Sell, dec!(0.5), dec!(115), dec!(0.05)), 3);
        assert_eq!(out.realized_pnl, dec!(5)); // (115-105)*0.5
        assert_eq!(b.realized_today, dec!(5) - dec!(0.25));
        assert_eq!(b.positions["BTCUSDT"].qty, dec!(1.5));
    }

    #[test]
    fn a_fill_past_flat_closes_then_flips_and_starts_the_cooldown_clock() {
        let mut b = RiskBook::new(0);
        b.on_fill(&fill(Side::Sell, dec!(2), dec!(100), dec!(0)), 1);
        let out = b.on_fill(&fill(Side::Buy, dec!(3), dec!(90), dec!(0)), 7);
        assert_eq!(out.realized_pnl, dec!(20));
        assert!(out.position_closed);
        assert_eq!(b.last_closed_ms()["BTCUSDT"], 7);
        assert_eq!(b.last_closed("BTCUSDT"), Some(7));
        let p = &b.positions["BTCUSDT"];
        assert_eq!(
            (p.side, p.qty, p.entry_price),
            (PositionSide::Long, dec!(1), dec!(90))
        );
    }

    #[test]
    fn realized_pnl_resets_at_midnight_utc() {
        let mut b = RiskBook::new(DAY_MS - 10);
        b.on_fill(&fill(Side::Buy, dec!(1), dec!(100), dec!(0)), DAY_MS - 5);
        b.on_fill(&fill(Side::Sell, dec!(1), dec!(90), dec!(0)), DAY_MS - 1);
        assert_eq!(b.daily_pnl(DAY_MS - 1), dec!(-10));
        assert_eq!(b.daily_pnl(DAY_MS), dec!(0));
        b.roll_day(DAY_MS);
        assert_eq!((b.day, b.realized_today), (1, dec!(0)));
    }

    #[test]
    fn partial_fills_shrink_the_in_flight_order_until_it_is_gone() {
        let mut b = RiskBook::new(0);
        b.on_accepted(
            "i1",
            InFlight {
                symbol: "BTCUSDT".into(),
                side: Side::Buy,
                remaining_qty: dec!(2),
                reference_price: dec!(100),
                reduce_only: false,
            },
        );
        assert_eq!(b.exposure().long, dec!(200));
        let mut f = fill(Side::Buy, dec!(1), dec!(100), dec!(0));
        f.intent_id = Some("i1".into());
        b.on_fill(&f, 1);
        assert_eq!(b.in_flight["i1"].remaining_qty, dec!(1));
        assert_eq!(b.exposure().long, dec!(200));
        b.on_fill(&f, 2);
        assert!(b.in_flight.is_empty());
        assert_eq!(b.active_symbols().len(), 1);
    }

    proptest::proptest! {
        /// Symbol keys order and match as the names do, for names they stand for.
        #[test]
        fn symbol_keys_compare_as_the_names(a in "[A-Z0-9\\x00]{0,15}", b in "[A-C\\x00]{0,15}") {
            proptest::prop_assert!(SymbolKey::exact(&a) && SymbolKey::exact(&b));
            proptest::prop_assert_eq!(SymbolKey::of(&a).cmp(&SymbolKey::of(&b)), a.cmp(&b));
            let prefix: String = a.chars().take(3).collect();
            proptest::prop_assert_eq!(SymbolKey::of(&prefix).cmp(&SymbolKey::of(&a)), prefix.cmp(&a));
        }
    }

    #[test]
    fn long_names_are_found_by_their_text() {
        let mut b = RiskBook::new(0);
        let long = "A_VERY_LONG_SYMBOL_NAME_USDT";
        for sym in ["BTCUSDT", long, "ETHUSDT"] {
            let mut f = fill(Side::Buy, dec!(1), dec!(100), dec!(0));
            f.symbol = sym.into();
            b.on_fill(&f, 1);
        }
        b.on_price(long, dec!(110));
        assert_eq!(b.symbol_notional(long), dec!(110));
        assert_eq!(b.symbol_notional("BTCUSDT"), dec!(100));
        assert_eq!(b.unrealized(), dec!(10));
    }

    #[test]
    fn book_round_trips_through_json() {
        let mut b = RiskBook::new(0);
        b.on_fill(&fill(Side::Buy, dec!(1), dec!(100), dec!(0)), 1);
        b.kill_switch = true;
        let s = serde_json::to_string(&b).unwrap_or_default();
        let back: RiskBook = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(back, b);
    }
}
