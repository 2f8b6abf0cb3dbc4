//! [`BinanceClient`]: the REST half of the Binance USDⓈ-M client, and its [`Exchange`] impl.
//!
//! Every request goes: limiter (weight and order counts, bans) → parameters (rounded, validated)
//! → `recvWindow` and `timestamp` from the injected clock plus the measured server offset →
//! HMAC signature over the exact query string → send with `X-MBX-APIKEY` → rate-limit headers
//! fed back to the limiter → typed answer or classified error. A `-1021` answer triggers one
//! clock resync and one resend with a fresh timestamp (it was a definite reject, so this is safe).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use qt_events::clock::SharedClock;
use qt_events::ids::is_valid_client_order_id;
use qt_events::{Decimal, Side};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use crate::config::ExchangeConfig;
use crate::error::{ExchangeError, Fence, Refusal, transport_reason};
use crate::exchange::{ExResult, Exchange};
use crate::filters::{
    ExchangeInfo, FilterValueError, PriceRounding, SymbolFilters, SymbolInfo, check_order_price,
    check_order_qty,
};
use crate::limiter::{Limits, Orders, RateLimiter, Usage};
use crate::sign::{Params, Signer};
use crate::types::*;
use crate::vocab::ApiCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
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

    async fn call<T: DeserializeOwned>(
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

    fn check_client_id(id: &str) -> ExResult<()> {
        if is_valid_client_order_id(id) {
            Ok(())
        } else {
            Err(Refusal::InvalidClientOrderId(id.to_string()).into())
        }
    }

    /// One symbol of exchangeInfo, from the cache (loaded on first use).
    pub async fn symbol_info(&self, symbol: &str) -> ExResult<SymbolInfo> {
        let cached = match self.cached_filters(symbol) {
            Some(c) => c,
            None => {
                self.exchange_info().await?;
                self.cached_filters(symbol)
                    .ok_or_else(|| Refusal::UnknownSymbol(symbol.to_string()))?
            }
        };
        // A symbol whose rules could not be read refuses every order (nothing is sent), with
        // the error naming the symbol, filter and field.
        Ok(cached.map_err(|e| Refusal::InvalidOrder(e.to_string()))?)
    }

    async fn trading_filters(&self, symbol: &str) -> ExResult<SymbolFilters> {
        let s = self.symbol_info(symbol).await?;
        if !s.status.is_empty() && s.status != "TRADING" {
            return Err(Refusal::InvalidOrder(format!("{symbol} is {}", s.status)).into());
        }
        Ok(s.filters)
    }

    /// Builds the exact parameters of a new order (rounded and checked), without sending.
    pub async fn order_params(&self, order: &NewOrder) -> ExResult<Params> {
        Self::check_client_id(&order.client_order_id)?;
        let f = self.trading_filters(&order.symbol).await?;
        let mut p = Params::new();
        p.push("symbol", &order.symbol)
            .push("side", side_str(order.side));
        match order.order_type {
            PlainOrderType::Market => {
                let reference = match order.reference_price {
                    Some(px) => px,
                    None if order.reduce_only => Decimal::ZERO,
                    None => self.mark_price(&order.symbol).await?.mark_price,
                };
                let qty = check_order_qty(&f, order.quantity, reference, true, order.reduce_only)?;
                p.push("type", "MARKET").push("quantity", qty);
            }
            PlainOrderType::Limit => {
                let raw = order
                    .price
                    .ok_or_else(|| Refusal::InvalidOrder("a LIMIT order needs a price".into()))?;
                // Round towards the passive side: never pay more / sell cheaper than asked.
                let how = match order.side {
                    Side::Buy => PriceRounding::Down,
                    Side::Sell => PriceRounding::Up,
                };
                let price = check_order_price(&f, raw, how)?;
                let qty = check_order_qty(&f, order.quantity, price, false, order.reduce_only)?;
                p.push("type", "LIMIT")
                    .push("quantity", qty)
                    .push("price", price)
                    .push(
                        "timeInForce",
                        order.time_in_force.unwrap_or_default().as_str(),
                    );
            }
        }
        if order.reduce_only {
            p.push("reduceOnly", "true");
        }
        p.push_opt("positionSide", order.position_side.map(|s| s.as_str()));
        p.push("newClientOrderId", &order.client_order_id)
            .push("newOrderRespType", "RESULT");
        Ok(p)
    }

    /// Builds the exact parameters of a conditional order (rounded and checked), without sending.
    pub async fn algo_order_params(&self, order: &NewAlgoOrder) -> ExResult<Params> {
        Self::check_client_id(&order.client_algo_id)?;
        let f = self.trading_filters(&order.symbol).await?;
        if order.close_position && (order.quantity.is_some() || order.reduce_only) {
            return Err(Refusal::InvalidOrder(
                "closePosition cannot be combined with quantity or reduceOnly".into(),
            )
            .into());
        }
        if !order.close_position && order.quantity.is_none() {
            return Err(
                Refusal::InvalidOrder("a quantity or closePosition is needed".into()).into(),
            );
        }
        let mut p = Params::new();
        p.push("algoType", "CONDITIONAL")
            .push("symbol", &order.symbol)
            .push("side", side_str(order.side));
        p.push_opt("positionSide", order.position_side.map(|s| s.as_str()));
        p.push("type", order.order_type.as_str());
        let trigger = match order.order_type {
            AlgoOrderType::StopMarket | AlgoOrderType::TakeProfitMarket => {
                let t = order.trigger_price.ok_or_else(|| {
                    Refusal::InvalidOrder(format!(
                        "{} needs a triggerPrice",
                        order.order_type.as_str()
                    ))
                })?;
                let t = check_order_price(&f, t, PriceRounding::Nearest)?;
                p.push("triggerPrice", t);
                Some(t)
            }
            AlgoOrderType::TrailingStopMarket => {
                let rate = order.callback_rate.ok_or_else(|| {
                    Refusal::InvalidOrder("TRAILING_STOP_MARKET needs a callbackRate".into())
                })?;
                if rate < Decimal::new(1, 1) || rate > Decimal::TEN {
                    return Err(Refusal::InvalidOrder(format!(
                        "callbackRate {rate} is outside 0.1..=10"
                    ))
                    .into());
                }
                let act = match order.activate_price {
                    Some(a) => Some(check_order_price(&f, a, PriceRounding::Nearest)?),
                    None => None,
                };
                p.push_opt("activatePrice", act);
                p.push("callbackRate", rate.normalize());
                act
            }
        };
        if let Some(q) = order.quantity {
            let reference = match trigger {
                Some(t) => t,
                None if order.reduce_only => Decimal::ZERO,
                None => self.mark_price(&order.symbol).await?.mark_price,
            };
            let q = check_order_qty(&f, q, reference, true, order.reduce_only)?;
            p.push("quantity", q);
        }
        if order.close_position {
            p.push("closePosition", "true");
        }
        if order.reduce_only {
            p.push("reduceOnly", "true");
        }
        p.push("workingType", working_type_str(order.working_type));
        if order.price_protect {
            p.push("priceProtect", "TRUE");
        }
        p.push("clientAlgoId", &order.client_algo_id);
        Ok(p)
    }
}

