//! The bus on a real Redis Cluster: three masters (Debian's redis-server in cluster mode on
//! loopback ports, slots assigned by `redis-cli --cluster create`). The prefix carries a hash
//! tag, so every key of the deployment is in one slot; the tag is chosen so that slot lives on
//! a master other than the one seed node the bus is given (it must find it from the slot map).
//! The core cases of the bus suite run there: publish, consume with ack and outputs committed
//! with the ack, redelivery of a crashed consumer's entries, dead letters, dedup, leases; and a
//! failover: three masters with a replica each, the master of the deployment's slot killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use qt_bus::{
    Bus, BusConfig, BusError, Consumer, ConsumerConfig, Delivery, Handler, HandlerError, Outcome,
    ProcessedStore, SharedCache,
};
use qt_events::clock::system;
use qt_events::{Decimal, Event, Stream, StreamNames};
use qt_testkit::RedisCluster;
use tokio_util::sync::CancellationToken;

/// The cluster, and a prefix whose slot is owned by a master other than the first node.
fn cluster() -> (RedisCluster, String) {
    let c = RedisCluster::start(3);
    let seed = c.ports()[0];
    let prefix = (0..100)
        .map(|i| format!("t:{{d{i}}}:"))
        .find(|p| c.owner_of(&format!("{p}alerts")) != seed)
        .unwrap();
    (c, prefix)
}

/// A bus given only the first node: it learns the rest from the cluster.
fn cluster_bus(c: &RedisCluster, prefix: &str) -> Result<Bus, BusError> {
    Bus::connect(
        BusConfig::new("redis://127.0.0.1", StreamNames::new(prefix), "test")
            .with_cluster(c.nodes()[..1].to_vec()),
        system(),
    )
}

fn fast(stream: Stream, group: &str, consumer: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(stream, group, consumer);
    c.block = Duration::from_millis(200);
    c.claim_min_idle = Duration::from_secs(3600);
    c.janitor_interval = Duration::from_millis(100);
    c.max_deliveries = 3;
    c.poison_min_age = Duration::ZERO;
    c.handler_attempts = 2;
    c
}

/// For each alert, publishes a candle on another stream (`market`) atomically with the ack,
/// as a service's handler turns an entry of one stream into facts on others.
struct Relay;

