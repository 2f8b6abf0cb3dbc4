use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a model says about a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalAction {
    Buy,
    Sell,
    Hold,
}

/// A model decision on a closed candle. Every decision is published, HOLD included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SignalGenerated {
    pub symbol: String,
    pub action: SignalAction,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// Model family: `momentum`, `gbdt`, `ensemble`.
    pub model: String,
    /// The deployed model version that produced it, for PnL attribution.
    pub model_version: String,
    /// Open time of the candle the decision was made on.
    pub candle_open_time: i64,
    /// The features the model saw, by name.
    #[serde(default)]
    pub features: BTreeMap<String, f64>,
}
