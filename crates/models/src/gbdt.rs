use forust_ml::{GradientBooster, Matrix, objective::ObjectiveType};
use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::{FeatureVector, N_FEATURES};
use serde::{Deserialize, Serialize};

use crate::{Model, ModelError, Signal};

/// Training and decision parameters of the gradient-boosted trees model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtParams {
    /// Trees per one-vs-rest model.
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Histogram bins per feature.
    pub nbins: u16,
    /// Minimum hessian sum in a leaf.
    pub min_leaf_weight: f32,
    /// L2 regularization of leaf weights.
    pub l2: f32,
    /// BUY when P(buy wins) reaches this (and beats SELL's margin).
    pub buy_threshold: f64,
    /// SELL when P(sell wins) reaches this.
    pub sell_threshold: f64,
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            iterations: 150,
            learning_rate: 0.1,
            max_depth: 5,
            nbins: 64,
            min_leaf_weight: 20.0,
            l2: 1.0,
            buy_threshold: 0.5,
            sell_threshold: 0.5,
            seed: 7,
        }
    }
}

impl GbdtParams {
    pub fn validate(&self) -> Result<(), ModelError> {
        let ok_threshold = |t: f64| t > 0.0 && t < 1.0;
        if self.iterations == 0
            || self.max_depth == 0
            || self.nbins < 2
            || self.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || !ok_threshold(self.buy_threshold)
            || !ok_threshold(self.sell_threshold)
        {
            return Err(ModelError::Params(format!("invalid gbdt params {self:?}")));
        }
        Ok(())
    }
}

/// Gradient-boosted trees (`forust-ml`) over the features. Multi-class is done one-vs-rest:
/// one binary model for "a long would win" (BUY vs rest) and one for "a short would win" (SELL
/// vs rest). BUY or SELL when that probability reaches its threshold (the larger margin wins
/// when both do), with the probability as confidence; otherwise HOLD with confidence
/// `1 - max(p_buy, p_sell)`.
pub struct GbdtModel {
    version: String,
    params: GbdtParams,
    buy: GradientBooster,
    sell: GradientBooster,
}

