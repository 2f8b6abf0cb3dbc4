//! [`RiskGuard`]: decides whether an intent may go to the exchange, with a reason code.

mod drawdown;
mod exact_checks;
mod filter_table;
mod intent;
mod reference;

use crate::book::{DrawdownHalt, DrawdownMemo, InFlight, RiskBook};
use crate::exact::Exact;
use crate::filters::SymbolFilters;
use crate::limits::RiskLimits;
pub use drawdown::DrawdownCrossing;
use filter_table::FilterTable;
use intent::Rejector;
pub use intent::{Decision, IntentKind, RiskIntent, reason_code};

/// What a check's caller already knows, so that the check does not compute or look it up again.
#[derive(Debug, Clone, Copy, Default)]
struct Known<'f> {
    /// The book's daily PnL at the check's time, as `observe` just computed it (exactly).
    daily: Option<Exact>,
    /// `observe` ran at the check's time and nothing changed since: the drawdown limit is
    /// reached exactly when the breaker's halt is set (see [`RiskGuard::entries_halted`]).
    observed: bool,
    /// The intent symbol's filters, as [`RiskGuard::filters`] gives them (`None`: look them up).
    filters: Option<Option<&'f SymbolFilters>>,
}

/// The risk rules over a [`RiskBook`]. Pure: the same guard runs in execution and the backtester.
#[derive(Debug, Clone, Default)]
pub struct RiskGuard {
    pub limits: RiskLimits,
    /// Exchange filters by symbol (set with [`RiskGuard::set_filters`], read with
    /// [`RiskGuard::filters`]), searched by symbol key on every entry checked.
    filters: FilterTable,
}

impl RiskGuard {
    pub fn new(limits: RiskLimits) -> Self {
        Self {
            limits,
            filters: FilterTable::default(),
        }
    }

    /// Adds a symbol's exchange filters.
    pub fn with_filters(mut self, symbol: impl Into<String>, filters: SymbolFilters) -> Self {
        self.set_filters(&symbol.into(), filters);
        self
    }

    /// Sets (or replaces) a symbol's exchange filters.
    pub fn set_filters(&mut self, symbol: &str, filters: SymbolFilters) {
        self.filters.set(symbol, filters);
    }

    /// A symbol's exchange filters, if known.
    pub fn filters(&self, symbol: &str) -> Option<&SymbolFilters> {
        self.filters.get(symbol)
    }

    /// Every symbol's exchange filters, in symbol order.
    pub fn all_filters(&self) -> impl Iterator<Item = (&str, &SymbolFilters)> {
        self.filters.iter()
    }

    /// Decides on an intent against the book at `now_ms`, without changing anything. Exits,
    /// reductions, protective orders and cancels are always allowed, kill switch or not.
    pub fn check(&self, book: &RiskBook, intent: &RiskIntent, now_ms: i64) -> Decision {
        self.evaluate(book, intent, now_ms, Rejector { with_message: true })
    }

    /// Like [`RiskGuard::check`] but refusals carry an empty message (no formatting): for hot
    /// loops that only need the reason code.
    pub fn check_code(&self, book: &RiskBook, intent: &RiskIntent, now_ms: i64) -> Decision {
        self.evaluate(
            book,
            intent,
            now_ms,
            Rejector {
                with_message: false,
            },
        )
    }

    /// The same decision as [`RiskGuard::check`], computed as the checks are defined: every
    /// figure in `Decimal` arithmetic. `check` and `admit` take an exact integer path to the
    /// same answers (see [`crate::exact`]) and come here only for what that path cannot reach
    /// and to word a refusal; tests compare the two.
    pub fn check_reference(&self, book: &RiskBook, intent: &RiskIntent, now_ms: i64) -> Decision {
        self.evaluate_reference(book, intent, now_ms, Rejector { with_message: true })
    }

    fn evaluate(&self, book: &RiskBook, intent: &RiskIntent, now_ms: i64, r: Rejector) -> Decision {
        self.evaluate_with(book, intent, now_ms, r, Known::default())
    }

    /// [`RiskGuard::evaluate`] given what the caller already knows (see [`Known`]).
    fn evaluate_with(
        &self,
        book: &RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        r: Rejector,
        known: Known<'_>,
    ) -> Decision {
        match self.evaluate_exact(book, intent, now_ms, known) {
            Some(None) => Decision::Allow,
            Some(Some(reason)) if !r.with_message => Decision::Reject(reason, String::new()),
            _ => self.evaluate_reference(book, intent, now_ms, r),
        }
    }

