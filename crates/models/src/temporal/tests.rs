use qt_candles::Candle;
use qt_events::SignalAction;
use qt_features::{FeatureVector, N_FEATURES};

use super::net::Rng;
use crate::dataset::Dataset;
use crate::labels::{LabelConfig, Outcome, Outcomes};
use crate::train::{TrainConfig, train_on};
use crate::{ModelArtifact, ModelKind, build_model};

const M5: i64 = 300_000;
/// How far back the pattern reads: the label of candle `t` is the sign of feature 0 at `t − LAG`.
const LAG: usize = 12;

/// Two symbols of noise features where what a long or short does after candle `t` is decided
/// (90% of the time) by the sign of feature 0 twelve candles earlier, and nothing in the
/// vector of candle `t` itself says anything about it: a model of single vectors sees no
/// edge, a model of the last 32 sees nearly all of it.
fn lagged_pattern(rows_per_symbol: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut ds = Dataset {
        labeling: LabelConfig::default(),
        symbols: vec!["AAAUSDT".into(), "BBBUSDT".into()],
        interval_ms: M5,
        ..Dataset::default()
    };
    for sym in 0..2u16 {
        let mut history: Vec<f64> = Vec::new();
        for t in 0..rows_per_symbol {
            let mut f = [0.0f64; N_FEATURES];
            for v in f.iter_mut() {
                *v = rng.unit() * 2.0 - 1.0;
            }
            history.push(f[0]);
            let cue = if t >= LAG { history[t - LAG] } else { 0.0 };
            let follows = rng.unit() < 0.9;
            let long_wins = (cue > 0.0) == follows;
            let g = if long_wins { 0.02 } else { -0.02 };
            let o = Outcomes {
                long: Outcome {
                    gross_return: g,
                    held: 2,
                },
                short: Outcome {
                    gross_return: -g,
                    held: 2,
                },
            };
            ds.features.push(f);
            ds.labels.push(o.label(&ds.labeling.costs, M5));
            ds.outcomes.push(o);
            ds.candles.push(Candle {
                open_time: 1_700_000_000_000 + t as i64 * M5,
                ..Candle::default()
            });
            ds.symbol_of.push(sym);
        }
    }
    ds
}

fn config(kind: ModelKind, threads: usize) -> TrainConfig {
    let mut cfg = TrainConfig::new(kind, "t-1");
    cfg.threads = threads;
    cfg.gbdt.iterations = 40;
    // Few rows: small batches, so the optimizer takes enough steps.
    cfg.temporal.epochs = 8;
    cfg.temporal.chunk = 32;
    cfg.temporal.batch = 2;
    cfg
}

#[test]
fn training_learns_a_pattern_in_the_sequence_that_single_vectors_do_not_show() {
    let ds = lagged_pattern(4000, 1);
    let (artifact, report) = train_on(&ds, &config(ModelKind::Temporal, 2)).expect("trains");
    assert_eq!(artifact.kind, ModelKind::Temporal);
    let first = report.epochs.first().expect("epochs reported");
    let last = report.epochs.last().expect("epochs reported");
    let best = report
        .epochs
        .iter()
        .map(|e| e.validation)
        .fold(f64::INFINITY, f64::min);
    // Chance is ln 2 ≈ 0.693 per target; the pattern explains 90% of the labels (the best
    // possible loss is 0.325). The epoch with the best validation loss is the one kept.
    assert!(first.fit > 0.6, "{:?}", report.epochs);
    assert!(
        best < 0.45 && last.fit < 0.45,
        "loss did not fall: {:?}",
        report.epochs
    );
    let auc = report.test.auc_buy.expect("auc");
    assert!(auc > 0.8, "temporal test AUC {auc}");
    // It trades the pattern out of sample, and mostly right.
    let ev = report.ev.as_ref().expect("ev report");
    assert!(ev.margin.is_some(), "{:?}", ev.trials);
    assert!(
        report.test.signal_mix.hold < 0.9,
        "{:?}",
        report.test.signal_mix
    );
    let buy_precision = report.test.precision.buy.expect("buys");
    assert!(buy_precision > 0.8, "{buy_precision}");

    // The gbdt on single vectors, same rows, same labels: nothing to see.
    let (_, gbdt) = train_on(&ds, &config(ModelKind::Gbdt, 2)).expect("gbdt trains");
    let gbdt_auc = gbdt.test.auc_buy.expect("auc");
    assert!(gbdt_auc < 0.6, "gbdt test AUC {gbdt_auc}");
}

