//! Builders of the events exit-brain consumes, through the production constructors.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use qt_events::clock::Clock;
use qt_events::ids::derived_event_id;
use qt_events::{
    Decimal, Envelope, Event, OrderAccepted, OrderFill, OrderKind, PositionChanged, PositionClosed,
    PositionOpened, PositionSide, Side,
};
use qt_testkit::build;

pub fn env(event: Event, id: &str, clock: &dyn Clock) -> Envelope {
    Envelope::new(event, "execution", clock).with_id(derived_event_id(&["test", id]))
}

pub fn opened(pos: &str, symbol: &str, qty: Decimal, price: Decimal, at: i64) -> Event {
    Event::PositionOpened(PositionOpened {
        position_id: pos.into(),
        intent_id: format!("open-{pos}"),
        ..build::opened(symbol, PositionSide::Long, qty, price, at)
    })
}

pub fn changed(pos: &str, symbol: &str, qty: Decimal, price: Decimal, at: i64) -> Event {
    Event::PositionChanged(PositionChanged {
        position_id: pos.into(),
        symbol: symbol.into(),
        side: PositionSide::Long,
        quantity: qty,
        entry_price: price,
        realized_pnl: Decimal::ZERO,
        fees: Decimal::ZERO,
        ts: at,
    })
}

pub fn closed(
    pos: &str,
    symbol: &str,
    qty: Decimal,
    entry: Decimal,
    exit: Decimal,
    at: i64,
    reason: &str,
) -> Event {
    let opened = build::opened(symbol, PositionSide::Long, qty, entry, 0);
    Event::PositionClosed(PositionClosed {
        position_id: pos.into(),
        ..build::closed(&opened, exit, Decimal::ZERO, at, reason)
    })
}

pub fn mark(symbol: &str, price: Decimal, at: i64) -> Event {
    Event::MarkPriceUpdated(build::mark(symbol, price, at))
}

pub fn accepted(intent: &str, coid: &str, symbol: &str, kind: OrderKind) -> Event {
    Event::OrderAccepted(OrderAccepted {
        intent_id: intent.into(),
        client_order_id: coid.into(),
        exchange_order_id: Some("1".into()),
        symbol: symbol.into(),
        side: Side::Sell,
        kind,
        quantity: Decimal::ONE,
        price: None,
        trigger_price: None,
        reduce_only: true,
    })
}

pub fn tp_filled(intent: &str, coid: &str, symbol: &str, qty: Decimal, price: Decimal) -> Event {
    Event::OrderFilled(OrderFill {
        intent_id: intent.into(),
        client_order_id: coid.into(),
        exchange_order_id: Some("2".into()),
        symbol: symbol.into(),
        side: Side::Sell,
        kind: OrderKind::TakeProfitMarket,
        last_qty: qty,
        last_price: price,
        cumulative_qty: qty,
        avg_price: price,
        order_qty: qty,
        fee: Decimal::ZERO,
        fee_asset: "USDT".into(),
        realized_pnl: Decimal::ZERO,
        trade_id: 7,
        reduce_only: true,
        trade_time: 0,
    })
}

/// The `ProtectPosition` among `out`, if any.
pub fn protect_of(out: &[Envelope]) -> Option<&qt_events::ProtectPosition> {
    out.iter().find_map(|e| match &e.event {
        Event::ProtectPosition(p) => Some(p),
        _ => None,
    })
}
