//! A symbol's protect intent goes ahead of the symbol's entries queued before it on
//! `qt:intents`: a position is not left bare while its adds go out one by one (issue 20, the
//! chaos test's 15 s without a stop under load). Through the real consumer (laned, as the
//! binary builds it), a real redis-server and the real simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_bus::{Consumer, ConsumerConfig};
use qt_events::ids::client_order_id;
use qt_events::{Event, Stream};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Adds queued ahead of the protect intent.
const ADDS: usize = 4;

/// The simulator's time of the order with client id `coid` (`time` of a plain order,
/// `createTime` of a conditional one).
fn time_of(orders: &[Value], id_field: &str, time_field: &str, coid: &str) -> i64 {
    orders
        .iter()
        .find(|o| o[id_field].as_str() == Some(coid))
        .and_then(|o| o[time_field].as_i64())
        .unwrap_or_else(|| panic!("{coid} not on the exchange: {orders:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protect_intent_goes_ahead_of_the_adds_queued_before_it() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    // A position, as exit-brain would see it opened.
    let first = open_intent(&fx.bus, "open-0", "0.01", mark);
    ex.handle_intent(&first).await.unwrap();
    assert_eq!(fx.position_amt().await, dec("0.01"));

    // Every plain order is held 200 ms by the simulator before it is applied, so the orders of
    // the lane reach it at least 200 ms apart and their times order them without a tie.
    let faults = fx
        .control(
            "/sim/faults",
            Some(json!({"pathLatencyMs": {"/fapi/v1/order": 200}})),
        )
        .await;
    assert!(!faults.is_null(), "the simulator takes the fault settings");

    // The symbol's adds, then the protect intent exit-brain sent for the position: all on the
    // stream before execution reads any of them.
    for i in 1..=ADDS {
        let add = open_intent(&fx.bus, &format!("add-{i}"), "0.01", mark);
        fx.bus.publish(&add).await.unwrap();
    }
    let protect = protect_intent(&fx.bus, "protect-1", mark, 2);
    fx.bus.publish(&protect).await.unwrap();

    let token = CancellationToken::new();
    let mut cfg = ConsumerConfig::new(Stream::Intents, "execution", "execution-0");
    cfg.batch_size = 32;
    let consumer = Consumer::laned(fx.bus.clone(), cfg, execution::IntentHandler(ex.clone()), 4);
    let task = tokio::spawn(consumer.run(token.clone()));

    // Every intent handled and acknowledged.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = fx.bus.stats(Stream::Intents).await.unwrap();
        let group = stats.groups.iter().find(|g| g.name == "execution");
        if group.is_some_and(|g| g.pending == 0 && g.lag == Some(0)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "intents not all handled: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    task.await.unwrap();

    let stop = client_order_id("protect-1", "stop");
    let orders = fx.all_orders().await;
    let algos = fx.history("/fapi/v1/allAlgoOrders").await;
    let stop_at = time_of(&algos, "clientAlgoId", "createTime", &stop);
    let add_at: Vec<i64> = (1..=ADDS)
        .map(|i| {
            time_of(
                &orders,
                "clientOrderId",
                "time",
                &client_order_id(&format!("add-{i}"), "entry"),
            )
        })
        .collect();
    // The stop reached the exchange before the adds queued ahead of it (on the old order, after
    // the last of them).
    assert!(
        add_at.iter().all(|&t| stop_at < t),
        "the stop ({stop_at}) waited behind the adds ({add_at:?})"
    );
    // Every add went out, in the stream's order, and the position holds them all.
    assert!(add_at.windows(2).all(|w| w[0] < w[1]), "{add_at:?}");
    let held = dec("0.01") * rust_decimal::Decimal::from(ADDS + 1);
    assert_eq!(fx.position_amt().await, held);

    // The protect intent, handled again in its own turn, placed nothing twice: one stop and
    // one order per take-profit leg on the exchange, and one acceptance fact per leg.
    let mut placed: Vec<&str> = algos
        .iter()
        .filter_map(|o| o["clientAlgoId"].as_str())
        .collect();
    placed.sort_unstable();
    let mut legs = vec![
        client_order_id("protect-1", "stop"),
        client_order_id("protect-1", "tp1"),
        client_order_id("protect-1", "tp2"),
    ];
    legs.sort();
    assert_eq!(placed, legs);
    let accepted: std::collections::BTreeSet<String> = fx
        .events(Stream::Orders)
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::OrderAccepted(a) if a.intent_id == "protect-1" => Some(e.id),
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 3, "one fact (one id) per leg");
    assert_eq!(fx.all_orders().await.len(), ADDS + 1, "one order per entry");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_behind_a_protect_that_went_ahead_nothing_is_placed_twice() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let first = open_intent(&fx.bus, "open-0", "0.01", mark);
    ex.handle_intent(&first).await.unwrap();
    for i in 1..=2 {
        let add = open_intent(&fx.bus, &format!("add-{i}"), "0.01", mark);
        fx.bus.publish(&add).await.unwrap();
    }
    let protect = protect_intent(&fx.bus, "protect-1", mark, 2);
    fx.bus.publish(&protect).await.unwrap();
    // The first add is handled as the consumer would hand it over (its entry id: the protect
    // intent goes ahead of it), and execution dies before anything is acknowledged.
    let key = fx.bus.key(Stream::Intents);
    let entries = fx.bus.range(&key, "-", "+", 10).await.unwrap();
    let add_1 = qt_events::Envelope::from_fields(entries[0].field_pairs()).unwrap();
    ex.handle_intent_at(&add_1, Some(&entries[0].id))
        .await
        .unwrap();
    let stop = client_order_id("protect-1", "stop");
    assert!(
        fx.all_algo_orders().await.contains(&stop),
        "the stop went ahead of the add"
    );
    drop(ex);

    // Restarted on the same database, it reads every intent (the first add again).
    let ex = fx.execution(settings()).await;
    let token = CancellationToken::new();
    let consumer = Consumer::laned(
        fx.bus.clone(),
        ConsumerConfig::new(Stream::Intents, "execution", "execution-0"),
        execution::IntentHandler(ex.clone()),
        4,
    );
    let task = tokio::spawn(consumer.run(token.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = fx.bus.stats(Stream::Intents).await.unwrap();
        let group = stats.groups.iter().find(|g| g.name == "execution");
        if group.is_some_and(|g| g.pending == 0 && g.lag == Some(0)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "intents not all handled: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    token.cancel();
    task.await.unwrap();

    let mut legs = vec![
        stop,
        client_order_id("protect-1", "tp1"),
        client_order_id("protect-1", "tp2"),
    ];
    legs.sort();
    assert_eq!(fx.all_algo_orders().await, legs, "one order per leg");
    assert_eq!(fx.all_orders().await.len(), 3, "one order per entry");
    assert_eq!(fx.position_amt().await, dec("0.03"));
    fx.stop().await;
}
