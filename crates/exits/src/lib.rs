//! `qt-exits` builds and runs the exit plan of every position: a take-profit ladder whose
//! distances adapt to realized volatility (interpolated between a calm and a volatile ladder and
//! scaled by the symbol's learned [`SymbolProfile`]), legs of 30 / 30 / 40% by default, a stop for
//! the rest, the stop moved to break-even after the first leg, a trailing stop with activation and
//! callback, a time stop, and legs resized when an entry fills only partly. Profiles learn from
//! closed trades (excursions and legs hit) within bounds.
//!
//! It is a pure library: it decides levels and actions and never places an order, never knows
//! about Redis, HTTP, SQL or an async runtime, and never reads the clock — time comes in as
//! `now_ms`. exit-brain and the backtester run exactly this code.

mod config;
mod plan;
mod profile;
mod simulate;

pub use config::ExitConfig;
pub use plan::{EntrySpec, ExitAction, ExitPlan, Leg, StopMove, Trailing};
pub use profile::{SymbolProfile, TradeOutcome};
pub use simulate::{SimulatedTrade, simulate};

use rust_decimal::Decimal;

/// Why a plan could not be built or updated. None is retryable: the inputs are wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExitError {
    #[error("invalid exit configuration: {0}")]
    InvalidConfig(String),
    #[error("entry price {price} and quantity {qty} must be positive")]
    InvalidEntry { price: Decimal, qty: Decimal },
    #[error("the plan has no leg named {0:?}")]
    UnknownLeg(String),
}

impl ExitError {
    pub fn is_retryable(&self) -> bool {
        false
    }
}
