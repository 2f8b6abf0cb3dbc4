//! The guard's checks in exact integer arithmetic ([`Exact`]): the reference's decisions
//! without its `Decimal` operations, for every figure they can reach.

use qt_events::{PositionSide, RejectReason};
use rust_decimal::Decimal;

use super::{IntentKind, Known, RiskGuard, RiskIntent};
use crate::book::RiskBook;
use crate::exact::Exact;
use crate::filters::{SymbolFilters, is_multiple, is_positive};

impl RiskGuard {
    /// The checks of [`RiskGuard::evaluate_reference`], in its order, with every sum, product
    /// and comparison in exact integer arithmetic ([`Exact`]): `Some(None)` to allow,
    /// `Some(Some(reason))` to refuse, `None` when a figure is out of that arithmetic's reach
    /// (or `Decimal` would have rounded it), so the caller asks the reference instead.
    pub(super) fn evaluate_exact(
        &self,
        book: &RiskBook,
        intent: &RiskIntent,
        now_ms: i64,
        known: Known<'_>,
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
        let halted = if known.observed {
            self.entries_halted_observed(book)
        } else {
            self.entries_halted(book)
        };
        if let Some(reason) = halted {
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
        let daily = match known.daily {
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
        let filters = match known.filters {
            Some(f) => f,
            None => self.filters.get(sym),
        };
        if let Some(reason) = self.check_filters_exact(filters, qty, q, p, *limit_price)? {
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
        filters: Option<&SymbolFilters>,
        qty: Decimal,
        q: Exact,
        p: Exact,
        limit_price: Option<Decimal>,
    ) -> Option<Option<RejectReason>> {
        let Some(f) = filters else {
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
}
