//! Every payload that travels in an envelope's `data` field, grouped by stream.
//!
//! Commands are imperative (`OpenPosition`), facts past tense (`OrderFilled`). Money, prices and
//! quantities are `Decimal` (encoded as strings); `f64` is only for model confidence and features.
//! Optional fields carry `#[serde(default)]` so that a newer writer may leave them out.

mod alerts;
mod context;
mod control;
mod dlq;
mod intents;
mod market;
mod models;
mod orders;
mod portfolio;
mod positions;
mod signals;

pub use alerts::*;
pub use context::*;
pub use control::*;
pub use dlq::*;
pub use intents::*;
pub use market::*;
pub use models::*;
pub use orders::*;
pub use portfolio::*;
pub use positions::*;
pub use signals::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The side of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// The direction of a position (one-way mode: a position is long or short).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PositionSide {
    Long,
    Short,
}

impl PositionSide {
    /// The order side that opens or adds to a position of this direction.
    pub fn entry_side(self) -> Side {
        match self {
            PositionSide::Long => Side::Buy,
            PositionSide::Short => Side::Sell,
        }
    }
    /// The order side that reduces or closes it.
    pub fn exit_side(self) -> Side {
        self.entry_side().opposite()
    }
}

/// The kinds of order the system places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderKind {
    Market,
    Limit,
    StopMarket,
    TakeProfitMarket,
    TrailingStopMarket,
}

impl OrderKind {
    /// Conditional orders go through Binance's algo endpoint.
    pub fn is_conditional(self) -> bool {
        matches!(
            self,
            OrderKind::StopMarket | OrderKind::TakeProfitMarket | OrderKind::TrailingStopMarket
        )
    }
}

/// Which price triggers a conditional order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkingType {
    #[default]
    MarkPrice,
    ContractPrice,
}
