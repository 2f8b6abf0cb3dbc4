//! Training: dataset → purged chronological split → fit → evaluate on the held-out period →
//! artifact + report.

use qt_features::FeatureVector;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Series, Split};
use crate::ev::{EvReport, EvRow, EvRule, EvSettings, fit_rule};
use crate::metrics::{Evaluation, evaluate};
use crate::{
    EnsembleConfig, GbdtModel, GbdtParams, LabelConfig, Model, ModelArtifact, ModelError,
    ModelKind, MomentumConfig, Signal, TrainingRange, build_model,
};

/// Everything a training run needs besides the candles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub kind: ModelKind,
    pub version: String,
    /// The exits, horizon and costs the labels are made with.
    pub labeling: LabelConfig,
    /// Share of the time span held out for the test set (default 0.2).
    pub test_fraction: f64,
    pub gbdt: GbdtParams,
    pub momentum: MomentumConfig,
    pub ensemble: EnsembleConfig,
    /// The temporal model's architecture and training settings.
    #[serde(default)]
    pub temporal: crate::TemporalParams,
    /// Cores to use (default 2).
    pub threads: usize,
    /// How the trained gbdt decides (default: by expected value).
    #[serde(default)]
    pub decision: Decision,
    /// The exit plans tried around `labeling.exits` when the model decides by expected value
    /// (see [`crate::exit_choice`]); each is a trial.
    #[serde(default)]
    pub exit_grid: crate::ExitGrid,
    /// The dataset's funding inputs were filled from a funding history (see
    /// [`crate::dataset::funding_inputs`]); recorded in the artifact. Default false: those
    /// inputs are missing (0, `funding_known` 0) in every row.
    #[serde(default)]
    pub funding_features: bool,
}

/// How a trained gbdt turns its two probabilities into a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// By expected value after costs ([`crate::ev`]), calibrated on the latest part of the
    /// training rows (default).
    ExpectedValue(EvSettings),
    /// By edges chosen on the training rows so that the model says BUY and SELL about this
    /// often there (BUY share, SELL share). A diagnostic: a signal mix is no reason to trade.
    TargetMix(f64, f64),
    /// By the edges in `gbdt`, as they are.
    FixedEdges,
}

impl Default for Decision {
    fn default() -> Self {
        Decision::ExpectedValue(EvSettings::default())
    }
}

impl TrainConfig {
    pub fn new(kind: ModelKind, version: impl Into<String>) -> Self {
        TrainConfig {
            kind,
            version: version.into(),
            labeling: LabelConfig::default(),
            test_fraction: 0.2,
            gbdt: GbdtParams::default(),
            momentum: MomentumConfig::default(),
            ensemble: EnsembleConfig::default(),
            temporal: crate::TemporalParams::default(),
            threads: 2,
            decision: Decision::default(),
            exit_grid: crate::ExitGrid::default(),
            funding_features: false,
        }
    }
}

