//! The configured limits the risk guard enforces.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A limit that parses but cannot work. Not retryable: the configuration must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// `max_drawdown_pct` is outside (0, 1].
    #[error(
        "max_drawdown_pct {0} is not a fraction in (0, 1]: 0.10 stops entries at a 10% drawdown, \
         1 only when the equity is gone"
    )]
    MaxDrawdown(Decimal),
}

impl LimitsError {
    /// The name of the offending field of [`RiskLimits`], for messages that name the setting.
    pub fn field(&self) -> &'static str {
        match self {
            LimitsError::MaxDrawdown(_) => "max_drawdown_pct",
        }
    }
}

/// Every limit of the risk guard. Notional is quantity × price in the quote asset (USDT), i.e.
/// margin × leverage: the default $2,500 per trade is $250 of margin at 10×.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RiskLimits {
    /// Largest notional of one opening order (quantity × reference price). Default 2,500.
    pub max_notional_per_trade: Decimal,
    /// Largest notional held in one symbol: position at mark plus opening orders in flight.
    /// Default 2,500 (one full-size position per symbol).
    pub max_symbol_notional: Decimal,
    /// Largest gross exposure: the sum over all symbols of |position| at mark plus opening
    /// orders in flight. Default 20,000 (eight full-size positions).
    pub max_gross_exposure: Decimal,
    /// Most symbols that may hold a position or an opening order in flight at once. Default 8.
    pub max_concurrent_positions: usize,
    /// Largest share of `max_gross_exposure` that one side (long or short) may hold, in (0, 1].
    /// Default 0.6: longs may not exceed 60% of the gross budget, nor may shorts.
    pub max_side_fraction: Decimal,
    /// Highest leverage an opening intent may ask for, and highest ratio of gross exposure to
    /// account equity when the equity is known. Default 10.
    pub max_leverage: u32,
    /// Daily loss (realized since 00:00 UTC, fees included, plus unrealized at mark) at which new
    /// positions stop, as a positive amount. Default 150.
    pub max_daily_loss: Decimal,
    /// Minutes during which new positions stay refused after the daily loss was breached, even
    /// if the loss recovers. Default 60.
    pub loss_pause_minutes: u32,
    /// Minutes after a position of a symbol closes before that symbol may be opened again.
    /// Default 15.
    pub cooldown_minutes: u32,
    /// When true, a symbol without known exchange filters is refused (`EXCHANGE_FILTER`).
    /// Default false: unknown symbols are checked against the limits only.
    pub require_filters: bool,
    /// The drawdown breaker: the largest fall of the account equity from its peak, as a
    /// fraction of the peak in (0, 1] (despite the name, 0.10 means 10%), at which new
    /// positions stop (`DRAWDOWN_BREAKER`) until an operator resumes them; exits are always
    /// allowed. Alerts fire at 50% and 80% of it. Always on: there is no value that disables
    /// it, 1 trips only when the equity is gone. Default 0.10.
    pub max_drawdown_pct: Decimal,
}

impl Default for RiskLimits {
    fn default() -> Self {
        Self {
            max_notional_per_trade: Decimal::from(2_500),
            max_symbol_notional: Decimal::from(2_500),
            max_gross_exposure: Decimal::from(20_000),
            max_concurrent_positions: 8,
            max_side_fraction: Decimal::new(6, 1),
            max_leverage: 10,
            max_daily_loss: Decimal::from(150),
            loss_pause_minutes: 60,
            cooldown_minutes: 15,
            require_filters: false,
            max_drawdown_pct: Decimal::new(10, 2),
        }
    }
}

impl RiskLimits {
    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    /// The first bad limit; [`LimitsError::field`] names it.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let dd = self.max_drawdown_pct;
        if dd <= Decimal::ZERO || dd > Decimal::ONE {
            return Err(LimitsError::MaxDrawdown(dd));
        }
        Ok(())
    }

    /// The most notional one side may hold: `max_side_fraction × max_gross_exposure`.
    pub fn max_side_notional(&self) -> Decimal {
        self.max_side_fraction * self.max_gross_exposure
    }

    /// The cooldown in milliseconds.
    pub fn cooldown_ms(&self) -> i64 {
        i64::from(self.cooldown_minutes) * 60_000
    }

    /// The loss pause in milliseconds.
    pub fn loss_pause_ms(&self) -> i64 {
        i64::from(self.loss_pause_minutes) * 60_000
    }
}
