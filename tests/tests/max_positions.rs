//! Twenty entry intents published at once (one transaction, twenty symbols) with the default
//! maximum of 8 positions: execution and exit-brain as processes, the real simulator on twenty
//! random-walk symbols. The exchange is polled the whole time: never more than 8 symbols with a
//! position or an opening order; at the end exactly 8 positions, 12 refusals for that reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use qt_events::{Decimal, Envelope, Event, OpenPosition, OrderKind, PositionSide, RejectReason};
use qt_exchange::Exchange;

#[test]
fn twenty_simultaneous_entries_never_hold_more_than_eight_positions_or_entry_orders_on_the_exchange()
 {
    let symbols: Vec<String> = (1..=20).map(|i| format!("E{i:02}USDT")).collect();
    let list = symbols.join(",");
    let mut stack = common::Stack::start_with(
        "maxpos",
        &["--symbols", &list, "--warmup-candles", "50"],
        &["execution", "exit-brain"],
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ex = stack.exchange();
    let clock = qt_events::clock::system();
    let envs: Vec<Envelope> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let price = rt.block_on(ex.mark_price(s)).unwrap().mark_price;
            // $500 of notional each, half long and half short (inside the side limit).
            let qty = (Decimal::from(500) / price).round_dp(2);
            Envelope::new(
                Event::OpenPosition(OpenPosition {
                    intent_id: format!("e2e-open-{s}"),
                    symbol: s.clone(),
                    side: if i % 2 == 0 {
                        PositionSide::Long
                    } else {
                        PositionSide::Short
                    },
                    quantity: qty,
                    order_type: OrderKind::Market,
                    limit_price: None,
                    leverage: 10,
                    reference_price: price,
                    signal: None,
                }),
                "e2e",
                &*clock,
            )
        })
        .collect();
    stack.publish_all(&envs);

    let mut max_seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let positions = rt.block_on(ex.positions(None)).unwrap();
        let orders = rt.block_on(ex.open_orders(None)).unwrap();
        let busy: HashSet<&str> = positions
            .iter()
            .filter(|p| !p.position_amt.is_zero())
            .map(|p| p.symbol.as_str())
            .chain(
                orders
                    .iter()
                    .filter(|o| !o.reduce_only)
                    .map(|o| o.symbol.as_str()),
            )
            .collect();
        max_seen = max_seen.max(busy.len());
        assert!(
            busy.len() <= 8,
            "{} symbols busy on the exchange: {busy:?}",
            busy.len()
        );
        let (opened, refused) = outcomes(&stack);
        if opened + refused >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{opened} opened, {refused} refused\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (opened, refused) = outcomes(&stack);
    assert_eq!((opened, refused), (8, 12), "{}", stack.logs());
    let held = rt
        .block_on(ex.positions(None))
        .unwrap()
        .into_iter()
        .filter(|p| !p.position_amt.is_zero())
        .count();
    assert_eq!(held, 8, "positions on the exchange at the end");
    assert_eq!(max_seen, 8);
    stack.stop();
}

/// (PositionOpened, OrderRejected for MaxConcurrentPositions) on the streams.
fn outcomes(stack: &common::Stack) -> (usize, usize) {
    let opened = stack
        .stream("positions")
        .iter()
        .filter(|e| matches!(e.event, Event::PositionOpened(_)))
        .count();
    let refused = stack
        .stream("orders")
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::OrderRejected(r)
            if r.reason == RejectReason::MaxConcurrentPositions)
        })
        .count();
    (opened, refused)
}
