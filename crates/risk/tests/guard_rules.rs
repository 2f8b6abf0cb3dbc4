//! One scenario per risk rule: each refusal carries its own reason code.

use qt_events::{PositionSide, RejectReason, Side};
use qt_risk::{
    BookFill, DAY_MS, Decision, IntentKind, RiskBook, RiskGuard, RiskIntent, RiskLimits,
    SymbolFilters,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const T0: i64 = 1_700_000_000_000;

fn open(id: &str, sym: &str, side: PositionSide, qty: Decimal, price: Decimal) -> RiskIntent {
    RiskIntent {
        intent_id: id.into(),
        symbol: sym.into(),
        kind: IntentKind::Open {
            side,
            qty,
            reference_price: price,
            limit_price: None,
            leverage: 10,
        },
    }
}

fn long(id: &str, sym: &str, notional: Decimal) -> RiskIntent {
    open(id, sym, PositionSide::Long, notional / dec!(100), dec!(100))
}

fn fill(sym: &str, side: Side, qty: Decimal, price: Decimal) -> BookFill {
    BookFill {
        intent_id: None,
        symbol: sym.into(),
        side,
        qty,
        price,
        fee: dec!(0),
    }
}

fn reason(d: Decision) -> Option<RejectReason> {
    d.reason()
}

#[test]
fn kill_switch_refuses_entries_but_lets_exits_through() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.kill_switch = true;
    assert_eq!(
        reason(g.check(&b, &long("a", "BTC", dec!(1000)), T0)),
        Some(RejectReason::KillSwitch)
    );
    let close = RiskIntent {
        intent_id: "c".into(),
        symbol: "BTC".into(),
        kind: IntentKind::Close,
    };
    let reduce = RiskIntent {
        intent_id: "r".into(),
        symbol: "BTC".into(),
        kind: IntentKind::Reduce { qty: dec!(1) },
    };
    assert_eq!(g.check(&b, &close, T0), Decision::Allow);
    assert_eq!(g.check(&b, &reduce, T0), Decision::Allow);
}

#[test]
fn close_only_mode_refuses_entries() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.close_only = true;
    assert_eq!(
        reason(g.check(&b, &long("a", "BTC", dec!(1000)), T0)),
        Some(RejectReason::CloseOnly)
    );
}

#[test]
fn a_trade_above_the_per_trade_notional_is_refused() {
    let g = RiskGuard::default();
    let b = RiskBook::new(T0);
    assert_eq!(
        g.check(&b, &long("a", "BTC", dec!(2500)), T0),
        Decision::Allow
    );
    assert_eq!(
        reason(g.check(&b, &long("a", "BTC", dec!(2500.01)), T0)),
        Some(RejectReason::MaxNotionalPerTrade)
    );
}

#[test]
fn symbol_notional_counts_the_position_and_orders_in_flight() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    assert!(
        g.admit(&mut b, &long("a", "BTC", dec!(1500)), T0)
            .is_allowed()
    );
    assert_eq!(
        reason(g.admit(&mut b, &long("b", "BTC", dec!(1500)), T0)),
        Some(RejectReason::MaxSymbolNotional)
    );
    assert!(
        g.admit(&mut b, &long("c", "BTC", dec!(1000)), T0)
            .is_allowed()
    );
}

#[test]
fn concurrent_positions_count_orders_in_flight_so_nine_never_pass_when_eight_is_the_max() {
    let limits = RiskLimits {
        max_side_fraction: dec!(1),
        ..RiskLimits::default()
    };
    let g = RiskGuard::new(limits);
    let mut b = RiskBook::new(T0);
    // four filled positions, four still in flight
    for i in 0..8 {
        let sym = format!("S{i}");
        assert!(
            g.admit(&mut b, &long(&format!("i{i}"), &sym, dec!(1000)), T0)
                .is_allowed()
        );
        if i < 4 {
            b.on_fill(
                &BookFill {
                    intent_id: Some(format!("i{i}")),
                    ..fill(&sym, Side::Buy, dec!(10), dec!(100))
                },
                T0,
            );
        }
    }
    assert_eq!(
        reason(g.admit(&mut b, &long("i9", "S9", dec!(1000)), T0)),
        Some(RejectReason::MaxConcurrentPositions)
    );
    // adding to a symbol already counted is not a new position
    assert!(
        g.admit(&mut b, &long("add", "S0", dec!(1000)), T0)
            .is_allowed()
    );
    // a cancelled order frees its slot
    b.on_ended("i7");
    assert!(
        g.admit(&mut b, &long("i9", "S9", dec!(1000)), T0)
            .is_allowed()
    );
}

