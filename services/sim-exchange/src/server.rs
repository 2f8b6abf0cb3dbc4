//! HTTP layer: routing, API-key and signature checks, rate limits, fault injection, the `/sim`
//! control API, health, snapshots and the replay clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use qt_events::Decimal;
use qt_events::clock::SharedClock;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Faults, Limits, SimConfig};
use crate::engine::{Engine, Rules, Snapshot, d};
use crate::error::ApiError;
use crate::market::Market;
use crate::params::Params;
use crate::{SimError, sign};

/// A serialized market-stream message.
#[derive(Debug, Clone)]
pub(crate) struct MarketMsg {
    pub stream: String,
    pub json: Arc<str>,
}

/// A serialized user-data event.
#[derive(Debug, Clone)]
pub(crate) struct UserMsg {
    pub account: String,
    pub kind: &'static str,
    pub json: Arc<str>,
}

#[derive(Debug, Default)]
struct IpWindow {
    minute: i64,
    used: u32,
    rejected: u32,
    banned_until: i64,
}

#[derive(Debug, Default)]
struct OrderWindow {
    w10: i64,
    n10: u32,
    w60: i64,
    n60: u32,
}

/// How often each injected fault actually fired since start, shown by `GET /sim/state` so a
/// test can prove its faults happened.
#[derive(Debug, Default)]
pub(crate) struct FaultCounts {
    /// Requests answered 503 without being executed.
    pub errors: AtomicU64,
    /// Order placements executed whose response was replaced by a timeout answer.
    pub lost_responses: AtomicU64,
    /// WebSocket connections dropped without a close frame (fault timer or `/sim/ws/drop`).
    pub ws_drops: AtomicU64,
}

#[derive(Debug, Default)]
struct RateState {
    ips: HashMap<IpAddr, IpWindow>,
    orders: HashMap<String, OrderWindow>,
}

/// The running simulator, shared by every connection.
pub struct App {
    pub(crate) engine: Mutex<Engine>,
    pub(crate) secrets: HashMap<String, String>,
    pub(crate) clock: SharedClock,
    pub(crate) market_tx: broadcast::Sender<MarketMsg>,
    pub(crate) user_tx: broadcast::Sender<UserMsg>,
    pub(crate) drop_ws: watch::Sender<u64>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) fault_counts: FaultCounts,
    limits: Mutex<Limits>,
    rates: Mutex<RateState>,
    rng: Mutex<rand::rngs::StdRng>,
    dirty: AtomicBool,
    pub(crate) listen_key_ttl_ms: i64,
    state_dir: Option<PathBuf>,
    speed: f64,
    control_api: bool,
    listen_key_seq: AtomicU64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("accounts", &self.secrets.keys().collect::<Vec<_>>())
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SNAPSHOT_FILE: &str = "sim-exchange-state.json";

impl App {
    pub fn new(cfg: SimConfig) -> Result<Self, SimError> {
        let market = Market::build(&cfg)?;
        let keys: Vec<String> = cfg.keys.iter().map(|k| k.key.clone()).collect();
        let rules = Rules {
            fill: cfg.fill_model,
            initial_balance: cfg.initial_balance,
            default_leverage: cfg.default_leverage,
            maint_margin_rate: cfg.maint_margin_rate,
            funding: crate::funding::FundingRates::load(&cfg.funding).map_err(SimError::Funding)?,
        };
        let mut engine = Engine::new(rules, market, &keys);
        if let Some(dir) = &cfg.state_dir {
            let path = dir.join(SNAPSHOT_FILE);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let snap: Snapshot =
                        serde_json::from_slice(&bytes).map_err(|e| SimError::Snapshot {
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        })?;
                    engine.restore(snap);
                    tracing::info!(path = %path.display(), "state restored from snapshot");
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(SimError::Snapshot {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        let (market_tx, _) = broadcast::channel(4096);
        let (user_tx, _) = broadcast::channel(8192);
        let (drop_ws, _) = watch::channel(0);
        Ok(Self {
            engine: Mutex::new(engine),
            secrets: cfg
                .keys
                .iter()
                .map(|k| (k.key.clone(), k.secret.clone()))
                .collect(),
            clock: cfg.clock.clone(),
            market_tx,
            user_tx,
            drop_ws,
            faults: Mutex::new(cfg.faults.clone()),
            fault_counts: FaultCounts::default(),
            limits: Mutex::new(cfg.limits),
            rates: Mutex::new(RateState::default()),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(cfg.seed)),
            dirty: AtomicBool::new(false),
            listen_key_ttl_ms: cfg.listen_key_ttl_ms,
            state_dir: cfg.state_dir.clone(),
            speed: cfg.speed,
            control_api: cfg.control_api,
            listen_key_seq: AtomicU64::new(0),
        })
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Run `f` on the engine, then publish the events it queued (in order, under the lock).
    pub(crate) fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut e = lock(&self.engine);
        let r = f(&mut e);
        let users = std::mem::take(&mut e.user_events);
        let markets = std::mem::take(&mut e.market_events);
        if !users.is_empty() {
            self.dirty.store(true, Ordering::Relaxed);
            if self.user_tx.receiver_count() > 0 {
                for u in users {
                    let _ = self.user_tx.send(UserMsg {
                        account: u.account,
                        kind: u.kind,
                        json: u.payload.to_string().into(),
                    });
                }
            }
        }
        if !markets.is_empty() {
            self.dirty.store(true, Ordering::Relaxed);
            if self.market_tx.receiver_count() > 0 {
                for m in markets {
                    let _ = self.market_tx.send(MarketMsg {
                        stream: m.stream,
                        json: m.payload.to_string().into(),
                    });
                }
            }
        }
        r
    }

    fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Write the snapshot atomically (temp file, fsync, rename).
    pub fn save_snapshot(&self) -> Result<(), SimError> {
        let Some(dir) = &self.state_dir else {
            return Ok(());
        };
        self.dirty.store(false, Ordering::Relaxed);
        let snap = lock(&self.engine).snapshot();
        let err = |e: &dyn std::fmt::Display| SimError::Snapshot {
            path: dir.display().to_string(),
            reason: e.to_string(),
        };
        let bytes = serde_json::to_vec(&snap).map_err(|e| err(&e))?;
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(|e| err(&e))?;
            f.write_all(&bytes).map_err(|e| err(&e))?;
            f.sync_all().map_err(|e| err(&e))?;
        }
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE)).map_err(|e| err(&e))?;
        Ok(())
    }

    pub(crate) fn new_listen_key(&self) -> String {
        let n = self.listen_key_seq.fetch_add(1, Ordering::Relaxed);
        let mut rng = lock(&self.rng);
        let mut s: String = (0..56)
            .map(|_| {
                let c = rng.random_range(0..62u8);
                char::from(match c {
                    0..=9 => b'0' + c,
                    10..=35 => b'a' + c - 10,
                    _ => b'A' + c - 36,
                })
            })
            .collect();
        s.push_str(&format!("{n:08}"));
        s
    }
}

