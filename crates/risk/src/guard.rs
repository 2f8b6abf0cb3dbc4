//! [`RiskGuard`]: decides whether an intent may go to the exchange, with a reason code.

use std::collections::BTreeMap;

use qt_events::{
    ClosePosition, OpenPosition, OrderKind, PositionSide, ReducePosition, RejectReason,
};
use rust_decimal::Decimal;

use crate::book::{DrawdownHalt, DrawdownLevel, DrawdownMemo, InFlight, RiskBook, fall};
use crate::exact::Exact;
use crate::filters::{FilterError, SymbolFilters, is_multiple, is_positive};
use crate::limits::RiskLimits;

/// What an intent asks for, as far as risk is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum IntentKind {
    /// Open or add to a position.
    Open {
        side: PositionSide,
        qty: Decimal,
        /// Price the intent was sized with; its notional is counted at it.
        reference_price: Decimal,
        /// Limit price for a `LIMIT` entry.
        limit_price: Option<Decimal>,
        leverage: u32,
    },
    /// Reduce a position (reduce-only).
    Reduce { qty: Decimal },
    /// Close a whole position.
    Close,
    /// Place or replace protective orders (stop, take-profits, trailing).
    Protect,
    /// Cancel an order.
    Cancel,
}

/// An intent as the guard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskIntent {
    pub intent_id: String,
    pub symbol: String,
    pub kind: IntentKind,
}

impl RiskIntent {
    /// True for intents that can only lower exposure; they pass even with the kill switch on.
    pub fn is_exit(&self) -> bool {
        !matches!(self.kind, IntentKind::Open { .. })
    }
}

impl From<&OpenPosition> for RiskIntent {
    fn from(o: &OpenPosition) -> Self {
        Self {
            intent_id: o.intent_id.clone(),
            symbol: o.symbol.clone(),
            kind: IntentKind::Open {
                side: o.side,
                qty: o.quantity,
                reference_price: o.reference_price,
                limit_price: if o.order_type == OrderKind::Limit {
                    o.limit_price
                } else {
                    None
                },
                leverage: o.leverage,
            },
        }
    }
}

impl From<&ReducePosition> for RiskIntent {
    fn from(r: &ReducePosition) -> Self {
        Self {
            intent_id: r.intent_id.clone(),
            symbol: r.symbol.clone(),
            kind: IntentKind::Reduce { qty: r.quantity },
        }
    }
}

impl From<&ClosePosition> for RiskIntent {
    fn from(c: &ClosePosition) -> Self {
        Self {
            intent_id: c.intent_id.clone(),
            symbol: c.symbol.clone(),
            kind: IntentKind::Close,
        }
    }
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// Refused, with the wire reason code and a human-readable message.
    Reject(RejectReason, String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The reason code of a refusal.
    pub fn reason(&self) -> Option<RejectReason> {
        match self {
            Decision::Allow => None,
            Decision::Reject(r, _) => Some(*r),
        }
    }
}

/// Builds refusals; the message is only formatted when someone will read it (the backtester
/// checks millions of intents and only counts reason codes).
#[derive(Clone, Copy)]
struct Rejector {
    with_message: bool,
}

impl Rejector {
    fn reject(self, reason: RejectReason, message: &dyn Fn() -> String) -> Decision {
        Decision::Reject(
            reason,
            if self.with_message {
                message()
            } else {
                String::new()
            },
        )
    }
}

/// The wire code of a reason (`MAX_GROSS_EXPOSURE`, …), without going through serde.
pub fn reason_code(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::KillSwitch => "KILL_SWITCH",
        RejectReason::CloseOnly => "CLOSE_ONLY",
        RejectReason::MaxNotionalPerTrade => "MAX_NOTIONAL_PER_TRADE",
        RejectReason::MaxDailyLoss => "MAX_DAILY_LOSS",
        RejectReason::DailyLossPause => "DAILY_LOSS_PAUSE",
        RejectReason::MaxSymbolNotional => "MAX_SYMBOL_NOTIONAL",
        RejectReason::MaxGrossExposure => "MAX_GROSS_EXPOSURE",
        RejectReason::MaxConcurrentPositions => "MAX_CONCURRENT_POSITIONS",
        RejectReason::SideImbalance => "SIDE_IMBALANCE",
        RejectReason::LeverageCap => "LEVERAGE_CAP",
        RejectReason::Cooldown => "COOLDOWN",
        RejectReason::ExchangeFilter => "EXCHANGE_FILTER",
        RejectReason::MinNotional => "MIN_NOTIONAL",
        RejectReason::Precision => "PRECISION",
        RejectReason::MarginInsufficient => "MARGIN_INSUFFICIENT",
        RejectReason::ReduceOnlyRejected => "REDUCE_ONLY_REJECTED",
        RejectReason::WouldImmediatelyTrigger => "WOULD_IMMEDIATELY_TRIGGER",
        RejectReason::NoPosition => "NO_POSITION",
        RejectReason::DuplicateIntent => "DUPLICATE_INTENT",
        RejectReason::InvalidIntent => "INVALID_INTENT",
        RejectReason::ExchangeError => "EXCHANGE_ERROR",
        RejectReason::Superseded => "SUPERSEDED",
        RejectReason::RateLimited => "RATE_LIMITED",
        RejectReason::DrawdownBreaker => "DRAWDOWN_BREAKER",
        RejectReason::Other => "OTHER",
    }
}

