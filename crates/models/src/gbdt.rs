use forust_ml::{
    GradientBooster, Matrix, gradientbooster::ImportanceMethod, objective::ObjectiveType,
    sampler::SampleMethod,
};
use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::{FeatureVector, N_FEATURES};
use serde::{Deserialize, Serialize};

use crate::ev::EvRule;
use crate::flat::FlatForest;
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
    /// Share of rows sampled for each tree (1.0 = all rows, no sampling).
    #[serde(default = "default_subsample")]
    pub subsample: f32,
    /// BUY when the edge `P(long wins) - P(short wins)` is at or above this.
    pub buy_edge: f64,
    /// SELL when the edge `P(short wins) - P(long wins)` is at or above this.
    pub sell_edge: f64,
    pub seed: u64,
}

fn default_subsample() -> f32 {
    1.0
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
            subsample: 0.5,
            buy_edge: 0.2,
            sell_edge: 0.2,
            seed: 7,
        }
    }
}

impl GbdtParams {
    pub fn validate(&self) -> Result<(), ModelError> {
        let ok_edge = |t: f64| t > -1.0 && t < 1.0;
        if self.iterations == 0
            || self.max_depth == 0
            || self.nbins < 2
            || self.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || !(0.0..=1.0).contains(&self.subsample)
            || self.subsample == 0.0
            || !ok_edge(self.buy_edge)
            || !ok_edge(self.sell_edge)
            || self.buy_edge + self.sell_edge < 0.0
        {
            return Err(ModelError::Params(format!("invalid gbdt params {self:?}")));
        }
        Ok(())
    }
}

/// Gradient-boosted trees (`forust-ml`) over the features. Multi-class is done one-vs-rest:
/// one binary model for "a long would win" (BUY vs rest) and one for "a short would win" (SELL
/// vs rest). With an [`EvRule`] (what training fits by default) the decision is by expected
/// value (see [`crate::ev`]). Without one, it is on the edge `p_buy - p_sell`: BUY when it
/// reaches `buy_edge`, SELL when `-edge` reaches `sell_edge`, with that side's probability as
/// confidence; otherwise HOLD with confidence `1 - max(p_buy, p_sell)` (training can set the
/// edges to a target mix, see `train::calibrate_edges`).
///
/// Prediction does not walk forust's trees: when the model is built (trained or loaded) both
/// boosters are compiled into flat arrays (`flat::FlatForest`) that give the same raw scores bit
/// for bit, several times faster. Boosters the flat layout does not take (a missing value
/// other than NaN, a separate missing branch, trees deeper than 12, more than 1,023 distinct
/// split values of one feature) keep forust's walk ([`GbdtModel::is_compiled`] says which).
pub struct GbdtModel {
    version: String,
    params: GbdtParams,
    buy: GradientBooster,
    sell: GradientBooster,
    flat: Option<FlatForest>,
    ev: Option<EvRule>,
}

/// BUY when `p_buy - p_sell >= buy_edge`, SELL when `p_sell - p_buy >= sell_edge`, else HOLD.
pub(crate) fn decide(p_buy: f64, p_sell: f64, buy_edge: f64, sell_edge: f64) -> Signal {
    let edge = p_buy - p_sell;
    if edge >= buy_edge {
        Signal::new(SignalAction::Buy, p_buy)
    } else if -edge >= sell_edge {
        Signal::new(SignalAction::Sell, p_sell)
    } else {
        Signal::hold(1.0 - p_buy.max(p_sell))
    }
}

