//! exit-brain figures, printed (never asserted):
//! 1. in process, over a real SQLite file (synchronous = FULL): the cost of a `PositionOpened`
//!    (plan + commit + protect intent), of a mark that changes nothing, of a mark that trails
//!    the stop (commit + intent);
//! 2. the binary against a real `redis-server`: paced open → `ProtectPosition` latency through
//!    the streams, and the process's resident memory after 1000 open plans and 20 000 marks.
//!
//! Run: `cargo bench -p exit-brain --bench exit_brain`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use exit_brain::sql::SqlStore;
use exit_brain::{Brain, BrainConfig};
use qt_bus::{Bus, BusConfig};
use qt_events::clock::{ManualClock, SharedClock, system};
use qt_events::{Decimal, Event, Stream, StreamNames};
use qt_exits::ExitConfig;
use qt_testkit::{ChildService, RedisServer};
use rust_decimal_macros::dec;

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn in_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let clock: SharedClock = Arc::new(ManualClock::new(1_000));
    let store = SqlStore::connect(&url, 0).await.unwrap();
    let cfg = BrainConfig {
        exits: ExitConfig::default(),
        hedge: false,
        watchdog_ms: 30_000,
        volatility_interval: "5m".into(),
        volatility_window: 288,
    };
    let mut b = Brain::load(store, clock.clone(), cfg).await.unwrap();
    const POS: usize = 1000;
    let t = Instant::now();
    for i in 0..POS {
        let e = env(
            opened(
                &format!("p{i}"),
                &format!("S{i}USDT"),
                dec!(1),
                dec!(100),
                1,
            ),
            &format!("o{i}"),
            clock.as_ref(),
        );
        let out = b.handle(&e, &format!("positions/{i}-0")).await.unwrap();
        assert_eq!(out.len(), 1);
    }
    let open_us = t.elapsed().as_secs_f64() * 1e6 / POS as f64;
    const MARKS: usize = 100_000;
    let marks: Vec<_> = (0..MARKS)
        .map(|i| {
            let price = dec!(100) + Decimal::new((i % 200) as i64, 2);
            env(
                mark(&format!("S{}USDT", i % POS), price, 2),
                &format!("m{i}"),
                clock.as_ref(),
            )
        })
        .collect();
    let t = Instant::now();
    for (i, m) in marks.iter().enumerate() {
        let out = b.handle(m, &format!("market/{i}-0")).await.unwrap();
        assert!(out.is_empty());
    }
    let idle_ns = t.elapsed().as_secs_f64() * 1e9 / MARKS as f64;
    // Each of these raises the best price past the activation: a stop move per mark.
    const TRAILS: usize = 2000;
    let t = Instant::now();
    for i in 0..TRAILS {
        let price = dec!(104) + Decimal::new(i as i64, 1);
        let m = env(mark("S0USDT", price, 3), &format!("t{i}"), clock.as_ref());
        let out = b.handle(&m, &format!("market/t{i}-0")).await.unwrap();
        assert_eq!(out.len(), 1);
    }
    let trail_us = t.elapsed().as_secs_f64() * 1e6 / TRAILS as f64;
    println!("in process, SQLite (synchronous=FULL), {POS} open plans:");
    println!(
        "  PositionOpened -> plan + commit + ProtectPosition: {open_us:.0} us/event ({:.0}/s)",
        1e6 / open_us
    );
    println!(
        "  mark that changes nothing:                        {idle_ns:.0} ns/event ({:.0}/s)",
        1e9 / idle_ns
    );
    println!(
        "  mark that trails the stop (commit + intent):      {trail_us:.0} us/event ({:.0}/s)",
        1e6 / trail_us
    );
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn through_redis() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = "bench:";
    let url = redis.url();
    let db = format!("sqlite://{}", dir.path().join("eb.sqlite").display());
    let child = ChildService::spawn(
        PathBuf::from(env!("CARGO_BIN_EXE_exit-brain")),
        &[],
        &[
            ("QT_REDIS_URL", url.as_str()),
            ("QT_STREAM_PREFIX", prefix),
            ("QT_HTTP_ADDR", "127.0.0.1:0"),
            ("QT_DATABASE_URL", db.as_str()),
            ("QT_LOG_LEVEL", "warn"),
            ("QT_EXIT_BRAIN__CHECK_EXCHANGE_ON_START", "false"),
        ],
        dir.path().join("eb.log"),
    );
    let clock = system();
    let bus = Bus::connect(
        BusConfig::new(url.clone(), StreamNames::new(prefix), "bench"),
        clock.clone(),
    )
    .unwrap();
    let key = bus.key(Stream::Intents);
    let mut conn = bus.dedicated(Duration::from_secs(10)).await.unwrap();
    let mut last = "0-0".to_string();
    let mut rss_start = 0;
    // Paced: one open at a time, wait for its protect.
    const N: usize = 300;
    let mut lat = Vec::with_capacity(N);
    for i in 0..N {
        let e = env(
            opened(
                &format!("p{i}"),
                &format!("S{i}USDT"),
                dec!(1),
                dec!(100),
                1,
            ),
            &format!("o{i}"),
            clock.as_ref(),
        );
        let t = Instant::now();
        bus.publish(&e).await.unwrap();
        loop {
            let got = Bus::read_after(&mut conn, &key, &last, Duration::from_secs(5), 10)
                .await
                .unwrap();
            assert!(!got.is_empty(), "no protect; log:\n{}", child.output());
            last = got.last().unwrap().id.clone();
            if got.iter().any(|r| {
                qt_events::Envelope::from_fields(r.field_pairs())
                    .is_ok_and(|x| matches!(&x.event, Event::ProtectPosition(p) if p.symbol == format!("S{i}USDT")))
            }) {
                break;
            }
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        if i == 0 {
            rss_start = rss_kb(child.pid().unwrap());
        }
    }
    lat.sort_by(f64::total_cmp);
    for i in N..1000 {
        let e = env(
            opened(
                &format!("p{i}"),
                &format!("S{i}USDT"),
                dec!(1),
                dec!(100),
                1,
            ),
            &format!("o{i}"),
            clock.as_ref(),
        );
        bus.publish(&e).await.unwrap();
    }
    for i in 0..20_000 {
        let price = dec!(100) + Decimal::new((i % 200) as i64, 2);
        let e = env(
            mark(&format!("S{}USDT", i % 1000), price, 2),
            &format!("m{i}"),
            clock.as_ref(),
        );
        bus.publish(&e).await.unwrap();
    }
    // Let it drain the market stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = bus.stats(Stream::Market).await.unwrap();
        let g = st.groups.iter().find(|g| g.name == "exit-brain");
        if g.is_some_and(|g| g.pending == 0 && g.lag == Some(0)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_end = rss_kb(child.pid().unwrap());
    println!("binary + redis-server (unix socket) + SQLite:");
    println!(
        "  open -> ProtectPosition in the stream, paced, {N} samples: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "  RSS with one plan {:.1} MB; after 1000 open plans and 20000 marks {:.1} MB",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        in_process().await;
        through_redis().await;
    });
}
