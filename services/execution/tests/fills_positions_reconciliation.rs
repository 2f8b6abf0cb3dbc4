//! Fills, positions, conditional orders, reconciliation, close-all and the portfolio's daily
//! PnL, against the real simulator with a real Redis and a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use qt_bus::{Delivery, Handler};
use qt_events::{
    CloseAll, ClosePosition, Envelope, Event, OrderKind, PortfolioSnapshot, PositionSide,
    ProtectPosition, RejectReason, StopLeg, Stream, TakeProfitLeg, TrailingLeg, WorkingType,
};
use qt_exchange::{Exchange, NewOrder};
use rust_decimal::Decimal;

fn delivery(stream: Stream, envelope: Envelope) -> Delivery {
    Delivery {
        stream,
        entry_id: "1-0".into(),
        envelope,
        deliveries: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_fills_open_and_close_a_position_with_pnl_net_of_fees_once() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-pnl", "0.01", mark))
        .await
        .unwrap();
    let opened = fx
        .wait_event(Stream::Positions, "PositionOpened", |e| {
            matches!(e, Event::PositionOpened(_))
        })
        .await;
    let Event::PositionOpened(o) = &opened.event else {
        unreachable!()
    };
    assert_eq!(o.quantity, dec("0.01"));
    assert_eq!(o.side, PositionSide::Long);
    assert_eq!(o.signal.as_ref().unwrap().model_version, "m-7");
    fx.wait_event(Stream::Orders, "OrderFilled", |e| {
        matches!(e, Event::OrderFilled(_))
    })
    .await;
    // Whichever came first from the exchange, the acceptance precedes the fill on the stream.
    let orders = fx.events(Stream::Orders).await;
    let accepted = orders
        .iter()
        .position(|e| matches!(e.event, Event::OrderAccepted(_)));
    let filled = orders
        .iter()
        .position(|e| matches!(e.event, Event::OrderFilled(_)));
    assert!(accepted.is_some() && accepted < filled, "{orders:?}");

    // Price moves up 1%, then the position is closed.
    fx.set_mark((mark * dec("1.01")).round_dp(1)).await;
    let close = fx.bus.envelope(Event::ClosePosition(ClosePosition {
        intent_id: "intent-pnl-close".into(),
        symbol: SYMBOL.into(),
        reason: "manual".into(),
        position_side: None,
    }));
    ex.handle_intent(&close).await.unwrap();
    let closed = fx
        .wait_event(Stream::Positions, "PositionClosed", |e| {
            matches!(e, Event::PositionClosed(_))
        })
        .await;
    let Event::PositionClosed(c) = &closed.event else {
        unreachable!()
    };
    assert!(c.fees > Decimal::ZERO, "fees are charged: {c:?}");
    assert_eq!(c.net_pnl, c.realized_pnl - c.fees);
    assert_eq!(
        c.realized_pnl,
        ((c.exit_price - c.entry_price) * dec("0.01")).round_dp(8),
        "{c:?}"
    );
    assert_eq!(c.reason, "manual");
    assert_eq!(c.position_id, o.position_id);
    let trades = ex.db.closed_trades().await.unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].2.as_deref(), Some("m-7"));
    assert!(trades[0].3.as_deref().unwrap().contains("rsi_14"));

    // Polling after the stream changes nothing: the fills are applied once.
    ex.poll_orders().await.unwrap();
    assert_eq!(ex.db.fill_count().await.unwrap(), 2);
    let closes = fx
        .events(Stream::Positions)
        .await
        .into_iter()
        .filter(|e| matches!(e.event, Event::PositionClosed(_)))
        .map(|e| e.id)
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(closes.len(), 1);
    assert!(ex.book.lock().await.positions().is_empty());
    stream.cancel();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_recovers_fills_the_stream_missed() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    // No user stream is running: the fill is only seen by polling.
    ex.handle_intent(&open_intent(&fx.bus, "intent-poll", "0.01", mark))
        .await
        .unwrap();
    ex.poll_orders().await.unwrap();
    let opened = fx
        .wait_event(Stream::Positions, "PositionOpened", |e| {
            matches!(e, Event::PositionOpened(_))
        })
        .await;
    let Event::PositionOpened(o) = &opened.event else {
        unreachable!()
    };
    assert_eq!(o.quantity, dec("0.01"));
    ex.poll_orders().await.unwrap();
    assert_eq!(ex.db.fill_count().await.unwrap(), 1);
    assert_eq!(ex.db.open_positions().await.unwrap().len(), 1);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protective_stop_goes_to_the_algo_endpoint_and_its_fill_closes_the_position_as_stop() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-protect", "0.01", mark))
        .await
        .unwrap();
    fx.wait_event(Stream::Positions, "PositionOpened", |e| {
        matches!(e, Event::PositionOpened(_))
    })
    .await;
    let stop_at = (mark * dec("0.98")).round_dp(1);
    let protect = fx.bus.envelope(Event::ProtectPosition(ProtectPosition {
        intent_id: "protect-1".into(),
        symbol: SYMBOL.into(),
        position_side: PositionSide::Long,
        stop: Some(StopLeg {
            trigger_price: stop_at,
            working_type: WorkingType::MarkPrice,
        }),
        take_profits: vec![TakeProfitLeg {
            leg: "tp1".into(),
            trigger_price: (mark * dec("1.03")).round_dp(1),
            quantity: dec("0.005"),
        }],
        trailing: Some(TrailingLeg {
            activation_price: (mark * dec("1.02")).round_dp(1),
            callback_rate: dec("1"),
            quantity: dec("0.005"),
        }),
    }));
    let out = ex.handle_intent(&protect).await.unwrap();
    let kinds: Vec<OrderKind> = out
        .iter()
        .filter_map(|e| match &e.event {
            Event::OrderAccepted(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            OrderKind::StopMarket,
            OrderKind::TakeProfitMarket,
            OrderKind::TrailingStopMarket
        ]
    );
    let algos = || async { fx.client.open_algo_orders(Some(SYMBOL)).await.unwrap() };
    assert_eq!(algos().await.len(), 3);
    // Redelivery places nothing new.
    ex.handle_intent(&protect).await.unwrap();
    assert_eq!(algos().await.len(), 3);
    // A newer intent naming the stop again replaces it (break-even move): the old one is
    // cancelled, the other legs stay.
    let first_stop = qt_events::ids::client_order_id("protect-1", "stop");
    let moved = fx.bus.envelope(Event::ProtectPosition(ProtectPosition {
        intent_id: "protect-2".into(),
        symbol: SYMBOL.into(),
        position_side: PositionSide::Long,
        stop: Some(StopLeg {
            trigger_price: stop_at + Decimal::TEN,
            working_type: WorkingType::MarkPrice,
        }),
        take_profits: vec![],
        trailing: None,
    }));
    let out = ex.handle_intent(&moved).await.unwrap();
    assert!(
        out.iter().any(
            |e| matches!(&e.event, Event::OrderCancelled(c) if c.client_order_id == first_stop)
        ),
        "{out:?}"
    );
    let live = algos().await;
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|a| a.client_algo_id != first_stop));
    let stop_at = stop_at + Decimal::TEN;

    fx.set_mark(stop_at - Decimal::ONE).await;
    let closed = fx
        .wait_event(Stream::Positions, "PositionClosed", |e| {
            matches!(e, Event::PositionClosed(_))
        })
        .await;
    let Event::PositionClosed(c) = &closed.event else {
        unreachable!()
    };
    assert_eq!(c.reason, "stop");
    assert!(c.realized_pnl < Decimal::ZERO);
    assert_eq!(fx.position_amt().await, Decimal::ZERO);
    stream.cancel();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_the_price_is_already_through_closes_the_position_at_market_in_the_same_intent() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-through", "0.01", mark))
        .await
        .unwrap();
    fx.wait_event(Stream::Positions, "PositionOpened", |e| {
        matches!(e, Event::PositionOpened(_))
    })
    .await;
    // A long's stop above the mark: the exchange refuses it (-2021).
    let protect = fx.bus.envelope(Event::ProtectPosition(ProtectPosition {
        intent_id: "protect-through".into(),
        symbol: SYMBOL.into(),
        position_side: PositionSide::Long,
        stop: Some(StopLeg {
            trigger_price: (mark * dec("1.01")).round_dp(1),
            working_type: WorkingType::MarkPrice,
        }),
        take_profits: vec![TakeProfitLeg {
            leg: "tp1".into(),
            trigger_price: (mark * dec("1.03")).round_dp(1),
            quantity: dec("0.005"),
        }],
        trailing: None,
    }));
    let out = ex.handle_intent(&protect).await.unwrap();
    assert!(
        out.iter()
            .any(|e| matches!(&e.event, Event::OrderRejected(r)
            if r.reason == RejectReason::WouldImmediatelyTrigger)),
        "{out:?}"
    );
    let close_coid =
        qt_events::ids::client_order_id("protect-through", ProtectPosition::STOP_CLOSE_LEG);
    assert!(
        out.iter()
            .any(|e| matches!(&e.event, Event::OrderAccepted(a)
            if a.client_order_id == close_coid && a.kind == OrderKind::Market)),
        "{out:?}"
    );
    assert_eq!(fx.position_amt().await, Decimal::ZERO);
    // Nothing was left to protect: the take-profit was not placed.
    assert!(
        fx.client
            .open_algo_orders(Some(SYMBOL))
            .await
            .unwrap()
            .is_empty()
    );
    let closed = fx
        .wait_event(Stream::Positions, "PositionClosed", |e| {
            matches!(e, Event::PositionClosed(_))
        })
        .await;
    let Event::PositionClosed(c) = &closed.event else {
        unreachable!()
    };
    assert_eq!(c.reason, "stop");
    // A redelivery answers the same and sends no second order.
    ex.poll_orders().await.unwrap();
    let fills = ex.db.fill_count().await.unwrap();
    assert_eq!(fills, 2, "the entry and the close");
    let again = ex.handle_intent(&protect).await.unwrap();
    assert!(
        again
            .iter()
            .any(|e| matches!(&e.event, Event::OrderAccepted(a)
            if a.client_order_id == close_coid)),
        "{again:?}"
    );
    ex.poll_orders().await.unwrap();
    assert_eq!(ex.db.fill_count().await.unwrap(), fills);
    assert_eq!(fx.position_amt().await, Decimal::ZERO);
    stream.cancel();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protect_intent_skips_the_legs_a_later_one_replaces_but_never_leaves_a_position_without_a_stop()
 {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-burst", "0.01", mark))
        .await
        .unwrap();
    let protect = |id: &str, stop_pct: &str, tps: &[(&str, &str)]| {
        fx.bus.envelope(Event::ProtectPosition(ProtectPosition {
            intent_id: id.into(),
            symbol: SYMBOL.into(),
            position_side: PositionSide::Long,
            stop: Some(StopLeg {
                trigger_price: (mark * dec(stop_pct)).round_dp(1),
                working_type: WorkingType::MarkPrice,
            }),
            take_profits: tps
                .iter()
                .map(|(leg, pct)| TakeProfitLeg {
                    leg: (*leg).into(),
                    trigger_price: (mark * dec(pct)).round_dp(1),
                    quantity: dec("0.005"),
                })
                .collect(),
            trailing: None,
        }))
    };
    // A burst: the second intent names the stop and tp1 again, not tp2.
    let p1 = protect("burst-1", "0.98", &[("tp1", "1.02"), ("tp2", "1.03")]);
    let p2 = protect("burst-2", "0.97", &[("tp1", "1.025")]);
    let id1 = fx.bus.publish(&p1).await.unwrap();
    let id2 = fx.bus.publish(&p2).await.unwrap();
    let coid = qt_events::ids::client_order_id;
    let outcome = |out: &[Envelope]| {
        let mut v: Vec<(String, String)> = out
            .iter()
            .filter_map(|e| match &e.event {
                Event::OrderAccepted(a) => Some((a.client_order_id.clone(), "accepted".into())),
                Event::OrderRejected(r) => Some((
                    r.client_order_id.clone().unwrap_or_default(),
                    format!("{:?}", r.reason),
                )),
                _ => None,
            })
            .collect();
        v.sort();
        v
    };
    // The position has no stop yet: the first intent's stop goes all the same (it closes the
    // whole position, so it protects as well as the later one); its tp1 is skipped.
    let first = ex.handle_intent_at(&p1, Some(&id1)).await.unwrap();
    let mut want = vec![
        (coid("burst-1", "stop"), "accepted".to_owned()),
        (coid("burst-1", "tp1"), "Superseded".to_owned()),
        (coid("burst-1", "tp2"), "accepted".to_owned()),
    ];
    want.sort();
    assert_eq!(outcome(&first), want);
    ex.handle_intent_at(&p2, Some(&id2)).await.unwrap();
    let live = || async {
        let mut ids: Vec<String> = fx
            .client
            .open_algo_orders(Some(SYMBOL))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.client_algo_id)
            .collect();
        ids.sort();
        ids
    };
    // The second intent's stop replaced the first's.
    let mut expected = vec![
        coid("burst-1", "tp2"),
        coid("burst-2", "stop"),
        coid("burst-2", "tp1"),
    ];
    expected.sort();
    assert_eq!(live().await, expected);
    // The first intent coming back after the second was handled (a transient failure, then
    // the janitor) answers as before and leaves the newer legs alone.
    let again = ex.handle_intent_at(&p1, Some(&id1)).await.unwrap();
    assert_eq!(outcome(&again), want);
    assert_eq!(live().await, expected);

    // With a stop working, a superseded stop is skipped like any other leg.
    let p3 = protect("burst-3", "0.96", &[("tp1", "1.03")]);
    let p4 = protect("burst-4", "0.95", &[("tp1", "1.035")]);
    let id3 = fx.bus.publish(&p3).await.unwrap();
    let id4 = fx.bus.publish(&p4).await.unwrap();
    let third = ex.handle_intent_at(&p3, Some(&id3)).await.unwrap();
    let mut want3 = vec![
        (coid("burst-3", "stop"), "Superseded".to_owned()),
        (coid("burst-3", "tp1"), "Superseded".to_owned()),
    ];
    want3.sort();
    assert_eq!(outcome(&third), want3);
    assert_eq!(
        live().await,
        expected,
        "burst-2's legs stay until burst-4's replace them"
    );
    ex.handle_intent_at(&p4, Some(&id4)).await.unwrap();
    let mut expected4 = vec![
        coid("burst-1", "tp2"),
        coid("burst-4", "stop"),
        coid("burst-4", "tp1"),
    ];
    expected4.sort();
    assert_eq!(live().await, expected4);
    // What reached the simulator: every leg placed above, none of the superseded ones.
    let placed = fx.all_algo_orders().await;
    let mut seen = vec![
        coid("burst-1", "stop"),
        coid("burst-1", "tp2"),
        coid("burst-2", "stop"),
        coid("burst-2", "tp1"),
        coid("burst-4", "stop"),
        coid("burst-4", "tp1"),
    ];
    seen.sort();
    assert_eq!(placed, seen, "every conditional order the simulator saw");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_adopts_an_unknown_position_and_closes_a_vanished_one_with_alerts() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    // Someone trades behind execution's back.
    fx.client
        .new_order(
            &NewOrder::market(SYMBOL, qt_events::Side::Sell, dec("0.02"), "manual-1")
                .with_reference_price(mark),
        )
        .await
        .unwrap();
    let alerts = ex.reconcile().await.unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| matches!(&a.event, Event::AlertRaised(r) if r.rule == "position_mismatch")),
        "{alerts:?}"
    );
    assert!(
        alerts
            .iter()
            .any(|a| matches!(&a.event, Event::AlertRaised(r) if r.rule == "unknown_order"))
            || fx
                .client
                .open_orders(Some(SYMBOL))
                .await
                .unwrap()
                .is_empty()
    );
    let opened = fx
        .wait_event(Stream::Positions, "PositionOpened", |e| {
            matches!(e, Event::PositionOpened(_))
        })
        .await;
    let Event::PositionOpened(o) = &opened.event else {
        unreachable!()
    };
    assert_eq!((o.side, o.quantity), (PositionSide::Short, dec("0.02")));
    fx.wait_event(Stream::Alerts, "AlertRaised", |e| {
        matches!(e, Event::AlertRaised(_))
    })
    .await;
    assert_eq!(ex.book.lock().await.positions()[SYMBOL].qty, dec("0.02"));
    // A second pass finds nothing to correct.
    assert!(ex.reconcile().await.unwrap().is_empty());

    // The position vanishes on the exchange (closed by hand).
    fx.client
        .new_order(
            &NewOrder::market(SYMBOL, qt_events::Side::Buy, dec("0.02"), "manual-2")
                .reduce_only(true),
        )
        .await
        .unwrap();
    // Past the first pass after a start, a difference is acted on when two passes in a row see
    // the same one (a fill may be on its way).
    assert!(
        ex.reconcile().await.unwrap().is_empty(),
        "one sighting is not acted on"
    );
    assert_eq!(ex.db.open_positions().await.unwrap().len(), 1);
    let alerts = ex.reconcile().await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let closed = fx
        .wait_event(Stream::Positions, "PositionClosed", |e| {
            matches!(e, Event::PositionClosed(_))
        })
        .await;
    let Event::PositionClosed(c) = &closed.event else {
        unreachable!()
    };
    assert_eq!(c.reason, "reconciled");
    assert!(ex.db.open_positions().await.unwrap().is_empty());
    assert!(ex.book.lock().await.positions().is_empty());
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_all_cancels_protection_and_closes_every_position() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let stream = follow_user_stream(&fx, &ex);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mark = fx.mark().await;
    ex.handle_intent(&open_intent(&fx.bus, "intent-ca", "0.01", mark))
        .await
        .unwrap();
    let protect = fx.bus.envelope(Event::ProtectPosition(ProtectPosition {
        intent_id: "protect-ca".into(),
        symbol: SYMBOL.into(),
        position_side: PositionSide::Long,
        stop: Some(StopLeg {
            trigger_price: (mark * dec("0.97")).round_dp(1),
            working_type: WorkingType::MarkPrice,
        }),
        take_profits: vec![],
        trailing: None,
    }));
    ex.handle_intent(&protect).await.unwrap();
    assert_eq!(
        fx.client
            .open_algo_orders(Some(SYMBOL))
            .await
            .unwrap()
            .len(),
        1
    );
    let mut control = execution::ControlHandler(ex.clone());
    let cmd = fx.bus.envelope(Event::CloseAll(CloseAll {
        command_id: "close-all-1".into(),
        reason: "test".into(),
        requested_by: "test".into(),
    }));
    let out = control
        .handle(&delivery(Stream::Control, cmd))
        .await
        .unwrap();
    assert!(
        out.publish
            .iter()
            .any(|e| matches!(e.event, Event::OrderCancelled(_)))
    );
    assert!(
        out.publish
            .iter()
            .any(|e| matches!(e.event, Event::OrderAccepted(_)))
    );
    assert_eq!(fx.position_amt().await, Decimal::ZERO);
    assert!(
        fx.client
            .open_algo_orders(Some(SYMBOL))
            .await
            .unwrap()
            .is_empty()
    );
    let closed = fx
        .wait_event(Stream::Positions, "PositionClosed", |e| {
            matches!(e, Event::PositionClosed(_))
        })
        .await;
    let Event::PositionClosed(c) = &closed.event else {
        unreachable!()
    };
    assert_eq!(c.reason, "close_all");
    stream.cancel();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolio_daily_loss_stops_new_entries() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mut handler = execution::PortfolioHandler(ex.clone());
    let now = qt_events::clock::system().now_ms();
    let snap = fx.bus.envelope(Event::PortfolioSnapshot(PortfolioSnapshot {
        ts: now,
        equity: dec("10000"),
        wallet_balance: dec("10000"),
        unrealized_pnl: Decimal::ZERO,
        realized_pnl_today: dec("-200"),
        daily_pnl: dec("-200"),
        gross_exposure: Decimal::ZERO,
        net_exposure: Decimal::ZERO,
        long_exposure: Decimal::ZERO,
        short_exposure: Decimal::ZERO,
        open_positions: 0,
    }));
    handler
        .handle(&delivery(Stream::Portfolio, snap))
        .await
        .unwrap();
    let mark = fx.mark().await;
    let out = ex
        .handle_intent(&open_intent(&fx.bus, "intent-after-loss", "0.001", mark))
        .await
        .unwrap();
    // The breach starts the pause; the refusal says when it ends, so the bot can wait it out.
    let Event::OrderRejected(r) = &out[0].event else {
        panic!("{out:?}")
    };
    assert_eq!(r.reason, RejectReason::DailyLossPause, "{r:?}");
    let until = r.until_ms.expect("the pause's end");
    assert!(until > now, "{until} > {now}");
    assert!(fx.all_orders().await.is_empty());
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_settles_orders_left_sending_adopting_or_releasing_them() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let old = fx.client.server_now_ms() - execution::reconcile::ORPHAN_AFTER_MS - 1_000;
    let row = |intent: &str| execution::OrderRecord {
        client_order_id: qt_events::ids::client_order_id(intent, "entry"),
        intent_id: intent.into(),
        leg: execution::Leg::Entry,
        symbol: SYMBOL.into(),
        side: qt_events::Side::Buy,
        spec: execution::OrderSpec::Plain(execution::PlainOrder {
            pricing: execution::Pricing::Market,
            quantity: dec("0.01"),
            reduce_only: false,
            leverage: 5,
            reference_price: Some(mark),
            signal: None,
        }),
        state: execution::OrderState::Sending,
        exchange_order_id: None,
        filled_qty: Decimal::ZERO,
        avg_price: Decimal::ZERO,
        exit_reason: None,
        rejection: None,
        sent_at: old,
        updated_at: old,
    };
    let reached = row("orphan-reached");
    let never = row("orphan-never");
    assert!(ex.db.record_order(&reached).await.unwrap());
    assert!(ex.db.record_order(&never).await.unwrap());
    {
        let mut book = ex.book.lock().await;
        for r in [&reached, &never] {
            book.on_accepted(
                &r.intent_id,
                qt_risk::InFlight {
                    symbol: SYMBOL.into(),
                    side: qt_events::Side::Buy,
                    remaining_qty: dec("0.01"),
                    reference_price: mark,
                    reduce_only: false,
                },
            );
        }
    }
    // Only the first one reached the exchange before its handler died.
    fx.client
        .new_order(
            &NewOrder::market(
                SYMBOL,
                qt_events::Side::Buy,
                dec("0.01"),
                &reached.client_order_id,
            )
            .with_reference_price(mark),
        )
        .await
        .unwrap();
    let alerts = ex.reconcile().await.unwrap();
    let orphan_alerts = alerts
        .iter()
        .filter(|a| matches!(&a.event, Event::AlertRaised(r) if r.rule == "orphan_order_settled"))
        .count();
    assert_eq!(orphan_alerts, 2, "{alerts:?}");
    assert_eq!(
        alerts.len(),
        2,
        "the adopted order's fill is recorded, no position mismatch"
    );
    assert_eq!(
        ex.db.open_positions().await.unwrap()[0].quantity,
        dec("0.01")
    );
    assert!(ex.reconcile().await.unwrap().is_empty());
    let a = ex
        .db
        .order(&reached.client_order_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            a.state,
            execution::OrderState::Acked | execution::OrderState::Filled
        ),
        "{a:?}"
    );
    let n = ex.db.order(&never.client_order_id).await.unwrap().unwrap();
    assert_eq!(n.state, execution::OrderState::Rejected);
    assert!(
        !ex.book
            .lock()
            .await
            .in_flight()
            .contains_key("orphan-never")
    );
    fx.wait_event(
        Stream::Orders,
        "OrderAccepted of the adopted order",
        |e| matches!(e, Event::OrderAccepted(x) if x.client_order_id == reached.client_order_id),
    )
    .await;
    assert_eq!(fx.all_orders().await.len(), 1, "nothing was resent");
    fx.stop().await;
}
