use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::{FeatureVector, feature_index};
use serde::{Deserialize, Serialize};

use crate::{Model, ModelError, Signal};

/// Thresholds of the momentum baseline (fractions: 0.01 = 1%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumConfig {
    /// BUY when the 24h change is at or above this (default +1%).
    #[serde(default = "default_buy")]
    pub buy_threshold: f64,
    /// SELL when the 24h change is at or below this (default −1%).
    #[serde(default = "default_sell")]
    pub sell_threshold: f64,
}

fn default_buy() -> f64 {
    0.01
}
fn default_sell() -> f64 {
    -0.01
}

impl Default for MomentumConfig {
    fn default() -> Self {
        MomentumConfig {
            buy_threshold: default_buy(),
            sell_threshold: default_sell(),
        }
    }
}

impl MomentumConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        let valid = self.buy_threshold > 0.0
            && self.sell_threshold < 0.0
            && self.buy_threshold.is_finite()
            && self.sell_threshold.is_finite();
        if !valid {
            return Err(ModelError::Params(format!(
                "momentum thresholds must be buy > 0 > sell, got buy {} sell {}",
                self.buy_threshold, self.sell_threshold
            )));
        }
        Ok(())
    }
}

/// The baseline rule: BUY when the 24h change passes the buy threshold, SELL when it passes
/// the sell threshold, else HOLD. Confidence grows from 0.5 at the threshold to 1.0 at twice
/// the threshold; a HOLD's confidence is how far inside the band the change is.
#[derive(Debug, Clone)]
pub struct MomentumModel {
    config: MomentumConfig,
    version: String,
    change_idx: usize,
}

impl MomentumModel {
    pub fn new(config: MomentumConfig, version: impl Into<String>) -> Result<Self, ModelError> {
        config.validate()?;
        let change_idx = feature_index("change_24h")
            .ok_or_else(|| ModelError::Params("feature change_24h is missing".to_string()))?;
        Ok(MomentumModel {
            config,
            version: version.into(),
            change_idx,
        })
    }

    pub fn config(&self) -> &MomentumConfig {
        &self.config
    }

    /// The rule on a 24h change.
    pub fn decide(&self, change_24h: f64) -> Signal {
        let MomentumConfig {
            buy_threshold: buy,
            sell_threshold: sell,
        } = self.config;
        if change_24h >= buy {
            Signal::new(SignalAction::Buy, 0.5 * (change_24h / buy).min(2.0))
        } else if change_24h <= sell {
            Signal::new(SignalAction::Sell, 0.5 * (change_24h / sell).min(2.0))
        } else {
            let band = if change_24h >= 0.0 { buy } else { -sell };
            Signal::hold(1.0 - change_24h.abs() / band)
        }
    }
}

impl Model for MomentumModel {
    fn name(&self) -> &str {
        "momentum"
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn predict(&mut self, features: &FeatureVector, _candle: &Candle) -> Signal {
        self.decide(features.values[self.change_idx])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_signals_when_the_24h_change_passes_one_percent() {
        let m = MomentumModel::new(MomentumConfig::default(), "m1").expect("valid config");
        assert_eq!(m.decide(0.012).action, SignalAction::Buy);
        assert_eq!(m.decide(0.01).action, SignalAction::Buy);
        assert_eq!(m.decide(0.0099).action, SignalAction::Hold);
        assert_eq!(m.decide(-0.0099).action, SignalAction::Hold);
        assert_eq!(m.decide(-0.01).action, SignalAction::Sell);
        assert_eq!(m.decide(-0.05).action, SignalAction::Sell);
        assert_eq!(m.decide(0.01).confidence, 0.5);
        assert_eq!(m.decide(0.03).confidence, 1.0);
        assert_eq!(m.decide(0.0).confidence, 1.0);
    }

    #[test]
    fn momentum_thresholds_come_from_config() {
        let cfg: MomentumConfig =
            serde_json::from_str(r#"{"buy_threshold":0.02,"sell_threshold":-0.03}"#)
                .expect("valid json");
        let m = MomentumModel::new(cfg, "m2").expect("valid config");
        assert_eq!(m.decide(0.015).action, SignalAction::Hold);
        assert_eq!(m.decide(-0.025).action, SignalAction::Hold);
        assert_eq!(m.decide(-0.03).action, SignalAction::Sell);
        let bad = MomentumConfig {
            buy_threshold: -0.01,
            sell_threshold: -0.02,
        };
        assert!(MomentumModel::new(bad, "x").is_err());
    }
}
