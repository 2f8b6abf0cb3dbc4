//! Typed requests and answers of the REST API. Binance sends numbers as strings; they are parsed
//! into `Decimal` here. Times are `i64` ms since the epoch. Fields that Binance may leave out, or
//! that a simulator need not send, default to zero/empty so the client reads either.

use qt_events::{Decimal, Side, WorkingType};
use serde::{Deserialize, Deserializer};

pub use crate::vocab::{AlgoStatus, OrderStatus};

/// Binance's `positionSide` (BOTH in one-way mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PositionSideWire {
    #[default]
    Both,
    Long,
    Short,
}

impl PositionSideWire {
    pub fn as_str(self) -> &'static str {
        match self {
            PositionSideWire::Both => "BOTH",
            PositionSideWire::Long => "LONG",
            PositionSideWire::Short => "SHORT",
        }
    }
}

/// Order type on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderType {
    #[default]
    Market,
    Limit,
    Stop,
    StopMarket,
    TakeProfit,
    TakeProfitMarket,
    TrailingStopMarket,
    Liquidation,
    #[serde(other)]
    Other,
}

/// Time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum TimeInForce {
    #[default]
    #[serde(rename = "GTC")]
    Gtc,
    #[serde(rename = "IOC")]
    Ioc,
    #[serde(rename = "FOK")]
    Fok,
    /// Post-only.
    #[serde(rename = "GTX")]
    Gtx,
    #[serde(rename = "GTD")]
    Gtd,
    #[serde(other)]
    Other,
}

impl TimeInForce {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc | TimeInForce::Other => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
            TimeInForce::Gtx => "GTX",
            TimeInForce::Gtd => "GTD",
        }
    }
}

pub(crate) fn side_str(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

pub(crate) fn working_type_str(w: WorkingType) -> &'static str {
    match w {
        WorkingType::MarkPrice => "MARK_PRICE",
        WorkingType::ContractPrice => "CONTRACT_PRICE",
    }
}

/// Accepts `123`, `"123"`, `""` and `null` as an optional integer-like id, kept as a string.
pub(crate) fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Accepts a decimal as a string or a number, and `""`/`null` as zero.
pub(crate) fn lenient_dec<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(Decimal::ZERO),
        Some(serde_json::Value::String(s)) => s
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&s))
            .map_err(serde::de::Error::custom),
        Some(serde_json::Value::Number(n)) => {
            let s = n.to_string();
            s.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&s))
                .map_err(serde::de::Error::custom)
        }
        None | Some(serde_json::Value::Null) => Ok(Decimal::ZERO),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a decimal, got {other}"
        ))),
    }
}

/// `GET /fapi/v1/time`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    pub server_time: i64,
}

/// One kline row of `GET /fapi/v1/klines`, identified by its open time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kline {
    pub open_time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub close_time: i64,
    pub quote_volume: Decimal,
    pub trades: u64,
    pub taker_buy_base: Decimal,
    pub taker_buy_quote: Decimal,
}

impl<'de> Deserialize<'de> for Kline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let row = Vec::<serde_json::Value>::deserialize(d)?;
        let num = |i: usize| -> Result<i64, D::Error> {
            row.get(i)
                .and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("kline field {i} is not an integer"))
                })
        };
        let dec = |i: usize| -> Result<Decimal, D::Error> {
            match row.get(i) {
                Some(v) => lenient_dec(v.clone()).map_err(serde::de::Error::custom),
                None => Ok(Decimal::ZERO),
            }
        };
        Ok(Kline {
            open_time: num(0)?,
            open: dec(1)?,
            high: dec(2)?,
            low: dec(3)?,
            close: dec(4)?,
            volume: dec(5)?,
            close_time: num(6)?,
            quote_volume: dec(7)?,
            trades: u64::try_from(num(8).unwrap_or(0)).unwrap_or(0),
            taker_buy_base: dec(9)?,
            taker_buy_quote: dec(10)?,
        })
    }
}

/// `GET /fapi/v1/ticker/24hr`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker24h {
    pub symbol: String,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub price_change: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub price_change_percent: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub last_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub open_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub high_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub low_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub volume: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub quote_volume: Decimal,
    #[serde(default)]
    pub open_time: i64,
    #[serde(default)]
    pub close_time: i64,
    #[serde(default)]
    pub count: u64,
}

