//! WebSocket streams: market data and the user data stream, as typed events on a tokio channel.
//!
//! Each connection is one task. It answers pings, and when the connection drops (or fails to
//! open) it reconnects with a doubling backoff and subscribes again to the same streams. It also
//! closes and reopens the connection on its own after [`WsConfig::max_connection_age_ms`], before
//! Binance's 24 h cut. Every (re)connection is announced with a `Connected` event, so a consumer
//! knows that updates may have been missed and can reconcile over REST.
//!
//! URLs (Binance's 2026 layout, base from [`ExchangeConfig::ws_url`]):
//! - market streams: `{ws}/market/stream?streams=btcusdt@kline_5m/btcusdt@markPrice@1s/…`
//!   (kline, markPrice, aggTrade) and `{ws}/public/stream?streams=btcusdt@bookTicker` —
//!   subscription is part of the URL, so a reconnect resubscribes by construction; messages may
//!   come wrapped as `{"stream":…,"data":…}` or bare.
//! - user data: `{ws}/private/ws?listenKey=<key>&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE`.
//!   The key is created over REST before each connection, kept alive every
//!   [`WsConfig::listen_key_keepalive_ms`], and re-created when the keepalive answers `-1125` or
//!   the stream says `listenKeyExpired`.
//!
//! A stream task never logs a listenKey or a URL that carries one.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use qt_events::{CandleClosed, Decimal, MarkPriceUpdated, Side};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use crate::config::{ExchangeConfig, WsConfig};
use crate::exchange::Exchange;
use crate::types::{OrderType, PositionSideWire, TimeInForce, lenient_dec, lenient_id};
use crate::vocab::{AlgoStatus, ApiCode, ExecutionType, OrderStatus};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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

/// The order inside `ORDER_TRADE_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderUpdate {
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "c", default)]
    pub client_order_id: String,
    #[serde(rename = "S")]
    pub side: Side,
    #[serde(rename = "o", default)]
    pub order_type: OrderType,
    #[serde(rename = "f", default)]
    pub time_in_force: TimeInForce,
    #[serde(rename = "q", default, deserialize_with = "lenient_dec")]
    pub orig_qty: Decimal,
    #[serde(rename = "p", default, deserialize_with = "lenient_dec")]
    pub price: Decimal,
    #[serde(rename = "ap", default, deserialize_with = "lenient_dec")]
    pub avg_price: Decimal,
    #[serde(rename = "sp", default, deserialize_with = "lenient_dec")]
    pub stop_price: Decimal,
    #[serde(rename = "x", default)]
    pub execution_type: ExecutionType,
    #[serde(rename = "X", default)]
    pub status: OrderStatus,
    #[serde(rename = "i", default)]
    pub order_id: i64,
    #[serde(rename = "l", default, deserialize_with = "lenient_dec")]
    pub last_filled_qty: Decimal,
    #[serde(rename = "z", default, deserialize_with = "lenient_dec")]
    pub cum_filled_qty: Decimal,
    #[serde(rename = "L", default, deserialize_with = "lenient_dec")]
    pub last_filled_price: Decimal,
    #[serde(rename = "N", default)]
    pub commission_asset: Option<String>,
    #[serde(rename = "n", default, deserialize_with = "lenient_dec")]
    pub commission: Decimal,
    #[serde(rename = "T", default)]
    pub trade_time: i64,
    #[serde(rename = "t", default)]
    pub trade_id: i64,
    #[serde(rename = "m", default)]
    pub is_maker: bool,
    #[serde(rename = "R", default)]
    pub reduce_only: bool,
    #[serde(rename = "ps", default)]
    pub position_side: PositionSideWire,
    #[serde(rename = "cp", default)]
    pub close_position: bool,
    #[serde(rename = "rp", default, deserialize_with = "lenient_dec")]
    pub realized_profit: Decimal,
}

/// `ORDER_TRADE_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderTradeUpdate {
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "T", default)]
    pub transaction_time: i64,
    #[serde(rename = "o")]
    pub order: OrderUpdate,
}

