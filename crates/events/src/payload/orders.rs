//! Facts about orders, published by execution.

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{OrderKind, Side};

/// The exchange (or the simulator) accepted an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderAccepted {
    pub intent_id: String,
    pub client_order_id: String,
    #[serde(default)]
    pub exchange_order_id: Option<String>,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: Decimal,
    #[serde(default)]
    pub price: Option<Decimal>,
    #[serde(default)]
    pub trigger_price: Option<Decimal>,
    #[serde(default)]
    pub reduce_only: bool,
}

/// Why an intent or order was refused: a machine-readable code. Unknown future codes decode as
/// `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    KillSwitch,
    CloseOnly,
    MaxNotionalPerTrade,
    MaxDailyLoss,
    DailyLossPause,
    MaxSymbolNotional,
    MaxGrossExposure,
    MaxConcurrentPositions,
    SideImbalance,
    LeverageCap,
    Cooldown,
    ExchangeFilter,
    MinNotional,
    Precision,
    MarginInsufficient,
    ReduceOnlyRejected,
    WouldImmediatelyTrigger,
    NoPosition,
    DuplicateIntent,
    InvalidIntent,
    ExchangeError,
    /// A protective leg that a later `ProtectPosition` of the same symbol replaces: never
    /// placed (placing it would only be cancelled again, or would replace newer legs).
    Superseded,
    /// An entry the exchange's order-rate budget could not take before it grew stale (the
    /// budget's last share is kept for protective orders).
    RateLimited,
    /// An entry refused because the drawdown breaker tripped: the equity fell the configured
    /// share from its peak, and entries stay refused until an operator resumes them
    /// (`ResumeTrading`). Exits are never refused for it.
    DrawdownBreaker,
    #[serde(other)]
    Other,
}

/// An intent or order was refused, by the risk guard or by the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderRejected {
    pub intent_id: String,
    #[serde(default)]
    pub client_order_id: Option<String>,
    pub symbol: String,
    pub reason: RejectReason,
    /// Human-readable detail.
    pub message: String,
    /// The exchange's error code when the exchange refused it.
    #[serde(default)]
    pub exchange_code: Option<i64>,
    /// Until when entries are refused for the same reason (ms since the epoch): the end of a
    /// daily-loss pause. `None` when the refusal has no known end (the drawdown breaker lasts
    /// until an operator resumes) or is about this intent alone.
    #[serde(default)]
    pub until_ms: Option<i64>,
}

/// One execution (trade) of an order. `OrderPartiallyFilled` and `OrderFilled` both carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderFill {
    pub intent_id: String,
    pub client_order_id: String,
    #[serde(default)]
    pub exchange_order_id: Option<String>,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    /// Quantity of this execution.
    pub last_qty: Decimal,
    /// Price of this execution.
    pub last_price: Decimal,
    /// Quantity filled so far in all.
    pub cumulative_qty: Decimal,
    /// Average price of all executions so far.
    pub avg_price: Decimal,
    /// The order's whole quantity.
    pub order_qty: Decimal,
    /// Fee of this execution, in `fee_asset`.
    pub fee: Decimal,
    pub fee_asset: String,
    /// Realized PnL of this execution, as the exchange reports it.
    #[serde(default)]
    pub realized_pnl: Decimal,
    /// Exchange trade id (unique per symbol).
    pub trade_id: i64,
    #[serde(default)]
    pub reduce_only: bool,
    /// Exchange transaction time, ms.
    pub trade_time: i64,
}

/// An order ended without (further) fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderEnded {
    pub intent_id: String,
    pub client_order_id: String,
    #[serde(default)]
    pub exchange_order_id: Option<String>,
    pub symbol: String,
    /// Quantity filled before it ended.
    #[serde(default)]
    pub filled_qty: Decimal,
    pub reason: String,
}
