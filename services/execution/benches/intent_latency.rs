//! Intent-to-order latency of the real `execution` binary in a paper setup: a real
//! redis-server, the simulator in-process over HTTP/WS, SQLite in a temp folder. Sequentially
//! publishes market entries and closes on `qt:intents` and measures, per intent, the time until
//! its `OrderAccepted` is on `qt:orders` (risk check, SENDING committed, REST round trip, ACKED)
//! and until the resulting position fact is on `qt:positions` (user data stream fill, position
//! update, outbox). Then prints the binary's resident memory.
//!
//! `cargo bench -p execution --bench intent_latency` (EXEC_BENCH_N intents, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qt_bus::{Bus, BusConfig};
use qt_events::{
    ClosePosition, Envelope, Event, OpenPosition, OrderKind, PositionSide, Stream, StreamNames,
};
use qt_exchange::Exchange;
use qt_testkit::{ChildService, RedisServer};
use sim_exchange::{ApiKey, MarketSource, SimConfig};
use tokio_util::sync::CancellationToken;

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn wait_for(
    conn: &mut qt_bus::Connection,
    key: &str,
    cursor: &mut String,
    pred: &dyn Fn(&Envelope) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries = Bus::read_after(conn, key, cursor, Duration::from_millis(500), 100)
            .await
            .unwrap();
        for e in &entries {
            *cursor = e.id.clone();
            if let Ok(env) = Envelope::from_fields(e.field_pairs())
                && pred(&env)
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "timed out on {key}");
    }
}

fn main() {
    qt_exchange::install_crypto_provider();
    let n: usize = std::env::var("EXEC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let redis = RedisServer::start();
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m/BTCUSDT-5m.csv.gz");
        let sim_cfg = SimConfig {
            keys: vec![ApiKey { key: KEY.into(), secret: SECRET.into() }],
            source: MarketSource::Files(data),
            symbols: vec!["BTCUSDT".into()],
            speed: 0.0,
            warmup_candles: 300,
            ..SimConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let sim_stop = stop.clone();
        let sim = tokio::spawn(async move { sim_exchange::serve(sim_cfg, listener, sim_stop).await.unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let http = format!("127.0.0.1:{port}");
        let db = qt_store::sqlite_url(&dir.path().join("execution.db"));
        let rest = format!("http://{addr}");
        let ws = format!("ws://{addr}");
        let redis_url = redis.url();
        let env: Vec<(&str, &str)> = vec![
            ("QT_REDIS_URL", &redis_url),
            ("QT_STREAM_PREFIX", "bench:"),
            ("QT_HTTP_ADDR", &http),
            ("QT_EXCHANGE_REST_URL", &rest),
            ("QT_EXCHANGE_WS_URL", &ws),
            ("QT_API_KEY", KEY),
            ("QT_API_SECRET", SECRET),
            ("QT_DATABASE_URL", &db),
            ("QT_LOG_LEVEL", "warn"),
            ("QT_EXECUTION__LIMITS__COOLDOWN_MINUTES", "0"),
        ];
        let mut child = ChildService::spawn(
            PathBuf::from(env!("CARGO_BIN_EXE_execution")),
            &[],
            &env,
            dir.path().join("execution.log"),
        );
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client
            .get(format!("http://{http}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "not ready:\n{}", child.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let xcfg = qt_exchange::ExchangeConfig::default()
            .with_urls(rest.clone(), ws.clone())
            .with_credentials(KEY, SECRET);
        let ex = qt_exchange::BinanceClient::new(xcfg, qt_events::clock::system()).unwrap();
        let mark = ex.mark_price("BTCUSDT").await.unwrap().mark_price;
        let bus = Bus::connect(
            BusConfig::new(redis.url(), StreamNames::new("bench:"), "bench"),
            qt_events::clock::system(),
        )
        .unwrap();
        let orders_key = bus.key(Stream::Orders);
        let positions_key = bus.key(Stream::Positions);
        let mut orders_conn = bus.dedicated(Duration::from_secs(5)).await.unwrap();
        let mut positions_conn = bus.dedicated(Duration::from_secs(5)).await.unwrap();
        let (mut oc, mut pc) = ("0-0".to_string(), "0-0".to_string());
        let mut to_ack = Vec::with_capacity(n);
        let mut to_position = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n {
            let intent_id = format!("bench-{i}");
            let event = if i % 2 == 0 {
                Event::OpenPosition(OpenPosition {
                    intent_id: intent_id.clone(),
                    symbol: "BTCUSDT".into(),
                    side: PositionSide::Long,
                    quantity: "0.01".parse().unwrap(),
                    order_type: OrderKind::Market,
                    limit_price: None,
                    leverage: 5,
                    reference_price: mark,
                    signal: None,
                })
            } else {
                Event::ClosePosition(ClosePosition {
                    intent_id: intent_id.clone(),
                    symbol: "BTCUSDT".into(),
                    reason: "bench".into(),
                    position_side: None,
                })
            };
            let t0 = Instant::now();
            bus.publish(&bus.envelope(event)).await.unwrap();
            let id = intent_id.clone();
            wait_for(&mut orders_conn, &orders_key, &mut oc, &|e| {
                matches!(&e.event, Event::OrderAccepted(a) if a.intent_id == id)
                    || matches!(&e.event, Event::OrderRejected(r) if { assert!(r.intent_id != id, "rejected: {r:?}"); false })
            })
            .await;
            to_ack.push(t0.elapsed().as_secs_f64() * 1e3);
            wait_for(&mut positions_conn, &positions_key, &mut pc, &|e| {
                matches!(&e.event, Event::PositionOpened(_) | Event::PositionClosed(_))
            })
            .await;
            to_position.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        let total = started.elapsed();
        let rss = child.pid().and_then(rss_kb);
        println!("execution intent latency over {n} sequential intents (market open / close, BTCUSDT, sim in-process, SQLite, real Redis)");
        println!(
            "  publish -> OrderAccepted   p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            pct(&mut to_ack, 0.5), pct(&mut to_ack, 0.9), pct(&mut to_ack, 0.99), pct(&mut to_ack, 1.0)
        );
        println!(
            "  publish -> Position fact   p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            pct(&mut to_position, 0.5), pct(&mut to_position, 0.9), pct(&mut to_position, 0.99), pct(&mut to_position, 1.0)
        );
        println!("  {:.1} intents/s end to end (sequential)", n as f64 / total.as_secs_f64());
        match rss {
            Some(kb) => println!("  execution RSS after the run: {:.1} MB", kb as f64 / 1024.0),
            None => println!("  execution RSS: unavailable"),
        }
        let _ = child.terminate(10);
        stop.cancel();
        let _ = sim.await;
    });
}
