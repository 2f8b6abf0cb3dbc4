//! The drawdown breaker's test and levels, and the alert of a crossing.

use qt_events::RejectReason;
use rust_decimal::Decimal;

use super::RiskGuard;
use crate::book::{DrawdownHalt, DrawdownLevel, RiskBook, fall};

/// The drawdown reached a new level (see [`RiskGuard::drawdown_crossing`]): what an alert says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawdownCrossing {
    /// The level reached: `Half` (50% of the limit), `Near` (80%) or `Tripped`.
    pub level: DrawdownLevel,
    /// The fall from the peak as a fraction of it (0.05 is 5%).
    pub drawdown: Decimal,
    /// The limit, `RiskLimits::max_drawdown_pct`.
    pub limit: Decimal,
    /// The equity peak it is measured from.
    pub peak: Decimal,
    /// The equity now.
    pub equity: Decimal,
    /// The trip, when the level is `Tripped`.
    pub halt: Option<DrawdownHalt>,
}

impl RiskGuard {
    /// Why no entry can pass now, whatever its symbol, side or size: the kill switch,
    /// close-only mode or the drawdown breaker (tripped, or past its limit before an `observe`
    /// recorded the trip), tested in this order, as every entry is. A caller may ask before it
    /// sizes an entry.
    pub fn entries_halted(&self, book: &RiskBook) -> Option<RejectReason> {
        if book.kill_switch {
            Some(RejectReason::KillSwitch)
        } else if book.close_only {
            Some(RejectReason::CloseOnly)
        } else if book.drawdown_halt.is_some() || self.limit_reached(book) {
            Some(RejectReason::DrawdownBreaker)
        } else {
            None
        }
    }

    /// [`RiskGuard::entries_halted`] right after an `observe` at the same time with nothing
    /// changed since: `observe` either found the limit reached and set the halt, or kept the
    /// answer that it is not (or knows no equity, so no drawdown), so the halt alone answers.
    pub(super) fn entries_halted_observed(&self, book: &RiskBook) -> Option<RejectReason> {
        let halted = if book.kill_switch {
            Some(RejectReason::KillSwitch)
        } else if book.close_only {
            Some(RejectReason::CloseOnly)
        } else if book.drawdown_halt.is_some() {
            Some(RejectReason::DrawdownBreaker)
        } else {
            None
        };
        debug_assert_eq!(halted, self.entries_halted(book));
        halted
    }

    /// Whether the equity has fallen the drawdown limit from its peak: the answer [`observe`]
    /// kept when the peak, the equity and the limit are still the ones it was computed for (to
    /// the bit), else computed.
    ///
    /// [`observe`]: RiskGuard::observe
    pub(super) fn limit_reached(&self, book: &RiskBook) -> bool {
        if let (Some(peak), Some(equity), Some(memo)) =
            (book.equity_peak, book.equity, book.drawdown_memo())
            && let Some(reached) = memo.answers(peak, equity, self.limits.max_drawdown_pct)
        {
            return reached;
        }
        self.drawdown_at_least(book, Decimal::ONE)
    }

    /// Whether the equity has fallen at least `share` of the drawdown limit from its peak
    /// (`share` 1: the limit itself). False when the equity or a positive peak is unknown.
    fn drawdown_at_least(&self, book: &RiskBook, share: Decimal) -> bool {
        match (book.equity_peak, book.equity) {
            (Some(peak), Some(equity)) if peak > Decimal::ZERO => {
                let threshold = (share * self.limits.max_drawdown_pct).checked_mul(peak);
                match (peak.checked_sub(equity), threshold) {
                    (Some(fall), Some(threshold)) => fall >= threshold,
                    // Out of Decimal's range: only an absurd fall (or peak) gets here.
                    _ => equity < peak,
                }
            }
            _ => false,
        }
    }

    /// The drawdown level of the book now: `Tripped` while the breaker is tripped (whatever
    /// the equity does meanwhile), else from the fall of the equity from its peak.
    pub fn drawdown_level(&self, book: &RiskBook) -> DrawdownLevel {
        if book.drawdown_halt.is_some() || self.limit_reached(book) {
            DrawdownLevel::Tripped
        } else if self.drawdown_at_least(book, Decimal::new(8, 1)) {
            DrawdownLevel::Near
        } else if self.drawdown_at_least(book, Decimal::new(5, 1)) {
            DrawdownLevel::Half
        } else {
            DrawdownLevel::Clear
        }
    }

    /// What a drawdown alert should say, once per crossing: `Some` when the drawdown reached a
    /// level above the one last reported (only the highest when it passed several at once),
    /// which becomes the reported one. When the drawdown falls back below the reported level,
    /// that level is re-armed (without an alert), so reaching it again reports it again. Call
    /// it after [`RiskGuard::observe`]; it changes only `book.drawdown_alerted`, so a caller
    /// that publishes nothing need not call it. Pure: the caller raises the alert.
    pub fn drawdown_crossing(&self, book: &mut RiskBook) -> Option<DrawdownCrossing> {
        let level = self.drawdown_level(book);
        let reported = book.drawdown_alerted;
        book.drawdown_alerted = level;
        if level <= reported {
            return None;
        }
        let (peak, equity) = match book.drawdown_halt {
            Some(h) if level == DrawdownLevel::Tripped => (h.peak, h.equity),
            _ => (
                book.equity_peak.unwrap_or_default(),
                book.equity.unwrap_or_default(),
            ),
        };
        Some(DrawdownCrossing {
            level,
            drawdown: fall(peak, equity),
            limit: self.limits.max_drawdown_pct,
            peak,
            equity,
            halt: book.drawdown_halt,
        })
    }
}
