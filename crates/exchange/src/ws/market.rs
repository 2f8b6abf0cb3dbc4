//! Market streams: kline, markPrice, aggTrade and bookTicker events, their decoding, and the
//! connection tasks that yield them.

use super::{Frame, StreamHandle, deliver, read_frame, wait_backoff};
use std::time::Duration;

use qt_events::{CandleClosed, Decimal, MarkPriceUpdated};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{ExchangeConfig, WsConfig};
use crate::types::lenient_dec;

/// One market stream to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MarketStream {
    /// `<symbol>@kline_<interval>`.
    Kline { symbol: String, interval: String },
    /// `<symbol>@markPrice` (3 s) or `<symbol>@markPrice@1s`.
    MarkPrice { symbol: String, every_second: bool },
    /// `<symbol>@aggTrade`.
    AggTrade { symbol: String },
    /// `<symbol>@bookTicker` (served on `/public`).
    BookTicker { symbol: String },
}

impl MarketStream {
    /// The stream name Binance uses (lowercase symbol).
    pub fn name(&self) -> String {
        match self {
            MarketStream::Kline { symbol, interval } => {
                format!("{}@kline_{interval}", symbol.to_lowercase())
            }
            MarketStream::MarkPrice {
                symbol,
                every_second,
            } => format!(
                "{}@markPrice{}",
                symbol.to_lowercase(),
                if *every_second { "@1s" } else { "" }
            ),
            MarketStream::AggTrade { symbol } => format!("{}@aggTrade", symbol.to_lowercase()),
            MarketStream::BookTicker { symbol } => format!("{}@bookTicker", symbol.to_lowercase()),
        }
    }

    /// The URL path that serves it: `public` for bookTicker, `market` otherwise.
    pub fn path(&self) -> &'static str {
        match self {
            MarketStream::BookTicker { .. } => "public",
            _ => "market",
        }
    }
}

/// `kline` event's candle.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KlineData {
    #[serde(rename = "t")]
    pub open_time: i64,
    #[serde(rename = "T")]
    pub close_time: i64,
    #[serde(rename = "i")]
    pub interval: String,
    #[serde(rename = "o", deserialize_with = "lenient_dec")]
    pub open: Decimal,
    #[serde(rename = "h", deserialize_with = "lenient_dec")]
    pub high: Decimal,
    #[serde(rename = "l", deserialize_with = "lenient_dec")]
    pub low: Decimal,
    #[serde(rename = "c", deserialize_with = "lenient_dec")]
    pub close: Decimal,
    #[serde(rename = "v", default, deserialize_with = "lenient_dec")]
    pub volume: Decimal,
    #[serde(rename = "q", default, deserialize_with = "lenient_dec")]
    pub quote_volume: Decimal,
    #[serde(rename = "n", default)]
    pub trades: u64,
    /// True once the candle is closed.
    #[serde(rename = "x", default)]
    pub closed: bool,
}

/// `<symbol>@kline_<interval>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KlineEvent {
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "k")]
    pub kline: KlineData,
}

impl KlineEvent {
    /// The wire event for a closed candle (`None` while the candle is still open).
    pub fn to_candle_closed(&self) -> Option<CandleClosed> {
        let k = &self.kline;
        k.closed.then(|| CandleClosed {
            symbol: self.symbol.clone(),
            interval: k.interval.clone(),
            open_time: k.open_time,
            close_time: k.close_time,
            open: k.open,
            high: k.high,
            low: k.low,
            close: k.close,
            volume: k.volume,
            quote_volume: k.quote_volume,
            trades: k.trades,
        })
    }
}

/// `<symbol>@markPrice`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MarkPriceEvent {
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "p", deserialize_with = "lenient_dec")]
    pub mark_price: Decimal,
    #[serde(rename = "i", default, deserialize_with = "lenient_dec")]
    pub index_price: Decimal,
    #[serde(rename = "r", default, deserialize_with = "lenient_dec")]
    pub funding_rate: Decimal,
    #[serde(rename = "T", default)]
    pub next_funding_time: i64,
}

impl MarkPriceEvent {
    /// The wire event.
    pub fn to_mark_price_updated(&self) -> MarkPriceUpdated {
        MarkPriceUpdated {
            symbol: self.symbol.clone(),
            mark_price: self.mark_price,
            index_price: Some(self.index_price),
            funding_rate: Some(self.funding_rate),
            event_time: self.event_time,
        }
    }
}

/// `<symbol>@aggTrade`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AggTradeEvent {
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "a", default)]
    pub agg_trade_id: i64,
    #[serde(rename = "p", deserialize_with = "lenient_dec")]
    pub price: Decimal,
    #[serde(rename = "q", deserialize_with = "lenient_dec")]
    pub qty: Decimal,
    #[serde(rename = "T", default)]
    pub trade_time: i64,
    /// The buyer was the maker (the aggressor sold).
    #[serde(rename = "m", default)]
    pub buyer_is_maker: bool,
}

/// `<symbol>@bookTicker`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BookTickerEvent {
    #[serde(rename = "u", default)]
    pub update_id: i64,
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "b", deserialize_with = "lenient_dec")]
    pub bid_price: Decimal,
    #[serde(rename = "B", default, deserialize_with = "lenient_dec")]
    pub bid_qty: Decimal,
    #[serde(rename = "a", deserialize_with = "lenient_dec")]
    pub ask_price: Decimal,
    #[serde(rename = "A", default, deserialize_with = "lenient_dec")]
    pub ask_qty: Decimal,
}