pub(crate) async fn run(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    let tasks = tokio_util::task::TaskTracker::new();
    if app.speed > 0.0 {
        let (app2, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move { replay_loop(app2, stop).await });
    }
    if app.state_dir.is_some() {
        let (app2, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if app2.dirty.load(Ordering::Relaxed) {
                            let a = app2.clone();
                            match tokio::task::spawn_blocking(move || a.save_snapshot()).await {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => tracing::warn!(error = %e, "snapshot failed"),
                                Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
                            }
                        }
                    }
                }
            }
        });
    }
    let router = router(app.clone());
    let stop = shutdown.clone();
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { stop.cancelled().await })
    .await;
    // Close WebSockets (they hold the graceful shutdown open otherwise).
    app.drop_ws.send_modify(|g| *g += 1);
    tasks.close();
    tasks.wait().await;
    app.save_snapshot()?;
    served?;
    Ok(())
}

async fn replay_loop(app: Arc<App>, stop: CancellationToken) {
    let interval_ms = {
        let e = lock(&app.engine);
        e.market
            .symbols
            .values()
            .map(|m| m.interval_ms)
            .min()
            .unwrap_or(60_000)
    };
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let period = Duration::from_millis(((interval_ms as f64 / app.speed).max(1.0)) as u64);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let now = app.now();
                app.with_engine(|e| e.step(now));
            }
        }
    }
}

fn router(app: Arc<App>) -> Router {
    let mut r = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route(
            "/health/ready",
            get(|| async { axum::Json(json!({"status": "ready"})) }),
        )
        .route("/fapi/{*rest}", any(fapi));
    r = crate::ws::routes(r);
    if app.control_api {
        r = r.route("/sim/{*rest}", any(control));
    }
    r.with_state(app)
}

// ------------------------------------------------------------------------------ /fapi

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    None,
    ApiKey,
    Signed,
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn fapi(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let route = route_of(&method, &path);
    let Some((security, weight, is_order)) = route else {
        return ApiError::new(404, -1000, "Not found").into_response();
    };
    let weight = request_weight(&path, uri.query().unwrap_or(""), weight);
    // Fault injection.
    let (latency, fail, lose, lost_ms) = {
        let mut f = lock(&app.faults);
        let mut rng = lock(&app.rng);
        let fail = if f.fail_next > 0 {
            f.fail_next -= 1;
            true
        } else {
            f.error_rate > 0.0 && rng.random_bool(f.error_rate.clamp(0.0, 1.0))
        };
        let lose = is_order
            && method == Method::POST
            && !fail
            && if f.lose_next > 0 {
                f.lose_next -= 1;
                true
            } else {
                f.lose_response_rate > 0.0 && rng.random_bool(f.lose_response_rate.clamp(0.0, 1.0))
            };
        (f.latency_ms, fail, lose, f.lost_response_ms)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if fail {
        app.fault_counts.errors.fetch_add(1, Ordering::Relaxed);
        return ApiError::new(503, -1001, "Service Unavailable.").into_response();
    }
    // Rate limits.
    let now = app.now();
    let (used, order_counts) = match check_limits(
        &app,
        addr.ip(),
        &headers,
        weight,
        is_order && method == Method::POST,
        now,
    ) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let query = uri.query().unwrap_or("");
    let body_str = std::str::from_utf8(&body).unwrap_or("");
    let result = handle(
        &app, &method, &path, security, query, body_str, &headers, now,
    );
    let mut resp = match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&used.to_string()) {
        h.insert("X-MBX-USED-WEIGHT-1M", v);
    }
    if let Some((n10, n60)) = order_counts {
        if let Ok(v) = HeaderValue::from_str(&n10.to_string()) {
            h.insert("X-MBX-ORDER-COUNT-10S", v);
        }
        if let Ok(v) = HeaderValue::from_str(&n60.to_string()) {
            h.insert("X-MBX-ORDER-COUNT-1M", v);
        }
    }
    if lose {
        // Executed, but the answer never comes back in time.
        app.fault_counts
            .lost_responses
            .fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(lost_ms)).await;
        return ApiError::new(
            503,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        )
        .into_response();
    }
    resp
}

