//! [`BinanceClient`]: the REST half of the Binance USDⓈ-M client, and its [`Exchange`] impl.
//!
//! Every request goes: limiter (weight and order counts, bans) → parameters (rounded, validated)
//! → `recvWindow` and `timestamp` from the injected clock plus the measured server offset →
//! HMAC signature over the exact query string → send with `X-MBX-APIKEY` → rate-limit headers
//! fed back to the limiter → typed answer or classified error. A `-1021` answer triggers one
//! clock resync and one resend with a fresh timestamp (it was a definite reject, so this is safe).

mod endpoints;
mod orders;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use qt_events::clock::SharedClock;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::config::ExchangeConfig;
use crate::error::{ExchangeError, Fence, Refusal, transport_reason};
use crate::exchange::{ExResult, Exchange};
use crate::filters::{ExchangeInfo, FilterValueError, SymbolInfo};
use crate::limiter::{Limits, Orders, RateLimiter, Usage};
use crate::sign::{Params, Signer};
use crate::types::*;
use crate::vocab::ApiCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Public market data.
    None,
    /// API key header only (listenKey endpoints).
    Key,
    /// API key, timestamp, recvWindow and signature (TRADE, USER_DATA).
    Signed,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    rest_url: String,
    api_key: Option<HeaderValue>,
    signer: Option<Signer>,
    recv_window_ms: u64,
    clock: SharedClock,
    offset_ms: AtomicI64,
    limiter: RateLimiter,
    filters: RwLock<HashMap<String, Result<SymbolInfo, FilterValueError>>>,
    config: ExchangeConfig,
}

/// The Binance USDⓈ-M REST client. Cheap to clone (shared state behind an `Arc`).
#[derive(Debug, Clone)]
pub struct BinanceClient {
    inner: Arc<Inner>,
}

