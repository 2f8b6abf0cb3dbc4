//! The [`Exchange`] trait: what execution, exit-brain, portfolio-intelligence and trading-bot
//! ask of an exchange.
//!
//! It is generic (async fns returning `impl Future + Send`), not object-safe: there is one real
//! implementation, [`crate::BinanceClient`], and it serves paper, testnet and mainnet alike
//! because the simulator speaks Binance's protocol. Static dispatch costs nothing per call, and a
//! service that wants a test double is generic over `E: Exchange`. Every method returns
//! [`ExchangeError`], whose [`class`](ExchangeError::class) tells rejected / unknown / retryable.

use std::future::Future;

use crate::error::ExchangeError;
use crate::filters::{ExchangeInfo, SymbolFilters};
use crate::types::*;

/// Result of an exchange call.
pub type ExResult<T> = Result<T, ExchangeError>;

/// See the module docs. Symbols are upper case (`BTCUSDT`); intervals are Binance's (`5m`).
pub trait Exchange: Send + Sync {
    /// The exchange's time now, estimated from the injected clock and the measured offset.
    fn server_now_ms(&self) -> i64;

    /// How long an order of `class` would wait for the order-rate budget if sent now, or
    /// `None` if it would go at once (each class may use only its share of a window; see
    /// [`crate::limiter`]), counting `in_flight` orders the caller may send meanwhile from
    /// other tasks ([`crate::limiter::RateLimiter::held_until_with`]). Takes nothing.
    fn orders_wait(
        &self,
        _class: crate::limiter::Orders,
        _in_flight: u32,
    ) -> Option<std::time::Duration> {
        None
    }

    /// Measures the offset between the injected clock and `GET /fapi/v1/time`; returns it (ms).
    fn sync_time(&self) -> impl Future<Output = ExResult<i64>> + Send;

    /// `GET /fapi/v1/time`.
    fn server_time(&self) -> impl Future<Output = ExResult<i64>> + Send;

    /// `GET /fapi/v1/exchangeInfo`; also refreshes the client's filter cache.
    fn exchange_info(&self) -> impl Future<Output = ExResult<ExchangeInfo>> + Send;

    /// The filters of one symbol, from the cache (loaded on first use).
    fn symbol_filters(&self, symbol: &str) -> impl Future<Output = ExResult<SymbolFilters>> + Send;

    /// `GET /fapi/v1/klines` (limit up to 1500).
    fn klines(
        &self,
        symbol: &str,
        interval: &str,
        start_time: Option<i64>,
        end_time: Option<i64>,
        limit: Option<u16>,
    ) -> impl Future<Output = ExResult<Vec<Kline>>> + Send;

    /// `GET /fapi/v1/ticker/24hr` for every symbol.
    fn tickers_24h(&self) -> impl Future<Output = ExResult<Vec<Ticker24h>>> + Send;

    /// `GET /fapi/v1/premiumIndex?symbol=`.
    fn mark_price(&self, symbol: &str) -> impl Future<Output = ExResult<MarkPrice>> + Send;

    /// `GET /fapi/v1/premiumIndex` for every symbol.
    fn mark_prices(&self) -> impl Future<Output = ExResult<Vec<MarkPrice>>> + Send;

    /// `POST /fapi/v1/order` after rounding to the filters and the min-notional check.
    fn new_order(&self, order: &NewOrder) -> impl Future<Output = ExResult<Order>> + Send;

    /// `GET /fapi/v1/order?origClientOrderId=`; a missing order is `-2013`.
    fn query_order(
        &self,
        symbol: &str,
        client_order_id: &str,
    ) -> impl Future<Output = ExResult<Order>> + Send;

    /// `DELETE /fapi/v1/order?origClientOrderId=`; an unknown order is `-2011`.
    fn cancel_order(
        &self,
        symbol: &str,
        client_order_id: &str,
    ) -> impl Future<Output = ExResult<Order>> + Send;

    /// `GET /fapi/v1/openOrders` (one symbol, or all at weight 40).
    fn open_orders(
        &self,
        symbol: Option<&str>,
    ) -> impl Future<Output = ExResult<Vec<Order>>> + Send;

