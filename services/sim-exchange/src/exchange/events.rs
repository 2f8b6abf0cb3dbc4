//! The events the exchange queues, in Binance's shapes: user data (`ORDER_TRADE_UPDATE`,
//! `ALGO_UPDATE`, `ACCOUNT_UPDATE`) and the market-stream payloads (kline, mark price, book
//! ticker, aggregate trade, 24h ticker).

use qt_candles::Candle;
use qt_events::Decimal;
use qt_matching::{Fill, Liquidity, Position};
use serde_json::{Value, json};

use super::book::{AlgoOrder, Order};
use super::sides::PosSide;
use crate::market::DayStats;
use crate::wire::{d, d8, side_name, tif_name};

// ------------------------------------------------------------------------- user data

/// `ORDER_TRADE_UPDATE` with execution type `exec`; `last` is the fill that caused it, with
/// its trade id and realized PnL.
pub(super) fn order_update(
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
            "ot": o.orig_type.name(), "ps": o.position_side.name(), "cp": o.close_position, "rp": d(rp),
            "pP": false, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0, "er": "0"
        }
    })
}

/// `ALGO_UPDATE`; `actual` is the order the algo order became.
pub(super) fn algo_update(a: &AlgoOrder, actual: Option<&Order>, now: i64) -> Value {
    let (ap, aq) = actual.map_or((Decimal::ZERO, Decimal::ZERO), |o| {
        (o.avg_price(), o.executed_qty)
    });
    json!({
        "e": "ALGO_UPDATE", "T": now, "E": now,
        "o": {
            "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.typ.name(),
            "s": a.symbol, "S": side_name(a.side), "ps": a.position_side.name(), "f": tif_name(a.tif),
            "q": d(a.quantity), "X": a.status.name(),
            "ai": a.actual_order_id.map(|i| i.to_string()).unwrap_or_default(),
            "ap": d(ap), "aq": d(aq), "act": "0", "tp": d(a.trigger_price), "p": d(a.price),
            "V": "NONE", "wt": a.working_type, "pm": "NONE", "cp": a.close_position,
            "pP": a.price_protect, "R": a.reduce_only, "tt": a.trigger_time, "gtd": 0,
            "rm": a.reject_reason
        }
    })
}

/// `ACCOUNT_UPDATE` after a fill: the wallet and the position of `symbol` on `side`.
pub(super) fn account_update(
    wallet: Decimal,
    (symbol, side): (&str, PosSide),
    pos: &Position,
    mark: Decimal,
    balance_change: Decimal,
    reason: &str,
    now: i64,
) -> Value {
    json!({
        "e": "ACCOUNT_UPDATE", "E": now, "T": now,
        "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": d(wallet), "cw": d(wallet), "bc": d(balance_change)}],
            "P": [{"s": symbol, "pa": d(pos.qty), "ep": d(pos.entry_price), "bep": d(pos.entry_price),
                   "cr": "0", "up": d(pos.unrealized_pnl(mark).round_dp(8)), "mt": "cross", "iw": "0", "ps": side.name()}]
        }
    })
}

/// `ACCOUNT_UPDATE` for a funding fee: the balance only, as Binance sends it for a cross
/// position.
pub(super) fn funding_update(wallet: Decimal, fee: Decimal, now: i64) -> Value {
    let wallet = d(wallet);
    json!({"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
        "m": "FUNDING_FEE",
        "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": d(fee)}],
        "P": []}})
}

// ------------------------------------------------------------------------- market streams

/// `<symbol>@kline_<interval>` for a closed candle.
pub(super) fn kline_event(symbol: &str, name: &str, k: &Candle, iv: i64, now: i64) -> Value {
    json!({"e": "kline", "E": now, "s": symbol, "k": {
        "t": k.open_time, "T": k.open_time + iv - 1, "s": symbol, "i": name,
        "f": 0, "L": 0, "o": d(k.open), "c": d(k.close), "h": d(k.high), "l": d(k.low),
        "v": d(k.volume), "n": k.trades, "x": true, "q": d(k.quote_volume), "V": "0", "Q": "0", "B": "0"}})
}

/// `<symbol>@markPrice` (and `@1s`), with the next funding time and rate.
pub(super) fn mark_price_event(
    symbol: &str,
    mark: Decimal,
    (next_time, next_rate): (i64, Decimal),
    now: i64,
) -> Value {
    json!({"e": "markPriceUpdate", "E": now, "s": symbol, "p": d(mark),
        "ap": d(mark), "i": d(mark), "P": d(mark), "r": d8(next_rate), "T": next_time})
}

/// `<symbol>@bookTicker`: one tick either side of the close.
pub(super) fn book_ticker_event(symbol: &str, c: &Candle, tick: Decimal, now: i64) -> Value {
    json!({"e": "bookTicker", "u": now, "E": now, "T": now, "s": symbol,
        "b": d(c.close - tick), "B": "1", "a": d(c.close + tick), "A": "1"})
}

/// `<symbol>@aggTrade`: the candle as one trade at its close.
pub(super) fn agg_trade_event(symbol: &str, c: &Candle, now: i64) -> Value {
    json!({"e": "aggTrade", "E": now, "s": symbol, "a": now, "p": d(c.close),
        "q": d(c.volume), "nq": d(c.volume), "f": 0, "l": 0, "T": now, "m": false})
}

/// `<symbol>@ticker`: the 24h ticker under the stream's short names.
pub(super) fn ticker_event(symbol: &str, t: &DayStats, now: i64) -> Value {
    json!({"e": "24hrTicker", "E": now, "s": symbol, "p": d(t.change), "P": d(t.change_percent),
        "w": d(t.weighted_avg), "c": d(t.last), "o": d(t.open), "h": d(t.high), "l": d(t.low),
        "v": d(t.volume), "q": d(t.quote_volume)})
}