/// A balance inside `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BalanceUpdate {
    #[serde(rename = "a")]
    pub asset: String,
    #[serde(rename = "wb", default, deserialize_with = "lenient_dec")]
    pub wallet_balance: Decimal,
    #[serde(rename = "cw", default, deserialize_with = "lenient_dec")]
    pub cross_wallet_balance: Decimal,
    #[serde(rename = "bc", default, deserialize_with = "lenient_dec")]
    pub balance_change: Decimal,
}

/// A position inside `ACCOUNT_UPDATE` (only changed positions are sent).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PositionUpdate {
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "pa", default, deserialize_with = "lenient_dec")]
    pub position_amt: Decimal,
    #[serde(rename = "ep", default, deserialize_with = "lenient_dec")]
    pub entry_price: Decimal,
    #[serde(rename = "bep", default, deserialize_with = "lenient_dec")]
    pub break_even_price: Decimal,
    #[serde(rename = "cr", default, deserialize_with = "lenient_dec")]
    pub accumulated_realized: Decimal,
    #[serde(rename = "up", default, deserialize_with = "lenient_dec")]
    pub unrealized_pnl: Decimal,
    #[serde(rename = "mt", default)]
    pub margin_type: String,
    #[serde(rename = "ps", default)]
    pub position_side: PositionSideWire,
}

/// Why an `ACCOUNT_UPDATE` was sent (its field `m`), as Binance documents it for USDⓈ-M
/// futures. A reason this client does not know is kept as [`Unknown`](Self::Unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountUpdateReason {
    Deposit,
    Withdraw,
    /// A fill.
    Order,
    /// Funding paid or earned at a funding time. For a cross-margin position Binance sends
    /// only the balance (`B`, whose `bc` is the fee), no position: which symbol paid what is
    /// in `GET /fapi/v1/income?incomeType=FUNDING_FEE`.
    FundingFee,
    WithdrawReject,
    Adjustment,
    InsuranceClear,
    AdminDeposit,
    AdminWithdraw,
    MarginTransfer,
    MarginTypeChange,
    AssetTransfer,
    OptionsPremiumFee,
    OptionsSettleProfit,
    AutoExchange,
    CoinSwapDeposit,
    CoinSwapWithdraw,
    /// A reason this client does not know, as sent (empty when `m` was missing).
    Unknown(String),
}

impl AccountUpdateReason {
    /// The reason Binance calls `s`.
    pub fn parse(s: &str) -> Self {
        use AccountUpdateReason::*;
        match s {
            "DEPOSIT" => Deposit,
            "WITHDRAW" => Withdraw,
            "ORDER" => Order,
            "FUNDING_FEE" => FundingFee,
            "WITHDRAW_REJECT" => WithdrawReject,
            "ADJUSTMENT" => Adjustment,
            "INSURANCE_CLEAR" => InsuranceClear,
            "ADMIN_DEPOSIT" => AdminDeposit,
            "ADMIN_WITHDRAW" => AdminWithdraw,
            "MARGIN_TRANSFER" => MarginTransfer,
            "MARGIN_TYPE_CHANGE" => MarginTypeChange,
            "ASSET_TRANSFER" => AssetTransfer,
            "OPTIONS_PREMIUM_FEE" => OptionsPremiumFee,
            "OPTIONS_SETTLE_PROFIT" => OptionsSettleProfit,
            "AUTO_EXCHANGE" => AutoExchange,
            "COIN_SWAP_DEPOSIT" => CoinSwapDeposit,
            "COIN_SWAP_WITHDRAW" => CoinSwapWithdraw,
            other => Unknown(other.to_owned()),
        }
    }

    /// Binance's name of the reason.
    pub fn as_str(&self) -> &str {
        use AccountUpdateReason::*;
        match self {
            Deposit => "DEPOSIT",
            Withdraw => "WITHDRAW",
            Order => "ORDER",
            FundingFee => "FUNDING_FEE",
            WithdrawReject => "WITHDRAW_REJECT",
            Adjustment => "ADJUSTMENT",
            InsuranceClear => "INSURANCE_CLEAR",
            AdminDeposit => "ADMIN_DEPOSIT",
            AdminWithdraw => "ADMIN_WITHDRAW",
            MarginTransfer => "MARGIN_TRANSFER",
            MarginTypeChange => "MARGIN_TYPE_CHANGE",
            AssetTransfer => "ASSET_TRANSFER",
            OptionsPremiumFee => "OPTIONS_PREMIUM_FEE",
            OptionsSettleProfit => "OPTIONS_SETTLE_PROFIT",
            AutoExchange => "AUTO_EXCHANGE",
            CoinSwapDeposit => "COIN_SWAP_DEPOSIT",
            CoinSwapWithdraw => "COIN_SWAP_WITHDRAW",
            Unknown(s) => s,
        }
    }
}

