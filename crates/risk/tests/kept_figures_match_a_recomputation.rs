//! Property test: the figures the book's transitions keep up to date (each position's
//! unrealized PnL and notional at its mark, the drawdown test's last answer) always give what a
//! recomputation from the positions and marks gives, to the bit (value and scale), over random
//! sequences of entries, partial fills that average the entry, reductions and flips, cancels,
//! prices (some with 28 significant digits), day rolls, reconciliation's corrections, equity
//! moves and restores from JSON. Every figure the guard reads is compared, and so are the
//! guard's answers and messages on a probe entry of every symbol.

use proptest::prelude::*;
use qt_events::{PositionSide, Side};
use qt_risk::{
    BookFill, BookPosition, DAY_MS, InFlight, IntentKind, RiskBook, RiskGuard, RiskIntent,
    RiskLimits,
};
use rust_decimal::Decimal;

const T0: i64 = 1_700_000_000_000;
const SYMBOLS: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    /// An entry accepted by the guard (or refused) and now in flight.
    Open {
        sym: usize,
        long: bool,
        qty_thousandths: u32,
    },
    /// Part of an order in flight fills at a price near its reference (averaging the entry).
    Fill {
        pick: usize,
        pct: u32,
        tick: i32,
    },
    /// A fill without an intent (a stop on the exchange): reduces, closes or flips.
    Direct {
        sym: usize,
        buy: bool,
        qty_thousandths: u32,
    },
    Cancel {
        pick: usize,
    },
    /// A new price: a move in percent, or a price with 28 significant digits.
    Price {
        sym: usize,
        pct_move: i32,
        long_digits: bool,
    },
    /// Time passes, past midnight UTC now and then.
    Wait {
        minutes: u32,
    },
    /// Reconciliation sets or removes a position.
    Reconcile {
        sym: usize,
        remove: bool,
        qty_thousandths: u32,
    },
    Equity {
        pct_move: i32,
    },
    /// The book is saved and loaded (its kept figures are rebuilt).
    Restore,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SYMBOLS, any::<bool>(), 1u32..3_000).prop_map(|(sym, long, qty_thousandths)| Op::Open { sym, long, qty_thousandths }),
        4 => (any::<usize>(), 1u32..=100, -5i32..5).prop_map(|(pick, pct, tick)| Op::Fill { pick, pct, tick }),
        2 => (0..SYMBOLS, any::<bool>(), 1u32..3_000).prop_map(|(sym, buy, qty_thousandths)| Op::Direct { sym, buy, qty_thousandths }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        4 => (0..SYMBOLS, -20i32..20, prop::bool::weighted(0.2)).prop_map(|(sym, pct_move, long_digits)| Op::Price { sym, pct_move, long_digits }),
        2 => (0u32..1_500).prop_map(|minutes| Op::Wait { minutes }),
        1 => (0..SYMBOLS, any::<bool>(), 1u32..3_000).prop_map(|(sym, remove, qty_thousandths)| Op::Reconcile { sym, remove, qty_thousandths }),
        2 => (-15i32..12).prop_map(|pct_move| Op::Equity { pct_move }),
        1 => Just(Op::Restore),
    ]
}

fn sym_name(i: usize) -> String {
    format!("S{i}USDT")
}

fn thousandths(n: u32) -> Decimal {
    Decimal::new(i64::from(n), 3)
}

struct Run {
    guard: RiskGuard,
    book: RiskBook,
    now: i64,
    next_id: u64,
    equity: Decimal,
}

impl Run {
    fn price(&self, sym: usize) -> Decimal {
        self.book
            .mark(&sym_name(sym))
            .unwrap_or_else(|| Decimal::from(20 + 13 * sym as i64))
    }