/// The drawdown reached a new level (see [`RiskGuard::drawdown_crossing`]): what an alert says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawdownCrossing {
    /// The level reached: `Half` (50% of the limit), `Near` (80%) or `Tripped`.
    pub level: DrawdownLevel,
    /// The fall from the peak as a fraction of it (0.05 is 5%).
    pub drawdown: Decimal,
    /// The limit, `RiskLimits::max_drawdown_pct`.
    pub limit: Decimal,
    /// The equity peak it is measured from.
    pub peak: Decimal,
    /// The equity now.
    pub equity: Decimal,
    /// The trip, when the level is `Tripped`.
    pub halt: Option<DrawdownHalt>,
}

/// The risk rules over a [`RiskBook`]. Pure: the same guard runs in execution and the backtester.
#[derive(Debug, Clone, Default)]
pub struct RiskGuard {
    pub limits: RiskLimits,
    /// Exchange filters by symbol.
    pub filters: BTreeMap<String, SymbolFilters>,
}

impl RiskGuard {
    pub fn new(limits: RiskLimits) -> Self {
        Self {
            limits,
            filters: BTreeMap::new(),
        }
    }

    /// Adds a symbol's exchange filters.
    pub fn with_filters(mut self, symbol: impl Into<String>, filters: SymbolFilters) -> Self {
        self.filters.insert(symbol.into(), filters);
        self
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
        self.evaluate_with(book, intent, now_ms, r, None)
    }

    /// [`RiskGuard::evaluate`] given the book's daily PnL at `now_ms` when the caller has just
    /// computed it (exactly), as `observe` has.
    fn evaluate_with(
        &self,
        book: &RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        r: Rejector,
        daily: Option<Exact>,
    ) -> Decision {
        match self.evaluate_exact(book, intent, now_ms, daily) {
            Some(None) => Decision::Allow,
            Some(Some(reason)) if !r.with_message => Decision::Reject(reason, String::new()),
            _ => self.evaluate_reference(book, intent, now_ms, r),
        }
    }

