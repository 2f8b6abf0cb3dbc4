//! The `[trading_bot]` table of the config file, or `QT_TRADING_BOT__*` environment variables.

use std::path::PathBuf;

use qt_risk::Sizing;
use serde::{Deserialize, Serialize};

/// Which model runs when no `ModelDeployed` has arrived yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelChoice {
    /// No model (the default): nothing is traded until clm deploys a model its gate validated.
    /// Every candle still gets a HOLD signal from model `none`, so the dashboard and `qtctl
    /// status` show that nothing trades and why.
    #[default]
    None,
    /// The momentum baseline with its default thresholds (or the artifact's, if one is given).
    /// It loses out of sample on the repo's data (`qtctl walkforward`): a rule to test the
    /// machinery with, not to trade.
    Momentum,
    /// Gradient-boosted trees: needs `model_artifact`.
    Gbdt,
    /// Ensemble: needs `model_artifact`.
    Ensemble,
    /// The temporal model (a causal convolution network over each symbol's last candles):
    /// needs `model_artifact`.
    Temporal,
}

/// Settings of the trading bot. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Symbols to trade when `top_n` is 0.
    pub symbols: Vec<String>,
    /// When above 0, the universe is the top N symbols by 24h quote volume (of those quoted in
    /// `quote_asset`), refreshed every `universe_refresh_minutes`.
    pub top_n: usize,
    pub quote_asset: String,
    pub universe_refresh_minutes: u64,
    /// Candle interval (`5m`).
    pub interval: String,
    /// Candles fetched over REST beyond the feature engine's warm-up (default 64): their
    /// feature vectors warm a model that reads a symbol's recent history (the temporal
    /// model's 32), at start and when a deployed model is swapped in.
    pub warmup_extra_candles: usize,
    /// The model to start with (default `none`: trade nothing until a validated model is
    /// deployed).
    pub model: ModelChoice,
    /// Artifact file of the starting model (required for gbdt and ensemble; optional for
    /// momentum, whose thresholds it then carries).
    pub model_artifact: Option<PathBuf>,
    /// Smallest confidence that sends an open intent (a signal that carries an expected return
    /// was decided by its model's validated margin and is not held to it).
    pub min_confidence: f64,
    /// Minutes after a position closes before the symbol may be entered again.
    pub cooldown_minutes: u64,
    /// A pending intent with no outcome on `orders`/`positions` after this is forgotten.
    pub pending_timeout_seconds: u64,
    /// How an entry is sized (default: $250 margin at 10×).
    pub sizing: Sizing,
    /// Stop distance (fraction of the price) used by risk-per-trade sizing.
    pub sizing_stop_fraction: f64,
    /// At most one `MarkPriceUpdated` per symbol per this many ms.
    pub mark_price_min_interval_ms: u64,
    /// The market-context task (`[trading_bot.context]`).
    pub context: crate::context::ContextSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            top_n: 0,
            quote_asset: "USDT".into(),
            universe_refresh_minutes: 15,
            interval: "5m".into(),
            warmup_extra_candles: 64,
            model: ModelChoice::None,
            model_artifact: None,
            min_confidence: 0.5,
            cooldown_minutes: 15,
            pending_timeout_seconds: 120,
            sizing: Sizing::default(),
            sizing_stop_fraction: 0.02,
            mark_price_min_interval_ms: 1_000,
            context: crate::context::ContextSettings::default(),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("bad setting trading_bot.{setting}: {detail}")]
pub struct SettingsError {
    pub setting: &'static str,
    pub detail: String,
}

impl SettingsError {
    /// A bad setting never heals by retrying.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl Settings {
    /// Checks the values and returns the interval in ms.
    pub fn validate(&self) -> Result<i64, SettingsError> {
        let bad = |setting, detail: String| SettingsError { setting, detail };
        let interval = qt_candles::parse_interval(&self.interval)
            .map_err(|e| bad("interval", e.to_string()))?;
        if self.top_n == 0 && self.symbols.is_empty() {
            return Err(bad("symbols", "empty while top_n is 0".into()));
        }
        if self.symbols.iter().any(|s| {
            s.is_empty()
                || !s
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        }) {
            return Err(bad(
                "symbols",
                format!(
                    "symbols are upper-case letters and digits, got {:?}",
                    self.symbols
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(bad(
                "min_confidence",
                format!("must be in 0..=1, got {}", self.min_confidence),
            ));
        }
        if !(self.sizing_stop_fraction > 0.0 && self.sizing_stop_fraction < 1.0) {
            return Err(bad(
                "sizing_stop_fraction",
                format!("must be in (0, 1), got {}", self.sizing_stop_fraction),
            ));
        }
        if self.sizing.leverage() == 0 || self.sizing.leverage() > 125 {
            return Err(bad(
                "sizing",
                format!("leverage must be 1..=125, got {}", self.sizing.leverage()),
            ));
        }
        if self.model == ModelChoice::None && self.model_artifact.is_some() {
            return Err(bad(
                "model_artifact",
                "given while model is none (name the artifact's model)".into(),
            ));
        }
        if matches!(
            self.model,
            ModelChoice::Gbdt | ModelChoice::Ensemble | ModelChoice::Temporal
        ) && self.model_artifact.is_none()
        {
            return Err(bad(
                "model_artifact",
                format!("required for model {:?}", self.model),
            ));
        }
        self.context.validate()?;
        if self.universe_refresh_minutes == 0 {
            return Err(bad("universe_refresh_minutes", "must be above 0".into()));
        }
        Ok(interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_size_250_at_10x() {
        let s = Settings::default();
        assert_eq!(s.validate().ok(), Some(300_000));
        assert_eq!(
            s.sizing,
            Sizing::FixedNotional {
                margin: rust_decimal::Decimal::from(250),
                leverage: 10
            }
        );
    }

    #[test]
    fn the_default_model_is_none_and_takes_no_artifact() {
        assert_eq!(Settings::default().model, ModelChoice::None);
        let s = Settings {
            model_artifact: Some(PathBuf::from("m.json")),
            ..Settings::default()
        };
        assert_eq!(
            s.validate().err().map(|e| e.setting),
            Some("model_artifact")
        );
    }

    #[test]
    fn gbdt_without_an_artifact_and_bad_values_are_refused() {
        let s = Settings {
            model: ModelChoice::Gbdt,
            ..Settings::default()
        };
        assert_eq!(
            s.validate().err().map(|e| e.setting),
            Some("model_artifact")
        );
        let s = Settings {
            interval: "5x".into(),
            ..Settings::default()
        };
        assert_eq!(s.validate().err().map(|e| e.setting), Some("interval"));
        let s = Settings {
            symbols: vec!["btcusdt".into()],
            ..Settings::default()
        };
        assert_eq!(s.validate().err().map(|e| e.setting), Some("symbols"));
        let s = Settings {
            min_confidence: 1.5,
            ..Settings::default()
        };
        assert_eq!(
            s.validate().err().map(|e| e.setting),
            Some("min_confidence")
        );
    }
}
