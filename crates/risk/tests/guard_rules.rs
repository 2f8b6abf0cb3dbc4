//! One scenario per risk rule: each refusal carries its own reason code.

use qt_events::{PositionSide, RejectReason, Side};
use qt_risk::{
    BookFill, DAY_MS, Decision, DrawdownLevel, IntentKind, LimitsError, RiskBook, RiskGuard,
    RiskIntent, RiskLimits, SymbolFilters,
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
        ..SymbolFilters::NONE
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
        RejectReason::Superseded,
        RejectReason::RateLimited,
        RejectReason::DrawdownBreaker,
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

fn exits(sym: &str) -> Vec<RiskIntent> {
    [
        IntentKind::Close,
        IntentKind::Reduce { qty: dec!(0.5) },
        IntentKind::Protect,
        IntentKind::Cancel,
    ]
    .into_iter()
    .map(|kind| RiskIntent {
        intent_id: "exit".into(),
        symbol: sym.into(),
        kind,
    })
    .collect()
}

/// Sets the book's equity and lets the guard see it, as execution does with a portfolio
/// snapshot and the backtester after every candle.
fn equity(g: &RiskGuard, b: &mut RiskBook, e: Decimal, now: i64) {
    b.equity = Some(e);
    g.observe(b, now);
}

#[test]
fn drawdown_breaker_trips_exactly_at_the_limit_and_refuses_entries_until_resumed_while_exits_pass()
{
    let g = RiskGuard::default();
    assert_eq!(g.limits.max_drawdown_pct, dec!(0.10));
    let mut b = RiskBook::new(T0);
    b.on_fill(&fill("A", Side::Buy, dec!(1), dec!(100)), T0);
    equity(&g, &mut b, dec!(10000), T0);
    equity(&g, &mut b, dec!(12000), T0 + 1);
    assert_eq!(b.equity_peak, Some(dec!(12000)));
    // 10% of the 12,000 peak is 1,200: 10,800.000001 is just short of it.
    equity(&g, &mut b, dec!(10800.000001), T0 + 2);
    assert_eq!(b.drawdown_halt, None);
    assert!(g.check(&b, &long("a", "B", dec!(500)), T0 + 2).is_allowed());
    equity(&g, &mut b, dec!(10800), T0 + 3);
    let halt = b.drawdown_halt.expect("tripped at exactly 10%");
    assert_eq!(
        (halt.since_ms, halt.peak, halt.equity),
        (T0 + 3, dec!(12000), dec!(10800))
    );
    assert_eq!(b.drawdown(), Some(dec!(0.1)));

    // Entries are refused even when the equity recovers past the peak; exits always pass.
    for e in [dec!(10800), dec!(11900), dec!(13000)] {
        equity(&g, &mut b, e, T0 + 4);
        let d = g.admit(&mut b, &long("b", "B", dec!(500)), T0 + 4);
        assert_eq!(
            reason(d.clone()),
            Some(RejectReason::DrawdownBreaker),
            "{e}"
        );
        assert!(matches!(d, Decision::Reject(_, ref m) if m.contains("qtctl resume")));
        for x in exits("A") {
            assert_eq!(g.check(&b, &x, T0 + 4), Decision::Allow, "{x:?}");
        }
    }
    assert_eq!(b.drawdown_halt, Some(halt), "the trip is kept as it was");
    assert!(b.in_flight().is_empty(), "a refused entry is not in flight");

    // The kill switch still says what it is; the breaker comes next.
    b.kill_switch = true;
    assert_eq!(
        reason(g.check(&b, &long("c", "B", dec!(500)), T0 + 5)),
        Some(RejectReason::KillSwitch)
    );
    b.kill_switch = false;

    // An operator resumes: the peak starts again from the current equity.
    equity(&g, &mut b, dec!(9000), T0 + 6);
    assert_eq!(b.resume_after_drawdown(), Some(halt));
    assert_eq!(b.equity_peak, Some(dec!(9000)));
    g.observe(&mut b, T0 + 7);
    assert_eq!(b.drawdown_halt, None, "no trip again at once");
    assert!(
        g.admit(&mut b, &long("d", "B", dec!(500)), T0 + 7)
            .is_allowed()
    );
    // …and trips again 10% below the new peak.
    equity(&g, &mut b, dec!(8100), T0 + 8);
    assert_eq!(b.drawdown_halt.map(|h| h.peak), Some(dec!(9000)));
}

#[test]
fn a_drawdown_past_the_limit_that_observe_has_not_seen_refuses_entries_too() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.equity_peak = Some(dec!(10000));
    b.equity = Some(dec!(8000));
    assert_eq!(
        reason(g.check(&b, &long("a", "B", dec!(500)), T0)),
        Some(RejectReason::DrawdownBreaker)
    );
    assert_eq!(g.drawdown_level(&b), DrawdownLevel::Tripped);
    assert_eq!(
        reason(g.admit(&mut b, &long("a", "B", dec!(500)), T0)),
        Some(RejectReason::DrawdownBreaker)
    );
    assert!(b.drawdown_halt.is_some(), "admit observes first");
}

