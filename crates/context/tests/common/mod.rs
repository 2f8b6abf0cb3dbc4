//! A local HTTP server speaking each provider's documented responses (CoinGecko v3,
//! alternative.me `/fng/`, Binance USDⓈ-M futures data), with switchable failures (429 with or
//! without `Retry-After`, 5xx, malformed JSON, slow answers) and a count of the requests it got.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use qt_bus::{Bus, BusConfig, SharedCache};
use qt_events::StreamNames;
use qt_events::clock::SharedClock;

/// How the fake answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Ok,
    RateLimited { retry_after_s: Option<u64> },
    ServerError,
    Malformed,
    Slow(Duration),
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub mode: Mutex<HashMap<String, Mode>>,
    pub hits: Mutex<HashMap<String, u64>>,
    pub total: AtomicU64,
}

#[derive(Debug, Clone)]
pub struct Fake {
    pub url: String,
    pub state: Arc<FakeState>,
}

impl Fake {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, state }
    }

    /// Sets how `path` answers from now on.
    pub fn set(&self, path: &str, mode: Mode) {
        self.state
            .mode
            .lock()
            .unwrap()
            .insert(path.to_string(), mode);
    }

    /// Requests `path` received.
    pub fn hits(&self, path: &str) -> u64 {
        *self.state.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub fn total(&self) -> u64 {
        self.state.total.load(Ordering::SeqCst)
    }
}

async fn answer(State(st): State<Arc<FakeState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    st.total.fetch_add(1, Ordering::SeqCst);
    *st.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let mode = st
        .mode
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or(Mode::Ok);
    match mode {
        Mode::Ok => {}
        Mode::RateLimited { retry_after_s } => {
            let mut h = HeaderMap::new();
            if let Some(s) = retry_after_s {
                h.insert("retry-after", s.to_string().parse().unwrap());
            }
            return (StatusCode::TOO_MANY_REQUESTS, h, r#"{"status":{"error_code":429,"error_message":"You've exceeded the Rate Limit."}}"#).into_response();
        }
        Mode::ServerError => {
            return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
        }
        Mode::Malformed => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                r#"{"data": {"total_market_cap": "#,
            )
                .into_response();
        }
        Mode::Slow(d) => tokio::time::sleep(d).await,
    }
    let body = match path.as_str() {
        "/api/v3/global" => GLOBAL,
        "/api/v3/coins/markets" => MARKETS,
        "/api/v3/search/trending" => TRENDING,
        "/fng/" => FNG,
        "/fapi/v1/fundingRate" => FUNDING,
        "/fapi/v1/openInterest" => OI_NOW,
        "/futures/data/openInterestHist" => OI_HIST,
        "/futures/data/topLongShortPositionRatio" | "/futures/data/globalLongShortAccountRatio" => {
            LONG_SHORT
        }
        "/futures/data/takerlongshortRatio" => TAKER,
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

// Shapes as the providers document them (values from their documentation examples).
pub const GLOBAL: &str = r#"{"data":{"active_cryptocurrencies":13690,"upcoming_icos":0,"ongoing_icos":49,"ended_icos":3376,"markets":1046,
"total_market_cap":{"btc":39003738.0847159,"eth":803832137.207531,"usd":2721226850772.63},
"total_volume":{"btc":993675.225562481,"eth":20478757.1519219,"usd":69327091133.5249},
"market_cap_percentage":{"btc":50.4465263233584,"eth":14.9228066918211,"usdt":3.92861720053343},
"market_cap_change_percentage_24h_usd":1.72179506060272,"updated_at":1712512855}}"#;

pub const MARKETS: &str = r#"[{"id":"bitcoin","symbol":"btc","name":"Bitcoin","current_price":70187,"market_cap":1381651251183,"market_cap_rank":1,
"total_volume":20154184933,"price_change_percentage_24h":0.33744,"last_updated":"2024-04-07T16:49:31.736Z"},
{"id":"ethereum","symbol":"eth","name":"Ethereum","current_price":3400.12,"market_cap":null,"market_cap_rank":2,
"total_volume":10154184933,"price_change_percentage_24h":-1.5,"last_updated":"2024-04-07T16:49:31.736Z"}]"#;

pub const TRENDING: &str = r#"{"coins":[{"item":{"id":"moon-tropica","coin_id":28470,"name":"Moon Tropica","symbol":"CAH","market_cap_rank":null,"score":0}},
{"item":{"id":"bitcoin","coin_id":1,"name":"Bitcoin","symbol":"BTC","market_cap_rank":1,"score":1}}],"nfts":[],"categories":[]}"#;

pub const FNG: &str = r#"{"name":"Fear and Greed Index","data":[
{"value":"40","value_classification":"Fear","timestamp":"1551157200","time_until_update":"68499"},
{"value":"47","value_classification":"Neutral","timestamp":"1551070800"},
{"value":"41","value_classification":"Fear","timestamp":"1550984400"}],"metadata":{"error":null}}"#;

pub const FUNDING: &str = r#"[{"symbol":"BTCUSDT","fundingRate":"-0.03750000","fundingTime":1570608000000,"markPrice":"34287.54619963"},
{"symbol":"BTCUSDT","fundingRate":"0.00010000","fundingTime":1570636800000,"markPrice":"34287.54619963"}]"#;

pub const OI_NOW: &str = r#"{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}"#;

pub const OI_HIST: &str = r#"[{"symbol":"BTCUSDT","sumOpenInterest":"20403.63700000","sumOpenInterestValue":"150570784.07809979","timestamp":"1583127900000"}]"#;

pub const LONG_SHORT: &str = r#"[{"symbol":"BTCUSDT","longShortRatio":"1.4342","longAccount":"0.5891","shortAccount":"0.4108","timestamp":"1583139600000"}]"#;

pub const TAKER: &str = r#"[{"buySellRatio":"1.5586","buyVol":"387.3300","sellVol":"248.5030","timestamp":"1585614900000"}]"#;

/// A shared cache on `redis_url` under a fresh prefix (each call: its own connection, like a
/// separate instance).
pub fn cache(redis_url: &str, prefix: &str, clock: SharedClock) -> SharedCache {
    let bus = Bus::connect(
        BusConfig::new(redis_url, StreamNames::new(prefix), "context-test"),
        clock,
    )
    .unwrap();
    SharedCache::new(&bus)
}
