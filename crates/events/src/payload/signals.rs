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
    /// The expected net return of the trade (a fraction of its notional, after fees, slippage
    /// and funding), for a model that prices its trades: on BUY/SELL the side taken, on HOLD
    /// the better side's (which did not clear the model's margin). Absent (v1, or a model that
    /// does not price, such as the momentum rule): not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_return: Option<f64>,
}