#[test]
fn gross_exposure_is_capped() {
    let limits = RiskLimits {
        max_gross_exposure: dec!(3000),
        max_side_fraction: dec!(1),
        ..RiskLimits::default()
    };
    let g = RiskGuard::new(limits);
    let mut b = RiskBook::new(T0);
    assert!(
        g.admit(&mut b, &long("a", "A", dec!(2000)), T0)
            .is_allowed()
    );
    assert_eq!(
        reason(g.admit(&mut b, &long("b", "B", dec!(1500)), T0)),
        Some(RejectReason::MaxGrossExposure)
    );
}

#[test]
fn one_side_may_not_hold_more_than_its_share_of_the_gross_budget() {
    let limits = RiskLimits {
        max_gross_exposure: dec!(10000),
        ..RiskLimits::default()
    };
    let g = RiskGuard::new(limits);
    let mut b = RiskBook::new(T0);
    assert!(
        g.admit(&mut b, &long("a", "A", dec!(2500)), T0)
            .is_allowed()
    );
    assert!(
        g.admit(&mut b, &long("b", "B", dec!(2500)), T0)
            .is_allowed()
    );
    assert!(
        g.admit(&mut b, &long("c", "C", dec!(1000)), T0)
            .is_allowed()
    );
    // longs at 6000 = 60% of 10000
    assert_eq!(
        reason(g.admit(&mut b, &long("d", "D", dec!(100)), T0)),
        Some(RejectReason::SideImbalance)
    );
    let short = open("e", "D", PositionSide::Short, dec!(10), dec!(100));
    assert!(g.admit(&mut b, &short, T0).is_allowed());
}

#[test]
fn leverage_above_the_cap_is_refused_and_so_is_exposure_above_equity_times_the_cap() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    let mut i = long("a", "A", dec!(1000));
    if let IntentKind::Open { leverage, .. } = &mut i.kind {
        *leverage = 20;
    }
    assert_eq!(reason(g.check(&b, &i, T0)), Some(RejectReason::LeverageCap));
    b.equity = Some(dec!(150));
    assert_eq!(
        reason(g.check(&b, &long("b", "A", dec!(1600)), T0)),
        Some(RejectReason::LeverageCap)
    );
    assert_eq!(
        g.check(&b, &long("b", "A", dec!(1500)), T0),
        Decision::Allow
    );
}

#[test]
fn a_closed_symbol_cools_down_before_it_can_reopen() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.on_fill(&fill("A", Side::Buy, dec!(1), dec!(100)), T0);
    b.on_fill(&fill("A", Side::Sell, dec!(1), dec!(101)), T0 + 1000);
    let i = long("x", "A", dec!(500));
    assert_eq!(
        reason(g.check(&b, &i, T0 + 1000 + 14 * 60_000)),
        Some(RejectReason::Cooldown)
    );
    assert_eq!(g.check(&b, &i, T0 + 1000 + 15 * 60_000), Decision::Allow);
    assert_eq!(
        g.check(&b, &long("y", "B", dec!(500)), T0 + 1001),
        Decision::Allow
    );
}

#[test]
fn daily_loss_counts_unrealized_then_pauses_new_entries_for_n_minutes() {
    let g = RiskGuard::default(); // max daily loss 150, pause 60 min
    let mut b = RiskBook::new(T0);
    b.on_fill(
        &BookFill {
            fee: dec!(1),
            ..fill("A", Side::Buy, dec!(10), dec!(100))
        },
        T0,
    );
    b.on_fill(&fill("A", Side::Sell, dec!(5), dec!(90)), T0); // realized −50 − fee 1
    b.on_price("A", dec!(80)); // unrealized −100 on the 5 left: total −151
    let i = long("x", "B", dec!(500));
    assert_eq!(
        reason(g.check(&b, &i, T0)),
        Some(RejectReason::MaxDailyLoss)
    );
    g.observe(&mut b, T0);
    b.on_price("A", dec!(100)); // loss recovers to −51
    assert_eq!(
        reason(g.check(&b, &i, T0 + 59 * 60_000)),
        Some(RejectReason::DailyLossPause)
    );
    assert_eq!(g.check(&b, &i, T0 + 60 * 60_000), Decision::Allow);
}

