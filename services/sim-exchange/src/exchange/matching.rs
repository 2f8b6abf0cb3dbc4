//! How the market moves the book: a fill applied to its order and account (with the trade,
//! the income entries and the user events), a closed candle (resting orders fill,
//! conditional orders trigger — stops first, the conservative intra-candle rule — funding is
//! charged, accounts are liquidated, market events are queued), and a mark price set by a
//! test.

use qt_events::Decimal;
use qt_matching::{Bar, Fill, Liquidity, RestingOrder, TriggerKind};

use super::Exchange;
use super::book::{AlgoOrder, AlgoStatus, Income, OrdType, OrderStatus, Trade};
use super::events;
use super::sides::{PosSide, position_key};
use crate::error::ApiError;

fn bar_at(price: Decimal, volume: Decimal) -> Bar {
    Bar {
        open_time: 0,
        open: price,
        high: price,
        low: price,
        close: price,
        volume,
    }
}

impl Exchange {
    /// Apply one fill to an order and its account (the position of the order's side);
    /// emits ORDER_TRADE_UPDATE and ACCOUNT_UPDATE. Reduce-only orders and hedge-mode closes
    /// are capped so they never flip the position (the rest expires).
    pub(super) fn apply_fill(
        &mut self,
        key: &str,
        order_id: u64,
        fill: Fill,
        now: i64,
        exec: &'static str,
    ) {
        let Some(acc) = self.accounts.get(key) else {
            return;
        };
        let Some(order) = acc.orders.get(&order_id) else {
            return;
        };
        let symbol = order.symbol.clone();
        let (position_side, reduces) = (order.position_side, order.reduces());
        let mut qty = fill.qty.min(order.remaining());
        if reduces {
            let cap = acc
                .position(&symbol, position_side)
                .reduce_only_cap(order.side);
            qty = qty.min(cap);
        }
        if qty <= Decimal::ZERO {
            if reduces {
                self.finish_order(key, order_id, OrderStatus::Expired, now);
            }
            return;
        }
        let fill = Fill {
            qty,
            fee: self.rules.fill.fee(fill.price * qty, fill.liquidity),
            ..fill
        };
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        let pos = acc
            .positions
            .entry(position_key(&symbol, position_side))
            .or_default();
        let change = pos.apply(fill.side, fill.qty, fill.price);
        let balance_change = change.realized_pnl - fill.fee;
        acc.wallet += balance_change;
        acc.update_time = now;
        let Some(order) = acc.orders.get_mut(&order_id) else {
            return;
        };
        order.executed_qty += fill.qty;
        order.cum_quote += fill.price * fill.qty;
        order.update_time = now;
        order.status = if order.remaining() <= Decimal::ZERO {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let filled = order.status == OrderStatus::Filled;
        let algo_id = order.algo_id;
        let order = order.clone();
        if filled {
            acc.open_orders.remove(&order_id);
        }
        acc.trades.push(Trade {
            id: trade_id,
            order_id,
            symbol: symbol.clone(),
            side: fill.side,
            price: fill.price,
            qty: fill.qty,
            realized_pnl: change.realized_pnl,
            commission: fill.fee,
            maker: fill.liquidity == Liquidity::Maker,
            time: now,
            position_side,
        });
        for (income_type, income) in [
            ("REALIZED_PNL", change.realized_pnl),
            ("COMMISSION", -fill.fee),
        ] {
            if !income.is_zero() {
                acc.income.push(Income {
                    tran_id: self.next_tran_id,
                    symbol: symbol.clone(),
                    income_type: income_type.into(),
                    income,
                    time: now,
                    trade_id,
                });
                self.next_tran_id += 1;
            }
        }
        let ev = events::order_update(
            &order,
            exec,
            Some((&fill, trade_id, change.realized_pnl)),
            now,
        );
        self.push_user(key, "ORDER_TRADE_UPDATE", ev);
        let ev = self.account_update(key, &symbol, position_side, balance_change, now);
        self.push_user(key, "ACCOUNT_UPDATE", ev);
        if filled && let Some(a) = algo_id {
            self.set_algo_status(key, a, AlgoStatus::Finished, now);
        }
        // A reduce-only remainder with nothing left to reduce expires (it would flip otherwise).
        if !filled && reduces {
            let cap = self
                .accounts
                .get(key)
                .map(|a| a.position(&symbol, position_side))
                .unwrap_or_default()
                .reduce_only_cap(order.side);
            if cap.is_zero() {
                self.finish_order(key, order_id, OrderStatus::Expired, now);
            }
        }
    }

    /// Close one more candle on every symbol: fill resting orders, trigger conditional orders
    /// (stops before take-profits, the conservative intra-candle rule), charge the funding
    /// times the candle's close reached, liquidate, and queue market events. Returns how many
    /// symbols moved.
    pub fn step(&mut self, now: i64) -> usize {
        self.step_symbols(now, None)
    }

    /// [`Engine::step`] restricted to `only` (every symbol when `None`); symbols not named keep
    /// their candle, price and orders as they are.
    pub fn step_symbols(&mut self, now: i64, only: Option<&[String]>) -> usize {
        let symbols: Vec<String> = self
            .market
            .symbols
            .keys()
            .filter(|s| only.is_none_or(|o| o.contains(s)))
            .cloned()
            .collect();
        let mut moved = 0;
        for s in symbols {
            let Some(candle) = self.market.symbols.get_mut(&s).and_then(|m| m.advance()) else {
                continue;
            };
            moved += 1;
            let bar = Bar::from(&candle);
            self.on_bar(&s, &bar, now);
            self.settle_funding(&s, now);
            self.queue_market_events(&s, now);
        }
        self.liquidations(now);
        moved
    }

    fn on_bar(&mut self, symbol: &str, bar: &Bar, now: i64) {
        let step = self
            .market
            .get(symbol)
            .map_or(Decimal::ZERO, |m| m.spec.step_size);
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        for key in keys {
            // Resting orders placed before this candle.
            let ids: Vec<u64> = self
                .accounts
                .get(&key)
                .map_or_else(Vec::new, |acc| acc.open_orders_of(symbol).collect());
            for id in ids {
                let Some(o) = self.accounts.get(&key).and_then(|a| a.orders.get(&id)) else {
                    continue;
                };
                let resting = RestingOrder {
                    side: o.side,
                    limit_price: (o.typ == OrdType::Limit).then_some(o.price),
                    remaining: o.remaining(),
                };
                if let Ok(Some(f)) = self.rules.fill.on_bar(&resting, bar, step) {
                    self.apply_fill(&key, id, f, now, "TRADE");
                }
            }
            // Conditional orders: stops first, then trailing stops, then take-profits.
            let ranked = self.ranked_algos(&key, symbol, |a| match a.typ {
                OrdType::Stop | OrdType::StopMarket => Some(0),
                OrdType::TrailingStopMarket => Some(1),
                _ => Some(2),
            });
            self.fire_algos(&key, ranked, bar, now, |a| {
                if a.status != AlgoStatus::New {
                    return None;
                }
                match (a.typ.trigger_kind(), a.trailing.as_mut()) {
                    (Some(kind), _) => {
                        qt_matching::fires_in_bar(kind, a.side, a.trigger_price, bar)
                    }
                    (None, Some(t)) => t.observe_bar(bar),
                    (None, None) => None,
                }
            });
        }
    }

    /// The ids of `key`'s waiting algo orders of `symbol` that `rank` ranks, in rank order.
    fn ranked_algos(
        &self,
        key: &str,
        symbol: &str,
        rank: impl Fn(&AlgoOrder) -> Option<u8>,
    ) -> Vec<(u8, u64)> {
        let mut ids: Vec<(u8, u64)> = self.accounts.get(key).map_or_else(Vec::new, |acc| {
            acc.open_algos_of(symbol)
                .filter(|a| a.status == AlgoStatus::New)
                .filter_map(|a| rank(a).map(|r| (r, a.algo_id)))
                .collect()
        });
        ids.sort_unstable();
        ids
    }

    /// Trigger, in the order given, each of `key`'s algo orders for which `fires` (which may
    /// move a trailing stop) gives a price.
    fn fire_algos(
        &mut self,
        key: &str,
        ranked: Vec<(u8, u64)>,
        bar: &Bar,
        now: i64,
        fires: impl Fn(&mut AlgoOrder) -> Option<Decimal>,
    ) {
        for (_, id) in ranked {
            let Some(a) = self
                .accounts
                .get_mut(key)
                .and_then(|acc| acc.algos.get_mut(&id))
            else {
                continue;
            };
            if let Some(px) = fires(a) {
                self.trigger_algo(key, id, px, bar, now);
            }
        }
    }

    /// Set a symbol's mark price (test control): MARK_PRICE conditional orders are checked
    /// against it and fill at it (stops first); liquidations are checked.
    pub fn set_mark(&mut self, symbol: &str, price: Decimal, now: i64) -> Result<(), ApiError> {
        let m = self
            .market
            .symbols
            .get_mut(symbol)
            .ok_or_else(ApiError::invalid_symbol)?;
        if price <= Decimal::ZERO || price > super::MAX_PRICE {
            return Err(ApiError::invalid("price"));
        }
        m.mark_override = Some(price);
        let volume = m.current().map_or(Decimal::ZERO, |c| c.volume);
        let bar = bar_at(price, volume);
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        for key in keys {
            let ranked = self.ranked_algos(&key, symbol, |a| {
                (a.working_type == "MARK_PRICE")
                    .then(|| u8::from(a.typ.trigger_kind() != Some(TriggerKind::Stop)))
            });
            self.fire_algos(&key, ranked, &bar, now, |a| {
                match (a.typ.trigger_kind(), a.trailing.as_mut()) {
                    (Some(kind), _) => {
                        qt_matching::fires(kind, a.side, a.trigger_price, price).then_some(price)
                    }
                    (None, Some(t)) => t.observe(price),
                    (None, None) => None,
                }
            });
        }
        self.queue_market_events(symbol, now);
        self.liquidations(now);
        Ok(())
    }

    /// `ACCOUNT_UPDATE` (reason `ORDER`) of `key` after a fill on `symbol`'s `side`.
    fn account_update(
        &self,
        key: &str,
        symbol: &str,
        side: PosSide,
        balance_change: Decimal,
        now: i64,
    ) -> serde_json::Value {
        let acc = self.accounts.get(key);
        let wallet = acc.map_or(Decimal::ZERO, |a| a.wallet);
        let pos = acc.map(|a| a.position(symbol, side)).unwrap_or_default();
        let mark = self.mark(symbol);
        events::account_update(
            wallet,
            (symbol, side),
            &pos,
            mark,
            balance_change,
            "ORDER",
            now,
        )
    }
}
