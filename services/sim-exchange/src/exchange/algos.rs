//! Conditional (algo) orders: STOP(_MARKET), TAKE_PROFIT(_MARKET), TRAILING_STOP_MARKET,
//! on the last price or the mark. Placing one (the checks that depend on the account and the
//! price now), its status changes, finding and cancelling, and triggering: a fired STOP /
//! TAKE_PROFIT becomes a LIMIT order arriving at the trigger price, the others a MARKET order
//! filled at it.

use qt_events::{Decimal, Side};
use qt_matching::{Bar, RestingOrder, TimeInForce, TrailingStop};

use super::book::{AlgoOrder, AlgoStatus, OrdType, Order, OrderStatus};
use super::events;
use super::orders::min_notional_error;
use super::sides::{PosSide, order_side, side_mismatch};
use super::{Exchange, MAX_OPEN_ALGOS};
use crate::error::ApiError;
use crate::params::check_client_id;

/// A trailing stop's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailing {
    /// Percent, 0.1 to 10.
    pub callback_rate: Decimal,
    pub activate_price: Option<Decimal>,
}

/// A conditional order whose parameters passed the symbol's filters.
#[derive(Debug, Clone, PartialEq)]
pub struct AlgoTicket {
    pub symbol: String,
    pub side: Side,
    /// One of the conditional types.
    pub typ: OrdType,
    /// `CONTRACT_PRICE` or `MARK_PRICE`.
    pub working_type: &'static str,
    pub close_position: bool,
    pub reduce_only: bool,
    pub price_protect: bool,
    /// 0 with `close_position`.
    pub quantity: Decimal,
    /// The limit price of STOP / TAKE_PROFIT, else 0.
    pub price: Decimal,
    pub tif: TimeInForce,
    /// `triggerPrice`, for every type but the trailing stop.
    pub trigger_price: Option<Decimal>,
    pub trailing: Option<Trailing>,
    /// `positionSide` as sent (checked against the account's mode when placed).
    pub position_side: Option<PosSide>,
    /// `clientAlgoId` as sent: Binance checks it only after the trigger price, so it is
    /// checked here, in that order.
    pub client_id: Option<String>,
}

/// How a request names an algo order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgoRef {
    /// `algoId` as sent (a negative one names no order).
    Id(i64),
    /// `clientAlgoId`: the latest with it.
    Client(String),
}

impl Exchange {
    /// Place a conditional order for account `key`: refuse it on a position side the
    /// account's mode does not have (and, in hedge mode, a `closePosition` that would open:
    /// BUY LONG, SELL SHORT), when it would trigger at once, on its client id, a duplicate
    /// open client id, the open-algo limit, reduce-only with nothing to reduce or min
    /// notional. Returns its id.
    ///
    /// # Errors
    /// Binance's code for the refusal.
    pub fn place_algo(&mut self, key: &str, t: &AlgoTicket, now: i64) -> Result<u64, ApiError> {
        let dual = self.account(key)?.dual_side_position;
        let position_side = order_side(dual, t.position_side, t.reduce_only)?;
        if t.close_position && dual && !position_side.closes(t.side) {
            return Err(side_mismatch());
        }
        let symbol = &t.symbol;
        let min_notional = self
            .market
            .get(symbol)
            .ok_or_else(ApiError::invalid_symbol)?
            .spec
            .min_notional;
        let reference = if t.working_type == "MARK_PRICE" {
            self.mark(symbol)
        } else {
            self.market
                .get(symbol)
                .map_or(Decimal::ZERO, |m| m.last_price())
        };
        let (trigger_price, trailing) = match (t.trailing, t.trigger_price) {
            (Some(tr), _) => {
                let mut stop = TrailingStop::new(t.side, tr.activate_price, tr.callback_rate);
                stop.observe(reference);
                (Decimal::ZERO, Some(stop))
            }
            (None, tp) => {
                let tp = tp.unwrap_or_default();
                if let Some(kind) = t.typ.trigger_kind()
                    && qt_matching::fires(kind, t.side, tp, reference)
                {
                    return Err(ApiError::bad(-2021, "Order would immediately trigger."));
                }
                (tp, None)
            }
        };
        let cid = match &t.client_id {
            Some(c) => {
                check_client_id("clientAlgoId", c)?;
                c.clone()
            }
            None => format!("simalgo_{}", self.next_algo_id),
        };
        let acc = self.account(key)?;
        if acc
            .open_algos
            .iter()
            .filter_map(|id| acc.algos.get(id))
            .any(|a| a.client_algo_id == cid)
        {
            return Err(ApiError::bad(-4116, "ClientOrderId is duplicated."));
        }
        let algos_here = acc.open_algos_of(symbol).count();
        if algos_here >= MAX_OPEN_ALGOS {
            return Err(ApiError::bad(-4045, "Reach max stop order limit."));
        }
        let position = acc.position(symbol, position_side);
        if t.reduce_only && position.reduce_only_cap(t.side).is_zero() {
            return Err(ApiError::bad(-2022, "ReduceOnly Order is rejected."));
        }
        let notional_price = if trigger_price.is_zero() {
            reference
        } else {
            trigger_price
        };
        let reduces = t.reduce_only || position_side.closes(t.side);
        if !t.close_position && !reduces && t.quantity * notional_price < min_notional {
            return Err(min_notional_error(min_notional));
        }
        let algo_id = self.next_algo_id;
        self.next_algo_id += 1;
        let algo = AlgoOrder {
            algo_id,
            client_algo_id: cid,
            symbol: symbol.clone(),
            side: t.side,
            typ: t.typ,
            tif: t.tif,
            quantity: t.quantity,
            price: t.price,
            trigger_price,
            working_type: t.working_type.to_string(),
            close_position: t.close_position,
            reduce_only: t.reduce_only,
            price_protect: t.price_protect,
            activate_price: t
                .trailing
                .and_then(|tr| tr.activate_price)
                .unwrap_or_default(),
            callback_rate: t.trailing.map_or(Decimal::ZERO, |tr| tr.callback_rate),
            trailing,
            status: AlgoStatus::New,
            actual_order_id: None,
            create_time: now,
            update_time: now,
            trigger_time: 0,
            reject_reason: String::new(),
            position_side,
        };
        let ev = events::algo_update(&algo, None, now);
        let acc = self.account_mut(key)?;
        acc.open_algos.insert(algo_id);
        acc.algos.insert(algo_id, algo);
        self.push_user(key, "ALGO_UPDATE", ev);
        Ok(algo_id)
    }