    fn step(&mut self, op: &Op) {
        self.now += 1_000;
        match *op {
            Op::Open {
                sym,
                long,
                qty_thousandths,
            } => {
                self.next_id += 1;
                let side = if long {
                    PositionSide::Long
                } else {
                    PositionSide::Short
                };
                let intent = RiskIntent {
                    intent_id: format!("i{}", self.next_id),
                    symbol: sym_name(sym),
                    kind: IntentKind::Open {
                        side,
                        qty: thousandths(qty_thousandths),
                        reference_price: self.price(sym),
                        limit_price: None,
                        leverage: 5,
                    },
                };
                let _ = self.guard.admit(&mut self.book, &intent, self.now);
            }
            Op::Fill { pick, pct, tick } => {
                let flights: Vec<(String, InFlight)> = self
                    .book
                    .in_flight()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if flights.is_empty() {
                    return;
                }
                let (id, f) = &flights[pick % flights.len()];
                let qty = (f.remaining_qty * Decimal::from(pct) / Decimal::ONE_HUNDRED)
                    .round_dp(3)
                    .max(Decimal::new(1, 3))
                    .min(f.remaining_qty);
                let fill = BookFill {
                    intent_id: Some(id.clone()),
                    symbol: f.symbol.clone(),
                    side: f.side,
                    qty,
                    price: f.reference_price + Decimal::new(i64::from(tick), 2),
                    fee: Decimal::new(3, 3),
                };
                self.book.on_fill(&fill, self.now);
            }
            Op::Direct {
                sym,
                buy,
                qty_thousandths,
            } => {
                let fill = BookFill {
                    intent_id: None,
                    symbol: sym_name(sym),
                    side: if buy { Side::Buy } else { Side::Sell },
                    qty: thousandths(qty_thousandths),
                    price: self.price(sym),
                    fee: Decimal::new(1, 2),
                };
                self.book.on_fill(&fill, self.now);
            }
            Op::Cancel { pick } => {
                let ids: Vec<String> = self.book.in_flight().keys().cloned().collect();
                if !ids.is_empty() {
                    self.book.on_ended(&ids[pick % ids.len()]);
                }
            }
            Op::Price {
                sym,
                pct_move,
                long_digits,
            } => {
                let moved = self.price(sym) * Decimal::from(100 + pct_move) / Decimal::ONE_HUNDRED;
                let p = if long_digits {
                    // a price like 41.33333333333333333333333333: products round at 28 digits
                    moved / Decimal::from(3)
                } else {
                    moved.round_dp(4)
                };
                self.book.on_price(&sym_name(sym), p);
            }
            Op::Wait { minutes } => self.now += i64::from(minutes) * 60_000,
            Op::Reconcile {
                sym,
                remove,
                qty_thousandths,
            } => {
                let name = sym_name(sym);
                if remove {
                    let held = self.book.positions().get(&name).cloned();
                    assert_eq!(self.book.remove_position(&name), held);
                } else {
                    let p = BookPosition {
                        side: if qty_thousandths % 2 == 0 {
                            PositionSide::Long
                        } else {
                            PositionSide::Short
                        },
                        qty: thousandths(qty_thousandths),
                        entry_price: self.price(sym),
                    };
                    self.book.set_position(&name, p);
                }
            }
            Op::Equity { pct_move } => {
                self.equity = (self.equity * Decimal::from(100 + pct_move) / Decimal::ONE_HUNDRED)
                    .round_dp(6)
                    .max(Decimal::ONE);
                self.book.equity = Some(self.equity);
            }
            Op::Restore => {
                let saved = serde_json::to_string(&self.book).expect("a book serializes");
                let loaded: RiskBook = serde_json::from_str(&saved).expect("and loads again");
                assert_eq!(loaded, self.book, "a restore loses nothing");
                self.book = loaded;
            }
        }
        self.guard.observe(&mut self.book, self.now);
    }

