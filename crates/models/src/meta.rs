//! The GBDT as a meta-labeler on top of the trend rule (model kind `meta`; López de Prado,
//! *Advances in Financial Machine Learning*, ch. 3.6).
//!
//! The primary model ([`crate::trend`]) decides the side; the secondary, a [`GbdtModel`], is
//! trained only on the candles where the primary fires, to answer "the primary's trade, managed
//! by the exits of the labels, nets a gain after every cost". Its score is turned into an
//! expected net return by the expected-value rule of [`crate::ev`], fitted on the calibration
//! slice of the training window with the primary's trades as the only trades: the long side of
//! the rule stands for "take the primary's trade" (both of a row's outcomes are the primary's
//! trade, both scores the booster's, so the rule can only say BUY — take it — or HOLD). The
//! rule is fitted on the earlier half of the slice's primary trades, and its margin is kept only
//! if, on the later half, the trades it picks make money and beat taking *every* primary trade
//! by the rule's excess t-statistic (`EvSettings::min_excess_t`, over at least `min_trades`
//! trades); otherwise the model holds, always. A training window with too few primary trades to fit and calibrate on gives a
//! model that holds, and says why in its report.

use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::FeatureVector;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Split};
use crate::ev::{EvReport, EvRow, EvSettings, fit_rule_in_sample};
use crate::labels::{Outcome, Outcomes};
use crate::trend::{TrendConfig, TrendModel};
use crate::{GbdtModel, GbdtParams, Model, ModelError, Signal};

/// Fewest primary trades among a window's fit rows for the secondary to be fitted.
pub const MIN_FIT_TRADES: usize = 100;

/// The trend rule filtered by a calibrated booster.
#[derive(Debug)]
pub struct MetaModel {
    primary: TrendModel,
    /// `None`: the training window had too few primary trades; the model holds.
    secondary: Option<GbdtModel>,
    version: String,
}

#[derive(Serialize, Deserialize)]
struct MetaParams {
    trend: TrendConfig,
    /// The booster's params (with its expected-value rule), or null.
    gbdt: serde_json::Value,
}

impl MetaModel {
    pub fn new(
        trend: TrendConfig,
        secondary: Option<GbdtModel>,
        version: impl Into<String>,
    ) -> Result<Self, ModelError> {
        if let Some(g) = &secondary
            && g.ev_rule().is_none()
        {
            return Err(ModelError::Params(
                "the meta-labeler's booster needs an expected-value rule".to_string(),
            ));
        }
        Ok(MetaModel {
            primary: TrendModel::new(trend, "primary")?,
            secondary,
            version: version.into(),
        })
    }

    pub(crate) fn to_params_json(&self) -> Result<serde_json::Value, ModelError> {
        let gbdt = match &self.secondary {
            Some(g) => g.to_params_json()?,
            None => serde_json::Value::Null,
        };
        serde_json::to_value(MetaParams {
            trend: *self.primary.config(),
            gbdt,
        })
        .map_err(|e| ModelError::Format(e.to_string()))
    }

    pub(crate) fn from_params_json(
        value: &serde_json::Value,
        version: &str,
    ) -> Result<Self, ModelError> {
        let p: MetaParams = serde_json::from_value(value.clone())
            .map_err(|e| ModelError::Format(format!("meta params: {e}")))?;
        let secondary = if p.gbdt.is_null() {
            None
        } else {
            Some(GbdtModel::from_params_json(&p.gbdt, version)?)
        };
        Self::new(p.trend, secondary, version)
    }

    /// The secondary's decision on a primary trade: the signal of `side`, priced, when its
    /// expected net return clears the margin; HOLD otherwise.
    fn filter(&self, side: SignalAction, features: &[f64]) -> Signal {
        let Some(g) = &self.secondary else {
            return Signal::hold(1.0);
        };
        let Some(rule) = g.ev_rule() else {
            return Signal::hold(1.0);
        };
        let (p_win, _) = g.probabilities(features);
        let s = rule.decide(p_win, p_win);
        match (s.action, s.expected_return) {
            (SignalAction::Buy, Some(e)) => Signal::priced(side, s.confidence, e),
            _ => Signal {
                action: SignalAction::Hold,
                ..s
            },
        }
    }
}

