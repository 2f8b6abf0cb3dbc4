//! Property tests: the guard's and the sizing's exact integer paths decide exactly as the
//! reference `Decimal` arithmetic does.
//!
//! The guard: over random books (fills at prices of every scale, some with 28 significant
//! digits, marks, orders in flight, realized losses, equity, time), probe entries of every
//! symbol and side are checked both ways — with sizes drawn at random and sizes that put the
//! order exactly on a limit, a hair under it or a hair over it (per trade, symbol, gross, side,
//! equity × leverage, minimum notional and quantity). `check_code`'s reason, `check`'s
//! decision and message and `admit`'s effect on the book equal the reference's.
//!
//! The sizing: a fixed notional at prices of every scale, including prices that put the
//! quotient within 10^-28 of a step either side, steps of 10^-k and others, and filters that
//! refuse: `quantity_with` equals `quantity_reference` to the bit, errors included.

use proptest::prelude::*;
use qt_events::{PositionSide, Side};
use qt_risk::{
    BookFill, IntentKind, RiskBook, RiskGuard, RiskIntent, RiskLimits, Sizing, SizingContext,
    SymbolFilters,
};
use rust_decimal::Decimal;

const T0: i64 = 1_700_000_000_000;
const SYMBOLS: usize = 4;

fn sym(i: usize) -> String {
    format!("S{i}USDT")
}

/// A price of any scale: plain, with many digits, or with 28 significant digits.
fn price() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (1i64..200_000).prop_map(|m| Decimal::new(m, 2)),
        (1i64..2_000_000_000, 0u32..=9).prop_map(|(m, s)| Decimal::new(m, s)),
        (1i128..(1i128 << 90), 20u32..=28).prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s)),
    ]
    .prop_filter("positive", |p| *p > Decimal::ZERO)
}

/// A quantity of any scale (below 10^9: the reference's products of absurd sizes overflow
/// `Decimal` and panic).
fn qty() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (1i64..5_000).prop_map(|m| Decimal::new(m, 3)),
        (1i64..1_000_000_000, 0u32..=12).prop_map(|(m, s)| Decimal::new(m, s)),
        (1i128..(1i128 << 95), 20u32..=28).prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s)),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Fill {
        sym: usize,
        buy: bool,
        qty: Decimal,
        price: Decimal,
        fee: u32,
    },
    Mark {
        sym: usize,
        price: Decimal,
    },
    /// An entry admitted (by the reference) and left in flight.
    InFlight {
        sym: usize,
        long: bool,
        qty: Decimal,
        price: Decimal,
    },
    Wait {
        minutes: u32,
    },
    Equity {
        equity: Option<Decimal>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SYMBOLS, any::<bool>(), qty(), price(), 0u32..500)
            .prop_map(|(sym, buy, qty, price, fee)| Op::Fill { sym, buy, qty, price, fee }),
        3 => (0..SYMBOLS, price()).prop_map(|(sym, price)| Op::Mark { sym, price }),
        2 => (0..SYMBOLS, any::<bool>(), qty(), price())
            .prop_map(|(sym, long, qty, price)| Op::InFlight { sym, long, qty, price }),
        1 => (0u32..300).prop_map(|minutes| Op::Wait { minutes }),
        1 => proptest::option::of((1i64..100_000_000, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s)))
            .prop_map(|equity| Op::Equity { equity }),
    ]
}

fn limits() -> impl Strategy<Value = RiskLimits> {
    (
        (1i64..5_000_000, 0u32..=3),
        (1i64..6_000_000, 0u32..=3),
        (1i64..20_000_000, 0u32..=3),
        1usize..5,
        (1i64..100, 0u32..=2),
        1u32..=20,
        (1i64..50_000, 0u32..=2),
    )
        .prop_map(
            |(trade, symbol, gross, count, side, lev, loss)| RiskLimits {
                max_notional_per_trade: Decimal::new(trade.0, trade.1),
                max_symbol_notional: Decimal::new(symbol.0, symbol.1),
                max_gross_exposure: Decimal::new(gross.0, gross.1),
                max_concurrent_positions: count,
                max_side_fraction: Decimal::new(side.0, side.1).min(Decimal::ONE),
                max_leverage: lev,
                max_daily_loss: Decimal::new(loss.0, loss.1),
                loss_pause_minutes: 30,
                cooldown_minutes: 10,
                require_filters: false,
                max_drawdown_pct: Decimal::ONE,
            },
        )
}