/// Weights that depend on the parameters, as Binance counts them.
fn request_weight(path: &str, query: &str, base: u32) -> u32 {
    let p = Params::new(query, "");
    match path {
        "/fapi/v1/klines" => match p.int("limit").ok().flatten().unwrap_or(500) {
            ..100 => 1,
            100..500 => 2,
            500..=1000 => 5,
            _ => 10,
        },
        "/fapi/v1/openOrders" if !p.has("symbol") => 40,
        "/fapi/v1/ticker/24hr"
        | "/fapi/v1/ticker/price"
        | "/fapi/v2/ticker/price"
        | "/fapi/v1/ticker/bookTicker"
            if !p.has("symbol") =>
        {
            base.max(5)
        }
        "/fapi/v1/depth" => match p.int("limit").ok().flatten().unwrap_or(500) {
            ..=50 => 2,
            51..=100 => 5,
            101..=500 => 10,
            _ => 20,
        },
        _ => base,
    }
}

/// (security, weight, counts as an order) of each endpoint.
fn route_of(method: &Method, path: &str) -> Option<(Security, u32, bool)> {
    use Security::*;
    let m = method.as_str();
    Some(match (m, path) {
        ("GET", "/fapi/v1/ping") => (None, 1, false),
        ("GET", "/fapi/v1/time") => (None, 1, false),
        ("GET", "/fapi/v1/exchangeInfo") => (None, 1, false),
        ("GET", "/fapi/v1/klines") => (None, 5, false),
        ("GET", "/fapi/v1/depth") => (None, 5, false),
        ("GET", "/fapi/v1/ticker/24hr") => (None, 1, false),
        ("GET", "/fapi/v1/ticker/price" | "/fapi/v2/ticker/price") => (None, 1, false),
        ("GET", "/fapi/v1/ticker/bookTicker") => (None, 1, false),
        ("GET", "/fapi/v1/premiumIndex") => (None, 1, false),
        ("GET", "/fapi/v1/fundingRate") => (None, 1, false),
        ("GET", "/fapi/v1/income") => (Signed, 30, false),
        ("POST" | "PUT" | "DELETE", "/fapi/v1/listenKey") => (ApiKey, 1, false),
        ("POST", "/fapi/v1/order") => (Signed, 0, true),
        ("GET", "/fapi/v1/order") => (Signed, 1, false),
        ("DELETE", "/fapi/v1/order") => (Signed, 1, false),
        ("GET", "/fapi/v1/openOrder") => (Signed, 1, false),
        ("GET", "/fapi/v1/openOrders") => (Signed, 1, false),
        ("GET", "/fapi/v1/allOrders") => (Signed, 5, false),
        ("DELETE", "/fapi/v1/allOpenOrders") => (Signed, 1, false),
        ("GET", "/fapi/v1/userTrades") => (Signed, 5, false),
        ("POST", "/fapi/v1/algoOrder") => (Signed, 0, true),
        ("POST", "/fapi/v1/batchOrders") => (Signed, 5, true),
        ("DELETE", "/fapi/v1/batchOrders") => (Signed, 1, false),
        ("GET", "/fapi/v1/algoOrder") => (Signed, 1, false),
        ("DELETE", "/fapi/v1/algoOrder") => (Signed, 1, false),
        ("GET", "/fapi/v1/openAlgoOrders") => (Signed, 1, false),
        ("GET", "/fapi/v1/allAlgoOrders") => (Signed, 5, false),
        ("DELETE", "/fapi/v1/algoOpenOrders") => (Signed, 1, false),
        ("GET", "/fapi/v2/balance" | "/fapi/v3/balance") => (Signed, 5, false),
        ("GET", "/fapi/v2/account" | "/fapi/v3/account") => (Signed, 5, false),
        ("GET", "/fapi/v2/positionRisk" | "/fapi/v3/positionRisk") => (Signed, 5, false),
        ("POST", "/fapi/v1/leverage") => (Signed, 1, false),
        ("POST", "/fapi/v1/marginType") => (Signed, 1, false),
        ("GET", "/fapi/v1/positionSide/dual") => (Signed, 30, false),
        ("POST", "/fapi/v1/positionSide/dual") => (Signed, 1, false),
        ("GET", "/fapi/v1/leverageBracket") => (Signed, 1, false),
        ("GET", "/fapi/v1/commissionRate") => (Signed, 20, false),
        _ => return Option::None,
    })
}

type Counts = (u32, Option<(u32, u32)>);

