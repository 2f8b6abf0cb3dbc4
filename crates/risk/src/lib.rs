//! `qt-risk` holds the risk rules of Quantum Trader: the configured [`RiskLimits`], the
//! serializable [`RiskBook`] (positions, orders in flight, marks, daily PnL, cooldowns, the
//! loss pause, kill switch, close-only mode, equity and its peak, the drawdown breaker), the
//! [`RiskGuard`] that answers every intent
//! with [`Decision::Allow`] or a refusal carrying a `qt_events::RejectReason`, the exchange's
//! [`SymbolFilters`] and position [`Sizing`].
//!
//! Book transitions: [`RiskGuard::admit`] (check, then record the order in flight),
//! [`RiskBook::on_fill`], [`RiskBook::on_ended`] (cancel or reject), [`RiskBook::on_price`],
//! [`RiskGuard::observe`] (day rollover at 00:00 UTC, loss pause, equity peak, the drawdown
//! breaker's trip) and [`RiskBook::resume_after_drawdown`] (an operator's resume, the only way
//! the breaker's halt ends). [`RiskGuard::drawdown_crossing`] tells the caller, once per
//! crossing, when the drawdown reaches 50% or 80% of its limit or trips it, so that it can raise
//! an alert. Exits, reductions, protective orders and cancels are always allowed, even with the
//! kill switch on or the breaker tripped.
//!
//! It is a pure library: it must never know about Redis, HTTP, SQL, the exchange or an async
//! runtime, and never read the system clock — time comes in as `now_ms`. Execution and the
//! backtester run exactly this code.

mod book;
mod exact;
mod filters;
mod guard;
mod limits;
mod sizing;

pub use book::{
    BookFill, BookPosition, DAY_MS, DrawdownHalt, DrawdownLevel, Exposure, FillOutcome, InFlight,
    RiskBook, utc_day,
};
pub use filters::{FilterError, PriceRounding, SymbolFilters};
pub use guard::{Decision, DrawdownCrossing, IntentKind, RiskGuard, RiskIntent, reason_code};
pub use limits::{LimitsError, RiskLimits};
pub use sizing::{Edge, Sizing, SizingContext, SizingError};