fn header_u32(h: &HeaderMap, name: &str) -> Option<u32> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn symbol_param(symbol: Option<&str>) -> Params {
    let mut p = Params::new();
    p.push_opt("symbol", symbol);
    p
}

impl Exchange for BinanceClient {
    fn server_now_ms(&self) -> i64 {
        self.inner
            .clock
            .now_ms()
            .saturating_add(self.inner.offset_ms.load(Ordering::Relaxed))
    }

    fn orders_wait(&self, class: Orders, in_flight: u32) -> Option<Duration> {
        let until = self.inner.limiter.held_until_with(class, in_flight)?;
        let wait = until.saturating_sub(self.inner.clock.now_ms()).max(1);
        Some(Duration::from_millis(u64::try_from(wait).unwrap_or(1)))
    }

    async fn sync_time(&self) -> ExResult<i64> {
        self.measure_offset().await
    }

    async fn server_time(&self) -> ExResult<i64> {
        let t: ServerTime = self
            .call(
                Method::GET,
                "/fapi/v1/time",
                &Params::new(),
                Auth::None,
                1,
                Orders::None,
            )
            .await?;
        Ok(t.server_time)
    }

    async fn exchange_info(&self) -> ExResult<ExchangeInfo> {
        let info: ExchangeInfo = self
            .call(
                Method::GET,
                "/fapi/v1/exchangeInfo",
                &Params::new(),
                Auth::None,
                1,
                Orders::None,
            )
            .await?;
        self.set_filters(&info);
        Ok(info)
    }

