//! An in-process axum mock of Binance's REST API (Binance itself cannot run here), with a log
//! of every request it received and scripted answers.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use qt_exchange::sign::Signer;
use secrecy::SecretString;

pub const API_KEY: &str = "test-api-key-0123456789abcdef";
pub const API_SECRET: &str = "test-api-secret-fedcba9876543210";

#[derive(Debug, Clone)]
pub struct Logged {
    pub at: Instant,
    pub method: Method,
    pub path: String,
    pub query: String,
    pub api_key: Option<String>,
    pub signature_ok: Option<bool>,
}

impl Logged {
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
    /// Record the order as existing even though the answer is an error / slow.
    pub record_order: bool,
}

impl Scripted {
    pub fn error(status: u16, code: i64, msg: &str) -> Self {
        Self {
            status,
            headers: vec![],
            body: format!(r#"{{"code":{code},"msg":"{msg}"}}"#),
            delay: Duration::ZERO,
            record_order: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct MockState {
    pub log: Vec<Logged>,
    /// Scripted answers per "METHOD path", used before the default behaviour.
    pub script: HashMap<String, VecDeque<Scripted>>,
    /// Orders by client order id (JSON).
    pub orders: HashMap<String, String>,
    /// Added to the mock's clock for `/fapi/v1/time` and the -1021 check.
    pub server_skew_ms: i64,
    /// When set, signed requests whose timestamp is off by more than 1000 ms get -1021.
    pub check_timestamps: bool,
    pub listen_keys: VecDeque<String>,
    /// Algo orders by client algo id (JSON).
    pub algo_orders: HashMap<String, String>,
    pub used_weight: Option<u32>,
    pub next_order_id: i64,
}

#[derive(Clone)]
pub struct Mock {
    pub state: Arc<Mutex<MockState>>,
    pub url: String,
}

impl Mock {
    pub async fn start() -> Mock {
        qt_exchange::install_crypto_provider();
        let state = Arc::new(Mutex::new(MockState {
            next_order_id: 1000,
            ..Default::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Mock {
            state,
            url: format!("http://{addr}"),
        }
    }

    pub fn script(&self, key: &str, answer: Scripted) {
        self.state
            .lock()
            .unwrap()
            .script
            .entry(key.to_string())
            .or_default()
            .push_back(answer);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests(&self, method: &str, path: &str) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.method.as_str() == method && l.path == path)
            .collect()
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

pub const EXCHANGE_INFO: &str = r#"{"timezone":"UTC","serverTime":1,"rateLimits":[],"symbols":[{"symbol":"BTCUSDT","status":"TRADING","filters":[
 {"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},
 {"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"1000","stepSize":"0.001"},
 {"filterType":"MARKET_LOT_SIZE","minQty":"0.001","maxQty":"120","stepSize":"0.001"},
 {"filterType":"MIN_NOTIONAL","notional":"100"}]}]}"#;

fn respond(status: u16, headers: &[(&'static str, String)], body: String) -> Response<Body> {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Body::from(body)).unwrap()
}

fn order_json(id: i64, q: &Logged) -> String {
    format!(
        r#"{{"orderId":{id},"symbol":"{}","status":"NEW","clientOrderId":"{}","price":"{}","avgPrice":"0","origQty":"{}","executedQty":"0","cumQuote":"0","timeInForce":"GTC","type":"{}","reduceOnly":false,"closePosition":false,"side":"{}","positionSide":"BOTH","stopPrice":"0","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"{}","updateTime":1,"time":1}}"#,
        q.param("symbol").unwrap_or_default(),
        q.param("newClientOrderId").unwrap_or_default(),
        q.param("price").unwrap_or("0".into()),
        q.param("quantity").unwrap_or_default(),
        q.param("type").unwrap_or_default(),
        q.param("side").unwrap_or_default(),
        q.param("type").unwrap_or_default(),
    )
}

fn algo_json(q: &Logged) -> String {
    format!(
        r#"{{"algoId":2146760,"clientAlgoId":"{}","algoType":"CONDITIONAL","orderType":"{}","symbol":"{}","side":"{}","positionSide":"BOTH","timeInForce":"GTC","quantity":"0","algoStatus":"NEW","triggerPrice":"{}","price":"0","closePosition":true,"priceProtect":true,"reduceOnly":false,"workingType":"MARK_PRICE","createTime":1,"updateTime":1,"triggerTime":0,"goodTillDate":0}}"#,
        q.param("clientAlgoId").unwrap_or_default(),
        q.param("type").unwrap_or_default(),
        q.param("symbol").unwrap_or_default(),
        q.param("side").unwrap_or_default(),
        q.param("triggerPrice").unwrap_or_default(),
    )
}

async fn handle(
    State(state): State<Arc<Mutex<MockState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let query = uri.query().unwrap_or("").to_string();
    let signature_ok = query.split_once("&signature=").map(|(signed, sig)| {
        let signer = Signer::new(&SecretString::from(API_SECRET.to_string())).unwrap();
        signer.sign(signed) == sig
    });
    let logged = Logged {
        at: Instant::now(),
        method: method.clone(),
        path: uri.path().to_string(),
        query,
        api_key: headers
            .get("x-mbx-apikey")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        signature_ok,
    };
    let key = format!("{} {}", method, uri.path());
    let (scripted, skew, check_ts, used_weight) = {
        let mut st = state.lock().unwrap();
        st.log.push(logged.clone());
        let s = st.script.get_mut(&key).and_then(|q| q.pop_front());
        (s, st.server_skew_ms, st.check_timestamps, st.used_weight)
    };
    let mut base_headers: Vec<(&'static str, String)> = vec![];
    if let Some(w) = used_weight {
        base_headers.push(("x-mbx-used-weight-1m", w.to_string()));
    }
    if let Some(s) = scripted {
        if s.record_order && uri.path() == "/fapi/v1/algoOrder" {
            let mut st = state.lock().unwrap();
            let id = logged.param("clientAlgoId").unwrap_or_default();
            st.algo_orders.insert(id, algo_json(&logged));
        } else if s.record_order {
            let mut st = state.lock().unwrap();
            st.next_order_id += 1;
            let id = st.next_order_id;
            let cid = logged.param("newClientOrderId").unwrap_or_default();
            st.orders.insert(cid, order_json(id, &logged));
        }
        tokio::time::sleep(s.delay).await;
        let mut h = base_headers;
        h.extend(s.headers);
        return respond(s.status, &h, s.body);
    }
    if signature_ok == Some(false) {
        return respond(
            400,
            &base_headers,
            r#"{"code":-1022,"msg":"Signature for this request is not valid."}"#.into(),
        );
    }
    if check_ts && let Some(ts) = logged.param("timestamp") {
        let ts: i64 = ts.parse().unwrap();
        if (ts - (now_ms() + skew)).abs() > 1000 {
            return respond(400, &base_headers, r#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#.into());
        }
    }
    let h = &base_headers;
    match (method.as_str(), uri.path()) {
        ("GET", "/fapi/v1/time") => respond(200, h, format!(r#"{{"serverTime":{}}}"#, now_ms() + skew)),
        ("GET", "/fapi/v1/exchangeInfo") => respond(200, h, EXCHANGE_INFO.into()),
        ("GET", "/fapi/v1/premiumIndex") => respond(200, h, r#"{"symbol":"BTCUSDT","markPrice":"43000.00","indexPrice":"43001","lastFundingRate":"0.0001","nextFundingTime":1,"time":1}"#.into()),
        ("POST", "/fapi/v1/order") => {
            let mut st = state.lock().unwrap();
            st.next_order_id += 1;
            let id = st.next_order_id;
            let body = order_json(id, &logged);
            st.orders.insert(logged.param("newClientOrderId").unwrap_or_default(), body.clone());
            respond(200, h, body)
        }
        ("GET", "/fapi/v1/order") => {
            let cid = logged.param("origClientOrderId").unwrap_or_default();
            match state.lock().unwrap().orders.get(&cid) {
                Some(o) => respond(200, h, o.clone()),
                None => respond(400, h, r#"{"code":-2013,"msg":"Order does not exist."}"#.into()),
            }
        }
        ("GET", "/fapi/v1/algoOrder") => {
            let id = logged.param("clientAlgoId").unwrap_or_default();
            match state.lock().unwrap().algo_orders.get(&id) {
                Some(o) => respond(200, h, o.clone()),
                None => respond(400, h, r#"{"code":-2013,"msg":"Order does not exist."}"#.into()),
            }
        }
        ("POST", "/fapi/v1/algoOrder") => respond(200, h, algo_json(&logged)),
        ("POST", "/fapi/v1/listenKey") => {
            let k = state.lock().unwrap().listen_keys.pop_front().unwrap_or_else(|| "default-key".into());
            respond(200, h, format!(r#"{{"listenKey":"{k}"}}"#))
        }
        ("PUT", "/fapi/v1/listenKey") | ("DELETE", "/fapi/v1/listenKey") => respond(200, h, "{}".into()),
        _ => respond(404, h, r#"{"code":-1,"msg":"not mocked"}"#.into()),
    }
}
