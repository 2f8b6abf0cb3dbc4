//! Training end to end on the repo's real candles (a small model, to stay fast), the artifact
//! round trip, and the purged chronological split.

use std::path::PathBuf;

use qt_events::SignalAction;
use qt_features::{FEATURE_NAMES, FeatureVector, N_FEATURES};
use qt_models::dataset::{Dataset, Series};
use qt_models::train::{Decision, TrainConfig, train_on};
use qt_models::{
    GbdtModel, GbdtParams, LabelConfig, ModelArtifact, ModelError, ModelKind, build_model,
};

fn repo_series(symbols: &[&str]) -> Vec<Series> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m");
    symbols
        .iter()
        .map(|s| Series {
            symbol: s.to_string(),
            interval_ms: 300_000,
            candles: qt_candles::read_klines(dir.join(format!("{s}-5m.csv.gz")))
                .expect("repo data reads"),
        })
        .collect()
}

fn small_config(kind: ModelKind) -> TrainConfig {
    let mut cfg = TrainConfig::new(kind, "test-1");
    cfg.gbdt = GbdtParams {
        iterations: 20,
        max_depth: 3,
        ..GbdtParams::default()
    };
    cfg
}

#[test]
fn purged_split_keeps_every_train_label_window_before_the_test_period() {
    let ds = Dataset::build(
        &repo_series(&["BTCUSDT", "ETHUSDT"]),
        &LabelConfig::default(),
        2,
    )
    .expect("dataset builds");
    let split = ds.split(0.2, 24).expect("splits");
    let horizon_ms = 24 * 300_000;
    assert!(split.purged > 0, "nothing purged: the gap is not applied");
    for &i in &split.train {
        assert!(ds.candles[i].open_time + horizon_ms < split.split_time_ms);
    }
    for &i in &split.test {
        assert!(ds.candles[i].open_time >= split.split_time_ms);
    }
    let test_share = split.test.len() as f64 / ds.len() as f64;
    assert!((0.18..0.22).contains(&test_share), "{test_share}");
}

