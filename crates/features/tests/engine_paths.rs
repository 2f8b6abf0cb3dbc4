//! The live (incremental) path and the training (batch) path give identical features, and no
//! feature reads a later candle.

use std::path::PathBuf;

use qt_candles::Candle;
use qt_features::{
    FEATURE_NAMES, FeatureConfig, FeatureEngine, FundingSeries, N_FEATURES, UniverseFeatures,
    batch, batch_universe, batch_with_context, feature_index,
};

fn repo_candles(symbol: &str) -> Vec<Candle> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../data/klines/5m/{symbol}-5m.csv.gz"));
    qt_candles::read_klines(path).expect("repo data reads")
}

#[test]
fn batch_equals_incremental_engine_bit_for_bit_on_real_data() {
    for symbol in ["BTCUSDT", "XRPUSDT"] {
        let candles = repo_candles(symbol);
        let config = FeatureConfig::default();
        let batch = batch(config, &candles);
        // The live service: an engine warmed on history, then fed candle by candle, restarted
        // half way from a copy of its state.
        let mut live = FeatureEngine::new(config);
        let half = candles.len() / 2;
        let mut out: Vec<Option<_>> = candles[..half].iter().map(|c| live.update(c)).collect();
        let mut resumed = live.clone();
        out.extend(candles[half..].iter().map(|c| resumed.update(c)));
        assert_eq!(batch.len(), out.len());
        for (i, (b, l)) in batch.iter().zip(&out).enumerate() {
            match (b, l) {
                (None, None) => {}
                (Some(b), Some(l)) => {
                    for (k, name) in FEATURE_NAMES.iter().enumerate() {
                        assert_eq!(
                            b.values[k].to_bits(),
                            l.values[k].to_bits(),
                            "{symbol} candle {i} feature {name}"
                        );
                    }
                }
                _ => panic!("{symbol} candle {i}: warm-up differs"),
            }
        }
    }
}

#[test]
fn features_never_read_a_later_candle() {
    let candles = repo_candles("ETHUSDT");
    let candles = &candles[..3_000];
    let config = FeatureConfig::default();
    let full = batch(config, candles);
    // Compute on prefixes ending at sampled candles: the last value must equal the full run's.
    for i in (config.warmup()..candles.len()).step_by(97) {
        let prefix = batch(config, &candles[..=i]);
        assert_eq!(prefix[i], full[i], "candle {i}");
        // And changing every later candle does not change it either.
        let mut altered = candles.to_vec();
        for c in altered.iter_mut().skip(i + 1) {
            c.close = c.high;
            c.volume *= qt_candles::Decimal::TWO;
        }
        assert_eq!(
            batch(config, &altered)[i],
            full[i],
            "candle {i} with altered future"
        );
    }
}

#[test]
fn warm_up_lasts_one_day_of_candles_and_values_are_finite() {
    let candles = repo_candles("SOLUSDT");
    let config = FeatureConfig::default();
    assert_eq!(config.day_candles(), 288);
    let f = batch(config, &candles);
    assert!(f[..288].iter().all(Option::is_none));
    assert!(f[288..].iter().all(Option::is_some));
    for v in f.iter().flatten() {
        assert!(v.values.iter().all(|x| x.is_finite()), "{v:?}");
        let rsi = v.values[feature_index("rsi_14").expect("rsi")];
        assert!((0.0..=100.0).contains(&rsi));
        let pctb_ok = v.values[feature_index("obv_flow_20").expect("obv")].abs() <= 1.0 + 1e-9;
        assert!(pctb_ok);
    }
}

#[test]
fn change_24h_is_the_close_against_the_close_288_candles_before() {
    let candles = repo_candles("BTCUSDT");
    let f = batch(FeatureConfig::default(), &candles);
    let i = 5_000;
    let expected = candles[i].close_f64() / candles[i - 288].close_f64() - 1.0;
    let got = f[i]
        .expect("warm")
        .get("change_24h")
        .expect("feature exists");
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
}

