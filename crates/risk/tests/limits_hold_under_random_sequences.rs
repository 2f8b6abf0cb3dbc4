//! Property tests: no sequence of intents, fills, cancels and prices takes the book past a limit.
//!
//! Count limits (positions plus orders in flight) hold at every step. Notional limits are
//! measured at the prices of the moment: every admitted entry leaves the book within every
//! notional limit; and when prices stay where the orders were sized, every limit holds at every
//! step. (A price move alone can raise the value of what is held; the guard then admits only
//! reductions until the book is back under the limit.)
//!
//! The drawdown breaker, with the account equity moving on its own path among those steps (and
//! now and then exactly at the limit, or a hair above it): it trips exactly when the equity has
//! fallen `max_drawdown_pct` of its peak, no entry passes from then on until a resume, exits
//! always pass, and each trip is reported once.

use proptest::prelude::*;
use qt_events::PositionSide;
use qt_events::RejectReason;
use qt_risk::{BookFill, DrawdownLevel, IntentKind, RiskBook, RiskGuard, RiskIntent, RiskLimits};
use rust_decimal::Decimal;

const T0: i64 = 1_700_000_000_000;
const SYMBOLS: usize = 12;

#[derive(Debug, Clone)]
enum Op {
    Open {
        sym: usize,
        long: bool,
        qty_tenths: u32,
    },
    Fill {
        pick: usize,
        pct: u32,
    },
    Cancel {
        pick: usize,
    },
    Reduce {
        sym: usize,
        pct: u32,
    },
    Price {
        sym: usize,
        pct_move: i32,
    },
    Wait {
        minutes: u32,
    },
    /// The account equity moves by `pct_move` percent.
    Equity {
        pct_move: i32,
    },
    /// The account equity lands exactly on the drawdown limit from its peak, or a hair above.
    EquityAtLimit {
        hair_above: bool,
    },
    /// An operator resumes after the drawdown breaker.
    Resume,
}

fn op(with_prices: bool) -> impl Strategy<Value = Op> {
    ops(with_prices, false)
}

fn ops(with_prices: bool, with_equity: bool) -> impl Strategy<Value = Op> {
    let price_weight = if with_prices { 2 } else { 0 };
    let equity_weight = if with_equity { 3 } else { 0 };
    let limit_weight = u32::from(with_equity);
    prop_oneof![
        equity_weight => (-12i32..10).prop_map(|pct_move| Op::Equity { pct_move }),
        limit_weight => any::<bool>().prop_map(|hair_above| Op::EquityAtLimit { hair_above }),
        limit_weight => Just(Op::Resume),
        5 => (0..SYMBOLS, any::<bool>(), 1u32..400).prop_map(|(sym, long, qty_tenths)| Op::Open { sym, long, qty_tenths }),
        4 => (any::<usize>(), 1u32..=100).prop_map(|(pick, pct)| Op::Fill { pick, pct }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (0..SYMBOLS, 1u32..=100).prop_map(|(sym, pct)| Op::Reduce { sym, pct }),
        price_weight => (0..SYMBOLS, -30i32..30).prop_map(|(sym, pct_move)| Op::Price { sym, pct_move }),
        1 => (0u32..120).prop_map(|minutes| Op::Wait { minutes }),
    ]
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_notional_per_trade: Decimal::from(2_500),
        max_symbol_notional: Decimal::from(3_000),
        max_gross_exposure: Decimal::from(12_000),
        max_concurrent_positions: 5,
        max_side_fraction: Decimal::new(6, 1),
        max_leverage: 10,
        max_daily_loss: Decimal::from(400),
        loss_pause_minutes: 30,
        cooldown_minutes: 10,
        require_filters: false,
        max_drawdown_pct: Decimal::new(1, 1),
    }
}

fn sym_name(i: usize) -> String {
    format!("S{i}USDT")
}

fn base_price(i: usize) -> Decimal {
    Decimal::from(10 + 7 * i as i64)
}

