//! Shared test fixtures: a real Redis, a real SQLite file, the repo's candle files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clm::{Clm, Db, Settings};
use qt_bus::{Bus, BusConfig};
use qt_candles::Candle;
use qt_events::clock::{ManualClock, SharedClock};
use qt_events::{Envelope, Event, Stream, StreamNames};
use qt_testkit::RedisServer;

pub const PREFIX: &str = "qt-test:";
pub const SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

pub fn repo_klines() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/klines/5m")
}

/// The repo's candles of a symbol.
pub fn candles(symbol: &str) -> Vec<Candle> {
    qt_candles::read_klines(repo_klines().join(format!("{symbol}-5m.csv.gz"))).unwrap()
}

/// Tiny training settings so a cycle takes about a second.
pub fn tiny_settings(dir: &Path) -> Settings {
    let mut s = Settings {
        sqlite_path: dir.join("clm.db"),
        seed_dir: None,
        artifacts_dir: dir.join("models"),
        window_days: 6,
        ..Settings::default()
    };
    s.gbdt.iterations = 12;
    s.gbdt.max_depth = 3;
    s.gbdt.nbins = 32;
    // Exits this short window reaches on both sides: one take-profit at +0.6%, a stop at
    // −0.6%, no trailing, 2 h time stop; labels follow a trade for up to 30 candles.
    let d = |v: i64, scale: u32| rust_decimal::Decimal::new(v, scale);
    s.backtest.exits = qt_exits::ExitConfig {
        low_vol_targets_pct: vec![d(6, 1)],
        high_vol_targets_pct: vec![d(6, 1)],
        leg_fractions: vec![d(1, 0)],
        stop_pct: d(6, 1),
        trailing_activation_pct: None,
        time_stop_minutes: Some(120),
        ..qt_exits::ExitConfig::default()
    };
    s.label_horizon = 30;
    s.tick_seconds = 1;
    // These tests are about the machinery, not about edge: a tiny model on six days has
    // none after costs and, deciding by expected value, would never trade; nor would it pass
    // the walk-forward against the baselines (tested on its own in lifecycle.rs).
    s.decision = Some(qt_models::train::Decision::TargetMix(0.35, 0.35));
    s.walkforward.enabled = false;
    // Lenient absolute minimums.
    s.gate.min_trades = 1;
    // A tiny model's confidences are low; let every BUY/SELL trade in the backtests.
    s.backtest.min_confidence = 0.0;
    s.gate.min_net_pnl = rust_decimal::Decimal::from(-1_000_000);
    s.gate.max_drawdown_pct = 1.0;
    s.gate.min_action_share = 0.01;
    s.gate.max_hold_share = 0.98;
    s
}

pub fn bus(redis: &RedisServer, clock: SharedClock) -> Bus {
    Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new(PREFIX), "clm"),
        clock,
    )
    .unwrap()
}

pub struct Fixture {
    pub redis: RedisServer,
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub bus: Bus,
}

impl Fixture {
    pub fn new() -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(0));
        let bus = bus(&redis, clock.clone());
        Self {
            redis,
            dir,
            clock,
            bus,
        }
    }

    pub async fn clm(&self, settings: Settings) -> Arc<Clm> {
        let db = Db::open(&qt_store::sqlite_url(&settings.sqlite_path))
            .await
            .unwrap();
        Clm::new(db, self.bus.clone(), self.clock.clone(), settings)
    }

    /// Every envelope on a stream.
    pub async fn entries(&self, stream: Stream) -> Vec<Envelope> {
        let key = self.bus.key(stream);
        self.bus
            .range(&key, "-", "+", 10_000)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| Envelope::from_fields(e.field_pairs()).ok())
            .collect()
    }

    pub async fn deployed(&self) -> Vec<(String, String)> {
        self.entries(Stream::Models)
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Event::ModelDeployed(d) => Some((e.id, d.artifact.model_version)),
                _ => None,
            })
            .collect()
    }
}

/// Loads the first `days` of each test symbol into the database; returns the candles left.
pub async fn seed_days(clm: &Clm, days: i64) -> Vec<(String, Vec<Candle>)> {
    let mut rest = Vec::new();
    for sym in SYMBOLS {
        let all = candles(sym);
        let cut = all.partition_point(|c| c.open_time < all[0].open_time + days * 86_400_000);
        clm.db.insert_candles(sym, &all[..cut]).await.unwrap();
        rest.push((sym.to_string(), all[cut..].to_vec()));
    }
    rest
}
