//! The order protocol against the real simulator: a redelivered intent never makes a second
//! order, a crash between SENDING and the response is settled by query, so is a record a crash
//! of the host lost, and the risk guard
//! refuses with reason codes (counting orders in flight).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use execution::OrderState;
use qt_events::{ClosePosition, Event, RejectReason, SetKillSwitch, Stream};
use rust_decimal::Decimal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_open_intent_places_one_order_and_answers_the_same() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let intent = open_intent(&fx.bus, "intent-dup-1", "0.01", mark);

    let first = ex.handle_intent(&intent).await.unwrap();
    let second = ex.handle_intent(&intent).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        matches!(first[0].event, Event::OrderAccepted(_)),
        "{first:?}"
    );
    // Same fact, same deterministic event id: consumers drop the duplicate.
    assert_eq!(first[0].id, second[0].id);
    assert_eq!(
        fx.all_orders().await.len(),
        1,
        "exactly one order on the exchange"
    );
    assert_eq!(fx.position_amt().await, dec("0.01"));

    // After a restart (state from the database) the same intent still finds its record.
    let restarted = fx.execution(settings()).await;
    let third = restarted.handle_intent(&intent).await.unwrap();
    assert_eq!(third[0].id, first[0].id);
    assert_eq!(fx.all_orders().await.len(), 1);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_sending_and_a_lost_response_is_settled_by_query_without_a_second_order() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let intent = open_intent(&fx.bus, "intent-lost-1", "0.01", mark);
    // The simulator executes the order but holds its answer, then answers 503/-1007.
    fx.lose_next_response(3_000).await;
    let task = {
        let ex = ex.clone();
        let intent = intent.clone();
        tokio::spawn(async move { ex.handle_intent(&intent).await })
    };
    // Wait until the order is recorded SENDING, then "kill" the process mid-request.
    let coid = qt_events::ids::client_order_id("intent-lost-1", "entry");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(row) = ex.db.order(&coid).await.unwrap() {
            assert_eq!(row.state, OrderState::Sending);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SENDING never recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    drop(ex);

    // The restarted service gets the intent again (it was never acknowledged).
    let restarted = fx.execution(settings()).await;
    let out = restarted.handle_intent(&intent).await.unwrap();
    assert!(
        matches!(&out[0].event, Event::OrderAccepted(a) if a.client_order_id == coid),
        "{out:?}"
    );
    assert_eq!(fx.all_orders().await.len(), 1, "adopted, not resent");
    assert_eq!(fx.position_amt().await, dec("0.01"));
    let row = restarted.db.order(&coid).await.unwrap().unwrap();
    assert_ne!(row.state, OrderState::Sending);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_host_crash_lost_its_record_a_redelivered_intent_finds_its_order_on_the_exchange() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let intent = open_intent(&fx.bus, "intent-host-1", "0.01", mark);
    let coid = qt_events::ids::client_order_id("intent-host-1", "entry");
    let first = ex.handle_intent(&intent).await.unwrap();
    assert!(
        matches!(first[0].event, Event::OrderAccepted(_)),
        "{first:?}"
    );
    drop(ex);

    // The host crashed before the record reached the disk, and booted again.
    let db = execution::Db::open(&fx.db_url).await.unwrap();
    for sql in [
        "DELETE FROM exec_orders",
        "UPDATE exec_host SET boot_id = 'the-boot-before'",
    ] {
        qt_store::sqlx::query(sql)
            .execute(db.store.pool())
            .await
            .unwrap();
    }
    db.store.close().await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    // The intent, older than this start, is looked up before anything is sent: adopted.
    let restarted = fx.execution(settings()).await;
    let out = restarted.handle_intent(&intent).await.unwrap();
    assert!(
        matches!(&out[0].event, Event::OrderAccepted(a) if a.client_order_id == coid),
        "{out:?}"
    );
    assert_eq!(out[0].id, first[0].id, "the same fact");
    assert_eq!(fx.all_orders().await.len(), 1, "adopted, not sent again");
    assert_ne!(
        restarted.db.order(&coid).await.unwrap().unwrap().state,
        OrderState::Sending
    );
    // An intent of this start is sent at once.
    let out = restarted
        .handle_intent(&open_intent(&fx.bus, "intent-host-2", "0.01", mark))
        .await
        .unwrap();
    assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");
    assert_eq!(fx.all_orders().await.len(), 2);

    // Restarted again on the same boot: nothing is looked up (the record is there anyway).
    let again = fx.execution(settings()).await;
    let out = again.handle_intent(&intent).await.unwrap();
    assert_eq!(out[0].id, first[0].id);
    assert_eq!(fx.all_orders().await.len(), 2);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_response_in_flight_is_adopted_by_query_without_a_second_order() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    fx.lose_next_response(1_500).await;
    let out = ex
        .handle_intent(&open_intent(&fx.bus, "intent-lost-2", "0.01", mark))
        .await
        .unwrap();
    assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");
    assert_eq!(fx.all_orders().await.len(), 1);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_that_never_arrived_waits_out_its_window_without_holding_up_others_then_is_resent_once()
 {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let intent = open_intent(&fx.bus, "intent-503", "0.01", mark);
    // (The first entry sets the symbol's leverage: done here, so the fault hits the order.)
    ex.handle_intent(&open_intent(&fx.bus, "intent-before", "0.01", mark))
        .await
        .unwrap();
    // The placement is answered 503 without being handled: its outcome is unknown, and the
    // exchange does not have it yet — which proves nothing before its receive window closes.
    fx.control("/sim/faults", Some(serde_json::json!({"failNext": 1})))
        .await;
    let first = ex.handle_intent(&intent).await;
    assert!(
        matches!(&first, Err(execution::ExecError::Unavailable(_))),
        "{first:?}"
    );
    // Delivered again at once, it finds its SENDING record and the order not on the exchange:
    // it is put off until the window closes (1 s here), not retried in place.
    let again = ex.handle_intent(&intent).await;
    assert!(
        matches!(&again, Err(execution::ExecError::Later { reason, retry_in })
            if reason.contains("may still arrive")
                && *retry_in >= Duration::from_millis(50)
                && *retry_in <= Duration::from_secs(1)),
        "{again:?}"
    );
    assert_eq!(fx.all_orders().await.len(), 1);
    // The intents behind it are not held up meanwhile.
    let other = ex
        .handle_intent(&open_intent(&fx.bus, "intent-other", "0.01", mark))
        .await
        .unwrap();
    assert!(
        matches!(other[0].event, Event::OrderAccepted(_)),
        "{other:?}"
    );
    // Past the window (1 s here) and the margin, it is resent with the same id, once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let out = ex.handle_intent(&intent).await.unwrap();
    let coid = qt_events::ids::client_order_id("intent-503", "entry");
    assert!(
        matches!(&out[0].event, Event::OrderAccepted(a) if a.client_order_id == coid),
        "{out:?}"
    );
    assert_eq!(fx.all_orders().await.len(), 3);
    assert_eq!(ex.handle_intent(&intent).await.unwrap()[0].id, out[0].id);
    assert_eq!(fx.all_orders().await.len(), 3);
    fx.stop().await;
}

/// A symbol may hold 1,500 of notional, a trade 1,000: two entries of 900 cannot both pass.
fn tight_limits() -> execution::Settings {
    let mut s = settings();
    s.limits.max_symbol_notional = rust_decimal::Decimal::from(1_500);
    s.limits.max_notional_per_trade = rust_decimal::Decimal::from(1_000);
    s
}

/// The quantity worth `notional` at `mark`, as an intent carries it.
fn qty_worth(notional: i64, mark: rust_decimal::Decimal) -> String {
    (rust_decimal::Decimal::from(notional) / mark)
        .round_dp(3)
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_guard_refuses_with_reason_codes_counting_orders_in_flight_and_kill_switch() {
    let fx = fixture().await;
    let s = tight_limits();
    let ex = fx.execution(s.clone()).await;
    let mark = fx.mark().await;
    // Too large for one trade.
    let big = ex
        .handle_intent(&open_intent(&fx.bus, "intent-big", "1", mark))
        .await
        .unwrap();
    assert!(
        matches!(&big[0].event, Event::OrderRejected(r) if r.reason == RejectReason::MaxNotionalPerTrade),
        "{big:?}"
    );
    // Two entries that together pass the symbol limit: the second is refused because the
    // first is counted (in flight or filled) — never both.
    let qty = qty_worth(900, mark);
    let a = ex
        .handle_intent(&open_intent(&fx.bus, "intent-a", &qty, mark))
        .await
        .unwrap();
    assert!(matches!(a[0].event, Event::OrderAccepted(_)), "{a:?}");
    let b = ex
        .handle_intent(&open_intent(&fx.bus, "intent-b", &qty, mark))
        .await
        .unwrap();
    assert!(
        matches!(&b[0].event, Event::OrderRejected(r) if r.reason == RejectReason::MaxSymbolNotional),
        "{b:?}"
    );
    // Kill switch: no new entries, exits still allowed; kept across a restart.
    let control = execution::ControlHandler(ex.clone());
    let kill = fx.bus.envelope(Event::SetKillSwitch(SetKillSwitch {
        command_id: "cmd-kill".into(),
        enabled: true,
        reason: "test".into(),
        requested_by: "test".into(),
    }));
    let mut control = control;
    qt_bus::Handler::handle(
        &mut control,
        &qt_bus::Delivery {
            stream: qt_events::Stream::Control,
            entry_id: "1-0".into(),
            envelope: kill,
            deliveries: 1,
        },
    )
    .await
    .unwrap();
    let restarted = fx.execution(s).await;
    let refused = restarted
        .handle_intent(&open_intent(&fx.bus, "intent-c", "0.001", mark))
        .await
        .unwrap();
    assert!(
        matches!(&refused[0].event, Event::OrderRejected(r) if r.reason == RejectReason::KillSwitch),
        "{refused:?}"
    );
    let close = fx.bus.envelope(Event::ClosePosition(ClosePosition {
        intent_id: "intent-close".into(),
        symbol: SYMBOL.into(),
        reason: "manual".into(),
        position_side: None,
    }));
    let closed = restarted.handle_intent(&close).await.unwrap();
    assert!(
        matches!(closed[0].event, Event::OrderAccepted(_)),
        "{closed:?}"
    );
    assert_eq!(fx.position_amt().await, rust_decimal::Decimal::ZERO);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_in_flight_still_counts_against_the_limits_after_a_restart() {
    let fx = fixture().await;
    let s = tight_limits();
    let ex = fx.execution(s.clone()).await;
    let mark = fx.mark().await;
    let qty = qty_worth(900, mark);
    // A limit entry well below the market rests on the exchange: in flight, nothing filled.
    let mut resting = open_intent(&fx.bus, "intent-resting", &qty, mark);
    if let Event::OpenPosition(o) = &mut resting.event {
        o.order_type = qt_events::OrderKind::Limit;
        o.limit_price = Some((mark * dec("0.8")).round_dp(1));
    }
    let out = ex.handle_intent(&resting).await.unwrap();
    assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");
    // Its record is the only write before the request; the restarted process rebuilds the
    // order in flight from it, so a second entry that would pass the symbol's limit together
    // with it is refused.
    drop(ex);
    let restarted = fx.execution(s).await;
    assert!(
        restarted
            .book
            .lock()
            .await
            .in_flight()
            .contains_key("intent-resting")
    );
    let second = restarted
        .handle_intent(&open_intent(&fx.bus, "intent-second", &qty, mark))
        .await
        .unwrap();
    assert!(
        matches!(&second[0].event, Event::OrderRejected(r) if r.reason == RejectReason::MaxSymbolNotional),
        "{second:?}"
    );
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_redelivered_kill_switch_command_does_not_flip_a_newer_setting_back() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mut control = execution::ControlHandler(ex.clone());
    let cmd = |enabled: bool, id: &str| {
        fx.bus.envelope(Event::SetKillSwitch(SetKillSwitch {
            command_id: id.into(),
            enabled,
            reason: "test".into(),
            requested_by: "test".into(),
        }))
    };
    let on = cmd(true, "on");
    let off = cmd(false, "off");
    for env in [&on, &off, &on] {
        qt_bus::Handler::handle(
            &mut control,
            &qt_bus::Delivery {
                stream: qt_events::Stream::Control,
                entry_id: "1-0".into(),
                envelope: env.clone(),
                deliveries: 1,
            },
        )
        .await
        .unwrap();
    }
    assert!(!ex.book.lock().await.kill_switch);
    let mark = fx.mark().await;
    let out = ex
        .handle_intent(&open_intent(&fx.bus, "intent-after-off", "0.01", mark))
        .await
        .unwrap();
    assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_past_their_share_of_the_budget_wait_without_holding_up_stops_and_closes() {
    let fx = fixture().await;
    // Ten orders per 10 s: entries may use three, take-profits five, stops and closes all ten.
    let mut xcfg = fx.xcfg.clone();
    xcfg.order_limit_10s = 10;
    xcfg.opening_order_share_pct = 30;
    xcfg.reducing_order_share_pct = 50;
    let client = qt_exchange::BinanceClient::new(xcfg, qt_events::clock::system()).unwrap();
    qt_exchange::Exchange::sync_time(&client).await.unwrap();
    // The limiter's windows are the clock's: start in the first half of one, so the budget
    // cannot come back in the middle of the test.
    let in_window = qt_events::clock::system().now_ms() % 10_000;
    if in_window > 4_000 {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(10_050 - in_window).unwrap(),
        ))
        .await;
    }
    // One lane: the intents here are handled one at a time, so a check need not leave room
    // for other lanes' orders in flight.
    let mut one_lane = settings();
    one_lane.intent_lanes = 1;
    let ex = fx.execution_with(client, one_lane).await;
    let mark = fx.mark().await;
    let first = open_intent(&fx.bus, "budget-1", "0.01", mark);
    for intent in [
        &first,
        &open_intent(&fx.bus, "budget-2", "0.01", mark),
        &open_intent(&fx.bus, "budget-3", "0.01", mark),
    ] {
        let out = ex.handle_intent(intent).await.unwrap();
        assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");
    }
    // The fourth entry is deferred until the budget returns: no record, no order.
    let r = ex
        .handle_intent(&open_intent(&fx.bus, "budget-4", "0.01", mark))
        .await;
    let Err(execution::ExecError::Later { retry_in, .. }) = r else {
        panic!("expected a deferral, got {r:?}");
    };
    assert!(
        retry_in > Duration::from_secs(5) && retry_in <= Duration::from_secs(10),
        "{retry_in:?}"
    );
    let coid4 = qt_events::ids::client_order_id("budget-4", "entry");
    assert!(ex.db.order(&coid4).await.unwrap().is_none());
    assert_eq!(fx.all_orders().await.len(), 3);
    // A redelivered entry that was placed answers from its record, budget or not.
    let again = ex.handle_intent(&first).await.unwrap();
    assert!(
        matches!(again[0].event, Event::OrderAccepted(_)),
        "{again:?}"
    );

    // A protect intent: the stop goes, one take-profit fits the share, the other two wait —
    // and what was placed is published at once, not when the intent is finished.
    let mut protect = protect_intent(&fx.bus, "budget-protect", mark, 3);
    let r = ex.handle_intent(&protect).await;
    assert!(
        matches!(&r, Err(execution::ExecError::Later { .. })),
        "{r:?}"
    );
    assert_eq!(fx.all_algo_orders().await.len(), 2, "the stop and tp1");
    let stop_coid = qt_events::ids::client_order_id("budget-protect", "stop");
    let published = fx.events(Stream::Orders).await;
    assert!(
        published
            .iter()
            .any(|e| matches!(&e.event, Event::OrderAccepted(a) if a.client_order_id == stop_coid)),
        "{published:?}"
    );
    // Read again once it is too old to wait any longer, the rest is refused, the stop and tp1
    // answer from their records.
    protect.ts -= 26_000;
    let out = ex.handle_intent(&protect).await.unwrap();
    let reasons: Vec<_> = out
        .iter()
        .filter_map(|e| match &e.event {
            Event::OrderRejected(r) => Some(r.reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec![RejectReason::RateLimited; 2], "{out:?}");
    assert_eq!(
        out.iter()
            .filter(|e| matches!(e.event, Event::OrderAccepted(_)))
            .count(),
        2
    );
    assert_eq!(fx.all_algo_orders().await.len(), 2);

    // Protective orders may use the whole window: the position is closed.
    let close = fx.bus.envelope(Event::ClosePosition(ClosePosition {
        intent_id: "budget-close".into(),
        symbol: SYMBOL.into(),
        reason: "test".into(),
        position_side: None,
    }));
    let out = ex.handle_intent(&close).await.unwrap();
    assert!(matches!(out[0].event, Event::OrderAccepted(_)), "{out:?}");
    assert_eq!(fx.position_amt().await, Decimal::ZERO);
    // An entry that could only go when it is older than `order_budget_max_wait` (30 s) is
    // refused as stale, with its reason, and a redelivery answers the same.
    let mut stale = open_intent(&fx.bus, "budget-stale", "0.01", mark);
    stale.ts -= 26_000;
    let out = ex.handle_intent(&stale).await.unwrap();
    assert!(
        matches!(&out[0].event, Event::OrderRejected(r) if r.reason == RejectReason::RateLimited),
        "{out:?}"
    );
    let again = ex.handle_intent(&stale).await.unwrap();
    assert_eq!(again[0].id, out[0].id);
    assert_eq!(
        fx.all_orders().await.len(),
        4,
        "three entries and the close"
    );
    fx.stop().await;
}