    /// The checks of [`RiskGuard::evaluate_reference`], in its order, with every sum, product
    /// and comparison in exact integer arithmetic ([`Exact`]): `Some(None)` to allow,
    /// `Some(Some(reason))` to refuse, `None` when a figure is out of that arithmetic's reach
    /// (or `Decimal` would have rounded it), so the caller asks the reference instead.
    fn evaluate_exact(
        &self,
        book: &RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        daily: Option<Exact>,
    ) -> Option<Option<RejectReason>> {
        let IntentKind::Open {
            side,
            qty,
            reference_price,
            limit_price,
            leverage,
        } = &intent.kind
        else {
            return Some(None);
        };
        let (side, qty, price, leverage) = (*side, *qty, *reference_price, *leverage);
        let l = &self.limits;
        let sym = intent.symbol.as_str();
        let refuse = |reason| Some(Some(reason));
        if !is_positive(qty) || !is_positive(price) || leverage == 0 {
            return refuse(RejectReason::InvalidIntent);
        }
        if let Some(reason) = self.entries_halted(book) {
            return refuse(reason);
        }
        if leverage > l.max_leverage {
            return refuse(RejectReason::LeverageCap);
        }
        if let Some(until) = book.paused_until_ms
            && now_ms < until
        {
            return refuse(RejectReason::DailyLossPause);
        }
        let daily = match daily {
            Some(d) => d,
            None => book.daily_pnl_exact(now_ms)?,
        };
        if daily.le(Exact::of(l.max_daily_loss).neg()) {
            return refuse(RejectReason::MaxDailyLoss);
        }
        if book.cooling(sym, now_ms, l.cooldown_ms()) {
            return refuse(RejectReason::Cooldown);
        }
        let position = book.position_at_mark(sym);
        if let Some((held, _)) = position
            && held != side
        {
            return refuse(RejectReason::InvalidIntent);
        }
        let (q, p) = (Exact::of(qty), Exact::of(price));
        if let Some(reason) = self.check_filters_exact(sym, qty, q, p, *limit_price)? {
            return refuse(reason);
        }
        let notional = q.mul(p)?;
        if notional.gt(Exact::of(l.max_notional_per_trade)) {
            return refuse(RejectReason::MaxNotionalPerTrade);
        }
        let held = position.map_or(Exact::ZERO, |(_, n)| Exact::of(n));
        let sym_after = held
            .add(book.in_flight_notional_exact(sym)?)?
            .add(notional)?;
        if sym_after.gt(Exact::of(l.max_symbol_notional)) {
            return refuse(RejectReason::MaxSymbolNotional);
        }
        let (active, counted) = book.active_count_with(sym, position.is_some());
        if !counted && active >= l.max_concurrent_positions {
            return refuse(RejectReason::MaxConcurrentPositions);
        }
        let (long, short) = book.exposure_exact()?;
        let gross_after = long.add(short)?.add(notional)?;
        if gross_after.gt(Exact::of(l.max_gross_exposure)) {
            return refuse(RejectReason::MaxGrossExposure);
        }
        let side_after = notional.add(match side {
            PositionSide::Long => long,
            PositionSide::Short => short,
        })?;
        let max_side = Exact::of(l.max_side_fraction).mul(Exact::of(l.max_gross_exposure))?;
        if side_after.gt(max_side) {
            return refuse(RejectReason::SideImbalance);
        }
        if let Some(equity) = book.equity
            && (!is_positive(equity)
                || gross_after.gt(Exact::of(equity).mul(Exact::int(u64::from(l.max_leverage)))?))
        {
            return refuse(RejectReason::LeverageCap);
        }
        Some(None)
    }

    /// [`RiskGuard::check_filters`] in exact arithmetic: `Some(None)` when the order passes,
    /// `Some(Some(reason))` when it fails, `None` when the reference must answer.
    fn check_filters_exact(
        &self,
        sym: &str,
        qty: Decimal,
        q: Exact,
        p: Exact,
        limit_price: Option<Decimal>,
    ) -> Option<Option<RejectReason>> {
        let Some(f) = self.filters.get(sym) else {
            return Some(
                self.limits
                    .require_filters
                    .then_some(RejectReason::ExchangeFilter),
            );
        };
        // `SymbolFilters::check_qty`, `check_price` and `check_notional`, in that order.
        if !is_multiple(qty, f.step_size) {
            return Some(Some(RejectReason::Precision));
        }
        if q.lt(Exact::of(f.min_qty)) || !q.is_positive() {
            return Some(Some(RejectReason::ExchangeFilter));
        }
        if is_positive(f.max_qty) && q.gt(Exact::of(f.max_qty)) {
            return Some(Some(RejectReason::ExchangeFilter));
        }
        let at = match limit_price {
            Some(lp) => {
                if !is_multiple(lp, f.tick_size) {
                    return Some(Some(RejectReason::Precision));
                }
                Exact::of(lp)
            }
            None => p,
        };
        if is_positive(f.min_notional) && q.mul(at)?.lt(Exact::of(f.min_notional)) {
            return Some(Some(RejectReason::MinNotional));
        }
        Some(None)
    }