/// Edges for the gbdt decision rule ([`GbdtModel::decide`]) such that a share `mix.0` of
/// `probs` gets BUY and a share `mix.1` gets SELL: quantiles of the edge `p_buy - p_sell`.
pub fn calibrate_edges(probs: &[(f64, f64)], mix: (f64, f64)) -> Result<(f64, f64), ModelError> {
    let ok = |x: f64| x > 0.0 && x < 1.0;
    if !ok(mix.0) || !ok(mix.1) || mix.0 + mix.1 >= 1.0 {
        return Err(ModelError::Params(format!(
            "target mix {mix:?} is not two shares summing below 1"
        )));
    }
    if probs.is_empty() {
        return Err(ModelError::Data("no rows to calibrate on".to_string()));
    }
    let mut edges: Vec<f64> = probs.iter().map(|p| p.0 - p.1).collect();
    edges.sort_by(f64::total_cmp);
    let n = edges.len();
    let at = |share: f64| ((n as f64) * share) as usize;
    // BUY: the top mix.0 of edges; SELL: the bottom mix.1.
    let buy = edges[at(1.0 - mix.0).min(n - 1)];
    let sell = -edges[at(mix.1).saturating_sub(1).min(n - 1)];
    let clamp = |x: f64| x.clamp(-1.0 + 1e-9, 1.0 - 1e-9);
    Ok((clamp(buy), clamp(sell.max(-buy))))
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
    /// Share of the total split gain per feature (gbdt, and the ensemble's gbdt member),
    /// largest first.
    #[serde(default)]
    pub feature_importance: Vec<(String, f64)>,
    /// Wall seconds of training (for `qtctl train`: labelling and `train_on` — fit, edge
    /// calibration, the evaluation of train and test rows — for every exit plan tried), filled
    /// in by the caller that measured it.
    #[serde(default)]
    pub train_seconds: Option<f64>,
    /// The expected-value rule's calibration: reliability curves, costs, the margins tried
    /// and the one chosen (gbdt and the ensemble's gbdt member, deciding by expected value).
    #[serde(default)]
    pub ev: Option<EvReport>,
    /// The temporal model's loss after each epoch (fit and calibration rows).
    #[serde(default)]
    pub epochs: Vec<crate::temporal::EpochLoss>,
    /// The exit plans tried on the validation slice and the one kept (a run through
    /// [`crate::exit_choice::train_choosing_exits`]).
    #[serde(default)]
    pub exits: Option<crate::ExitChoice>,
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
        let symbol = &ds.symbols[usize::from(ds.symbol_of[i])];
        signals.push(model.predict_for(symbol, &fv, &ds.candles[i]));
    }
    let labels: Vec<_> = ordered.iter().map(|&i| ds.labels[i]).collect();
    evaluate(&signals, &labels, None)
}

/// (P(long wins), P(short wins)) of each of `rows`, on up to `threads` threads (the rows are
/// cut into one contiguous chunk per thread; the result is in `rows` order and does not depend
/// on the thread count).
pub fn gbdt_probabilities(
    model: &GbdtModel,
    ds: &Dataset,
    rows: &[usize],
    threads: usize,
) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); rows.len()];
    let chunk = rows.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (idx, dst) in rows.chunks(chunk).zip(out.chunks_mut(chunk)) {
            s.spawn(move || {
                for (&i, p) in idx.iter().zip(dst) {
                    *p = model.probabilities(&ds.features[i]);
                }
            });
        }
    });
    out
}