struct Run {
    guard: RiskGuard,
    book: RiskBook,
    now: i64,
    next_id: u64,
    allowed_opens: usize,
    /// The reason of the last refused entry.
    last_refusal: Option<RejectReason>,
    /// The breaker as the test computes it: the equity, its peak since the start or the last
    /// resume, and whether the limit has been reached since.
    equity: Decimal,
    model_peak: Decimal,
    model_tripped: bool,
    trips: usize,
    resumes: usize,
}

impl Run {
    fn new() -> Self {
        Self {
            guard: RiskGuard::new(limits()),
            book: RiskBook::new(T0),
            now: T0,
            next_id: 0,
            allowed_opens: 0,
            last_refusal: None,
            equity: Decimal::from(5_000),
            model_peak: Decimal::ZERO,
            model_tripped: false,
            trips: 0,
            resumes: 0,
        }
    }

    /// A run whose account equity is known from the start (5,000).
    fn with_equity() -> Self {
        let mut run = Self::new();
        run.set_equity(run.equity);
        run.guard.observe(&mut run.book, run.now);
        run
    }

    /// A new equity observation, seen by the book and by the model.
    fn set_equity(&mut self, e: Decimal) {
        self.equity = e;
        self.book.equity = Some(e);
        self.model_peak = self.model_peak.max(e);
        let limit = self.guard.limits.max_drawdown_pct * self.model_peak;
        if !self.model_tripped && self.model_peak > Decimal::ZERO && self.model_peak - e >= limit {
            self.model_tripped = true;
            self.trips += 1;
        }
    }

    fn price(&self, sym: usize) -> Decimal {
        self.book
            .marks()
            .get(&sym_name(sym))
            .copied()
            .unwrap_or_else(|| base_price(sym))
    }

    /// Applies one step; returns the symbol of an admitted entry.
    fn step(&mut self, op: &Op) -> Option<usize> {
        self.now += 1_000;
        match *op {
            Op::Open {
                sym,
                long,
                qty_tenths,
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
                        qty: Decimal::new(i64::from(qty_tenths), 1),
                        reference_price: self.price(sym),
                        limit_price: None,
                        leverage: 10,
                    },
                };
                let d = self.guard.admit(&mut self.book, &intent, self.now);
                self.last_refusal = d.reason();
                let allowed = d.is_allowed();
                self.allowed_opens += usize::from(allowed);
                return allowed.then_some(sym);
            }
            Op::Fill { pick, pct } => {
                let ids: Vec<String> = self.book.in_flight().keys().cloned().collect();
                if ids.is_empty() {
                    return None;
                }
                let id = &ids[pick % ids.len()];
                let f = &self.book.in_flight()[id];
                let qty = (f.remaining_qty * Decimal::from(pct) / Decimal::from(100)).round_dp(3);
                let fill = BookFill {
                    intent_id: Some(id.clone()),
                    symbol: f.symbol.clone(),
                    side: f.side,
                    qty: qty.max(Decimal::new(1, 3)).min(f.remaining_qty),
                    price: f.reference_price,
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
            Op::Reduce { sym, pct } => {
                let name = sym_name(sym);
                if let Some(p) = self.book.positions().get(&name).cloned() {
                    let qty = (p.qty * Decimal::from(pct) / Decimal::from(100))
                        .max(Decimal::new(1, 3))
                        .min(p.qty);
                    let close = RiskIntent {
                        intent_id: "r".into(),
                        symbol: name.clone(),
                        kind: IntentKind::Close,
                    };
                    assert!(
                        self.guard.check(&self.book, &close, self.now).is_allowed(),
                        "exits always pass"
                    );
                    let fill = BookFill {
                        intent_id: None,
                        symbol: name,
                        side: p.side.exit_side(),
                        qty,
                        price: self.price(sym),
                        fee: Decimal::ZERO,
                    };
                    self.book.on_fill(&fill, self.now);
                }
            }
            Op::Price { sym, pct_move } => {
                let p = self.price(sym) * (Decimal::from(100 + pct_move) / Decimal::from(100));
                self.book.on_price(&sym_name(sym), p.round_dp(4));
            }
            Op::Wait { minutes } => self.now += i64::from(minutes) * 60_000,
            Op::Equity { pct_move } => {
                let e = (self.equity * Decimal::from(100 + pct_move) / Decimal::from(100))
                    .round_dp(6)
                    .max(Decimal::ONE);
                self.set_equity(e);
            }
            Op::EquityAtLimit { hair_above } => {
                let at = self.model_peak * (Decimal::ONE - self.guard.limits.max_drawdown_pct);
                let hair = if hair_above {
                    Decimal::new(1, 9)
                } else {
                    Decimal::ZERO
                };
                self.set_equity(at + hair);
            }
            Op::Resume => {
                let cleared = self.book.resume_after_drawdown();
                assert_eq!(
                    cleared.is_some(),
                    self.model_tripped,
                    "resume clears a trip"
                );
                if self.model_tripped {
                    self.model_tripped = false;
                    self.model_peak = self.equity;
                    self.resumes += 1;
                }
            }
        }
        self.guard.observe(&mut self.book, self.now);
        None
    }

