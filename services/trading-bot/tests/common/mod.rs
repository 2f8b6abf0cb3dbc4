//! Test fixture: a real redis-server, the real simulator binary (stepped through `/sim`),
//! and the trading bot with its four consumers, all in this process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use qt_bus::{Bus, BusConfig, Consumer, ConsumerConfig};
use qt_events::{Envelope, Event, Stream, StreamNames};
use qt_exchange::ExchangeConfig;
use qt_models::{ModelArtifact, MomentumConfig};
use qt_testkit::{RedisServer, SimExchange};
use tokio_util::sync::CancellationToken;
use trading_bot::{BotStats, CONSUMES, Settings, TradingBot};

pub const KEY: &str = "bot-key";
pub const SECRET: &str = "bot-secret";
pub const SYMBOL: &str = "BTCUSDT";
pub const FIVE_MIN: i64 = 300_000;

pub struct Fixture {
    pub redis: RedisServer,
    pub bus: Bus,
    /// Publishes as someone else (execution, clm, an operator).
    pub other: Bus,
    pub http: reqwest::Client,
    pub sim_base: String,
    pub sim_ws: String,
    pub dir: tempfile::TempDir,
    pub ready: Arc<AtomicBool>,
    pub stats: Arc<BotStats>,
    settings: Settings,
    exchange: ExchangeConfig,
    shutdown: CancellationToken,
    /// The simulator binary (killed when the fixture is dropped).
    pub sim: SimExchange,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub use qt_testkit::repo_klines as repo_data;

/// A momentum artifact whose thresholds are so small that every candle that moves is a BUY or
/// SELL at full confidence.
pub fn eager_momentum(dir: &Path, version: &str) -> (PathBuf, String) {
    let a = ModelArtifact::momentum(
        &MomentumConfig {
            buy_threshold: 1e-9,
            sell_threshold: -1e-9,
        },
        version,
    )
    .unwrap();
    let path = dir.join(format!("{version}.json"));
    a.save(&path).unwrap();
    let sha = trading_bot::model::sha256_hex(&std::fs::read(&path).unwrap());
    (path, sha)
}

/// A temporal model trained (one epoch) on the last 4,000 candles of the repo's BTCUSDT 5m
/// file, saved as `<version>.json` in `dir`; returns its path and SHA-256.
pub fn temporal_model(dir: &Path, version: &str) -> (PathBuf, String) {
    let mut candles = qt_candles::read_klines(repo_data(SYMBOL)).unwrap();
    let n = candles.len();
    candles.drain(..n - 4000);
    let series = [qt_models::dataset::Series {
        symbol: SYMBOL.into(),
        interval_ms: FIVE_MIN,
        candles,
    }];
    let mut cfg = qt_models::train::TrainConfig::new(qt_models::ModelKind::Temporal, version);
    cfg.temporal.epochs = 1;
    cfg.threads = 1;
    let (a, _) = qt_models::train::train(&series, &cfg).unwrap();
    let path = dir.join(format!("{version}.json"));
    a.save(&path).unwrap();
    let sha = trading_bot::model::sha256_hex(&std::fs::read(&path).unwrap());
    (path, sha)
}

fn bus(redis: &RedisServer, prefix: &str, src: &str) -> Bus {
    Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new(prefix.to_string()), src),
        qt_events::clock::system(),
    )
    .unwrap()
}

impl Fixture {
    /// Starts everything; `settings` adjusts the bot's settings (symbols are BTCUSDT). Returns
    /// once the bot is warmed up and its market streams are connected.
    pub async fn start(settings: impl FnOnce(&Path, &mut Settings)) -> Fixture {
        let mut f = Self::infra(settings).await;
        f.start_bot().await;
        f
    }

    /// Redis and the simulator only; the bot is started by [`Fixture::start_bot`] or run as a
    /// process by the test.
    pub async fn infra(settings: impl FnOnce(&Path, &mut Settings)) -> Fixture {
        Self::infra_with(&[SYMBOL], settings).await
    }

    /// [`Fixture::infra`] with a simulator serving `symbols` (from the repo's 5m files).
    pub async fn infra_with(
        symbols: &[&str],
        settings: impl FnOnce(&Path, &mut Settings),
    ) -> Fixture {
        Self::infra_on(
            SimExchange::builder()
                .repo_data(symbols)
                .warmup_candles(300),
            settings,
        )
        .await
    }

