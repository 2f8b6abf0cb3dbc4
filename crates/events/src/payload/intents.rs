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
    /// The exits the model was trained for and chose on its validation data: exit-brain
    /// manages the position with them. Absent (an older sender, a model without exits of its
    /// own): exit-brain's configured exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exits: Option<ExitSettings>,
}

/// The shape of a position's exit plan, as the model that opened it was trained with (the
/// wire form of `qt_exits::ExitConfig`, field for field; percentages are of the entry price,
/// 2 means 2%).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExitSettings {
    /// Daily realized volatility (fraction) at or under which the calm ladder applies.
    pub low_vol: f64,
    /// Daily realized volatility at or over which the volatile ladder applies.
    pub high_vol: f64,
    pub low_vol_targets_pct: Vec<Decimal>,
    pub high_vol_targets_pct: Vec<Decimal>,
    /// Share of the position each take-profit leg closes; they sum to 1.
    pub leg_fractions: Vec<Decimal>,
    pub stop_pct: Decimal,
    pub break_even_after_first_leg: bool,
    pub break_even_offset_pct: Decimal,
    /// Profit at which the trailing stop activates; absent: no trailing stop.
    #[serde(default)]
    pub trailing_activation_pct: Option<Decimal>,
    pub trailing_callback_pct: Decimal,
    pub trailing_min_step: Decimal,
    /// Close what is left after this many minutes; absent: no time stop.
    #[serde(default)]
    pub time_stop_minutes: Option<u32>,
    /// A chandelier stop at this many daily volatilities from the best price since the entry
    /// (instead of `stop_pct`); absent: the fixed stop.
    #[serde(default)]
    pub chandelier_vol_mult: Option<Decimal>,
    /// Close the position when its model signals the opposite side; absent: false.
    #[serde(default)]
    pub close_on_flip: bool,
    pub learning_rate: Decimal,
    pub min_multiplier: Decimal,
    pub max_multiplier: Decimal,
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
///
/// v2 added `position_side`: a v1 entry decodes with none. An older execution refuses a v2
/// entry (a version newer than its build) instead of reducing whatever the symbol holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReducePosition {
    pub intent_id: String,
    pub symbol: String,
    pub quantity: Decimal,
    pub order_type: OrderKind,
    #[serde(default)]
    pub limit_price: Option<Decimal>,
    pub reason: String,
    /// The side of the position meant (hedge mode keeps a LONG and a SHORT position per
    /// symbol). Absent: the symbol's one position, whichever side it is (one-way mode's
    /// `BOTH`). Named: execution refuses `NO_POSITION` when the symbol holds no position on
    /// that side, so an intent about a position never acts on another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_side: Option<PositionSide>,
}

/// Close the whole position of a symbol at market (reduce-only).
///
/// v2 added `position_side` (see [`ReducePosition`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClosePosition {
    pub intent_id: String,
    pub symbol: String,
    pub reason: String,
    /// The side of the position meant; absent: the symbol's one position (see
    /// [`ReducePosition::position_side`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_side: Option<PositionSide>,
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
