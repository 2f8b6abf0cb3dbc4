//! Market data: `exchangeInfo`, klines, the synthetic depth, tickers, the premium index,
//! funding rates, leverage brackets.

use qt_candles::Candle;
use qt_events::Decimal;
use serde_json::{Value, json};

use crate::config::Limits;
use crate::exchange::{MAX_OPEN_ALGOS, MAX_OPEN_ORDERS, MAX_PRICE};
use crate::market::{SymbolMarket, SymbolSpec};
use crate::wire::{d, d8};

/// `GET /fapi/v1/exchangeInfo`.
pub(crate) fn exchange_info<'a>(
    specs: impl Iterator<Item = &'a SymbolSpec>,
    limits: &Limits,
    now: i64,
) -> Value {
    let symbols: Vec<Value> = specs
        .map(|s| {
            json!({
                "symbol": s.symbol, "pair": s.symbol, "contractType": "PERPETUAL",
                "deliveryDate": 4_133_404_800_000i64, "onboardDate": 1_569_398_400_000i64,
                "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
                "baseAsset": s.base_asset, "quoteAsset": "USDT", "marginAsset": "USDT",
                "pricePrecision": s.price_precision(), "quantityPrecision": s.quantity_precision(),
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
                "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": d(s.tick_size), "maxPrice": d(MAX_PRICE), "tickSize": d(s.tick_size)},
                    {"filterType": "LOT_SIZE", "stepSize": d(s.step_size), "maxQty": d(s.max_qty), "minQty": d(s.min_qty)},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": d(s.step_size), "maxQty": d(s.max_qty), "minQty": d(s.min_qty)},
                    {"filterType": "MAX_NUM_ORDERS", "limit": MAX_OPEN_ORDERS},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": MAX_OPEN_ALGOS},
                    {"filterType": "MIN_NOTIONAL", "notional": d(s.min_notional)},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"}
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            })
        })
        .collect();
    json!({
        "timezone": "UTC", "serverTime": now, "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limits.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": limits.orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limits.orders_per_10s}
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": true, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    })
}

/// One symbol of `GET /fapi/v1/leverageBracket`: one bracket.
pub(crate) fn leverage_bracket(s: &SymbolSpec, maint_margin_rate: Decimal) -> Value {
    json!({"symbol": s.symbol, "notionalCoef": 1.0, "brackets": [{
        "bracket": 1, "initialLeverage": s.max_leverage, "notionalCap": 1_000_000_000i64,
        "notionalFloor": 0, "maintMarginRatio": maint_margin_rate.to_string().parse::<f64>().unwrap_or(0.004), "cum": 0.0}]})
}

/// `GET /fapi/v1/commissionRate`.
pub(crate) fn commission_rate(symbol: &str, maker: Decimal, taker: Decimal) -> Value {
    json!({"symbol": symbol, "makerCommissionRate": d(maker), "takerCommissionRate": d(taker)})
}

/// One row of `GET /fapi/v1/klines` for a candle of `interval_ms`.
pub(crate) fn kline(c: &Candle, interval_ms: i64) -> Value {
    json!([
        c.open_time,
        d(c.open),
        d(c.high),
        d(c.low),
        d(c.close),
        d(c.volume),
        c.open_time + interval_ms - 1,
        d(c.quote_volume),
        c.trades,
        "0",
        "0",
        "0"
    ])
}

/// A synthetic book: `limit` levels each side, one tick apart around the last price, with a
/// size that grows away from the touch (the simulator has no real depth).
pub(crate) fn depth(m: &SymbolMarket, limit: i64, now: i64) -> Value {
    let (px, tick, step) = (m.last_price(), m.spec.tick_size, m.spec.step_size);
    let level = |i: i64, sign: i64| {
        let price = px + tick * Decimal::from(sign * i);
        json!([d(price), d(step * Decimal::from(10 * i))])
    };
    let bids: Vec<Value> = (1..=limit)
        .map(|i| level(i, -1))
        .filter(|l| !l[0].as_str().unwrap_or("-").starts_with('-'))
        .collect();
    let asks: Vec<Value> = (1..=limit).map(|i| level(i, 1)).collect();
    json!({"lastUpdateId": now, "E": now, "T": now, "bids": bids, "asks": asks})
}

/// `GET /fapi/v1/ticker/24hr` for one symbol: the last day of closed candles (none yet: no
/// ticker).
pub(crate) fn ticker_24h(m: &SymbolMarket, symbol: &str, now: i64) -> Option<Value> {
    let t = m.day_stats()?;
    Some(
        json!({"symbol": symbol, "priceChange": d(t.change), "priceChangePercent": d(t.change_percent),
        "weightedAvgPrice": d(t.weighted_avg), "lastPrice": d(t.last), "lastQty": "0",
        "openPrice": d(t.open), "highPrice": d(t.high), "lowPrice": d(t.low),
        "volume": d(t.volume), "quoteVolume": d(t.quote_volume), "openTime": t.open_time,
        "closeTime": m.now_ms() - 1, "firstId": 0, "lastId": 0, "count": 0, "E": now}),
    )
}

/// `GET /fapi/v1|v2/ticker/price` for one symbol.
pub(crate) fn price_ticker(m: &SymbolMarket, symbol: &str, now: i64) -> Value {
    json!({"symbol": symbol, "price": d(m.last_price()), "time": now})
}

/// `GET /fapi/v1/ticker/bookTicker` for one symbol: one tick either side of the last price.
pub(crate) fn book_ticker(m: &SymbolMarket, symbol: &str, now: i64) -> Value {
    let (px, t) = (m.last_price(), m.spec.tick_size);
    json!({"symbol": symbol, "bidPrice": d(px - t), "bidQty": "1", "askPrice": d(px + t), "askQty": "1", "time": now, "lastUpdateId": now})
}

/// `GET /fapi/v1/premiumIndex` for one symbol, with its next funding time and rate.
pub(crate) fn premium_index(
    m: &SymbolMarket,
    symbol: &str,
    (next_time, rate): (i64, Decimal),
    now: i64,
) -> Value {
    let mark = m.mark_price();
    json!({"symbol": symbol, "markPrice": d(mark), "indexPrice": d(mark), "estimatedSettlePrice": d(mark),
        "lastFundingRate": d8(rate), "interestRate": "0.00010000",
        "nextFundingTime": next_time, "time": now})
}

/// One row of `GET /fapi/v1/fundingRate`.
pub(crate) fn funding_rate(symbol: &str, time: i64, rate: Decimal, mark: Decimal) -> Value {
    json!({"symbol": symbol, "fundingRate": d8(rate),
        "fundingTime": time, "markPrice": d8(mark)})
}
