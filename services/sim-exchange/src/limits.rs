//! Request-weight and order-count accounting, as Binance does it: the IP's used weight per
//! minute (`X-MBX-USED-WEIGHT-1M`), the account's orders per 10 s and per minute
//! (`X-MBX-ORDER-COUNT-10S/1M`), 429 with `Retry-After` past a limit, 418 (banned) after
//! repeated 429s. [`admit`] is the middleware; it also reads the server time the rest of the
//! request runs at.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::{App, lock};
use crate::config::Limits;
use crate::error::ApiError;
use crate::routes::{Call, Endpoint};

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

#[derive(Debug, Default)]
struct Windows {
    ips: HashMap<IpAddr, IpWindow>,
    orders: HashMap<String, OrderWindow>,
}

/// The limits in force and the counting windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: Mutex<Limits>,
    windows: Mutex<Windows>,
}

/// What a request used, for the response headers: the IP's weight this minute, and for an
/// order the account's orders in the 10 s and 1 min windows.
type Used = (u32, Option<(u32, u32)>);

impl RateLimiter {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits: Mutex::new(limits),
            windows: Mutex::new(Windows::default()),
        }
    }

    pub(crate) fn get(&self) -> Limits {
        *lock(&self.limits)
    }

    /// New limits; the counters start again.
    pub(crate) fn set(&self, limits: Limits) {
        *lock(&self.limits) = limits;
        let mut w = lock(&self.windows);
        w.ips.clear();
        w.orders.clear();
    }

    /// Count `weight` for `ip` (and one order for `api_key` when `order`); the refusal is the
    /// response, headers included.
    fn count(
        &self,
        ip: IpAddr,
        api_key: &str,
        weight: u32,
        order: bool,
        now: i64,
    ) -> Result<Used, Box<Response>> {
        let limits = self.get();
        let mut windows = lock(&self.windows);
        let minute = now.div_euclid(60_000);
        let w = windows.ips.entry(ip).or_default();
        if w.minute != minute {
            w.minute = minute;
            w.used = 0;
            w.rejected = 0;
        }
        if w.banned_until > now {
            let secs = (w.banned_until - now + 999) / 1000;
            let msg = format!(
                "Way too many requests; IP({ip}) banned until {}. Please use the websocket for live updates to avoid bans.",
                w.banned_until
            );
            return Err(refusal(ApiError::new(418, -1003, msg), secs, None));
        }
        w.used = w.used.saturating_add(weight);
        if limits.weight_per_minute > 0 && w.used > limits.weight_per_minute {
            w.rejected += 1;
            if limits.ban_after_429s > 0 && w.rejected > limits.ban_after_429s {
                w.banned_until = now + i64::from(limits.ban_seconds) * 1000;
            }
            let retry = (minute + 1) * 60_000 - now;
            let msg = format!(
                "Too many requests; current limit of IP({ip}) is {} requests per minute. Please use the websocket for live updates to avoid polling the API.",
                limits.weight_per_minute
            );
            let err = ApiError::new(429, -1003, msg);
            return Err(refusal(err, (retry + 999) / 1000, Some(w.used)));
        }
        let used = w.used;
        if !order {
            return Ok((used, None));
        }
        let o = windows.orders.entry(api_key.to_string()).or_default();
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
            let msg = format!("Too many new orders; current limit is {limit} orders per {unit}.");
            return Err(refusal(
                ApiError::new(429, -1015, msg),
                (retry + 999) / 1000,
                None,
            ));
        }
        o.n10 += 1;
        o.n60 += 1;
        Ok((used, Some((o.n10, o.n60))))
    }
}

fn refusal(err: ApiError, retry_after_secs: i64, used: Option<u32>) -> Box<Response> {
    let mut r = err.into_response();
    set_header(r.headers_mut(), "Retry-After", retry_after_secs);
    if let Some(used) = used {
        set_header(r.headers_mut(), "X-MBX-USED-WEIGHT-1M", used);
    }
    Box::new(r)
}

fn set_header(h: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(name, v);
    }
}

/// The weight of a request, as Binance counts it: the endpoint's, or one that depends on the
/// query's `limit` and on whether a `symbol` was sent.
pub(crate) fn request_weight(endpoint: &Endpoint, call: &Call) -> u32 {
    let q = |name| call.params.query_int(name).unwrap_or(500);
    match endpoint.path {
        "/fapi/v1/klines" => match q("limit") {
            ..100 => 1,
            100..500 => 2,
            500..=1000 => 5,
            _ => 10,
        },
        "/fapi/v1/openOrders" if !call.params.query_has("symbol") => 40,
        "/fapi/v1/ticker/24hr"
        | "/fapi/v1/ticker/price"
        | "/fapi/v2/ticker/price"
        | "/fapi/v1/ticker/bookTicker"
            if !call.params.query_has("symbol") =>
        {
            endpoint.weight.max(5)
        }
        "/fapi/v1/depth" => match q("limit") {
            ..=50 => 2,
            51..=100 => 5,
            101..=500 => 10,
            _ => 20,
        },
        _ => endpoint.weight,
    }
}

/// Middleware: read the server time for the request, count its weight (and the order), refuse
/// it past a limit, and put the used counts on the response.
pub(crate) async fn admit(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = app.now();
    let api_key = req
        .headers()
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some(call) = req.extensions_mut().get_mut::<Call>() else {
        return ApiError::internal().into_response();
    };
    call.now = now;
    let endpoint = call.endpoint;
    let weight = request_weight(endpoint, call);
    let (used, orders) =
        match app
            .limits
            .count(addr.ip(), &api_key, weight, endpoint.counts_as_order, now)
        {
            Ok(v) => v,
            Err(refused) => return *refused,
        };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    set_header(h, "X-MBX-USED-WEIGHT-1M", used);
    if let Some((n10, n60)) = orders {
        set_header(h, "X-MBX-ORDER-COUNT-10S", n10);
        set_header(h, "X-MBX-ORDER-COUNT-1M", n60);
    }
    resp
}