#[test]
fn entries_halted_names_the_halt_every_entry_would_be_refused_for() {
    let g = RiskGuard::default();
    let entry = long("a", "B", dec!(500));
    let both = |b: &RiskBook| (g.entries_halted(b), reason(g.check(b, &entry, T0)));
    let mut b = RiskBook::new(T0);
    assert_eq!(both(&b), (None, None));
    b.equity_peak = Some(dec!(10000));
    b.equity = Some(dec!(9000.01));
    assert_eq!(both(&b), (None, None), "just short of the 10% limit");
    b.equity = Some(dec!(9000));
    let dd = Some(RejectReason::DrawdownBreaker);
    assert_eq!(both(&b), (dd, dd));
    b.close_only = true;
    let co = Some(RejectReason::CloseOnly);
    assert_eq!(both(&b), (co, co));
    b.kill_switch = true;
    let ks = Some(RejectReason::KillSwitch);
    assert_eq!(
        both(&b),
        (ks, ks),
        "the kill switch goes first, as in check"
    );
    b.kill_switch = false;
    b.close_only = false;
    b.equity = Some(dec!(9500));
    assert_eq!(both(&b), (None, None));
    g.observe(&mut b, T0);
    b.equity = Some(dec!(8000));
    g.observe(&mut b, T0 + 1);
    b.equity = Some(dec!(9999));
    assert_eq!(both(&b), (dd, dd), "a tripped breaker halts until resumed");
}

#[test]
fn drawdown_alerts_fire_once_per_crossing_at_half_near_and_the_trip_and_rearm_on_recovery() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    let mut step = |e: Decimal, t: i64| {
        equity(&g, &mut b, e, t);
        g.drawdown_crossing(&mut b).map(|c| (c.level, c.drawdown))
    };
    assert_eq!(step(dec!(10000), T0), None);
    assert_eq!(step(dec!(9600), T0 + 1), None, "4% is below half of 10%");
    assert_eq!(
        step(dec!(9500), T0 + 2),
        Some((DrawdownLevel::Half, dec!(0.05)))
    );
    assert_eq!(step(dec!(9450), T0 + 3), None, "once per crossing");
    assert_eq!(
        step(dec!(9200), T0 + 4),
        Some((DrawdownLevel::Near, dec!(0.08)))
    );
    assert_eq!(step(dec!(9150), T0 + 5), None);
    // Back below half: both re-arm, so the next fall reports again.
    assert_eq!(step(dec!(9700), T0 + 6), None);
    assert_eq!(
        step(dec!(9400), T0 + 7),
        Some((DrawdownLevel::Half, dec!(0.06)))
    );
    // Several levels at once: only the highest.
    assert_eq!(
        step(dec!(8900), T0 + 8),
        Some((DrawdownLevel::Tripped, dec!(0.11)))
    );
    // Tripped stays tripped whatever the equity does, and is not reported again.
    assert_eq!(step(dec!(9990), T0 + 9), None);
    assert_eq!(step(dec!(8000), T0 + 10), None);
    assert_eq!(g.drawdown_level(&b), DrawdownLevel::Tripped);
    let halt = b.drawdown_halt.expect("tripped");
    assert_eq!((halt.since_ms, halt.equity), (T0 + 8, dec!(8900)));

    // After a resume the alerts are armed again from the new peak.
    b.resume_after_drawdown();
    assert_eq!(b.drawdown_alerted, DrawdownLevel::Clear);
    let mut step = |e: Decimal, t: i64| {
        equity(&g, &mut b, e, t);
        g.drawdown_crossing(&mut b)
    };
    assert_eq!(step(dec!(8000), T0 + 11), None);
    let c = step(dec!(7600), T0 + 12).expect("half of the limit from the new peak");
    assert_eq!(
        (c.level, c.drawdown, c.limit, c.peak, c.equity, c.halt),
        (
            DrawdownLevel::Half,
            dec!(0.05),
            dec!(0.10),
            dec!(8000),
            dec!(7600),
            None
        )
    );
    let c = step(dec!(7200), T0 + 13).expect("the trip");
    assert_eq!(c.level, DrawdownLevel::Tripped);
    assert_eq!(c.halt.map(|h| h.since_ms), Some(T0 + 13));
}