    /// An algo order and the order it became, if any.
    pub fn algo(&self, key: &str, id: u64) -> Option<(&AlgoOrder, Option<&Order>)> {
        let acc = self.accounts.get(key)?;
        let a = acc.algos.get(&id)?;
        Some((a, a.actual_order_id.and_then(|o| acc.orders.get(&o))))
    }

    pub(super) fn set_algo_status(
        &mut self,
        key: &str,
        algo_id: u64,
        status: AlgoStatus,
        now: i64,
    ) {
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        let Some(a) = acc.algos.get_mut(&algo_id) else {
            return;
        };
        if a.status == status {
            return;
        }
        a.status = status;
        a.update_time = now;
        if !matches!(status, AlgoStatus::New | AlgoStatus::Triggered) {
            acc.open_algos.remove(&algo_id);
        }
        let a = a.clone();
        let actual = a.actual_order_id.and_then(|o| acc.orders.get(&o)).cloned();
        let ev = events::algo_update(&a, actual.as_ref(), now);
        self.push_user(key, "ALGO_UPDATE", ev);
    }

    /// The id of the algo order that `by` names, if there is one.
    ///
    /// # Errors
    /// `-2015` unknown account.
    pub fn find_algo(&self, key: &str, by: &AlgoRef) -> Result<Option<u64>, ApiError> {
        let acc = self.account(key)?;
        Ok(match by {
            AlgoRef::Id(id) => u64::try_from(*id)
                .ok()
                .filter(|id| acc.algos.contains_key(id)),
            AlgoRef::Client(c) => acc
                .algos
                .values()
                .rev()
                .find(|a| &a.client_algo_id == c)
                .map(|a| a.algo_id),
        })
    }

    /// Cancel the algo order that `by` names while it waits for its trigger; its id and
    /// client id.
    ///
    /// # Errors
    /// `-2011` when there is none waiting.
    pub fn cancel_algo(
        &mut self,
        key: &str,
        by: &AlgoRef,
        now: i64,
    ) -> Result<(u64, String), ApiError> {
        let id = self
            .find_algo(key, by)?
            .ok_or_else(ApiError::unknown_order)?;
        let acc = self.account(key)?;
        if !acc.open_algos.contains(&id)
            || acc
                .algos
                .get(&id)
                .is_some_and(|a| a.status != AlgoStatus::New)
        {
            return Err(ApiError::unknown_order());
        }
        let cid = acc
            .algos
            .get(&id)
            .map(|a| a.client_algo_id.clone())
            .unwrap_or_default();
        self.set_algo_status(key, id, AlgoStatus::Canceled, now);
        Ok((id, cid))
    }