impl Model for MetaModel {
    fn name(&self) -> &str {
        "meta"
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn predict(&mut self, features: &FeatureVector, candle: &Candle) -> Signal {
        self.predict_for("", features, candle)
    }
    fn predict_for(&mut self, symbol: &str, features: &FeatureVector, candle: &Candle) -> Signal {
        let (primary, _) = self.primary.step(symbol, candle);
        match primary.action {
            SignalAction::Hold => Signal::hold(1.0),
            side => self.filter(side, &features.values),
        }
    }
    fn memory(&self) -> usize {
        self.primary.memory()
    }
}

/// The primary's side on every row of `ds` (running the rule over each symbol's rows in time
/// order, as it would run live): `Some(Buy | Sell)` where it fires.
pub fn primary_sides(
    ds: &Dataset,
    trend: TrendConfig,
) -> Result<Vec<Option<SignalAction>>, ModelError> {
    let mut rule = TrendModel::new(trend, "primary")?;
    let mut order: Vec<usize> = (0..ds.len()).collect();
    order.sort_by_key(|&i| (ds.symbol_of[i], ds.candles[i].open_time));
    let mut sides = vec![None; ds.len()];
    for i in order {
        let symbol = &ds.symbols[usize::from(ds.symbol_of[i])];
        let (s, _) = rule.step(symbol, &ds.candles[i]);
        if s.action != SignalAction::Hold {
            sides[i] = Some(s.action);
        }
    }
    Ok(sides)
}

/// The outcome of the primary's trade on a row.
fn primary_outcome(ds: &Dataset, i: usize, side: SignalAction) -> Outcome {
    match side {
        SignalAction::Sell => ds.outcomes[i].short,
        _ => ds.outcomes[i].long,
    }
}

/// What the meta-labeler's training did.
#[derive(Debug)]
pub struct MetaFit {
    pub model: MetaModel,
    /// The rule's calibration (none when the secondary was not fitted).
    pub ev: Option<EvReport>,
    /// The margin's check on the later half of the calibration trades (none without a
    /// margin on the earlier half).
    pub confirmation: Option<Confirmation>,
    /// Primary trades among the fit rows and the calibration rows.
    pub fit_trades: usize,
    pub calibration_trades: usize,
}

/// Trains the meta-labeler on the training rows of `split`: the fit and calibration rows of
/// [`crate::train`]'s split, restricted to the rows where the primary fires.
pub fn fit(
    ds: &Dataset,
    split: &Split,
    gbdt: GbdtParams,
    ev: &EvSettings,
    threads: usize,
    version: &str,
) -> Result<MetaFit, ModelError> {
    let trend = TrendConfig::default();
    let sides = primary_sides(ds, trend)?;
    let (fit_rows, calibration_rows) =
        crate::train::calibration_split(ds, &split.train, ev.calibration_fraction)?;
    let fired = |rows: &[usize]| -> Vec<usize> {
        rows.iter()
            .copied()
            .filter(|&i| sides[i].is_some())
            .collect()
    };
    let (fit_rows, calibration_rows) = (fired(&fit_rows), fired(&calibration_rows));
    let (fit_trades, calibration_trades) = (fit_rows.len(), calibration_rows.len());
    if fit_trades < MIN_FIT_TRADES || calibration_trades == 0 {
        return Ok(MetaFit {
            model: MetaModel::new(trend, None, version)?,
            ev: None,
            confirmation: None,
            fit_trades,
            calibration_trades,
        });
    }
    let costs = &ds.labeling.costs;
    let side = |i: usize| sides[i].unwrap_or(SignalAction::Buy);
    // "The primary's trade nets a gain" (BUY) against "it does not" (SELL: the second booster
    // learns the complement and is not used to decide).
    let labels: Vec<SignalAction> = fit_rows
        .iter()
        .map(|&i| {
            if primary_outcome(ds, i, side(i)).net_return(costs, ds.interval_ms) > 0.0 {
                SignalAction::Buy
            } else {
                SignalAction::Sell
            }
        })
        .collect();
    let columns = ds.columns(&fit_rows);
    let mut booster = GbdtModel::fit(&columns, &labels, gbdt, threads, version)?;
    drop(columns);
    let row = |i: usize| {
        let (p_win, _) = booster.probabilities(&ds.features[i]);
        let o = primary_outcome(ds, i, side(i));
        EvRow {
            symbol: ds.symbol_of[i],
            open_time: ds.candles[i].open_time,
            p_buy: p_win,
            p_sell: p_win,
            outcomes: Outcomes { long: o, short: o },
        }
    };
    // The rule is fitted (calibration and margin) on the earlier half of the calibration
    // trades, purged of trades whose label window reaches the later half, and must be
    // confirmed on the later half: fitted and judged on the same few hundred trades, the
    // isotonic calibration finds a margin in pure noise.
    let mut times: Vec<i64> = calibration_rows
        .iter()
        .map(|&i| ds.candles[i].open_time)
        .collect();
    times.sort_unstable();
    let cut = times[times.len() / 2];
    let purge_ms = ds.labeling.horizon as i64 * ds.interval_ms;
    let early: Vec<EvRow> = calibration_rows
        .iter()
        .filter(|&&i| ds.candles[i].open_time + purge_ms < cut)
        .map(|&i| row(i))
        .collect();
    let mut late: Vec<EvRow> = calibration_rows
        .iter()
        .filter(|&&i| ds.candles[i].open_time >= cut)
        .map(|&i| row(i))
        .collect();
    if early.is_empty() || late.is_empty() {
        return Ok(MetaFit {
            model: MetaModel::new(trend, None, version)?,
            ev: None,
            confirmation: None,
            fit_trades,
            calibration_trades,
        });
    }
    let (mut rule, mut report) = fit_rule_in_sample(early, costs, ds.interval_ms, ev)?;
    let confirmation = rule.margin.map(|m| {
        late.sort_by_key(|r| (r.symbol, r.open_time));
        confirm(&rule, m, &late, costs, ds.interval_ms, ev)
    });
    if !confirmation.is_some_and(|c| c.confirmed) {
        rule.margin = None;
        report.margin = None;
    }
    booster.set_ev_rule(rule)?;
    Ok(MetaFit {
        model: MetaModel::new(trend, Some(booster), version)?,
        ev: Some(report),
        confirmation,
        fit_trades,
        calibration_trades,
    })
}

/// What the rule's margin did on the later half of the calibration trades.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    pub trades: usize,
    /// Sum of the taken trades' net returns.
    pub net_return: f64,
    /// t-statistic of the taken trades' net return over the mean of every primary trade of
    /// the half.
    pub excess_t: f64,
    /// At least `min_trades` trades, a positive net return and `excess_t ≥ min_excess_t`.
    pub confirmed: bool,
}

