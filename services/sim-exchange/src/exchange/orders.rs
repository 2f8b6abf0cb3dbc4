//! Plain orders (MARKET, LIMIT): placing one (the checks that depend on the account and the
//! market, then its first fill), finding it by id or client id, closing it (cancelled or
//! expired), cancelling all of a symbol.

use qt_events::{Decimal, Side};
use qt_matching::{RestingOrder, TimeInForce};

use super::book::{AlgoStatus, OrdType, Order, OrderStatus};
use super::events;
use super::sides::{PosSide, order_side};
use super::{Exchange, MAX_OPEN_ORDERS};
use crate::error::ApiError;
use crate::wire;

/// A plain order whose parameters passed the symbol's filters.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTicket {
    pub symbol: String,
    pub side: Side,
    /// MARKET or LIMIT.
    pub typ: OrdType,
    pub qty: Decimal,
    /// The limit price (LIMIT only).
    pub price: Option<Decimal>,
    pub tif: TimeInForce,
    pub reduce_only: bool,
    /// `positionSide` as sent (checked against the account's mode when placed).
    pub position_side: Option<PosSide>,
    /// `newClientOrderId` (checked); `sim_<orderId>` when absent.
    pub client_id: Option<String>,
}

/// How a request names an order of a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// `orderId` as sent (a negative one names no order).
    Id(i64),
    /// `origClientOrderId`.
    Client(String),
}

/// `-4164`: the order's notional is below the symbol's `MIN_NOTIONAL`.
pub(crate) fn min_notional_error(min_notional: Decimal) -> ApiError {
    ApiError::bad(
        -4164,
        format!(
            "Order's notional must be no smaller than {} (unless you choose reduce only).",
            wire::d(min_notional)
        ),
    )
}

impl Exchange {
    /// Place a plain order for account `key`: refuse it on a position side the account's
    /// mode does not have, a duplicate open client id, the open-order limit, reduce-only (or
    /// a hedge-mode close) with nothing to reduce, min notional or margin; else
    /// record it and fill what its arrival fills (an IOC remainder expires). Returns its id and
    /// the order as accepted (before any fill).
    ///
    /// # Errors
    /// Binance's code for the refusal.
    pub fn place_order(
        &mut self,
        key: &str,
        t: &OrderTicket,
        now: i64,
    ) -> Result<(u64, Order), ApiError> {
        let acc = self.account(key)?;
        let position_side = order_side(acc.dual_side_position, t.position_side, t.reduce_only)?;
        let symbol = &t.symbol;
        let spec = &self
            .market
            .get(symbol)
            .ok_or_else(ApiError::invalid_symbol)?
            .spec;
        let cid = match &t.client_id {
            Some(c) => c.clone(),
            None => format!("sim_{}", self.next_order_id),
        };
        let ck = format!("{symbol}|{cid}");
        if acc
            .client_ids
            .get(&ck)
            .and_then(|id| acc.orders.get(id))
            .is_some_and(|o| o.status.is_open())
        {
            return Err(ApiError::bad(-4116, "ClientOrderId is duplicated."));
        }
        let open_here = acc.open_orders_of(symbol).count();
        if open_here >= MAX_OPEN_ORDERS {
            return Err(ApiError::bad(-2025, "Reach max open order limit."));
        }
        let (side, qty, reduce_only) = (t.side, t.qty, t.reduce_only);
        let position = acc.position(symbol, position_side);
        let reduces = reduce_only || position_side.closes(side);
        if reduces && position.reduce_only_cap(side).is_zero() {
            return Err(ApiError::bad(-2022, "ReduceOnly Order is rejected."));
        }
        let mark = self.mark(symbol);
        let ref_price = t.price.unwrap_or(mark);
        if !reduces && qty * ref_price < spec.min_notional {
            return Err(min_notional_error(spec.min_notional));
        }
        if !reduces {
            let opening = (qty - position.reduce_only_cap(side)).max(Decimal::ZERO);
            let required = opening * ref_price / Decimal::from(self.leverage(acc, symbol));
            if required > self.margins(acc).available {
                return Err(ApiError::bad(-2019, "Margin is insufficient."));
            }
        }
        let step = spec.step_size;
        let bar = self
            .market
            .get(symbol)
            .and_then(|m| m.current_bar())
            .ok_or_else(ApiError::invalid_symbol)?;
        let resting = RestingOrder {
            side,
            limit_price: t.price,
            remaining: qty,
        };
        let first_fill = match self.rules.fill.on_arrival(&resting, t.tif, &bar, step) {
            Ok(f) => f,
            Err(qt_matching::MatchError::PostOnlyWouldTake) => {
                return Err(ApiError::bad(
                    -5022,
                    "Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history",
                ));
            }
            Err(qt_matching::MatchError::FillOrKillUnfillable) => {
                return Err(ApiError::bad(
                    -5021,
                    "Due to the order could not be filled immediately, the FOK order has been rejected. The order will not be recorded in the order history",
                ));
            }
            Err(qt_matching::MatchError::Invalid(m)) => return Err(ApiError::bad(-1013, m)),
        };
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let order = Order {
            order_id,
            symbol: symbol.clone(),
            client_order_id: cid,
            side,
            typ: t.typ,
            orig_type: t.typ,
            tif: t.tif,
            price: t.price.unwrap_or_default(),
            orig_qty: qty,
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: OrderStatus::New,
            reduce_only,
            close_position: false,
            stop_price: Decimal::ZERO,
            working_type: "CONTRACT_PRICE".into(),
            time: now,
            update_time: now,
            algo_id: None,
            position_side,
        };
        let accepted = order.clone();
        self.insert_order(key, order, now);
        if let Some(f) = first_fill {
            self.apply_fill(key, order_id, f, now, "TRADE");
        }
        if t.tif == TimeInForce::Ioc {
            self.finish_order(key, order_id, OrderStatus::Expired, now);
        }
        self.prune(key);
        Ok((order_id, accepted))
    }

