//! The exit choice on a planted market: prices that revert to their mean, so a trade entered
//! away from it is won by a target near the mean (the narrow plan) and lost to the time stop
//! by a target beyond it (the wide plan). The plan is chosen by its validation trades, the
//! boosters are fitted once for the whole grid, and refitting per plan (the comparison path)
//! fits one model per plan.

use qt_candles::Candle;
use qt_exits::ExitConfig;
use qt_models::dataset::{Dataset, Series};
use qt_models::ev::EvSettings;
use qt_models::exit_choice::{train_choosing_exits, train_choosing_exits_lean};
use qt_models::train::{Decision, TrainConfig};
use qt_models::{ExitGrid, GbdtParams, LabelConfig, ModelKind};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

const M5: i64 = 300_000;

/// A deterministic standard normal draw per (seed, step), from a 64-bit mix and Box–Muller.
fn normal(seed: u64, i: u64) -> f64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let u = |z: u64| ((mix(z) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (a, b) = (u(seed << 40 ^ (2 * i)), u(seed << 40 ^ (2 * i + 1)));
    (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
}

/// `n` candles of a log price reverting to 100 (half-life about 14 candles, stationary
/// deviation about 1%).
fn reverting(symbol: &str, seed: u64, n: usize) -> Series {
    let (theta, sigma) = (0.05, 0.0022);
    let d = |x: f64| Decimal::from_f64(x).unwrap_or_default().round_dp(4);
    let mut x = 0.0f64;
    let mut close = 100.0;
    let candles = (0..n)
        .map(|k| {
            let open = close;
            x = x * (1.0 - theta) + sigma * normal(seed, k as u64);
            close = 100.0 * x.exp();
            let wick = 0.0004 * normal(seed + 1000, k as u64).abs();
            let (hi, lo) = (
                open.max(close) * (1.0 + wick),
                open.min(close) * (1.0 - wick),
            );
            Candle::new(
                k as i64 * M5,
                d(open),
                d(hi),
                d(lo),
                d(close),
                d(1000.0 + 100.0 * normal(seed + 2000, k as u64).abs()),
            )
        })
        .collect();
    Series {
        symbol: symbol.to_string(),
        interval_ms: M5,
        candles,
    }
}

/// One target at 2 %, a stop at 2 %, the 12 h time stop: no ladder, no break-even, no trailing.
fn base_exits() -> ExitConfig {
    let two = Decimal::TWO;
    ExitConfig {
        low_vol_targets_pct: vec![two],
        high_vol_targets_pct: vec![two],
        leg_fractions: vec![Decimal::ONE],
        stop_pct: two,
        break_even_after_first_leg: false,
        trailing_activation_pct: None,
        time_stop_minutes: Some(720),
        ..ExitConfig::default()
    }
}

fn config(refit_per_plan: bool) -> TrainConfig {
    let mut cfg = TrainConfig::new(ModelKind::Gbdt, "planted");
    cfg.labeling = LabelConfig {
        exits: base_exits(),
        ..LabelConfig::default()
    };
    cfg.gbdt = GbdtParams {
        iterations: 40,
        max_depth: 3,
        ..GbdtParams::default()
    };
    cfg.decision = Decision::ExpectedValue(EvSettings::default());
    // ×0.5 (target and stop at 1 %), the base, ×2 (at 4 %); the trailing stop as the base has
    // it (off).
    cfg.exit_grid = ExitGrid {
        scales: vec![Decimal::new(5, 1), Decimal::ONE, Decimal::TWO],
        trailing: Vec::new(),
        refit_per_plan,
    };
    cfg
}

fn market() -> Vec<Series> {
    (0..3)
        .map(|s| reverting(&format!("SYM{s}USDT"), 7 + s, 12 * 288))
        .collect()
}

#[test]
fn the_plan_whose_validation_trades_made_the_most_is_kept_and_the_boosters_are_fitted_once() {
    let series = market();
    let prepared = Dataset::prepare(&series, 2).expect("features");
    let cfg = config(false);
    let chosen = train_choosing_exits(&prepared, &cfg, &mut |_| Ok(())).expect("trains");
    let x = chosen.report.exits.as_ref().expect("an exit choice");
    for t in &x.trials {
        eprintln!(
            "{}: margin {:?}, {} trades, net {:.4}, t {:.2}, error {:?}",
            t.label, t.margin, t.trades, t.net_return, t.excess_t, t.error
        );
    }
    assert_eq!(x.trials.len(), 3, "every plan is tried, and is a trial");
    assert_eq!(x.fits, 1, "one booster pair for the whole grid");
    assert!(x.validated, "a plan passes on validation");
    // The choice is the validation rule: the most net return among the plans with a margin.
    let best = x
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.margin.is_some())
        .max_by(|a, b| a.1.net_return.total_cmp(&b.1.net_return))
        .map(|(k, _)| k);
    assert_eq!(Some(x.chosen), best);
    // On this market the target at 1 % (near the mean) clearly beats the base plan's 2 % and
    // the wide plan's 4 %, which wait for the time stop.
    assert_eq!(x.trials[x.chosen].label, "×0.5 no trailing");
    let base = &x.trials[1];
    assert!(
        x.trials[0].net_return > base.net_return.max(0.0) * 1.2,
        "{:?} against {base:?}",
        x.trials[0]
    );
    // The kept model trades the kept plan's exits, and its dataset is labelled with them.
    let kept = cfg.exit_grid.candidates(&cfg.labeling.exits)[x.chosen]
        .exits
        .clone();
    let labeling = chosen.artifact.labeling.as_ref().expect("labeling saved");
    assert_eq!(labeling.exits, kept);
    assert_eq!(chosen.dataset.labeling.exits, kept);
    // The model's rule is the kept plan's: its report's margin is the chosen trial's.
    assert_eq!(
        chosen.report.ev.as_ref().and_then(|e| e.margin),
        x.trials[x.chosen].margin
    );
}

#[test]
fn refitting_per_plan_fits_one_model_per_plan_and_chooses_by_the_same_rule() {
    let series = market();
    let prepared = Dataset::prepare(&series, 2).expect("features");
    let chosen = train_choosing_exits(&prepared, &config(true), &mut |_| Ok(())).expect("trains");
    let x = chosen.report.exits.as_ref().expect("an exit choice");
    assert_eq!(x.fits, 3);
    let best = x
        .trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.margin.is_some())
        .max_by(|a, b| a.1.net_return.total_cmp(&b.1.net_return))
        .map(|(k, _)| k);
    assert_eq!(Some(x.chosen), best);
}

