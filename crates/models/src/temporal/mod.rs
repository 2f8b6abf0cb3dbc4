//! The temporal model: a small causal temporal convolution network ([`net`]) over the last
//! `window` feature vectors of a symbol (32 candles with the default dilations 1, 2, 4, 8, 16),
//! trained for the same two targets as the gbdt ("a long managed by the live exits nets a gain
//! after costs", "a short does") and deciding by the same expected-value rule ([`crate::ev`]):
//! its two scores are calibrated on the validation slice into expected net returns, and an
//! entry is taken only when one clears the margin chosen there. HOLD otherwise, and HOLD until
//! a symbol has a full window of vectors.
//!
//! One instance serves any number of symbols: it keeps each symbol's recent vectors in its own
//! ring, fed by [`Model::predict_for`] (what trading-bot, the backtester and evaluation call),
//! so the decision on a candle depends only on that symbol's candles, whichever other symbols
//! the instance also serves. [`Model::predict`] without a symbol treats everything it is given
//! as one series.

pub mod net;
#[cfg(test)]
mod tests;
pub(crate) mod train;

use std::collections::HashMap;

use qt_candles::Candle;
use qt_features::{FeatureVector, N_FEATURES};
use serde::{Deserialize, Serialize};

use crate::ev::EvRule;
use crate::{Model, ModelError, Signal};
use net::Net;

pub use train::EpochLoss;

/// Architecture and training settings of the temporal model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemporalParams {
    /// Channels of the embedding and of every convolution layer (default 16).
    pub channels: usize,
    /// Dilations of the causal convolution layers (kernel 2); the window is `1 + Σ` of them
    /// (default 1, 2, 4, 8, 16: 32 candles).
    pub dilations: Vec<usize>,
    /// Passes over the training rows (default 4).
    pub epochs: usize,
    /// Adam's step size (default 0.002).
    pub learning_rate: f32,
    /// Decoupled weight decay (default 0.0001).
    pub weight_decay: f32,
    /// Output positions per training chunk (default 64).
    pub chunk: usize,
    /// Chunks per optimizer step (default 4).
    pub batch: usize,
    /// Seeds the initial weights and the chunk order: the same data and seed give the same
    /// model, whatever the thread count.
    pub seed: u64,
}

impl Default for TemporalParams {
    fn default() -> Self {
        TemporalParams {
            channels: 16,
            dilations: vec![1, 2, 4, 8, 16],
            epochs: 4,
            learning_rate: 0.002,
            weight_decay: 1e-4,
            chunk: 64,
            batch: 4,
            seed: 7,
        }
    }
}

impl TemporalParams {
    pub fn validate(&self) -> Result<(), ModelError> {
        let window: usize = 1 + self.dilations.iter().sum::<usize>();
        if self.channels == 0
            || self.channels > 256
            || self.dilations.is_empty()
            || self.dilations.contains(&0)
            || window > 4096
            || self.epochs == 0
            || !(self.learning_rate > 0.0 && self.learning_rate.is_finite())
            || !(self.weight_decay >= 0.0 && self.weight_decay.is_finite())
            || self.chunk == 0
            || self.batch == 0
        {
            return Err(ModelError::Params(format!(
                "invalid temporal params {self:?}"
            )));
        }
        Ok(())
    }

    /// Candles one decision reads.
    pub fn window(&self) -> usize {
        1 + self.dilations.iter().sum::<usize>()
    }
}

/// Per-feature standardization fitted on the training rows: `(x − mean) / std`, clipped to
/// ±5 so one extreme candle cannot swamp the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normalizer {
    /// Mean and standard deviation of each feature over `rows` (a zero deviation becomes 1).
    pub fn fit<'a>(rows: impl Iterator<Item = &'a [f64; N_FEATURES]>) -> Self {
        let mut n = 0.0f64;
        let mut sum = [0.0f64; N_FEATURES];
        let mut sq = [0.0f64; N_FEATURES];
        for r in rows {
            n += 1.0;
            for j in 0..N_FEATURES {
                sum[j] += r[j];
                sq[j] += r[j] * r[j];
            }
        }
        let n = n.max(1.0);
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let v = (q / n - m * m).max(0.0).sqrt();
                if v > 1e-12 && v.is_finite() { v } else { 1.0 }
            })
            .collect();
        Normalizer { mean, std }
    }

    /// Writes the normalized `row` into `out`.
    pub fn apply(&self, row: &[f64], out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            let z = (row[j] - self.mean[j]) / self.std[j];
            *o = if z.is_finite() {
                z.clamp(-5.0, 5.0) as f32
            } else {
                0.0
            };
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        if self.mean.len() == N_FEATURES
            && self.std.len() == N_FEATURES
            && self.mean.iter().all(|v| v.is_finite())
            && self.std.iter().all(|v| v.is_finite() && *v > 0.0)
        {
            Ok(())
        } else {
            Err(ModelError::Format(
                "temporal normalization does not match the feature list".into(),
            ))
        }
    }
}

