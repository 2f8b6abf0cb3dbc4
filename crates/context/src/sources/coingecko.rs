//! CoinGecko's public API (v3): `/api/v3/global`, `/api/v3/coins/markets`,
//! `/api/v3/search/trending`.
//!
//! Limits (CoinGecko "Errors & Rate Limits", docs.coingecko.com): keyless access is rate limited
//! per IP and shared with every user of that IP (historically 5–30 calls/min, varying with
//! load); the Demo plan (a free key sent as `x-cg-demo-api-key`) allows 100 calls/min (older
//! pages: 30). We budget 5 calls per minute keyless and 25 with a key, and the cache means one
//! call per request per TTL (5 min) for every instance together. A 429 may come without
//! `Retry-After`; the hub then backs off by itself.

use std::time::Duration;

use futures_util::future::BoxFuture;
use qt_events::ContextValue;
use serde_json::Value;

use crate::SourceError;
use crate::http::JsonGet;
use crate::num::{dec, opt_dec, rfc3339_ms};
use crate::source::{Limit, Policy, Query, Source};

/// Where and what to ask CoinGecko.
#[derive(Clone)]
pub struct CoinGeckoConfig {
    /// e.g. `https://api.coingecko.com` (the `/api/v3/…` paths are appended).
    pub base_url: String,
    /// A Demo key (sent as `x-cg-demo-api-key`), if any. Never logged.
    pub api_key: Option<String>,
    /// Coin ids of the universe for `/coins/markets` (e.g. `bitcoin`, `ethereum`).
    pub coin_ids: Vec<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for CoinGeckoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoinGeckoConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<hidden>"))
            .field("coin_ids", &self.coin_ids)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug)]
pub struct CoinGecko {
    http: JsonGet,
    coin_ids: Vec<String>,
    keyed: bool,
    policy: Policy,
}

impl CoinGecko {
    pub fn new(cfg: &CoinGeckoConfig) -> Result<Self, SourceError> {
        let mut http = JsonGet::new(&cfg.base_url, cfg.timeout)?;
        if let Some(k) = &cfg.api_key {
            http = http.with_secret_header("x-cg-demo-api-key", k);
        }
        Ok(Self {
            http,
            coin_ids: cfg.coin_ids.clone(),
            keyed: cfg.api_key.is_some(),
            policy: default_policy(),
        })
    }

    /// Replaces the default policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    async fn global(&self) -> Result<Vec<ContextValue>, SourceError> {
        let v = self.http.get("/api/v3/global").await?;
        parse_global(&v)
    }

    async fn markets(&self) -> Result<Vec<ContextValue>, SourceError> {
        if self.coin_ids.is_empty() {
            return Ok(Vec::new());
        }
        let path = format!(
            "/api/v3/coins/markets?vs_currency=usd&ids={}&order=market_cap_desc&per_page=250&page=1",
            self.coin_ids.join(",")
        );
        let v = self.http.get(&path).await?;
        parse_markets(&v)
    }

    async fn trending(&self) -> Result<Vec<ContextValue>, SourceError> {
        let v = self.http.get("/api/v3/search/trending").await?;
        parse_trending(&v)
    }
}

fn value(
    metric: &str,
    symbol: Option<&str>,
    v: rust_decimal::Decimal,
    as_of: Option<i64>,
) -> ContextValue {
    ContextValue {
        metric: metric.into(),
        symbol: symbol.map(str::to_string),
        value: Some(v),
        label: None,
        as_of,
    }
}

/// `/api/v3/global`: `{"data": {"total_market_cap": {"usd": …}, "total_volume": {"usd": …},
/// "market_cap_percentage": {"btc": …, "eth": …}, "market_cap_change_percentage_24h_usd": …,
/// "updated_at": <unix s>}}`.
pub fn parse_global(v: &Value) -> Result<Vec<ContextValue>, SourceError> {
    let d = v
        .get("data")
        .ok_or_else(|| SourceError::Malformed("global: no \"data\"".into()))?;
    let as_of = d
        .get("updated_at")
        .and_then(Value::as_i64)
        .map(|s| s * 1000);
    let field = |path: &[&str]| -> Result<rust_decimal::Decimal, SourceError> {
        let mut x = d;
        for p in path {
            x = x
                .get(p)
                .ok_or_else(|| SourceError::Malformed(format!("global: no {}", path.join("."))))?;
        }
        dec(x, &path.join("."))
    };
    Ok(vec![
        value(
            "total_market_cap_usd",
            None,
            field(&["total_market_cap", "usd"])?,
            as_of,
        ),
        value(
            "total_volume_usd",
            None,
            field(&["total_volume", "usd"])?,
            as_of,
        ),
        value(
            "btc_dominance_pct",
            None,
            field(&["market_cap_percentage", "btc"])?,
            as_of,
        ),
        value(
            "eth_dominance_pct",
            None,
            field(&["market_cap_percentage", "eth"])?,
            as_of,
        ),
        value(
            "market_cap_change_24h_pct",
            None,
            field(&["market_cap_change_percentage_24h_usd"])?,
            as_of,
        ),
    ])
}