    async fn symbol_filters(&self, symbol: &str) -> ExResult<SymbolFilters> {
        Ok(self.symbol_info(symbol).await?.filters)
    }

    async fn klines(
        &self,
        symbol: &str,
        interval: &str,
        start_time: Option<i64>,
        end_time: Option<i64>,
        limit: Option<u16>,
    ) -> ExResult<Vec<Kline>> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("interval", interval)
            .push_opt("startTime", start_time)
            .push_opt("endTime", end_time)
            .push_opt("limit", limit);
        let weight = match limit.unwrap_or(500) {
            0..100 => 1,
            100..500 => 2,
            500..=1000 => 5,
            _ => 10,
        };
        self.call(
            Method::GET,
            "/fapi/v1/klines",
            &p,
            Auth::None,
            weight,
            Orders::None,
        )
        .await
    }

    async fn tickers_24h(&self) -> ExResult<Vec<Ticker24h>> {
        self.call(
            Method::GET,
            "/fapi/v1/ticker/24hr",
            &Params::new(),
            Auth::None,
            40,
            Orders::None,
        )
        .await
    }

    async fn mark_price(&self, symbol: &str) -> ExResult<MarkPrice> {
        let p = symbol_param(Some(symbol));
        self.call(
            Method::GET,
            "/fapi/v1/premiumIndex",
            &p,
            Auth::None,
            1,
            Orders::None,
        )
        .await
    }

    async fn mark_prices(&self) -> ExResult<Vec<MarkPrice>> {
        self.call(
            Method::GET,
            "/fapi/v1/premiumIndex",
            &Params::new(),
            Auth::None,
            10,
            Orders::None,
        )
        .await
    }

    async fn new_order(&self, order: &NewOrder) -> ExResult<Order> {
        let p = self.order_params(order).await?;
        let r = self
            .call(
                Method::POST,
                "/fapi/v1/order",
                &p,
                Auth::Signed,
                0,
                Orders::of_order(order),
            )
            .await;
        self.forget_filters_on_filter_error(&order.symbol, &r);
        r
    }

    async fn query_order(&self, symbol: &str, client_order_id: &str) -> ExResult<Order> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("origClientOrderId", client_order_id);
        self.call(
            Method::GET,
            "/fapi/v1/order",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn cancel_order(&self, symbol: &str, client_order_id: &str) -> ExResult<Order> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("origClientOrderId", client_order_id);
        self.call(
            Method::DELETE,
            "/fapi/v1/order",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn open_orders(&self, symbol: Option<&str>) -> ExResult<Vec<Order>> {
        let w = if symbol.is_some() { 1 } else { 40 };
        let p = symbol_param(symbol);
        self.call(
            Method::GET,
            "/fapi/v1/openOrders",
            &p,
            Auth::Signed,
            w,
            Orders::None,
        )
        .await
    }

    async fn cancel_all_orders(&self, symbol: &str) -> ExResult<()> {
        let p = symbol_param(Some(symbol));
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/allOpenOrders",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn new_algo_order(&self, order: &NewAlgoOrder) -> ExResult<AlgoOrder> {
        let p = self.algo_order_params(order).await?;
        let r = self
            .call(
                Method::POST,
                "/fapi/v1/algoOrder",
                &p,
                Auth::Signed,
                0,
                Orders::of_algo(order),
            )
            .await;
        self.forget_filters_on_filter_error(&order.symbol, &r);
        r
    }

    async fn query_algo_order(&self, client_algo_id: &str) -> ExResult<AlgoOrder> {
        let mut p = Params::new();
        p.push("clientAlgoId", client_algo_id);
        self.call(
            Method::GET,
            "/fapi/v1/algoOrder",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn cancel_algo_order(&self, client_algo_id: &str) -> ExResult<()> {
        let mut p = Params::new();
        p.push("clientAlgoId", client_algo_id);
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/algoOrder",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn open_algo_orders(&self, symbol: Option<&str>) -> ExResult<Vec<AlgoOrder>> {
        let w = if symbol.is_some() { 1 } else { 40 };
        let p = symbol_param(symbol);
        self.call(
            Method::GET,
            "/fapi/v1/openAlgoOrders",
            &p,
            Auth::Signed,
            w,
            Orders::None,
        )
        .await
    }

    async fn cancel_all_algo_orders(&self, symbol: &str) -> ExResult<()> {
        let p = symbol_param(Some(symbol));
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/algoOpenOrders",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn positions(&self, symbol: Option<&str>) -> ExResult<Vec<Position>> {
        let p = symbol_param(symbol);
        self.call(
            Method::GET,
            "/fapi/v3/positionRisk",
            &p,
            Auth::Signed,
            5,
            Orders::None,
        )
        .await
    }

    async fn balances(&self) -> ExResult<Vec<Balance>> {
        self.call(
            Method::GET,
            "/fapi/v3/balance",
            &Params::new(),
            Auth::Signed,
            5,
            Orders::None,
        )
        .await
    }

    async fn account(&self) -> ExResult<Account> {
        self.call(
            Method::GET,
            "/fapi/v3/account",
            &Params::new(),
            Auth::Signed,
            5,
            Orders::None,
        )
        .await
    }

    async fn income(&self, query: &IncomeQuery) -> ExResult<Vec<Income>> {
        let mut p = Params::new();
        p.push_opt("symbol", query.symbol.as_deref())
            .push_opt(
                "incomeType",
                query.income_type.as_ref().map(IncomeType::as_str),
            )
            .push_opt("startTime", query.start_time)
            .push_opt("endTime", query.end_time)
            .push_opt("limit", query.limit);
        self.call(
            Method::GET,
            "/fapi/v1/income",
            &p,
            Auth::Signed,
            30,
            Orders::None,
        )
        .await
    }

    async fn set_leverage(&self, symbol: &str, leverage: u32) -> ExResult<LeverageChange> {
        if !(1..=125).contains(&leverage) {
            return Err(
                Refusal::InvalidOrder(format!("leverage {leverage} is outside 1..=125")).into(),
            );
        }
        let mut p = Params::new();
        p.push("symbol", symbol).push("leverage", leverage);
        self.call(
            Method::POST,
            "/fapi/v1/leverage",
            &p,
            Auth::Signed,
            1,
            Orders::None,
        )
        .await
    }

    async fn set_margin_type(&self, symbol: &str, margin_type: MarginType) -> ExResult<()> {
        let mut p = Params::new();
        p.push("symbol", symbol)
            .push("marginType", margin_type.as_str());
        let r: ExResult<serde_json::Value> = self
            .call(
                Method::POST,
                "/fapi/v1/marginType",
                &p,
                Auth::Signed,
                1,
                Orders::None,
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.api_code() == Some(ApiCode::NoNeedToChangeMarginType) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_listen_key(&self) -> ExResult<String> {
        let a: ListenKeyAnswer = self
            .call(
                Method::POST,
                "/fapi/v1/listenKey",
                &Params::new(),
                Auth::Key,
                1,
                Orders::None,
            )
            .await?;
        Ok(a.listen_key)
    }

    async fn keepalive_listen_key(&self) -> ExResult<()> {
        let _: serde_json::Value = self
            .call(
                Method::PUT,
                "/fapi/v1/listenKey",
                &Params::new(),
                Auth::Key,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }

    async fn close_listen_key(&self) -> ExResult<()> {
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                "/fapi/v1/listenKey",
                &Params::new(),
                Auth::Key,
                1,
                Orders::None,
            )
            .await?;
        Ok(())
    }
}
