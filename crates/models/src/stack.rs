//! The ensemble's priced members combined by expected value (stacking), not by votes.
//!
//! Each member that prices its trades (the gbdt and the temporal model, each deciding by its
//! own [`EvRule`]) turns its scores into an expected net return per side. The stack takes the
//! weighted mean of the members' expected returns, side by side, with weights fitted on the
//! validation slice (the calibration rows: the weight that makes the mean closest, in least
//! squares, to the trades' realized net returns), and fits one more expected-value rule on
//! that mean ([`fit_rule`]: isotonic calibration into an expected net return and the margin,
//! chosen on the same slice). BUY or SELL when the combined expected return clears the margin,
//! HOLD otherwise, and HOLD while a member has no price yet (the temporal model warming up).
//!
//! In an ensemble artifact the stacked members are the first `members` of the member list and
//! the stack is one member of the ensemble: the ensemble's fallback rule (a member that held
//! over `hold_limit` of its window hands over to the next) applies to it as to any member.

use qt_candles::Candle;
use qt_features::FeatureVector;
use serde::{Deserialize, Serialize};

use crate::ev::{EvReport, EvRow, EvRule, EvSettings, fit_rule};
use crate::labels::Outcomes;
use crate::{
    GbdtModel, Model, ModelArtifact, ModelError, ModelKind, Signal, TemporalModel, TradeCosts,
    build_model,
};

/// What an ensemble artifact keeps of its stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackParams {
    /// How many of the ensemble's first members are stacked.
    pub members: usize,
    /// Weight of each stacked member's expected return (non-negative, summing to 1).
    pub weights: Vec<f64>,
    /// The rule on the weighted mean of the members' expected returns.
    pub ev: EvRule,
}

/// A member whose trades are priced.
#[derive(Debug)]
enum Priced {
    Gbdt(Box<GbdtModel>),
    Temporal(Box<TemporalModel>),
}

impl Priced {
    fn from_artifact(a: &ModelArtifact) -> Result<Self, ModelError> {
        let bad =
            |what: &str| ModelError::Format(format!("a stacked {what} must price its trades"));
        match a.kind {
            ModelKind::Gbdt => {
                let m = GbdtModel::from_params_json(&a.params, &a.version)?;
                if m.ev_rule().is_none() {
                    return Err(bad("gbdt"));
                }
                Ok(Priced::Gbdt(Box::new(m)))
            }
            ModelKind::Temporal => Ok(Priced::Temporal(Box::new(TemporalModel::from_params_json(
                &a.params, &a.version,
            )?))),
            _ => Err(bad("model")),
        }
    }

    /// Expected net return of a long and of a short, `None` while the member cannot price.
    fn expected(&mut self, symbol: &str, features: &FeatureVector) -> Option<(f64, f64)> {
        match self {
            Priced::Gbdt(m) => {
                let (b, s) = m.probabilities(&features.values);
                m.ev_rule().map(|r| r.expected(b, s))
            }
            Priced::Temporal(m) => {
                let (b, s) = m.observe(symbol, features)?;
                Some(m.ev_rule().expected(b, s))
            }
        }
    }
}

/// The stacked members as one model (see the module documentation).
#[derive(Debug)]
pub struct StackedModel {
    version: String,
    members: Vec<Priced>,
    params: StackParams,
}

impl StackedModel {
    fn new(
        version: &str,
        members: &[ModelArtifact],
        params: StackParams,
    ) -> Result<Self, ModelError> {
        params.ev.validate()?;
        let sum: f64 = params.weights.iter().sum();
        if params.members != members.len()
            || params.weights.len() != members.len()
            || params.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
            || (sum - 1.0).abs() > 1e-9
        {
            return Err(ModelError::Format(format!(
                "stack of {} members with weights {:?}",
                members.len(),
                params.weights
            )));
        }
        Ok(StackedModel {
            version: version.to_string(),
            members: members
                .iter()
                .map(Priced::from_artifact)
                .collect::<Result<_, _>>()?,
            params,
        })
    }