#[test]
fn the_same_data_and_seed_give_the_same_model_whatever_the_thread_count() {
    let ds = lagged_pattern(1200, 2);
    let mut cfg = config(ModelKind::Temporal, 1);
    cfg.temporal.epochs = 2;
    let (a, _) = train_on(&ds, &cfg).expect("trains");
    cfg.threads = 2;
    let (b, _) = train_on(&ds, &cfg).expect("trains");
    assert_eq!(a.to_json().expect("json"), b.to_json().expect("json"));
    cfg.temporal.seed += 1;
    let (c, _) = train_on(&ds, &cfg).expect("trains");
    assert_ne!(a.params, c.params, "the seed is used");
}

fn vector(t: i64, rng: &mut Rng) -> FeatureVector {
    let mut values = [0.0; N_FEATURES];
    for v in values.iter_mut() {
        *v = rng.unit() * 2.0 - 1.0;
    }
    FeatureVector {
        open_time: t,
        values,
    }
}

#[test]
fn an_artifact_round_trip_gives_the_same_decisions_and_symbols_do_not_mix() {
    let ds = lagged_pattern(1500, 3);
    let mut cfg = config(ModelKind::Temporal, 2);
    cfg.temporal.epochs = 2;
    let (artifact, _) = train_on(&ds, &cfg).expect("trains");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("temporal.json");
    artifact.save(&path).expect("saved");
    let loaded = ModelArtifact::load(&path).expect("loads");
    assert_eq!(loaded, artifact);
    let mut shared = build_model(&artifact).expect("builds");
    let mut reloaded = build_model(&loaded).expect("builds");
    let (mut only_a, mut only_b) = (
        build_model(&artifact).expect("builds"),
        build_model(&artifact).expect("builds"),
    );
    assert_eq!((shared.name(), shared.version()), ("temporal", "t-1"));
    let mut rng = Rng::new(5);
    let c = Candle::default();
    let mut warm = 0;
    for k in 0..200i64 {
        let (va, vb) = (vector(k * M5, &mut rng), vector(k * M5, &mut rng));
        // One instance serving two symbols interleaved decides as one instance per symbol.
        let sa = shared.predict_for("A", &va, &c);
        let sb = shared.predict_for("B", &vb, &c);
        assert_eq!(sa, only_a.predict_for("A", &va, &c));
        assert_eq!(sb, only_b.predict_for("B", &vb, &c));
        assert_eq!(sa, reloaded.predict_for("A", &va, &c));
        assert_eq!(sb, reloaded.predict_for("B", &vb, &c));
        if k < 31 {
            // Warming up: HOLD without a price until 32 vectors are in.
            assert_eq!(sa.action, SignalAction::Hold);
            assert_eq!(sa.expected_return, None);
        } else {
            assert!(
                sa.expected_return.is_some(),
                "priced from the 32nd vector on"
            );
            warm += 1;
        }
    }
    assert_eq!(warm, 169);
    // A redelivered vector is ignored (HOLD), and does not enter the history.
    let again = vector(199 * M5, &mut rng);
    assert_eq!(
        shared.predict_for("A", &again, &c).action,
        SignalAction::Hold
    );
    let next = vector(200 * M5, &mut rng);
    assert_eq!(
        shared.predict_for("A", &next, &c),
        only_a.predict_for("A", &next, &c)
    );
}

#[test]
fn a_damaged_temporal_artifact_is_refused() {
    let ds = lagged_pattern(1200, 4);
    let mut cfg = config(ModelKind::Temporal, 1);
    cfg.temporal.epochs = 1;
    let (mut artifact, _) = train_on(&ds, &cfg).expect("trains");
    artifact.params["net"]["w_in"] = serde_json::json!([1.0, 2.0]);
    assert!(build_model(&artifact).is_err());
}

#[test]
fn the_ensemble_weighs_its_members_expected_returns_by_what_they_earned_on_validation() {
    let ds = lagged_pattern(4000, 6);
    let (artifact, report) = train_on(&ds, &config(ModelKind::Ensemble, 2)).expect("trains");
    let stack: crate::stack::StackParams =
        serde_json::from_value(artifact.params["stack"].clone()).expect("a stack");
    // Members: gbdt (blind to the pattern), temporal (sees it), then momentum as fallback.
    assert_eq!(stack.members, 2);
    assert!(
        stack.weights[1] >= 0.7,
        "the temporal member should carry the weight: {:?}",
        stack.weights
    );
    assert!(stack.ev.margin.is_some(), "{:?}", report.ev);
    let mut model = build_model(&artifact).expect("builds");
    assert_eq!(model.name(), "ensemble");
    assert!(
        report.test.signal_mix.hold < 0.9,
        "{:?}",
        report.test.signal_mix
    );
    // The stack holds while its temporal member warms up, then prices.
    let mut rng = Rng::new(8);
    let c = Candle::default();
    for k in 0..40i64 {
        let s = model.predict_for("A", &vector(k * M5, &mut rng), &c);
        assert_eq!(s.expected_return.is_some(), k >= 31, "candle {k}");
    }
}