fn check_limits(
    app: &App,
    ip: IpAddr,
    headers: &HeaderMap,
    weight: u32,
    order: bool,
    now: i64,
) -> Result<Counts, Box<Response>> {
    let limits = *lock(&app.limits);
    let mut rates = lock(&app.rates);
    let minute = now.div_euclid(60_000);
    let w = rates.ips.entry(ip).or_default();
    if w.minute != minute {
        w.minute = minute;
        w.used = 0;
        w.rejected = 0;
    }
    if w.banned_until > now {
        let secs = (w.banned_until - now + 999) / 1000;
        let mut r = ApiError::new(418, -1003, format!("Way too many requests; IP({ip}) banned until {}. Please use the websocket for live updates to avoid bans.", w.banned_until)).into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert("Retry-After", v);
        }
        return Err(Box::new(r));
    }
    w.used = w.used.saturating_add(weight);
    if limits.weight_per_minute > 0 && w.used > limits.weight_per_minute {
        w.rejected += 1;
        if limits.ban_after_429s > 0 && w.rejected > limits.ban_after_429s {
            w.banned_until = now + i64::from(limits.ban_seconds) * 1000;
        }
        let retry = (minute + 1) * 60_000 - now;
        let mut r = ApiError::new(429, -1003, format!("Too many requests; current limit of IP({ip}) is {} requests per minute. Please use the websocket for live updates to avoid polling the API.", limits.weight_per_minute)).into_response();
        if let Ok(v) = HeaderValue::from_str(&((retry + 999) / 1000).to_string()) {
            r.headers_mut().insert("Retry-After", v);
        }
        if let Ok(v) = HeaderValue::from_str(&w.used.to_string()) {
            r.headers_mut().insert("X-MBX-USED-WEIGHT-1M", v);
        }
        return Err(Box::new(r));
    }
    let used = w.used;
    if !order {
        return Ok((used, None));
    }
    let key = headers
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let o = rates.orders.entry(key).or_default();
    let (w10, w60) = (now.div_euclid(10_000), minute);
    if o.w10 != w10 {
        o.w10 = w10;
        o.n10 = 0;
    }
    if o.w60 != w60 {
        o.w60 = w60;
        o.n60 = 0;
    }
    let over10 = limits.orders_per_10s > 0 && o.n10 >= limits.orders_per_10s;
    let over60 = limits.orders_per_minute > 0 && o.n60 >= limits.orders_per_minute;
    if over10 || over60 {
        let (limit, unit, retry) = if over10 {
            (
                limits.orders_per_10s,
                "10 seconds",
                (w10 + 1) * 10_000 - now,
            )
        } else {
            (limits.orders_per_minute, "minute", (w60 + 1) * 60_000 - now)
        };
        let mut r = ApiError::new(
            429,
            -1015,
            format!("Too many new orders; current limit is {limit} orders per {unit}."),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&((retry + 999) / 1000).to_string()) {
            r.headers_mut().insert("Retry-After", v);
        }
        return Err(Box::new(r));
    }
    o.n10 += 1;
    o.n60 += 1;
    Ok((used, Some((o.n10, o.n60))))
}

fn api_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::new(401, -2014, "API-key format invalid."))
}

