//! The bus under SIGKILL: consumers as real child processes, killed while holding entries.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use qt_bus::{Bus, BusConfig};
use qt_events::{AlertRaised, Event, Severity, Stream, StreamNames};
use qt_testkit::{ChildService, RedisServer, bin_path, wait_for};
use rand::Rng;
use redis::Commands;

fn alert(n: usize) -> Event {
    Event::AlertRaised(AlertRaised {
        rule: "crash".into(),
        key: n.to_string(),
        severity: Severity::Info,
        message: String::new(),
        service: "test".into(),
        details: Default::default(),
    })
}

async fn publish(bus: &Bus, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let all: Vec<_> = (0..n).map(|i| bus.envelope(alert(i))).collect();
    for chunk in all.chunks(1000) {
        bus.publish_all(chunk).await.unwrap();
        ids.extend(chunk.iter().map(|e| e.id.clone()));
    }
    ids
}

fn probe(
    redis: &RedisServer,
    consumer: &str,
    log: &std::path::Path,
    claim_ms: &str,
) -> ChildService {
    ChildService::spawn(
        bin_path("bus-probe"),
        &[],
        &[
            ("PROBE_REDIS_URL", &redis.url()),
            ("PROBE_PREFIX", "c:"),
            ("PROBE_CONSUMER", consumer),
            ("PROBE_DELAY_US", "150"),
            ("PROBE_CLAIM_MS", claim_ms),
        ],
        log.to_path_buf(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_sigkilled_repeatedly_handles_every_entry_exactly_once_in_effect() {
    const N: usize = 10_000;
    let redis = RedisServer::start();
    let bus = Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new("c:"), "test"),
        qt_events::clock::system(),
    )
    .unwrap();
    let ids = publish(&bus, N).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("probe.log");
    let mut child = probe(&redis, "probe-0", &log, "30000");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut kills = 0;
    let mut rng = rand::rng();
    // Kill it while it works, restart it under the same consumer name, several times.
    while kills < 6 {
        std::thread::sleep(Duration::from_millis(rng.random_range(150..450)));
        let done: usize = conn.hlen("c:effects").unwrap();
        if done >= N {
            break;
        }
        child.kill9();
        kills += 1;
        child.start();
    }
    assert!(
        kills >= 3,
        "the probe finished before it could be killed 3 times; slow it down"
    );
    wait_for(120, "every entry handled and acknowledged", || {
        let done: usize = conn.hlen("c:effects").ok()?;
        let stats: redis::Value = redis::cmd("XPENDING")
            .arg("c:alerts")
            .arg("probe")
            .query(&mut conn)
            .ok()?;
        let pending = match stats {
            redis::Value::Array(v) => match v.first() {
                Some(redis::Value::Int(n)) => *n,
                _ => -1,
            },
            _ => -1,
        };
        (done == N && pending == 0).then_some(())
    });
    let effects: std::collections::HashMap<String, u64> = conn.hgetall("c:effects").unwrap();
    assert_eq!(effects.len(), N);
    for id in &ids {
        assert_eq!(
            effects.get(id),
            Some(&1),
            "event {id} applied {:?} times",
            effects.get(id)
        );
    }
    let redelivered: u64 = conn.get("c:redelivered").unwrap_or(0);
    println!(
        "{kills} SIGKILLs, {redelivered} entries redelivered and deduplicated or re-applied once"
    );
    child.terminate(10);
    let stats = bus.stats(Stream::Alerts).await.unwrap();
    assert_eq!(stats.groups[0].pending, 0);
    assert_eq!(stats.groups[0].lag, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_held_by_a_killed_instance_that_never_returns_are_claimed_by_another() {
    let redis = RedisServer::start();
    let bus = Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new("c:"), "test"),
        qt_events::clock::system(),
    )
    .unwrap();
    let ids = publish(&bus, 2_000).await;
    let dir = tempfile::tempdir().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    // Instance A takes entries and is killed for good while holding some.
    let mut a = probe(&redis, "probe-a", &dir.path().join("a.log"), "1000");
    wait_for(30, "instance A to hold pending entries", || {
        let v: redis::Value = redis::cmd("XPENDING")
            .arg("c:alerts")
            .arg("probe")
            .query(&mut conn)
            .ok()?;
        matches!(v, redis::Value::Array(ref x) if matches!(x.first(), Some(redis::Value::Int(n)) if *n > 0)).then_some(())
    });
    a.kill9();
    // Instance B, another name, claims what A held once it is idle and handles the rest.
    let mut b = probe(&redis, "probe-b", &dir.path().join("b.log"), "1000");
    wait_for(60, "every entry handled", || {
        let done: usize = conn.hlen("c:effects").ok()?;
        (done == ids.len()).then_some(())
    });
    wait_for(30, "nothing pending", || {
        let v: redis::Value = redis::cmd("XPENDING")
            .arg("c:alerts")
            .arg("probe")
            .query(&mut conn)
            .ok()?;
        matches!(v, redis::Value::Array(ref x) if matches!(x.first(), Some(redis::Value::Int(0))))
            .then_some(())
    });
    let effects: std::collections::HashMap<String, u64> = conn.hgetall("c:effects").unwrap();
    assert!(ids.iter().all(|id| effects.get(id) == Some(&1)));
    assert!(b.output().is_empty() || !b.output().contains("panicked"));
    b.terminate(10);
}
