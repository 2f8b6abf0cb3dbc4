//! execution through Redis: the intent consumer with a redelivered entry, and the real binary
//! SIGKILLed between SENDING and the exchange's (lost) response, then restarted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_bus::{Consumer, ConsumerConfig};
use qt_events::{Event, Stream};
use qt_exchange::Exchange;
use qt_testkit::ChildService;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intent_published_twice_on_the_stream_makes_one_order_and_one_accepted_fact() {
    let fx = fixture().await;
    let ex = fx.execution(settings()).await;
    let mark = fx.mark().await;
    let intent = open_intent(&fx.bus, "intent-stream-dup", "0.01", mark);
    // The same envelope twice (a producer retry after a lost reply).
    fx.bus.publish(&intent).await.unwrap();
    fx.bus.publish(&intent).await.unwrap();
    let token = CancellationToken::new();
    let consumer = Consumer::new(
        fx.bus.clone(),
        ConsumerConfig::new(Stream::Intents, "execution", "execution-0"),
        execution::IntentHandler(ex.clone()),
    );
    let task = tokio::spawn(consumer.run(token.clone()));
    fx.wait_event(Stream::Orders, "OrderAccepted", |e| {
        matches!(e, Event::OrderAccepted(_))
    })
    .await;
    // Let the second entry be handled too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fx.events(Stream::Orders).await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "second delivery not handled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted: std::collections::BTreeSet<String> = fx
        .events(Stream::Orders)
        .await
        .into_iter()
        .filter(|e| matches!(e.event, Event::OrderAccepted(_)))
        .map(|e| e.id)
        .collect();
    assert_eq!(accepted.len(), 1, "one fact, published with one id");
    assert_eq!(fx.all_orders().await.len(), 1);
    token.cancel();
    task.await.unwrap();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_execution_between_sending_and_response_resumes_without_a_second_order() {
    let fx = fixture().await;
    let log = fx.dir.path().join("execution.log");
    let redis_url = fx.redis.url();
    let prefix = fx.bus.names().prefix().to_owned();
    let rest = fx.base.clone();
    let ws = fx.base.replace("http://", "ws://");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http_addr = format!("127.0.0.1:{port}");
    let env: Vec<(&str, &str)> = vec![
        ("QT_REDIS_URL", &redis_url),
        ("QT_STREAM_PREFIX", &prefix),
        ("QT_HTTP_ADDR", &http_addr),
        ("QT_EXCHANGE_REST_URL", &rest),
        ("QT_EXCHANGE_WS_URL", &ws),
        ("QT_API_KEY", KEY),
        ("QT_API_SECRET", SECRET),
        ("QT_EXCHANGE_RECV_WINDOW_MS", "1000"),
        ("QT_DATABASE_URL", &fx.db_url),
        ("QT_LOG_LEVEL", "info"),
    ];
    let mut child = ChildService::spawn(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_execution")),
        &[],
        &env,
        log.clone(),
    );
    wait_ready(&fx, &http_addr, &child).await;
    let mark = fx.mark().await;
    // The simulator executes the next order but holds its answer for 10 s.
    fx.lose_next_response(10_000).await;
    // A resting LIMIT entry: no fill can settle it, only the query after the fence.
    let limit = (mark * dec("0.9")).round_dp(1);
    let mut intent = open_intent(&fx.bus, "intent-kill-1", "0.01", mark);
    if let Event::OpenPosition(o) = &mut intent.event {
        o.order_type = qt_events::OrderKind::Limit;
        o.limit_price = Some(limit);
    }
    fx.bus.publish(&intent).await.unwrap();
    let coid = qt_events::ids::client_order_id("intent-kill-1", "entry");
    let db = execution::Db::open(&fx.db_url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(row) = db.order(&coid).await.unwrap() {
            assert_eq!(row.state, execution::OrderState::Sending);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "SENDING never recorded; log:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The order has reached the simulator (executed, answer held): kill now.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fx.all_orders().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "order never reached the sim"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill9();
    assert!(fx.events(Stream::Orders).await.is_empty());

    child.start();
    wait_ready(&fx, &http_addr, &child).await;
    let accepted = fx
        .wait_event(Stream::Orders, "OrderAccepted after restart", |e| {
            matches!(e, Event::OrderAccepted(_))
        })
        .await;
    let Event::OrderAccepted(a) = &accepted.event else {
        unreachable!()
    };
    assert_eq!(a.client_order_id, coid);
    assert_eq!(a.price, Some(limit));
    assert_eq!(fx.all_orders().await.len(), 1, "adopted, never resent");
    // OrderAccepted is published before the record leaves SENDING (see engine.rs).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while db.order(&coid).await.unwrap().unwrap().state != execution::OrderState::Acked {
        assert!(tokio::time::Instant::now() < deadline, "record never ACKED");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fx.client.open_orders(Some(SYMBOL)).await.unwrap().len(), 1);
    let status = child.terminate(10);
    assert!(status.success(), "clean stop; log:\n{}", child.output());
    fx.stop().await;
}

/// Waits until the binary answers `/health/ready` (reconciled, groups and consumers up).
async fn wait_ready(fx: &Fixture, http_addr: &str, child: &ChildService) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ok = fx
            .http
            .get(format!("http://{http_addr}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "execution never ready; log:\n{}",
            child.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
