use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::FeatureVector;

/// A model decision: BUY, SELL or HOLD with a confidence in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    pub action: SignalAction,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// The expected net return of the trade (a fraction of the notional, after costs), when
    /// the model prices its trades ([`crate::ev`]). Such a model has already decided with its
    /// own validated threshold: callers do not hold it to a confidence floor.
    pub expected_return: Option<f64>,
}

impl Signal {
    pub fn new(action: SignalAction, confidence: f64) -> Self {
        Signal {
            action,
            confidence: if confidence.is_finite() {
                confidence.clamp(0.0, 1.0)
            } else {
                0.0
            },
            expected_return: None,
        }
    }

    /// A decision with the expected net return of its trade.
    pub fn priced(action: SignalAction, confidence: f64, expected_return: f64) -> Self {
        Signal {
            expected_return: expected_return.is_finite().then_some(expected_return),
            ..Signal::new(action, confidence)
        }
    }

    /// Whether an entry on this signal may be taken under a confidence floor: a priced signal
    /// always may (its model's margin decided), any other needs `confidence >= floor`.
    pub fn clears(&self, min_confidence: f64) -> bool {
        self.expected_return.is_some() || self.confidence >= min_confidence
    }

    pub fn hold(confidence: f64) -> Self {
        Signal::new(SignalAction::Hold, confidence)
    }
}

/// The model of a system with no validated model: it holds on every candle, so nothing is
/// traded, and its signals (model `none`) say so wherever signals are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoModel;

impl NoModel {
    /// The name and version it signals with.
    pub const NAME: &'static str = "none";
}

impl Model for NoModel {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn version(&self) -> &str {
        Self::NAME
    }

    fn predict(&mut self, _features: &FeatureVector, _candle: &Candle) -> Signal {
        Signal::hold(1.0)
    }
}

/// A trading model: the same object runs live, in the backtester and in evaluation.
///
/// `predict` takes the features of a closed candle (from [`qt_features::FeatureEngine`]) and the
/// candle itself; it may keep state (the ensemble's rolling windows), hence `&mut self`.
pub trait Model: Send + std::fmt::Debug {
    /// Model family as on the wire: `momentum`, `gbdt`, `ensemble`.
    fn name(&self) -> &str;
    /// Version of the artifact it was built from (for PnL attribution).
    fn version(&self) -> &str;
    /// The decision on one closed candle.
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal;
    /// The decision on one closed candle of `symbol`. A model that reads a symbol's recent
    /// history (the temporal model) keeps one per symbol and needs this; every other model
    /// ignores the symbol. Callers that know the symbol (trading-bot, the backtester,
    /// evaluation) call this one, so one instance can serve many symbols.
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        let _ = symbol;
        self.predict(features, candle)
    }
    /// The mix of recent decisions, for models that track it (the ensemble, over its rolling
    /// window), so a caller holding a `Box<dyn Model>` can publish drift.
    fn signal_mix(&self) -> Option<crate::SignalMix> {
        None
    }
    /// The exits the model was trained for (its artifact's labelling, chosen on validation
    /// data): a position it opens is managed with them. `None`: the caller's configured exits.
    fn exits(&self) -> Option<&qt_exits::ExitConfig> {
        None
    }
    /// How many of a symbol's latest feature vectors a decision reads (the temporal model's
    /// window; 0 for a model without memory). A caller that swaps this model in mid-stream
    /// replays that many recent vectors per symbol first, so it decides at once.
    fn memory(&self) -> usize {
        0
    }
    /// The model was trained with the funding inputs filled ([`qt_features::context`], its
    /// artifact's `funding_features`): whoever runs it must feed them from the funding rates
    /// published by each candle's close. `false`: they are missing (0, `funding_known` 0) in
    /// every row it was trained on, and a caller gives it them missing too.
    fn funding_inputs(&self) -> bool {
        false
    }
}