impl Default for AccountUpdateReason {
    fn default() -> Self {
        AccountUpdateReason::Unknown(String::new())
    }
}

impl<'de> Deserialize<'de> for AccountUpdateReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AccountUpdateReason::parse(&String::deserialize(d)?))
    }
}

/// The body of `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountUpdateData {
    /// Why it was sent.
    #[serde(rename = "m", default)]
    pub reason: AccountUpdateReason,
    #[serde(rename = "B", default)]
    pub balances: Vec<BalanceUpdate>,
    #[serde(rename = "P", default)]
    pub positions: Vec<PositionUpdate>,
}

/// `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountUpdate {
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "T", default)]
    pub transaction_time: i64,
    #[serde(rename = "a")]
    pub data: AccountUpdateData,
}

/// The conditional order inside `ALGO_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlgoOrderUpdate {
    #[serde(rename = "caid", default)]
    pub client_algo_id: String,
    #[serde(rename = "aid", default)]
    pub algo_id: i64,
    #[serde(rename = "o", default)]
    pub order_type: OrderType,
    #[serde(rename = "s")]
    pub symbol: String,
    #[serde(rename = "S")]
    pub side: Side,
    #[serde(rename = "ps", default)]
    pub position_side: PositionSideWire,
    #[serde(rename = "q", default, deserialize_with = "lenient_dec")]
    pub quantity: Decimal,
    #[serde(rename = "X", default)]
    pub status: AlgoStatus,
    /// The matching-engine order id once triggered.
    #[serde(rename = "ai", default, deserialize_with = "lenient_id")]
    pub actual_order_id: Option<String>,
    #[serde(rename = "ap", default, deserialize_with = "lenient_dec")]
    pub avg_price: Decimal,
    #[serde(rename = "aq", default, deserialize_with = "lenient_dec")]
    pub executed_qty: Decimal,
    #[serde(rename = "tp", default, deserialize_with = "lenient_dec")]
    pub trigger_price: Decimal,
    #[serde(rename = "p", default, deserialize_with = "lenient_dec")]
    pub price: Decimal,
    #[serde(rename = "cp", default)]
    pub close_position: bool,
    #[serde(rename = "R", default)]
    pub reduce_only: bool,
    /// Reject reason, when rejected.
    #[serde(rename = "rm", default)]
    pub reject_reason: String,
}

/// `ALGO_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlgoUpdate {
    #[serde(rename = "E", default)]
    pub event_time: i64,
    #[serde(rename = "T", default)]
    pub transaction_time: i64,
    #[serde(rename = "o")]
    pub order: AlgoOrderUpdate,
}

/// What the user data stream task yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// A (re)connection was opened: updates may have been missed, reconcile over REST.
    Connected,
    OrderTradeUpdate(OrderTradeUpdate),
    AccountUpdate(AccountUpdate),
    AlgoUpdate(AlgoUpdate),
    /// The listenKey expired; the task creates a new one and reconnects.
    ListenKeyExpired {
        event_time: i64,
    },
    /// An event type this client does not decode (TRADE_LITE, MARGIN_CALL, …).
    Other {
        event_type: String,
    },
}

/// Stops the stream tasks when dropped or shut down.
#[derive(Debug)]
pub struct StreamHandle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl StreamHandle {
    /// Cancels the tasks and waits for them to close their connections.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Hands `ev` to the receiver; false when the receiver is gone or the stream is cancelled
/// (a full channel whose reader has stopped must not hold a shutdown forever).
async fn deliver<T>(tx: &mpsc::Sender<T>, ev: T, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        r = tx.send(ev) => r.is_ok(),
    }
}