impl std::fmt::Debug for GbdtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbdtModel")
            .field("version", &self.version)
            .field("params", &self.params)
            .field("buy_trees", &self.buy.trees.len())
            .field("sell_trees", &self.sell.trees.len())
            .finish()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Raw score of one row, walking the trees directly (no allocation; same result as
/// `GradientBooster::predict`, tested).
fn raw_score(b: &GradientBooster, row: &[f64]) -> f64 {
    let n = b
        .prediction_iteration
        .unwrap_or(b.trees.len())
        .min(b.trees.len());
    b.trees[..n].iter().fold(b.base_score, |acc, t| {
        acc + t.predict_row_from_row_slice(row, &b.missing)
    })
}

fn booster(params: &GbdtParams, threads: usize) -> Result<GradientBooster, ModelError> {
    let b = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(params.iterations)
        .set_learning_rate(params.learning_rate)
        .set_max_depth(params.max_depth)
        .set_nbins(params.nbins)
        .set_min_leaf_weight(params.min_leaf_weight)
        .set_l2(params.l2)
        .set_seed(params.seed)
        .set_parallel(threads > 1)
        .set_num_threads(Some(threads.max(1)));
    Ok(b)
}

impl GbdtModel {
    /// Trains both one-vs-rest models. `columns` is column-major: feature `j` of row `i` at
    /// `columns[j * rows + i]`, with [`N_FEATURES`] columns in [`qt_features::FEATURE_NAMES`]
    /// order. `threads` is the number of cores to use.
    pub fn fit(
        columns: &[f64],
        labels: &[SignalAction],
        params: GbdtParams,
        threads: usize,
        version: impl Into<String>,
    ) -> Result<Self, ModelError> {
        params.validate()?;
        let rows = labels.len();
        if rows == 0 || columns.len() != rows * N_FEATURES {
            return Err(ModelError::Data(format!(
                "{} values for {rows} rows of {N_FEATURES} features",
                columns.len()
            )));
        }
        let matrix = Matrix::new(columns, rows, N_FEATURES);
        let target = |a: SignalAction| -> Vec<f64> {
            labels
                .iter()
                .map(|l| f64::from(u8::from(*l == a)))
                .collect()
        };
        let mut buy = booster(&params, threads)?;
        buy.fit_unweighted(&matrix, &target(SignalAction::Buy), None)
            .map_err(|e| ModelError::Gbdt(e.to_string()))?;
        let mut sell = booster(&params, threads)?;
        sell.fit_unweighted(&matrix, &target(SignalAction::Sell), None)
            .map_err(|e| ModelError::Gbdt(e.to_string()))?;
        Ok(GbdtModel {
            version: version.into(),
            params,
            buy,
            sell,
        })
    }

    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    pub fn set_version(&mut self, version: impl Into<String>) {
        self.version = version.into();
    }

    /// (P(long wins), P(short wins)) for one row of features.
    pub fn probabilities(&self, row: &[f64]) -> (f64, f64) {
        (
            sigmoid(raw_score(&self.buy, row)),
            sigmoid(raw_score(&self.sell, row)),
        )
    }

    /// The decision rule on the two probabilities.
    pub fn decide(&self, p_buy: f64, p_sell: f64) -> Signal {
        let (tb, ts) = (self.params.buy_threshold, self.params.sell_threshold);
        let buy_margin = p_buy - tb;
        let sell_margin = p_sell - ts;
        if buy_margin >= 0.0 && buy_margin >= sell_margin {
            Signal::new(SignalAction::Buy, p_buy)
        } else if sell_margin >= 0.0 {
            Signal::new(SignalAction::Sell, p_sell)
        } else {
            Signal::hold(1.0 - p_buy.max(p_sell))
        }
    }

    /// The decision for one row of features.
    pub fn predict_row(&self, row: &[f64]) -> Signal {
        let (b, s) = self.probabilities(row);
        self.decide(b, s)
    }

    /// Serializes the two boosters (forust's JSON) for an artifact.
    pub(crate) fn to_params_json(&self) -> Result<serde_json::Value, ModelError> {
        let dump = |b: &GradientBooster| -> Result<serde_json::Value, ModelError> {
            let s = b.json_dump().map_err(|e| ModelError::Gbdt(e.to_string()))?;
            serde_json::from_str(&s).map_err(|e| ModelError::Format(e.to_string()))
        };
        Ok(serde_json::json!({
            "params": self.params,
            "buy_model": dump(&self.buy)?,
            "sell_model": dump(&self.sell)?,
        }))
    }

    pub(crate) fn from_params_json(
        value: &serde_json::Value,
        version: &str,
    ) -> Result<Self, ModelError> {
        let params: GbdtParams = serde_json::from_value(value["params"].clone())
            .map_err(|e| ModelError::Format(format!("gbdt params: {e}")))?;
        params.validate()?;
        let load = |key: &str| -> Result<GradientBooster, ModelError> {
            let v = value
                .get(key)
                .ok_or_else(|| ModelError::Format(format!("gbdt artifact has no {key}")))?;
            GradientBooster::from_json(&v.to_string())
                .map_err(|e| ModelError::Format(format!("{key}: {e}")))
        };
        Ok(GbdtModel {
            version: version.to_string(),
            params,
            buy: load("buy_model")?,
            sell: load("sell_model")?,
        })
    }

    /// Batch raw predictions through forust itself (used to check the fast path).
    pub fn forust_probabilities(&self, columns: &[f64], rows: usize) -> Vec<(f64, f64)> {
        let m = Matrix::new(columns, rows, N_FEATURES);
        let b = self.buy.predict(&m, false);
        let s = self.sell.predict(&m, false);
        b.into_iter()
            .zip(s)
            .map(|(b, s)| (sigmoid(b), sigmoid(s)))
            .collect()
    }
}

impl Model for GbdtModel {
    fn name(&self) -> &str {
        "gbdt"
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn predict(&mut self, features: &FeatureVector, _candle: &Candle) -> Signal {
        self.predict_row(&features.values)
    }
}