#[test]
fn time_of_day_and_week_are_of_the_candle_close_and_vwap_is_the_days_volume_weighted_price() {
    let candles = repo_candles("BTCUSDT");
    let f = batch(FeatureConfig::default(), &candles);
    let i = 5_000;
    let v = f[i].expect("warm");
    let close_ms = candles[i].open_time + 300_000;
    let hour = (close_ms % 86_400_000) as f64 / 86_400_000.0;
    let turn = |x: f64| x * std::f64::consts::TAU;
    assert!((v.get("hour_sin").unwrap() - turn(hour).sin()).abs() < 1e-12);
    assert!((v.get("hour_cos").unwrap() - turn(hour).cos()).abs() < 1e-12);
    // Days since the epoch + 3 (the epoch was a Thursday), modulo 7: 0 is Monday.
    let week = ((close_ms + 3 * 86_400_000) % (7 * 86_400_000)) as f64 / (7.0 * 86_400_000.0);
    assert!((v.get("weekday_sin").unwrap() - turn(week).sin()).abs() < 1e-12);
    let day = &candles[i + 1 - 288..=i];
    let (pv, vol) = day.iter().fold((0.0, 0.0), |(pv, vol), c| {
        let typical = (c.high_f64() + c.low_f64() + c.close_f64()) / 3.0;
        (pv + typical * c.volume_f64(), vol + c.volume_f64())
    });
    let expected = candles[i].close_f64() / (pv / vol) - 1.0;
    let got = v.get("vwap_dist_24h").unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    let regime = v.get("vol_regime").unwrap();
    assert!(
        (regime - v.get("rv_12").unwrap() / v.get("rv_24h").unwrap()).abs() < 1e-12,
        "{regime}"
    );
}

#[test]
fn a_redelivered_candle_is_ignored() {
    let candles = repo_candles("BNBUSDT");
    let mut a = FeatureEngine::new(FeatureConfig::default());
    let mut b = FeatureEngine::new(FeatureConfig::default());
    for (i, c) in candles[..400].iter().enumerate() {
        let fa = a.update(c);
        if i > 0 {
            assert_eq!(b.update(&candles[i - 1]), None, "duplicate accepted");
        }
        assert_eq!(b.update(c), fa);
    }
}

#[test]
fn features_cli_writes_one_row_per_candle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("f.csv");
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../candles/tests/data/BTCUSDT-5m-halt-2023-03-24.csv.gz");
    let args = qt_features::cli::FeaturesArgs {
        data,
        out: out.clone(),
        interval: None,
    };
    qt_features::cli::run(&args).expect("features command runs");
    let text = std::fs::read_to_string(&out).expect("csv written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 56);
    assert_eq!(lines[0].split(',').count(), 6 + N_FEATURES);
    assert!(lines[0].contains("rsi_14"));
}

#[test]
fn hourly_candles_use_24_candle_day_windows_and_warm_up_on_the_50_candle_sma() {
    let five = repo_candles("BTCUSDT");
    let hours = qt_candles::resample(&five, 300_000, 3_600_000).expect("1h from 5m");
    let config = FeatureConfig {
        interval_ms: 3_600_000,
    };
    assert_eq!(config.day_candles(), 24);
    assert_eq!(config.warmup(), 50);
    let f = batch(config, &hours);
    assert!(f[..50].iter().all(Option::is_none));
    assert!(f[50..].iter().all(Option::is_some));
    let i = 200;
    let expected = hours[i].close_f64() / hours[i - 24].close_f64() - 1.0;
    let got = f[i].expect("warm").get("change_24h").expect("exists");
    assert!((got - expected).abs() < 1e-12);
}

fn universe() -> Vec<(&'static str, Vec<Candle>)> {
    ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
        .into_iter()
        .map(|s| (s, repo_candles(s)[..4_000].to_vec()))
        .collect()
}