/// What a market stream task yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    /// A (re)connection to `path` was opened: updates may have been missed before it.
    Connected {
        path: &'static str,
    },
    Kline(KlineEvent),
    MarkPrice(MarkPriceEvent),
    AggTrade(AggTradeEvent),
    BookTicker(BookTickerEvent),
}

/// Decodes one market stream message (`None` for replies, unknown events and frames that do
/// not decode; [`decode_market_message`] tells the last apart).
pub fn parse_market_message(text: &str) -> Option<MarketEvent> {
    decode_market_message(text).ok().flatten()
}

/// Decodes one market stream message: `Ok(None)` for a reply to a request (`{"result":…,
/// "id":…}`) or an event type this client does not follow; `Err` with the reason for a frame
/// that is not JSON, carries no event type, or is an event of a known type that does not decode.
pub fn decode_market_message(text: &str) -> Result<Option<MarketEvent>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let v = match v {
        serde_json::Value::Object(mut m) if m.contains_key("data") && m.contains_key("stream") => {
            m.remove("data").unwrap_or_default()
        }
        other => other,
    };
    let Some(kind) = v.get("e").and_then(|e| e.as_str()).map(str::to_owned) else {
        if v.get("id").is_some() {
            return Ok(None);
        }
        return Err("no event type (\"e\")".into());
    };
    let bad = |e: serde_json::Error| format!("{kind}: {e}");
    let ev = match kind.as_str() {
        "kline" => MarketEvent::Kline(serde_json::from_value(v).map_err(bad)?),
        "markPriceUpdate" => MarketEvent::MarkPrice(serde_json::from_value(v).map_err(bad)?),
        "aggTrade" => MarketEvent::AggTrade(serde_json::from_value(v).map_err(bad)?),
        "bookTicker" => MarketEvent::BookTicker(serde_json::from_value(v).map_err(bad)?),
        _ => return Ok(None),
    };
    Ok(Some(ev))
}

/// Counts the market frames that do not decode (`qt_exchange_ws_undecodable_total{path}`) and
/// logs them at most once a minute per connection path, with how many were left unlogged.
struct UndecodableFrames {
    path: &'static str,
    last_log: Option<tokio::time::Instant>,
    unlogged: u64,
}

impl UndecodableFrames {
    const LOG_EVERY: Duration = Duration::from_secs(60);

    fn new(path: &'static str) -> Self {
        Self {
            path,
            last_log: None,
            unlogged: 0,
        }
    }

    fn seen(&mut self, reason: &str, frame: &str) {
        metrics::counter!("qt_exchange_ws_undecodable_total", "path" => self.path).increment(1);
        let now = tokio::time::Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < Self::LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let sample: String = frame.chars().take(200).collect();
        tracing::warn!(
            path = self.path,
            %reason,
            frame = %sample,
            unlogged_since_last = self.unlogged,
            "undecodable market frame dropped"
        );
        self.last_log = Some(now);
        self.unlogged = 0;
    }
}

/// Opens one connection per path (`market`, `public`) for `streams` and returns their events.
pub fn spawn_market_streams(
    config: &ExchangeConfig,
    streams: &[MarketStream],
    buffer: usize,
) -> (mpsc::Receiver<MarketEvent>, StreamHandle) {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    for path in ["market", "public"] {
        let names: Vec<String> = streams
            .iter()
            .filter(|s| s.path() == path)
            .map(MarketStream::name)
            .collect();
        if names.is_empty() {
            continue;
        }
        let url = format!(
            "{}/{path}/stream?streams={}",
            config.ws_url,
            names.join("/")
        );
        tasks.push(tokio::spawn(market_task(
            url,
            path,
            config.ws.clone(),
            tx.clone(),
            cancel.clone(),
        )));
    }
    (rx, StreamHandle { cancel, tasks })
}

async fn market_task(
    url: String,
    path: &'static str,
    cfg: WsConfig,
    tx: mpsc::Sender<MarketEvent>,
    cancel: CancellationToken,
) {
    let mut attempt = 0u32;
    let mut undecodable = UndecodableFrames::new(path);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let mut planned = false;
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((mut ws, _)) => {
                attempt = 0;
                tracing::info!(path, "market stream connected");
                if !deliver(&tx, MarketEvent::Connected { path }, &cancel).await {
                    return;
                }
                let age = tokio::time::sleep(Duration::from_millis(cfg.max_connection_age_ms));
                tokio::pin!(age);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            let _ = ws.close(None).await;
                            return;
                        }
                        _ = &mut age => {
                            tracing::info!(path, "market stream reaching its maximum age: reconnecting");
                            let _ = ws.close(None).await;
                            planned = true;
                            break;
                        }
                        frame = read_frame(&mut ws) => match frame {
                            Frame::Text(t) => match decode_market_message(&t) {
                                Ok(Some(ev)) => {
                                    if !deliver(&tx, ev, &cancel).await {
                                        let _ = ws.close(None).await;
                                        return;
                                    }
                                }
                                Ok(None) => {}
                                Err(reason) => undecodable.seen(&reason, &t),
                            },
                            Frame::Closed(reason) => {
                                tracing::warn!(path, %reason, "market stream lost: reconnecting");
                                break;
                            }
                        },
                    }
                }
            }
            Err(e) => tracing::warn!(path, error = %e, attempt, "market stream connect failed"),
        }
        if planned {
            continue;
        }
        if !wait_backoff(&cfg, attempt, &cancel).await {
            return;
        }
        attempt = attempt.saturating_add(1);
    }
}