impl std::fmt::Debug for GbdtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbdtModel")
            .field("version", &self.version)
            .field("params", &self.params)
            .field("buy_trees", &self.buy.trees.len())
            .field("sell_trees", &self.sell.trees.len())
            .field(
                "compiled",
                &self
                    .flat
                    .as_ref()
                    .map(|f| format!("{} trees padded to depth {}", f.trees(), f.depth())),
            )
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
        .set_sample_method(if params.subsample < 1.0 {
            SampleMethod::Random
        } else {
            SampleMethod::None
        })
        .set_subsample(params.subsample)
        // Histograms filled row by row from a tiled copy of the binned rows: about a quarter
        // less CPU than forust's column-at-a-time fill on our ~400k × 37 rows, same test AUC
        // (docs/perf/models.md); the trees do not depend on the thread count.
        .set_tiled_histograms(true)
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
        let fit_one = |a: SignalAction, threads: usize| -> Result<GradientBooster, ModelError> {
            let target: Vec<f64> = labels
                .iter()
                .map(|l| f64::from(u8::from(*l == a)))
                .collect();
            let mut b = booster(&params, threads)?;
            b.fit_unweighted(&matrix, &target, None)
                .map_err(|e| ModelError::Gbdt(e.to_string()))?;
            Ok(b)
        };
        // With two or more cores the two one-vs-rest models train side by side (each on half
        // the cores), which scales better than splitting one model's histogram work.
        let (buy, sell) = if threads >= 2 {
            let half = threads / 2;
            std::thread::scope(|s| {
                let buy = s.spawn(|| fit_one(SignalAction::Buy, half));
                let sell = fit_one(SignalAction::Sell, threads - half);
                let buy = buy
                    .join()
                    .unwrap_or_else(|_| Err(ModelError::Gbdt("training thread panicked".into())));
                (buy, sell)
            })
        } else {
            (
                fit_one(SignalAction::Buy, 1),
                fit_one(SignalAction::Sell, 1),
            )
        };
        let (buy, sell) = (buy?, sell?);
        Ok(Self::assemble(version.into(), params, buy, sell))
    }

    fn assemble(
        version: String,
        params: GbdtParams,
        buy: GradientBooster,
        sell: GradientBooster,
    ) -> Self {
        let flat = FlatForest::compile(&buy, &sell);
        GbdtModel {
            version,
            params,
            buy,
            sell,
            flat,
            ev: None,
        }
    }

    /// Whether prediction runs on the compiled flat trees (true for every model this crate
    /// trains) rather than on forust's own tree walk.
    pub fn is_compiled(&self) -> bool {
        self.flat.is_some()
    }

    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// Replaces the decision edges (each in (-1, 1), `buy + sell >= 0`).
    pub fn set_edges(&mut self, buy: f64, sell: f64) -> Result<(), ModelError> {
        let params = GbdtParams {
            buy_edge: buy,
            sell_edge: sell,
            ..self.params
        };
        params.validate()?;
        self.params = params;
        Ok(())
    }

    /// Makes the model decide by expected value with `rule`.
    pub fn set_ev_rule(&mut self, rule: EvRule) -> Result<(), ModelError> {
        rule.validate()?;
        self.ev = Some(rule);
        Ok(())
    }

    /// The expected-value rule, when the model prices its trades.
    pub fn ev_rule(&self) -> Option<&EvRule> {
        self.ev.as_ref()
    }

    pub fn set_version(&mut self, version: impl Into<String>) {
        self.version = version.into();
    }

    /// Total split gain per feature over both models, normalized to sum to 1, largest first.
    pub fn feature_importance(&self) -> Vec<(String, f64)> {
        let mut total = [0.0f64; N_FEATURES];
        for b in [&self.buy, &self.sell] {
            for (k, v) in b.calculate_feature_importance(ImportanceMethod::TotalGain, false) {
                if let Some(t) = total.get_mut(k) {
                    *t += f64::from(v);
                }
            }
        }
        let sum: f64 = total.iter().sum();
        let mut out: Vec<(String, f64)> = qt_features::FEATURE_NAMES
            .iter()
            .zip(total)
            .map(|(n, v)| (n.to_string(), if sum > 0.0 { v / sum } else { 0.0 }))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// (P(long wins), P(short wins)) for one row of features (in
    /// [`qt_features::FEATURE_NAMES`] order).
    pub fn probabilities(&self, row: &[f64]) -> (f64, f64) {
        match &self.flat {
            Some(flat) => {
                let (b, s) = flat.raw_scores(row);
                (sigmoid(b), sigmoid(s))
            }
            None => self.probabilities_tree_walk(row),
        }
    }

    /// [`Self::probabilities`] by walking forust's own trees one row at a time (the path
    /// before the flat trees; kept as the fallback and to compare speed).
    pub fn probabilities_tree_walk(&self, row: &[f64]) -> (f64, f64) {
        (
            sigmoid(raw_score(&self.buy, row)),
            sigmoid(raw_score(&self.sell, row)),
        )
    }

    /// The decision rule on the two probabilities: by expected value when the model has an
    /// [`EvRule`], else by the edges.
    pub fn decide(&self, p_buy: f64, p_sell: f64) -> Signal {
        match &self.ev {
            Some(rule) => rule.decide(p_buy, p_sell),
            None => decide(p_buy, p_sell, self.params.buy_edge, self.params.sell_edge),
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
        let mut v = serde_json::json!({
            "params": self.params,
            "buy_model": dump(&self.buy)?,
            "sell_model": dump(&self.sell)?,
        });
        if let Some(rule) = &self.ev {
            v["ev"] = serde_json::to_value(rule).map_err(|e| ModelError::Format(e.to_string()))?;
        }
        Ok(v)
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
        let mut model = Self::assemble(
            version.to_string(),
            params,
            load("buy_model")?,
            load("sell_model")?,
        );
        if let Some(v) = value.get("ev") {
            let rule: EvRule = serde_json::from_value(v.clone())
                .map_err(|e| ModelError::Format(format!("gbdt ev rule: {e}")))?;
            model.set_ev_rule(rule)?;
        }
        Ok(model)
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