/// `GET /fapi/v1/premiumIndex` (mark price and funding).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkPrice {
    pub symbol: String,
    #[serde(deserialize_with = "lenient_dec")]
    pub mark_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub index_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub last_funding_rate: Decimal,
    #[serde(default)]
    pub next_funding_time: i64,
    #[serde(default)]
    pub time: i64,
}

/// Plain order types that go through `/fapi/v1/order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainOrderType {
    Market,
    /// A limit order; `time_in_force` defaults to GTC.
    Limit,
}

/// A new order on `POST /fapi/v1/order`. Quantity and price are rounded to the symbol's filters
/// before sending; the client order id is the caller's (derived from the intent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub symbol: String,
    pub side: Side,
    pub order_type: PlainOrderType,
    pub quantity: Decimal,
    /// Limit price (required for `Limit`).
    pub price: Option<Decimal>,
    pub time_in_force: Option<TimeInForce>,
    pub reduce_only: bool,
    pub position_side: Option<PositionSideWire>,
    /// `newClientOrderId`, validated with `is_valid_client_order_id`.
    pub client_order_id: String,
    /// Price used for the min-notional check of a market order; when `None` the client fetches
    /// the mark price (one extra request of weight 1).
    pub reference_price: Option<Decimal>,
}

impl NewOrder {
    /// A market order.
    pub fn market(
        symbol: impl Into<String>,
        side: Side,
        quantity: Decimal,
        client_order_id: impl Into<String>,
    ) -> Self {
        Self {
            symbol: symbol.into(),
            side,
            order_type: PlainOrderType::Market,
            quantity,
            price: None,
            time_in_force: None,
            reduce_only: false,
            position_side: None,
            client_order_id: client_order_id.into(),
            reference_price: None,
        }
    }

    /// A GTC limit order.
    pub fn limit(
        symbol: impl Into<String>,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        client_order_id: impl Into<String>,
    ) -> Self {
        Self {
            order_type: PlainOrderType::Limit,
            price: Some(price),
            time_in_force: Some(TimeInForce::Gtc),
            ..Self::market(symbol, side, quantity, client_order_id)
        }
    }

    pub fn reduce_only(mut self, yes: bool) -> Self {
        self.reduce_only = yes;
        self
    }

    pub fn with_reference_price(mut self, price: Decimal) -> Self {
        self.reference_price = Some(price);
        self
    }
}

/// An order as Binance reports it (`/fapi/v1/order`, `/openOrders`, cancel answers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: i64,
    pub symbol: String,
    #[serde(default)]
    pub client_order_id: String,
    #[serde(default)]
    pub status: OrderStatus,
    pub side: Side,
    #[serde(rename = "type", default)]
    pub order_type: OrderType,
    #[serde(default)]
    pub orig_type: Option<OrderType>,
    #[serde(default)]
    pub position_side: PositionSideWire,
    #[serde(default)]
    pub time_in_force: TimeInForce,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub orig_qty: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub executed_qty: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub cum_quote: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub avg_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub stop_price: Decimal,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub close_position: bool,
    /// Creation time (query answers only).
    #[serde(default)]
    pub time: i64,
    #[serde(default)]
    pub update_time: i64,
}

/// Conditional order types of the Algo Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgoOrderType {
    StopMarket,
    TakeProfitMarket,
    TrailingStopMarket,
}

impl AlgoOrderType {
    pub fn as_str(self) -> &'static str {
        match self {
            AlgoOrderType::StopMarket => "STOP_MARKET",
            AlgoOrderType::TakeProfitMarket => "TAKE_PROFIT_MARKET",
            AlgoOrderType::TrailingStopMarket => "TRAILING_STOP_MARKET",
        }
    }
}