fn authenticate<'a>(
    app: &'a App,
    headers: &'a HeaderMap,
    security: Security,
    query: &str,
    body: &str,
    params: &Params,
    now: i64,
) -> Result<Option<&'a str>, ApiError> {
    if security == Security::None {
        return Ok(None);
    }
    let key = api_key(headers)?;
    let Some(secret) = app.secrets.get(key) else {
        return Err(ApiError::new(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    };
    if security == Security::Signed {
        let ts = params
            .int("timestamp")?
            .ok_or_else(|| ApiError::mandatory("timestamp"))?;
        let recv = params.int("recvWindow")?.unwrap_or(5_000);
        if !(1..=60_000).contains(&recv) {
            return Err(ApiError::bad(-1131, "recvWindow must be less than 60000"));
        }
        let (q, qs) = sign::strip_signature(query);
        let (b, bs) = sign::strip_signature(body);
        let Some(sig) = qs.or(bs) else {
            return Err(ApiError::mandatory("signature"));
        };
        if !sign::verify(secret, &format!("{q}{b}"), &sig) {
            return Err(ApiError::bad(
                -1022,
                "Signature for this request is not valid.",
            ));
        }
        if ts >= now.saturating_add(1_000) {
            return Err(ApiError::bad(
                -1021,
                "Timestamp for this request was 1000ms ahead of the server's time.",
            ));
        }
        if now.saturating_sub(ts) > recv {
            return Err(ApiError::bad(
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
            ));
        }
    }
    Ok(app.secrets.get_key_value(key).map(|(k, _)| k.as_str()))
}

#[allow(clippy::too_many_arguments)]
fn handle(
    app: &App,
    method: &Method,
    path: &str,
    security: Security,
    query: &str,
    body: &str,
    headers: &HeaderMap,
    now: i64,
) -> Result<Value, ApiError> {
    let p = Params::new(query, body);
    let key = authenticate(app, headers, security, query, body, &p, now)?;
    let key = key.unwrap_or("");
    match (method.as_str(), path) {
        ("GET", "/fapi/v1/ping") => Ok(json!({})),
        ("GET", "/fapi/v1/time") => Ok(json!({"serverTime": now})),
        ("GET", "/fapi/v1/exchangeInfo") => Ok(exchange_info(app, now)),
        ("GET", "/fapi/v1/klines") => klines(app, &p),
        ("GET", "/fapi/v1/depth") => depth(app, &p, now),
        ("GET", "/fapi/v1/ticker/24hr") => per_symbol(app, &p, |e, s| e.ticker_24h(s, now)),
        ("GET", "/fapi/v1/ticker/price" | "/fapi/v2/ticker/price") => {
            per_symbol(app, &p, |e, s| {
                e.market
                    .get(s)
                    .map(|m| json!({"symbol": s, "price": d(m.last_price()), "time": now}))
            })
        }
        ("GET", "/fapi/v1/ticker/bookTicker") => per_symbol(app, &p, |e, s| {
            e.market.get(s).map(|m| {
                let (px, t) = (m.last_price(), m.spec.tick_size);
                json!({"symbol": s, "bidPrice": d(px - t), "bidQty": "1", "askPrice": d(px + t), "askQty": "1", "time": now, "lastUpdateId": now})
            })
        }),
        ("GET", "/fapi/v1/premiumIndex") => per_symbol(app, &p, |e, s| {
            let (next_time, rate) = e.next_funding(s)?;
            e.market.get(s).map(|m| {
                let mark = m.mark_price();
                json!({"symbol": s, "markPrice": d(mark), "indexPrice": d(mark), "estimatedSettlePrice": d(mark),
                    "lastFundingRate": format!("{rate:.8}"), "interestRate": "0.00010000",
                    "nextFundingTime": next_time, "time": now})
            })
        }),
        ("GET", "/fapi/v1/fundingRate") => funding_rates(app, &p),
        ("GET", "/fapi/v1/income") => app.with_engine(|e| e.income(key, &p, now)),
        (m, "/fapi/v1/listenKey") => listen_key(app, m, key, &p, now),
        ("POST", "/fapi/v1/order") => app.with_engine(|e| e.new_order(key, &p, now)),
        ("POST", "/fapi/v1/batchOrders") => batch_new(app, key, &p, now),
        ("DELETE", "/fapi/v1/batchOrders") => batch_cancel(app, key, &p, now),
        ("GET", "/fapi/v1/order") => app.with_engine(|e| e.query_order(key, &p)),
        ("DELETE", "/fapi/v1/order") => app.with_engine(|e| e.cancel_order(key, &p, now)),
        ("GET", "/fapi/v1/openOrder") => app.with_engine(|e| e.query_open_order(key, &p)),
        ("GET", "/fapi/v1/openOrders") => app.with_engine(|e| e.open_orders(key, &p)),
        ("GET", "/fapi/v1/allOrders") => app.with_engine(|e| e.all_orders(key, &p)),
        ("DELETE", "/fapi/v1/allOpenOrders") => app.with_engine(|e| e.cancel_all(key, &p, now)),
        ("GET", "/fapi/v1/userTrades") => app.with_engine(|e| e.user_trades(key, &p)),
        ("POST", "/fapi/v1/algoOrder") => app.with_engine(|e| e.new_algo(key, &p, now)),
        ("GET", "/fapi/v1/algoOrder") => app.with_engine(|e| e.query_algo(key, &p)),
        ("DELETE", "/fapi/v1/algoOrder") => app.with_engine(|e| e.cancel_algo(key, &p, now)),
        ("GET", "/fapi/v1/openAlgoOrders") => app.with_engine(|e| e.open_algos(key, &p)),
        ("GET", "/fapi/v1/allAlgoOrders") => app.with_engine(|e| e.all_algos(key, &p)),
        ("DELETE", "/fapi/v1/algoOpenOrders") => {
            app.with_engine(|e| e.cancel_all_algos(key, &p, now))
        }
        ("GET", "/fapi/v2/balance" | "/fapi/v3/balance") => {
            app.with_engine(|e| e.balance(key, now))
        }
        ("GET", "/fapi/v2/account") => app.with_engine(|e| e.account_info(key, true, now)),
        ("GET", "/fapi/v3/account") => app.with_engine(|e| e.account_info(key, false, now)),
        ("GET", "/fapi/v2/positionRisk") => {
            app.with_engine(|e| e.position_risk(key, &p, true, now))
        }
        ("GET", "/fapi/v3/positionRisk") => {
            app.with_engine(|e| e.position_risk(key, &p, false, now))
        }
        ("POST", "/fapi/v1/leverage") => {
            let r = app.with_engine(|e| e.set_leverage(key, &p));
            app.mark_dirty();
            r
        }
        ("POST", "/fapi/v1/marginType") => match p.required("marginType")? {
            "CROSSED" => Err(ApiError::bad(-4046, "No need to change margin type.")),
            "ISOLATED" => Err(ApiError::bad(
                -4047,
                "Margin type cannot be changed if there exists position.",
            )),
            _ => Err(ApiError::invalid("marginType")),
        },
        ("GET", "/fapi/v1/positionSide/dual") => Ok(json!({"dualSidePosition": false})),
        ("POST", "/fapi/v1/positionSide/dual") => match p.required("dualSidePosition")? {
            "false" => Err(ApiError::bad(-4059, "No need to change position side.")),
            _ => Err(ApiError::bad(
                -4068,
                "Position side cannot be changed if there exists position.",
            )),
        },
        ("GET", "/fapi/v1/leverageBracket") => Ok(leverage_brackets(app, &p)),
        ("GET", "/fapi/v1/commissionRate") => {
            let s = p.required("symbol")?;
            let e = lock(&app.engine);
            e.market.get(s).ok_or_else(ApiError::invalid_symbol)?;
            Ok(
                json!({"symbol": s, "makerCommissionRate": d(e.rules.fill.maker_fee), "takerCommissionRate": d(e.rules.fill.taker_fee)}),
            )
        }
        _ => Err(ApiError::new(404, -1000, "Not found")),
    }
}

/// `GET /fapi/v1/fundingRate`: the rates charged at each funding time up to market time, of
/// one symbol or of all (merged by time); default limit 100, at most 1000.
fn funding_rates(app: &App, p: &Params) -> Result<Value, ApiError> {
    let limit = p.int("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit"));
    }
    let limit = usize::try_from(limit).unwrap_or(100);
    let (start, end) = (p.int("startTime")?, p.int("endTime")?);
    let e = lock(&app.engine);
    let one = |s: &str| e.funding_rate_history(s, start, end, limit);
    match p.get("symbol") {
        Some(s) => one(s)
            .map(Value::Array)
            .ok_or_else(ApiError::invalid_symbol),
        None => {
            let mut all: Vec<Value> = e
                .market
                .symbols
                .keys()
                .filter_map(|s| one(s))
                .flatten()
                .collect();
            all.sort_by_key(|v| v["fundingTime"].as_i64().unwrap_or(0));
            if start.is_some() {
                all.truncate(limit);
            } else if all.len() > limit {
                all.drain(..all.len() - limit);
            }
            Ok(Value::Array(all))
        }
    }
}

