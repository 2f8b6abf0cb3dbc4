//! One trade through the whole system, as processes over real Redis and the real simulator:
//! a signal becomes an open intent, an order and its fill; exit-brain's stop rests on the
//! exchange as a conditional order; a stop or target fills; the position closes with a PnL equal
//! to its fills minus their fees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use qt_events::Decimal;
use qt_events::{Event, OrderKind, PositionSide, Side};
use qt_exchange::{Exchange, OrderType};

#[test]
fn a_signal_becomes_an_order_a_fill_a_stop_on_the_exchange_and_a_closed_position_with_pnl_equal_to_fills_minus_fees()
 {
    let mut stack = common::Stack::start("life", &[]);
    one_trade(&mut stack);
}

#[test]
fn the_same_trade_works_with_execution_and_exit_brain_on_postgres() {
    let Some(pg) = qt_store::pg::PgServer::start() else {
        return;
    };
    let url = pg.url();
    let mut stack = common::Stack::start("lifepg", &[("QT_DATABASE_URL", &url)]);
    one_trade(&mut stack);
    // Neither service fell back to its SQLite file.
    for name in ["execution", "exit-brain"] {
        let file = stack.dir.path().join(name).join(format!("{name}.db"));
        assert!(!file.exists(), "{name} wrote {}", file.display());
    }
}

fn one_trade(stack: &mut common::Stack) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ex = stack.exchange();

    // Step until a position opens.
    let deadline = Instant::now() + Duration::from_secs(60);
    let opened = loop {
        assert!(
            Instant::now() < deadline,
            "no position opened\n{}",
            stack.logs()
        );
        stack.step();
        std::thread::sleep(Duration::from_millis(150));
        let found = stack
            .stream("positions")
            .into_iter()
            .find_map(|e| match e.event {
                Event::PositionOpened(p) => Some(p),
                _ => None,
            });
        if let Some(p) = found {
            break p;
        }
    };
    let symbol = opened.symbol.clone();

    // It came from a signal of that symbol that passed the threshold, through an open intent.
    let signals = stack.stream("signals");
    assert!(
        signals.iter().any(|e| matches!(&e.event,
            Event::SignalGenerated(s) if s.symbol == symbol && s.confidence >= 0.5)),
        "no qualifying signal for {symbol}"
    );
    let intents = stack.stream("intents");
    assert!(
        intents.iter().any(|e| matches!(&e.event,
            Event::OpenPosition(i) if i.intent_id == opened.intent_id)),
        "no open intent {}",
        opened.intent_id
    );
    let orders = stack.stream("orders");
    let entry = orders
        .iter()
        .find_map(|e| match &e.event {
            Event::OrderAccepted(o) if o.intent_id == opened.intent_id => Some(o.clone()),
            _ => None,
        })
        .expect("the entry order was accepted");
    assert!(!entry.reduce_only);

    // Exit-brain's stop rests on the exchange as a conditional order, closing side.
    let close_side = match opened.side {
        PositionSide::Long => Side::Sell,
        PositionSide::Short => Side::Buy,
    };
    let stop_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let algos = rt.block_on(ex.open_algo_orders(Some(&symbol))).unwrap();
        if algos
            .iter()
            .any(|a| a.order_type == OrderType::StopMarket && a.side == close_side)
        {
            break;
        }
        assert!(
            Instant::now() < stop_deadline,
            "no stop on the exchange for {symbol}: {algos:?}\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Step until it closes.
    let deadline = Instant::now() + Duration::from_secs(90);
    let closed = loop {
        assert!(
            Instant::now() < deadline,
            "{symbol} never closed\n{}",
            stack.logs()
        );
        stack.step();
        std::thread::sleep(Duration::from_millis(100));
        let found = stack
            .stream("positions")
            .into_iter()
            .find_map(|e| match e.event {
                Event::PositionClosed(p) if p.position_id == opened.position_id => Some(p),
                _ => None,
            });
        if let Some(p) = found {
            break p;
        }
    };
    std::thread::sleep(Duration::from_millis(300));

    // The fills of that symbol (one position on it in this run).
    let opens_on_symbol = stack
        .stream("positions")
        .iter()
        .filter(|e| matches!(&e.event, Event::PositionOpened(p) if p.symbol == symbol))
        .count();
    assert_eq!(opens_on_symbol, 1, "one position on {symbol} in this run");
    let fills: Vec<_> = stack
        .stream("orders")
        .into_iter()
        .filter_map(|e| match e.event {
            Event::OrderFilled(f) | Event::OrderPartiallyFilled(f) if f.symbol == symbol => Some(f),
            _ => None,
        })
        .collect();
    assert!(
        fills
            .iter()
            .any(|f| f.client_order_id == entry.client_order_id),
        "the entry order filled"
    );
    // A stop or a target closed it (a conditional order's fill, not a market close).
    assert!(
        fills.iter().any(|f| matches!(
            f.kind,
            OrderKind::StopMarket | OrderKind::TakeProfitMarket | OrderKind::TrailingStopMarket
        )),
        "no stop or target fill: {fills:?}"
    );
    let signed = |f: &qt_events::OrderFill| match f.side {
        Side::Sell => f.last_qty * f.last_price,
        Side::Buy => -(f.last_qty * f.last_price),
    };
    let gross: Decimal = fills.iter().map(signed).sum();
    let fees: Decimal = fills.iter().map(|f| f.fee).sum();
    let net_qty: Decimal = fills
        .iter()
        .map(|f| match f.side {
            Side::Buy => f.last_qty,
            Side::Sell => -f.last_qty,
        })
        .sum();
    assert_eq!(net_qty, Decimal::ZERO, "the fills leave no position");
    assert_eq!(closed.realized_pnl, gross, "gross PnL = sells - buys");
    assert_eq!(closed.fees, fees, "fees = sum of the fills' fees");
    assert_eq!(closed.net_pnl, gross - fees, "net PnL = fills minus fees");

    // Nothing left on the exchange for that symbol.
    let positions = rt.block_on(ex.positions(Some(&symbol))).unwrap();
    assert!(
        positions.iter().all(|p| p.position_amt.is_zero()),
        "{positions:?}"
    );
    stack.stop();
}
