//! Costs of portfolio-intelligence's work, and the real binary's memory.
//!
//! 1. `Book::report` (every figure of the API and the dashboard) with 8 open positions, 5,000
//!    closed trades and 2,000 equity points;
//! 2. a mark price applied through the handler path (`Shared::apply`);
//! 3. one snapshot: computed, stored in SQLite, published to Redis;
//! 4. the binary's resident memory after start and after a few seconds of 100 ms snapshots and
//!    syncs against the simulator.
//!
//! `cargo bench -p portfolio-intelligence --bench portfolio`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portfolio_intelligence::book::Book;
use portfolio_intelligence::{Db, Settings, Shared};
use qt_bus::{Bus, BusConfig};
use qt_events::clock::SharedClock;
use qt_events::{
    Event, MarkPriceUpdated, PositionClosed, PositionOpened, PositionSide, SignalRef, StreamNames,
};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig};
use qt_testkit::{ChildService, RedisServer};
use rust_decimal::Decimal;
use sim_exchange::{ApiKey, MarketSource, SimConfig};
use tokio_util::sync::CancellationToken;

const SYMBOLS: [&str; 8] = [
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT",
];

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

fn opened(i: usize) -> PositionOpened {
    PositionOpened {
        position_id: format!("open-{i}"),
        symbol: SYMBOLS[i].into(),
        side: if i.is_multiple_of(2) {
            PositionSide::Long
        } else {
            PositionSide::Short
        },
        quantity: Decimal::from(i as i64 + 1),
        entry_price: Decimal::from(100 + i as i64),
        leverage: 5,
        intent_id: format!("i-{i}"),
        opened_at: 0,
        signal: None,
    }
}

fn closed(i: usize) -> PositionClosed {
    PositionClosed {
        position_id: format!("closed-{i}"),
        symbol: SYMBOLS[i % 8].into(),
        side: PositionSide::Long,
        max_quantity: Decimal::ONE,
        entry_price: Decimal::from(100),
        exit_price: Decimal::from(101),
        realized_pnl: Decimal::from((i % 7) as i64 - 3),
        fees: Decimal::new(1, 1),
        net_pnl: Decimal::from((i % 7) as i64 - 3) - Decimal::new(1, 1),
        opened_at: i as i64,
        closed_at: i as i64 + 1,
        reason: "stop".into(),
        signal: Some(SignalRef {
            signal_id: "s".into(),
            model: "gbdt".into(),
            model_version: format!("v{}", i % 3),
            confidence: 0.6,
            features: BTreeMap::new(),
            exits: None,
        }),
    }
}

fn book_report() {
    let mut b = Book::new(Decimal::from(10_000), 2_000);
    for i in 0..5_000 {
        b.on_closed(&closed(i));
    }
    for i in 0..8 {
        b.on_opened(&opened(i));
    }
    for t in 0..2_000 {
        b.push_equity(t, Decimal::from(10_000 + (t % 37) - 18));
    }
    let n = 200;
    let mut v = Vec::with_capacity(n);
    for k in 0..n {
        let t = Instant::now();
        let r = b.report(k as i64);
        std::hint::black_box(&r);
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "book.report (8 positions, 5000 trades, 2000 equity points): p50 {:.0} us, p99 {:.0} us ({n} runs)",
        pct(&mut v, 0.5),
        pct(&mut v, 0.99)
    );
}

async fn handler_and_snapshot(redis: &RedisServer, dir: &std::path::Path) {
    let clock: SharedClock = qt_events::clock::system();
    let bus = Bus::connect(
        BusConfig::new(
            redis.url(),
            StreamNames::new("b:"),
            "portfolio-intelligence",
        ),
        clock.clone(),
    )
    .unwrap();
    let db = Db::open(&qt_store::sqlite_url(&dir.join("bench.db")))
        .await
        .unwrap();
    let sh: Arc<Shared> = Shared::load(db, bus.clone(), clock, Settings::default())
        .await
        .unwrap();
    for i in 0..8 {
        sh.apply(&bus.envelope(Event::PositionOpened(opened(i))))
            .await
            .unwrap();
    }
    let n = 20_000;
    let envs: Vec<_> = (0..n)
        .map(|k| {
            bus.envelope(Event::MarkPriceUpdated(MarkPriceUpdated {
                symbol: SYMBOLS[k % 8].into(),
                mark_price: Decimal::from(100 + (k % 50) as i64),
                index_price: None,
                funding_rate: None,
                event_time: k as i64,
            }))
        })
        .collect();
    let t = Instant::now();
    for e in &envs {
        sh.apply(e).await.unwrap();
    }
    let per = t.elapsed().as_secs_f64() * 1e9 / n as f64;
    println!("Shared::apply(MarkPriceUpdated): {per:.0} ns per event ({n} events)");

    let runs = 200;
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        sh.snapshot().await.unwrap();
        v.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "snapshot (compute + SQLite insert with the report + XADD): p50 {:.2} ms, p99 {:.2} ms ({runs} runs)",
        pct(&mut v, 0.5),
        pct(&mut v, 0.99)
    );
}

async fn binary_rss(redis: &RedisServer, dir: &std::path::Path) {
    qt_exchange::install_crypto_provider();
    let cfg = SimConfig {
        keys: vec![ApiKey {
            key: "bench-key".into(),
            secret: "bench-secret".into(),
        }],
        source: MarketSource::Files(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../data/klines/5m/BTCUSDT-5m.csv.gz"),
        ),
        symbols: vec!["BTCUSDT".into()],
        speed: 0.0,
        warmup_candles: 300,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { sim_exchange::serve(cfg, listener, s).await.unwrap() });
    let base = format!("http://{addr}");
    let xcfg = ExchangeConfig::default()
        .with_urls(base.clone(), format!("ws://{addr}"))
        .with_credentials("bench-key", "bench-secret");
    let client = BinanceClient::new(xcfg, qt_events::clock::system()).unwrap();
    client.sync_time().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let db = qt_store::sqlite_url(&dir.join("bin.db"));
    let ws = base.replace("http://", "ws://");
    let redis_url = redis.url();
    let env: Vec<(&str, &str)> = vec![
        ("QT_REDIS_URL", &redis_url),
        ("QT_STREAM_PREFIX", "r:"),
        ("QT_HTTP_ADDR", &http),
        ("QT_EXCHANGE_REST_URL", &base),
        ("QT_EXCHANGE_WS_URL", &ws),
        ("QT_API_KEY", "bench-key"),
        ("QT_API_SECRET", "bench-secret"),
        ("QT_DATABASE_URL", &db),
        ("QT_PORTFOLIO_INTELLIGENCE__SYNC_INTERVAL", "100ms"),
        ("QT_PORTFOLIO_INTELLIGENCE__SNAPSHOT_INTERVAL", "100ms"),
        ("QT_LOG_LEVEL", "warn"),
    ];
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_portfolio-intelligence"));
    let mut child = ChildService::spawn(bin, &[], &env, dir.join("pi.log"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = child.pid().and_then(rss_kb);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later = child.pid().and_then(rss_kb);
    println!(
        "binary RSS: {} kB after 2 s, {} kB after 12 s of 100 ms syncs and snapshots",
        start.map_or("?".into(), |k| k.to_string()),
        later.map_or("?".into(), |k| k.to_string())
    );
    child.terminate(20);
    stop.cancel();
}

fn main() {
    book_report();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        handler_and_snapshot(&redis, dir.path()).await;
        binary_rss(&redis, dir.path()).await;
    });
}