/// Trades `rows` (sorted by symbol, then time; one position per symbol at a time) with `rule`
/// at `margin`, against the base rate of taking every row's trade.
fn confirm(
    rule: &crate::EvRule,
    margin: f64,
    rows: &[EvRow],
    costs: &crate::TradeCosts,
    interval_ms: i64,
    ev: &EvSettings,
) -> Confirmation {
    let net = |r: &EvRow| r.outcomes.long.net_return(costs, interval_ms);
    let base = rows.iter().map(net).sum::<f64>() / rows.len().max(1) as f64;
    let rule = crate::EvRule {
        margin: Some(margin),
        ..rule.clone()
    };
    let mut taken: Vec<f64> = Vec::new();
    let mut busy: (u16, i64) = (u16::MAX, i64::MIN);
    for r in rows {
        if r.symbol == busy.0 && r.open_time < busy.1 {
            continue;
        }
        if rule.decide(r.p_buy, r.p_sell).action != SignalAction::Buy {
            continue;
        }
        taken.push(net(r));
        busy = (
            r.symbol,
            r.open_time + r.outcomes.long.held as i64 * interval_ms,
        );
    }
    let n = taken.len() as f64;
    let net_return: f64 = taken.iter().sum();
    let excess_t = if taken.len() < 2 {
        0.0
    } else {
        let mean = net_return / n - base;
        let var = taken
            .iter()
            .map(|x| (x - base - mean) * (x - base - mean))
            .sum::<f64>()
            / (n - 1.0);
        if var > 0.0 {
            mean / (var / n).sqrt()
        } else {
            0.0
        }
    };
    Confirmation {
        trades: taken.len(),
        net_return,
        excess_t,
        confirmed: taken.len() >= ev.min_trades && net_return > 0.0 && excess_t >= ev.min_excess_t,
    }
}

