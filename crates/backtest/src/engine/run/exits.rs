//! A position's life after its entry is admitted: the entry's fill, the stop and take-profit
//! legs, trailing and the time stop, reduce-only exits and the closed trade.

use qt_exits::{EntrySpec, ExitAction, ExitPlan, StopMove};
use qt_matching::{Bar, ExitHit, Fill, RestingOrder, first_exit};
use qt_risk::BookFill;
use rust_decimal::Decimal;

use super::{OpenTrade, PendingEntry, Run, SymState, exit_side};
use crate::BacktestError;
use crate::engine::outcome::{ExitReason, Trade};

impl Run<'_> {
    /// A market entry works for one candle: it fills at the open (plus slippage) up to the
    /// volume cap; what is left is cancelled and the exit legs are sized to what filled.
    pub(super) fn fill_entry(
        &mut self,
        s: &mut SymState<'_>,
        e: PendingEntry,
        bar: &Bar,
        now: i64,
    ) -> Result<(), BacktestError> {
        let order = RestingOrder {
            side: e.side.entry_side(),
            limit_price: None,
            remaining: e.qty,
        };
        let fill = self
            .cfg
            .fill
            .on_bar(&order, bar, s.filters.step_size)
            .ok()
            .flatten();
        if let Some(f) = fill.filter(|f| f.qty > Decimal::ZERO) {
            self.book.on_fill(
                &BookFill {
                    intent_id: Some(e.intent_id.clone()),
                    symbol: s.symbol.clone(),
                    side: f.side,
                    qty: f.qty,
                    price: f.price,
                    fee: f.fee,
                },
                now,
            );
            self.realized -= f.fee;
            let spec = EntrySpec {
                side: e.side,
                price: f.price,
                qty: e.qty,
                opened_ms: bar.open_time,
                filters: s.filters,
            };
            let exits = e.exits.as_deref().unwrap_or(&self.cfg.exits);
            let mut plan = ExitPlan::new(spec, e.volatility, &s.profile, exits)
                .map_err(|err| BacktestError::Config(err.to_string()))?;
            plan.on_entry_fill(f.qty);
            s.open = Some(OpenTrade {
                initial_stop: plan.stop_price,
                plan,
                entry_time: bar.open_time,
                gross: Decimal::ZERO,
                fees: f.fee,
                funding: Decimal::ZERO,
                exit_value: Decimal::ZERO,
                exit_qty: Decimal::ZERO,
                stop_kind: None,
            });
        }
        self.book.on_ended(&e.intent_id);
        Ok(())
    }

    /// Stop and take-profit legs against the candle, the stop first whenever both are inside it.
    pub(super) fn check_exits(&mut self, s: &mut SymState<'_>, bar: &Bar, now: i64) {
        loop {
            let Some(t) = &s.open else { return };
            let side = t.plan.side;
            // the leg's index, not its name: no allocation unless it is hit
            let next = t
                .plan
                .legs
                .iter()
                .position(|l| !l.is_done())
                .map(|i| (i, t.plan.legs[i].price, t.plan.legs[i].open_qty()));
            let hit = first_exit(
                side,
                Some(t.plan.stop_price),
                next.as_ref().map(|n| n.1),
                bar,
            );
            match (hit, next) {
                (ExitHit::Stop(p), _) => {
                    let reason = match t.stop_kind {
                        None => ExitReason::Stop,
                        Some(StopMove::BreakEven) => ExitReason::BreakEven,
                        Some(StopMove::Trailing) => ExitReason::Trailing,
                    };
                    let qty = t.plan.open_qty;
                    self.market_exit(s, qty, Some(p), bar, now, reason);
                    return;
                }
                (ExitHit::Target(p), Some((leg_idx, _, leg_qty))) => {
                    let leg = t.plan.legs[leg_idx].name.clone();
                    let wanted = leg_qty.min(t.plan.open_qty);
                    let order = RestingOrder {
                        side: exit_side(side),
                        limit_price: None,
                        remaining: wanted,
                    };
                    let fill = self
                        .cfg
                        .fill
                        .taker_at(&order, p, bar, s.filters.step_size)
                        .ok()
                        .flatten();
                    let Some(f) = fill.filter(|f| f.qty > Decimal::ZERO) else {
                        return;
                    };
                    let partial = f.qty < wanted;
                    self.apply_exit(s, &f, now, Some(&leg), ExitReason::TakeProfit);
                    if partial {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// Trailing, break-even bookkeeping and the time stop after the candle has been checked, so
    /// that a stop moved by this candle only counts from the next one.
    pub(super) fn manage(&mut self, s: &mut SymState<'_>, bar: &Bar, now: i64) {
        let Some(t) = &mut s.open else { return };
        for a in t.plan.on_range(bar.high, bar.low, now) {
            match a {
                ExitAction::MoveStop { why, .. } => t.stop_kind = Some(why),
                ExitAction::TimeStop { qty } => {
                    self.market_exit(s, qty, Some(bar.close), bar, now, ExitReason::TimeStop);
                    return;
                }
                ExitAction::ResizeLegs => {}
            }
        }
    }

    /// A reduce-only taker exit at `price` (or the open for a working remainder); whatever the
    /// volume cap leaves stays working into the next candle.
    pub(super) fn market_exit(
        &mut self,
        s: &mut SymState<'_>,
        qty: Decimal,
        price: Option<Decimal>,
        bar: &Bar,
        now: i64,
        reason: ExitReason,
    ) {
        let Some(t) = &s.open else { return };
        let qty = qty.min(t.plan.open_qty);
        if qty <= Decimal::ZERO {
            return;
        }
        let order = RestingOrder {
            side: exit_side(t.plan.side),
            limit_price: None,
            remaining: qty,
        };
        let step = s.filters.step_size;
        let fill = match price {
            Some(p) => self.cfg.fill.taker_at(&order, p, bar, step),
            None => self.cfg.fill.on_bar(&order, bar, step),
        };
        let filled = match fill.ok().flatten().filter(|f| f.qty > Decimal::ZERO) {
            Some(f) => {
                let q = f.qty;
                self.apply_exit(s, &f, now, None, reason);
                q
            }
            None => Decimal::ZERO,
        };
        if filled < qty && s.open.is_some() {
            s.pending_exit = Some((qty - filled, reason));
        }
    }

    fn apply_exit(
        &mut self,
        s: &mut SymState<'_>,
        f: &Fill,
        now: i64,
        leg: Option<&str>,
        reason: ExitReason,
    ) {
        let Some(t) = &mut s.open else { return };
        let out = self.book.on_fill(
            &BookFill {
                intent_id: None,
                symbol: s.symbol.clone(),
                side: f.side,
                qty: f.qty,
                price: f.price,
                fee: f.fee,
            },
            now,
        );
        self.realized += out.realized_pnl - f.fee;
        t.gross += out.realized_pnl;
        t.fees += f.fee;
        t.exit_value += f.price * f.qty;
        t.exit_qty += f.qty;
        match leg {
            Some(name) => {
                for a in t.plan.on_leg_hit(name, f.qty).unwrap_or_default() {
                    if let ExitAction::MoveStop { why, .. } = a {
                        t.stop_kind = Some(why);
                    }
                }
            }
            None => t.plan.on_reduced(f.qty),
        }
        if t.plan.is_closed() {
            self.finish(s, now, reason);
        }
    }

    fn finish(&mut self, s: &mut SymState<'_>, now: i64, reason: ExitReason) {
        let Some(t) = s.open.take() else { return };
        s.pending_exit = None;
        if self.cfg.learn_profiles {
            s.profile.learn(&t.plan.outcome(), &self.cfg.exits);
            s.stop_factors = None;
        }
        let exit_price = if t.exit_qty > Decimal::ZERO {
            t.exit_value / t.exit_qty
        } else {
            Decimal::ZERO
        };
        self.trades.push(Trade {
            symbol: s.symbol.clone(),
            side: t.plan.side,
            entry_time: t.entry_time,
            exit_time: now,
            entry_price: t.plan.entry_price,
            exit_price: exit_price.round_dp(8),
            qty: t.plan.qty,
            gross_pnl: t.gross,
            fees: t.fees,
            funding: t.funding,
            net_pnl: t.gross - t.fees - t.funding,
            legs_hit: t.plan.outcome().legs_hit,
            exit_reason: reason,
            stop_price: t.initial_stop,
            targets: t.plan.legs.iter().map(|l| l.price).collect(),
        });
    }

    /// Positions still open when the data ends are closed at the last close, with a taker fee.
    pub(super) fn close_at_end(&mut self, s: &mut SymState<'_>) {
        let (Some(t), Some((bar, now))) = (&s.open, s.last_bar) else {
            return;
        };
        let qty = t.plan.open_qty;
        let price = bar.close;
        let fee = self
            .cfg
            .fill
            .fee(price * qty, qt_matching::Liquidity::Taker);
        let f = Fill {
            side: exit_side(t.plan.side),
            price,
            qty,
            fee,
            liquidity: qt_matching::Liquidity::Taker,
        };
        self.apply_exit(s, &f, now, None, ExitReason::EndOfData);
    }
}