/// One symbol's running network state (its recent vectors as the layers saw them).
#[derive(Debug, Clone)]
struct History {
    stream: net::Stream,
    last_open_time: i64,
}

/// The temporal model (see the module documentation).
#[derive(Debug, Clone)]
pub struct TemporalModel {
    version: String,
    params: TemporalParams,
    net: Net,
    norm: Normalizer,
    ev: EvRule,
    histories: HashMap<String, History>,
    input: Vec<f32>,
}

/// What the artifact's `params` hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    params: TemporalParams,
    net: Net,
    norm: Normalizer,
    ev: EvRule,
}

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

impl TemporalModel {
    pub(crate) fn new(
        version: impl Into<String>,
        params: TemporalParams,
        net: Net,
        norm: Normalizer,
        ev: EvRule,
    ) -> Result<Self, ModelError> {
        params.validate()?;
        net.validate()?;
        norm.validate()?;
        ev.validate()?;
        if net.inputs != N_FEATURES
            || net.channels != params.channels
            || net.window() != params.window()
        {
            return Err(ModelError::Format(
                "temporal network does not match its params".into(),
            ));
        }
        Ok(TemporalModel {
            version: version.into(),
            input: vec![0.0; N_FEATURES],
            params,
            net,
            norm,
            ev,
            histories: HashMap::new(),
        })
    }

    pub fn params(&self) -> &TemporalParams {
        &self.params
    }

    /// Candles of a symbol it needs before its first decision.
    pub fn window(&self) -> usize {
        self.params.window()
    }

    /// Weights in the network.
    pub fn parameters(&self) -> usize {
        self.net.parameters()
    }

    /// The expected-value rule.
    pub fn ev_rule(&self) -> &EvRule {
        &self.ev
    }

    pub fn set_version(&mut self, version: impl Into<String>) {
        self.version = version.into();
    }

    /// The model with its per-symbol histories emptied (as freshly loaded).
    pub fn reset(&mut self) {
        self.histories.clear();
    }

    /// Adds `features` to `symbol`'s history and returns (P(long wins), P(short wins)) on
    /// the full window, or `None` while the history is shorter than the window (and for a
    /// vector not after the symbol's last one, which is ignored).
    pub fn observe(&mut self, symbol: &str, features: &FeatureVector) -> Option<(f64, f64)> {
        if !self.histories.contains_key(symbol) {
            self.histories.insert(
                symbol.to_string(),
                History {
                    stream: self.net.stream(),
                    last_open_time: i64::MIN,
                },
            );
        }
        let h = self.histories.get_mut(symbol)?;
        if features.open_time <= h.last_open_time {
            return None;
        }
        h.last_open_time = features.open_time;
        self.norm.apply(&features.values, &mut self.input);
        let l = self.net.step(&mut h.stream, &self.input);
        if h.stream.steps() < self.params.window() {
            return None;
        }
        Some((sigmoid(l[0]), sigmoid(l[1])))
    }

    /// The decision on two probabilities (the expected-value rule).
    pub fn decide(&self, p_buy: f64, p_sell: f64) -> Signal {
        self.ev.decide(p_buy, p_sell)
    }

    pub(crate) fn to_params_json(&self) -> Result<serde_json::Value, ModelError> {
        serde_json::to_value(Stored {
            params: self.params.clone(),
            net: self.net.clone(),
            norm: self.norm.clone(),
            ev: self.ev.clone(),
        })
        .map_err(|e| ModelError::Format(e.to_string()))
    }

    pub(crate) fn from_params_json(
        value: &serde_json::Value,
        version: &str,
    ) -> Result<Self, ModelError> {
        let s: Stored = serde_json::from_value(value.clone())
            .map_err(|e| ModelError::Format(format!("temporal params: {e}")))?;
        TemporalModel::new(version, s.params, s.net, s.norm, s.ev)
    }
}

impl Model for TemporalModel {
    fn name(&self) -> &str {
        "temporal"
    }

    fn version(&self) -> &str {
        &self.version
    }

    /// Everything passed here is one series (the history of the symbol `""`).
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }

    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, _candle: &Candle) -> Signal {
        match self.observe(symbol, features) {
            Some((p_buy, p_sell)) => self.decide(p_buy, p_sell),
            None => Signal::hold(1.0),
        }
    }

    fn memory(&self) -> usize {
        self.window()
    }
}