#[test]
fn gbdt_trains_evaluates_and_round_trips_through_its_artifact_file() {
    let ds = Dataset::build(
        &repo_series(&["BTCUSDT", "SOLUSDT"]),
        &LabelConfig::default(),
        2,
    )
    .expect("dataset builds");
    let (artifact, report) = train_on(&ds, &small_config(ModelKind::Gbdt)).expect("trains");
    assert_eq!(report.test.rows, report.training_range.test_rows);
    let auc = report
        .test
        .auc_buy
        .expect("both classes present in the test set");
    assert!((0.0..=1.0).contains(&auc));
    assert!(report.test.log_loss.is_some_and(f64::is_finite));
    let mix = report.test.signal_mix;
    assert!((mix.buy + mix.sell + mix.hold - 1.0).abs() < 1e-9);
    assert_eq!(artifact.metrics["rows"], report.test.rows);
    let total: f64 = report.feature_importance.iter().map(|f| f.1).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    assert_eq!(report.feature_importance.len(), FEATURE_NAMES.len());
    assert!(
        report
            .feature_importance
            .windows(2)
            .all(|w| w[0].1 >= w[1].1)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.json");
    artifact.save(&path).expect("saves");
    let loaded = ModelArtifact::load(&path).expect("loads");
    assert_eq!(loaded, artifact);
    assert_eq!(
        loaded.training_range.as_ref().map(|r| r.symbols.len()),
        Some(2)
    );

    // The loaded model predicts exactly what the in-memory one evaluated.
    let mut model = build_model(&loaded).expect("builds");
    assert_eq!(model.name(), "gbdt");
    assert_eq!(model.version(), "test-1");
    let mut actions = Vec::new();
    for i in (0..ds.len()).step_by(50) {
        let fv = FeatureVector {
            open_time: ds.candles[i].open_time,
            values: ds.features[i],
        };
        let s = model.predict(&fv, &ds.candles[i]);
        assert!((0.0..=1.0).contains(&s.confidence));
        actions.push(s.action);
    }
    assert!(!actions.is_empty());
}

#[test]
fn fast_tree_walk_equals_forust_predict() {
    let ds = Dataset::build(&repo_series(&["XRPUSDT"]), &LabelConfig::default(), 1)
        .expect("dataset builds");
    let rows: Vec<usize> = (0..ds.len()).step_by(7).collect();
    let columns = ds.columns(&rows);
    let labels: Vec<SignalAction> = rows.iter().map(|&i| ds.labels[i]).collect();
    let params = GbdtParams {
        iterations: 15,
        max_depth: 4,
        ..GbdtParams::default()
    };
    let model = GbdtModel::fit(&columns, &labels, params, 2, "t").expect("fits");
    let reference = model.forust_probabilities(&columns, rows.len());
    for (k, &i) in rows.iter().enumerate() {
        let (b, s) = model.probabilities_tree_walk(&ds.features[i]);
        assert!((b - reference[k].0).abs() < 1e-12 && (s - reference[k].1).abs() < 1e-12);
    }
}

/// Counts the splits whose missing values go left and go right, over both boosters of an
/// artifact.
fn missing_directions(artifact: &ModelArtifact) -> (usize, usize) {
    let (mut left, mut right) = (0, 0);
    for key in ["buy_model", "sell_model"] {
        let trees = artifact.params[key]["trees"].as_array().expect("trees");
        for node in trees
            .iter()
            .flat_map(|t| t["nodes"].as_array().expect("nodes"))
        {
            if node["is_leaf"] == false {
                if node["missing_node"] == node["left_child"] {
                    left += 1;
                } else if node["missing_node"] == node["right_child"] {
                    right += 1;
                }
            }
        }
    }
    (left, right)
}

#[test]
fn compiled_trees_give_forusts_probabilities_bit_for_bit_on_real_rows_with_and_without_nan() {
    let ds = Dataset::build(&repo_series(&["XRPUSDT"]), &LabelConfig::default(), 1)
        .expect("dataset builds");
    let n_f = FEATURE_NAMES.len();
    // Train on every 3rd row with about 8% of the values missing, so forust learns splits that
    // send NaN left and splits that send it right.
    let train_rows: Vec<usize> = (0..ds.len()).step_by(3).collect();
    let mut columns = ds.columns(&train_rows);
    let n = train_rows.len();
    for j in 0..n_f {
        for i in 0..n {
            if (i * 31 + j * 7) % 13 == 0 {
                columns[j * n + i] = f64::NAN;
            }
        }
    }
    let labels: Vec<SignalAction> = train_rows.iter().map(|&i| ds.labels[i]).collect();
    // 42 trees: not a multiple of the walk's 4 lanes, so the tail loop is covered too.
    let params = GbdtParams {
        iterations: 42,
        max_depth: 5,
        ..GbdtParams::default()
    };
    let model = GbdtModel::fit(&columns, &labels, params, 2, "t").expect("fits");
    assert!(model.is_compiled());
    let (left, right) = missing_directions(&ModelArtifact::gbdt(&model).expect("artifact"));
    assert!(left > 0 && right > 0, "missing left {left}, right {right}");

    // Every row of the series as the engine computed it, then each again with one feature
    // missing, then each with a third of the features missing.
    let mut eval: Vec<[f64; N_FEATURES]> = ds.features.clone();
    for (k, f) in ds.features.iter().enumerate() {
        let mut one = *f;
        one[k % n_f] = f64::NAN;
        eval.push(one);
        let mut many = *f;
        for (j, v) in many.iter_mut().enumerate() {
            if (j + k) % 3 == 0 {
                *v = f64::NAN;
            }
        }
        eval.push(many);
    }
    let mut eval_columns = vec![0.0; eval.len() * n_f];
    for (i, row) in eval.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            eval_columns[j * eval.len() + i] = *v;
        }
    }
    let reference = model.forust_probabilities(&eval_columns, eval.len());
    assert!(eval.len() > 40_000, "{} rows", eval.len());
    for (row, (b, s)) in eval.iter().zip(reference) {
        let (fb, fs) = model.probabilities(row);
        assert_eq!(
            (fb.to_bits(), fs.to_bits()),
            (b.to_bits(), s.to_bits()),
            "{row:?}"
        );
        let (wb, ws) = model.probabilities_tree_walk(row);
        assert_eq!((wb.to_bits(), ws.to_bits()), (b.to_bits(), s.to_bits()));
    }

    // The same after the artifact round trip (compiled again at load).
    let artifact = ModelArtifact::gbdt(&model).expect("artifact");
    let mut loaded = build_model(
        &ModelArtifact::from_json(&artifact.to_json().expect("encodes")).expect("decodes"),
    )
    .expect("builds");
    for (i, row) in ds.features.iter().enumerate().step_by(11) {
        let fv = FeatureVector {
            open_time: ds.candles[i].open_time,
            values: *row,
        };
        assert_eq!(
            loaded.predict(&fv, &ds.candles[i]),
            model.predict_row(row),
            "row {i}"
        );
    }
}

