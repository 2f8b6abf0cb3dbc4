//! Bus benchmark: prints figures, asserts nothing. Run with `cargo bench -p qt-bus --bench
//! throughput` (scripts/bench.sh does). It starts its own redis-server (appendonly yes,
//! appendfsync everysec, as deployed) on a free loopback port and measures, in one run:
//!
//! 1. the ceiling: `redis-benchmark -P 16` XADD requests per second;
//! 2. publishing: envelopes per second with pipelined `XADD`s;
//! 3. consuming: events per second through one consumer group, handled and acknowledged;
//! 4. latency from `publish()` to the handler at a paced 1k/s and 10k/s, p50/p99/max.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qt_bus::{Bus, BusConfig, Consumer, ConsumerConfig, Delivery, Handler, HandlerError, Outcome};
use qt_events::{AlertRaised, Event, Severity, Stream, StreamNames};
use qt_testkit::{Fsync, RedisServer};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 200_000;

fn alert(n: usize) -> Event {
    Event::AlertRaised(AlertRaised {
        rule: "bench".into(),
        key: n.to_string(),
        severity: Severity::Info,
        message: "a typical small payload of a few dozen bytes".into(),
        service: "bench".into(),
        details: Default::default(),
    })
}

#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Handler for Count {
    async fn handle(&mut self, _: &Delivery) -> Result<Outcome, HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Outcome::done())
    }
}

#[derive(Clone, Default)]
struct Latency {
    sent: Arc<Mutex<HashMap<String, Instant>>>,
    seen: Arc<Mutex<Vec<Duration>>>,
}

impl Handler for Latency {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let now = Instant::now();
        if let Some(t) = self.sent.lock().unwrap().remove(&d.envelope.id) {
            self.seen.lock().unwrap().push(now - t);
        }
        Ok(Outcome::done())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redis_benchmark(port: u16) -> String {
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            "16",
            "-n",
            "200000",
            "-q",
        ])
        .args([
            "XADD",
            "bench:ceiling",
            "*",
            "type",
            "AlertRaised",
            "data",
            "0123456789abcdef0123456789abcdef",
        ])
        .output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.rsplit('\r').next().unwrap_or(&text).trim().to_owned()
        }
        Err(e) => format!("redis-benchmark not run: {e}"),
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

async fn paced(url: &str, rate: usize, secs: u64, key_base: usize) -> (f64, f64, f64, usize) {
    // A stream of its own, so the group does not first read the throughput run's entries.
    let bus = &Bus::connect(
        BusConfig::new(url, StreamNames::new(format!("lat{rate}:")), "bench"),
        qt_events::clock::system(),
    )
    .unwrap();
    let h = Latency::default();
    let stop = CancellationToken::new();
    let group = format!("lat{rate}");
    let task = tokio::spawn(
        Consumer::new(
            bus.clone(),
            ConsumerConfig::new(Stream::Alerts, group, "c-1"),
            h.clone(),
        )
        .run(stop.clone()),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per_tick = (rate / 1000).max(1);
    let ticks = secs * 1000;
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = key_base;
    for t in 0..ticks {
        interval.tick().await;
        if rate < 1000 && t % (1000 / rate as u64) != 0 {
            continue;
        }
        for _ in 0..per_tick {
            let env = bus.envelope(alert(n));
            n += 1;
            h.sent
                .lock()
                .unwrap()
                .insert(env.id.clone(), Instant::now());
            bus.publish(&env).await.unwrap();
        }
    }
    let expected = n - key_base;
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.seen.lock().unwrap().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    task.await.unwrap();
    let mut v = h.seen.lock().unwrap().clone();
    let count = v.len();
    (pct(&mut v, 0.5), pct(&mut v, 0.99), pct(&mut v, 1.0), count)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let port = free_port();
    let redis = RedisServer::start_with(Fsync::EverySec, Some(port));
    let ceiling = redis_benchmark(port);

    let url = format!("redis://127.0.0.1:{port}");
    let bus = Bus::connect(
        BusConfig::new(url.clone(), StreamNames::new("bench:"), "bench"),
        qt_events::clock::system(),
    )
    .unwrap();
    let envs: Vec<_> = (0..EVENTS).map(|i| bus.envelope(alert(i))).collect();
    let t = Instant::now();
    for chunk in envs.chunks(1000) {
        bus.publish_all(chunk).await.unwrap();
    }
    let publish_rate = EVENTS as f64 / t.elapsed().as_secs_f64();

    let count = Count::default();
    let stop = CancellationToken::new();
    let mut cfg = ConsumerConfig::new(Stream::Alerts, "throughput", "c-1");
    cfg.batch_size = 1000;
    let t = Instant::now();
    let task = tokio::spawn(Consumer::new(bus.clone(), cfg, count.clone()).run(stop.clone()));
    while count.0.load(Ordering::Relaxed) < EVENTS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Wait for the last batch's ack too.
    loop {
        let s = bus.stats(Stream::Alerts).await.unwrap();
        if s.groups
            .iter()
            .find(|g| g.name == "throughput")
            .is_some_and(|g| g.pending == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let consume_rate = EVENTS as f64 / t.elapsed().as_secs_f64();
    stop.cancel();
    task.await.unwrap();

    let l1 = paced(&url, 1_000, 5, 1_000_000).await;
    let l10 = paced(&url, 10_000, 3, 2_000_000).await;
    drop(redis);

    println!(
        "qt-bus benchmark (redis-server {}, appendonly yes, appendfsync everysec, loopback TCP)",
        redis_version()
    );
    println!("| measure | figure |");
    println!("|---|---|");
    println!("| ceiling: redis-benchmark -P 16 XADD | {ceiling} |");
    println!("| publish, pipelined XADD of envelopes ({EVENTS}) | {publish_rate:.0} events/s |");
    println!("| consume with ack, one group, batch 1000 ({EVENTS}) | {consume_rate:.0} events/s |");
    println!(
        "| publish-to-handle at 1k/s ({} events) | p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms |",
        l1.3, l1.0, l1.1, l1.2
    );
    println!(
        "| publish-to-handle at 10k/s ({} events) | p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms |",
        l10.3, l10.0, l10.1, l10.2
    );
}

fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(2)
                .unwrap_or("?")
                .trim_start_matches("v=")
                .to_owned()
        })
        .unwrap_or_default()
}