#[test]
fn universe_batch_equals_candles_fed_live_in_time_order_whatever_the_symbol_order() {
    let series = universe();
    let refs: Vec<(&str, &[Candle])> = series.iter().map(|(s, c)| (*s, c.as_slice())).collect();
    let config = FeatureConfig::default();
    let batch = batch_universe(config, &refs);
    // Live: candles of one open time arrive in any order — here XRP first, then the references
    // in reverse — and a restarted service resumes from a copy of the state.
    let mut live = UniverseFeatures::new(config);
    let mut out: Vec<Vec<Option<_>>> = vec![Vec::new(); series.len()];
    for i in 0..4_000 {
        if i == 2_000 {
            live = live.clone();
        }
        for k in [2, 1, 0] {
            out[k].push(live.update(series[k].0, &series[k].1[i]));
        }
    }
    let market_known = feature_index("market_known").expect("exists");
    let mut known = 0;
    for (k, (b, l)) in batch.iter().zip(&out).enumerate() {
        for (i, (b, l)) in b.iter().zip(l).enumerate() {
            match (b, l) {
                (None, None) => {}
                (Some(b), Some(l)) => {
                    for (f, name) in FEATURE_NAMES.iter().enumerate() {
                        assert_eq!(
                            b.values[f].to_bits(),
                            l.values[f].to_bits(),
                            "{} candle {i} feature {name}",
                            series[k].0
                        );
                    }
                    known += usize::from(b.values[market_known] == 1.0);
                }
                _ => panic!("{} candle {i}: warm-up differs", series[k].0),
            }
        }
    }
    assert!(
        known > 3 * 3_000,
        "the references are known after their warm-up: {known}"
    );
}

#[test]
fn the_market_factor_reads_no_reference_candle_at_or_after_the_symbols_own() {
    let series = universe();
    let config = FeatureConfig::default();
    let refs: Vec<(&str, &[Candle])> = series.iter().map(|(s, c)| (*s, c.as_slice())).collect();
    let full = batch_universe(config, &refs);
    let btc_ret_12 = feature_index("btc_ret_12").expect("exists");
    for i in (config.warmup() + 10..4_000).step_by(331) {
        // Rewrite BTC and ETH from candle i on: XRP's features at i must not change.
        let mut altered = series.clone();
        for (_, candles) in altered.iter_mut().take(2) {
            for c in candles.iter_mut().skip(i) {
                c.close = c.high;
            }
        }
        let refs: Vec<(&str, &[Candle])> =
            altered.iter().map(|(s, c)| (*s, c.as_slice())).collect();
        assert_eq!(
            batch_universe(config, &refs)[2][i],
            full[2][i],
            "candle {i}"
        );
        // And the value is BTC's of the candle before: its 12-candle log return.
        let btc = &series[0].1;
        let expected = (btc[i - 1].close_f64() / btc[i - 13].close_f64()).ln();
        let got = full[2][i].expect("warm").values[btc_ret_12];
        assert!(
            (got - expected).abs() < 1e-12,
            "candle {i}: {got} vs {expected}"
        );
    }
}

#[test]
fn a_symbol_alone_has_no_market_factor_and_its_hourly_rsi_is_the_rsi_of_resampled_hours() {
    let five = repo_candles("SOLUSDT");
    let f = batch(FeatureConfig::default(), &five);
    let i = 5_000;
    let v = f[i].expect("warm");
    assert_eq!(v.get("market_known"), Some(0.0));
    // The hourly bars closed by candle i: resample the candles up to it.
    let hours = qt_candles::resample(&five[..=i], 300_000, 3_600_000).expect("1h");
    let closes: Vec<f64> = hours.iter().map(Candle::close_f64).collect();
    let mut rsi = qt_features::indicators::Rsi::new(14);
    let expected = closes
        .iter()
        .filter_map(|c| rsi.update(*c))
        .last()
        .expect("rsi");
    let got = v.get("rsi_14_1h").expect("exists");
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    let four = qt_candles::resample(&five[..=i], 300_000, 4 * 3_600_000).expect("4h");
    let c = |k: usize| four[four.len() - 1 - k].close_f64();
    let got = v.get("ret_4h_last").expect("exists");
    assert!((got - (c(0) / c(1)).ln()).abs() < 1e-12, "{got}");
    let got = v.get("ret_4h_prev").expect("exists");
    assert!((got - (c(1) / c(2)).ln()).abs() < 1e-12, "{got}");
}

fn futures_candles_and_funding(symbol: &str) -> (Vec<Candle>, Vec<(i64, f64)>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/futures");
    let candles = qt_candles::read_klines(root.join(format!("5m/{symbol}-5m.csv.gz")))
        .expect("repo futures data reads");
    let rates =
        qt_candles::read_funding_file(&root.join(format!("funding/{symbol}-fundingRate.csv")))
            .expect("repo funding history reads")
            .into_iter()
            .map(|(t, r)| (t, r.to_string().parse::<f64>().expect("a rate")))
            .collect();
    (candles, rates)
}

