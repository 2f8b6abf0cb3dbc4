//! Trend-following exits: a plan without take-profits, a chandelier stop at a multiple of the
//! daily volatility that trails the best price from the entry on, and the close on the
//! opposite signal — checked against hand-computed levels and simulated trades.

use qt_events::PositionSide;
use qt_exits::{EntrySpec, ExitAction, ExitConfig, ExitPlan, StopMove, SymbolProfile, simulate};
use qt_matching::Bar;
use qt_risk::SymbolFilters;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

fn filters() -> SymbolFilters {
    SymbolFilters {
        tick_size: dec!(0.01),
        step_size: dec!(0.001),
        min_qty: dec!(0.001),
        max_qty: dec!(1000),
        min_notional: dec!(5),
        ..SymbolFilters::NONE
    }
}

/// The pre-registered trend exits: no ladder, chandelier at 4.8 daily volatilities (10 %
/// without a volatility), close on the opposite signal, 28-day time stop.
fn trend_exits() -> ExitConfig {
    ExitConfig {
        low_vol_targets_pct: vec![],
        high_vol_targets_pct: vec![],
        leg_fractions: vec![],
        stop_pct: dec!(10),
        trailing_activation_pct: None,
        chandelier_vol_mult: Some(dec!(4.8)),
        close_on_flip: true,
        time_stop_minutes: Some(40_320),
        ..ExitConfig::default()
    }
}

fn plan(side: PositionSide, vol: f64, cfg: &ExitConfig) -> ExitPlan {
    let entry = EntrySpec {
        side,
        price: dec!(100),
        qty: dec!(2),
        opened_ms: T0,
        filters: filters(),
    };
    match ExitPlan::new(entry, vol, &SymbolProfile::default(), cfg) {
        Ok(p) => p,
        Err(e) => panic!("plan: {e}"),
    }
}

