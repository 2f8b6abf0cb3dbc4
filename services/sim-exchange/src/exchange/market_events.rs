//! The market-stream messages of a closed candle (or a new mark): klines of the base interval
//! and of the 15m / 1h / 4h aggregates it completes, mark price, book ticker, aggregate trade
//! and the 24h ticker.

use super::events;
use super::{Exchange, MarketEvent};

impl Exchange {
    /// Queue the market events of `symbol`'s last closed candle.
    pub(super) fn queue_market_events(&mut self, symbol: &str, now: i64) {
        let Some(m) = self.market.get(symbol) else {
            return;
        };
        let Some(c) = m.current().copied() else {
            return;
        };
        let lower = symbol.to_ascii_lowercase();
        let interval_ms = m.interval_ms;
        let mark = m.mark_price();
        let tick = m.spec.tick_size;
        let mut intervals = vec![interval_ms];
        for extra in [900_000i64, 3_600_000, 14_400_000] {
            if extra > interval_ms && extra % interval_ms == 0 {
                intervals.push(extra);
            }
        }
        let mut out = Vec::new();
        for iv in intervals {
            let Ok(name) = qt_candles::interval_name(iv) else {
                continue;
            };
            let k = if iv == interval_ms {
                Some(c)
            } else if (c.open_time + interval_ms) % iv == 0 {
                self.market
                    .klines(symbol, iv, None, None, 1)
                    .and_then(|v| v.last().copied())
                    .filter(|k| k.open_time + iv == c.open_time + interval_ms)
            } else {
                None
            };
            if let Some(k) = k {
                out.push(MarketEvent {
                    stream: format!("{lower}@kline_{name}"),
                    payload: events::kline_event(symbol, &name, &k, iv, now),
                });
            }
        }
        let next = self
            .next_funding(symbol)
            .unwrap_or((0, self.rules.funding.default_rate));
        let mark_payload = events::mark_price_event(symbol, mark, next, now);
        out.push(MarketEvent {
            stream: format!("{lower}@markPrice"),
            payload: mark_payload.clone(),
        });
        out.push(MarketEvent {
            stream: format!("{lower}@markPrice@1s"),
            payload: mark_payload,
        });
        out.push(MarketEvent {
            stream: format!("{lower}@bookTicker"),
            payload: events::book_ticker_event(symbol, &c, tick, now),
        });
        out.push(MarketEvent {
            stream: format!("{lower}@aggTrade"),
            payload: events::agg_trade_event(symbol, &c, now),
        });
        if let Some(t) = self.market.get(symbol).and_then(|m| m.day_stats()) {
            out.push(MarketEvent {
                stream: format!("{lower}@ticker"),
                payload: events::ticker_event(symbol, &t, now),
            });
        }
        self.market_events.extend(out);
    }
}