    /// Cancel every waiting algo order of `symbol`.
    ///
    /// # Errors
    /// `-2015` unknown account.
    pub fn cancel_all_algos(&mut self, key: &str, symbol: &str, now: i64) -> Result<(), ApiError> {
        let ids: Vec<u64> = self
            .account(key)?
            .open_algos_of(symbol)
            .filter(|a| a.status == AlgoStatus::New)
            .map(|a| a.algo_id)
            .collect();
        for id in ids {
            self.set_algo_status(key, id, AlgoStatus::Canceled, now);
        }
        Ok(())
    }

    /// Turn a fired algo order into a plain order and execute it at `price` within `bar`.
    pub(super) fn trigger_algo(
        &mut self,
        key: &str,
        algo_id: u64,
        price: Decimal,
        bar: &Bar,
        now: i64,
    ) {
        let Some(algo) = self
            .accounts
            .get(key)
            .and_then(|a| a.algos.get(&algo_id))
            .cloned()
        else {
            return;
        };
        let position = self
            .accounts
            .get(key)
            .map(|a| a.position(&algo.symbol, algo.position_side))
            .unwrap_or_default();
        let qty = if algo.close_position {
            position.reduce_only_cap(algo.side)
        } else {
            algo.quantity
        };
        if let Some(acc) = self.accounts.get_mut(key)
            && let Some(a) = acc.algos.get_mut(&algo_id)
        {
            a.trigger_time = now;
        }
        // In hedge mode an order closes by its side, never by reduceOnly.
        let reduce_only =
            (algo.reduce_only || algo.close_position) && algo.position_side == PosSide::Both;
        let reduces = reduce_only || algo.position_side.closes(algo.side);
        if qty.is_zero() || (reduces && position.reduce_only_cap(algo.side).is_zero()) {
            if let Some(a) = self
                .accounts
                .get_mut(key)
                .and_then(|acc| acc.algos.get_mut(&algo_id))
            {
                a.reject_reason = "Reduce Only reject".into();
            }
            self.set_algo_status(key, algo_id, AlgoStatus::Rejected, now);
            return;
        }
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let typ = if matches!(algo.typ, OrdType::Stop | OrdType::TakeProfit) {
            OrdType::Limit
        } else {
            OrdType::Market
        };
        let order = Order {
            order_id,
            symbol: algo.symbol.clone(),
            client_order_id: algo.client_algo_id.clone(),
            side: algo.side,
            typ,
            orig_type: algo.typ,
            tif: algo.tif,
            price: algo.price,
            orig_qty: qty,
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: OrderStatus::New,
            reduce_only,
            close_position: algo.close_position,
            stop_price: algo.trigger_price,
            working_type: algo.working_type.clone(),
            time: now,
            update_time: now,
            algo_id: Some(algo_id),
            position_side: algo.position_side,
        };
        if let Some(a) = self
            .accounts
            .get_mut(key)
            .and_then(|acc| acc.algos.get_mut(&algo_id))
        {
            a.actual_order_id = Some(order_id);
        }
        self.set_algo_status(key, algo_id, AlgoStatus::Triggered, now);
        self.insert_order(key, order, now);
        let step = self
            .market
            .get(&algo.symbol)
            .map_or(Decimal::ZERO, |m| m.spec.step_size);
        let resting = RestingOrder {
            side: algo.side,
            limit_price: (typ == OrdType::Limit).then_some(algo.price),
            remaining: qty,
        };
        let fill = if typ == OrdType::Limit {
            // The limit order arrives when the price is at the trigger: it takes if it crosses
            // there, otherwise it rests for the next candles.
            let at_trigger = Bar {
                close: bar.clamp(price),
                ..*bar
            };
            self.rules
                .fill
                .on_arrival(&resting, algo.tif, &at_trigger, step)
        } else {
            self.rules.fill.taker_at(&resting, price, bar, step)
        };
        match fill {
            Ok(Some(f)) => self.apply_fill(key, order_id, f, now, "TRADE"),
            Ok(None) => {}
            Err(_) => self.finish_order(key, order_id, OrderStatus::Expired, now),
        }
        if algo.tif == TimeInForce::Ioc {
            self.finish_order(key, order_id, OrderStatus::Expired, now);
        }
    }
}
