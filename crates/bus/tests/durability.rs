//! What survives a Redis crash, and what retention may delete.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_bus::{Consumer, ConsumerConfig, ProcessedStore};
use qt_events::Stream;
use qt_testkit::RedisServer;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn redis_sigkilled_and_restarted_keeps_groups_and_pending_and_consumers_reconnect() {
    let mut redis = RedisServer::start();
    let bus = bus(&redis.url());
    for i in 0..10 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    bus.ensure_group(Stream::Alerts, "g").await.unwrap();
    redis.raw(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "g-dead",
        "COUNT",
        "4",
        "STREAMS",
        "t:alerts",
        ">",
    ]);
    let before = bus.stats(Stream::Alerts).await.unwrap();
    assert_eq!(before.groups[0].pending, 4);

    redis.kill();
    redis.restart();
    let after = bus.stats(Stream::Alerts).await.unwrap();
    assert_eq!(after.length, 10);
    assert_eq!(
        after.groups, before.groups,
        "groups, pending lists and offsets survive the AOF reload"
    );

    // A consumer running across a second crash reconnects by itself and loses nothing.
    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let mut cfg = ConsumerConfig::new(Stream::Alerts, "g", "g-1");
    cfg.block = Duration::from_millis(200);
    cfg.claim_min_idle = Duration::from_millis(200);
    cfg.janitor_interval = Duration::from_millis(100);
    let consumer = Consumer::new(bus.clone(), cfg, rec.clone());
    let handle = consumer.handle();
    let task = tokio::spawn(consumer.run(stop.clone()));
    eventually(10, "the first 10 handled", || async {
        rec.keys().len() == 10
    })
    .await;
    assert!(handle.is_ready());

    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    for i in 10..20 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    eventually(
        20,
        "entries published after the restart handled",
        || async { rec.keys().len() == 20 },
    )
    .await;
    let mut keys: Vec<usize> = rec.keys().iter().map(|k| k.parse().unwrap()).collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..20).collect::<Vec<_>>());
    assert!(handle.is_ready());
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_publish_while_redis_is_down_waits_for_it_to_return() {
    let mut redis = RedisServer::start();
    let bus = bus(&redis.url());
    bus.publish(&bus.envelope(alert(0))).await.unwrap();
    redis.kill();
    let b = bus.clone();
    let pending = tokio::spawn(async move { b.publish(&b.envelope(alert(1))).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !pending.is_finished(),
        "publish must not give up while redis restarts"
    );
    redis.restart();
    pending.await.unwrap().unwrap();
    assert_eq!(bus.stats(Stream::Alerts).await.unwrap().length, 2);
}

#[tokio::test]
async fn trimming_a_command_stream_never_deletes_an_unacknowledged_entry() {
    let redis = RedisServer::start();
    let clock = qt_events::clock::ManualClock::new(1_000);
    let bus = qt_bus::Bus::connect(
        qt_bus::BusConfig::new(redis.url(), qt_events::StreamNames::new("t:"), "test"),
        std::sync::Arc::new(clock.clone()),
    )
    .unwrap();
    // No group yet: nothing may be trimmed, however old.
    for i in 0..10 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    clock.set(i64::MAX / 2);
    assert_eq!(bus.trim(Stream::Alerts).await.unwrap(), 0);
    // Group "a" acknowledged the first 6; group "b" holds entry 3 pending.
    bus.ensure_group(Stream::Alerts, "a").await.unwrap();
    bus.ensure_group(Stream::Alerts, "b").await.unwrap();
    let ids: Vec<String> = bus
        .range("t:alerts", "-", "+", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    redis.raw(&[
        "XREADGROUP",
        "GROUP",
        "a",
        "a-1",
        "COUNT",
        "6",
        "STREAMS",
        "t:alerts",
        ">",
    ]);
    let mut ack = vec!["XACK", "t:alerts", "a"];
    ack.extend(ids[..6].iter().map(String::as_str));
    redis.raw(&ack);
    redis.raw(&[
        "XREADGROUP",
        "GROUP",
        "b",
        "b-1",
        "COUNT",
        "6",
        "STREAMS",
        "t:alerts",
        ">",
    ]);
    let mut ack_b = vec!["XACK", "t:alerts", "b"];
    ack_b.extend(ids[..3].iter().map(String::as_str));
    ack_b.extend(ids[4..6].iter().map(String::as_str));
    redis.raw(&ack_b);
    let trimmed = bus.trim(Stream::Alerts).await.unwrap();
    assert_eq!(trimmed, 3, "only entries 0..3, acknowledged by every group");
    let left: Vec<String> = bus
        .range("t:alerts", "-", "+", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, ids[3..].to_vec());
    // Within the minimum age nothing goes, acknowledged or not.
    clock.set(1_000);
    assert_eq!(bus.trim(Stream::Alerts).await.unwrap(), 0);
}

#[tokio::test]
async fn processed_store_applies_an_effect_once_per_event_id() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let store = ProcessedStore::new(&bus, "g", Duration::from_secs(60));
    let incr = vec![vec![
        "HINCRBY".to_owned(),
        "t:counts".to_owned(),
        "e1".to_owned(),
        "1".to_owned(),
    ]];
    assert!(!store.seen("e1").await.unwrap());
    assert!(store.apply_once("e1", &incr).await.unwrap());
    assert!(!store.apply_once("e1", &incr).await.unwrap());
    assert!(store.seen("e1").await.unwrap());
    assert!(redis.raw(&["HGET", "t:counts", "e1"]).contains("\r\n1\r\n"));
}

#[tokio::test]
async fn publish_after_reports_whether_the_last_entry_appended_before_is_still_there() {
    let redis = RedisServer::start();
    let bus = bus(&redis.url());
    let key = bus.key(Stream::Alerts);
    let first = bus.publish(&bus.envelope(alert(0))).await.unwrap();

    let (present, ids) = bus
        .publish_all_after(
            &[bus.envelope(alert(1)), bus.envelope(alert(2))],
            &key,
            &first,
        )
        .await
        .unwrap();
    assert!(present, "the prior entry is on the stream");
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > first && ids[1] > ids[0], "{first} then {ids:?}");

    // The tail is lost (as Redis restarted on an AOF without it); newer entries follow.
    redis.raw(&["XDEL", &key, &ids[1]]);
    let (present, more) = bus
        .publish_all_after(&[bus.envelope(alert(3))], &key, &ids[1])
        .await
        .unwrap();
    assert!(!present, "the lost entry is reported missing");
    assert_eq!(more.len(), 1);
    assert_eq!(bus.stats(Stream::Alerts).await.unwrap().length, 3);
}
