//! `qt-matching`: the one fill model shared by the simulated exchange and the backtester.
//!
//! Given an order, the state of the market (the current candle and the mark price) and a
//! [`FillModel`] (fees, slippage, the share of a candle's volume an order may take), it says what
//! fills, at which price, with which fee; it decides when a conditional order triggers (Binance's
//! rules, trailing stops included) and which of a stop and a target inside one candle counts first
//! (the stop: [`intrabar::first_exit`]). It keeps a one-way [`Position`] with entry price and
//! realized PnL.
//!
//! It must never do I/O, know about HTTP, Redis, tokio or the wall clock, or use `f64` for money:
//! everything is `Decimal` and every function is deterministic.

pub mod fill;
pub mod intrabar;
pub mod position;
pub mod trigger;

pub use fill::{Bar, Fill, FillModel, Liquidity, RestingOrder, TimeInForce};
pub use intrabar::{ExitHit, first_exit};
pub use position::{Position, PositionChange};
pub use qt_events::{Decimal, Side};
pub use trigger::{TrailingStop, TriggerKind, fires, fires_in_bar};

/// Why the model refuses to match an order. None of these is retryable: the same order against
/// the same market state gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// A post-only (GTX) order would take liquidity.
    #[error("post-only order would immediately match")]
    PostOnlyWouldTake,
    /// A fill-or-kill order cannot be filled in full now.
    #[error("fill-or-kill order cannot be filled in full")]
    FillOrKillUnfillable,
    /// Quantity or price is zero or negative, or the candle is malformed.
    #[error("invalid input: {0}")]
    Invalid(&'static str),
}

impl MatchError {
    /// Whether retrying the same call could succeed (never, for a pure model).
    pub fn is_retryable(&self) -> bool {
        false
    }
}
