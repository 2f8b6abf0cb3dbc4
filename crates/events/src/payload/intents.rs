//! Commands to execution, the only service that places orders. Each carries an `intent_id`
//! from which the client order ids are derived, so a redelivered intent never makes a second order.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{OrderKind, PositionSide, WorkingType};

/// Where an entry came from, kept with the trade for learning and attribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
pub struct SignalRef {
    /// Event id of the `SignalGenerated` that caused the intent.
    pub signal_id: String,
    pub model: String,
    pub model_version: String,
    pub confidence: f64,
    #[serde(default)]
    pub features: BTreeMap<String, f64>,
}

/// Open (or add to) a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OpenPosition {
    pub intent_id: String,
    pub symbol: String,
    pub side: PositionSide,
    /// Base-asset quantity, already rounded to the symbol's step size by the sender.
    pub quantity: Decimal,
    /// `MARKET` or `LIMIT`.
    pub order_type: OrderKind,
    #[serde(default)]
    pub limit_price: Option<Decimal>,
    pub leverage: u32,
    /// Reference price the sender sized the order with (for notional checks before the fill).
    pub reference_price: Decimal,
    #[serde(default)]
    pub signal: Option<SignalRef>,
}

/// Reduce a position by a quantity (reduce-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReducePosition {
    pub intent_id: String,
    pub symbol: String,
    pub quantity: Decimal,
    pub order_type: OrderKind,
    #[serde(default)]
    pub limit_price: Option<Decimal>,
    pub reason: String,
}

/// Close the whole position of a symbol at market (reduce-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClosePosition {
    pub intent_id: String,
    pub symbol: String,
    pub reason: String,
}

/// The protective stop of a position, placed as a conditional order on the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StopLeg {
    pub trigger_price: Decimal,
    #[serde(default)]
    pub working_type: WorkingType,
}

/// One take-profit leg (reduce-only, conditional on the exchange).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TakeProfitLeg {
    /// Stable name of the leg within the plan, e.g. `tp1`.
    pub leg: String,
    pub trigger_price: Decimal,
    pub quantity: Decimal,
}

/// A trailing stop (reduce-only, conditional on the exchange).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrailingLeg {
    pub activation_price: Decimal,
    /// Percent, 0.1 to 10 as on Binance.
    pub callback_rate: Decimal,
    pub quantity: Decimal,
}

/// Place or replace the protective orders of a position. Legs not named are left as they are;
/// a leg named again with a new `intent_id` replaces the old one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProtectPosition {
    pub intent_id: String,
    pub symbol: String,
    pub position_side: PositionSide,
    #[serde(default)]
    pub stop: Option<StopLeg>,
    #[serde(default)]
    pub take_profits: Vec<TakeProfitLeg>,
    #[serde(default)]
    pub trailing: Option<TrailingLeg>,
}

impl ProtectPosition {
    /// The leg name of the stop (take-profits carry their own names).
    pub const STOP_LEG: &'static str = "stop";
    /// The leg name of the trailing stop.
    pub const TRAILING_LEG: &'static str = "trailing";
    /// The leg name of the market close execution sends in the same intent when the exchange
    /// refuses the stop because the price is already through it (-2021).
    pub const STOP_CLOSE_LEG: &'static str = "stop_close";

    /// The names of the legs this intent places.
    pub fn leg_names(&self) -> impl Iterator<Item = &str> {
        self.stop
            .as_ref()
            .map(|_| Self::STOP_LEG)
            .into_iter()
            .chain(self.take_profits.iter().map(|t| t.leg.as_str()))
            .chain(self.trailing.as_ref().map(|_| Self::TRAILING_LEG))
    }
}

/// Cancel an order (plain or conditional) by its client order id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CancelOrder {
    pub intent_id: String,
    pub symbol: String,
    pub client_order_id: String,
    /// True for a conditional (algo) order.
    #[serde(default)]
    pub conditional: bool,
}