#[test]
fn momentum_and_ensemble_artifacts_train_and_load() {
    let ds = Dataset::build(&repo_series(&["ADAUSDT"]), &LabelConfig::default(), 1)
        .expect("dataset builds");
    let (m, report) = train_on(&ds, &small_config(ModelKind::Momentum)).expect("momentum");
    assert_eq!(m.kind, ModelKind::Momentum);
    assert!(report.test.rows > 0);
    let (e, report) = train_on(&ds, &small_config(ModelKind::Ensemble)).expect("ensemble");
    let text = e.to_json().expect("encodes");
    let loaded = ModelArtifact::from_json(&text).expect("decodes");
    let model = build_model(&loaded).expect("builds");
    assert_eq!(model.name(), "ensemble");
    assert!(report.test.signal_mix.count > 0);
}

#[test]
fn an_artifact_with_another_feature_list_is_refused() {
    let mut a = ModelArtifact::momentum(&Default::default(), "m").expect("valid");
    a.feature_names.swap(0, 1);
    let err = ModelArtifact::from_json(&a.to_json().expect("encodes")).expect_err("mismatch");
    assert!(matches!(err, ModelError::FeatureMismatch { .. }), "{err}");
    assert!(!err.is_retryable());
    a.feature_names = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
    a.format = 99;
    assert!(matches!(
        ModelArtifact::from_json(&a.to_json().expect("encodes")),
        Err(ModelError::Format(_))
    ));
}

#[test]
fn calibrated_edges_give_the_target_mix_on_the_training_rows() {
    let ds = Dataset::build(&repo_series(&["ETHUSDT"]), &LabelConfig::default(), 2)
        .expect("dataset builds");
    let mut cfg = small_config(ModelKind::Gbdt);
    cfg.decision = Decision::TargetMix(0.35, 0.35);
    let (_, report) = train_on(&ds, &cfg).expect("trains");
    let mix = report.train.signal_mix;
    assert!((0.32..=0.38).contains(&mix.buy), "{mix:?}");
    assert!((0.32..=0.38).contains(&mix.sell), "{mix:?}");
    cfg.decision = Decision::FixedEdges;
    let (_, fixed) = train_on(&ds, &cfg).expect("trains");
    assert!(
        fixed.train.signal_mix.hold > mix.hold,
        "fixed 0.2 edges should hold more"
    );
}

#[test]
fn train_command_writes_an_artifact_and_a_json_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = qt_models::cli::TrainArgs {
        data: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m"),
        symbols: vec!["BNBUSDT".to_string()],
        interval: "5m".to_string(),
        kind: ModelKind::Ensemble,
        out: dir.path().join("model.json"),
        report: dir.path().join("report.json"),
        version: None,
        test_fraction: 0.2,
        iterations: 10,
        max_depth: 3,
        learning_rate: 0.1,
        epochs: 1,
        edge: None,
        target_buy: None,
        target_sell: None,
        momentum_buy: 0.01,
        momentum_sell: -0.01,
        exits: None,
        horizon: LabelConfig::default().horizon,
        exit_scales: vec![rust_decimal::Decimal::ONE],
        exit_trailing: vec![None],
        funding: None,
        threads: 2,
    };
    qt_models::cli::run(&args).expect("train command runs");
    let artifact = ModelArtifact::load(&args.out).expect("artifact loads");
    assert!(
        artifact.version.starts_with("ensemble-"),
        "{}",
        artifact.version
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&args.report).expect("report written"))
            .expect("report is json");
    assert!(report["test"]["accuracy"].is_number());
    assert!(report["test"]["signal_mix"]["buy"].is_number());
    assert!(report["train_seconds"].is_number());
    assert!(!artifact.funding_features, "trained without funding inputs");
}

