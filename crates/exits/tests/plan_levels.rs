//! Exit plans checked against hand-computed levels.

use qt_events::PositionSide;
use qt_exits::{EntrySpec, ExitAction, ExitConfig, ExitPlan, StopMove, SymbolProfile};
use qt_risk::SymbolFilters;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_700_000_000_000;

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

fn plan(side: PositionSide, qty: Decimal, vol: f64) -> ExitPlan {
    plan_with(side, qty, vol, &ExitConfig::default())
}

fn plan_with(side: PositionSide, qty: Decimal, vol: f64, cfg: &ExitConfig) -> ExitPlan {
    let entry = EntrySpec {
        side,
        price: dec!(100),
        qty,
        opened_ms: T0,
        filters: filters(),
    };
    match ExitPlan::new(entry, vol, &SymbolProfile::default(), cfg) {
        Ok(p) => p,
        Err(e) => panic!("plan: {e}"),
    }
}

fn prices(p: &ExitPlan) -> Vec<Decimal> {
    p.legs.iter().map(|l| l.price).collect()
}

fn qtys(p: &ExitPlan) -> Vec<Decimal> {
    p.legs.iter().map(|l| l.qty).collect()
}

#[test]
fn calm_market_long_uses_the_low_volatility_ladder_and_a_two_percent_stop() {
    let p = plan(PositionSide::Long, dec!(1), 0.01);
    assert_eq!(prices(&p), vec![dec!(101.95), dec!(103.25), dec!(105.20)]);
    assert_eq!(qtys(&p), vec![dec!(0.3), dec!(0.3), dec!(0.4)]);
    assert_eq!(p.stop_price, dec!(98));
    assert_eq!(p.time_stop_ms, Some(T0 + 720 * 60_000));
}

#[test]
fn volatile_market_short_uses_the_high_ladder_mirrored_below_the_entry() {
    let p = plan(PositionSide::Short, dec!(1), 0.08);
    assert_eq!(prices(&p), vec![dec!(97), dec!(95), dec!(92)]);
    assert_eq!(p.stop_price, dec!(102));
}

#[test]
fn targets_are_interpolated_between_the_two_ladders() {
    // vol 3.5% is halfway: 1.95+0.525 = 2.475, 3.25+0.875 = 4.125, 5.2+1.4 = 6.6
    let p = plan(PositionSide::Long, dec!(1), 0.035);
    assert_eq!(prices(&p), vec![dec!(102.47), dec!(104.12), dec!(106.60)]);
}

#[test]
fn legs_always_add_up_to_the_position_and_are_floored_to_the_step() {
    let p = plan(PositionSide::Long, dec!(0.007), 0.01);
    // 0.0021 → 0.002, 0.0021 → 0.002, remainder 0.003
    assert_eq!(qtys(&p), vec![dec!(0.002), dec!(0.002), dec!(0.003)]);
    assert_eq!(qtys(&p).iter().copied().sum::<Decimal>(), dec!(0.007));
}

#[test]
fn a_partial_entry_fill_resizes_the_legs_to_what_is_held() {
    let mut p = plan(PositionSide::Long, dec!(1), 0.01);
    assert_eq!(p.on_entry_fill(dec!(0.5)), vec![ExitAction::ResizeLegs]);
    assert_eq!(qtys(&p), vec![dec!(0.15), dec!(0.15), dec!(0.2)]);
    assert_eq!(p.open_qty, dec!(0.5));
    assert!(p.on_entry_fill(dec!(0.5)).is_empty());
}

#[test]
fn the_stop_moves_to_break_even_after_the_first_leg_only_once() {
    let mut p = plan(PositionSide::Long, dec!(1), 0.01);
    let a = p.on_leg_hit("tp1", dec!(0.3)).unwrap_or_default();
    assert_eq!(
        a,
        vec![ExitAction::MoveStop {
            price: dec!(100),
            why: StopMove::BreakEven
        }]
    );
    assert_eq!(p.open_qty, dec!(0.7));
    assert!(
        p.on_leg_hit("tp2", dec!(0.3))
            .unwrap_or_default()
            .is_empty()
    );
    assert!(p.on_leg_hit("tp9", dec!(0.3)).is_err());
}

#[test]
fn the_trailing_stop_activates_at_its_price_and_then_only_ratchets_in_profit() {
    let mut p = plan(PositionSide::Long, dec!(1), 0.01);
    assert!(p.on_mark(dec!(102.9), T0 + 1).is_empty()); // under the 3% activation
    // best 104 → stop 104 × 0.99 = 102.96
    assert_eq!(
        p.on_mark(dec!(104), T0 + 2),
        vec![ExitAction::MoveStop {
            price: dec!(102.96),
            why: StopMove::Trailing
        }]
    );
    assert!(p.on_mark(dec!(103.5), T0 + 3).is_empty()); // a pullback never lowers it
    assert_eq!(p.stop_price, dec!(102.96));
    // a short trails above: best 96 → 96 × 1.01 = 96.96
    let mut s = plan(PositionSide::Short, dec!(1), 0.01);
    assert_eq!(
        s.on_mark(dec!(96), T0 + 2),
        vec![ExitAction::MoveStop {
            price: dec!(96.96),
            why: StopMove::Trailing
        }]
    );
}