/// Unwraps `{"stream":…,"data":…}` if present.
fn payload(text: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    match v {
        serde_json::Value::Object(mut m) if m.contains_key("data") && m.contains_key("stream") => {
            m.remove("data")
        }
        other => Some(other),
    }
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

/// Decodes one user data stream message.
pub fn parse_user_message(text: &str) -> Option<UserEvent> {
    let v = payload(text)?;
    let kind = v.get("e")?.as_str()?.to_string();
    let decoded = match kind.as_str() {
        "ORDER_TRADE_UPDATE" => serde_json::from_value(v).map(UserEvent::OrderTradeUpdate),
        "ACCOUNT_UPDATE" => serde_json::from_value(v).map(UserEvent::AccountUpdate),
        "ALGO_UPDATE" => serde_json::from_value(v).map(UserEvent::AlgoUpdate),
        "listenKeyExpired" => Ok(UserEvent::ListenKeyExpired {
            event_time: v.get("E").and_then(|e| e.as_i64()).unwrap_or(0),
        }),
        _ => Ok(UserEvent::Other {
            event_type: kind.clone(),
        }),
    };
    match decoded {
        Ok(ev) => Some(ev),
        Err(e) => {
            tracing::warn!(event_type = %kind, error = %e, "undecodable user data event dropped");
            None
        }
    }
}

enum Frame {
    Text(String),
    Closed(String),
}

/// Reads the next text frame, answering pings on the way.
async fn read_frame(ws: &mut Ws) -> Frame {
    loop {
        match ws.next().await {
            None => return Frame::Closed("stream ended".into()),
            Some(Err(e)) => return Frame::Closed(e.to_string()),
            Some(Ok(Message::Text(t))) => return Frame::Text(t.as_str().to_owned()),
            Some(Ok(Message::Binary(b))) => {
                if let Ok(s) = std::str::from_utf8(&b) {
                    return Frame::Text(s.to_owned());
                }
            }
            Some(Ok(Message::Ping(_))) => {
                // tungstenite has queued the pong (same payload); flushing sends it now.
                if let Err(e) = ws.flush().await {
                    return Frame::Closed(format!("sending pong: {e}"));
                }
            }
            Some(Ok(Message::Close(f))) => {
                return Frame::Closed(format!(
                    "closed by server ({})",
                    f.map(|f| f.code.to_string()).unwrap_or_default()
                ));
            }
            Some(Ok(_)) => {}
        }
    }
}

fn backoff(cfg: &WsConfig, attempt: u32) -> Duration {
    let ms = cfg
        .reconnect_backoff_min_ms
        .saturating_mul(1u64 << attempt.min(16))
        .min(cfg.reconnect_backoff_max_ms);
    Duration::from_millis(ms)
}

/// Sleeps the backoff unless cancelled; false when cancelled.
async fn wait_backoff(cfg: &WsConfig, attempt: u32, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(backoff(cfg, attempt)) => true,
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

/// Runs the user data stream of `exchange`'s account: creates a listenKey, connects, keeps the
/// key alive, re-creates it when it expires, and reconnects with backoff.
pub fn spawn_user_stream<E: Exchange + Clone + 'static>(
    exchange: E,
    config: &ExchangeConfig,
    buffer: usize,
) -> (mpsc::Receiver<UserEvent>, StreamHandle) {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(user_task(
        exchange,
        config.ws_url.clone(),
        config.ws.clone(),
        tx,
        cancel.clone(),
    ));
    (
        rx,
        StreamHandle {
            cancel,
            tasks: vec![task],
        },
    )
}

/// The events the user stream subscribes to.
pub const USER_EVENTS: &str = "ORDER_TRADE_UPDATE/ACCOUNT_UPDATE/ALGO_UPDATE";

async fn user_task<E: Exchange>(
    exchange: E,
    ws_url: String,
    cfg: WsConfig,
    tx: mpsc::Sender<UserEvent>,
    cancel: CancellationToken,
) {
    let mut attempt = 0u32;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let key = tokio::select! {
            _ = cancel.cancelled() => return,
            k = exchange.create_listen_key() => k,
        };
        let key = match key {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "listenKey creation failed");
                if !wait_backoff(&cfg, attempt, &cancel).await {
                    return;
                }
                attempt = attempt.saturating_add(1);
                continue;
            }
        };
        let url = format!("{ws_url}/private/ws?listenKey={key}&events={USER_EVENTS}");
        let mut planned = false;
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((mut ws, _)) => {
                attempt = 0;
                tracing::info!("user data stream connected");
                if !deliver(&tx, UserEvent::Connected, &cancel).await {
                    return;
                }
                let age = tokio::time::sleep(Duration::from_millis(cfg.max_connection_age_ms));
                tokio::pin!(age);
                let period = Duration::from_millis(cfg.listen_key_keepalive_ms.max(1));
                let mut keepalive =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            let _ = ws.close(None).await;
                            let _ = exchange.close_listen_key().await;
                            return;
                        }
                        _ = &mut age => {
                            tracing::info!("user stream reaching its maximum age: reconnecting");
                            let _ = ws.close(None).await;
                            planned = true;
                            break;
                        }
                        _ = keepalive.tick() => match exchange.keepalive_listen_key().await {
                            Ok(()) => tracing::debug!("listenKey kept alive"),
                            Err(e) if e.api_code() == Some(ApiCode::InvalidListenKey) => {
                                tracing::warn!("listenKey no longer exists (-1125): re-creating it");
                                let _ = ws.close(None).await;
                                planned = true;
                                break;
                            }
                            Err(e) => tracing::warn!(error = %e, "listenKey keepalive failed"),
                        },
                        frame = read_frame(&mut ws) => match frame {
                            Frame::Text(t) => match parse_user_message(&t) {
                                Some(ev @ UserEvent::ListenKeyExpired { .. }) => {
                                    tracing::warn!("listenKey expired: re-creating it");
                                    let _ = ws.close(None).await;
                                    if !deliver(&tx, ev, &cancel).await {
                                        return;
                                    }
                                    planned = true;
                                    break;
                                }
                                Some(ev) => {
                                    let delivered = deliver(&tx, ev, &cancel).await;
                                    if !delivered {
                                        let _ = ws.close(None).await;
                                        return;
                                    }
                                }
                                None => {}
                            },
                            Frame::Closed(reason) => {
                                tracing::warn!(%reason, "user data stream lost: reconnecting");
                                break;
                            }
                        },
                    }
                }
            }
            Err(e) => {
                // The error text of a failed handshake never contains the URL.
                tracing::warn!(error = %e, attempt, "user data stream connect failed");
            }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn documented_market_messages_decode_bare_and_wrapped() {
        let k = r#"{"e":"kline","E":1638747660000,"s":"BTCUSDT","k":{"t":1638747660000,"T":1638747719999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":true,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}"#;
        let wrapped = format!(r#"{{"stream":"btcusdt@kline_1m","data":{k}}}"#);
        for text in [k, wrapped.as_str()] {
            let Some(MarketEvent::Kline(ev)) = parse_market_message(text) else {
                panic!("not a kline: {text}")
            };
            let c = ev.to_candle_closed().unwrap();
            assert_eq!(c.close, dec!(0.0020));
            assert_eq!(c.interval, "1m");
            assert_eq!(c.trades, 100);
        }
        let m = parse_market_message(
            r#"{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","ap":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}"#,
        );
        assert!(matches!(m, Some(MarketEvent::MarkPrice(ref e)) if e.mark_price == dec!(11794.15)));
        let a = parse_market_message(
            r#"{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":true}"#,
        );
        assert!(
            matches!(a, Some(MarketEvent::AggTrade(ref e)) if e.qty == dec!(100) && e.buyer_is_maker)
        );
        let b = parse_market_message(
            r#"{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        );
        assert!(matches!(b, Some(MarketEvent::BookTicker(ref e)) if e.ask_price == dec!(25.3652)));
        assert_eq!(parse_market_message(r#"{"result":null,"id":1}"#), None);
    }

    #[test]
    fn documented_user_events_decode() {
        let o = parse_user_message(
            r#"{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":"TEST","S":"SELL","o":"TRAILING_STOP_MARKET","f":"GTC","q":"0.001","p":"0","ap":"0","sp":"7103.04","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":1568879465650,"t":0,"b":"0","a":"9.91","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"TRAILING_STOP_MARKET","ps":"LONG","cp":false,"AP":"7476.89","cr":"5.0","pP":false,"si":0,"ss":0,"rp":"0","V":"EXPIRE_TAKER","pm":"OPPONENT","gtd":0,"er":"0"}}"#,
        );
        let Some(UserEvent::OrderTradeUpdate(u)) = o else {
            panic!("{o:?}")
        };
        assert_eq!(u.order.client_order_id, "TEST");
        assert_eq!(u.order.stop_price, dec!(7103.04));
        assert_eq!(u.order.position_side, PositionSideWire::Long);
        let a = parse_user_message(
            r#"{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],"P":[{"s":"BTCUSDT","pa":"0","ep":"0.00000","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0.00000000","ps":"BOTH"}]}}"#,
        );
        let Some(UserEvent::AccountUpdate(a)) = a else {
            panic!("{a:?}")
        };
        assert_eq!(a.data.balances[0].wallet_balance, dec!(122624.12345678));
        assert_eq!(a.data.positions[0].accumulated_realized, dec!(200));
        assert_eq!(a.data.reason, AccountUpdateReason::Order);
        // Funding on a cross position: the balance only, its `bc` the fee.
        let f = parse_user_message(
            r#"{"e":"ACCOUNT_UPDATE","E":1681804800008,"T":1681804800001,"a":{"m":"FUNDING_FEE","B":[{"a":"USDT","wb":"9999.975","cw":"9999.975","bc":"-0.025"}],"P":[]}}"#,
        );
        let Some(UserEvent::AccountUpdate(f)) = f else {
            panic!("{f:?}")
        };
        assert_eq!(f.data.reason, AccountUpdateReason::FundingFee);
        assert_eq!(f.data.balances[0].balance_change, dec!(-0.025));
        assert!(f.data.positions.is_empty());
        let u = parse_user_message(
            r#"{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"SOMETHING_NEW","B":[]}}"#,
        );
        let Some(UserEvent::AccountUpdate(u)) = u else {
            panic!("{u:?}")
        };
        assert_eq!(
            u.data.reason,
            AccountUpdateReason::Unknown("SOMETHING_NEW".into())
        );
        assert_eq!(u.data.reason.as_str(), "SOMETHING_NEW");
        let none = parse_user_message(r#"{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{}}"#);
        let Some(UserEvent::AccountUpdate(none)) = none else {
            panic!("{none:?}")
        };
        assert_eq!(none.data.reason, AccountUpdateReason::default());
        let g = parse_user_message(
            r#"{"e":"ALGO_UPDATE","T":1,"E":2,"o":{"caid":"qt-abc","aid":2148719,"at":"CONDITIONAL","o":"TAKE_PROFIT","s":"BNBUSDT","S":"SELL","ps":"BOTH","f":"GTC","q":"0.01","X":"CANCELED","ai":"","ap":"0.00000","aq":"0.00000","act":"0","tp":"750","p":"750","V":"EXPIRE_MAKER","wt":"CONTRACT_PRICE","pm":"NONE","cp":false,"pP":false,"R":false,"tt":0,"gtd":0,"rm":"Reduce Only reject"}}"#,
        );
        let Some(UserEvent::AlgoUpdate(g)) = g else {
            panic!("{g:?}")
        };
        assert_eq!(g.order.client_algo_id, "qt-abc");
        assert_eq!(g.order.status, AlgoStatus::Canceled);
        assert_eq!(g.order.actual_order_id, None);
        assert_eq!(
            parse_user_message(r#"{"e":"listenKeyExpired","E":7}"#),
            Some(UserEvent::ListenKeyExpired { event_time: 7 })
        );
        assert_eq!(
            parse_user_message(r#"{"e":"MARGIN_CALL","E":7}"#),
            Some(UserEvent::Other {
                event_type: "MARGIN_CALL".into()
            })
        );
    }

    #[test]
    fn streams_are_named_like_binance_and_routed_to_their_path() {
        let k = MarketStream::Kline {
            symbol: "BTCUSDT".into(),
            interval: "5m".into(),
        };
        assert_eq!(k.name(), "btcusdt@kline_5m");
        assert_eq!(k.path(), "market");
        let m = MarketStream::MarkPrice {
            symbol: "ETHUSDT".into(),
            every_second: true,
        };
        assert_eq!(m.name(), "ethusdt@markPrice@1s");
        let b = MarketStream::BookTicker {
            symbol: "ETHUSDT".into(),
        };
        assert_eq!(
            (b.name().as_str(), b.path()),
            ("ethusdt@bookTicker", "public")
        );
    }
}