fn bar(k: i64, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Bar {
    Bar {
        open_time: T0 + k * HOUR,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: dec!(1000),
    }
}

#[test]
fn a_plan_without_take_profits_is_valid_and_has_no_legs() {
    let cfg = trend_exits();
    assert!(cfg.validate().is_ok());
    let p = plan(PositionSide::Long, 0.02, &cfg);
    assert!(p.legs.is_empty());
    assert_eq!(p.open_qty, dec!(2));
    assert!(p.next_leg().is_none());
    let protect = p.to_protect("i", "BTCUSDT");
    assert!(protect.take_profits.is_empty());
    assert!(protect.stop.is_some());
    // Lists of different lengths are still refused.
    let bad = ExitConfig {
        high_vol_targets_pct: vec![dec!(3)],
        ..trend_exits()
    };
    assert!(bad.validate().is_err());
    let bad = ExitConfig {
        chandelier_vol_mult: Some(Decimal::ZERO),
        ..trend_exits()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn the_chandelier_stop_sits_at_the_volatility_multiple_and_trails_the_best_price() {
    let cfg = trend_exits();
    // σ_d = 2 % → distance 4.8 × 2 = 9.6 %: long stop at 90.40, short at 109.60.
    let mut long = plan(PositionSide::Long, 0.02, &cfg);
    assert_eq!(long.stop_pct, dec!(9.6));
    assert_eq!(long.stop_price, dec!(90.40));
    let short = plan(PositionSide::Short, 0.02, &cfg);
    assert_eq!(short.stop_price, dec!(109.60));
    // A calmer market, a tighter stop: σ_d = 1 % → 4.8 %.
    assert_eq!(plan(PositionSide::Long, 0.01, &cfg).stop_price, dec!(95.20));
    // No volatility known: the fixed fallback.
    assert_eq!(
        plan(PositionSide::Long, f64::NAN, &cfg).stop_price,
        dec!(90.00)
    );
    // The best price rises to 120: the stop follows at 9.6 % under it (108.48).
    let a = long.on_range(dec!(120), dec!(101), T0 + HOUR);
    assert_eq!(
        a,
        vec![ExitAction::MoveStop {
            price: dec!(108.48),
            why: StopMove::Trailing
        }]
    );
    // A small new high (under a quarter of the distance) does not move it; it never loosens.
    assert!(
        long.on_range(dec!(121), dec!(110), T0 + 2 * HOUR)
            .is_empty()
    );
    assert!(
        long.on_range(dec!(115), dec!(109), T0 + 3 * HOUR)
            .is_empty()
    );
    assert_eq!(long.stop_price, dec!(108.48));
}

#[test]
fn the_fixed_stop_is_unchanged_without_the_chandelier() {
    let p = plan(PositionSide::Long, 0.02, &ExitConfig::default());
    assert_eq!((p.stop_pct, p.stop_price), (dec!(2), dec!(98.00)));
    assert!(!p.trailing.as_ref().is_some_and(|t| t.active));
}

#[test]
fn the_opposite_signal_closes_once_and_only_with_close_on_flip() {
    let cfg = trend_exits();
    let mut long = plan(PositionSide::Long, 0.02, &cfg);
    assert_eq!(
        long.on_signal(PositionSide::Long),
        None,
        "the same side holds"
    );
    assert_eq!(long.on_signal(PositionSide::Short), Some(dec!(2)));
    assert_eq!(long.on_signal(PositionSide::Short), None, "asked once");
    let mut short = plan(PositionSide::Short, 0.02, &cfg);
    assert_eq!(short.on_signal(PositionSide::Long), Some(dec!(2)));
    let off = ExitConfig {
        close_on_flip: false,
        ..trend_exits()
    };
    let mut long = plan(PositionSide::Long, 0.02, &off);
    assert_eq!(long.on_signal(PositionSide::Short), None);
    // A plan stored before the field existed reads as "no flip".
    let mut json = serde_json::to_value(plan(PositionSide::Long, 0.02, &cfg)).unwrap_or_default();
    if let Some(m) = json.as_object_mut() {
        m.remove("close_on_flip");
        m.remove("flip_fired");
    }
    let mut old: ExitPlan = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old.on_signal(PositionSide::Short), None);
}

#[test]
fn a_trend_runs_past_where_a_ladder_would_have_sold_and_gives_back_one_distance() {
    let cfg = trend_exits();
    // +1 % an hour for 30 hours (to ~134.8), then a fall: the chandelier (9.6 % under the best
    // high) closes the long near 121.9, a gain of about 22 %; the default ladder's last leg sits
    // at +5.2 %.
    let mut bars = Vec::new();
    let mut p = dec!(100);
    for k in 0..30 {
        let next = (p * dec!(1.01)).round_dp(2);
        bars.push(bar(k, p, next, p, next));
        p = next;
    }
    let top = p;
    for k in 30..60 {
        let next = (p * dec!(0.98)).round_dp(2);
        bars.push(bar(k, p, p, next, next));
        p = next;
    }
    let t = simulate(plan(PositionSide::Long, 0.02, &cfg), &bars, HOUR)
        .unwrap_or_else(|| panic!("closed"));
    // The stop moves in steps of at least a quarter of its distance (2.4 % of the price), so it
    // ends between 9.6 % and 9.6 % + 2.4 % under the top.
    let top: f64 = top.to_string().parse().unwrap_or(0.0);
    let (hi, lo) = (
        top * 0.904 / 100.0 - 1.0,
        top * (0.904 - 0.024) / 100.0 - 1.0,
    );
    assert!(
        t.gross_return <= hi + 1e-9 && t.gross_return >= lo - 1e-9,
        "{t:?} outside {lo}..{hi}"
    );
    assert!(t.gross_return > 0.15, "{t:?}");
    let ladder = simulate(
        plan(PositionSide::Long, 0.02, &ExitConfig::default()),
        &bars,
        HOUR,
    )
    .unwrap_or_else(|| panic!("closed"));
    assert!(ladder.gross_return < 0.06, "{ladder:?}");
    // In a market that goes nowhere within the stop, the trade is still open at the end.
    let flat: Vec<Bar> = (0..100)
        .map(|k| bar(k, dec!(100), dec!(103), dec!(97), dec!(100)))
        .collect();
    assert_eq!(
        simulate(plan(PositionSide::Long, 0.02, &cfg), &flat, HOUR),
        None
    );
    // A loser is cut at the stop's distance: −9.6 %.
    let crash = [bar(0, dec!(100), dec!(100), dec!(85), dec!(86))];
    let t = simulate(plan(PositionSide::Long, 0.02, &cfg), &crash, HOUR)
        .unwrap_or_else(|| panic!("closed"));
    assert!((t.gross_return + 0.096).abs() < 1e-9, "{t:?}");
}