fn per_symbol(
    app: &App,
    p: &Params,
    f: impl Fn(&Engine, &str) -> Option<Value>,
) -> Result<Value, ApiError> {
    let e = lock(&app.engine);
    match p.get("symbol") {
        Some(s) => f(&e, s).ok_or_else(ApiError::invalid_symbol),
        None => Ok(Value::Array(
            e.market.symbols.keys().filter_map(|s| f(&e, s)).collect(),
        )),
    }
}

fn exchange_info(app: &App, now: i64) -> Value {
    let e = lock(&app.engine);
    let limits = *lock(&app.limits);
    let symbols: Vec<Value> = e
        .market
        .symbols
        .values()
        .map(|m| {
            let s = &m.spec;
            json!({
                "symbol": s.symbol, "pair": s.symbol, "contractType": "PERPETUAL",
                "deliveryDate": 4_133_404_800_000i64, "onboardDate": 1_569_398_400_000i64,
                "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
                "baseAsset": s.base_asset, "quoteAsset": "USDT", "marginAsset": "USDT",
                "pricePrecision": s.price_precision(), "quantityPrecision": s.quantity_precision(),
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
                "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
                "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": d(s.tick_size), "maxPrice": d(crate::engine::MAX_PRICE), "tickSize": d(s.tick_size)},
                    {"filterType": "LOT_SIZE", "stepSize": d(s.step_size), "maxQty": d(s.max_qty), "minQty": d(s.min_qty)},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": d(s.step_size), "maxQty": d(s.max_qty), "minQty": d(s.min_qty)},
                    {"filterType": "MAX_NUM_ORDERS", "limit": crate::engine::MAX_OPEN_ORDERS},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": crate::engine::MAX_OPEN_ALGOS},
                    {"filterType": "MIN_NOTIONAL", "notional": d(s.min_notional)},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"}
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            })
        })
        .collect();
    json!({
        "timezone": "UTC", "serverTime": now, "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limits.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": limits.orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": limits.orders_per_10s}
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": true, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    })
}

fn leverage_brackets(app: &App, p: &Params) -> Value {
    let e = lock(&app.engine);
    let mmr = e.rules.maint_margin_rate;
    let one = |s: &crate::market::SymbolSpec| {
        json!({"symbol": s.symbol, "notionalCoef": 1.0, "brackets": [{
            "bracket": 1, "initialLeverage": s.max_leverage, "notionalCap": 1_000_000_000i64,
            "notionalFloor": 0, "maintMarginRatio": mmr.to_string().parse::<f64>().unwrap_or(0.004), "cum": 0.0}]})
    };
    match p.get("symbol").and_then(|s| e.market.get(s)) {
        Some(m) => json!([one(&m.spec)]),
        None => Value::Array(e.market.symbols.values().map(|m| one(&m.spec)).collect()),
    }
}

fn batch_item(r: Result<Value, ApiError>) -> Value {
    r.unwrap_or_else(|e| json!({"code": e.code, "msg": e.msg}))
}

/// `POST /fapi/v1/batchOrders`: up to 5 orders as a JSON list; each answer is the order or its
/// error, in input order.
fn batch_new(app: &App, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
    let raw = p.required("batchOrders")?;
    let list: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(raw).map_err(|_| ApiError::invalid("batchOrders"))?;
    if list.is_empty() || list.len() > 5 {
        return Err(ApiError::invalid("batchOrders"));
    }
    let items = list
        .into_iter()
        .map(|obj| {
            let pairs = obj
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect();
            let one = Params::from_pairs(pairs);
            batch_item(app.with_engine(|e| e.new_order(key, &one, now)))
        })
        .collect();
    Ok(Value::Array(items))
}

/// `DELETE /fapi/v1/batchOrders`: `symbol` plus `orderIdList` or `origClientOrderIdList`
/// (JSON lists, at most 10).
fn batch_cancel(app: &App, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
    let symbol = p.required("symbol")?.to_string();
    let ids: Vec<(String, String)> = if let Some(raw) = p.get("orderIdList") {
        let v: Vec<i64> =
            serde_json::from_str(raw).map_err(|_| ApiError::invalid("orderIdList"))?;
        v.into_iter()
            .map(|i| ("orderId".to_string(), i.to_string()))
            .collect()
    } else if let Some(raw) = p.get("origClientOrderIdList") {
        let v: Vec<String> =
            serde_json::from_str(raw).map_err(|_| ApiError::invalid("origClientOrderIdList"))?;
        v.into_iter()
            .map(|c| ("origClientOrderId".to_string(), c))
            .collect()
    } else {
        return Err(ApiError::mandatory("orderIdList"));
    };
    if ids.is_empty() || ids.len() > 10 {
        return Err(ApiError::invalid("orderIdList"));
    }
    Ok(Value::Array(
        ids.into_iter()
            .map(|(k, v)| {
                let one = Params::from_pairs(vec![("symbol".into(), symbol.clone()), (k, v)]);
                batch_item(app.with_engine(|e| e.cancel_order(key, &one, now)))
            })
            .collect(),
    ))
}

/// A synthetic book: `limit` levels each side, one tick apart around the last price, with a
/// size that grows away from the touch (the simulator has no real depth).
fn depth(app: &App, p: &Params, now: i64) -> Result<Value, ApiError> {
    let symbol = p.required("symbol")?;
    let limit = p.int("limit")?.unwrap_or(500);
    if ![5, 10, 20, 50, 100, 500, 1000].contains(&limit) {
        return Err(ApiError::invalid("limit"));
    }
    let e = lock(&app.engine);
    let m = e.market.get(symbol).ok_or_else(ApiError::invalid_symbol)?;
    let (px, tick, step) = (m.last_price(), m.spec.tick_size, m.spec.step_size);
    let level = |i: i64, sign: i64| {
        let price = px + tick * Decimal::from(sign * i);
        json!([d(price), d(step * Decimal::from(10 * i))])
    };
    let bids: Vec<Value> = (1..=limit)
        .map(|i| level(i, -1))
        .filter(|l| !l[0].as_str().unwrap_or("-").starts_with('-'))
        .collect();
    let asks: Vec<Value> = (1..=limit).map(|i| level(i, 1)).collect();
    Ok(json!({"lastUpdateId": now, "E": now, "T": now, "bids": bids, "asks": asks}))
}

fn klines(app: &App, p: &Params) -> Result<Value, ApiError> {
    let symbol = p.required("symbol")?;
    let interval = p.required("interval")?;
    const INTERVALS: [&str; 14] = [
        "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
    ];
    let iv = INTERVALS
        .contains(&interval)
        .then(|| qt_candles::parse_interval(interval).ok())
        .flatten()
        .ok_or_else(|| ApiError::bad(-1120, "Invalid interval."))?;
    let limit = p.int("limit")?.unwrap_or(500);
    if !(1..=1500).contains(&limit) {
        return Err(ApiError::invalid("limit"));
    }
    let e = lock(&app.engine);
    e.market.get(symbol).ok_or_else(ApiError::invalid_symbol)?;
    let rows = e
        .market
        .klines(
            symbol,
            iv,
            p.int("startTime")?,
            p.int("endTime")?,
            usize::try_from(limit).unwrap_or(500),
        )
        .ok_or_else(|| ApiError::bad(-1120, "Invalid interval."))?;
    Ok(Value::Array(
        rows.iter()
            .map(|c| {
                json!([
                    c.open_time,
                    d(c.open),
                    d(c.high),
                    d(c.low),
                    d(c.close),
                    d(c.volume),
                    c.open_time + iv - 1,
                    d(c.quote_volume),
                    c.trades,
                    "0",
                    "0",
                    "0"
                ])
            })
            .collect(),
    ))
}

fn listen_key(
    app: &App,
    method: &str,
    account: &str,
    p: &Params,
    now: i64,
) -> Result<Value, ApiError> {
    let ttl = app.listen_key_ttl_ms;
    let fresh = app.new_listen_key();
    app.mark_dirty();
    app.with_engine(|e| {
        let existing = e
            .listen_keys
            .iter()
            .find(|(k, v)| {
                v.account == account
                    && v.expires_at > now
                    && p.get("listenKey").is_none_or(|x| x == k.as_str())
            })
            .map(|(k, _)| k.clone());
        match method {
            "POST" => {
                let k = existing.unwrap_or(fresh);
                e.listen_keys.insert(
                    k.clone(),
                    crate::engine::ListenKey {
                        account: account.to_string(),
                        expires_at: now + ttl,
                    },
                );
                e.listen_keys.retain(|_, v| v.expires_at > now);
                Ok(json!({"listenKey": k}))
            }
            "PUT" => match existing {
                Some(k) => {
                    if let Some(v) = e.listen_keys.get_mut(&k) {
                        v.expires_at = now + ttl;
                    }
                    Ok(json!({"listenKey": k}))
                }
                None => Err(ApiError::bad(-1125, "This listenKey does not exist.")),
            },
            _ => {
                if let Some(k) = existing {
                    e.listen_keys.remove(&k);
                }
                Ok(json!({}))
            }
        }
    })
}

// ------------------------------------------------------------------------------ /sim

async fn control(State(app): State<Arc<App>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let p = Params::new(uri.query().unwrap_or(""), "");
    let now = app.now();
    let r: Result<Value, ApiError> = match (method.as_str(), uri.path()) {
        ("POST", "/sim/step") => (|| {
            let n = p.int("candles")?.unwrap_or(1);
            if !(1..=1_000_000).contains(&n) {
                return Err(ApiError::invalid("candles"));
            }
            let only: Option<Vec<String>> = p
                .get("symbols")
                .map(|l| l.split(',').map(str::to_owned).collect());
            if let Some(only) = &only
                && let Some(unknown) = only
                    .iter()
                    .find(|s| app.with_engine(|e| e.market.get(s).is_none()))
            {
                return Err(ApiError::bad(-1121, format!("Invalid symbol {unknown}.")));
            }
            let moved = app.with_engine(|e| {
                (0..n)
                    .map(|_| e.step_symbols(now, only.as_deref()))
                    .sum::<usize>()
            });
            Ok(json!({"stepped": n, "symbolSteps": moved, "state": state_view(&app, now)}))
        })(),
        ("GET", "/sim/state") => Ok(state_view(&app, now)),
        ("GET", "/sim/book") => Ok(book_view(&app)),
        ("POST", "/sim/mark") => (|| {
            let s = p.required("symbol")?.to_string();
            let px = p.required_decimal("price")?;
            app.with_engine(|e| e.set_mark(&s, px, now))?;
            Ok(json!({"symbol": s, "markPrice": d(px)}))
        })(),
        ("GET", "/sim/faults") => {
            Ok(serde_json::to_value(&*lock(&app.faults)).unwrap_or(Value::Null))
        }
        ("POST", "/sim/faults") => match serde_json::from_slice::<Faults>(&body) {
            Ok(f) => {
                *lock(&app.faults) = f.clone();
                Ok(serde_json::to_value(f).unwrap_or(Value::Null))
            }
            Err(e) => Err(ApiError::bad(-1130, format!("invalid faults: {e}"))),
        },
        ("GET", "/sim/limits") => {
            Ok(serde_json::to_value(*lock(&app.limits)).unwrap_or(Value::Null))
        }
        ("POST", "/sim/limits") => match serde_json::from_slice::<Limits>(&body) {
            Ok(l) => {
                *lock(&app.limits) = l;
                lock(&app.rates).ips.clear();
                lock(&app.rates).orders.clear();
                Ok(serde_json::to_value(l).unwrap_or(Value::Null))
            }
            Err(e) => Err(ApiError::bad(-1130, format!("invalid limits: {e}"))),
        },
        ("POST", "/sim/ws/drop") => {
            app.drop_ws.send_modify(|g| *g += 1);
            Ok(json!({"dropped": true}))
        }
        ("POST", "/sim/listenKey/expire") => {
            let n = app.with_engine(|e| {
                e.listen_keys.values_mut().for_each(|v| v.expires_at = 0);
                e.listen_keys.len()
            });
            app.mark_dirty();
            Ok(json!({"expired": n}))
        }
        ("POST", "/sim/snapshot") => app
            .save_snapshot()
            .map(|()| json!({"saved": true}))
            .map_err(|e| ApiError::new(500, -1000, e.to_string())),
        _ => Err(ApiError::new(404, -1000, "Not found")),
    };
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// Every account's open positions, open orders and open conditional orders, without request
/// weight (an operator's or a test's view; clients use the signed endpoints).
fn book_view(app: &App) -> Value {
    let e = lock(&app.engine);
    let accounts: Vec<Value> = e
        .accounts
        .values()
        .map(|a| {
            let positions: Vec<Value> = a
                .positions
                .iter()
                .filter(|(_, p)| !p.qty.is_zero())
                .map(|(s, p)| json!({"symbol": s, "positionAmt": d(p.qty), "entryPrice": d(p.entry_price)}))
                .collect();
            let orders: Vec<Value> = a
                .open_orders
                .iter()
                .filter_map(|id| a.orders.get(id))
                .map(|o| {
                    json!({"symbol": o.symbol, "clientOrderId": o.client_order_id,
                        "side": crate::engine::side_name(o.side), "type": o.typ.name(),
                        "reduceOnly": o.reduce_only, "closePosition": o.close_position})
                })
                .collect();
            let algos: Vec<Value> = a
                .open_algos
                .iter()
                .filter_map(|id| a.algos.get(id))
                .map(|o| {
                    json!({"symbol": o.symbol, "clientAlgoId": o.client_algo_id,
                        "side": crate::engine::side_name(o.side), "orderType": o.typ.name(),
                        "reduceOnly": o.reduce_only, "closePosition": o.close_position})
                })
                .collect();
            json!({"positions": positions, "openOrders": orders, "openAlgoOrders": algos})
        })
        .collect();
    json!({"accounts": accounts})
}

fn state_view(app: &App, now: i64) -> Value {
    let e = lock(&app.engine);
    let symbols: serde_json::Map<String, Value> = e
        .market
        .symbols
        .iter()
        .map(|(s, m)| {
            (
                s.clone(),
                json!({"cursor": m.cursor, "time": m.now_ms(), "lastPrice": d(m.last_price()),
                    "markPrice": d(m.mark_price()), "interval": m.interval_ms,
                    "candleOpenTime": m.current().map_or(0, |c| c.open_time),
                    "high": d(m.current().map_or(Decimal::ZERO, |c| c.high)),
                    "low": d(m.current().map_or(Decimal::ZERO, |c| c.low)),
                    "volume": d(m.current().map_or(Decimal::ZERO, |c| c.volume)),
                    "remaining": m.candles.len().saturating_sub(m.cursor),
                    "fundingSettledUntil": e.funding_cursor.get(s).copied().unwrap_or(0),
                    "nextFundingTime": e.next_funding(s).map_or(0, |f| f.0),
                    "nextFundingRate": e.next_funding(s).map_or_else(String::new, |f| format!("{:.8}", f.1))}),
            )
        })
        .collect();
    let c = &app.fault_counts;
    json!({"serverTime": now, "symbols": symbols, "faultCounts": {
        "errors": c.errors.load(Ordering::Relaxed),
        "lostResponses": c.lost_responses.load(Ordering::Relaxed),
        "wsDrops": c.ws_drops.load(Ordering::Relaxed),
    }})
}