/// A conditional order on `POST /fapi/v1/algoOrder` (`algoType=CONDITIONAL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlgoOrder {
    pub symbol: String,
    pub side: Side,
    pub order_type: AlgoOrderType,
    /// `triggerPrice` (STOP_MARKET, TAKE_PROFIT_MARKET), rounded to the tick.
    pub trigger_price: Option<Decimal>,
    /// Quantity; must be `None` with `close_position`.
    pub quantity: Option<Decimal>,
    /// Close the whole position when triggered (`closePosition=true`).
    pub close_position: bool,
    /// `reduceOnly=true` (not with `close_position`).
    pub reduce_only: bool,
    pub working_type: WorkingType,
    /// `priceProtect=TRUE`.
    pub price_protect: bool,
    /// Trailing stop: `activatePrice` (optional) and `callbackRate` (0.1–10 %).
    pub activate_price: Option<Decimal>,
    pub callback_rate: Option<Decimal>,
    pub position_side: Option<PositionSideWire>,
    /// `clientAlgoId`, validated like a client order id.
    pub client_algo_id: String,
}

impl NewAlgoOrder {
    /// The recommended protective stop: STOP_MARKET, closePosition, MARK_PRICE, priceProtect.
    pub fn stop_close_position(
        symbol: impl Into<String>,
        side: Side,
        trigger_price: Decimal,
        client_algo_id: impl Into<String>,
    ) -> Self {
        Self {
            symbol: symbol.into(),
            side,
            order_type: AlgoOrderType::StopMarket,
            trigger_price: Some(trigger_price),
            quantity: None,
            close_position: true,
            reduce_only: false,
            working_type: WorkingType::MarkPrice,
            price_protect: true,
            activate_price: None,
            callback_rate: None,
            position_side: None,
            client_algo_id: client_algo_id.into(),
        }
    }
}

/// A conditional order as the Algo Service reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlgoOrder {
    pub algo_id: i64,
    #[serde(default)]
    pub client_algo_id: String,
    #[serde(default)]
    pub algo_type: String,
    #[serde(default)]
    pub order_type: OrderType,
    pub symbol: String,
    pub side: Side,
    #[serde(default)]
    pub position_side: PositionSideWire,
    #[serde(default)]
    pub algo_status: AlgoStatus,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub quantity: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub trigger_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub price: Decimal,
    #[serde(default)]
    pub close_position: bool,
    #[serde(default)]
    pub reduce_only: bool,
    #[serde(default)]
    pub price_protect: bool,
    #[serde(default)]
    pub working_type: Option<WorkingType>,
    /// Matching-engine order id once triggered.
    #[serde(default, alias = "actualOrderId", deserialize_with = "lenient_id")]
    pub actual_order_id: Option<String>,
    #[serde(default)]
    pub create_time: i64,
    #[serde(default)]
    pub update_time: i64,
    #[serde(default)]
    pub trigger_time: i64,
}

/// A position from `GET /fapi/v3/positionRisk`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub symbol: String,
    #[serde(default)]
    pub position_side: PositionSideWire,
    /// Signed: positive long, negative short.
    #[serde(deserialize_with = "lenient_dec")]
    pub position_amt: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub entry_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub break_even_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub mark_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub un_realized_profit: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub liquidation_price: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub notional: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub isolated_margin: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub initial_margin: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub maint_margin: Decimal,
    #[serde(default)]
    pub update_time: i64,
}

/// One asset of `GET /fapi/v3/balance`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub asset: String,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub cross_wallet_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub cross_un_pnl: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub available_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub max_withdraw_amount: Decimal,
    #[serde(default)]
    pub update_time: i64,
}

/// One asset of the account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAsset {
    pub asset: String,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub wallet_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub unrealized_profit: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub margin_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub available_balance: Decimal,
}

/// One position of the account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountPosition {
    pub symbol: String,
    #[serde(default)]
    pub position_side: PositionSideWire,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub position_amt: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub unrealized_profit: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub notional: Decimal,
    #[serde(default)]
    pub update_time: i64,
}

/// `GET /fapi/v3/account`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(default, deserialize_with = "lenient_dec")]
    pub total_wallet_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub total_unrealized_profit: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub total_margin_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub total_initial_margin: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub total_maint_margin: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub available_balance: Decimal,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub max_withdraw_amount: Decimal,
    #[serde(default)]
    pub assets: Vec<AccountAsset>,
    #[serde(default)]
    pub positions: Vec<AccountPosition>,
}

