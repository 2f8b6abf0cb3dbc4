//! The exits are part of the strategy, chosen on validation data: training tries a small grid
//! of exit plans declared in the configuration ([`ExitGrid`]: every distance of the base plan
//! scaled, the trailing stop on or off), labels the rows with each, and keeps the plan whose
//! validation trades — the expected-value rule's chosen margin on its calibration slice, after
//! every cost and only when they beat their side's base rate ([`crate::ev`]) — made the most.
//! When no plan passes, the model of the base plan is kept: it has no margin, so it holds. The
//! chosen plan is saved in the artifact (its `labeling`), and whoever trades the model trades it
//! with those exits ([`crate::Model::exits`]).
//!
//! A gbdt fits its boosters **once**, on the base plan's labels, and each plan only re-labels
//! the rows and re-fits the expected-value rule (the isotonic calibration and the margin, which
//! are cheap) on its own outcomes of the calibration slice: the boosters rank entries, and each
//! plan prices the ranking under its exits. The calibration rows of every plan lie after the
//! boosters' fitted rows and their label windows, as in a single-plan run. With
//! [`ExitGrid::refit_per_plan`] (and for the temporal model and the ensemble, whose fit
//! involves more than the boosters) each plan fits its own model instead, at about one full
//! training per plan.
//!
//! Since a shared-booster plan is judged on its calibration slice alone,
//! [`train_choosing_exits_lean`] (walk-forward and `qtctl train`) labels such a plan only there
//! and labels it in full only if it is kept; the rows themselves are known without running
//! their trades whenever the time stop closes every trade within the label horizon. Same
//! choice, model, report and dataset as [`train_choosing_exits`] (which clm calls, as it
//! amends every plan's dataset); a test compares the two.
//!
//! Every plan tried is a trial: walk-forward and clm count them in the deflated Sharpe ratio.

use qt_exits::ExitConfig;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Prepared};
use crate::ev::{EvReport, EvRule, EvSettings};
use crate::train::{
    Decision, TrainConfig, TrainReport, all_probabilities, ev_rule_on, finish_gbdt, fit_booster,
    gbdt_probabilities, row_roles, train_on,
};
use crate::{GbdtModel, ModelArtifact, ModelError, ModelKind};

/// The exit plans training tries, around the configured (base) plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExitGrid {
    /// Factors every distance of the base plan is scaled by ([`ExitConfig::scaled`]: the stop,
    /// the targets, the trailing activation and callback). Default 0.75, 1, 1.5.
    pub scales: Vec<Decimal>,
    /// The trailing stop on and/or off; empty: as the base plan has it. Default on, off.
    pub trailing: Vec<bool>,
    /// Fit a gbdt's boosters anew for every plan (on that plan's labels) instead of once on
    /// the base plan's; default false. About one full training per plan.
    pub refit_per_plan: bool,
}

impl Default for ExitGrid {
    fn default() -> Self {
        ExitGrid {
            scales: vec![Decimal::new(75, 2), Decimal::ONE, Decimal::new(15, 1)],
            trailing: vec![true, false],
            refit_per_plan: false,
        }
    }
}

/// One plan of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ExitCandidate {
    /// `×0.75 trailing`, `×1 no trailing`, …
    pub label: String,
    pub scale: Decimal,
    pub trailing: bool,
    pub exits: ExitConfig,
}