    /// `DELETE /fapi/v1/allOpenOrders?symbol=`.
    fn cancel_all_orders(&self, symbol: &str) -> impl Future<Output = ExResult<()>> + Send;

    /// `POST /fapi/v1/algoOrder` (`algoType=CONDITIONAL`).
    fn new_algo_order(
        &self,
        order: &NewAlgoOrder,
    ) -> impl Future<Output = ExResult<AlgoOrder>> + Send;

    /// `GET /fapi/v1/algoOrder?clientAlgoId=`.
    fn query_algo_order(
        &self,
        client_algo_id: &str,
    ) -> impl Future<Output = ExResult<AlgoOrder>> + Send;

    /// `DELETE /fapi/v1/algoOrder?clientAlgoId=`.
    fn cancel_algo_order(&self, client_algo_id: &str) -> impl Future<Output = ExResult<()>> + Send;

    /// `GET /fapi/v1/openAlgoOrders`.
    fn open_algo_orders(
        &self,
        symbol: Option<&str>,
    ) -> impl Future<Output = ExResult<Vec<AlgoOrder>>> + Send;

    /// `DELETE /fapi/v1/algoOpenOrders?symbol=`.
    fn cancel_all_algo_orders(&self, symbol: &str) -> impl Future<Output = ExResult<()>> + Send;

    /// `GET /fapi/v3/positionRisk` (only symbols with a position or open orders).
    fn positions(
        &self,
        symbol: Option<&str>,
    ) -> impl Future<Output = ExResult<Vec<Position>>> + Send;

    /// `GET /fapi/v3/balance`.
    fn balances(&self) -> impl Future<Output = ExResult<Vec<Balance>>> + Send;

    /// `GET /fapi/v3/account`.
    fn account(&self) -> impl Future<Output = ExResult<Account>> + Send;

    /// `GET /fapi/v1/income` (weight 30): wallet changes (funding fees, realized PnL,
    /// commissions, …), oldest first.
    fn income(&self, query: &IncomeQuery) -> impl Future<Output = ExResult<Vec<Income>>> + Send;

    /// `POST /fapi/v1/leverage`.
    fn set_leverage(
        &self,
        symbol: &str,
        leverage: u32,
    ) -> impl Future<Output = ExResult<LeverageChange>> + Send;

    /// `POST /fapi/v1/marginType`; "no need to change" (-4046) counts as success.
    fn set_margin_type(
        &self,
        symbol: &str,
        margin_type: MarginType,
    ) -> impl Future<Output = ExResult<()>> + Send;

    /// `GET /fapi/v1/positionSide/dual` (weight 30): whether the account is in hedge mode
    /// (`dualSidePosition`: LONG and SHORT positions apart) rather than one-way mode.
    fn dual_side_position(&self) -> impl Future<Output = ExResult<bool>> + Send;

    /// `GET /fapi/v1/multiAssetsMargin` (weight 30): whether the account is in multi-assets
    /// margin mode rather than single-asset mode.
    fn multi_assets_margin(&self) -> impl Future<Output = ExResult<bool>> + Send;

    /// `POST /fapi/v1/positionSide/dual`: hedge mode (`true`) or one-way mode; refused with
    /// an open order or a position. Already in that mode (-4059) counts as success.
    fn set_dual_side_position(&self, dual: bool) -> impl Future<Output = ExResult<()>> + Send;

    /// `POST /fapi/v1/multiAssetsMargin`: multi-assets (`true`) or single-asset margin mode.
    fn set_multi_assets_margin(&self, on: bool) -> impl Future<Output = ExResult<()>> + Send;

    /// `POST /fapi/v1/listenKey`.
    fn create_listen_key(&self) -> impl Future<Output = ExResult<String>> + Send;

    /// `PUT /fapi/v1/listenKey`; `-1125` means the key is gone and must be re-created.
    fn keepalive_listen_key(&self) -> impl Future<Output = ExResult<()>> + Send;

    /// `DELETE /fapi/v1/listenKey`.
    fn close_listen_key(&self) -> impl Future<Output = ExResult<()>> + Send;
}
