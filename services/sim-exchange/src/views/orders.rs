//! Orders, conditional orders and trades: their REST shapes.

use qt_events::Side;
use serde_json::{Value, json};

use crate::exchange::book::{AlgoOrder, Order, Trade};
use crate::wire::{d, side_name, tif_name};

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
        "positionSide": o.position_side.name(), "stopPrice": d(o.stop_price),
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
        "side": side_name(a.side), "positionSide": a.position_side.name(),
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
    "time": t.time, "positionSide": t.position_side.name(), "buyer": t.side == Side::Buy, "maker": t.maker})
}

/// The `{"code": 200, …}` answer of the cancel-all endpoints.
pub(crate) fn cancel_all_done() -> Value {
    json!({"code": 200, "msg": "The operation of cancel all open order is done."})
}