fn filters() -> impl Strategy<Value = SymbolFilters> {
    (0u32..=8, 0u32..=4, (0i64..100, 0u32..=2), any::<bool>()).prop_map(
        |(step, tick, min_notional, capped)| SymbolFilters {
            tick_size: Decimal::new(1, tick),
            step_size: Decimal::new(1, step),
            min_qty: Decimal::new(1, step),
            max_qty: if capped {
                Decimal::from(1_000)
            } else {
                Decimal::ZERO
            },
            min_notional: Decimal::new(min_notional.0, min_notional.1),
            ..SymbolFilters::NONE
        },
    )
}

fn open(symbol: &str, side: PositionSide, qty: Decimal, price: Decimal, lev: u32) -> RiskIntent {
    RiskIntent {
        intent_id: "probe".into(),
        symbol: symbol.into(),
        kind: IntentKind::Open {
            side,
            qty,
            reference_price: price,
            limit_price: None,
            leverage: lev,
        },
    }
}

/// Entries of `symbol` exactly on each limit, a hair under and a hair over: a size and a
/// price whose product is the room left under the limit (sizes that divide it exactly), and
/// the room divided by a probe's own price.
fn edge_entries(
    guard: &RiskGuard,
    book: &RiskBook,
    symbol: &str,
    price: Decimal,
) -> Vec<(Decimal, Decimal)> {
    let l = &guard.limits;
    let e = book.exposure();
    let held = book.symbol_notional(symbol);
    let side_max = l.max_side_fraction * l.max_gross_exposure;
    let mut rooms = vec![
        l.max_notional_per_trade,
        l.max_symbol_notional - held,
        l.max_gross_exposure - e.gross(),
        side_max - e.long,
        side_max - e.short,
    ];
    if let Some(eq) = book.equity {
        rooms.push(eq * Decimal::from(l.max_leverage) - e.gross());
    }
    if let Some(f) = guard.filters(symbol) {
        rooms.push(f.min_notional);
    }
    let hair = Decimal::new(1, 20);
    let mut entries = Vec::new();
    for room in rooms.into_iter().filter(|r| *r > Decimal::ZERO) {
        for size in [1i64, 4, 100] {
            for q in [Decimal::from(size), Decimal::new(size, 3)] {
                let p = room / q;
                entries.extend([(q, p), (q, p - hair), (q, p + hair)]);
            }
        }
        if let Some(q) = room.checked_div(price) {
            entries.extend([(q, price), (q.round_dp(3), price), (q.round_dp(8), price)]);
        }
    }
    entries.retain(|(q, p)| *q > Decimal::ZERO && *p > Decimal::ZERO);
    entries
}

