//! Training: dataset → purged chronological split → fit → evaluate on the held-out period →
//! artifact + report.

use qt_features::FeatureVector;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Series, Split};
use crate::metrics::{Evaluation, evaluate};
use crate::{
    BarrierConfig, EnsembleConfig, GbdtModel, GbdtParams, Model, ModelArtifact, ModelError,
    ModelKind, MomentumConfig, Signal, TrainingRange, build_model,
};

/// Everything a training run needs besides the candles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub kind: ModelKind,
    pub version: String,
    pub barrier: BarrierConfig,
    /// Share of the time span held out for the test set (default 0.2).
    pub test_fraction: f64,
    pub gbdt: GbdtParams,
    pub momentum: MomentumConfig,
    pub ensemble: EnsembleConfig,
    /// Cores to use (default 2).
    pub threads: usize,
}

impl TrainConfig {
    pub fn new(kind: ModelKind, version: impl Into<String>) -> Self {
        TrainConfig {
            kind,
            version: version.into(),
            barrier: BarrierConfig::default(),
            test_fraction: 0.2,
            gbdt: GbdtParams::default(),
            momentum: MomentumConfig::default(),
            ensemble: EnsembleConfig::default(),
            threads: 2,
        }
    }
}

/// What a training run did, written as JSON next to the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub version: String,
    pub kind: ModelKind,
    pub training_range: TrainingRange,
    pub split_time_ms: i64,
    /// Train rows dropped because their label window reached into the test period.
    pub purged_rows: usize,
    /// Metrics on the held-out test period.
    pub test: Evaluation,
    /// Metrics on the training rows (to see over-fitting).
    pub train: Evaluation,
    /// Seconds spent fitting, filled in by the caller that measured it.
    #[serde(default)]
    pub fit_seconds: Option<f64>,
}

/// Runs `model` over `rows` in time order, as a live bot would, and evaluates it.
pub fn evaluate_model(model: &mut dyn Model, ds: &Dataset, rows: &[usize]) -> Evaluation {
    let ordered = ds.time_ordered(rows);
    let mut signals: Vec<Signal> = Vec::with_capacity(ordered.len());
    for &i in &ordered {
        let fv = FeatureVector {
            open_time: ds.candles[i].open_time,
            values: ds.features[i],
        };
        signals.push(model.predict(&fv, &ds.candles[i]));
    }
    let labels: Vec<_> = ordered.iter().map(|&i| ds.labels[i]).collect();
    evaluate(&signals, &labels, None)
}

fn evaluate_gbdt(model: &GbdtModel, ds: &Dataset, rows: &[usize]) -> Evaluation {
    let probs: Vec<(f64, f64)> = rows
        .iter()
        .map(|&i| model.probabilities(&ds.features[i]))
        .collect();
    let signals: Vec<Signal> = probs.iter().map(|&(b, s)| model.decide(b, s)).collect();
    let labels: Vec<_> = rows.iter().map(|&i| ds.labels[i]).collect();
    evaluate(&signals, &labels, Some(&probs))
}

fn training_range(ds: &Dataset, split: &Split) -> TrainingRange {
    let times = split.train.iter().map(|&i| ds.candles[i].open_time);
    TrainingRange {
        start_ms: times.clone().min().unwrap_or(0),
        end_ms: times.max().unwrap_or(0),
        symbols: ds.symbols.clone(),
        interval: qt_candles::interval_name(ds.interval_ms).unwrap_or_default(),
        train_rows: split.train.len(),
        test_rows: split.test.len(),
    }
}

/// Fits the configured model on a dataset and evaluates it on the held-out period.
pub fn train_on(
    ds: &Dataset,
    cfg: &TrainConfig,
) -> Result<(ModelArtifact, TrainReport), ModelError> {
    let split = ds.split(cfg.test_fraction, cfg.barrier.horizon)?;
    let fit_gbdt = |version: &str| -> Result<GbdtModel, ModelError> {
        let columns = ds.columns(&split.train);
        let labels: Vec<_> = split.train.iter().map(|&i| ds.labels[i]).collect();
        GbdtModel::fit(&columns, &labels, cfg.gbdt, cfg.threads, version)
    };
    let (mut artifact, test, train) = match cfg.kind {
        ModelKind::Gbdt => {
            let model = fit_gbdt(&cfg.version)?;
            let test = evaluate_gbdt(&model, ds, &split.test);
            let train = evaluate_gbdt(&model, ds, &split.train);
            (ModelArtifact::gbdt(&model)?, test, train)
        }
        ModelKind::Momentum => {
            let artifact = ModelArtifact::momentum(&cfg.momentum, &cfg.version)?;
            let test = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.test);
            let train = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.train);
            (artifact, test, train)
        }
        ModelKind::Ensemble => {
            let gbdt = fit_gbdt(&format!("{}-gbdt", cfg.version))?;
            let members = vec![
                ModelArtifact::gbdt(&gbdt)?,
                ModelArtifact::momentum(&cfg.momentum, &format!("{}-momentum", cfg.version))?,
            ];
            let artifact = ModelArtifact::ensemble(&cfg.ensemble, members, &cfg.version)?;
            let test = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.test);
            let train = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.train);
            (artifact, test, train)
        }
    };
    let range = training_range(ds, &split);
    artifact.training_range = Some(range.clone());
    artifact.barrier = Some(cfg.barrier);
    artifact.metrics =
        serde_json::to_value(&test).map_err(|e| ModelError::Format(e.to_string()))?;
    let report = TrainReport {
        version: cfg.version.clone(),
        kind: cfg.kind,
        training_range: range,
        split_time_ms: split.split_time_ms,
        purged_rows: split.purged,
        test,
        train,
        fit_seconds: None,
    };
    Ok((artifact, report))
}

/// Builds the dataset from candles and trains (see [`train_on`]).
pub fn train(
    series: &[Series],
    cfg: &TrainConfig,
) -> Result<(ModelArtifact, TrainReport), ModelError> {
    let ds = Dataset::build(series, &cfg.barrier, cfg.threads)?;
    train_on(&ds, cfg)
}