impl ExitGrid {
    /// The base plan alone (no choice).
    pub fn base_only() -> Self {
        ExitGrid {
            scales: vec![Decimal::ONE],
            trailing: Vec::new(),
            refit_per_plan: false,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        if self.scales.is_empty() || self.scales.iter().any(|s| *s <= Decimal::ZERO) {
            return Err(ModelError::Params(format!(
                "exit grid scales {:?} must be positive and at least one",
                self.scales
            )));
        }
        Ok(())
    }

    /// Every distinct plan of the grid around `base`, scales outer, trailing inner.
    pub fn candidates(&self, base: &ExitConfig) -> Vec<ExitCandidate> {
        let base_trailing = [base.trailing_activation_pct.is_some()];
        let trailing: &[bool] = if self.trailing.is_empty() {
            &base_trailing
        } else {
            &self.trailing
        };
        let mut out: Vec<ExitCandidate> = Vec::new();
        for &scale in &self.scales {
            for &on in trailing {
                let exits = base.with_trailing(on).scaled(scale);
                if out.iter().any(|c| c.exits == exits) {
                    continue;
                }
                out.push(ExitCandidate {
                    label: format!(
                        "×{} {}",
                        scale.normalize(),
                        if on { "trailing" } else { "no trailing" }
                    ),
                    scale,
                    trailing: on,
                    exits,
                });
            }
        }
        out
    }
}

/// What one plan of the grid did on the validation slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitTrial {
    pub label: String,
    pub scale: Decimal,
    pub trailing: bool,
    /// The margin the expected-value rule chose with these exits; `None`: no margin passed
    /// (the model would hold), or the plan could not be trained (`error`).
    pub margin: Option<f64>,
    /// The chosen margin's validation trades, their summed net return (fractions of the
    /// notional) and the t-statistic of their excess over their side's base rate.
    pub trades: usize,
    pub net_return: f64,
    pub excess_t: f64,
    #[serde(default)]
    pub error: Option<String>,
}

impl ExitTrial {
    fn of(c: &ExitCandidate, ev: Option<&EvReport>) -> Self {
        let chosen = ev.and_then(|r| {
            let m = r.margin?;
            r.trials.iter().find(|t| t.margin == m)
        });
        ExitTrial {
            label: c.label.clone(),
            scale: c.scale,
            trailing: c.trailing,
            margin: chosen.map(|t| t.margin),
            trades: chosen.map_or(0, |t| t.trades),
            net_return: chosen.map_or(0.0, |t| t.net_return),
            excess_t: chosen.map_or(0.0, |t| t.excess_t),
            error: None,
        }
    }

    fn failed(c: &ExitCandidate, e: &ModelError) -> Self {
        ExitTrial {
            label: c.label.clone(),
            scale: c.scale,
            trailing: c.trailing,
            margin: None,
            trades: 0,
            net_return: 0.0,
            excess_t: 0.0,
            error: Some(e.to_string()),
        }
    }
}

/// The grid a training run tried and the plan it kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitChoice {
    pub trials: Vec<ExitTrial>,
    /// Index of the plan kept (its model is the artifact).
    pub chosen: usize,
    /// Whether the kept plan passed on validation; false: none did, the base plan's model was
    /// kept and it holds.
    pub validated: bool,
    /// Models fitted to make the choice: 1 when the plans share the boosters, one per plan
    /// trained with [`ExitGrid::refit_per_plan`] (or a kind that refits).
    #[serde(default)]
    pub fits: usize,
}

impl TrainConfig {
    /// The exit plans this configuration's training tries: the grid around the labels' exits
    /// when the model decides by expected value (the choice needs its validation trades),
    /// else the labels' exits alone. Each one is a trial.
    pub fn exit_candidates(&self) -> Vec<ExitCandidate> {
        let base = &self.labeling.exits;
        let grid = match (&self.decision, self.kind) {
            (Decision::ExpectedValue(_), k) if !k.is_rule() => self.exit_grid.clone(),
            _ => ExitGrid::base_only(),
        };
        grid.candidates(base)
    }
}

/// A training run that chose its exits: the kept model, its report (with
/// [`TrainReport::exits`]) and the dataset labelled with the kept plan.
#[derive(Debug)]
pub struct Chosen {
    pub artifact: ModelArtifact,
    pub report: TrainReport,
    pub dataset: Dataset,
}

/// Labels the prepared series with each plan of [`TrainConfig::exit_candidates`], lets
/// `adjust` amend each dataset (clm adds its realized outcomes), trains, and keeps the plan
/// whose validation trades made the most (see the module documentation: a gbdt deciding by
/// expected value fits its boosters once; otherwise, or with [`ExitGrid::refit_per_plan`],
/// each plan trains with [`train_on`]).
///
/// # Errors
/// The base plan's error (or, without it in the grid, the first) when no plan could be
/// trained; [`ModelError::Params`] for an invalid grid.
pub fn train_choosing_exits(
    prepared: &Prepared<'_>,
    cfg: &TrainConfig,
    adjust: &mut dyn FnMut(&mut Dataset) -> Result<(), ModelError>,
) -> Result<Chosen, ModelError> {
    choose(prepared, cfg, false, adjust)
}