impl BinanceClient {
    /// Builds a client for `config`, reading time from `clock`. Installs the rustls provider.
    pub fn new(config: ExchangeConfig, clock: SharedClock) -> ExResult<Self> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_millis(config.request_timeout_ms.min(5_000)))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| ExchangeError::Connect(transport_reason(e)))?;
        let api_key = match &config.api_key {
            Some(k) => {
                let mut v = HeaderValue::from_str(k.expose_secret()).map_err(|_| {
                    Refusal::InvalidOrder("the API key is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let signer = config.api_secret.as_ref().and_then(Signer::new);
        let limiter = RateLimiter::new(
            Limits {
                weight_1m: config.weight_limit_1m,
                orders_10s: config.order_limit_10s,
                orders_1m: config.order_limit_1m,
                opening_share_pct: config.opening_order_share_pct,
                reducing_share_pct: config.reducing_order_share_pct,
                ban_backoff_ms: config.ban_backoff_ms,
            },
            clock.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                rest_url: config.rest_url.trim_end_matches('/').to_string(),
                api_key,
                signer,
                recv_window_ms: config.recv_window_ms,
                clock,
                offset_ms: AtomicI64::new(0),
                limiter,
                filters: RwLock::new(HashMap::new()),
                config,
            }),
        })
    }

    /// The configuration the client was built with (secrets stay hidden in its `Debug`).
    pub fn config(&self) -> &ExchangeConfig {
        &self.inner.config
    }

    /// The injected clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The measured offset: server time minus local clock (ms).
    pub fn time_offset_ms(&self) -> i64 {
        self.inner.offset_ms.load(Ordering::Relaxed)
    }

    /// Sets the offset directly (tests, or a caller with its own measurement).
    pub fn set_time_offset_ms(&self, offset: i64) {
        self.inner.offset_ms.store(offset, Ordering::Relaxed);
    }

    /// What the limiter currently counts.
    pub fn rate_limit_usage(&self) -> Usage {
        self.inner.limiter.usage()
    }

    /// Puts an exchangeInfo's symbols into the cache (e.g. from a saved exchangeInfo): those
    /// read, and those whose filters could not be read, as their error.
    pub fn set_filters(&self, info: &ExchangeInfo) {
        let mut map = self
            .inner
            .filters
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for s in &info.symbols {
            map.insert(s.symbol.clone(), Ok(s.clone()));
        }
        for e in &info.invalid {
            map.insert(e.symbol.clone(), Err(e.clone()));
        }
    }

    /// A precision, tick, step or notional rejection means the cached filters may be stale:
    /// drop them so the next order of the symbol reloads `exchangeInfo`.
    fn forget_filters_on_filter_error<T>(&self, symbol: &str, r: &ExResult<T>) {
        if let Err(e) = r
            && e.api_code().is_some_and(ApiCode::filter_refusal)
        {
            tracing::warn!(
                symbol,
                code = e.code(),
                "filter rejection: reloading exchangeInfo next time"
            );
            self.inner
                .filters
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(symbol);
        }
    }

    fn cached_filters(&self, symbol: &str) -> Option<Result<SymbolInfo, FilterValueError>> {
        self.inner
            .filters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(symbol)
            .cloned()
    }

    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &Params,
        auth: Auth,
        weight: u32,
        orders: Orders,
    ) -> ExResult<T> {
        let mut resynced = false;
        loop {
            let r = self
                .call_once::<T>(method.clone(), path, params, auth, weight, orders)
                .await;
            match r {
                Err(e)
                    if e.api_code() == Some(ApiCode::InvalidTimestamp)
                        && auth == Auth::Signed
                        && !resynced =>
                {
                    resynced = true;
                    tracing::warn!(
                        path,
                        "timestamp outside recvWindow (-1021): resyncing clock"
                    );
                    self.measure_offset().await?;
                }
                other => return other,
            }
        }
    }

    /// Sends one request and reads a 2xx answer as `T`.
    async fn call_once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        params: &Params,
        auth: Auth,
        weight: u32,
        orders: Orders,
    ) -> ExResult<T> {
        let inner = &*self.inner;
        if auth != Auth::None && inner.api_key.is_none() {
            return Err(Refusal::MissingCredentials.into());
        }
        if auth == Auth::Signed && inner.signer.is_none() {
            return Err(Refusal::MissingCredentials.into());
        }
        inner.limiter.acquire(weight, orders).await;
        let mut query = params.clone();
        let mut fence = None;
        if let (Auth::Signed, Some(signer)) = (auth, inner.signer.as_ref()) {
            let ts = self.server_now_ms();
            query.push("recvWindow", inner.recv_window_ms);
            query.push("timestamp", ts);
            query.sign_with(signer);
            fence = Some(Fence {
                timestamp_ms: ts,
                recv_window_ms: inner.recv_window_ms,
            });
        }
        let url = if query.is_empty() {
            format!("{}{}", inner.rest_url, path)
        } else {
            format!("{}{}?{}", inner.rest_url, path, query.as_str())
        };
        let mut req = inner.http.request(method, url);
        if let (true, Some(key)) = (auth != Auth::None, inner.api_key.as_ref()) {
            req = req.header("X-MBX-APIKEY", key.clone());
        }
        if let Some(tp) = crate::trace::current_traceparent() {
            req = req.header("traceparent", tp);
        }
        // The request's round trip (to the end of its body), for the API health panel.
        let sent = std::time::Instant::now();
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() && !e.is_timeout() {
                ExchangeError::Connect(transport_reason(e))
            } else {
                ExchangeError::Unknown {
                    reason: transport_reason(e),
                    fence,
                }
            }
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let weight = header_u32(headers, "x-mbx-used-weight-1m");
        if let Some(w) = weight {
            metrics::gauge!("qt_exchange_used_weight_1m").set(f64::from(w));
        }
        inner.limiter.observe_headers(
            weight,
            header_u32(headers, "x-mbx-order-count-10s"),
            header_u32(headers, "x-mbx-order-count-1m"),
        );
        let retry_after_ms = header_u32(headers, "retry-after").map(|s| u64::from(s) * 1_000);
        let body = resp.bytes().await.map_err(|e| ExchangeError::Unknown {
            reason: format!("reading the answer of {path}: {}", transport_reason(e)),
            fence,
        })?;
        metrics::histogram!("qt_exchange_request_seconds").record(sent.elapsed().as_secs_f64());
        if (200..300).contains(&status) {
            inner.limiter.success();
            return serde_json::from_slice::<T>(&body).map_err(|e| ExchangeError::Decode {
                path: path.to_string(),
                reason: e.to_string(),
                fence,
            });
        }
        if status == 429 || status == 418 {
            metrics::counter!("qt_exchange_rate_limited_total", "status" => status.to_string())
                .increment(1);
            let wait = inner.limiter.ban(retry_after_ms);
            tracing::warn!(
                path,
                status,
                wait_ms = wait,
                "rate limited: holding every request"
            );
            return Err(ExchangeError::RateLimited {
                status,
                retry_after_ms: wait,
            });
        }
        let cm: CodeMsg = serde_json::from_slice(&body).unwrap_or_else(|_| CodeMsg {
            code: 0,
            msg: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        });
        Err(ExchangeError::Api {
            status,
            code: cm.code,
            msg: cm.msg,
            fence,
        })
    }

    /// Measures and stores the server time offset (see [`Exchange::sync_time`]).
    async fn measure_offset(&self) -> ExResult<i64> {
        let t0 = self.inner.clock.now_ms();
        let t: ServerTime = self
            .call_once(
                Method::GET,
                "/fapi/v1/time",
                &Params::new(),
                Auth::None,
                1,
                Orders::None,
            )
            .await?;
        let t1 = self.inner.clock.now_ms();
        let offset = t.server_time - (t0 + (t1 - t0) / 2);
        self.inner.offset_ms.store(offset, Ordering::Relaxed);
        tracing::debug!(offset_ms = offset, "server time offset measured");
        Ok(offset)
    }
}

fn header_u32(h: &HeaderMap, name: &str) -> Option<u32> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}