/// Evaluates the gbdt on `rows`, given the probabilities of every dataset row.
fn evaluate_gbdt(
    model: &GbdtModel,
    ds: &Dataset,
    rows: &[usize],
    all_probs: &[(f64, f64)],
) -> Evaluation {
    let probs: Vec<(f64, f64)> = rows.iter().map(|&i| all_probs[i]).collect();
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

/// Splits training rows by time into the rows a booster is fitted on and the latest
/// `fraction` of them, kept to calibrate it; fitted rows whose label window reaches the
/// calibration period are dropped (the purge), so no fitted label saw a calibration candle.
pub(crate) fn calibration_split(
    ds: &Dataset,
    train: &[usize],
    fraction: f64,
) -> Result<(Vec<usize>, Vec<usize>), ModelError> {
    let mut times: Vec<i64> = train.iter().map(|&i| ds.candles[i].open_time).collect();
    times.sort_unstable();
    if times.is_empty() {
        return Err(ModelError::Data("no training rows".to_string()));
    }
    let cut = times[(((times.len() as f64) * (1.0 - fraction)) as usize).min(times.len() - 1)];
    let purge_ms = ds.labeling.horizon as i64 * ds.interval_ms;
    let fit: Vec<usize> = train
        .iter()
        .copied()
        .filter(|&i| ds.candles[i].open_time + purge_ms < cut)
        .collect();
    let calibration: Vec<usize> = train
        .iter()
        .copied()
        .filter(|&i| ds.candles[i].open_time >= cut)
        .collect();
    if fit.is_empty() || calibration.is_empty() {
        return Err(ModelError::Data(format!(
            "{} training rows are too few to keep {fraction} of them for calibration",
            train.len()
        )));
    }
    Ok((fit, calibration))
}

/// The rows a training run uses, by role: what [`train_on`] fits the boosters on, calibrates
/// them on and tests them on (the benchmarks export exactly these).
#[derive(Debug, Clone, PartialEq)]
pub struct RowRoles {
    pub split: Split,
    /// Rows the boosters are fitted on.
    pub fit: Vec<usize>,
    /// The latest training rows, kept to calibrate the expected-value rule (empty for the
    /// other decisions).
    pub calibration: Vec<usize>,
}

/// Splits `ds` as [`train_on`] does for `cfg`.
pub fn row_roles(ds: &Dataset, cfg: &TrainConfig) -> Result<RowRoles, ModelError> {
    let split = ds.split(cfg.test_fraction, cfg.labeling.horizon)?;
    let (fit, calibration) = match &cfg.decision {
        Decision::ExpectedValue(ev) => {
            calibration_split(ds, &split.train, ev.calibration_fraction)?
        }
        _ => (split.train.clone(), Vec::new()),
    };
    Ok(RowRoles {
        split,
        fit,
        calibration,
    })
}

/// Fits a gbdt's two boosters on `rows` of `ds` (their labels), on `cfg.threads` cores.
pub(crate) fn fit_booster(
    ds: &Dataset,
    rows: &[usize],
    cfg: &TrainConfig,
    version: &str,
) -> Result<GbdtModel, ModelError> {
    let columns = ds.columns(rows);
    let labels: Vec<_> = rows.iter().map(|&i| ds.labels[i]).collect();
    GbdtModel::fit(&columns, &labels, cfg.gbdt, cfg.threads.max(1), version)
}

/// The expected-value rule of scores `probs` (of `rows` of `ds`, in that order) against those
/// rows' outcomes under `ds`'s exits: [`fit_rule`] with the labels' costs.
pub(crate) fn ev_rule_on(
    ds: &Dataset,
    rows: &[usize],
    probs: Vec<(f64, f64)>,
    ev: &EvSettings,
) -> Result<(EvRule, EvReport), ModelError> {
    let rows: Vec<EvRow> = rows
        .iter()
        .zip(probs)
        .map(|(&i, scores)| EvRow::of(ds, i, scores))
        .collect();
    fit_rule(rows, &ds.labeling.costs, ds.interval_ms, ev)
}

/// The probabilities of every row of `ds`, on up to `threads` threads.
pub(crate) fn all_probabilities(
    model: &GbdtModel,
    ds: &Dataset,
    threads: usize,
) -> Vec<(f64, f64)> {
    let every: Vec<usize> = (0..ds.len()).collect();
    gbdt_probabilities(model, ds, &every, threads)
}

/// A fitted gbdt whose decision is set, evaluated on `split` of `ds` given the probabilities of
/// every row (`all`): its artifact (with `ds`'s labeling) and report.
pub(crate) fn finish_gbdt(
    model: &GbdtModel,
    ds: &Dataset,
    split: &Split,
    all: &[(f64, f64)],
    cfg: &TrainConfig,
    ev_report: Option<EvReport>,
) -> Result<(ModelArtifact, TrainReport), ModelError> {
    let test = evaluate_gbdt(model, ds, &split.test, all);
    let train = evaluate_gbdt(model, ds, &split.train, all);
    let artifact = ModelArtifact::gbdt(model)?;
    finish(
        ds,
        split,
        cfg,
        Finished {
            artifact,
            test,
            train,
            importance: model.feature_importance(),
            ev: ev_report,
            epochs: Vec::new(),
        },
    )
}

/// What a fit produced, before the artifact and report are completed by [`finish`].
struct Finished {
    artifact: ModelArtifact,
    test: Evaluation,
    train: Evaluation,
    importance: Vec<(String, f64)>,
    ev: Option<EvReport>,
    epochs: Vec<crate::temporal::EpochLoss>,
}

/// Stamps the artifact with its training range, labeling and test metrics, and writes the
/// report.
fn finish(
    ds: &Dataset,
    split: &Split,
    cfg: &TrainConfig,
    f: Finished,
) -> Result<(ModelArtifact, TrainReport), ModelError> {
    let Finished {
        mut artifact,
        test,
        train,
        importance,
        ev,
        epochs,
    } = f;
    let range = training_range(ds, split);
    artifact.training_range = Some(range.clone());
    artifact.labeling = Some(cfg.labeling.clone());
    artifact.funding_features = cfg.funding_features;
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
        feature_importance: importance,
        train_seconds: None,
        ev,
        epochs,
        exits: None,
    };
    Ok((artifact, report))
}

