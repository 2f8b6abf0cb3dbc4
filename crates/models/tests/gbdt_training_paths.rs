//! The speed paths of gbdt training change no result: the fit does not depend on the thread
//! count, the parallel prediction pass equals predicting row by row, `row_roles` gives the
//! rows `train_on` fits, calibrates and tests on, and the report's metrics are those of the
//! saved model's own probabilities.

use std::path::PathBuf;

use qt_events::SignalAction;
use qt_models::dataset::{Dataset, Series};
use qt_models::metrics::auc;
use qt_models::train::{TrainConfig, gbdt_probabilities, row_roles, train_on};
use qt_models::{GbdtModel, GbdtParams, LabelConfig, ModelArtifact, ModelKind};

fn repo_dataset() -> Dataset {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m");
    let series: Vec<Series> = ["BTCUSDT", "SOLUSDT"]
        .iter()
        .map(|s| Series {
            symbol: s.to_string(),
            interval_ms: 300_000,
            candles: qt_candles::read_klines(dir.join(format!("{s}-5m.csv.gz")))
                .expect("repo data reads"),
        })
        .collect();
    Dataset::build(&series, &LabelConfig::default(), 2).expect("dataset builds")
}

fn small_params() -> GbdtParams {
    GbdtParams {
        iterations: 25,
        max_depth: 4,
        ..GbdtParams::default()
    }
}

#[test]
fn fit_is_the_same_on_one_two_and_three_threads_and_parallel_prediction_equals_row_by_row() {
    let ds = repo_dataset();
    let rows: Vec<usize> = (0..ds.len()).collect();
    let columns = ds.columns(&rows);
    let fit =
        |threads| GbdtModel::fit(&columns, &ds.labels, small_params(), threads, "t").expect("fits");
    let one = fit(1);
    let by_row: Vec<(f64, f64)> = ds.features.iter().map(|f| one.probabilities(f)).collect();
    // Different probabilities on different rows: the model learnt something to compare.
    assert!(by_row.windows(2).any(|w| w[0] != w[1]));
    for threads in [2, 3] {
        let other = fit(threads);
        for threads_predict in [1, 2, 5] {
            let par = gbdt_probabilities(&other, &ds, &rows, threads_predict);
            assert_eq!(par.len(), by_row.len());
            for (i, (a, b)) in par.iter().zip(&by_row).enumerate() {
                assert_eq!(
                    (a.0.to_bits(), a.1.to_bits()),
                    (b.0.to_bits(), b.1.to_bits()),
                    "row {i}, fit on {threads} threads, predicted on {threads_predict}"
                );
            }
        }
    }
    // A subset, in a scrambled order, comes back in that order.
    let picked: Vec<usize> = (0..ds.len()).rev().step_by(7).collect();
    let par = gbdt_probabilities(&one, &ds, &picked, 2);
    for (p, &i) in par.iter().zip(&picked) {
        assert_eq!(*p, by_row[i]);
    }
    assert!(gbdt_probabilities(&one, &ds, &[], 2).is_empty());
}

#[test]
fn train_on_reports_the_saved_models_own_test_auc_on_the_rows_row_roles_names() {
    let ds = repo_dataset();
    let mut cfg = TrainConfig::new(ModelKind::Gbdt, "t-1");
    cfg.gbdt = small_params();
    let roles = row_roles(&ds, &cfg).expect("roles");
    assert!(!roles.fit.is_empty() && !roles.calibration.is_empty());
    let last_fit = roles.fit.iter().map(|&i| ds.candles[i].open_time).max();
    let first_cal = roles
        .calibration
        .iter()
        .map(|&i| ds.candles[i].open_time)
        .min();
    assert!(last_fit < first_cal, "fit rows reach the calibration slice");
    assert!(
        roles
            .calibration
            .iter()
            .all(|&i| ds.candles[i].open_time < roles.split.split_time_ms)
    );

    let (artifact, report) = train_on(&ds, &cfg).expect("trains");
    assert_eq!(report.training_range.test_rows, roles.split.test.len());
    // Refitting on exactly the fit rows gives train_on's boosters ...
    let columns = ds.columns(&roles.fit);
    let labels: Vec<_> = roles.fit.iter().map(|&i| ds.labels[i]).collect();
    let model = GbdtModel::fit(&columns, &labels, cfg.gbdt, cfg.threads, "t-1").expect("fits");
    let refit = ModelArtifact::gbdt(&model).expect("artifact");
    for key in ["buy_model", "sell_model"] {
        assert_eq!(refit.params[key], artifact.params[key], "{key}");
    }
    // ... and the report's test AUCs are that model's, predicting the test rows one by one.
    let probs: Vec<(f64, f64)> = roles
        .split
        .test
        .iter()
        .map(|&i| model.probabilities(&ds.features[i]))
        .collect();
    let side = |a: SignalAction, pick: fn(&(f64, f64)) -> f64| {
        let s: Vec<f64> = probs.iter().map(pick).collect();
        let pos: Vec<bool> = roles
            .split
            .test
            .iter()
            .map(|&i| ds.labels[i] == a)
            .collect();
        auc(&s, &pos)
    };
    assert!(report.test.auc_buy.is_some());
    assert_eq!(report.test.auc_buy, side(SignalAction::Buy, |p| p.0));
    assert_eq!(report.test.auc_sell, side(SignalAction::Sell, |p| p.1));
}
