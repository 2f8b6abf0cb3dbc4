//! The market-context task trading-bot hosts (`[trading_bot.context]`): `qt-context`'s hub over
//! the configured sources, publishing `ContextObserved` on `context` every `poll_seconds`.
//!
//! What each mode can reach decides the defaults: Binance's positioning data comes through the
//! same exchange URL as the candles (in paper, sim-exchange serves it from its data), so it is on
//! by default; CoinGecko and Fear & Greed are outside the machine, so they are off until their
//! base URL is set (`coingecko_url`, `fear_greed_url`). The task never touches trading: nothing
//! here decides, and the bot's candle path does not wait on it.

use std::sync::Arc;
use std::time::Duration;

use qt_bus::{Bus, SharedCache};
use qt_context::sources::binance::BinanceFutures;
use qt_context::sources::coingecko::{CoinGecko, CoinGeckoConfig};
use qt_context::sources::fear_greed::FearGreed;
use qt_context::{ContextHub, HubConfig, Source};
use qt_events::clock::SharedClock;
use qt_exchange::market_data::DataPeriod;
use qt_exchange::{BinanceClient, ExchangeConfig};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::settings::SettingsError;

/// `[trading_bot.context]`. Every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextSettings {
    /// Run the context task (default true).
    pub enabled: bool,
    /// Seconds between two polls (default 60; each source's cache TTL decides what is asked).
    pub poll_seconds: u64,
    /// Binance's funding, open interest, long/short and taker data of the bot's symbols, through
    /// the exchange URL (default true).
    pub binance: bool,
    /// Period of Binance's statistics (`5m`, `15m`, `30m`, `1h`, …; default `5m`).
    pub period: String,
    /// CoinGecko's base URL, e.g. `https://api.coingecko.com`; unset (the default) = off. A Demo
    /// key is read from `QT_COINGECKO_API_KEY`.
    pub coingecko_url: Option<String>,
    /// CoinGecko coin ids for `/coins/markets` (default bitcoin, ethereum).
    pub coingecko_coins: Vec<String>,
    /// alternative.me's base URL, e.g. `https://api.alternative.me`; unset (the default) = off.
    pub fear_greed_url: Option<String>,
    /// Per-request timeout in ms (default 10000).
    pub timeout_ms: u64,
}

impl Default for ContextSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_seconds: 60,
            binance: true,
            period: "5m".into(),
            coingecko_url: None,
            coingecko_coins: vec!["bitcoin".into(), "ethereum".into()],
            fear_greed_url: None,
            timeout_ms: 10_000,
        }
    }
}

impl ContextSettings {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |setting, detail: String| SettingsError { setting, detail };
        if self.poll_seconds == 0 {
            return Err(bad("context.poll_seconds", "must be above 0".into()));
        }
        if DataPeriod::parse(&self.period).is_none() {
            return Err(bad(
                "context.period",
                format!(
                    "one of 5m 15m 30m 1h 2h 4h 6h 12h 1d, got {:?}",
                    self.period
                ),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(bad("context.timeout_ms", "must be above 0".into()));
        }
        for (setting, url) in [
            ("context.coingecko_url", &self.coingecko_url),
            ("context.fear_greed_url", &self.fear_greed_url),
        ] {
            if let Some(u) = url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                return Err(bad(setting, format!("an http(s) URL, got {u:?}")));
            }
        }
        Ok(())
    }
}

/// The context task of these settings, or `None` when it is disabled or has no source.
pub fn context_task(
    settings: &ContextSettings,
    symbols: &[String],
    exchange: &ExchangeConfig,
    bus: &Bus,
    clock: SharedClock,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<impl std::future::Future<Output = ()> + Send + 'static>> {
    Ok(context_hub(settings, symbols, exchange, bus, clock)?
        .map(|hub| publisher(settings, hub, bus, shutdown)))
}

