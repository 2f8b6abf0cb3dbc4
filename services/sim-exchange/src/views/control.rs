//! The test control API's views: `/sim/state` and `/sim/book`.

use std::sync::atomic::Ordering;

use qt_events::Decimal;
use serde_json::{Value, json};

use crate::app::FaultCounts;
use crate::exchange::Exchange;
use crate::exchange::sides::split_key;
use crate::wire::{d, d8, side_name};

/// `GET /sim/state`: server time, each symbol's replay position and prices, and the faults
/// that fired.
pub(crate) fn state(ex: &Exchange, faults: &FaultCounts, now: i64) -> Value {
    let symbols: serde_json::Map<String, Value> = ex
        .market()
        .symbols
        .iter()
        .map(|(s, m)| {
            let next = ex.next_funding(s);
            (
                s.clone(),
                json!({"cursor": m.cursor, "time": m.now_ms(), "lastPrice": d(m.last_price()),
                    "markPrice": d(m.mark_price()), "interval": m.interval_ms,
                    "candleOpenTime": m.current().map_or(0, |c| c.open_time),
                    "high": d(m.current().map_or(Decimal::ZERO, |c| c.high)),
                    "low": d(m.current().map_or(Decimal::ZERO, |c| c.low)),
                    "volume": d(m.current().map_or(Decimal::ZERO, |c| c.volume)),
                    "remaining": m.candles.len().saturating_sub(m.cursor),
                    "fundingSettledUntil": ex.funding_settled_until(s),
                    "nextFundingTime": next.map_or(0, |f| f.0),
                    "nextFundingRate": next.map_or_else(String::new, |f| d8(f.1))}),
            )
        })
        .collect();
    json!({"serverTime": now, "symbols": symbols, "faultCounts": {
        "errors": faults.errors.load(Ordering::Relaxed),
        "lostResponses": faults.lost_responses.load(Ordering::Relaxed),
        "wsDrops": faults.ws_drops.load(Ordering::Relaxed),
    }})
}

/// `GET /sim/book`: every account's open positions, open orders and open conditional orders.
pub(crate) fn book(ex: &Exchange) -> Value {
    let accounts: Vec<Value> = ex
        .accounts()
        .map(|(_, a)| {
            let positions: Vec<Value> = a
                .positions
                .iter()
                .filter(|(_, p)| !p.qty.is_zero())
                .map(|(k, p)| {
                    let (s, side) = split_key(k);
                    json!({"symbol": s, "positionSide": side.name(), "positionAmt": d(p.qty), "entryPrice": d(p.entry_price)})
                })
                .collect();
            let orders: Vec<Value> = a
                .open_orders
                .iter()
                .filter_map(|id| a.orders.get(id))
                .map(|o| {
                    json!({"symbol": o.symbol, "clientOrderId": o.client_order_id,
                        "side": side_name(o.side), "positionSide": o.position_side.name(), "type": o.typ.name(),
                        "reduceOnly": o.reduce_only, "closePosition": o.close_position})
                })
                .collect();
            let algos: Vec<Value> = a
                .open_algos
                .iter()
                .filter_map(|id| a.algos.get(id))
                .map(|o| {
                    json!({"symbol": o.symbol, "clientAlgoId": o.client_algo_id,
                        "side": side_name(o.side), "positionSide": o.position_side.name(), "orderType": o.typ.name(),
                        "reduceOnly": o.reduce_only, "closePosition": o.close_position})
                })
                .collect();
            json!({"positions": positions, "openOrders": orders, "openAlgoOrders": algos})
        })
        .collect();
    json!({"accounts": accounts})
}
