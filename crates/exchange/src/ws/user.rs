//! The user data stream: order, account and algo updates, their decoding, and the connection
//! task that keeps its listenKey alive.

use super::{Frame, StreamHandle, deliver, payload, read_frame, wait_backoff};
use std::time::Duration;

use qt_events::{Decimal, Side};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{ExchangeConfig, WsConfig};
use crate::exchange::Exchange;
use crate::types::{OrderType, PositionSideWire, TimeInForce, lenient_dec, lenient_id};
use crate::vocab::{AlgoStatus, ApiCode, ExecutionType, OrderStatus};

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
