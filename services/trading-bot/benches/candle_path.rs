//! Prints two figures of the trading bot:
//!
//! 1. `core`: the decision path alone (no I/O) — a closed candle through the feature engine,
//!    the momentum model, the entry gate and sizing, building the `CandleClosed`,
//!    `SignalGenerated` and (when the gate allows) `OpenPosition` envelopes — over the repo's
//!    60 days of BTCUSDT 5m candles, as candles per second.
//! 2. `candle-to-signal`: the whole live path — the simulator closes a candle (`POST
//!    /sim/step`), it travels over the kline WebSocket to the bot, which publishes the candle,
//!    the signal and the intent to a real Redis in one pipeline — measured from the step's
//!    request to the signal being readable with `XREAD`, as p50/p90/p99/max over N candles.
//!
//! `cargo bench -p trading-bot --bench candle_path` (`QT_BENCH_STEPS`, default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use qt_bus::{Bus, BusConfig};
use qt_events::clock::ManualClock;
use qt_events::{Stream, StreamNames};
use qt_models::{ModelArtifact, MomentumConfig, MomentumModel};
use qt_risk::{Sizing, SymbolFilters};
use rust_decimal::Decimal;
use sim_exchange::{ApiKey, MarketSource, SimConfig};
use tokio_util::sync::CancellationToken;
use trading_bot::decisions::{Core, CoreConfig};
use trading_bot::{Settings, TradingBot};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m/BTCUSDT-5m.csv.gz")
}

fn core_bench() {
    let candles = qt_candles::read_klines(data()).unwrap();
    let events: Vec<_> = candles
        .iter()
        .map(|c| c.to_event("BTCUSDT", 300_000).unwrap())
        .collect();
    let clock = Arc::new(ManualClock::new(0));
    let model = MomentumModel::new(MomentumConfig::default(), "bench").unwrap();
    let mut core = Core::new(
        CoreConfig {
            src: "trading-bot".into(),
            interval: "5m".into(),
            interval_ms: 300_000,
            min_confidence: 0.5,
            sizing: Sizing::default(),
            sizing_stop_fraction: 0.02,
            cooldown_ms: 900_000,
            // Pending intents expire at once: every BUY/SELL goes all the way to an intent.
            pending_timeout_ms: 0,
            mark_price_min_interval_ms: 1_000,
        },
        clock,
        Box::new(model),
    );
    core.add_symbol(
        "BTCUSDT",
        SymbolFilters {
            tick_size: Decimal::new(1, 1),
            step_size: Decimal::new(1, 3),
            min_qty: Decimal::new(1, 3),
            max_qty: Decimal::from(1000),
            min_notional: Decimal::from(100),
            ..SymbolFilters::NONE
        },
    );
    let start = Instant::now();
    let mut published = 0usize;
    let mut intents = 0usize;
    for e in &events {
        let (_, envs) = core.on_candle(e, true);
        published += envs.len();
        intents += usize::from(envs.len() == 3);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "core: {} candles in {:.3} s = {:.0} candles/s ({:.2} µs/candle); {} envelopes, {} intents",
        events.len(),
        secs,
        events.len() as f64 / secs,
        secs * 1e6 / events.len() as f64,
        published,
        intents
    );
}

async fn live_bench(steps: usize) {
    qt_exchange::install_crypto_provider();
    let redis = qt_testkit::RedisServer::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim_stop = CancellationToken::new();
    let cfg = SimConfig {
        keys: vec![ApiKey {
            key: "k".into(),
            secret: "s".into(),
        }],
        source: MarketSource::Files(data()),
        symbols: vec!["BTCUSDT".into()],
        speed: 0.0,
        warmup_candles: 300,
        ..SimConfig::default()
    };
    let stop = sim_stop.clone();
    let sim = tokio::spawn(async move { sim_exchange::serve(cfg, listener, stop).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let artifact = dir.path().join("eager.json");
    ModelArtifact::momentum(
        &MomentumConfig {
            buy_threshold: 1e-9,
            sell_threshold: -1e-9,
        },
        "eager",
    )
    .unwrap()
    .save(&artifact)
    .unwrap();
    let settings = Settings {
        symbols: vec!["BTCUSDT".into()],
        model_artifact: Some(artifact),
        pending_timeout_seconds: 0,
        ..Settings::default()
    };
    let ex = qt_exchange::ExchangeConfig::default()
        .with_urls(format!("http://{addr}"), format!("ws://{addr}"))
        .with_credentials("k", "s");
    let bus = Bus::connect(
        BusConfig::new(
            redis.url(),
            StreamNames::new("bench:".to_string()),
            "trading-bot",
        ),
        qt_events::clock::system(),
    )
    .unwrap();
    let bot = TradingBot::new(settings, ex, bus.clone(), qt_events::clock::system()).unwrap();
    let ready = bot.readiness();
    let stats = bot.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(bot.run(shutdown.clone()));
    while !ready.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let http = reqwest::Client::new();
    let key = bus.key(Stream::Signals);
    let mut conn = bus.dedicated(Duration::from_secs(10)).await.unwrap();
    let mut last_id = "0-0".to_string();
    let mut lat = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        let r = http
            .post(format!("http://{addr}/sim/step?candles=1"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let got = Bus::read_after(&mut conn, &key, &last_id, Duration::from_secs(5), 10)
            .await
            .unwrap();
        let e = got.last().expect("a signal within 5 s");
        last_id.clone_from(&e.id);
        lat.push(t.elapsed());
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "candle-to-signal (sim step → kline WS → bot → Redis → XREAD), {} candles: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}; intents sent {}",
        lat.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        lat[lat.len() - 1],
        stats.intents.load(Ordering::Relaxed)
    );
    shutdown.cancel();
    let _ = task.await;
    sim_stop.cancel();
    let _ = sim.await;
}

fn main() {
    core_bench();
    let steps = std::env::var("QT_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(live_bench(steps));
}
