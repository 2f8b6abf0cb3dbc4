//! Test fixture: a simulator served in-process on 127.0.0.1:0, a signing HTTP client and a
//! WebSocket reader.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sim_exchange::{ApiKey, MarketSource, SimConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub fn repo_data(symbol: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/klines/5m")
        .join(format!("{symbol}-5m.csv.gz"))
}

/// A config replaying the repo's BTCUSDT candles, stepped only by the tests.
pub fn replay_config() -> SimConfig {
    SimConfig {
        keys: vec![ApiKey {
            key: KEY.into(),
            secret: SECRET.into(),
        }],
        source: MarketSource::Files(repo_data("BTCUSDT")),
        symbols: vec!["BTCUSDT".into()],
        speed: 0.0,
        warmup_candles: 300,
        ..SimConfig::default()
    }
}

pub struct Sim {
    pub base: String,
    pub ws_base: String,
    pub http: reqwest::Client,
    shutdown: Option<CancellationToken>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A client of a simulator running elsewhere (a spawned binary).
pub fn connect(base: &str) -> Sim {
    install_provider();
    Sim {
        base: base.to_string(),
        ws_base: base.replace("http://", "ws://"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        shutdown: None,
        task: None,
    }
}

pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub async fn start(cfg: SimConfig) -> Sim {
    install_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        sim_exchange::serve(cfg, listener, stop).await.unwrap();
    });
    Sim {
        base: format!("http://{addr}"),
        ws_base: format!("ws://{addr}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

pub fn sign(secret: &str, payload: &str) -> String {
    sim_exchange::sign::sign(secret, payload)
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(0)
    }
}

impl Sim {
    /// Stop the server and wait until its state is saved.
    pub async fn stop(mut self) {
        if let Some(s) = &self.shutdown {
            s.cancel();
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// A signed request: params in the query string, timestamp added, signature last.
    pub async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, &str)],
    ) -> Reply {
        self.signed_as(KEY, SECRET, method, path, params, now_ms())
            .await
    }

    pub async fn signed_as(
        &self,
        key: &str,
        secret: &str,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, &str)],
        timestamp: i64,
    ) -> Reply {
        let mut q: String = params.iter().map(|(k, v)| format!("{k}={v}&")).collect();
        q.push_str(&format!("timestamp={timestamp}"));
        let sig = sign(secret, &q);
        let url = format!("{}{path}?{q}&signature={sig}", self.base);
        let resp = self
            .http
            .request(method, url)
            .header("X-MBX-APIKEY", key)
            .send()
            .await
            .unwrap();
        to_reply(resp).await
    }

    pub async fn get(&self, path_and_query: &str) -> Reply {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .unwrap();
        to_reply(resp).await
    }

    pub async fn control(&self, path_and_query: &str, body: Option<Value>) -> Value {
        let mut r = self.http.post(format!("{}{path_and_query}", self.base));
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "control {path_and_query} failed: {}",
            resp.status()
        );
        resp.json().await.unwrap()
    }

    pub async fn step(&self, candles: u32) -> Value {
        self.control(&format!("/sim/step?candles={candles}"), None)
            .await
    }

    pub async fn state(&self) -> Value {
        self.get("/sim/state").await.body
    }

    pub async fn order(&self, params: &[(&str, &str)]) -> Reply {
        self.signed(reqwest::Method::POST, "/fapi/v1/order", params)
            .await
    }

    pub async fn listen_key(&self) -> String {
        let resp = self
            .http
            .post(format!("{}/fapi/v1/listenKey", self.base))
            .header("X-MBX-APIKEY", KEY)
            .send()
            .await
            .unwrap();
        let v: Value = resp.json().await.unwrap();
        v["listenKey"].as_str().unwrap().to_string()
    }

    pub async fn user_ws(&self, listen_key: &str) -> Ws {
        let url = format!(
            "{}/private/ws?listenKey={listen_key}&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE",
            self.ws_base
        );
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }

    pub async fn market_ws(&self) -> Ws {
        tokio_tungstenite::connect_async(format!("{}/market/ws", self.ws_base))
            .await
            .unwrap()
            .0
    }

    /// Position amount of a symbol from `/fapi/v3/positionRisk` (0 when none).
    pub async fn position(&self, symbol: &str) -> rust_decimal::Decimal {
        let r = self
            .signed(
                reqwest::Method::GET,
                "/fapi/v3/positionRisk",
                &[("symbol", symbol)],
            )
            .await;
        r.body
            .as_array()
            .and_then(|a| a.first())
            .and_then(|p| p["positionAmt"].as_str())
            .map(|s| s.parse().unwrap())
            .unwrap_or_default()
    }
}

async fn to_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        body,
        headers,
    }
}

pub async fn subscribe(ws: &mut Ws, streams: &[&str]) {
    let req = serde_json::json!({"method": "SUBSCRIBE", "params": streams, "id": 1});
    ws.send(Message::Text(req.to_string().into()))
        .await
        .unwrap();
    let reply = next_json(ws).await.expect("subscribe reply");
    assert_eq!(reply["id"], 1, "unexpected reply {reply}");
}

/// Next JSON text message, or `None` when the connection ended or 5 s passed.
pub async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Read user events until one matches; panics after 5 s without it.
pub async fn wait_event(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = next_json(ws).await.expect("event did not arrive");
        if pred(&v) {
            return v;
        }
    }
}

pub fn dec(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap()
}

pub fn field_dec(v: &Value, name: &str) -> rust_decimal::Decimal {
    v[name]
        .as_str()
        .map(dec)
        .unwrap_or_else(|| panic!("field {name} missing in {v}"))
}