#[test]
fn funding_inputs_read_only_rates_published_by_the_candles_close() {
    let (candles, rates) = futures_candles_and_funding("BTCUSDT");
    let candles = &candles[..6_000];
    let config = FeatureConfig::default();
    let market = qt_features::market_history(config, &[]);
    let series = FundingSeries::from_settled(rates.iter().copied());
    let full = batch_with_context(config, &market, Some(&series), candles);
    let known = feature_index("funding_known").expect("exists");
    let rate = feature_index("funding_rate").expect("exists");
    // The candles closing at a funding time and the two after it (the rate is published a
    // minute after its funding time), every third funding time, and a spread of others.
    let mut sampled: Vec<usize> = (config.warmup()..candles.len())
        .filter(|&i| {
            let close = candles[i].open_time + config.interval_ms;
            let since = close.rem_euclid(8 * 3_600_000);
            since <= 2 * config.interval_ms && (close / (8 * 3_600_000)) % 3 == 0
        })
        .collect();
    sampled.extend((config.warmup()..candles.len()).step_by(211));
    let mut checked = 0;
    for i in sampled {
        let close = candles[i].open_time + config.interval_ms;
        let v = full[i].expect("warm");
        // The value is the rate of the last funding time at least a minute before the close.
        let expected = rates
            .iter()
            .rfind(|(t, _)| t + qt_features::context::FUNDING_PUBLISH_DELAY_MS <= close)
            .expect("a rate before");
        assert_eq!(v.values[known], 1.0, "candle {i}");
        assert_eq!(v.values[rate], expected.1, "candle {i}");
        // Rates published after the close, rewritten or removed, change nothing at i; nor do
        // later candles.
        let altered = FundingSeries::from_settled(rates.iter().map(|&(t, r)| {
            if t + qt_features::context::FUNDING_PUBLISH_DELAY_MS > close {
                (t, -10.0 * r - 0.01)
            } else {
                (t, r)
            }
        }));
        let cut = FundingSeries::from_settled(
            rates
                .iter()
                .copied()
                .filter(|(t, _)| t + qt_features::context::FUNDING_PUBLISH_DELAY_MS <= close),
        );
        for s in [&altered, &cut] {
            let prefix = batch_with_context(config, &market, Some(s), &candles[..=i]);
            assert_eq!(prefix[i], full[i], "candle {i}");
        }
        checked += 1;
    }
    assert!(checked > 80, "{checked}");
    // Without a history the inputs are missing (0, known 0), never guessed.
    let none = batch_with_context(config, &market, None, candles);
    let last = none.last().and_then(|v| *v).expect("warm");
    assert!(
        last.values[qt_features::CONTEXT_OFFSET..]
            .iter()
            .all(|x| *x == 0.0)
    );
}

#[test]
fn funding_rates_observed_live_give_the_batch_paths_inputs() {
    let (candles, rates) = futures_candles_and_funding("SOLUSDT");
    let candles = &candles[..5_000];
    let config = FeatureConfig::default();
    let batch = batch_with_context(
        config,
        &qt_features::market_history(config, &[]),
        Some(&FundingSeries::from_settled(rates.iter().copied())),
        candles,
    );
    // Live: each rate arrives at its publication time, between the candles.
    let mut live = UniverseFeatures::new(config);
    let mut next_rate = 0;
    for (i, c) in candles.iter().enumerate() {
        let close = c.open_time + config.interval_ms;
        while let Some(&(t, r)) = rates.get(next_rate) {
            let published = t + qt_features::context::FUNDING_PUBLISH_DELAY_MS;
            if published > close {
                break;
            }
            live.observe_funding("SOLUSDT", published, t, r);
            next_rate += 1;
        }
        let v = live.update("SOLUSDT", c);
        match (v, batch[i]) {
            (None, None) => {}
            (Some(l), Some(b)) => {
                for (k, name) in FEATURE_NAMES.iter().enumerate() {
                    assert_eq!(
                        l.values[k].to_bits(),
                        b.values[k].to_bits(),
                        "candle {i} {name}"
                    );
                }
            }
            _ => panic!("candle {i}: warm-up differs"),
        }
    }
    assert!(next_rate > 30);
}