/// Fits the configured model on a dataset and evaluates it on the held-out period.
pub fn train_on(
    ds: &Dataset,
    cfg: &TrainConfig,
) -> Result<(ModelArtifact, TrainReport), ModelError> {
    let RowRoles {
        split,
        fit: fit_rows,
        calibration: calibration_rows,
    } = row_roles(ds, cfg)?;
    let threads = cfg.threads.max(1);
    // A gbdt alone is evaluated on its probabilities, so every row is predicted once (on all
    // cores) and calibration and evaluation read them (`all`); an ensemble's gbdt only needs
    // its calibration rows (`all` empty).
    let decide =
        |model: &mut GbdtModel, all: &[(f64, f64)]| -> Result<Option<EvReport>, ModelError> {
            let probs_of = |rows: &[usize]| -> Vec<(f64, f64)> {
                if all.is_empty() {
                    gbdt_probabilities(model, ds, rows, threads)
                } else {
                    rows.iter().map(|&i| all[i]).collect()
                }
            };
            if let Decision::ExpectedValue(ev) = &cfg.decision {
                let probs = probs_of(&calibration_rows);
                let (rule, report) = ev_rule_on(ds, &calibration_rows, probs, ev)?;
                model.set_ev_rule(rule)?;
                Ok(Some(report))
            } else if let Decision::TargetMix(buy, sell) = cfg.decision {
                let probs = probs_of(&split.train);
                let (b, s) = calibrate_edges(&probs, (buy, sell))?;
                model.set_edges(b, s)?;
                Ok(None)
            } else {
                Ok(None)
            }
        };
    let finished = match cfg.kind {
        ModelKind::Gbdt => {
            let mut model = fit_booster(ds, &fit_rows, cfg, &cfg.version)?;
            let all = all_probabilities(&model, ds, threads);
            let ev = decide(&mut model, &all)?;
            return finish_gbdt(&model, ds, &split, &all, cfg, ev);
        }
        // Rules: nothing to fit, evaluated as they are.
        ModelKind::Momentum | ModelKind::Trend => {
            let artifact = if cfg.kind == ModelKind::Trend {
                ModelArtifact::trend(&crate::TrendConfig::default(), &cfg.version)?
            } else {
                ModelArtifact::momentum(&cfg.momentum, &cfg.version)?
            };
            let test = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.test);
            let train = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.train);
            Finished {
                artifact,
                test,
                train,
                importance: Vec::new(),
                ev: None,
                epochs: Vec::new(),
            }
        }
        ModelKind::Meta => {
            let Decision::ExpectedValue(ev) = &cfg.decision else {
                return Err(ModelError::Params(
                    "the meta-labeler decides by expected value only".to_string(),
                ));
            };
            let fitted = crate::meta::fit(ds, &split, cfg.gbdt, ev, threads, &cfg.version)?;
            let artifact = ModelArtifact::meta(&fitted.model)?;
            let test = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.test);
            let train = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.train);
            Finished {
                artifact,
                test,
                train,
                importance: Vec::new(),
                ev: fitted.ev.clone(),
                epochs: Vec::new(),
            }
        }
        ModelKind::Temporal => {
            let Decision::ExpectedValue(ev) = &cfg.decision else {
                return Err(ModelError::Params(
                    "the temporal model decides by expected value only".to_string(),
                ));
            };
            let (fit_rows, calibration_rows) =
                calibration_split(ds, &split.train, ev.calibration_fraction)?;
            let fitted = crate::temporal::train::fit(
                ds,
                &fit_rows,
                &calibration_rows,
                &cfg.temporal,
                ev,
                cfg.threads,
                &cfg.version,
            )?;
            Finished {
                test: fitted.evaluate(ds, &split.test),
                train: fitted.evaluate(ds, &split.train),
                artifact: ModelArtifact::temporal(&fitted.model)?,
                importance: Vec::new(),
                ev: Some(fitted.ev.clone()),
                epochs: fitted.epochs.clone(),
            }
        }
        ModelKind::Ensemble => {
            let mut gbdt = fit_booster(ds, &fit_rows, cfg, &format!("{}-gbdt", cfg.version))?;
            let mut ev_report = decide(&mut gbdt, &[])?;
            let importance = gbdt.feature_importance();
            let momentum =
                ModelArtifact::momentum(&cfg.momentum, &format!("{}-momentum", cfg.version))?;
            // Deciding by expected value, the gbdt and the temporal model are stacked (their
            // expected returns combined); otherwise the gbdt alone, then momentum.
            let mut epochs = Vec::new();
            let artifact = match &cfg.decision {
                Decision::ExpectedValue(ev) => {
                    let (artifact, report, temporal_epochs) =
                        crate::stack::train_stacked(ds, &split.train, cfg, ev, &gbdt, momentum)?;
                    ev_report = Some(report);
                    epochs = temporal_epochs;
                    artifact
                }
                _ => ModelArtifact::ensemble(
                    &cfg.ensemble,
                    vec![ModelArtifact::gbdt(&gbdt)?, momentum],
                    &cfg.version,
                )?,
            };
            let test = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.test);
            let train = evaluate_model(build_model(&artifact)?.as_mut(), ds, &split.train);
            Finished {
                artifact,
                test,
                train,
                importance,
                ev: ev_report,
                epochs,
            }
        }
    };
    finish(ds, &split, cfg, finished)
}

