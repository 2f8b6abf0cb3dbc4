//! The book's value types: positions, orders in flight, fills, exposure, the drawdown's halt
//! and level, and the UTC day.

use qt_events::{PositionSide, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::exact::Exact;

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day number of a timestamp (days since the epoch).
pub fn utc_day(now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS)
}

/// The fall from `peak` to `equity` as a fraction of the peak, never negative (zero for a
/// non-positive peak; a fall out of `Decimal`'s range counts as all of it).
pub(crate) fn fall(peak: Decimal, equity: Decimal) -> Decimal {
    if peak <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    peak.checked_sub(equity)
        .and_then(|f| f.checked_div(peak))
        .unwrap_or(Decimal::ONE)
        .max(Decimal::ZERO)
}

/// An open position of one symbol (one-way mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookPosition {
    pub side: PositionSide,
    /// Always positive.
    pub qty: Decimal,
    /// Average entry price.
    pub entry_price: Decimal,
}

impl BookPosition {
    fn sign(&self) -> Decimal {
        match self.side {
            PositionSide::Long => Decimal::ONE,
            PositionSide::Short => Decimal::NEGATIVE_ONE,
        }
    }

    /// Unrealized PnL at a price.
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        (mark - self.entry_price) * self.qty * self.sign()
    }
}

/// An order accepted by the guard and not yet completely filled or ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub symbol: String,
    pub side: Side,
    /// Quantity not yet filled.
    pub remaining_qty: Decimal,
    /// Price the order was sized with; in-flight opening notional is counted at it.
    pub reference_price: Decimal,
    /// Reductions and closes do not add exposure.
    pub reduce_only: bool,
}

impl InFlight {
    /// Notional this order adds to the book if it fills (zero for reductions).
    pub fn open_notional(&self) -> Decimal {
        if self.reduce_only {
            Decimal::ZERO
        } else {
            self.remaining_qty * self.reference_price
        }
    }
}

/// [`InFlight::open_notional`] exactly (`None` where `Decimal` could round).
pub(super) fn open_notional_exact(f: &InFlight) -> Option<Exact> {
    if f.reduce_only {
        Some(Exact::ZERO)
    } else {
        Exact::of(f.remaining_qty).mul(Exact::of(f.reference_price))
    }
}

/// One execution applied to the book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookFill {
    /// Intent of the order, if the book knows it (a stop triggered on the exchange may not).
    pub intent_id: Option<String>,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    /// Fee paid, in the quote asset (positive is a cost).
    pub fee: Decimal,
}

/// What a fill did to the position, for callers that track trades.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FillOutcome {
    /// PnL realized by the reducing part of the fill, before the fee.
    pub realized_pnl: Decimal,
    /// Quantity that reduced or closed an existing position.
    pub closed_qty: Decimal,
    /// True when the fill left the symbol flat (or flipped it).
    pub position_closed: bool,
}

/// Exposure figures of the book at its marks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Exposure {
    pub long: Decimal,
    pub short: Decimal,
}

impl Exposure {
    pub fn gross(&self) -> Decimal {
        self.long + self.short
    }
}

/// The drawdown breaker's trip, kept until an operator resumes (see
/// [`RiskBook::resume_after_drawdown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawdownHalt {
    /// When it tripped (ms).
    pub since_ms: i64,
    /// The equity peak the drawdown was measured from.
    pub peak: Decimal,
    /// The equity that tripped it.
    pub equity: Decimal,
}

/// How far the equity has fallen from its peak, in steps of the drawdown limit: what the
/// drawdown alerts report (see `RiskGuard::drawdown_crossing`). Ordered from calm to tripped.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DrawdownLevel {
    /// Below half of the limit (or the equity is not known).
    #[default]
    Clear,
    /// At or past 50% of the limit.
    Half,
    /// At or past 80% of the limit.
    Near,
    /// At or past the limit: the breaker has tripped.
    Tripped,
}

impl DrawdownLevel {
    /// A short name (`half`, `near`, …) for logs and alert rules.
    pub fn as_str(self) -> &'static str {
        match self {
            DrawdownLevel::Clear => "clear",
            DrawdownLevel::Half => "half",
            DrawdownLevel::Near => "near",
            DrawdownLevel::Tripped => "tripped",
        }
    }
}
