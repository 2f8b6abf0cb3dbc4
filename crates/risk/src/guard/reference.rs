//! The guard's checks as they are defined, every figure in `Decimal` arithmetic, with the
//! wording of each refusal.

use qt_events::{PositionSide, RejectReason};
use rust_decimal::Decimal;

use super::{Decision, IntentKind, Rejector, RiskGuard, RiskIntent};
use crate::book::{RiskBook, fall};
use crate::filters::{FilterError, is_positive};

impl RiskGuard {
    pub(super) fn evaluate_reference(
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
}

/// A fraction as a percentage with two decimals, for messages.
fn pct(fraction: Decimal) -> Decimal {
    (fraction * Decimal::ONE_HUNDRED).round_dp(2)
}