    /// Every figure the guard reads, and the guard's answers, against a recomputation.
    fn assert_matches_recomputation(&self) -> Result<(), TestCaseError> {
        let kept = &self.book;
        let scratch = self.book.from_scratch();
        let bits = |d: Decimal| d.serialize();
        prop_assert_eq!(
            bits(kept.unrealized()),
            bits(scratch.unrealized()),
            "unrealized {} vs {}",
            kept.unrealized(),
            scratch.unrealized()
        );
        let (e, f) = (kept.exposure(), scratch.exposure());
        prop_assert_eq!(bits(e.long), bits(f.long), "long {} vs {}", e.long, f.long);
        prop_assert_eq!(
            bits(e.short),
            bits(f.short),
            "short {} vs {}",
            e.short,
            f.short
        );
        for now in [self.now, self.now + DAY_MS] {
            prop_assert_eq!(bits(kept.daily_pnl(now)), bits(scratch.daily_pnl(now)));
        }
        for i in 0..SYMBOLS {
            let sym = sym_name(i);
            prop_assert_eq!(
                bits(kept.symbol_notional(&sym)),
                bits(scratch.symbol_notional(&sym)),
                "{} notional",
                &sym
            );
            prop_assert_eq!(kept.active_count(&sym), scratch.active_count(&sym));
            for side in [PositionSide::Long, PositionSide::Short] {
                let probe = RiskIntent {
                    intent_id: "probe".into(),
                    symbol: sym.clone(),
                    kind: IntentKind::Open {
                        side,
                        qty: Decimal::ONE,
                        reference_price: self.price(i),
                        limit_price: None,
                        leverage: 5,
                    },
                };
                prop_assert_eq!(
                    self.guard.check(kept, &probe, self.now),
                    self.guard.check(&scratch, &probe, self.now)
                );
            }
        }
        prop_assert_eq!(
            self.guard.entries_halted(kept),
            self.guard.entries_halted(&scratch)
        );
        prop_assert_eq!(
            self.guard.drawdown_level(kept),
            self.guard.drawdown_level(&scratch)
        );
        Ok(())
    }
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_notional_per_trade: Decimal::from(400),
        max_symbol_notional: Decimal::from(500),
        max_gross_exposure: Decimal::from(1_500),
        max_concurrent_positions: 4,
        max_daily_loss: Decimal::from(60),
        loss_pause_minutes: 20,
        cooldown_minutes: 5,
        max_drawdown_pct: Decimal::new(25, 2),
        ..RiskLimits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn kept_figures_always_equal_a_recomputation_from_the_positions(
        ops in prop::collection::vec(op(), 1..150)
    ) {
        let mut run = Run {
            guard: RiskGuard::new(limits()),
            book: RiskBook::new(T0),
            now: T0,
            next_id: 0,
            equity: Decimal::from(1_000),
        };
        run.book.equity = Some(run.equity);
        for op in &ops {
            run.step(op);
            run.assert_matches_recomputation()?;
        }
    }
}

#[test]
fn a_loaded_book_reads_its_figures_from_the_positions_until_its_first_transition() {
    let mut b = RiskBook::new(T0);
    let fill = |side, qty: i64, price: i64| BookFill {
        intent_id: None,
        symbol: "A".into(),
        side,
        qty: Decimal::from(qty),
        price: Decimal::from(price),
        fee: Decimal::ZERO,
    };
    b.on_fill(&fill(Side::Buy, 2, 100), T0);
    b.on_price("A", Decimal::from(110));
    let saved = serde_json::to_string(&b).expect("serializes");
    // The saved form holds no derived figure: it is what books were saved as before them.
    assert!(
        !saved.contains("derived") && !saved.contains("terms"),
        "{saved}"
    );
    let mut loaded: RiskBook = serde_json::from_str(&saved).expect("loads");
    assert_eq!(loaded.unrealized(), Decimal::from(20));
    assert_eq!(loaded.exposure().long, Decimal::from(220));
    loaded.on_price("A", Decimal::from(90));
    assert_eq!(loaded.unrealized(), Decimal::from(-20));
    assert_eq!(loaded.symbol_notional("A"), Decimal::from(180));
    assert_eq!(
        loaded.unrealized().serialize(),
        loaded.from_scratch().unrealized().serialize()
    );
}