#[test]
fn a_trailing_stop_moves_in_steps_of_a_quarter_of_its_callback_not_per_tick() {
    let mut p = plan(PositionSide::Long, dec!(1), 0.01);
    // Activated at 104: stop 102.96. A 1% callback at 104 makes the smallest move 0.26.
    assert_eq!(p.on_mark(dec!(104), T0 + 1).len(), 1);
    // A trend of 0.05 ticks: 104.05 … 104.25 would move it by 0.05 … 0.25: no re-placement.
    let mut moves = Vec::new();
    for k in 1..=20i64 {
        let price = dec!(104) + Decimal::new(5 * k, 2);
        for a in p.on_mark(price, T0 + 1 + k) {
            if let ExitAction::MoveStop { price: stop, .. } = a {
                moves.push((price, stop));
            }
        }
    }
    // Best 105 after 20 ticks: the stop went up in 3 steps instead of 20.
    assert_eq!(moves.len(), 3, "{moves:?}");
    let mut last = dec!(102.96);
    for (best, stop) in &moves {
        assert!(
            *stop - last >= *best * dec!(0.0025) - dec!(0.01),
            "{moves:?}"
        );
        last = *stop;
    }
    // With no minimum step it follows every new best price.
    let cfg = ExitConfig {
        trailing_min_step: Decimal::ZERO,
        ..ExitConfig::default()
    };
    let mut q = plan_with(PositionSide::Long, dec!(1), 0.01, &cfg);
    assert_eq!(q.on_mark(dec!(104), T0 + 1).len(), 1);
    let every = (1..=20i64)
        .filter(|k| {
            !q.on_mark(dec!(104) + Decimal::new(5 * k, 2), T0 + 1 + k)
                .is_empty()
        })
        .count();
    assert_eq!(every, 20);
}

#[test]
fn the_time_stop_closes_what_is_left_once() {
    let mut p = plan(PositionSide::Long, dec!(1), 0.01);
    let _ = p.on_leg_hit("tp1", dec!(0.3));
    let end = T0 + 720 * 60_000;
    assert!(p.on_mark(dec!(100.5), end - 1).is_empty());
    assert_eq!(
        p.on_mark(dec!(100.5), end),
        vec![ExitAction::TimeStop { qty: dec!(0.7) }]
    );
    assert!(p.on_mark(dec!(100.5), end + 1).is_empty());
}

#[test]
fn the_profile_scales_targets_and_stop() {
    let profile = SymbolProfile {
        tp_mult: dec!(2),
        stop_mult: dec!(0.5),
        trades: 3,
    };
    let entry = EntrySpec {
        side: PositionSide::Long,
        price: dec!(100),
        qty: dec!(1),
        opened_ms: T0,
        filters: filters(),
    };
    let p = ExitPlan::new(entry, 0.01, &profile, &ExitConfig::default());
    let p = p.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(prices(&p), vec![dec!(103.90), dec!(106.50), dec!(110.40)]);
    assert_eq!(p.stop_price, dec!(99));
}

#[test]
fn excursions_of_a_closed_trade_feed_the_profile() {
    let mut p = plan(PositionSide::Short, dec!(1), 0.01);
    p.on_range(dec!(101.5), dec!(99), T0 + 1);
    p.on_range(dec!(100.2), dec!(97.5), T0 + 2);
    let _ = p.on_leg_hit("tp1", dec!(0.3));
    let o = p.outcome();
    assert_eq!(
        (o.mfe_pct, o.mae_pct, o.legs_hit, o.legs),
        (dec!(2.5), dec!(1.5), 1, 3)
    );
    let protect = p.to_protect("i1", "BTCUSDT");
    assert_eq!(protect.take_profits.len(), 2);
    assert_eq!(protect.stop.map(|s| s.trigger_price), Some(dec!(100)));
}

#[test]
fn bad_configurations_and_entries_are_refused() {
    let cfg = ExitConfig {
        leg_fractions: vec![dec!(0.5), dec!(0.4), dec!(0.2)],
        ..ExitConfig::default()
    };
    let entry = EntrySpec {
        side: PositionSide::Long,
        price: dec!(100),
        qty: dec!(1),
        opened_ms: T0,
        filters: filters(),
    };
    assert!(ExitPlan::new(entry.clone(), 0.01, &SymbolProfile::default(), &cfg).is_err());
    let zero = EntrySpec {
        qty: dec!(0),
        ..entry
    };
    assert!(
        ExitPlan::new(
            zero,
            0.01,
            &SymbolProfile::default(),
            &ExitConfig::default()
        )
        .is_err()
    );
}
