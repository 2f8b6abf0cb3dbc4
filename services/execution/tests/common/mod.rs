//! Test fixture: a real redis-server, the real simulator binary over HTTP/WS, a real SQLite
//! file in a temporary folder, and execution built on them (again after a simulated crash).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use execution::{Db, Execution, Settings};
use qt_bus::{Bus, BusConfig};
use qt_events::{
    Envelope, Event, OpenPosition, OrderKind, PositionSide, ProtectPosition, SignalRef, StopLeg,
    Stream, StreamNames, TakeProfitLeg, WorkingType,
};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig};
use qt_testkit::{RedisServer, SimExchange, SimExchangeBuilder};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const KEY: &str = "exec-key";
pub const SECRET: &str = "exec-secret";
pub const SYMBOL: &str = "BTCUSDT";

pub type Ex = Arc<Execution<BinanceClient>>;

pub struct Fixture {
    pub redis: RedisServer,
    pub bus: Bus,
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub base: String,
    pub xcfg: ExchangeConfig,
    pub client: BinanceClient,
    pub http: reqwest::Client,
    /// The simulator binary (killed when the fixture is dropped).
    sim: SimExchange,
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub async fn fixture() -> Fixture {
    fixture_with(|b| b).await
}

/// [`fixture`] with the simulator's builder changed by `sim` first (a setting, a fault).
pub async fn fixture_with(sim: impl FnOnce(SimExchangeBuilder) -> SimExchangeBuilder) -> Fixture {
    qt_exchange::install_crypto_provider();
    let redis = RedisServer::start();
    let sim = sim(SimExchange::builder()
        .key(KEY, SECRET)
        .repo_data(&[SYMBOL])
        .warmup_candles(300))
    .start();
    let base = sim.rest_url();
    let mut xcfg = ExchangeConfig::default()
        .with_urls(base.clone(), sim.ws_url())
        .with_credentials(KEY, SECRET);
    xcfg.request_timeout_ms = 800;
    xcfg.recv_window_ms = 1_000;
    xcfg.resolve_margin_ms = 200;
    let client = BinanceClient::new(xcfg.clone(), qt_events::clock::system()).unwrap();
    client.sync_time().await.unwrap();
    let prefix = format!("t{}:", std::process::id());
    let bus = Bus::connect(
        BusConfig::new(redis.url(), StreamNames::new(prefix), "execution"),
        qt_events::clock::system(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = qt_store::sqlite_url(&dir.path().join("execution.db"));
    Fixture {
        redis,
        bus,
        dir,
        db_url,
        base,
        xcfg,
        client,
        http: reqwest::Client::new(),
        sim,
    }
}

pub fn settings() -> Settings {
    Settings {
        poll_interval: Duration::from_millis(500),
        reconcile_interval: Duration::from_secs(60),
        ..Settings::default()
    }
}

impl Fixture {
    /// Execution as a (re)started process would build it: state from the database.
    pub async fn execution(&self, settings: Settings) -> Ex {
        self.execution_with(self.client.clone(), settings).await
    }

    /// As [`execution`](Self::execution), with its own exchange client.
    pub async fn execution_with(&self, client: BinanceClient, settings: Settings) -> Ex {
        let db = Db::open(&self.db_url).await.unwrap();
        Execution::new(
            db,
            client,
            self.bus.clone(),
            qt_events::clock::system(),
            settings,
            self.xcfg.recv_window_ms,
            self.xcfg.resolve_margin_ms,
        )
        .await
        .unwrap()
    }

    pub async fn control(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.post(url),
        };
        req.send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    pub async fn lose_next_response(&self, hold_ms: u64) {
        self.control(
            "/sim/faults",
            Some(json!({"loseNext": 1, "lostResponseMs": hold_ms})),
        )
        .await;
    }

    pub async fn set_mark(&self, price: Decimal) {
        self.control(&format!("/sim/mark?symbol={SYMBOL}&price={price}"), None)
            .await;
    }

    /// Every order the simulator ever accepted for the symbol.
    pub async fn all_orders(&self) -> Vec<Value> {
        self.history("/fapi/v1/allOrders").await
    }

    /// The client ids of every conditional order the simulator ever accepted for the symbol,
    /// sorted.
    pub async fn all_algo_orders(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .history("/fapi/v1/allAlgoOrders")
            .await
            .iter()
            .filter_map(|o| o["clientAlgoId"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// Every order of the symbol the simulator answers on `path` (`allOrders`, `allAlgoOrders`).
    pub async fn history(&self, path: &str) -> Vec<Value> {
        let ts = self.client.server_now_ms();
        let q = format!("symbol={SYMBOL}&timestamp={ts}");
        let sig = sim_exchange::sign::sign(SECRET, &q);
        let url = format!("{}{path}?{q}&signature={sig}", self.base);
        let v: Value = self
            .http
            .get(url)
            .header("X-MBX-APIKEY", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    pub async fn position_amt(&self) -> Decimal {
        self.client
            .positions(Some(SYMBOL))
            .await
            .unwrap()
            .iter()
            .map(|p| p.position_amt)
            .sum()
    }

    pub async fn mark(&self) -> Decimal {
        self.client.mark_price(SYMBOL).await.unwrap().mark_price
    }

    /// Events published on a stream so far.
    pub async fn events(&self, stream: Stream) -> Vec<Envelope> {
        let key = self.bus.key(stream);
        self.bus
            .range(&key, "-", "+", 100_000)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| Envelope::from_fields(e.field_pairs()).ok())
            .collect()
    }

    /// Waits until a stream holds an event matching `pred`.
    pub async fn wait_event(
        &self,
        stream: Stream,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Envelope {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self
                .events(stream)
                .await
                .into_iter()
                .find(|e| pred(&e.event))
            {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST` a signed `/fapi` request of the fixture's account with `query` (without
    /// timestamp and signature); the answer's JSON.
    pub async fn signed_post(&self, path: &str, query: &str) -> Value {
        let ts = self.client.server_now_ms();
        let q = format!("{query}&timestamp={ts}");
        let sig = sim_exchange::sign::sign(SECRET, &q);
        let url = format!("{}{path}?{q}&signature={sig}", self.base);
        self.http
            .post(url)
            .header("X-MBX-APIKEY", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    pub async fn stop(mut self) {
        self.sim.kill9();
    }
}

pub fn open_intent(bus: &Bus, intent_id: &str, qty: &str, reference: Decimal) -> Envelope {
    bus.envelope(Event::OpenPosition(OpenPosition {
        intent_id: intent_id.into(),
        symbol: SYMBOL.into(),
        side: PositionSide::Long,
        quantity: dec(qty),
        order_type: OrderKind::Market,
        limit_price: None,
        leverage: 5,
        reference_price: reference,
        signal: Some(SignalRef {
            signal_id: "sig-1".into(),
            model: "momentum".into(),
            model_version: "m-7".into(),
            confidence: 0.8,
            features: [("rsi_14".to_string(), 61.5)].into_iter().collect(),
            exits: None,
        }),
    }))
}

/// Runs the user data stream task until the returned token is cancelled.
pub fn follow_user_stream(fx: &Fixture, ex: &Ex) -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(execution::run_user_stream(
        ex.clone(),
        fx.xcfg.clone(),
        token.clone(),
    ));
    token
}

/// A protect intent for a long position at `mark`: a stop 3 % below and `tps` take-profit legs
/// of 0.005 each, 1 %, 2 %, … above.
pub fn protect_intent(bus: &Bus, intent_id: &str, mark: Decimal, tps: u32) -> Envelope {
    bus.envelope(Event::ProtectPosition(ProtectPosition {
        intent_id: intent_id.into(),
        symbol: SYMBOL.into(),
        position_side: PositionSide::Long,
        stop: Some(StopLeg {
            trigger_price: (mark * dec("0.97")).round_dp(1),
            working_type: WorkingType::MarkPrice,
        }),
        take_profits: (1..=tps)
            .map(|i| TakeProfitLeg {
                leg: format!("tp{i}"),
                trigger_price: (mark * (Decimal::ONE + Decimal::new(i64::from(i), 2))).round_dp(1),
                quantity: dec("0.005"),
            })
            .collect(),
        trailing: None,
    }))
}