    /// Checks an intent and, when allowed, records it in flight: the one call that execution
    /// and the backtester make, so that concurrent intents cannot pass a limit together.
    pub fn admit(&self, book: &mut RiskBook, intent: &RiskIntent, now_ms: i64) -> Decision {
        self.admit_with(book, intent, now_ms, Rejector { with_message: true }, None)
    }

    /// [`RiskGuard::admit`] without refusal messages (see [`RiskGuard::check_code`]).
    pub fn admit_code(&self, book: &mut RiskBook, intent: &RiskIntent, now_ms: i64) -> Decision {
        self.admit_with(
            book,
            intent,
            now_ms,
            Rejector {
                with_message: false,
            },
            None,
        )
    }

    /// [`RiskGuard::admit_code`] given the intent symbol's exchange filters, which must be what
    /// [`RiskGuard::filters`] gives for it (a caller that checks many intents of a few symbols
    /// looks each up once, not at every intent). The same decisions and the same book.
    pub fn admit_code_with_filters(
        &self,
        book: &mut RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        filters: Option<&SymbolFilters>,
    ) -> Decision {
        debug_assert_eq!(filters, self.filters(&intent.symbol), "{}", intent.symbol);
        self.admit_with(
            book,
            intent,
            now_ms,
            Rejector {
                with_message: false,
            },
            Some(filters),
        )
    }

    /// [`RiskGuard::admit`] deciding by [`RiskGuard::check_reference`]: the same decisions and
    /// the same book, computed the slow way (for tests that compare the two).
    pub fn admit_reference(
        &self,
        book: &mut RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
    ) -> Decision {
        self.observe(book, now_ms);
        let d = self.check_reference(book, intent, now_ms);
        self.record_admitted(book, intent, &d);
        d
    }

    fn admit_with(
        &self,
        book: &mut RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        r: Rejector,
        filters: Option<Option<&SymbolFilters>>,
    ) -> Decision {
        let daily = self.observe_with(book, now_ms);
        let known = Known {
            daily,
            observed: true,
            filters,
        };
        let d = self.evaluate_with(book, intent, now_ms, r, known);
        self.record_admitted(book, intent, &d);
        d
    }

    /// Records an allowed opening intent in flight.
    fn record_admitted(&self, book: &mut RiskBook, intent: &RiskIntent, d: &Decision) {
        if d.is_allowed()
            && let IntentKind::Open {
                side,
                qty,
                reference_price,
                ..
            } = &intent.kind
        {
            book.on_accepted(
                &intent.intent_id,
                InFlight {
                    symbol: intent.symbol.clone(),
                    side: side.entry_side(),
                    remaining_qty: *qty,
                    reference_price: *reference_price,
                    reduce_only: false,
                },
            );
        }
    }

    /// Time-driven transitions: rolls the day at 00:00 UTC, starts the loss pause when the
    /// daily loss is breached (and no pause is running), raises the equity peak to the equity
    /// and trips the drawdown breaker when the equity has fallen `max_drawdown_pct` of the peak
    /// or more (`peak − equity ≥ max_drawdown_pct × peak`, compared exactly). Call it after
    /// fills, price updates and every change of `book.equity`.
    pub fn observe(&self, book: &mut RiskBook, now_ms: i64) {
        self.observe_with(book, now_ms);
    }

    /// [`RiskGuard::observe`], giving the daily PnL it computed exactly, if it did (it is
    /// still the book's daily PnL at `now_ms` when observe returns).
    fn observe_with(&self, book: &mut RiskBook, now_ms: i64) -> Option<Exact> {
        book.settle();
        book.roll_day(now_ms);
        let paused = book.paused_until_ms.is_some_and(|u| now_ms < u);
        let max_loss = self.limits.max_daily_loss;
        let mut daily = None;
        if !paused {
            daily = book.daily_pnl_exact(now_ms);
            let breached = match daily {
                Some(d) => d.le(Exact::of(max_loss).neg()),
                None => book.daily_pnl(now_ms) <= -max_loss,
            };
            if breached {
                book.paused_until_ms = Some(now_ms.saturating_add(self.limits.loss_pause_ms()));
            }
        }
        let Some(equity) = book.equity else {
            return daily;
        };
        let peak = match book.equity_peak {
            Some(p) if Exact::of(p).ge(Exact::of(equity)) => p,
            _ => {
                book.equity_peak = Some(equity);
                equity
            }
        };
        if book.drawdown_halt.is_none() {
            let reached = self.limit_reached(book);
            book.set_drawdown_memo(DrawdownMemo::new(
                peak,
                equity,
                self.limits.max_drawdown_pct,
                reached,
            ));
            if reached {
                book.drawdown_halt = Some(DrawdownHalt {
                    since_ms: now_ms,
                    peak,
                    equity,
                });
            }
        }
        daily
    }
}