    fn evaluate_reference(
        &self,
        book: &RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        r: Rejector,
    ) -> Decision {
        let rej = |reason, msg: &dyn Fn() -> String| r.reject(reason, msg);
        let IntentKind::Open {
            side,
            qty,
            reference_price,
            limit_price,
            leverage,
        } = &intent.kind
        else {
            return Decision::Allow;
        };
        let (side, qty, price, leverage) = (*side, *qty, *reference_price, *leverage);
        let l = &self.limits;
        let sym = intent.symbol.as_str();
        if !is_positive(qty) || !is_positive(price) || leverage == 0 {
            return rej(RejectReason::InvalidIntent, &|| {
                format!(
                    "quantity {qty}, reference price {price} and leverage {leverage} must be positive"
                )
            });
        }
        if let Some(reason) = self.entries_halted(book) {
            return rej(reason, &|| match (reason, book.drawdown_halt) {
                (RejectReason::KillSwitch, _) => "kill switch is on: exits only".into(),
                (RejectReason::CloseOnly, _) => "close-only mode: exits only".into(),
                (_, Some(h)) => format!(
                    "drawdown breaker tripped at {} ms: equity {} fell {}% from its peak {} \
                     (limit {}%); entries stop until an operator resumes (qtctl resume)",
                    h.since_ms,
                    h.equity,
                    pct(fall(h.peak, h.equity)),
                    h.peak,
                    pct(l.max_drawdown_pct)
                ),
                (_, None) => format!(
                    "drawdown {}% from the equity peak has reached the limit {}%; entries stop \
                     until an operator resumes (qtctl resume)",
                    book.drawdown().map_or(Decimal::ZERO, pct),
                    pct(l.max_drawdown_pct)
                ),
            });
        }
        if leverage > l.max_leverage {
            return rej(RejectReason::LeverageCap, &|| {
                format!("leverage {leverage}x is above the cap {}x", l.max_leverage)
            });
        }
        if let Some(until) = book.paused_until_ms
            && now_ms < until
        {
            return rej(RejectReason::DailyLossPause, &|| {
                format!("paused after a daily-loss breach until {until} ms")
            });
        }
        let daily = book.daily_pnl(now_ms);
        if daily <= -l.max_daily_loss {
            return rej(RejectReason::MaxDailyLoss, &|| {
                format!(
                    "daily PnL {daily} has reached the loss limit -{}",
                    l.max_daily_loss
                )
            });
        }
        if let Some(closed) = book.last_closed_ms().get(sym) {
            let until = closed.saturating_add(l.cooldown_ms());
            if now_ms < until {
                return rej(RejectReason::Cooldown, &|| {
                    format!("{sym} is cooling down until {until} ms")
                });
            }
        }
        let position = book.position_at_mark(sym);
        if let Some((held, _)) = position
            && held != side
        {
            return rej(RejectReason::InvalidIntent, &|| {
                format!("{sym} holds a {held:?} position: close it before opening {side:?}")
            });
        }
        if let Some(d) = self.check_filters(sym, qty, price, *limit_price, r) {
            return d;
        }
        // An absurd size (a malformed intent) overflows 28 digits: refused, never a panic.
        let Some(notional) = qty.checked_mul(price) else {
            return rej(RejectReason::MaxNotionalPerTrade, &|| {
                format!("notional {qty} x {price} is beyond any limit")
            });
        };
        if notional > l.max_notional_per_trade {
            return rej(RejectReason::MaxNotionalPerTrade, &|| {
                format!(
                    "notional {notional} is above the per-trade limit {}",
                    l.max_notional_per_trade
                )
            });
        }
        let sym_after = book.symbol_notional_with(sym, position) + notional;
        if sym_after > l.max_symbol_notional {
            return rej(RejectReason::MaxSymbolNotional, &|| {
                format!(
                    "{sym} notional would be {sym_after}, above {}",
                    l.max_symbol_notional
                )
            });
        }
        let (active, counted) = book.active_count_with(sym, position.is_some());
        if !counted && active >= l.max_concurrent_positions {
            return rej(RejectReason::MaxConcurrentPositions, &|| {
                format!(
                    "{active} positions and orders in flight already, the maximum is {}",
                    l.max_concurrent_positions
                )
            });
        }
        let exp = book.exposure();
        let gross_after = exp.gross() + notional;
        if gross_after > l.max_gross_exposure {
            return rej(RejectReason::MaxGrossExposure, &|| {
                format!(
                    "gross exposure would be {gross_after}, above {}",
                    l.max_gross_exposure
                )
            });
        }
        let side_after = notional
            + match side {
                PositionSide::Long => exp.long,
                PositionSide::Short => exp.short,
            };
        if side_after > l.max_side_notional() {
            return rej(RejectReason::SideImbalance, &|| {
                format!(
                    "{side:?} exposure would be {side_after}, above {} of the gross budget ({})",
                    l.max_side_fraction,
                    l.max_side_notional()
                )
            });
        }
        if let Some(equity) = book.equity
            && (!is_positive(equity) || gross_after > equity * Decimal::from(l.max_leverage))
        {
            return rej(RejectReason::LeverageCap, &|| {
                format!(
                    "gross exposure {gross_after} would exceed {}x the equity {equity}",
                    l.max_leverage
                )
            });
        }
        Decision::Allow
    }