    /// Record a new open order and emit its `NEW` update.
    pub(super) fn insert_order(&mut self, key: &str, order: Order, now: i64) {
        let event = events::order_update(&order, "NEW", None, now);
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        acc.client_ids.insert(
            format!("{}|{}", order.symbol, order.client_order_id),
            order.order_id,
        );
        acc.open_orders.insert(order.order_id);
        acc.orders.insert(order.order_id, order);
        self.push_user(key, "ORDER_TRADE_UPDATE", event);
    }

    /// Close an open order with a final status (CANCELED / EXPIRED) and emit its event.
    pub(super) fn finish_order(&mut self, key: &str, order_id: u64, status: OrderStatus, now: i64) {
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        let Some(order) = acc.orders.get_mut(&order_id) else {
            return;
        };
        if !order.status.is_open() {
            return;
        }
        order.status = status;
        order.update_time = now;
        let order = order.clone();
        acc.open_orders.remove(&order_id);
        let exec = if status == OrderStatus::Canceled {
            "CANCELED"
        } else {
            "EXPIRED"
        };
        let ev = events::order_update(&order, exec, None, now);
        self.push_user(key, "ORDER_TRADE_UPDATE", ev);
        if let Some(a) = order.algo_id {
            let st = if order.executed_qty.is_zero() {
                AlgoStatus::Expired
            } else {
                AlgoStatus::Finished
            };
            self.set_algo_status(key, a, st, now);
        }
    }

    /// The id of the order of `symbol` that `by` names.
    ///
    /// # Errors
    /// `-2015` unknown account, `-2013` no such order.
    pub fn find_order(&self, key: &str, symbol: &str, by: &OrderRef) -> Result<u64, ApiError> {
        let acc = self.account(key)?;
        let id = match by {
            OrderRef::Id(id) => u64::try_from(*id)
                .ok()
                .filter(|id| acc.orders.get(id).is_some_and(|o| o.symbol == symbol)),
            OrderRef::Client(c) => acc.client_ids.get(&format!("{symbol}|{c}")).copied(),
        };
        id.ok_or_else(ApiError::no_such_order)
    }

    /// Cancel the open order that `by` names; the order as cancelled.
    ///
    /// # Errors
    /// `-2011` when it does not exist or is not open.
    pub fn cancel_order(
        &mut self,
        key: &str,
        symbol: &str,
        by: &OrderRef,
        now: i64,
    ) -> Result<&Order, ApiError> {
        let id = self.find_order(key, symbol, by).map_err(|e| {
            if e.code == -2013 {
                ApiError::unknown_order()
            } else {
                e
            }
        })?;
        if !self.account(key)?.open_orders.contains(&id) {
            return Err(ApiError::unknown_order());
        }
        self.finish_order(key, id, OrderStatus::Canceled, now);
        self.order(key, id).ok_or_else(ApiError::unknown_order)
    }

    /// Cancel every open order of `symbol`.
    ///
    /// # Errors
    /// `-2015` unknown account.
    pub fn cancel_all(&mut self, key: &str, symbol: &str, now: i64) -> Result<(), ApiError> {
        let ids: Vec<u64> = self.account(key)?.open_orders_of(symbol).collect();
        for id in ids {
            self.finish_order(key, id, OrderStatus::Canceled, now);
        }
        Ok(())
    }
}
