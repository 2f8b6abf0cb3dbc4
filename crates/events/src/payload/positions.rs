//! Facts about positions, published by execution.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PositionSide, SignalRef};

/// A position was opened by a fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PositionOpened {
    pub position_id: String,
    pub symbol: String,
    pub side: PositionSide,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    pub leverage: u32,
    /// The intent that opened it.
    pub intent_id: String,
    pub opened_at: i64,
    #[serde(default)]
    pub signal: Option<SignalRef>,
}

/// A position's size or entry changed (added to, partly reduced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PositionChanged {
    pub position_id: String,
    pub symbol: String,
    pub side: PositionSide,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    /// Realized PnL so far (before fees).
    pub realized_pnl: Decimal,
    /// Fees paid so far.
    pub fees: Decimal,
    pub ts: i64,
}

/// A position was closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PositionClosed {
    pub position_id: String,
    pub symbol: String,
    pub side: PositionSide,
    /// The largest size the position reached.
    pub max_quantity: Decimal,
    pub entry_price: Decimal,
    /// Quantity-weighted average exit price.
    pub exit_price: Decimal,
    /// Realized PnL before fees.
    pub realized_pnl: Decimal,
    /// All fees of the position's fills.
    pub fees: Decimal,
    /// `realized_pnl - fees`.
    pub net_pnl: Decimal,
    pub opened_at: i64,
    pub closed_at: i64,
    /// What closed it: `take_profit`, `stop`, `trailing`, `manual`, `close_all`, `liquidation`, …
    pub reason: String,
    #[serde(default)]
    pub signal: Option<SignalRef>,
}

/// Funding was paid or earned at a funding time: the exchange changed the wallet by `amount`
/// because a position was open then. Execution publishes one per entry of the exchange's
/// income history (`FUNDING_FEE`), under an id derived from the symbol and `tran_id`, so a
/// replay or redelivery names the same fact. Not part of any `PositionClosed` PnL: a consumer
/// that wants PnL after funding adds these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FundingFeeCharged {
    pub symbol: String,
    /// The wallet's change, signed as the exchange's income: negative when paid (a long at a
    /// positive rate), positive when earned.
    pub amount: Decimal,
    /// The asset it was paid in (`USDT`).
    pub asset: String,
    /// When the exchange booked it (ms, exchange time).
    pub time: i64,
    /// The exchange's transaction id, unique per account and income type.
    pub tran_id: String,
    /// The position open on the symbol when execution recorded it, if it knew one.
    #[serde(default)]
    pub position_id: Option<String>,
}