/// [`train_choosing_exits`] without an `adjust` (walk-forward, `qtctl train`): the same choice,
/// model, report and dataset, but when the boosters are shared a plan other than theirs is
/// labelled only on the calibration rows its expected-value rule reads (rows the time stop
/// surely closes within the horizon are rows whatever their trades do, so the split and the
/// slice are found without running them; see [`Dataset::partly_labelled`]), and in full only
/// if it is kept. About a fifth of the labelling of each such plan.
///
/// # Errors
/// As [`train_choosing_exits`].
pub fn train_choosing_exits_lean(
    prepared: &Prepared<'_>,
    cfg: &TrainConfig,
) -> Result<Chosen, ModelError> {
    choose(prepared, cfg, true, &mut |_| Ok(()))
}

fn choose(
    prepared: &Prepared<'_>,
    cfg: &TrainConfig,
    lean: bool,
    adjust: &mut dyn FnMut(&mut Dataset) -> Result<(), ModelError>,
) -> Result<Chosen, ModelError> {
    cfg.exit_grid.validate()?;
    let candidates = cfg.exit_candidates();
    let base = candidates
        .iter()
        .position(|c| c.exits == cfg.labeling.exits)
        .unwrap_or(0);
    match &cfg.decision {
        Decision::ExpectedValue(ev)
            if cfg.kind == ModelKind::Gbdt && !cfg.exit_grid.refit_per_plan =>
        {
            choose_sharing_the_boosters(prepared, cfg, ev, &candidates, base, lean, adjust)
        }
        _ => choose_refitting_per_plan(prepared, cfg, &candidates, base, adjust),
    }
}

/// A plan's dataset (`None` when only its calibration rows were labelled: it is labelled in
/// full if it is kept) and the expected-value rule calibrated on it.
struct Priced {
    k: usize,
    dataset: Option<Dataset>,
    rule: EvRule,
    report: EvReport,
}

/// `ds`'s calibration rows under `tc` that no fitted label saw: those from `free_from` on (all
/// of them when the plans keep the same rows).
fn unseen_calibration_rows(
    ds: &Dataset,
    tc: &TrainConfig,
    free_from: i64,
) -> Result<Vec<usize>, ModelError> {
    Ok(row_roles(ds, tc)?
        .calibration
        .into_iter()
        .filter(|&i| ds.candles[i].open_time >= free_from)
        .collect())
}