    /// The weighted mean of the members' expected returns (long, short); every member sees
    /// the candle, so the temporal member's history stays current.
    fn combined(&mut self, symbol: &str, features: &FeatureVector) -> Option<(f64, f64)> {
        let mut out = Some((0.0, 0.0));
        for (m, w) in self.members.iter_mut().zip(&self.params.weights) {
            let e = m.expected(symbol, features);
            out = match (out, e) {
                (Some((l, s)), Some((el, es))) => Some((l + w * el, s + w * es)),
                _ => None,
            };
        }
        out
    }
}

impl Model for StackedModel {
    fn name(&self) -> &str {
        "stacked"
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }

    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, _candle: &Candle) -> Signal {
        match self.combined(symbol, features) {
            Some((l, s)) => self.params.ev.decide(l, s),
            None => Signal::hold(1.0),
        }
    }

    fn memory(&self) -> usize {
        self.members
            .iter()
            .map(|m| match m {
                Priced::Gbdt(_) => 0,
                Priced::Temporal(t) => t.window(),
            })
            .max()
            .unwrap_or(0)
    }
}

/// The models of an ensemble artifact's members: with a `stack` in `params`, its first
/// members as one [`StackedModel`], then the rest.
pub(crate) fn ensemble_members(
    params: &serde_json::Value,
    members: &[ModelArtifact],
    version: &str,
) -> Result<Vec<Box<dyn Model>>, ModelError> {
    let mut out: Vec<Box<dyn Model>> = Vec::with_capacity(members.len());
    let mut rest = members;
    if let Some(v) = params.get("stack") {
        let stack: StackParams = serde_json::from_value(v.clone())
            .map_err(|e| ModelError::Format(format!("ensemble stack: {e}")))?;
        if stack.members > members.len() {
            return Err(ModelError::Format("the stack has too few members".into()));
        }
        let (stacked, others) = members.split_at(stack.members);
        for a in stacked {
            a.validate()?;
        }
        out.push(Box::new(StackedModel::new(
            &format!("{version}-stacked"),
            stacked,
            stack,
        )?));
        rest = others;
    }
    for a in rest {
        out.push(build_model(a)?);
    }
    Ok(out)
}

/// One calibration row: what each stacked member expects of a long and a short there, and
/// what they did.
#[derive(Debug, Clone)]
pub(crate) struct StackRow {
    pub symbol: u16,
    pub open_time: i64,
    /// Per member: (expected long return, expected short return).
    pub expected: Vec<(f64, f64)>,
    pub outcomes: Outcomes,
}

/// Fits the weights (a grid of 21 steps per member pair; one member gets weight 1) and the
/// rule on their weighted mean.
///
/// # Errors
/// [`ModelError::Data`] without rows; [`ModelError::Params`] for more than two members.
pub(crate) fn fit_stack(
    rows: &[StackRow],
    costs: &TradeCosts,
    interval_ms: i64,
    settings: &EvSettings,
) -> Result<(StackParams, EvReport), ModelError> {
    let n = rows.first().map_or(0, |r| r.expected.len());
    if rows.is_empty() || n == 0 || rows.iter().any(|r| r.expected.len() != n) {
        return Err(ModelError::Data("no rows to fit the stack on".into()));
    }
    let weights = match n {
        1 => vec![1.0],
        2 => {
            let sse = |w: f64| -> f64 {
                rows.iter()
                    .map(|r| {
                        let (a, b) = (r.expected[0], r.expected[1]);
                        let l = w * a.0 + (1.0 - w) * b.0
                            - r.outcomes.long.net_return(costs, interval_ms);
                        let s = w * a.1 + (1.0 - w) * b.1
                            - r.outcomes.short.net_return(costs, interval_ms);
                        l * l + s * s
                    })
                    .sum()
            };
            let best = (0..=20)
                .map(|k| f64::from(k) / 20.0)
                .min_by(|a, b| sse(*a).total_cmp(&sse(*b)))
                .unwrap_or(0.5);
            vec![best, 1.0 - best]
        }
        _ => {
            return Err(ModelError::Params(format!(
                "a stack of {n} members (at most 2)"
            )));
        }
    };
    let ev_rows: Vec<EvRow> = rows
        .iter()
        .map(|r| {
            let (l, s) = r
                .expected
                .iter()
                .zip(&weights)
                .fold((0.0, 0.0), |(l, s), (e, w)| (l + w * e.0, s + w * e.1));
            EvRow {
                symbol: r.symbol,
                open_time: r.open_time,
                p_buy: l,
                p_sell: s,
                outcomes: r.outcomes,
            }
        })
        .collect();
    let (ev, report) = fit_rule(ev_rows, costs, interval_ms, settings)?;
    Ok((
        StackParams {
            members: n,
            weights,
            ev,
        },
        report,
    ))
}

