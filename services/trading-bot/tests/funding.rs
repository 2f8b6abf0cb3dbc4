//! The funding inputs computed live: trading-bot against the real simulator replaying the repo's
//! USDⓈ-M futures candles of BTCUSDT with its real funding history (`data/futures/funding`,
//! served on `GET /fapi/v1/fundingRate`), a real Redis, and a gbdt trained with the funding
//! inputs (`qtctl train --funding`'s path).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use qt_events::{Event, ModelArtifactRef, ModelDeployed};
use qt_features::{CONTEXT_OFFSET, FeatureConfig, context::CONTEXT_NAMES};
use qt_testkit::SimExchange;

/// Candles closed when the simulator starts: 35 days of history (the z-score's 30 days are
/// there at the first candle), ending 6 candles before a funding time (candle 0 opens at
/// 00:00 UTC, a funding time; one every 96 candles).
const WARM: usize = 96 * 105 - 6;

fn futures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/futures")
}

fn futures_candles() -> Vec<qt_candles::Candle> {
    qt_candles::read_klines(futures().join("5m/BTCUSDT-5m.csv.gz")).unwrap()
}

/// The offline funding inputs of every candle (by open time): the funding file read as
/// `qtctl train --funding` and `backtest --funding` read it, through the training path's
/// features.
fn offline_inputs(candles: &[qt_candles::Candle]) -> BTreeMap<i64, [f64; 5]> {
    let history = qt_candles::read_funding_dir(&futures().join("funding")).unwrap();
    let context = qt_models::dataset::funding_inputs(&history);
    let config = FeatureConfig {
        interval_ms: FIVE_MIN,
    };
    let market = qt_features::market_history(config, &[]);
    let rows = qt_features::batch_with_context(config, &market, context.funding(SYMBOL), candles);
    candles
        .iter()
        .zip(rows)
        .filter_map(|(c, v)| {
            let v = v?;
            let mut x = [0.0; 5];
            x.copy_from_slice(&v.values[CONTEXT_OFFSET..]);
            Some((c.open_time, x))
        })
        .collect()
}

/// A gbdt trained with the funding inputs (one booster pair, the configured exits) on the
/// 4,000 candles before the simulator's start; saved as `<version>.json`.
fn funding_gbdt(dir: &Path, version: &str, candles: &[qt_candles::Candle]) -> (PathBuf, String) {
    let history = qt_candles::read_funding_dir(&futures().join("funding")).unwrap();
    let context = qt_models::dataset::funding_inputs(&history);
    let series = [qt_models::dataset::Series {
        symbol: SYMBOL.into(),
        interval_ms: FIVE_MIN,
        candles: candles[WARM - 4000..WARM].to_vec(),
    }];
    let prepared = qt_models::dataset::Dataset::prepare_with_context(&series, 1, &context).unwrap();
    let mut cfg = qt_models::train::TrainConfig::new(qt_models::ModelKind::Gbdt, version);
    cfg.funding_features = true;
    cfg.threads = 1;
    cfg.gbdt.iterations = 30;
    cfg.exit_grid = qt_models::ExitGrid::base_only();
    let chosen = qt_models::exit_choice::train_choosing_exits_lean(&prepared, &cfg).unwrap();
    assert!(chosen.artifact.funding_features);
    let path = dir.join(format!("{version}.json"));
    chosen.artifact.save(&path).unwrap();
    let sha = trading_bot::model::sha256_hex(&std::fs::read(&path).unwrap());
    (path, sha)
}

fn inputs(s: &qt_events::SignalGenerated) -> [f64; 5] {
    CONTEXT_NAMES.map(|n| *s.features.get(n).unwrap_or(&f64::NAN))
}

fn is_funding_time(close: i64) -> bool {
    close.rem_euclid(8 * 3_600_000) == 0
}

/// The live path's funding inputs equal the offline features' at every candle, bit for bit:
/// live candles (the rate of a funding time is fetched when the candle closing at it arrives,
/// and read only from the next one, its publication being a minute later) and candles
/// published after a restart from REST (the history loaded at start-up holds rates published
/// after some of them). A model trained without funding inputs reads them missing, as it was
/// trained; a funding artifact deployed on `models` loads and decides with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_funding_inputs_equal_the_offline_ones_and_a_funding_model_decides_with_them() {
    let candles = futures_candles();
    let offline = offline_inputs(&candles[..WARM + 400]);
    let sim = SimExchange::builder()
        .data(futures().join("5m/BTCUSDT-5m.csv.gz"))
        .symbols(&[SYMBOL])
        .warmup_candles(WARM);
    let mut f = Fixture::infra_on(sim, |_, _| {}).await;
    f.start_bot().await;
    // The default momentum model was trained without funding inputs: it reads them missing.
    f.step(2).await;
    let s = f.wait_signals(2).await;
    for g in &s {
        assert_eq!(g.model, "momentum");
        assert_eq!(inputs(g), [0.0; 5], "{}", g.candle_open_time);
    }
    // A model trained with them is deployed, and decides from the next candle.
    let (path, sha) = funding_gbdt(f.dir.path(), "g-funding", &candles);
    f.tell(Event::ModelDeployed(ModelDeployed {
        artifact: ModelArtifactRef {
            model_version: "g-funding".into(),
            model: "gbdt".into(),
            artifact_uri: path.display().to_string(),
            sha256: sha,
        },
        metrics: BTreeMap::new(),
        deployed_at: 0,
    }))
    .await;
    // Live across a funding time (the 4th candle closes at it).
    for n in 3..=10 {
        f.step(1).await;
        f.wait_signals(n).await;
    }
    // Down across the next funding time; the missed candles come from REST at the restart.
    f.stop_bot().await;
    f.step(100).await;
    f.start_bot().await;
    f.wait_signals(110).await;
    for n in 111..=112 {
        f.step(1).await;
        f.wait_signals(n).await;
    }
    let signals = f.signals().await;
    assert_eq!(signals.len(), 112);
    let funded: Vec<_> = signals
        .iter()
        .filter(|g| g.model_version == "g-funding")
        .collect();
    assert_eq!(funded.len(), 110, "every candle after the deployment");
    let mut at_funding_time = 0;
    for g in &funded {
        assert_eq!(g.model, "gbdt");
        let close = g.candle_open_time + FIVE_MIN;
        let want = offline[&g.candle_open_time];
        let got = inputs(g);
        assert_eq!(
            got.map(f64::to_bits),
            want.map(f64::to_bits),
            "candle closing at {close}: live {got:?}, offline {want:?}"
        );
        assert_eq!(got[4], 1.0, "known at {close}");
        at_funding_time += usize::from(is_funding_time(close));
    }
    assert!(
        at_funding_time >= 2,
        "a live and a restored candle closing at a funding time: {at_funding_time}"
    );
    // The rate changes at a funding time + 5 minutes and the z-score is computed.
    assert!(funded.iter().any(|g| inputs(g)[2] != 0.0));
    let rates: std::collections::BTreeSet<u64> =
        funded.iter().map(|g| inputs(g)[0].to_bits()).collect();
    assert!(rates.len() >= 3, "{rates:?}");
    f.stop().await;
}