/// The boosters fitted once (on the base plan's rows, else the first plan that can be
/// trained), each plan's rule calibrated on its own outcomes of the calibration slice. With
/// `lean` (no `adjust` to run), a plan other than the boosters' is labelled only on that slice
/// ([`Dataset::partly_labelled`]) — the rule reads nothing else — and in full only if it is
/// kept: the same rows, outcomes, rules and choice as labelling it in full, at a fraction of
/// the labelling.
fn choose_sharing_the_boosters(
    prepared: &Prepared<'_>,
    cfg: &TrainConfig,
    ev: &EvSettings,
    candidates: &[ExitCandidate],
    base: usize,
    lean: bool,
    adjust: &mut dyn FnMut(&mut Dataset) -> Result<(), ModelError>,
) -> Result<Chosen, ModelError> {
    let threads = cfg.threads.max(1);
    let mut trials: Vec<Option<ExitTrial>> = vec![None; candidates.len()];
    // The booster and the first open time its fitted rows' labels leave free for calibration.
    let mut booster: Option<(GbdtModel, i64)> = None;
    let mut fits = 0;
    // Only the base plan and the best plan so far are kept in memory.
    let mut kept: Vec<Priced> = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let mut first_error: Option<(usize, ModelError)> = None;
    let order = std::iter::once(base).chain((0..candidates.len()).filter(|&k| k != base));
    for k in order {
        let c = &candidates[k];
        let mut tc = cfg.clone();
        tc.labeling.exits = c.exits.clone();
        let priced = match &booster {
            Some((model, free_from)) if lean => Dataset::partly_labelled(prepared, &tc.labeling)
                .and_then(|mut part| {
                    let rows = unseen_calibration_rows(part.dataset(), &tc, *free_from)?;
                    part.complete(prepared, &rows)?;
                    let ds = part.dataset();
                    let probs = gbdt_probabilities(model, ds, &rows, threads);
                    let (rule, report) = ev_rule_on(ds, &rows, probs, ev)?;
                    Ok(Priced {
                        k,
                        dataset: None,
                        rule,
                        report,
                    })
                }),
            _ => Dataset::labelled(prepared, &tc.labeling).and_then(|mut ds| {
                adjust(&mut ds)?;
                if booster.is_none() {
                    let roles = row_roles(&ds, &tc)?;
                    let model = fit_booster(&ds, &roles.fit, &tc, &cfg.version)?;
                    fits += 1;
                    let free_from = roles
                        .calibration
                        .iter()
                        .map(|&i| ds.candles[i].open_time)
                        .min()
                        .unwrap_or(i64::MAX);
                    booster = Some((model, free_from));
                }
                let Some((model, free_from)) = &booster else {
                    return Err(ModelError::Data("internal: no booster".to_string()));
                };
                let rows = unseen_calibration_rows(&ds, &tc, *free_from)?;
                let probs = gbdt_probabilities(model, &ds, &rows, threads);
                let (rule, report) = ev_rule_on(&ds, &rows, probs, ev)?;
                Ok(Priced {
                    k,
                    dataset: Some(ds),
                    rule,
                    report,
                })
            }),
        };
        let priced = match priced {
            Ok(p) => p,
            Err(e) => {
                trials[k] = Some(ExitTrial::failed(c, &e));
                if k == base || first_error.is_none() {
                    first_error = Some((k, e));
                }
                continue;
            }
        };
        let trial = ExitTrial::of(c, Some(&priced.report));
        // The most net return; on a tie, the plan listed first.
        if trial.margin.is_some()
            && best.is_none_or(|(b, r)| trial.net_return > r || (trial.net_return == r && k < b))
        {
            best = Some((k, trial.net_return));
        }
        trials[k] = Some(trial);
        kept.push(priced);
        let best_k = best.map(|(i, _)| i);
        kept.retain(|p| p.k == base || Some(p.k) == best_k || (best_k.is_none() && p.k == k));
    }
    let trials: Vec<ExitTrial> = trials.into_iter().flatten().collect();
    let pick = best
        .map(|(i, _)| i)
        .or_else(|| kept.iter().any(|p| p.k == base).then_some(base))
        .or_else(|| kept.first().map(|p| p.k));
    let (Some(pick), Some((mut model, _))) = (pick, booster) else {
        return Err(first_error.map_or_else(
            || ModelError::Data("no exit plan to train".to_string()),
            |(_, e)| e,
        ));
    };
    let at = kept
        .iter()
        .position(|p| p.k == pick)
        .ok_or_else(|| ModelError::Data("internal: the chosen plan was dropped".to_string()))?;
    let Priced {
        dataset,
        rule,
        report: ev_report,
        ..
    } = kept.swap_remove(at);
    let mut tc = cfg.clone();
    tc.labeling.exits = candidates[pick].exits.clone();
    let dataset = match dataset {
        Some(ds) => ds,
        // A plan priced on its calibration rows alone (`lean`, so no `adjust`): labelled in
        // full now, as the reference path labelled it.
        None => Dataset::labelled(prepared, &tc.labeling)?,
    };
    model.set_ev_rule(rule)?;
    let split = row_roles(&dataset, &tc)?.split;
    let all = all_probabilities(&model, &dataset, threads);
    let (artifact, mut report) = finish_gbdt(&model, &dataset, &split, &all, &tc, Some(ev_report))?;
    report.exits = Some(ExitChoice {
        trials,
        chosen: pick,
        validated: best.is_some(),
        fits,
    });
    Ok(Chosen {
        artifact,
        report,
        dataset,
    })
}