/// Trains the temporal model beside a gbdt that decides by expected value (the same fit and
/// calibration rows), fits the stack of the two on the calibration rows, and returns the
/// ensemble artifact (stack, then `fallback`), the stack's report and the temporal model's
/// epochs.
pub(crate) fn train_stacked(
    ds: &crate::dataset::Dataset,
    train_rows: &[usize],
    cfg: &crate::train::TrainConfig,
    settings: &EvSettings,
    gbdt: &GbdtModel,
    fallback: ModelArtifact,
) -> Result<(ModelArtifact, EvReport, Vec<crate::temporal::EpochLoss>), ModelError> {
    let gbdt_rule = gbdt
        .ev_rule()
        .ok_or_else(|| ModelError::Params("the stacked gbdt has no expected-value rule".into()))?;
    let (fit_rows, calibration_rows) =
        crate::train::calibration_split(ds, train_rows, settings.calibration_fraction)?;
    let fitted = crate::temporal::train::fit(
        ds,
        &fit_rows,
        &calibration_rows,
        &cfg.temporal,
        settings,
        cfg.threads,
        &format!("{}-temporal", cfg.version),
    )?;
    let rows: Vec<StackRow> = calibration_rows
        .iter()
        .filter_map(|&i| {
            let (tb, ts) = fitted.scores[i]?;
            let (gb, gs) = gbdt.probabilities(&ds.features[i]);
            Some(StackRow {
                symbol: ds.symbol_of[i],
                open_time: ds.candles[i].open_time,
                expected: vec![
                    gbdt_rule.expected(gb, gs),
                    fitted.model.ev_rule().expected(tb, ts),
                ],
                outcomes: ds.outcomes[i],
            })
        })
        .collect();
    let (stack, report) = fit_stack(&rows, &ds.labeling.costs, ds.interval_ms, settings)?;
    let members = vec![
        ModelArtifact::gbdt(gbdt)?,
        ModelArtifact::temporal(&fitted.model)?,
        fallback,
    ];
    let mut artifact = ModelArtifact::ensemble(&cfg.ensemble, members, &cfg.version)?;
    artifact.params["stack"] =
        serde_json::to_value(&stack).map_err(|e| ModelError::Format(e.to_string()))?;
    Ok((artifact, report, fitted.epochs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Outcome;
    use crate::temporal::net::Rng;

    #[test]
    fn the_weight_goes_to_the_member_whose_expected_returns_match_the_trades() {
        let mut rng = Rng::new(1);
        let costs = TradeCosts::default();
        let rows: Vec<StackRow> = (0..3000)
            .map(|i| {
                let up = rng.unit() < 0.5;
                let g = if up { 0.02 } else { -0.02 };
                let informed = if up { (0.01, -0.01) } else { (-0.01, 0.01) };
                let noise = (rng.unit() * 0.02 - 0.01, rng.unit() * 0.02 - 0.01);
                StackRow {
                    symbol: (i % 2) as u16,
                    open_time: (i / 2) as i64 * 300_000,
                    expected: vec![noise, informed],
                    outcomes: Outcomes {
                        long: Outcome {
                            gross_return: g,
                            held: 2,
                        },
                        short: Outcome {
                            gross_return: -g,
                            held: 2,
                        },
                    },
                }
            })
            .collect();
        let (p, report) = fit_stack(&rows, &costs, 300_000, &EvSettings::default()).expect("fits");
        assert_eq!(p.members, 2);
        assert!(p.weights[1] >= 0.9, "{:?}", p.weights);
        assert!((p.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(report.margin.is_some(), "{:?}", report.trials);
        // Swapping the members moves the weight with the information.
        let swapped: Vec<StackRow> = rows
            .iter()
            .map(|r| StackRow {
                expected: vec![r.expected[1], r.expected[0]],
                ..r.clone()
            })
            .collect();
        let (q, _) = fit_stack(&swapped, &costs, 300_000, &EvSettings::default()).expect("fits");
        assert!(q.weights[0] >= 0.9, "{:?}", q.weights);
    }
}