#[cfg(test)]
mod tests {
    use qt_candles::Candle;
    use qt_events::SignalAction;
    use qt_features::{FeatureVector, N_FEATURES};
    use rust_decimal::Decimal;
    use rust_decimal::prelude::FromPrimitive;

    use crate::dataset::Dataset;
    use crate::labels::{LabelConfig, Outcome, Outcomes};
    use crate::train::{TrainConfig, train_on};
    use crate::{ModelArtifact, ModelKind, build_model};

    const M5: i64 = 300_000;
    const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000;

    /// A deterministic uniform in [0, 1) (splitmix64).
    fn unit(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Two symbols rising steadily for `days` (so the trend rule is long at every hour close
    /// after its first week), with noise features. When `planted`, a long after candle `t`
    /// gains 2% if feature 0 of `t` is positive and loses 2% otherwise, 90% of the time; else
    /// a long wins or loses by a coin flip whatever the features say.
    fn rising(days: usize, planted: bool, seed: u64) -> Dataset {
        let mut rng = seed;
        let mut ds = Dataset {
            labeling: LabelConfig::default(),
            symbols: vec!["AAAUSDT".into(), "BBBUSDT".into()],
            interval_ms: M5,
            ..Dataset::default()
        };
        for sym in 0..2u16 {
            for t in 0..days * 288 {
                let mut f = [0.0f64; N_FEATURES];
                for v in f.iter_mut() {
                    *v = unit(&mut rng) * 2.0 - 1.0;
                }
                let follows = unit(&mut rng) < 0.9;
                let long_wins = if planted {
                    (f[0] > 0.0) == follows
                } else {
                    follows && unit(&mut rng) < 0.5 / 0.9
                };
                let g = if long_wins { 0.02 } else { -0.02 };
                let o = Outcomes {
                    long: Outcome {
                        gross_return: g,
                        held: 24,
                    },
                    short: Outcome {
                        gross_return: -g,
                        held: 24,
                    },
                };
                let hour = t / 12;
                let wiggle = if hour % 2 == 0 { 1.002 } else { 0.998 };
                let close = 100.0 * (0.001 * t as f64 / 12.0).exp() * wiggle;
                let p = Decimal::from_f64(close).expect("finite");
                ds.features.push(f);
                ds.labels.push(o.label(&ds.labeling.costs, M5));
                ds.outcomes.push(o);
                ds.candles.push(Candle {
                    open_time: T0 + t as i64 * M5,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    ..Candle::default()
                });
                ds.symbol_of.push(sym);
            }
        }
        ds
    }

    fn config() -> TrainConfig {
        let mut cfg = TrainConfig::new(ModelKind::Meta, "meta-1");
        cfg.threads = 2;
        cfg.gbdt.iterations = 40;
        cfg
    }

    /// Runs `artifact`'s model over every row in time order; the signals of rows at or after
    /// `from_ms`, with the row.
    fn signals_from(
        artifact: &ModelArtifact,
        ds: &Dataset,
        from_ms: i64,
    ) -> Vec<(usize, crate::Signal)> {
        let mut model = build_model(artifact).expect("builds");
        let all: Vec<usize> = (0..ds.len()).collect();
        ds.time_ordered(&all)
            .into_iter()
            .filter_map(|i| {
                let fv = FeatureVector {
                    open_time: ds.candles[i].open_time,
                    values: ds.features[i],
                };
                let symbol = &ds.symbols[usize::from(ds.symbol_of[i])];
                let s = model.predict_for(symbol, &fv, &ds.candles[i]);
                (ds.candles[i].open_time >= from_ms).then_some((i, s))
            })
            .collect()
    }

    #[test]
    fn meta_labeler_takes_the_primary_trades_its_features_say_will_win() {
        let ds = rising(60, true, 1);
        let (artifact, report) = train_on(&ds, &config()).expect("trains");
        assert_eq!(artifact.kind, ModelKind::Meta);
        let ev = report.ev.expect("the secondary was fitted");
        assert!(ev.margin.is_some(), "a margin passed: {:?}", ev.trials);
        let signals = signals_from(&artifact, &ds, report.split_time_ms);
        let taken: Vec<usize> = signals
            .iter()
            .filter(|(_, s)| s.action != SignalAction::Hold)
            .map(|(i, s)| {
                assert_eq!(
                    s.action,
                    SignalAction::Buy,
                    "the primary is long throughout"
                );
                assert!(s.expected_return.is_some(), "priced");
                *i
            })
            .collect();
        // The primary fires at every hour close of the test period; the secondary keeps the
        // ones whose feature 0 is positive (the winners, 90% of the time).
        let primary = signals
            .iter()
            .filter(|(i, _)| (ds.candles[*i].open_time + M5) % 3_600_000 == 0)
            .count();
        assert!(taken.len() > primary / 4, "{} of {primary}", taken.len());
        assert!(
            taken.len() < primary * 3 / 4,
            "{} of {primary}",
            taken.len()
        );
        let right = taken.iter().filter(|&&i| ds.features[i][0] > 0.0).count();
        assert!(
            right as f64 >= 0.85 * taken.len() as f64,
            "{right} of {} taken trades had the winning cue",
            taken.len()
        );
        // Off the hour the primary holds, so the meta-labeler does too.
        assert!(
            taken
                .iter()
                .all(|&i| (ds.candles[i].open_time + M5) % 3_600_000 == 0)
        );
        // The artifact round-trips to the same decisions.
        let again = ModelArtifact::from_json(&artifact.to_json().expect("json")).expect("loads");
        let replay = signals_from(&again, &ds, report.split_time_ms);
        assert_eq!(signals, replay);
    }

    #[test]
    fn meta_labeler_holds_when_its_features_add_nothing_to_the_primary() {
        // Every long wins half the time whatever the features: filtering cannot beat taking
        // every primary trade, so no margin passes the base-rate test and the model holds.
        let ds = rising(60, false, 2);
        let (artifact, report) = train_on(&ds, &config()).expect("trains");
        let ev = report.ev.expect("the secondary was fitted");
        assert_eq!(ev.margin, None, "{:?}", ev.trials);
        let signals = signals_from(&artifact, &ds, 0);
        assert!(signals.iter().all(|(_, s)| s.action == SignalAction::Hold));
    }

    #[test]
    fn meta_labeler_without_enough_primary_trades_holds() {
        // Six days: the primary needs a week of hourly closes, so it never fires.
        let ds = rising(6, true, 3);
        let (artifact, report) = train_on(&ds, &config()).expect("trains");
        assert!(report.ev.is_none());
        let signals = signals_from(&artifact, &ds, 0);
        assert!(signals.iter().all(|(_, s)| s.action == SignalAction::Hold));
        assert!(super::MetaModel::from_params_json(&artifact.params, "x").is_ok());
    }
}