    fn check_filters(
        &self,
        sym: &str,
        qty: Decimal,
        price: Decimal,
        limit_price: Option<Decimal>,
        r: Rejector,
    ) -> Option<Decision> {
        let rej = |reason, msg: &dyn Fn() -> String| r.reject(reason, msg);
        let Some(f) = self.filters.get(sym) else {
            return self.limits.require_filters.then(|| {
                rej(RejectReason::ExchangeFilter, &|| {
                    format!("no exchange filters known for {sym}")
                })
            });
        };
        let checked = f
            .check_qty(qty)
            .and_then(|()| limit_price.map_or(Ok(()), |p| f.check_price(p)))
            .and_then(|()| f.check_notional(qty, limit_price.unwrap_or(price)));
        match checked {
            Ok(()) => None,
            Err(e) => {
                let reason = match e {
                    FilterError::QtyPrecision { .. } | FilterError::PricePrecision { .. } => {
                        RejectReason::Precision
                    }
                    FilterError::BelowMinNotional { .. } => RejectReason::MinNotional,
                    FilterError::BelowMinQty { .. } | FilterError::AboveMaxQty { .. } => {
                        RejectReason::ExchangeFilter
                    }
                };
                Some(rej(reason, &|| e.to_string()))
            }
        }
    }

    /// Checks an intent and, when allowed, records it in flight: the one call that execution
    /// and the backtester make, so that concurrent intents cannot pass a limit together.
    pub fn admit(&self, book: &mut RiskBook, intent: &RiskIntent, now_ms: i64) -> Decision {
        self.admit_with(book, intent, now_ms, Rejector { with_message: true })
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
    ) -> Decision {
        let daily = self.observe_with(book, now_ms);
        let d = self.evaluate_with(book, intent, now_ms, r, daily);
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
            book.set_drawdown_memo(DrawdownMemo {
                peak,
                equity,
                limit: self.limits.max_drawdown_pct,
                reached,
            });
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

    /// Why no entry can pass now, whatever its symbol, side or size: the kill switch,
    /// close-only mode or the drawdown breaker (tripped, or past its limit before an `observe`
    /// recorded the trip), tested in this order, as every entry is. A caller may ask before it
    /// sizes an entry.
    pub fn entries_halted(&self, book: &RiskBook) -> Option<RejectReason> {
        if book.kill_switch {
            Some(RejectReason::KillSwitch)
        } else if book.close_only {
            Some(RejectReason::CloseOnly)
        } else if book.drawdown_halt.is_some() || self.limit_reached(book) {
            Some(RejectReason::DrawdownBreaker)
        } else {
            None
        }
    }

    /// Whether the equity has fallen the drawdown limit from its peak: the answer [`observe`]
    /// kept when the peak, the equity and the limit are still the ones it was computed for (to
    /// the bit), else computed.
    ///
    /// [`observe`]: RiskGuard::observe
    fn limit_reached(&self, book: &RiskBook) -> bool {
        if let (Some(peak), Some(equity), Some(memo)) =
            (book.equity_peak, book.equity, book.drawdown_memo())
            && let Some(reached) = memo.answers(peak, equity, self.limits.max_drawdown_pct)
        {
            return reached;
        }
        self.drawdown_at_least(book, Decimal::ONE)
    }

    /// Whether the equity has fallen at least `share` of the drawdown limit from its peak
    /// (`share` 1: the limit itself). False when the equity or a positive peak is unknown.
    fn drawdown_at_least(&self, book: &RiskBook, share: Decimal) -> bool {
        match (book.equity_peak, book.equity) {
            (Some(peak), Some(equity)) if peak > Decimal::ZERO => {
                let threshold = (share * self.limits.max_drawdown_pct).checked_mul(peak);
                match (peak.checked_sub(equity), threshold) {
                    (Some(fall), Some(threshold)) => fall >= threshold,
                    // Out of Decimal's range: only an absurd fall (or peak) gets here.
                    _ => equity < peak,
                }
            }
            _ => false,
        }
    }

    /// The drawdown level of the book now: `Tripped` while the breaker is tripped (whatever
    /// the equity does meanwhile), else from the fall of the equity from its peak.
    pub fn drawdown_level(&self, book: &RiskBook) -> DrawdownLevel {
        if book.drawdown_halt.is_some() || self.limit_reached(book) {
            DrawdownLevel::Tripped
        } else if self.drawdown_at_least(book, Decimal::new(8, 1)) {
            DrawdownLevel::Near
        } else if self.drawdown_at_least(book, Decimal::new(5, 1)) {
            DrawdownLevel::Half
        } else {
            DrawdownLevel::Clear
        }
    }

    /// What a drawdown alert should say, once per crossing: `Some` when the drawdown reached a
    /// level above the one last reported (only the highest when it passed several at once),
    /// which becomes the reported one. When the drawdown falls back below the reported level,
    /// that level is re-armed (without an alert), so reaching it again reports it again. Call
    /// it after [`RiskGuard::observe`]; it changes only `book.drawdown_alerted`, so a caller
    /// that publishes nothing need not call it. Pure: the caller raises the alert.
    pub fn drawdown_crossing(&self, book: &mut RiskBook) -> Option<DrawdownCrossing> {
        let level = self.drawdown_level(book);
        let reported = book.drawdown_alerted;
        book.drawdown_alerted = level;
        if level <= reported {
            return None;
        }
        let (peak, equity) = match book.drawdown_halt {
            Some(h) if level == DrawdownLevel::Tripped => (h.peak, h.equity),
            _ => (
                book.equity_peak.unwrap_or_default(),
                book.equity.unwrap_or_default(),
            ),
        };
        Some(DrawdownCrossing {
            level,
            drawdown: fall(peak, equity),
            limit: self.limits.max_drawdown_pct,
            peak,
            equity,
            halt: book.drawdown_halt,
        })
    }
}

/// A fraction as a percentage with two decimals, for messages.
fn pct(fraction: Decimal) -> Decimal {
    (fraction * Decimal::ONE_HUNDRED).round_dp(2)
}
