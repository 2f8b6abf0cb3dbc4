//! The rate limits in force and their counting windows, as Binance counts them: the IP's used
//! weight per minute, the account's orders per 10 s and per minute, 429 with `Retry-After`
//! past a limit, 418 (banned) after repeated 429s. The middleware that charges each request
//! is `weight.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::config::Limits;
use crate::error::ApiError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
pub(crate) type Used = (u32, Option<(u32, u32)>);

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
    pub(crate) fn count(
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

pub(crate) fn set_header(h: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(name, v);
    }
}