/// The task that polls `hub` every `poll_seconds` and publishes on `context`.
pub fn publisher(
    settings: &ContextSettings,
    hub: Arc<ContextHub>,
    bus: &Bus,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    qt_context::run_publisher(
        hub,
        bus.clone(),
        Duration::from_secs(settings.poll_seconds),
        shutdown,
    )
}

/// The hub over the configured sources, or `None` when the task is disabled or has no source.
pub fn context_hub(
    settings: &ContextSettings,
    symbols: &[String],
    exchange: &ExchangeConfig,
    bus: &Bus,
    clock: SharedClock,
) -> anyhow::Result<Option<Arc<ContextHub>>> {
    if !settings.enabled {
        return Ok(None);
    }
    let timeout = Duration::from_millis(settings.timeout_ms);
    let mut sources: Vec<Arc<dyn Source>> = Vec::new();
    if settings.binance && !symbols.is_empty() {
        let period = DataPeriod::parse(&settings.period)
            .ok_or_else(|| anyhow::anyhow!("bad setting trading_bot.context.period"))?;
        let client = BinanceClient::new(exchange.clone(), clock.clone())?;
        sources.push(Arc::new(BinanceFutures::new(
            client,
            symbols.to_vec(),
            period,
        )));
    }
    if let Some(url) = &settings.coingecko_url {
        sources.push(Arc::new(CoinGecko::new(&CoinGeckoConfig {
            base_url: url.clone(),
            api_key: std::env::var("QT_COINGECKO_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            coin_ids: settings.coingecko_coins.clone(),
            timeout,
        })?));
    }
    if let Some(url) = &settings.fear_greed_url {
        sources.push(Arc::new(FearGreed::new(url, timeout)?));
    }
    if sources.is_empty() {
        tracing::info!("context task: no source configured");
        return Ok(None);
    }
    Ok(Some(Arc::new(ContextHub::new(
        sources,
        SharedCache::new(bus),
        clock,
        HubConfig {
            request_timeout: timeout,
            ..HubConfig::default()
        },
    ))))
}

/// `GET /health/context`: each context source's state, breaker, hold and the age of its
/// values ([`qt_events::api::ContextHealth`]); 404 when the context task does not run.
pub fn context_routes(hub: Option<Arc<ContextHub>>, clock: SharedClock) -> axum::Router {
    axum::Router::new().route(
        "/health/context",
        axum::routing::get(move || {
            let hub = hub.clone();
            let clock = clock.clone();
            async move {
                use axum::response::IntoResponse;
                match hub {
                    Some(h) => axum::Json(qt_events::api::ContextHealth {
                        now: clock.now_ms(),
                        sources: h.health().await,
                    })
                    .into_response(),
                    None => (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(serde_json::json!({
                            "error": "the context task does not run (disabled or no source configured)"
                        })),
                    )
                        .into_response(),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_reach_only_the_exchange_and_bad_values_name_their_setting() {
        let d = ContextSettings::default();
        assert!(d.enabled && d.binance);
        assert_eq!(
            (d.coingecko_url.as_deref(), d.fear_greed_url.as_deref()),
            (None, None)
        );
        assert!(d.validate().is_ok());
        let bad = |s: ContextSettings| s.validate().err().map(|e| e.setting);
        assert_eq!(
            bad(ContextSettings {
                period: "7m".into(),
                ..ContextSettings::default()
            }),
            Some("context.period")
        );
        assert_eq!(
            bad(ContextSettings {
                poll_seconds: 0,
                ..ContextSettings::default()
            }),
            Some("context.poll_seconds")
        );
        assert_eq!(
            bad(ContextSettings {
                coingecko_url: Some("api.coingecko.com".into()),
                ..ContextSettings::default()
            }),
            Some("context.coingecko_url")
        );
        let s = crate::Settings {
            context: ContextSettings {
                timeout_ms: 0,
                ..ContextSettings::default()
            },
            ..crate::Settings::default()
        };
        assert_eq!(
            s.validate().err().map(|e| e.setting),
            Some("context.timeout_ms")
        );
    }
}
