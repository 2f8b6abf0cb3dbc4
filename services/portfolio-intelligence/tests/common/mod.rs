//! Test fixture: a real redis-server, a real SQLite file in a temporary folder, a manual clock,
//! and portfolio-intelligence's shared state built on them (as a started process would).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use portfolio_intelligence::{Db, Settings, Shared};
use qt_bus::{Bus, BusConfig};
use qt_events::clock::{ManualClock, SharedClock};
use qt_events::{Envelope, Event, Stream, StreamNames};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig};
use qt_testkit::{RedisServer, SimExchange};

pub const SYMBOL: &str = "BTCUSDT";
pub const KEY: &str = "pi-key";
pub const SECRET: &str = "pi-secret";

/// 2026-01-02 00:00:00 UTC.
pub const DAY: i64 = 1_767_312_000_000;

pub struct Fixture {
    pub redis: RedisServer,
    pub bus: Bus,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    pub db_url: String,
}

pub fn fixture() -> Fixture {
    let redis = RedisServer::start();
    let clock = Arc::new(ManualClock::new(DAY + 12 * 3_600_000));
    let shared_clock: SharedClock = clock.clone();
    let bus = Bus::connect(
        BusConfig::new(
            redis.url(),
            StreamNames::new("t:"),
            "portfolio-intelligence",
        ),
        shared_clock,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = qt_store::sqlite_url(&dir.path().join("pi.db"));
    Fixture {
        redis,
        bus,
        clock,
        dir,
        db_url,
    }
}

impl Fixture {
    /// The service's state as a (re)started process builds it.
    pub async fn shared(&self, settings: Settings) -> Arc<Shared> {
        let db = Db::open(&self.db_url).await.unwrap();
        let clock: SharedClock = self.clock.clone();
        Shared::load(db, self.bus.clone(), clock, settings)
            .await
            .unwrap()
    }

    pub fn envelope(&self, event: Event) -> Envelope {
        self.bus.envelope(event)
    }

    /// Every decoded event on a stream, oldest first.
    pub async fn events(&self, stream: Stream) -> Vec<Envelope> {
        let key = self.bus.key(stream);
        self.bus
            .range(&key, "-", "+", 10_000)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| Envelope::from_fields(e.field_pairs()).ok())
            .collect()
    }
}

/// The real simulator binary on a free port (5000 USDT, BTCUSDT from the repo's klines), a
/// client for it, its base URL, and the process (killed when dropped).
pub async fn sim() -> (BinanceClient, String, SimExchange) {
    qt_exchange::install_crypto_provider();
    let sim = SimExchange::builder()
        .key(KEY, SECRET)
        .repo_data(&[SYMBOL])
        .warmup_candles(300)
        .setting("initial_balance = \"5000\"")
        .start();
    let xcfg = ExchangeConfig::default()
        .with_urls(sim.rest_url(), sim.ws_url())
        .with_credentials(KEY, SECRET);
    let client = BinanceClient::new(xcfg, qt_events::clock::system()).unwrap();
    client.sync_time().await.unwrap();
    (client, sim.rest_url(), sim)
}