fn apply(guard: &RiskGuard, book: &mut RiskBook, now: &mut i64, op: &Op) {
    match op {
        Op::Fill {
            sym: s,
            buy,
            qty,
            price,
            fee,
        } => {
            book.on_fill(
                &BookFill {
                    intent_id: None,
                    symbol: sym(*s),
                    side: if *buy { Side::Buy } else { Side::Sell },
                    qty: *qty,
                    price: *price,
                    fee: Decimal::new(i64::from(*fee), 2),
                },
                *now,
            );
        }
        Op::Mark { sym: s, price } => book.on_price(&sym(*s), *price),
        Op::InFlight {
            sym: s,
            long,
            qty,
            price,
        } => {
            let side = if *long {
                PositionSide::Long
            } else {
                PositionSide::Short
            };
            let mut intent = open(&sym(*s), side, *qty, *price, 1);
            intent.intent_id = format!("i{now}-{s}");
            guard.admit_reference(book, &intent, *now);
        }
        Op::Wait { minutes } => *now += i64::from(*minutes) * 60_000,
        Op::Equity { equity } => book.equity = *equity,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn the_guard_decides_as_the_decimal_reference_on_the_limits_and_around_them(
        limits in limits(),
        filters in proptest::collection::vec(proptest::option::of(filters()), SYMBOLS),
        ops in proptest::collection::vec(op(), 1..25),
        probes in proptest::collection::vec((qty(), price(), 1u32..25), 2),
    ) {
        let mut guard = RiskGuard::new(limits);
        for (i, f) in filters.iter().enumerate() {
            if let Some(f) = f {
                guard = guard.with_filters(sym(i), *f);
            }
        }
        let mut book = RiskBook::new(T0);
        let mut now = T0;
        for op in &ops {
            apply(&guard, &mut book, &mut now, op);
            for i in 0..SYMBOLS {
                let s = sym(i);
                for side in [PositionSide::Long, PositionSide::Short] {
                    let mut intents = Vec::new();
                    for (q, p, lev) in &probes {
                        intents.push(open(&s, side, *q, *p, *lev));
                        for (q, p) in edge_entries(&guard, &book, &s, *p) {
                            intents.push(open(&s, side, q, p, guard.limits.max_leverage));
                        }
                    }
                    for intent in &intents {
                        let reference = guard.check_reference(&book, intent, now);
                        prop_assert_eq!(
                            guard.check_code(&book, intent, now).reason(),
                            reference.reason(),
                            "{:?}", intent
                        );
                        prop_assert_eq!(&guard.check(&book, intent, now), &reference);
                        // The backtester's admit (the symbol's filters looked up beforehand,
                        // the drawdown test answered by the observe it runs first) decides
                        // and changes the book as the reference does.
                        let (mut a, mut b) = (book.clone(), book.clone());
                        let da = guard.admit_code_with_filters(
                            &mut a, intent, now, guard.filters(&s),
                        );
                        let db = guard.admit_reference(&mut b, intent, now);
                        prop_assert_eq!(da.reason(), db.reason(), "{:?}", intent);
                        prop_assert_eq!(&a, &b);
                        prop_assert_eq!(a.drawdown_halt, b.drawdown_halt);
                    }
                    // admit changes the book as the reference does.
                    if let Some(intent) = intents.first() {
                        let (mut a, mut b) = (book.clone(), book.clone());
                        let da = guard.admit(&mut a, intent, now);
                        let db = guard.admit_reference(&mut b, intent, now);
                        prop_assert_eq!(da, db);
                        prop_assert_eq!(a, b);
                    }
                }
            }
        }
    }
}

/// A margin, a price and a leverage that put `notional / price` within about 10^-26 of
/// `steps × 10^-k` (below or above; with no nudge, the price is the quotient's rounding, so
/// `Decimal`'s quotient of it lands on the step or a hair beside it — and rounds onto the step
/// from below about half the time), with that step. Small
/// notionals: with prices of 28 digits, larger ones leave the integer path's range.
fn near_step() -> impl Strategy<Value = (Decimal, Decimal, u32, Decimal)> {
    let nudge = prop_oneof![2 => Just(0i64), 1 => -2i64..=2];
    (1i64..35, 1u32..=10, -2i32..=6, 1i64..1_000_000, nudge).prop_filter_map(
        "a price",
        |(margin, leverage, k, steps, nudge)| {
            let notional = Decimal::from(margin) * Decimal::from(leverage);
            let step = if k >= 0 {
                Decimal::new(1, k.unsigned_abs())
            } else {
                Decimal::from(10i64.pow(k.unsigned_abs()))
            };
            let exact = notional.checked_div(Decimal::from(steps) * step)?;
            // A few units of its last digit.
            let price = exact.checked_add(Decimal::new(nudge, exact.scale()))?;
            (price > Decimal::ZERO).then_some((Decimal::from(margin), price, leverage, step))
        },
    )
}

fn any_sizing() -> impl Strategy<Value = (Decimal, Decimal, u32, Decimal)> {
    (
        (1i64..100_000, 0u32..=4),
        price(),
        1u32..=125,
        prop_oneof![
            (0u32..=8).prop_map(|k| Decimal::new(1, k)),
            Just(Decimal::new(5, 3)),
            Just(Decimal::from(10)),
            Just(Decimal::from(100)),
            Just(Decimal::new(10, 4)),
            Just(Decimal::ZERO),
        ],
    )
        .prop_map(|((m, s), p, l, step)| (Decimal::new(m, s), p, l, step))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn a_fixed_notional_is_sized_exactly_as_the_decimal_quotient_floored_to_the_step(
        (margin, price, leverage, step) in prop_oneof![near_step(), any_sizing()],
        min_qty_steps in 0i64..2,
        max_qty in prop_oneof![
            3 => Just(Decimal::ZERO),
            1 => (1i64..100).prop_map(Decimal::from),
        ],
        min_notional in prop_oneof![
            Just(Decimal::ZERO),
            (1i64..2_000).prop_map(|m| Decimal::new(m, 2)),
        ],
    ) {
        let f = SymbolFilters {
            tick_size: Decimal::new(1, 2),
            step_size: step,
            min_qty: step * Decimal::from(min_qty_steps),
            max_qty,
            min_notional,
            ..SymbolFilters::NONE
        };
        let sizing = Sizing::FixedNotional { margin, leverage };
        let ctx = SizingContext::default();
        let fast = sizing.quantity_with(price, price, &f, &ctx);
        let reference = sizing.quantity_reference(price, price, &f, &ctx);
        prop_assert_eq!(
            fast.clone().map(|q| q.serialize()),
            reference.clone().map(|q| q.serialize()),
            "{:?} vs {:?} at {} (step {})", fast, reference, price, step
        );
    }
}