/// `POST /fapi/v1/leverage`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageChange {
    pub symbol: String,
    pub leverage: u32,
    #[serde(default, deserialize_with = "lenient_dec")]
    pub max_notional_value: Decimal,
}

/// Margin type of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarginType {
    Isolated,
    Crossed,
}

impl MarginType {
    pub fn as_str(self) -> &'static str {
        match self {
            MarginType::Isolated => "ISOLATED",
            MarginType::Crossed => "CROSSED",
        }
    }
}

/// `incomeType` of `GET /fapi/v1/income`: the kinds of wallet change Binance records. The
/// ones this system reads are named; every other one is kept as [`IncomeType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IncomeType {
    /// Funding paid or earned at a funding time.
    FundingFee,
    /// Realized PnL of a fill.
    RealizedPnl,
    /// A fill's fee.
    Commission,
    Transfer,
    InsuranceClear,
    /// Any other type, as Binance spelled it.
    Other(String),
}

impl IncomeType {
    /// Binance's name (`FUNDING_FEE`, …).
    pub fn as_str(&self) -> &str {
        match self {
            IncomeType::FundingFee => "FUNDING_FEE",
            IncomeType::RealizedPnl => "REALIZED_PNL",
            IncomeType::Commission => "COMMISSION",
            IncomeType::Transfer => "TRANSFER",
            IncomeType::InsuranceClear => "INSURANCE_CLEAR",
            IncomeType::Other(s) => s,
        }
    }

    /// The type Binance calls `s`.
    pub fn parse(s: &str) -> Self {
        match s {
            "FUNDING_FEE" => IncomeType::FundingFee,
            "REALIZED_PNL" => IncomeType::RealizedPnl,
            "COMMISSION" => IncomeType::Commission,
            "TRANSFER" => IncomeType::Transfer,
            "INSURANCE_CLEAR" => IncomeType::InsuranceClear,
            other => IncomeType::Other(other.to_owned()),
        }
    }
}

impl<'de> Deserialize<'de> for IncomeType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(IncomeType::parse(&String::deserialize(d)?))
    }
}

/// One entry of `GET /fapi/v1/income`: a change of the wallet (positive in, negative out).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Income {
    /// Empty for changes that concern no symbol (transfers).
    #[serde(default)]
    pub symbol: String,
    pub income_type: IncomeType,
    #[serde(deserialize_with = "lenient_dec")]
    pub income: Decimal,
    #[serde(default)]
    pub asset: String,
    #[serde(default)]
    pub info: String,
    pub time: i64,
    /// Unique per account and income type ("tranId").
    #[serde(default, deserialize_with = "lenient_id")]
    pub tran_id: Option<String>,
    /// The trade that caused it, when one did.
    #[serde(default, deserialize_with = "lenient_id")]
    pub trade_id: Option<String>,
}

/// What to ask `GET /fapi/v1/income` for. Binance answers the last 7 days when neither time
/// is given, and keeps 3 months.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncomeQuery {
    pub symbol: Option<String>,
    pub income_type: Option<IncomeType>,
    /// Inclusive, ms.
    pub start_time: Option<i64>,
    /// Inclusive, ms.
    pub end_time: Option<i64>,
    /// 1 to 1000 (Binance's default 100).
    pub limit: Option<u16>,
}

/// `{"code":…,"msg":…}` answers (errors, and success of some endpoints).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CodeMsg {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub msg: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListenKeyAnswer {
    pub listen_key: String,
}

/// `GET /fapi/v1/positionSide/dual`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PositionModeAnswer {
    pub dual_side_position: bool,
}