/// Builds the dataset from candles and trains, choosing the exits on the validation slice
/// (see [`crate::exit_choice::train_choosing_exits_lean`]).
pub fn train(
    series: &[Series],
    cfg: &TrainConfig,
) -> Result<(ModelArtifact, TrainReport), ModelError> {
    let prepared = Dataset::prepare(series, cfg.threads)?;
    let c = crate::exit_choice::train_choosing_exits_lean(&prepared, cfg)?;
    Ok((c.artifact, c.report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gbdt::decide;

    #[test]
    fn calibrated_edges_split_the_rows_in_the_target_mix() {
        // P(buy) and P(sell) correlated (both rise with volatility), with some spread.
        let probs: Vec<(f64, f64)> = (0..1000)
            .map(|i| {
                let v = i as f64 / 1000.0;
                (v * 0.5, v * 0.45 + ((i * 7) % 13) as f64 / 100.0)
            })
            .collect();
        let (b, s) = calibrate_edges(&probs, (0.35, 0.35)).expect("valid");
        let mix = crate::SignalMix::of(probs.iter().map(|&(pb, ps)| decide(pb, ps, b, s).action));
        assert!((mix.buy - 0.35).abs() <= 0.01, "{mix:?}");
        assert!((mix.sell - 0.35).abs() <= 0.01, "{mix:?}");
        assert!(calibrate_edges(&probs, (0.6, 0.5)).is_err());
        assert!(calibrate_edges(&[], (0.3, 0.3)).is_err());
    }
}