/// `/api/v3/coins/markets`: an array of `{"id", "symbol", "current_price", "market_cap",
/// "total_volume", "price_change_percentage_24h", "last_updated"}`. A coin whose price is null
/// gives no price (missing, not zero).
pub fn parse_markets(v: &Value) -> Result<Vec<ContextValue>, SourceError> {
    let arr = v
        .as_array()
        .ok_or_else(|| SourceError::Malformed("coins/markets: not an array".into()))?;
    let mut out = Vec::new();
    for c in arr {
        let sym = c
            .get("symbol")
            .and_then(Value::as_str)
            .ok_or_else(|| SourceError::Malformed("coins/markets: a coin without symbol".into()))?
            .to_uppercase();
        let as_of = c
            .get("last_updated")
            .and_then(Value::as_str)
            .and_then(rfc3339_ms);
        for (key, metric) in [
            ("current_price", "price_usd"),
            ("market_cap", "market_cap_usd"),
            ("total_volume", "volume_24h_usd"),
            ("price_change_percentage_24h", "price_change_24h_pct"),
        ] {
            if let Some(x) = opt_dec(c, key)? {
                out.push(value(metric, Some(&sym), x, as_of));
            }
        }
    }
    Ok(out)
}

/// `/api/v3/search/trending`: `{"coins": [{"item": {"id", "symbol", "name", "score"}}], …}`;
/// one `trending_rank` value (1 = most searched) per coin, its name as the label.
pub fn parse_trending(v: &Value) -> Result<Vec<ContextValue>, SourceError> {
    let coins = v
        .get("coins")
        .and_then(Value::as_array)
        .ok_or_else(|| SourceError::Malformed("search/trending: no \"coins\" array".into()))?;
    let mut out = Vec::new();
    for (i, c) in coins.iter().enumerate() {
        let item = c
            .get("item")
            .ok_or_else(|| SourceError::Malformed("search/trending: a coin without item".into()))?;
        let sym = item
            .get("symbol")
            .and_then(Value::as_str)
            .ok_or_else(|| SourceError::Malformed("search/trending: no symbol".into()))?;
        let rank = match item.get("score") {
            Some(s) => dec(s, "score")? + rust_decimal::Decimal::ONE,
            None => rust_decimal::Decimal::from(i + 1),
        };
        out.push(ContextValue {
            metric: "trending_rank".into(),
            symbol: Some(sym.to_uppercase()),
            value: Some(rank),
            label: item.get("name").and_then(Value::as_str).map(str::to_string),
            as_of: None,
        });
    }
    Ok(out)
}

/// The default policy (see the module doc).
pub fn default_policy() -> Policy {
    Policy {
        ttl: Duration::from_secs(300),
        max_age: Duration::from_secs(900),
        backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(900),
        breaker_failures: 5,
        breaker_open_for: Duration::from_secs(300),
    }
}

impl Source for CoinGecko {
    fn name(&self) -> &'static str {
        "coingecko"
    }

    fn queries(&self) -> Vec<Query> {
        vec![Query::Global, Query::CoinMarkets, Query::Trending]
    }

    fn policy(&self) -> Policy {
        self.policy
    }

    fn limit(&self, _query: &Query) -> (&'static str, Limit) {
        let requests = if self.keyed { 25 } else { 5 };
        (
            "coingecko",
            Limit {
                requests,
                per: Duration::from_secs(60),
            },
        )
    }

    fn fetch<'a>(
        &'a self,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<ContextValue>, SourceError>> {
        Box::pin(async move {
            match query {
                Query::Global => self.global().await,
                Query::CoinMarkets => self.markets().await,
                Query::Trending => self.trending().await,
                other => Err(SourceError::Unsupported(other.key())),
            }
        })
    }
}