/// Each plan trained on its own labels with [`train_on`].
fn choose_refitting_per_plan(
    prepared: &Prepared<'_>,
    cfg: &TrainConfig,
    candidates: &[ExitCandidate],
    base: usize,
    adjust: &mut dyn FnMut(&mut Dataset) -> Result<(), ModelError>,
) -> Result<Chosen, ModelError> {
    let mut fits = 0;
    let mut trials = Vec::with_capacity(candidates.len());
    // Only the best plan so far and the base plan are kept in memory.
    let mut kept: Vec<(usize, ModelArtifact, TrainReport, Dataset)> = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    let mut first_error: Option<(usize, ModelError)> = None;
    for (k, c) in candidates.iter().enumerate() {
        let mut tc = cfg.clone();
        tc.labeling.exits = c.exits.clone();
        let trained = Dataset::labelled(prepared, &tc.labeling).and_then(|mut ds| {
            adjust(&mut ds)?;
            let (artifact, report) = train_on(&ds, &tc)?;
            fits += 1;
            Ok((artifact, report, ds))
        });
        let (artifact, report, ds) = match trained {
            Ok(t) => t,
            Err(e) => {
                trials.push(ExitTrial::failed(c, &e));
                if k == base || first_error.is_none() {
                    first_error = Some((k, e));
                }
                continue;
            }
        };
        let trial = ExitTrial::of(c, report.ev.as_ref());
        if trial.margin.is_some() && best.is_none_or(|(_, b)| trial.net_return > b) {
            best = Some((k, trial.net_return));
        }
        trials.push(trial);
        kept.push((k, artifact, report, ds));
        // Without a passing plan yet, the latest trained one is kept besides the base, so
        // that a grid whose base cannot be trained still has a model (that holds).
        let best_k = best.map(|(i, _)| i);
        kept.retain(|(i, ..)| *i == base || Some(*i) == best_k || (best_k.is_none() && *i == k));
    }
    let pick = best
        .map(|(i, _)| i)
        .or_else(|| kept.iter().any(|(i, ..)| *i == base).then_some(base))
        .or_else(|| kept.first().map(|(i, ..)| *i));
    let Some(pick) = pick else {
        return Err(first_error.map_or_else(
            || ModelError::Data("no exit plan to train".to_string()),
            |(_, e)| e,
        ));
    };
    let at = kept
        .iter()
        .position(|(i, ..)| *i == pick)
        .ok_or_else(|| ModelError::Data("internal: the chosen plan was dropped".to_string()))?;
    let (_, artifact, mut report, dataset) = kept.swap_remove(at);
    report.exits = Some(ExitChoice {
        trials,
        chosen: pick,
        validated: best.is_some(),
        fits,
    });
    Ok(Chosen {
        artifact,
        report,
        dataset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelKind;

    #[test]
    fn the_default_grid_is_six_distinct_plans_around_the_base() {
        let base = ExitConfig::default();
        let c = ExitGrid::default().candidates(&base);
        assert_eq!(c.len(), 6);
        assert_eq!(c[2].label, "×1 trailing");
        assert_eq!(c[2].exits, base, "the base plan is one of them");
        assert_eq!(c[3].exits.trailing_activation_pct, None);
        assert_eq!(c[4].exits.stop_pct, Decimal::from(3));
        // A base without trailing: "on" takes the default activation, still six plans.
        let c = ExitGrid::default().candidates(&base.with_trailing(false));
        assert_eq!(c.len(), 6);
        // The base alone, and duplicates collapse.
        assert_eq!(ExitGrid::base_only().candidates(&base).len(), 1);
        let dup = ExitGrid {
            scales: vec![Decimal::ONE, Decimal::ONE],
            trailing: vec![true, true],
            refit_per_plan: false,
        };
        assert_eq!(dup.candidates(&base).len(), 1);
        assert!(
            ExitGrid {
                scales: vec![Decimal::ZERO],
                trailing: vec![],
                refit_per_plan: false,
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn only_a_model_deciding_by_expected_value_chooses_its_exits() {
        let mut cfg = TrainConfig::new(ModelKind::Gbdt, "v");
        assert_eq!(cfg.exit_candidates().len(), 6);
        cfg.decision = Decision::FixedEdges;
        assert_eq!(cfg.exit_candidates().len(), 1);
        let cfg = TrainConfig::new(ModelKind::Momentum, "v");
        assert_eq!(cfg.exit_candidates().len(), 1);
    }
}