    /// Gross, the sides (`Some(long)`: only that one) and the given symbols are within their
    /// limits.
    fn assert_notional_limits(
        &self,
        symbols: &[usize],
        side: Option<bool>,
    ) -> Result<(), TestCaseError> {
        let l = &self.guard.limits;
        let e = self.book.exposure();
        prop_assert!(
            e.gross() <= l.max_gross_exposure,
            "gross {} > {}",
            e.gross(),
            l.max_gross_exposure
        );
        if side != Some(false) {
            prop_assert!(e.long <= l.max_side_notional(), "long {}", e.long);
        }
        if side != Some(true) {
            prop_assert!(e.short <= l.max_side_notional(), "short {}", e.short);
        }
        for &i in symbols {
            let n = self.book.symbol_notional(&sym_name(i));
            prop_assert!(n <= l.max_symbol_notional, "symbol {i} notional {n}");
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn positions_plus_orders_in_flight_never_exceed_the_maximum_and_admitted_entries_respect_every_notional_limit(
        ops in prop::collection::vec(op(true), 1..200)
    ) {
        let mut run = Run::new();
        for op in &ops {
            let admitted = run.step(op);
            prop_assert!(run.book.active_symbols().len() <= run.guard.limits.max_concurrent_positions);
            for i in 0..SYMBOLS {
                let name = sym_name(i);
                let set = run.book.active_symbols();
                prop_assert_eq!(run.book.active_count(&name), (set.len(), set.contains(name.as_str())));
            }
            // What an admission adds to is within its limit: gross, its own side and its
            // symbol. (Prices move in these sequences, so the other side may already be over
            // its limit: an entry on this side does not add to it, and is rightly allowed.)
            if let (Some(sym), Op::Open { long, .. }) = (admitted, op) {
                run.assert_notional_limits(&[sym], Some(*long))?;
            }
        }
    }

    #[test]
    fn with_prices_where_orders_were_sized_every_limit_holds_at_every_step(
        ops in prop::collection::vec(op(false), 1..200)
    ) {
        let mut run = Run::new();
        for op in &ops {
            run.step(op);
            prop_assert!(run.book.active_symbols().len() <= run.guard.limits.max_concurrent_positions);
            let all: Vec<usize> = (0..SYMBOLS).collect();
            run.assert_notional_limits(&all, None)?;
        }
    }
}

/// Every exit kind for a symbol.
fn exits(sym: &str) -> [RiskIntent; 4] {
    [
        IntentKind::Close,
        IntentKind::Reduce { qty: Decimal::ONE },
        IntentKind::Protect,
        IntentKind::Cancel,
    ]
    .map(|kind| RiskIntent {
        intent_id: "x".into(),
        symbol: sym.into(),
        kind,
    })
}

impl Run {
    /// One step of a sequence with the equity moving: checks the breaker before and after it.
    fn drawdown_step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let halted = self.book.drawdown_halt.is_some();
        let admitted = self.step(op);
        if halted && matches!(op, Op::Open { .. }) {
            prop_assert!(
                admitted.is_none(),
                "an entry passed while the breaker was tripped"
            );
            prop_assert_eq!(self.last_refusal, Some(RejectReason::DrawdownBreaker));
        }
        // It trips exactly when the test's own arithmetic says so, and stays until a resume.
        prop_assert_eq!(self.book.drawdown_halt.is_some(), self.model_tripped);
        if let Some(h) = self.book.drawdown_halt {
            prop_assert!(h.peak - h.equity >= self.guard.limits.max_drawdown_pct * h.peak);
            prop_assert!(self.model_tripped);
        }
        // Exits always pass, tripped or not.
        for i in 0..SYMBOLS {
            for x in exits(&sym_name(i)) {
                prop_assert!(self.guard.check(&self.book, &x, self.now).is_allowed());
            }
        }
        // Each crossing is reported once, at a higher level than the last one reported.
        let before = self.book.drawdown_alerted;
        if let Some(c) = self.guard.drawdown_crossing(&mut self.book) {
            prop_assert!(c.level > before);
            prop_assert_eq!(c.level, self.guard.drawdown_level(&self.book));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_entry_passes_while_the_drawdown_breaker_is_tripped_and_it_trips_exactly_at_the_limit(
        ops in prop::collection::vec(ops(true, true), 1..200)
    ) {
        let mut run = Run::with_equity();
        let mut tripped_reports = 0;
        for op in &ops {
            let before = run.book.drawdown_alerted;
            run.drawdown_step(op)?;
            let after = run.book.drawdown_alerted;
            tripped_reports +=
                usize::from(after == DrawdownLevel::Tripped && before != DrawdownLevel::Tripped);
            prop_assert!(run.book.active_symbols().len() <= run.guard.limits.max_concurrent_positions);
        }
        prop_assert_eq!(tripped_reports, run.trips, "one trip report per trip");
    }
}

#[test]
fn the_random_equity_sequences_do_trip_refuse_and_resume() {
    // Guards the breaker's property test against vacuity: the sequences it draws do trip the
    // breaker, refuse entries for it, resume, and admit entries again afterwards.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(ops(true, true), 1..200);
    let (mut trips, mut resumes, mut refused, mut admitted_after_resume) = (0, 0, 0, 0);
    for _ in 0..64 {
        let seq = strategy.new_tree(&mut runner).map(|t| t.current()).unwrap();
        let mut run = Run::with_equity();
        for op in &seq {
            let halted = run.book.drawdown_halt.is_some();
            let resumed_before = run.resumes > 0;
            let admitted = run.step(op).is_some();
            refused += usize::from(halted && matches!(op, Op::Open { .. }));
            admitted_after_resume += usize::from(admitted && resumed_before);
        }
        trips += run.trips;
        resumes += run.resumes;
    }
    assert!(
        trips > 0 && resumes > 0 && refused > 0 && admitted_after_resume > 0,
        "trips {trips}, resumes {resumes}, refused {refused}, admitted after a resume {admitted_after_resume}"
    );
}

#[test]
fn the_random_sequences_do_reach_the_limits() {
    // Guards the property tests against vacuity: a long run of entries must hit refusals.
    let mut run = Run::new();
    let mut refused = 0;
    for i in 0..200usize {
        let op = Op::Open {
            sym: i % SYMBOLS,
            long: i % 3 != 0,
            qty_tenths: 150,
        };
        if run.step(&op).is_none() {
            refused += 1;
        }
        run.step(&Op::Fill { pick: i, pct: 100 });
    }
    assert!(run.allowed_opens > 0 && refused > 0);
    assert_eq!(run.book.active_symbols().len(), 5);
}