impl Handler for Relay {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let Event::AlertRaised(a) = &d.envelope.event else {
            return Err(HandlerError::Permanent("not an alert".into()));
        };
        let n: i64 = a
            .key
            .parse()
            .map_err(|_| HandlerError::Permanent(a.key.clone()))?;
        let candle = qt_testkit::build::candle("BTCUSDT", n * 300_000, Decimal::ONE);
        let out = qt_events::Envelope::new(
            Event::CandleClosed(candle),
            "relay",
            &qt_events::clock::SystemClock,
        )
        .caused_by(&d.envelope);
        Ok(Outcome::publish(vec![out]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_consume_and_outputs_committed_with_the_ack_in_one_slot() {
    let (c, prefix) = cluster();
    let bus = cluster_bus(&c, &prefix).unwrap();
    assert!(bus.is_cluster());
    for i in 0..200 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    // Every entry handled once, in order, and acknowledged.
    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "g", "g-1"), rec.clone()).run(stop.clone()),
    );
    eventually(20, "200 handled", || async { rec.keys().len() == 200 }).await;
    let keys: Vec<usize> = rec.keys().iter().map(|k| k.parse().unwrap()).collect();
    assert_eq!(keys, (0..200).collect::<Vec<_>>());
    eventually(10, "nothing pending", || async {
        let s = bus.stats(Stream::Alerts).await.unwrap();
        s.groups[0].pending == 0 && s.groups[0].lag == Some(0)
    })
    .await;
    // A handler's outputs on another stream go out in the MULTI that acknowledges its entry.
    let relay_stop = CancellationToken::new();
    let relay = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "relay", "relay-1"), Relay)
            .run(relay_stop.clone()),
    );
    let market = bus.key(Stream::Market);
    eventually(20, "200 candles relayed", || async {
        bus.range(&market, "-", "+", 1000).await.unwrap().len() == 200
    })
    .await;
    eventually(10, "the relay's group acknowledged all", || async {
        let s = bus.stats(Stream::Alerts).await.unwrap();
        s.groups.iter().all(|g| g.pending == 0 && g.lag == Some(0))
    })
    .await;
    relay_stop.cancel();
    relay.await.unwrap();
    stop.cancel();
    task.await.unwrap();
    // The data is where the slot map says, not on the seed node.
    let key = bus.key(Stream::Alerts);
    let owner = c.owner_of(&key);
    assert_ne!(owner, c.ports()[0]);
    assert_eq!(c.cli(owner, &["XLEN", &key]).trim(), "200");
    assert_eq!(c.cli(owner, &["XLEN", &market]).trim(), "200");

    // Why the tag: the same MULTI over untagged keys is refused by Redis Cluster.
    let mut conn = bus.connection();
    let r: Result<(), redis::RedisError> = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("t:alerts")
        .arg("*")
        .arg("f")
        .arg("v")
        .ignore()
        .cmd("XADD")
        .arg("t:dlq")
        .arg("*")
        .arg("f")
        .arg("v")
        .ignore()
        .query_async(&mut conn)
        .await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    // …so the bus refuses a cluster with a prefix without one.
    let e = cluster_bus(&c, "t:").unwrap_err();
    assert!(e.to_string().contains("QT_STREAM_PREFIX"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumers_entries_are_redelivered_and_bad_ones_dead_lettered() {
    let (c, prefix) = cluster();
    let bus = cluster_bus(&c, &prefix).unwrap();
    let key = bus.key(Stream::Alerts);
    for i in 0..10 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    bus.ensure_group(Stream::Alerts, "g").await.unwrap();
    // The consumer read 5 entries and crashed before acknowledging them (read straight from
    // the master that owns the slot, without the code under test).
    let owner = c.owner_of(&key);
    let read = c.cli(
        owner,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "g-1",
            "COUNT",
            "5",
            "STREAMS",
            &key,
            ">",
        ],
    );
    assert!(read.contains("alert"), "{read}");
    // Garbage, and an entry its handler refuses.
    bus.append_raw(&key, &[("garbage".into(), vec![0xff, 0x00, 0x13])])
        .await
        .unwrap();
    bus.publish(&bus.envelope(alert(99))).await.unwrap();
    let rec = Recorder::default();
    rec.reject.lock().unwrap().push("99".into());
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "g", "g-1"), rec.clone()).run(stop.clone()),
    );
    eventually(20, "all 10 handled", || async { rec.keys().len() == 10 }).await;
    let seen = rec.seen.lock().unwrap().clone();
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    // The crashed consumer's own entries came back first, as second deliveries.
    assert!(seen[..5].iter().all(|(_, n)| *n == 2), "{seen:?}");
    assert!(seen[5..].iter().all(|(_, n)| *n == 1), "{seen:?}");
    let dlq = bus.key(Stream::Dlq);
    eventually(20, "two dead letters", || async {
        bus.last(&dlq, 10).await.unwrap().len() == 2
    })
    .await;
    let reasons: Vec<String> = bus
        .last(&dlq, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let env = qt_events::Envelope::from_fields(e.field_pairs()).unwrap();
            let Event::DeadLettered(d) = env.event else {
                panic!("not a dead letter")
            };
            assert_eq!(d.stream, key);
            d.reason
        })
        .collect();
    assert!(reasons[0].contains("missing field"), "{reasons:?}");
    assert!(reasons[1].contains("cannot take 99"), "{reasons:?}");
    eventually(10, "nothing pending", || async {
        bus.stats(Stream::Alerts).await.unwrap().groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn effects_apply_once_per_event_id_and_leases_are_exclusive() {
    let (c, prefix) = cluster();
    let bus = cluster_bus(&c, &prefix).unwrap();
    // The dedup mark and the effect's key share the prefix, so the script stays in one slot.
    let store = ProcessedStore::new(&bus, "g", Duration::from_secs(60));
    let counts = format!("{prefix}counts");
    let incr = vec![vec![
        "HINCRBY".to_owned(),
        counts.clone(),
        "e1".to_owned(),
        "1".to_owned(),
    ]];
    assert!(!store.seen("e1").await.unwrap());
    assert!(store.apply_once("e1", &incr).await.unwrap());
    assert!(!store.apply_once("e1", &incr).await.unwrap());
    assert!(store.seen("e1").await.unwrap());
    assert_eq!(
        c.cli(c.owner_of(&counts), &["HGET", &counts, "e1"]).trim(),
        "1"
    );
    let cache = SharedCache::new(&bus);
    let ttl = Duration::from_secs(30);
    assert!(cache.try_lease("ctx", "a", ttl).await.unwrap());
    assert!(!cache.try_lease("ctx", "b", ttl).await.unwrap());
    cache.release("ctx", "b").await.unwrap();
    assert!(cache.leased("ctx").await.unwrap());
    cache.release("ctx", "a").await.unwrap();
    assert!(cache.try_lease("ctx", "b", ttl).await.unwrap());
    cache.put("v", b"x", ttl).await.unwrap();
    assert_eq!(cache.get("v").await.unwrap().as_deref(), Some(&b"x"[..]));
}

/// A master crashes: its replica takes over the slot within the cluster's node timeout, and
/// the bus follows the new slot map by itself. A relay consumer running through the failover
/// handles every entry published before and after it once, its outputs committed with the ack;
/// publishing during the failover only waits (the bus retries), it does not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_crashes_its_replica_takes_the_slot_and_the_bus_follows() {
    let mut c = RedisCluster::start_with_replicas(3, 1);
    let seed = c.ports()[0];
    let prefix = (0..100)
        .map(|i| format!("t:{{f{i}}}:"))
        .find(|p| c.owner_of(&format!("{p}alerts")) != seed)
        .unwrap();
    // Every node as a seed, as QT_REDIS_CLUSTER lists them: the map is rebuilt without the dead one.
    let bus = Bus::connect(
        BusConfig::new("redis://127.0.0.1", StreamNames::new(&prefix), "test")
            .with_cluster(c.nodes()),
        system(),
    )
    .unwrap();
    let (alerts, market) = (bus.key(Stream::Alerts), bus.key(Stream::Market));
    let old = c.owner_of(&alerts);
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts, "relay", "relay-1"), Relay)
            .run(stop.clone()),
    );
    let relayed = |n: usize| {
        let bus = bus.clone();
        let market = market.clone();
        async move {
            bus.range(&market, "-", "+", 1000)
                .await
                .is_ok_and(|r| r.len() == n)
        }
    };
    for i in 0..50 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    eventually(20, "50 relayed", || relayed(50)).await;
    // Replication is asynchronous, so a crash can lose what the replica had not received;
    // here the replica has it all (WAIT), so nothing may be missing after the failover.
    assert_eq!(c.cli(old, &["WAIT", "1", "5000"]).trim(), "1");

    c.kill(old);
    let mut new = 0;
    for _ in 0..600 {
        new = c.owner_seen_by(seed, &alerts);
        if new != 0 && new != old {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(new != 0 && new != old, "no replica took the slot over");

    for i in 50..100 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    eventually(30, "100 relayed", || relayed(100)).await;
    eventually(10, "the relay's group acknowledged all", || async {
        bus.stats(Stream::Alerts)
            .await
            .is_ok_and(|s| s.groups.iter().all(|g| g.pending == 0 && g.lag == Some(0)))
    })
    .await;
    stop.cancel();
    relay.await.unwrap();
    // On the new master: each alert once, each relayed once.
    assert_eq!(c.cli(new, &["XLEN", &alerts]).trim(), "100");
    assert_eq!(c.cli(new, &["XLEN", &market]).trim(), "100");
}