#[test]
fn a_gbdt_decides_by_expected_value_calibrated_on_rows_it_was_not_fitted_on() {
    let ds = Dataset::build(
        &repo_series(&["BTCUSDT", "SOLUSDT"]),
        &LabelConfig::default(),
        2,
    )
    .expect("dataset builds");
    let cfg = small_config(ModelKind::Gbdt);
    let Decision::ExpectedValue(settings) = cfg.decision.clone() else {
        panic!("expected value is the default rule");
    };
    let (artifact, report) = train_on(&ds, &cfg).expect("trains");
    let ev = report.ev.expect("an ev report");
    // The calibration and margin rows are the latest quarter of the training rows, not the
    // test rows: the earlier half of it calibrates, the later half chooses the margin.
    let train_rows = report.training_range.train_rows;
    let share = (ev.calibration_rows + ev.margin_rows) as f64 / train_rows as f64;
    assert!((0.22..=0.26).contains(&share), "{share}");
    let half = ev.margin_rows as f64 / (ev.calibration_rows + ev.margin_rows) as f64;
    assert!((0.45..=0.55).contains(&half), "{half}");
    assert_eq!(
        ev.trials.len(),
        settings.margins.len(),
        "every margin is a trial"
    );
    assert!(!ev.reliability_long.is_empty() && !ev.reliability_short.is_empty());
    // The reliability curve is of the held-out margin rows.
    let rows: usize = ev.reliability_long.iter().map(|b| b.rows).sum();
    assert_eq!(rows, ev.margin_rows);
    // Round trip 2 × (5 + 2) bp plus funding for the mean holding time.
    assert!(ev.cost > 0.0014 && ev.cost < 0.0016, "{}", ev.cost);
    if let Some(m) = ev.margin {
        let chosen = ev
            .trials
            .iter()
            .find(|t| t.margin == m)
            .expect("chosen among the trials");
        assert!(chosen.net_return > 0.0 && chosen.trades >= settings.min_trades);
    } else {
        assert!(
            ev.trials
                .iter()
                .all(|t| t.net_return <= 0.0 || t.trades < settings.min_trades)
        );
    }

    // Loaded from its file, the model prices every decision and trades only above its margin.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.json");
    artifact.save(&path).expect("saves");
    let mut model = build_model(&ModelArtifact::load(&path).expect("loads")).expect("builds");
    let (mut entries, mut seen) = (0, 0);
    for i in (0..ds.len()).step_by(7) {
        let fv = FeatureVector {
            open_time: ds.candles[i].open_time,
            values: ds.features[i],
        };
        let s = model.predict(&fv, &ds.candles[i]);
        let e = s.expected_return.expect("a priced signal");
        seen += 1;
        if s.action != SignalAction::Hold {
            entries += 1;
            assert!(
                ev.margin.is_some_and(|m| e > m),
                "{s:?} with margin {:?}",
                ev.margin
            );
        }
    }
    assert!(seen > 1000);
    // No edge, no trade: HOLD is the normal answer.
    assert!(entries * 2 < seen, "{entries} entries of {seen}");
}

#[test]
fn training_tries_every_exit_plan_keeps_the_best_validated_one_and_the_model_carries_it() {
    let series = repo_series(&["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
    let cfg = small_config(ModelKind::Gbdt);
    let candidates = cfg.exit_candidates();
    assert_eq!(candidates.len(), 6, "the default grid");
    let (artifact, report) = qt_models::train::train(&series, &cfg).expect("trains");
    let choice = report.exits.clone().expect("the exit plans tried");
    assert_eq!(
        choice.trials.len(),
        candidates.len(),
        "every plan is a trial"
    );
    for (t, c) in choice.trials.iter().zip(&candidates) {
        assert_eq!(t.label, c.label);
        assert!(t.error.is_none(), "{t:?}");
        if t.margin.is_some() {
            assert!(
                t.net_return > 0.0 && t.trades >= 20 && t.excess_t >= 2.0,
                "{t:?}"
            );
        }
    }
    // The kept plan is the one whose validation trades made the most among those that
    // passed; with none passing, the configured plan (its model holds).
    let best = choice
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.margin.is_some())
        .max_by(|a, b| a.1.net_return.total_cmp(&b.1.net_return))
        .map(|(i, _)| i);
    match best {
        Some(i) => assert!(choice.validated && choice.chosen == i, "{choice:?}"),
        None => {
            assert!(!choice.validated, "{choice:?}");
            assert_eq!(candidates[choice.chosen].exits, cfg.labeling.exits);
        }
    }
    assert_eq!(
        report.ev.as_ref().and_then(|e| e.margin),
        choice.trials[choice.chosen].margin,
        "the artifact's rule is the kept plan's"
    );
    // The artifact records the kept plan, and a model built from it (a saved and loaded one
    // too) carries its exits.
    let kept = &candidates[choice.chosen].exits;
    assert_eq!(artifact.exits(), Some(kept));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.json");
    artifact.save(&path).expect("saves");
    let model = build_model(&ModelArtifact::load(&path).expect("loads")).expect("builds");
    assert_eq!(model.exits(), Some(kept));
    // A model without recorded exits leaves them to its caller.
    let mut bare = artifact.clone();
    bare.labeling = None;
    assert_eq!(build_model(&bare).expect("builds").exits(), None);
}