#[test]
fn resume_does_nothing_when_the_breaker_has_not_tripped() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    equity(&g, &mut b, dec!(10000), T0);
    equity(&g, &mut b, dec!(9300), T0 + 1);
    let before = b.clone();
    assert_eq!(b.resume_after_drawdown(), None);
    assert_eq!(
        b, before,
        "the peak is not reset by a resume without a trip"
    );
}

#[test]
fn without_a_known_equity_the_breaker_never_trips() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.on_fill(&fill("A", Side::Buy, dec!(10), dec!(100)), T0);
    b.on_price("A", dec!(1));
    g.observe(&mut b, T0 + 1);
    assert_eq!((b.equity_peak, b.drawdown_halt), (None, None));
    assert_eq!(g.drawdown_crossing(&mut b), None);
}

#[test]
fn max_drawdown_must_be_a_fraction_in_zero_to_one() {
    assert_eq!(RiskLimits::default().validate(), Ok(()));
    for ok in [dec!(0.0001), dec!(0.5), dec!(1)] {
        let l = RiskLimits {
            max_drawdown_pct: ok,
            ..RiskLimits::default()
        };
        assert_eq!(l.validate(), Ok(()), "{ok}");
    }
    for bad in [dec!(0), dec!(-0.1), dec!(1.01), dec!(10)] {
        let l = RiskLimits {
            max_drawdown_pct: bad,
            ..RiskLimits::default()
        };
        let e = l.validate().unwrap_err();
        assert_eq!(e, LimitsError::MaxDrawdown(bad));
        assert_eq!(e.field(), "max_drawdown_pct");
    }
    // Absent from a configuration file: the default.
    let l: RiskLimits = serde_json::from_str(r#"{"max_daily_loss": "100"}"#).unwrap();
    assert_eq!(l.max_drawdown_pct, dec!(0.10));
}

#[test]
fn a_book_saved_before_the_breaker_existed_still_loads_and_a_tripped_one_round_trips() {
    let g = RiskGuard::default();
    let mut b = RiskBook::new(T0);
    b.on_fill(&fill("A", Side::Buy, dec!(1), dec!(100)), T0);
    equity(&g, &mut b, dec!(10000), T0);
    let mut old = serde_json::to_value(&b).unwrap();
    for f in ["equity_peak", "drawdown_halt", "drawdown_alerted"] {
        assert!(old.as_object_mut().unwrap().remove(f).is_some(), "{f}");
    }
    let loaded: RiskBook = serde_json::from_value(old).unwrap();
    assert_eq!(loaded.equity_peak, None);
    assert_eq!(loaded.drawdown_halt, None);
    assert_eq!(loaded.positions(), b.positions());

    equity(&g, &mut b, dec!(8000), T0 + 1);
    g.drawdown_crossing(&mut b);
    assert!(b.drawdown_halt.is_some());
    let back: RiskBook = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
    assert_eq!(back, b);
}

#[test]
fn an_entry_whose_notional_overflows_a_decimal_is_refused_not_a_panic() {
    let g = RiskGuard::default();
    let b = RiskBook::new(T0);
    let huge = open("a", "BTC", PositionSide::Long, Decimal::MAX, Decimal::MAX);
    assert_eq!(
        reason(g.check(&b, &huge, T0)),
        Some(RejectReason::MaxNotionalPerTrade)
    );
    let mut b = RiskBook::new(T0);
    assert_eq!(
        reason(g.admit(&mut b, &huge, T0)),
        Some(RejectReason::MaxNotionalPerTrade)
    );
    assert!(b.in_flight().is_empty());
    // With the symbol's filters known, the notional check meets the size first.
    let f = SymbolFilters {
        tick_size: dec!(0.1),
        step_size: dec!(0.01),
        min_notional: dec!(100),
        ..SymbolFilters::NONE
    };
    let g = RiskGuard::default().with_filters("BTC", f);
    let huge = open("b", "BTC", PositionSide::Long, dec!(1e20), dec!(1e12));
    assert_eq!(
        reason(g.check(&b, &huge, T0)),
        Some(RejectReason::MaxNotionalPerTrade)
    );
}
