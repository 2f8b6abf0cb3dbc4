//! Orders, conditional orders and trades: their REST shapes and their user-data events
//! (`ORDER_TRADE_UPDATE`, `ALGO_UPDATE`).

use qt_events::{Decimal, Side};
use qt_matching::{Fill, Liquidity};
use serde_json::{Value, json};

use super::{d, side_name, tif_name};
use crate::exchange::book::{AlgoOrder, Order, Trade};

/// `POST/GET/DELETE /fapi/v1/order`, `openOrders`, `allOrders`.
pub(crate) fn order(o: &Order) -> Value {
    json!({
        "orderId": o.order_id, "symbol": o.symbol, "status": o.status.name(),
        "clientOrderId": o.client_order_id, "price": d(o.price),
        "avgPrice": d(o.avg_price()), "origQty": d(o.orig_qty),
        "executedQty": d(o.executed_qty), "cumQty": d(o.executed_qty),
        "cumQuote": d(o.cum_quote), "timeInForce": tif_name(o.tif),
        "type": o.typ.name(), "reduceOnly": o.reduce_only,
        "closePosition": o.close_position, "side": side_name(o.side),
        "positionSide": "BOTH", "stopPrice": d(o.stop_price),
        "workingType": o.working_type, "priceProtect": false,
        "origType": o.orig_type.name(), "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE", "goodTillDate": 0,
        "time": o.time, "updateTime": o.update_time,
    })
}

/// `/fapi/v1/algoOrder`, `openAlgoOrders`, `allAlgoOrders`; `actual` is the order it became.
pub(crate) fn algo(a: &AlgoOrder, actual: Option<&Order>) -> Value {
    json!({
        "algoId": a.algo_id, "clientAlgoId": a.client_algo_id,
        "algoType": "CONDITIONAL", "orderType": a.typ.name(), "symbol": a.symbol,
        "side": side_name(a.side), "positionSide": "BOTH",
        "timeInForce": tif_name(a.tif), "quantity": d(a.quantity),
        "algoStatus": a.status.name(), "actualOrderId": a.actual_order_id.map(|i| i.to_string()).unwrap_or_default(),
        "actualPrice": actual.map(|o| d(o.avg_price())).unwrap_or_else(|| "0".into()),
        "triggerPrice": d(a.trigger_price), "price": d(a.price),
        "icebergQuantity": null, "tpTriggerPrice": "0", "tpPrice": "0",
        "slTriggerPrice": "0", "slPrice": "0", "tpOrderType": "", "selfTradePreventionMode": "NONE",
        "workingType": a.working_type, "priceMatch": "NONE",
        "closePosition": a.close_position, "priceProtect": a.price_protect,
        "reduceOnly": a.reduce_only, "activatePrice": d(a.activate_price),
        "callbackRate": d(a.callback_rate), "createTime": a.create_time,
        "updateTime": a.update_time, "triggerTime": a.trigger_time, "goodTillDate": 0,
    })
}

/// `GET /fapi/v1/userTrades`.
pub(crate) fn trade(t: &Trade) -> Value {
    json!({"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "side": side_name(t.side),
    "price": d(t.price), "qty": d(t.qty), "realizedPnl": d(t.realized_pnl),
    "quoteQty": d(t.price * t.qty), "commission": d(t.commission), "commissionAsset": "USDT",
    "time": t.time, "positionSide": "BOTH", "buyer": t.side == Side::Buy, "maker": t.maker})
}

/// The `{"code": 200, …}` answer of the cancel-all endpoints.
pub(crate) fn cancel_all_done() -> Value {
    json!({"code": 200, "msg": "The operation of cancel all open order is done."})
}

/// `ORDER_TRADE_UPDATE` with execution type `exec`; `last` is the fill that caused it, with
/// its trade id and realized PnL.
pub(crate) fn order_update(
    o: &Order,
    exec: &str,
    last: Option<(&Fill, u64, Decimal)>,
    now: i64,
) -> Value {
    let (l, lp, n, t, rp, maker) = match last {
        Some((f, t, rp)) => (
            f.qty,
            f.price,
            f.fee,
            t,
            rp,
            f.liquidity == Liquidity::Maker,
        ),
        None => (
            Decimal::ZERO,
            Decimal::ZERO,
            Decimal::ZERO,
            0,
            Decimal::ZERO,
            false,
        ),
    };
    json!({
        "e": "ORDER_TRADE_UPDATE", "E": now, "T": now,
        "o": {
            "s": o.symbol, "c": o.client_order_id, "S": side_name(o.side), "o": o.typ.name(),
            "f": tif_name(o.tif), "q": d(o.orig_qty), "p": d(o.price), "ap": d(o.avg_price()),
            "sp": d(o.stop_price), "x": exec, "X": o.status.name(), "i": o.order_id,
            "l": d(l), "z": d(o.executed_qty), "L": d(lp), "N": "USDT", "n": d(n), "T": now,
            "t": t, "b": "0", "a": "0", "m": maker, "R": o.reduce_only, "wt": o.working_type,
            "ot": o.orig_type.name(), "ps": "BOTH", "cp": o.close_position, "rp": d(rp),
            "pP": false, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0, "er": "0"
        }
    })
}

/// `ALGO_UPDATE`; `actual` is the order the algo order became.
pub(crate) fn algo_update(a: &AlgoOrder, actual: Option<&Order>, now: i64) -> Value {
    let (ap, aq) = actual.map_or((Decimal::ZERO, Decimal::ZERO), |o| {
        (o.avg_price(), o.executed_qty)
    });
    json!({
        "e": "ALGO_UPDATE", "T": now, "E": now,
        "o": {
            "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.typ.name(),
            "s": a.symbol, "S": side_name(a.side), "ps": "BOTH", "f": tif_name(a.tif),
            "q": d(a.quantity), "X": a.status.name(),
            "ai": a.actual_order_id.map(|i| i.to_string()).unwrap_or_default(),
            "ap": d(ap), "aq": d(aq), "act": "0", "tp": d(a.trigger_price), "p": d(a.price),
            "V": "NONE", "wt": a.working_type, "pm": "NONE", "cp": a.close_position,
            "pP": a.price_protect, "R": a.reduce_only, "tt": a.trigger_time, "gtd": 0,
            "rm": a.reject_reason
        }
    })
}