#[test]
fn realized_losses_stop_counting_after_midnight_utc() {
    let g = RiskGuard::new(RiskLimits {
        loss_pause_minutes: 0,
        ..RiskLimits::default()
    });
    let day_end = (T0 / DAY_MS + 1) * DAY_MS;
    let mut b = RiskBook::new(day_end - 10_000);
    b.on_fill(&fill("A", Side::Buy, dec!(10), dec!(100)), day_end - 10_000);
    b.on_fill(&fill("A", Side::Sell, dec!(10), dec!(80)), day_end - 5_000);
    let i = long("x", "B", dec!(500));
    assert_eq!(
        reason(g.check(&b, &i, day_end - 1)),
        Some(RejectReason::MaxDailyLoss)
    );
    g.observe(&mut b, day_end);
    assert_eq!(g.check(&b, &i, day_end), Decision::Allow);
}

#[test]
fn exchange_filters_refuse_bad_precision_small_notional_and_unknown_symbols_when_required() {
    let f = SymbolFilters {
        tick_size: dec!(0.1),
        step_size: dec!(0.01),
        min_qty: dec!(0.01),
        max_qty: dec!(1000),
        min_notional: dec!(100),
    };
    let g = RiskGuard::new(RiskLimits {
        require_filters: true,
        ..RiskLimits::default()
    })
    .with_filters("A", f);
    let b = RiskBook::new(T0);
    let off_step = open("1", "A", PositionSide::Long, dec!(1.005), dec!(100));
    assert_eq!(
        reason(g.check(&b, &off_step, T0)),
        Some(RejectReason::Precision)
    );
    let small = open("2", "A", PositionSide::Long, dec!(0.5), dec!(100));
    assert_eq!(
        reason(g.check(&b, &small, T0)),
        Some(RejectReason::MinNotional)
    );
    let unknown = open("3", "B", PositionSide::Long, dec!(5), dec!(100));
    assert_eq!(
        reason(g.check(&b, &unknown, T0)),
        Some(RejectReason::ExchangeFilter)
    );
    let ok = open("4", "A", PositionSide::Long, dec!(5), dec!(100));
    assert_eq!(g.check(&b, &ok, T0), Decision::Allow);
}

#[test]
fn opening_against_an_existing_position_is_invalid() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.on_fill(&fill("A", Side::Buy, dec!(1), dec!(100)), T0);
    let short = open("s", "A", PositionSide::Short, dec!(1), dec!(100));
    assert_eq!(
        reason(g.check(&b, &short, T0)),
        Some(RejectReason::InvalidIntent)
    );
}

#[test]
fn reason_codes_match_the_wire_encoding_and_quiet_checks_agree_with_full_ones() {
    use qt_risk::reason_code;
    let all = [
        RejectReason::KillSwitch,
        RejectReason::CloseOnly,
        RejectReason::MaxNotionalPerTrade,
        RejectReason::MaxDailyLoss,
        RejectReason::DailyLossPause,
        RejectReason::MaxSymbolNotional,
        RejectReason::MaxGrossExposure,
        RejectReason::MaxConcurrentPositions,
        RejectReason::SideImbalance,
        RejectReason::LeverageCap,
        RejectReason::Cooldown,
        RejectReason::ExchangeFilter,
        RejectReason::MinNotional,
        RejectReason::Precision,
        RejectReason::MarginInsufficient,
        RejectReason::ReduceOnlyRejected,
        RejectReason::WouldImmediatelyTrigger,
        RejectReason::NoPosition,
        RejectReason::DuplicateIntent,
        RejectReason::InvalidIntent,
        RejectReason::ExchangeError,
        RejectReason::Other,
    ];
    for r in all {
        assert_eq!(
            serde_json::to_value(r).ok(),
            Some(serde_json::Value::from(reason_code(r)))
        );
    }
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.close_only = true;
    let i = long("a", "BTC", dec!(1000));
    let (full, quiet) = (g.check(&b, &i, T0), g.check_code(&b, &i, T0));
    assert_eq!(full.reason(), quiet.reason());
    assert!(matches!(full, Decision::Reject(_, ref m) if !m.is_empty()));
}
