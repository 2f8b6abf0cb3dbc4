//! Builders of the events tests make again and again, through the real payload types: each
//! gives a valid event from the few values a test cares about, and a test changes any other
//! field with struct update syntax (`PositionOpened { leverage: 3, ..build::opened(…) }`).

use qt_events::clock::ManualClock;
use qt_events::ids::derived_event_id;
use qt_events::{
    CandleClosed, Decimal, Envelope, Event, MarkPriceUpdated, PositionClosed, PositionOpened,
    PositionSide,
};

/// Five minutes in ms: the interval of [`candle`].
pub const FIVE_MIN_MS: i64 = 300_000;

/// An envelope from `src` stamped `at_ms`, with an id derived from `id` (so a test that sends
/// the same `id` twice sends a duplicate).
pub fn envelope(event: Event, src: &str, id: &str, at_ms: i64) -> Envelope {
    Envelope::new(event, src, &ManualClock::new(at_ms)).with_id(derived_event_id(&["test", id]))
}

/// A closed 5m candle of `symbol` opening at `open_time` whose open, high, low and close are all
/// `close`, with a volume of 1.
pub fn candle(symbol: &str, open_time: i64, close: Decimal) -> CandleClosed {
    CandleClosed {
        symbol: symbol.into(),
        interval: "5m".into(),
        open_time,
        close_time: open_time + FIVE_MIN_MS - 1,
        open: close,
        high: close,
        low: close,
        close,
        volume: Decimal::ONE,
        quote_volume: close,
        trades: 1,
    }
}

/// A mark price of `symbol` at `at_ms`.
pub fn mark(symbol: &str, price: Decimal, at_ms: i64) -> MarkPriceUpdated {
    MarkPriceUpdated {
        symbol: symbol.into(),
        mark_price: price,
        index_price: None,
        funding_rate: None,
        event_time: at_ms,
    }
}

/// A position of `symbol` opened at `at_ms` (id `<symbol>-pos`, intent `<symbol>-intent`,
/// leverage 5, no signal).
pub fn opened(
    symbol: &str,
    side: PositionSide,
    quantity: Decimal,
    entry_price: Decimal,
    at_ms: i64,
) -> PositionOpened {
    PositionOpened {
        position_id: format!("{symbol}-pos"),
        symbol: symbol.into(),
        side,
        quantity,
        entry_price,
        leverage: 5,
        intent_id: format!("{symbol}-intent"),
        opened_at: at_ms,
        signal: None,
    }
}

/// `opened` closed whole at `exit_price` at `at_ms`: realized PnL from the prices, the side and
/// the quantity; net PnL after `fees`.
pub fn closed(
    opened: &PositionOpened,
    exit_price: Decimal,
    fees: Decimal,
    at_ms: i64,
    reason: &str,
) -> PositionClosed {
    let direction = match opened.side {
        PositionSide::Long => Decimal::ONE,
        PositionSide::Short => -Decimal::ONE,
    };
    let realized_pnl = (exit_price - opened.entry_price) * opened.quantity * direction;
    PositionClosed {
        position_id: opened.position_id.clone(),
        symbol: opened.symbol.clone(),
        side: opened.side,
        max_quantity: opened.quantity,
        entry_price: opened.entry_price,
        exit_price,
        realized_pnl,
        fees,
        net_pnl: realized_pnl - fees,
        opened_at: opened.opened_at,
        closed_at: at_ms,
        reason: reason.into(),
        signal: opened.signal.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_closed_lower_earns_and_fees_come_off_the_net() {
        let o = opened(
            "ETHUSDT",
            PositionSide::Short,
            Decimal::TWO,
            Decimal::from(2000),
            1,
        );
        let c = closed(&o, Decimal::from(1900), Decimal::from(3), 2, "take_profit");
        assert_eq!(c.realized_pnl, Decimal::from(200));
        assert_eq!(c.net_pnl, Decimal::from(197));
        assert_eq!((c.opened_at, c.closed_at), (1, 2));
    }

    #[test]
    fn the_same_id_gives_the_same_envelope_id() {
        let e = |id| {
            envelope(
                Event::MarkPriceUpdated(mark("X", Decimal::ONE, 5)),
                "t",
                id,
                5,
            )
        };
        assert_eq!(e("a").id, e("a").id);
        assert_ne!(e("a").id, e("b").id);
    }
}