    /// [`Fixture::infra`] with the simulator `sim` (the bot's key is added).
    pub async fn infra_on(
        sim: qt_testkit::SimExchangeBuilder,
        settings: impl FnOnce(&Path, &mut Settings),
    ) -> Fixture {
        qt_exchange::install_crypto_provider();
        let redis = RedisServer::start();
        let prefix = "qt-test:";
        let dir = tempfile::tempdir().unwrap();

        let sim = sim.key(KEY, SECRET).start();
        let sim_base = sim.rest_url();

        // The machinery under test needs a model that trades: momentum, not the default none.
        let mut s = Settings {
            symbols: vec![SYMBOL.into()],
            model: trading_bot::ModelChoice::Momentum,
            ..Settings::default()
        };
        settings(dir.path(), &mut s);
        let mut ex = ExchangeConfig::default()
            .with_urls(sim_base.clone(), sim.ws_url())
            .with_credentials(KEY, SECRET);
        // Slow enough reconnects that a test can step the market while the stream is down.
        ex.ws.reconnect_backoff_min_ms = 1_500;
        Fixture {
            other: bus(&redis, prefix, "test"),
            bus: bus(&redis, prefix, "trading-bot"),
            redis,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            sim_ws: sim.ws_url(),
            sim_base,
            dir,
            ready: Arc::default(),
            stats: Arc::default(),
            settings: s,
            exchange: ex,
            shutdown: CancellationToken::new(),
            sim,
            tasks: Vec::new(),
        }
    }

    /// Starts a bot (again) on the same Redis and simulator, and waits until it is ready.
    pub async fn start_bot(&mut self) {
        let bot = TradingBot::new(
            self.settings.clone(),
            self.exchange.clone(),
            self.bus.clone(),
            qt_events::clock::system(),
        )
        .unwrap();
        self.ready = bot.readiness();
        self.stats = bot.stats();
        self.shutdown = CancellationToken::new();
        for stream in CONSUMES {
            let mut cfg = ConsumerConfig::new(stream, "trading-bot", "trading-bot-0");
            cfg.block = Duration::from_millis(100);
            let consumer = Consumer::new(self.bus.clone(), cfg, bot.inbox());
            self.tasks
                .push(tokio::spawn(consumer.run(self.shutdown.clone())));
        }
        self.tasks
            .push(tokio::spawn(bot.run(self.shutdown.clone())));
        let ready = self.ready.clone();
        wait_until(10, "the bot to be warmed up and connected", || {
            ready.load(Ordering::Relaxed)
        })
        .await;
    }

    /// Stops the bot and its consumers (Redis and the simulator keep running).
    pub async fn stop_bot(&mut self) {
        self.shutdown.cancel();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    pub async fn sim(&self, path_and_query: &str) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}{path_and_query}", self.sim_base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path_and_query}: {}", r.status());
        r.json().await.unwrap_or(serde_json::Value::Null)
    }

    /// Closes `n` more candles on the simulator.
    pub async fn step(&self, n: u32) {
        self.sim(&format!("/sim/step?candles={n}")).await;
    }

    /// Every envelope on `stream`, oldest first.
    pub async fn read(&self, stream: Stream) -> Vec<Envelope> {
        self.bus
            .range(&self.bus.key(stream), "-", "+", 100_000)
            .await
            .unwrap()
            .iter()
            .map(|e| Envelope::from_fields(e.field_pairs()).unwrap())
            .collect()
    }

    pub async fn candles(&self) -> Vec<qt_events::CandleClosed> {
        self.read(Stream::Market)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Event::CandleClosed(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    pub async fn signals(&self) -> Vec<qt_events::SignalGenerated> {
        self.read(Stream::Signals)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Event::SignalGenerated(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    pub async fn intents(&self) -> Vec<qt_events::OpenPosition> {
        self.read(Stream::Intents)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Event::OpenPosition(o) => Some(o),
                _ => None,
            })
            .collect()
    }

    /// Waits until `n` signals are on `signals` (each closed candle makes one).
    pub async fn wait_signals(&self, n: usize) -> Vec<qt_events::SignalGenerated> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.signals().await;
            if s.len() >= n {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} signals after 10 s",
                s.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes `event` as another service and waits until the bot has applied and
    /// acknowledged it.
    pub async fn tell(&self, event: Event) {
        let stream = event.stream();
        let id = self
            .other
            .publish(&self.other.envelope(event))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = self.bus.stats(stream).await.unwrap();
            if st
                .groups
                .iter()
                .any(|g| g.name == "trading-bot" && g.last_delivered_id == id && g.pending == 0)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the bot did not take {id} on {stream:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        self.stop_bot().await;
        self.sim.kill9();
    }
}

pub async fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