/// The lean path (the plans other than the boosters' labelled only on their calibration rows,
/// in full only when kept) against the reference path that labels every plan in full: the same
/// trials, choice, model, report and dataset, on the planted market as it is (a plan other
/// than the base is kept), with gaps in the candles, without a time stop (then a row exists
/// only if its trades close within the horizon, which differs by plan) and with a time stop
/// longer than the horizon.
#[test]
fn labelling_only_the_calibration_rows_changes_no_decision() {
    let mut gapped = market();
    for (s, series) in gapped.iter_mut().enumerate() {
        // A missing hour in the middle and a missing candle in the calibration slice.
        let at = 1500 + 200 * s;
        series.candles.drain(at..at + 12);
        series.candles.remove(3000 - 40 * s);
    }
    let cases: [(&str, Vec<Series>, Option<u32>, usize); 4] = [
        ("planted", market(), Some(720), 160),
        ("gaps", gapped, Some(720), 160),
        ("no time stop", market(), None, 60),
        ("time stop past the horizon", market(), Some(720), 120),
    ];
    for (name, series, time_stop, horizon) in cases {
        let prepared = Dataset::prepare(&series, 2).expect("features");
        let mut cfg = config(false);
        cfg.labeling.exits.time_stop_minutes = time_stop;
        cfg.labeling.horizon = horizon;
        let reference = train_choosing_exits(&prepared, &cfg, &mut |_| Ok(())).expect("trains");
        let lean = train_choosing_exits_lean(&prepared, &cfg).expect("trains");
        let x = reference.report.exits.as_ref().expect("an exit choice");
        eprintln!(
            "{name}: chose {} of {:?}",
            x.chosen,
            x.trials
                .iter()
                .map(|t| (t.margin, t.trades, t.net_return))
                .collect::<Vec<_>>()
        );
        if name == "planted" {
            assert_ne!(x.chosen, 1, "a plan other than the base is kept");
        }
        assert_eq!(lean.report, reference.report, "{name}: report");
        assert_eq!(lean.artifact, reference.artifact, "{name}: artifact");
        let (a, b) = (&lean.dataset, &reference.dataset);
        assert_eq!(a.labeling, b.labeling, "{name}");
        assert_eq!(a.candles, b.candles, "{name}: rows");
        assert_eq!(a.symbol_of, b.symbol_of, "{name}");
        assert_eq!(a.features, b.features, "{name}");
        assert_eq!(a.labels, b.labels, "{name}");
        assert_eq!(a.outcomes, b.outcomes, "{name}");
    }
}