/// `GET /fapi/v1/multiAssetsMargin`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MultiAssetsAnswer {
    pub multi_assets_margin: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn documented_order_answer_parses_with_decimals() {
        let o: Order = serde_json::from_str(r#"{"clientOrderId":"testOrder","cumQty":"0","cumQuote":"0","executedQty":"0","orderId":22542179,"avgPrice":"0.00000","origQty":"10","price":"0","reduceOnly":false,"side":"BUY","positionSide":"SHORT","status":"NEW","stopPrice":"9300","closePosition":false,"symbol":"BTCUSDT","timeInForce":"GTD","type":"TRAILING_STOP_MARKET","origType":"TRAILING_STOP_MARKET","updateTime":1566818724722,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":1693207680000}"#).unwrap();
        assert_eq!(o.order_id, 22542179);
        assert_eq!(o.orig_qty, dec!(10));
        assert_eq!(o.stop_price, dec!(9300));
        assert_eq!(o.order_type, OrderType::TrailingStopMarket);
        assert_eq!(o.position_side, PositionSideWire::Short);
        assert_eq!(o.time_in_force, TimeInForce::Gtd);
    }

    #[test]
    fn documented_position_algo_and_kline_answers_parse() {
        let p: Vec<Position> = serde_json::from_str(r#"[{"symbol":"ADAUSDT","positionSide":"BOTH","positionAmt":"30","entryPrice":"0.385","breakEvenPrice":"0.385077","markPrice":"0.41047590","unRealizedProfit":"0.76427700","liquidationPrice":"0","isolatedMargin":"0","notional":"12.31427700","marginAsset":"USDT","isolatedWallet":"0","initialMargin":"0.61571385","maintMargin":"0.08004280","positionInitialMargin":"0.61571385","openOrderInitialMargin":"0","adl":2,"bidNotional":"0","askNotional":"0","updateTime":1720736417660}]"#).unwrap();
        assert_eq!(p[0].position_amt, dec!(30));
        assert_eq!(p[0].un_realized_profit, dec!(0.76427700));
        let a: AlgoOrder = serde_json::from_str(r#"{"algoId":2146760,"clientAlgoId":"6B2I9XVcJpCjqPAJ4YoFX7","algoType":"CONDITIONAL","orderType":"TAKE_PROFIT","symbol":"BNBUSDT","side":"SELL","positionSide":"BOTH","timeInForce":"GTC","quantity":"0.01","algoStatus":"NEW","triggerPrice":"750.000","price":"750.000","closePosition":false,"priceProtect":false,"reduceOnly":false,"createTime":1,"updateTime":2,"triggerTime":0,"goodTillDate":0}"#).unwrap();
        assert_eq!(a.trigger_price, dec!(750));
        assert_eq!(a.order_type, OrderType::TakeProfit);
        let k: Vec<Kline> = serde_json::from_str(r#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","17928899.62484339"]]"#).unwrap();
        assert_eq!(k[0].trades, 308);
        assert_eq!(k[0].close, dec!(0.01577100));
    }

    #[test]
    fn documented_income_answer_parses_and_unknown_types_are_kept() {
        let i: Vec<Income> = serde_json::from_str(r#"[{"symbol":"","incomeType":"TRANSFER","income":"-0.37500000","asset":"USDT","info":"TRANSFER","time":1570608000000,"tranId":9689322392,"tradeId":""},{"symbol":"BTCUSDT","incomeType":"COMMISSION","income":"-0.01000000","asset":"USDT","info":"COMMISSION","time":1570636800000,"tranId":9689322392,"tradeId":"2059192"},{"symbol":"BTCUSDT","incomeType":"FUNDING_FEE","income":"0.00012500","asset":"USDT","time":1570636800001,"tranId":"77"},{"symbol":"ETHUSDT","incomeType":"BFUSD_REWARD","income":"1","time":3}]"#).unwrap();
        assert_eq!(i[0].income, dec!(-0.375));
        assert_eq!(i[0].trade_id, None);
        assert_eq!(i[1].income_type, IncomeType::Commission);
        assert_eq!(i[1].tran_id.as_deref(), Some("9689322392"));
        assert_eq!(i[1].trade_id.as_deref(), Some("2059192"));
        assert_eq!(i[2].income_type, IncomeType::FundingFee);
        assert_eq!(i[2].tran_id.as_deref(), Some("77"));
        assert_eq!(i[3].income_type, IncomeType::Other("BFUSD_REWARD".into()));
        assert_eq!(i[3].income_type.as_str(), "BFUSD_REWARD");
    }
}
