//! The exchange's state and rules: accounts, orders, conditional (algo) orders, positions,
//! fills through `qt-matching`, funding at each funding time of the replay clock, liquidation,
//! the income history, and the user-data events they produce.
//!
//! Everything here is synchronous and deterministic given the market and the time passed in;
//! the HTTP layer holds the lock, calls in, then publishes the events the call queued.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use qt_events::{Decimal, Side};
use qt_matching::{
    Bar, Fill, FillModel, Liquidity, Position, RestingOrder, TimeInForce, TrailingStop, TriggerKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::funding::FundingRates;
use crate::market::{Market, MarketCursor, SymbolSpec};
use crate::params::{Params, check_client_id};

/// Order types the simulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrdType {
    Market,
    Limit,
    Stop,
    StopMarket,
    TakeProfit,
    TakeProfitMarket,
    TrailingStopMarket,
    Liquidation,
}

impl OrdType {
    pub fn name(self) -> &'static str {
        match self {
            OrdType::Market => "MARKET",
            OrdType::Limit => "LIMIT",
            OrdType::Stop => "STOP",
            OrdType::StopMarket => "STOP_MARKET",
            OrdType::TakeProfit => "TAKE_PROFIT",
            OrdType::TakeProfitMarket => "TAKE_PROFIT_MARKET",
            OrdType::TrailingStopMarket => "TRAILING_STOP_MARKET",
            OrdType::Liquidation => "LIQUIDATION",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "MARKET" => OrdType::Market,
            "LIMIT" => OrdType::Limit,
            "STOP" => OrdType::Stop,
            "STOP_MARKET" => OrdType::StopMarket,
            "TAKE_PROFIT" => OrdType::TakeProfit,
            "TAKE_PROFIT_MARKET" => OrdType::TakeProfitMarket,
            "TRAILING_STOP_MARKET" => OrdType::TrailingStopMarket,
            _ => return None,
        })
    }
    fn is_conditional(self) -> bool {
        matches!(
            self,
            OrdType::Stop
                | OrdType::StopMarket
                | OrdType::TakeProfit
                | OrdType::TakeProfitMarket
                | OrdType::TrailingStopMarket
        )
    }
    fn trigger_kind(self) -> Option<TriggerKind> {
        match self {
            OrdType::Stop | OrdType::StopMarket => Some(TriggerKind::Stop),
            OrdType::TakeProfit | OrdType::TakeProfitMarket => Some(TriggerKind::TakeProfit),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Rejected,
    Expired,
}

impl OrderStatus {
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
        }
    }
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled)
    }
}

fn tif_name(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::Gtx => "GTX",
    }
}

fn parse_tif(s: &str) -> Result<TimeInForce, ApiError> {
    match s {
        "GTC" => Ok(TimeInForce::Gtc),
        "IOC" => Ok(TimeInForce::Ioc),
        "FOK" => Ok(TimeInForce::Fok),
        "GTX" => Ok(TimeInForce::Gtx),
        _ => Err(ApiError::bad(-1115, "Invalid timeInForce.")),
    }
}

pub(crate) fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

/// Format a decimal without exponent or trailing zeros.
pub fn d(x: Decimal) -> String {
    x.normalize().to_string()
}

/// A plain order (MARKET/LIMIT, or the order a triggered algo order became).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub order_id: u64,
    pub symbol: String,
    pub client_order_id: String,
    pub side: Side,
    pub typ: OrdType,
    pub orig_type: OrdType,
    pub tif: TimeInForce,
    pub price: Decimal,
    pub orig_qty: Decimal,
    pub executed_qty: Decimal,
    pub cum_quote: Decimal,
    pub status: OrderStatus,
    pub reduce_only: bool,
    pub close_position: bool,
    pub stop_price: Decimal,
    pub working_type: String,
    pub time: i64,
    pub update_time: i64,
    /// The algo order this one came from.
    pub algo_id: Option<u64>,
}

impl Order {
    fn avg_price(&self) -> Decimal {
        if self.executed_qty.is_zero() {
            Decimal::ZERO
        } else {
            (self.cum_quote / self.executed_qty).round_dp(8)
        }
    }
    fn remaining(&self) -> Decimal {
        self.orig_qty - self.executed_qty
    }

    /// The REST shape (`POST/GET/DELETE /fapi/v1/order`).
    pub fn view(&self) -> Value {
        json!({
            "orderId": self.order_id, "symbol": self.symbol, "status": self.status.name(),
            "clientOrderId": self.client_order_id, "price": d(self.price),
            "avgPrice": d(self.avg_price()), "origQty": d(self.orig_qty),
            "executedQty": d(self.executed_qty), "cumQty": d(self.executed_qty),
            "cumQuote": d(self.cum_quote), "timeInForce": tif_name(self.tif),
            "type": self.typ.name(), "reduceOnly": self.reduce_only,
            "closePosition": self.close_position, "side": side_name(self.side),
            "positionSide": "BOTH", "stopPrice": d(self.stop_price),
            "workingType": self.working_type, "priceProtect": false,
            "origType": self.orig_type.name(), "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE", "goodTillDate": 0,
            "time": self.time, "updateTime": self.update_time,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlgoStatus {
    New,
    Triggered,
    Finished,
    Canceled,
    Rejected,
    Expired,
}

impl AlgoStatus {
    pub fn name(self) -> &'static str {
        match self {
            AlgoStatus::New => "NEW",
            AlgoStatus::Triggered => "TRIGGERED",
            AlgoStatus::Finished => "FINISHED",
            AlgoStatus::Canceled => "CANCELED",
            AlgoStatus::Rejected => "REJECTED",
            AlgoStatus::Expired => "EXPIRED",
        }
    }
}

/// A conditional order (`/fapi/v1/algoOrder`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlgoOrder {
    pub algo_id: u64,
    pub client_algo_id: String,
    pub symbol: String,
    pub side: Side,
    pub typ: OrdType,
    pub tif: TimeInForce,
    pub quantity: Decimal,
    pub price: Decimal,
    pub trigger_price: Decimal,
    pub working_type: String,
    pub close_position: bool,
    pub reduce_only: bool,
    pub price_protect: bool,
    pub activate_price: Decimal,
    pub callback_rate: Decimal,
    pub trailing: Option<TrailingStop>,
    pub status: AlgoStatus,
    pub actual_order_id: Option<u64>,
    pub create_time: i64,
    pub update_time: i64,
    pub trigger_time: i64,
    pub reject_reason: String,
}

impl AlgoOrder {
    pub fn view(&self, actual: Option<&Order>) -> Value {
        json!({
            "algoId": self.algo_id, "clientAlgoId": self.client_algo_id,
            "algoType": "CONDITIONAL", "orderType": self.typ.name(), "symbol": self.symbol,
            "side": side_name(self.side), "positionSide": "BOTH",
            "timeInForce": tif_name(self.tif), "quantity": d(self.quantity),
            "algoStatus": self.status.name(), "actualOrderId": self.actual_order_id.map(|i| i.to_string()).unwrap_or_default(),
            "actualPrice": actual.map(|o| d(o.avg_price())).unwrap_or_else(|| "0".into()),
            "triggerPrice": d(self.trigger_price), "price": d(self.price),
            "icebergQuantity": null, "tpTriggerPrice": "0", "tpPrice": "0",
            "slTriggerPrice": "0", "slPrice": "0", "tpOrderType": "", "selfTradePreventionMode": "NONE",
            "workingType": self.working_type, "priceMatch": "NONE",
            "closePosition": self.close_position, "priceProtect": self.price_protect,
            "reduceOnly": self.reduce_only, "activatePrice": d(self.activate_price),
            "callbackRate": d(self.callback_rate), "createTime": self.create_time,
            "updateTime": self.update_time, "triggerTime": self.trigger_time, "goodTillDate": 0,
        })
    }
}

/// One execution, for `userTrades`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trade {
    pub id: u64,
    pub order_id: u64,
    pub symbol: String,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub realized_pnl: Decimal,
    pub commission: Decimal,
    pub maker: bool,
    pub time: i64,
}

/// One wallet change, for `GET /fapi/v1/income`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Income {
    /// Unique per account ("tranId").
    pub tran_id: u64,
    pub symbol: String,
    /// `FUNDING_FEE`, `COMMISSION` or `REALIZED_PNL`.
    pub income_type: String,
    /// Positive in, negative out.
    pub income: Decimal,
    /// Server time when the wallet changed.
    pub time: i64,
    /// The trade that caused it (0: none, funding).
    pub trade_id: u64,
}

/// One account (one API key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Account {
    pub wallet: Decimal,
    pub leverage: BTreeMap<String, u32>,
    pub positions: BTreeMap<String, Position>,
    pub orders: BTreeMap<u64, Order>,
    pub open_orders: BTreeSet<u64>,
    /// `SYMBOL|clientOrderId` → latest order id with it.
    pub client_ids: HashMap<String, u64>,
    pub algos: BTreeMap<u64, AlgoOrder>,
    pub open_algos: BTreeSet<u64>,
    pub trades: Vec<Trade>,
    pub update_time: i64,
    /// Wallet changes, oldest first (the last [`MAX_INCOME`]).
    #[serde(default)]
    pub income: Vec<Income>,
}

const MAX_CLOSED_ORDERS: usize = 20_000;
/// `MAX_NUM_ORDERS` and `MAX_NUM_ALGO_ORDERS` of exchangeInfo, per symbol.
pub const MAX_OPEN_ORDERS: usize = 200;
pub const MAX_OPEN_ALGOS: usize = 10;
/// `PRICE_FILTER.maxPrice` of every symbol (also bounds notional arithmetic).
pub const MAX_PRICE: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);
const MAX_TRADES: usize = 20_000;
/// Income entries kept per account.
pub const MAX_INCOME: usize = 20_000;
/// Income answered when neither `startTime` nor `endTime` is sent: the last 7 days.
const INCOME_DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

/// A listenKey: owner and expiry on the server clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenKey {
    pub account: String,
    pub expires_at: i64,
}

/// An event for one account's user data stream.
#[derive(Debug, Clone)]
pub struct UserEvent {
    pub account: String,
    pub kind: &'static str,
    pub payload: Value,
}

/// A message for market streams: stream name (lowercase) and payload.
#[derive(Debug, Clone)]
pub struct MarketEvent {
    pub stream: String,
    pub payload: Value,
}

/// The snapshot written to disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub accounts: BTreeMap<String, Account>,
    pub next_order_id: u64,
    pub next_algo_id: u64,
    pub next_trade_id: u64,
    pub listen_keys: BTreeMap<String, ListenKey>,
    pub market: MarketCursor,
    /// Per symbol, the market time up to which funding has been settled (see
    /// [`Engine::funding_cursor`]). Absent in snapshots written before funding existed.
    #[serde(default)]
    pub funding_cursor: BTreeMap<String, i64>,
    #[serde(default)]
    pub next_tran_id: u64,
}

/// Engine parameters that do not change at run time.
#[derive(Debug, Clone)]
pub struct Rules {
    pub fill: FillModel,
    pub initial_balance: Decimal,
    pub default_leverage: u32,
    pub maint_margin_rate: Decimal,
    /// Funding rates and schedule.
    pub funding: FundingRates,
}

/// The whole exchange state.
#[derive(Debug)]
pub struct Engine {
    pub rules: Rules,
    pub market: Market,
    pub accounts: BTreeMap<String, Account>,
    pub next_order_id: u64,
    pub next_algo_id: u64,
    pub next_trade_id: u64,
    pub listen_keys: BTreeMap<String, ListenKey>,
    /// Per symbol, the market time up to which funding has been settled: every funding time
    /// at or before it has been charged (or fell before the simulation started). Saved in
    /// the snapshot with the wallets, so a restart neither charges a time twice nor skips one.
    pub funding_cursor: BTreeMap<String, i64>,
    pub next_tran_id: u64,
    pub user_events: Vec<UserEvent>,
    pub market_events: Vec<MarketEvent>,
}

fn step_ok(v: Decimal, step: Decimal) -> bool {
    step.is_zero() || (v % step).is_zero()
}

fn bar_at(price: Decimal, volume: Decimal) -> Bar {
    Bar {
        open_time: 0,
        open: price,
        high: price,
        low: price,
        close: price,
        volume,
    }
}

impl Engine {
    pub fn new(rules: Rules, market: Market, account_keys: &[String]) -> Self {
        let mut accounts = BTreeMap::new();
        for k in account_keys {
            accounts.insert(
                k.clone(),
                Account {
                    wallet: rules.initial_balance,
                    ..Account::default()
                },
            );
        }
        let funding_cursor = market
            .symbols
            .iter()
            .map(|(s, m)| (s.clone(), m.now_ms()))
            .collect();
        Self {
            rules,
            market,
            accounts,
            next_order_id: 1_000_001,
            next_algo_id: 2_000_001,
            next_trade_id: 1,
            listen_keys: BTreeMap::new(),
            funding_cursor,
            next_tran_id: 1,
            user_events: Vec::new(),
            market_events: Vec::new(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 1,
            accounts: self.accounts.clone(),
            next_order_id: self.next_order_id,
            next_algo_id: self.next_algo_id,
            next_trade_id: self.next_trade_id,
            listen_keys: self.listen_keys.clone(),
            market: self.market.cursor(),
            funding_cursor: self.funding_cursor.clone(),
            next_tran_id: self.next_tran_id,
        }
    }

    /// Load a snapshot; accounts configured now but absent from it start fresh.
    pub fn restore(&mut self, s: Snapshot) {
        for (k, a) in s.accounts {
            self.accounts.insert(k, a);
        }
        self.next_order_id = self.next_order_id.max(s.next_order_id);
        self.next_algo_id = self.next_algo_id.max(s.next_algo_id);
        self.next_trade_id = self.next_trade_id.max(s.next_trade_id);
        self.listen_keys = s.listen_keys;
        self.market.restore(&s.market);
        self.next_tran_id = self.next_tran_id.max(s.next_tran_id);
        // Funding times up to the restored market time were settled before the snapshot (an
        // older snapshot without the cursor: nothing is charged retroactively).
        for (symbol, m) in &self.market.symbols {
            let at = s
                .funding_cursor
                .get(symbol)
                .copied()
                .unwrap_or_else(|| m.now_ms());
            self.funding_cursor.insert(symbol.clone(), at);
        }
    }

    fn spec(&self, symbol: &str) -> Result<SymbolSpec, ApiError> {
        self.market
            .get(symbol)
            .map(|m| m.spec.clone())
            .ok_or_else(ApiError::invalid_symbol)
    }

    fn mark(&self, symbol: &str) -> Decimal {
        self.market
            .get(symbol)
            .map_or(Decimal::ZERO, |m| m.mark_price())
    }

    fn account(&self, key: &str) -> Result<&Account, ApiError> {
        self.accounts.get(key).ok_or_else(|| {
            ApiError::new(
                401,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            )
        })
    }

    fn account_mut(&mut self, key: &str) -> Result<&mut Account, ApiError> {
        self.accounts.get_mut(key).ok_or_else(|| {
            ApiError::new(
                401,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            )
        })
    }

    fn leverage(&self, acc: &Account, symbol: &str) -> u32 {
        acc.leverage
            .get(symbol)
            .copied()
            .unwrap_or(self.rules.default_leverage)
            .max(1)
    }

    /// Unrealized PnL, initial margin of positions and open orders, maintenance margin.
    fn margins(&self, acc: &Account) -> (Decimal, Decimal, Decimal, Decimal) {
        let mut upnl = Decimal::ZERO;
        let mut pos_im = Decimal::ZERO;
        let mut maint = Decimal::ZERO;
        for (s, p) in &acc.positions {
            if p.is_flat() {
                continue;
            }
            let mark = self.mark(s);
            upnl += p.unrealized_pnl(mark);
            pos_im += p.notional(mark) / Decimal::from(self.leverage(acc, s));
            maint += p.notional(mark) * self.rules.maint_margin_rate;
        }
        let mut ord_im = Decimal::ZERO;
        for id in &acc.open_orders {
            if let Some(o) = acc.orders.get(id)
                && !o.reduce_only
            {
                let px = if o.price.is_zero() {
                    self.mark(&o.symbol)
                } else {
                    o.price
                };
                ord_im += o.remaining() * px / Decimal::from(self.leverage(acc, &o.symbol));
            }
        }
        (upnl, pos_im, ord_im, maint)
    }

    fn available(&self, acc: &Account) -> Decimal {
        let (upnl, pos_im, ord_im, _) = self.margins(acc);
        acc.wallet + upnl - pos_im - ord_im
    }

    fn check_qty(spec: &SymbolSpec, q: Decimal) -> Result<(), ApiError> {
        if q <= Decimal::ZERO {
            return Err(ApiError::bad(-4003, "Quantity less than or equal to zero."));
        }
        if q.normalize().scale() > spec.quantity_precision() {
            return Err(ApiError::bad(
                -1111,
                "Precision is over the maximum defined for this asset.",
            ));
        }
        if !step_ok(q, spec.step_size) {
            return Err(ApiError::bad(-4023, "Quantity not increased by step size."));
        }
        if q < spec.min_qty {
            return Err(ApiError::bad(-4003, "Quantity less than or equal to zero."));
        }
        if q > spec.max_qty {
            return Err(ApiError::bad(-4005, "Quantity greater than max quantity."));
        }
        Ok(())
    }

    fn check_price(spec: &SymbolSpec, name: &str, p: Decimal) -> Result<(), ApiError> {
        if p <= Decimal::ZERO {
            return Err(ApiError::bad(-4001, format!("{name} less than 0.")));
        }
        if p > MAX_PRICE {
            return Err(ApiError::bad(
                -4002,
                format!("{name} greater than max price."),
            ));
        }
        if p.normalize().scale() > spec.price_precision() {
            return Err(ApiError::bad(
                -1111,
                "Precision is over the maximum defined for this asset.",
            ));
        }
        if !step_ok(p, spec.tick_size) {
            return Err(ApiError::bad(-4014, "Price not increased by tick size."));
        }
        Ok(())
    }

    fn check_position_side(p: &Params) -> Result<(), ApiError> {
        match p.get("positionSide") {
            None | Some("BOTH") => Ok(()),
            Some(_) => Err(ApiError::bad(
                -4061,
                "Order's position side does not match user's setting.",
            )),
        }
    }

    fn min_notional_err(spec: &SymbolSpec) -> ApiError {
        ApiError::bad(
            -4164,
            format!(
                "Order's notional must be no smaller than {} (unless you choose reduce only).",
                d(spec.min_notional)
            ),
        )
    }

    // ---------------------------------------------------------------- plain orders

    /// `POST /fapi/v1/order`.
    pub fn new_order(&mut self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        self.account(key)?;
        let symbol = p.required("symbol")?.to_string();
        let spec = self.spec(&symbol)?;
        let side = p.side()?;
        let typ = OrdType::parse(p.required("type")?)
            .ok_or_else(|| ApiError::bad(-1116, "Invalid orderType."))?;
        if typ.is_conditional() {
            return Err(ApiError::bad(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
            ));
        }
        Self::check_position_side(p)?;
        if p.bool("closePosition")? {
            return Err(ApiError::not_required("closePosition"));
        }
        let reduce_only = p.bool("reduceOnly")?;
        let qty = p.required_decimal("quantity")?;
        Self::check_qty(&spec, qty)?;
        let (price, tif) = match typ {
            OrdType::Limit => {
                let price = p.required_decimal("price")?;
                Self::check_price(&spec, "Price", price)?;
                (Some(price), parse_tif(p.required("timeInForce")?)?)
            }
            _ => {
                if p.has("price") {
                    return Err(ApiError::not_required("price"));
                }
                (None, TimeInForce::Gtc)
            }
        };
        let resp_result = match p.get("newOrderRespType") {
            None | Some("ACK") => false,
            Some("RESULT") => true,
            Some(_) => return Err(ApiError::invalid("newOrderRespType")),
        };
        let cid = match p.get("newClientOrderId") {
            Some(c) => {
                check_client_id("newClientOrderId", c)?;
                c.to_string()
            }
            None => format!("sim_{}", self.next_order_id),
        };
        let acc = self.account(key)?;
        let ck = format!("{symbol}|{cid}");
        if acc
            .client_ids
            .get(&ck)
            .and_then(|id| acc.orders.get(id))
            .is_some_and(|o| o.status.is_open())
        {
            return Err(ApiError::bad(-4116, "ClientOrderId is duplicated."));
        }
        let open_here = acc
            .open_orders
            .iter()
            .filter(|id| acc.orders.get(id).is_some_and(|o| o.symbol == symbol))
            .count();
        if open_here >= MAX_OPEN_ORDERS {
            return Err(ApiError::bad(-2025, "Reach max open order limit."));
        }
        let position = acc.positions.get(&symbol).copied().unwrap_or_default();
        if reduce_only && position.reduce_only_cap(side).is_zero() {
            return Err(ApiError::bad(-2022, "ReduceOnly Order is rejected."));
        }
        let mark = self.mark(&symbol);
        let ref_price = price.unwrap_or(mark);
        if !reduce_only && qty * ref_price < spec.min_notional {
            return Err(Self::min_notional_err(&spec));
        }
        if !reduce_only {
            let opening = (qty - position.reduce_only_cap(side)).max(Decimal::ZERO);
            let required = opening * ref_price / Decimal::from(self.leverage(acc, &symbol));
            if required > self.available(acc) {
                return Err(ApiError::bad(-2019, "Margin is insufficient."));
            }
        }
        let bar = self
            .market
            .get(&symbol)
            .and_then(|m| m.current_bar())
            .ok_or_else(ApiError::invalid_symbol)?;
        let resting = RestingOrder {
            side,
            limit_price: price,
            remaining: qty,
        };
        let first_fill = match self
            .rules
            .fill
            .on_arrival(&resting, tif, &bar, spec.step_size)
        {
            Ok(f) => f,
            Err(qt_matching::MatchError::PostOnlyWouldTake) => {
                return Err(ApiError::bad(
                    -5022,
                    "Due to the order could not be executed as maker, the Post Only order will be rejected. The order will not be recorded in the order history",
                ));
            }
            Err(qt_matching::MatchError::FillOrKillUnfillable) => {
                return Err(ApiError::bad(
                    -5021,
                    "Due to the order could not be filled immediately, the FOK order has been rejected. The order will not be recorded in the order history",
                ));
            }
            Err(qt_matching::MatchError::Invalid(m)) => return Err(ApiError::bad(-1013, m)),
        };
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let order = Order {
            order_id,
            symbol: symbol.clone(),
            client_order_id: cid,
            side,
            typ,
            orig_type: typ,
            tif,
            price: price.unwrap_or_default(),
            orig_qty: qty,
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: OrderStatus::New,
            reduce_only,
            close_position: false,
            stop_price: Decimal::ZERO,
            working_type: "CONTRACT_PRICE".into(),
            time: now,
            update_time: now,
            algo_id: None,
        };
        let ack = order.view();
        self.insert_order(key, order, now);
        if let Some(f) = first_fill {
            self.apply_fill(key, order_id, f, now, "TRADE");
        }
        if tif == TimeInForce::Ioc {
            self.finish_order(key, order_id, OrderStatus::Expired, now);
        }
        self.prune(key);
        if resp_result {
            Ok(self.order_view(key, order_id).unwrap_or(ack))
        } else {
            Ok(ack)
        }
    }

    fn order_view(&self, key: &str, id: u64) -> Option<Value> {
        self.accounts.get(key)?.orders.get(&id).map(Order::view)
    }

    fn insert_order(&mut self, key: &str, order: Order, now: i64) {
        let event = self.order_event(&order, "NEW", None, now);
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        acc.client_ids.insert(
            format!("{}|{}", order.symbol, order.client_order_id),
            order.order_id,
        );
        acc.open_orders.insert(order.order_id);
        acc.orders.insert(order.order_id, order);
        self.push_user(key, "ORDER_TRADE_UPDATE", event);
    }

    fn prune(&mut self, key: &str) {
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        if acc.orders.len() > MAX_CLOSED_ORDERS + acc.open_orders.len() {
            let excess = acc.orders.len() - MAX_CLOSED_ORDERS - acc.open_orders.len();
            let old: Vec<u64> = acc
                .orders
                .keys()
                .filter(|id| !acc.open_orders.contains(id))
                .take(excess)
                .copied()
                .collect();
            for id in old {
                if let Some(o) = acc.orders.remove(&id) {
                    let ck = format!("{}|{}", o.symbol, o.client_order_id);
                    if acc.client_ids.get(&ck) == Some(&id) {
                        acc.client_ids.remove(&ck);
                    }
                }
            }
        }
        if acc.trades.len() > MAX_TRADES {
            let n = acc.trades.len() - MAX_TRADES;
            acc.trades.drain(..n);
        }
        if acc.income.len() > MAX_INCOME {
            let n = acc.income.len() - MAX_INCOME;
            acc.income.drain(..n);
        }
    }

    fn push_user(&mut self, key: &str, kind: &'static str, payload: Value) {
        self.user_events.push(UserEvent {
            account: key.to_string(),
            kind,
            payload,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn order_event(
        &self,
        o: &Order,
        exec: &str,
        last: Option<(&Fill, u64, Decimal)>,
        now: i64,
    ) -> Value {
        let (l, lp, n, t, rp, maker) = match last {
            Some((f, t, rp)) => (
                f.qty,
                f.price,
                f.fee,
                t,
                rp,
                f.liquidity == Liquidity::Maker,
            ),
            None => (
                Decimal::ZERO,
                Decimal::ZERO,
                Decimal::ZERO,
                0,
                Decimal::ZERO,
                false,
            ),
        };
        json!({
            "e": "ORDER_TRADE_UPDATE", "E": now, "T": now,
            "o": {
                "s": o.symbol, "c": o.client_order_id, "S": side_name(o.side), "o": o.typ.name(),
                "f": tif_name(o.tif), "q": d(o.orig_qty), "p": d(o.price), "ap": d(o.avg_price()),
                "sp": d(o.stop_price), "x": exec, "X": o.status.name(), "i": o.order_id,
                "l": d(l), "z": d(o.executed_qty), "L": d(lp), "N": "USDT", "n": d(n), "T": now,
                "t": t, "b": "0", "a": "0", "m": maker, "R": o.reduce_only, "wt": o.working_type,
                "ot": o.orig_type.name(), "ps": "BOTH", "cp": o.close_position, "rp": d(rp),
                "pP": false, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0, "er": "0"
            }
        })
    }

    fn account_event(
        &self,
        key: &str,
        symbol: &str,
        balance_change: Decimal,
        reason: &str,
        now: i64,
    ) -> Value {
        let acc = self.accounts.get(key);
        let wallet = acc.map_or(Decimal::ZERO, |a| a.wallet);
        let pos = acc
            .and_then(|a| a.positions.get(symbol))
            .copied()
            .unwrap_or_default();
        let mark = self.mark(symbol);
        json!({
            "e": "ACCOUNT_UPDATE", "E": now, "T": now,
            "a": {
                "m": reason,
                "B": [{"a": "USDT", "wb": d(wallet), "cw": d(wallet), "bc": d(balance_change)}],
                "P": [{"s": symbol, "pa": d(pos.qty), "ep": d(pos.entry_price), "bep": d(pos.entry_price),
                       "cr": "0", "up": d(pos.unrealized_pnl(mark).round_dp(8)), "mt": "cross", "iw": "0", "ps": "BOTH"}]
            }
        })
    }

    /// Apply one fill to an order and its account; emits ORDER_TRADE_UPDATE and ACCOUNT_UPDATE.
    /// Reduce-only orders are capped so they never flip the position (the rest expires).
    fn apply_fill(&mut self, key: &str, order_id: u64, fill: Fill, now: i64, exec: &'static str) {
        let Some(acc) = self.accounts.get(key) else {
            return;
        };
        let Some(order) = acc.orders.get(&order_id) else {
            return;
        };
        let symbol = order.symbol.clone();
        let mut qty = fill.qty.min(order.remaining());
        if order.reduce_only {
            let cap = acc
                .positions
                .get(&symbol)
                .copied()
                .unwrap_or_default()
                .reduce_only_cap(order.side);
            qty = qty.min(cap);
        }
        if qty <= Decimal::ZERO {
            if order.reduce_only {
                self.finish_order(key, order_id, OrderStatus::Expired, now);
            }
            return;
        }
        let fill = Fill {
            qty,
            fee: self.rules.fill.fee(fill.price * qty, fill.liquidity),
            ..fill
        };
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        let pos = acc.positions.entry(symbol.clone()).or_default();
        let change = pos.apply(fill.side, fill.qty, fill.price);
        let balance_change = change.realized_pnl - fill.fee;
        acc.wallet += balance_change;
        acc.update_time = now;
        let Some(order) = acc.orders.get_mut(&order_id) else {
            return;
        };
        order.executed_qty += fill.qty;
        order.cum_quote += fill.price * fill.qty;
        order.update_time = now;
        order.status = if order.remaining() <= Decimal::ZERO {
            OrderStatus::Filled
        } else {
            OrderStatus::PartiallyFilled
        };
        let filled = order.status == OrderStatus::Filled;
        let algo_id = order.algo_id;
        let order = order.clone();
        if filled {
            acc.open_orders.remove(&order_id);
        }
        acc.trades.push(Trade {
            id: trade_id,
            order_id,
            symbol: symbol.clone(),
            side: fill.side,
            price: fill.price,
            qty: fill.qty,
            realized_pnl: change.realized_pnl,
            commission: fill.fee,
            maker: fill.liquidity == Liquidity::Maker,
            time: now,
        });
        for (income_type, income) in [
            ("REALIZED_PNL", change.realized_pnl),
            ("COMMISSION", -fill.fee),
        ] {
            if !income.is_zero() {
                acc.income.push(Income {
                    tran_id: self.next_tran_id,
                    symbol: symbol.clone(),
                    income_type: income_type.into(),
                    income,
                    time: now,
                    trade_id,
                });
                self.next_tran_id += 1;
            }
        }
        let ev = self.order_event(
            &order,
            exec,
            Some((&fill, trade_id, change.realized_pnl)),
            now,
        );
        self.push_user(key, "ORDER_TRADE_UPDATE", ev);
        let ev = self.account_event(key, &symbol, balance_change, "ORDER", now);
        self.push_user(key, "ACCOUNT_UPDATE", ev);
        if filled && let Some(a) = algo_id {
            self.set_algo_status(key, a, AlgoStatus::Finished, now);
        }
        // A reduce-only remainder with nothing left to reduce expires (it would flip otherwise).
        if !filled && order.reduce_only {
            let cap = self
                .accounts
                .get(key)
                .and_then(|a| a.positions.get(&symbol))
                .copied()
                .unwrap_or_default()
                .reduce_only_cap(order.side);
            if cap.is_zero() {
                self.finish_order(key, order_id, OrderStatus::Expired, now);
            }
        }
    }

    /// Close an open order with a final status (CANCELED / EXPIRED) and emit its event.
    fn finish_order(&mut self, key: &str, order_id: u64, status: OrderStatus, now: i64) {
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        let Some(order) = acc.orders.get_mut(&order_id) else {
            return;
        };
        if !order.status.is_open() {
            return;
        }
        order.status = status;
        order.update_time = now;
        let order = order.clone();
        acc.open_orders.remove(&order_id);
        let exec = if status == OrderStatus::Canceled {
            "CANCELED"
        } else {
            "EXPIRED"
        };
        let ev = self.order_event(&order, exec, None, now);
        self.push_user(key, "ORDER_TRADE_UPDATE", ev);
        if let Some(a) = order.algo_id {
            let st = if order.executed_qty.is_zero() {
                AlgoStatus::Expired
            } else {
                AlgoStatus::Finished
            };
            self.set_algo_status(key, a, st, now);
        }
    }

    fn find_order(&self, key: &str, p: &Params) -> Result<u64, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.required("symbol")?;
        self.spec(symbol)?;
        let id = if let Some(id) = p.int("orderId")? {
            u64::try_from(id)
                .ok()
                .filter(|id| acc.orders.get(id).is_some_and(|o| o.symbol == symbol))
        } else if let Some(c) = p.get("origClientOrderId") {
            acc.client_ids.get(&format!("{symbol}|{c}")).copied()
        } else {
            return Err(ApiError::bad(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            ));
        };
        id.ok_or_else(ApiError::no_such_order)
    }

    /// `GET /fapi/v1/order`.
    pub fn query_order(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let id = self.find_order(key, p)?;
        self.order_view(key, id).ok_or_else(ApiError::no_such_order)
    }

    /// `GET /fapi/v1/openOrder`.
    pub fn query_open_order(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let id = self.find_order(key, p)?;
        let acc = self.account(key)?;
        if !acc.open_orders.contains(&id) {
            return Err(ApiError::bad(-2013, "Order does not exist."));
        }
        self.order_view(key, id).ok_or_else(ApiError::no_such_order)
    }

    /// `DELETE /fapi/v1/order`.
    pub fn cancel_order(&mut self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        let id = self.find_order(key, p).map_err(|e| {
            if e.code == -2013 {
                ApiError::unknown_order()
            } else {
                e
            }
        })?;
        if !self.account(key)?.open_orders.contains(&id) {
            return Err(ApiError::unknown_order());
        }
        self.finish_order(key, id, OrderStatus::Canceled, now);
        self.order_view(key, id).ok_or_else(ApiError::unknown_order)
    }

    /// `GET /fapi/v1/openOrders`.
    pub fn open_orders(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.get("symbol");
        if let Some(s) = symbol {
            self.spec(s)?;
        }
        Ok(Value::Array(
            acc.open_orders
                .iter()
                .filter_map(|id| acc.orders.get(id))
                .filter(|o| symbol.is_none_or(|s| s == o.symbol))
                .map(Order::view)
                .collect(),
        ))
    }

    /// `GET /fapi/v1/allOrders`.
    pub fn all_orders(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.required("symbol")?;
        self.spec(symbol)?;
        let limit = usize::try_from(p.int("limit")?.unwrap_or(500).clamp(1, 1000)).unwrap_or(500);
        let from = p.int("orderId")?.and_then(|i| u64::try_from(i).ok());
        let mut v: Vec<Value> = acc
            .orders
            .values()
            .filter(|o| o.symbol == symbol && from.is_none_or(|f| o.order_id >= f))
            .map(Order::view)
            .collect();
        if v.len() > limit {
            if from.is_some() {
                v.truncate(limit);
            } else {
                v.drain(..v.len() - limit);
            }
        }
        Ok(Value::Array(v))
    }

    /// `DELETE /fapi/v1/allOpenOrders`.
    pub fn cancel_all(&mut self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        let symbol = p.required("symbol")?.to_string();
        self.spec(&symbol)?;
        let ids: Vec<u64> = {
            let acc = self.account(key)?;
            acc.open_orders
                .iter()
                .filter(|id| acc.orders.get(id).is_some_and(|o| o.symbol == symbol))
                .copied()
                .collect()
        };
        for id in ids {
            self.finish_order(key, id, OrderStatus::Canceled, now);
        }
        Ok(json!({"code": 200, "msg": "The operation of cancel all open order is done."}))
    }

    /// `GET /fapi/v1/userTrades`.
    pub fn user_trades(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.required("symbol")?;
        self.spec(symbol)?;
        let limit = usize::try_from(p.int("limit")?.unwrap_or(500).clamp(1, 1000)).unwrap_or(500);
        let mut v: Vec<Value> = acc
            .trades
            .iter()
            .filter(|t| t.symbol == symbol)
            .map(|t| {
                json!({"symbol": t.symbol, "id": t.id, "orderId": t.order_id, "side": side_name(t.side),
                "price": d(t.price), "qty": d(t.qty), "realizedPnl": d(t.realized_pnl),
                "quoteQty": d(t.price * t.qty), "commission": d(t.commission), "commissionAsset": "USDT",
                "time": t.time, "positionSide": "BOTH", "buyer": t.side == Side::Buy, "maker": t.maker})
            })
            .collect();
        if v.len() > limit {
            v.drain(..v.len() - limit);
        }
        Ok(Value::Array(v))
    }

    // ---------------------------------------------------------------- algo orders

    /// `POST /fapi/v1/algoOrder`.
    pub fn new_algo(&mut self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        self.account(key)?;
        match p.required("algoType")? {
            "CONDITIONAL" => {}
            _ => return Err(ApiError::invalid("algoType")),
        }
        let symbol = p.required("symbol")?.to_string();
        let spec = self.spec(&symbol)?;
        let side = p.side()?;
        let typ = OrdType::parse(p.required("type")?)
            .filter(|t| t.is_conditional())
            .ok_or_else(|| ApiError::bad(-1116, "Invalid orderType."))?;
        Self::check_position_side(p)?;
        let working_type = match p.get("workingType") {
            None | Some("CONTRACT_PRICE") => "CONTRACT_PRICE",
            Some("MARK_PRICE") => "MARK_PRICE",
            Some(_) => return Err(ApiError::invalid("workingType")),
        };
        let close_position = p.bool("closePosition")?;
        let reduce_only = p.bool("reduceOnly")?;
        let price_protect = p.bool("priceProtect")?;
        if close_position && p.has("quantity") {
            return Err(ApiError::not_required("quantity"));
        }
        if close_position && reduce_only {
            return Err(ApiError::not_required("reduceOnly"));
        }
        if close_position
            && matches!(
                typ,
                OrdType::Stop | OrdType::TakeProfit | OrdType::TrailingStopMarket
            )
        {
            return Err(ApiError::not_required("closePosition"));
        }
        let quantity = if close_position {
            Decimal::ZERO
        } else {
            let q = p.required_decimal("quantity")?;
            Self::check_qty(&spec, q)?;
            q
        };
        let price = if matches!(typ, OrdType::Stop | OrdType::TakeProfit) {
            let px = p.required_decimal("price")?;
            Self::check_price(&spec, "Price", px)?;
            px
        } else {
            Decimal::ZERO
        };
        let tif = match p.get("timeInForce") {
            Some(t) => parse_tif(t)?,
            None => TimeInForce::Gtc,
        };
        let reference = if working_type == "MARK_PRICE" {
            self.mark(&symbol)
        } else {
            self.market
                .get(&symbol)
                .map_or(Decimal::ZERO, |m| m.last_price())
        };
        let (trigger_price, trailing, activate_price, callback_rate) =
            if typ == OrdType::TrailingStopMarket {
                let rate = p.required_decimal("callbackRate")?;
                if rate < Decimal::new(1, 1) || rate > Decimal::TEN {
                    return Err(ApiError::invalid("callbackRate"));
                }
                let act = p.decimal("activatePrice")?;
                if let Some(a) = act {
                    Self::check_price(&spec, "Activate price", a)?;
                }
                let mut t = TrailingStop::new(side, act, rate);
                t.observe(reference);
                (Decimal::ZERO, Some(t), act.unwrap_or_default(), rate)
            } else {
                let tp = p.required_decimal("triggerPrice")?;
                Self::check_price(&spec, "Stop price", tp)?;
                if let Some(kind) = typ.trigger_kind()
                    && qt_matching::fires(kind, side, tp, reference)
                {
                    return Err(ApiError::bad(-2021, "Order would immediately trigger."));
                }
                (tp, None, Decimal::ZERO, Decimal::ZERO)
            };
        let cid = match p.get("clientAlgoId") {
            Some(c) => {
                check_client_id("clientAlgoId", c)?;
                c.to_string()
            }
            None => format!("simalgo_{}", self.next_algo_id),
        };
        let acc = self.account(key)?;
        if acc
            .open_algos
            .iter()
            .filter_map(|id| acc.algos.get(id))
            .any(|a| a.client_algo_id == cid)
        {
            return Err(ApiError::bad(-4116, "ClientOrderId is duplicated."));
        }
        let algos_here = acc
            .open_algos
            .iter()
            .filter(|id| acc.algos.get(id).is_some_and(|a| a.symbol == symbol))
            .count();
        if algos_here >= MAX_OPEN_ALGOS {
            return Err(ApiError::bad(-4045, "Reach max stop order limit."));
        }
        let position = acc.positions.get(&symbol).copied().unwrap_or_default();
        if reduce_only && position.reduce_only_cap(side).is_zero() {
            return Err(ApiError::bad(-2022, "ReduceOnly Order is rejected."));
        }
        let notional_price = if trigger_price.is_zero() {
            reference
        } else {
            trigger_price
        };
        if !close_position && !reduce_only && quantity * notional_price < spec.min_notional {
            return Err(Self::min_notional_err(&spec));
        }
        let algo_id = self.next_algo_id;
        self.next_algo_id += 1;
        let algo = AlgoOrder {
            algo_id,
            client_algo_id: cid,
            symbol,
            side,
            typ,
            tif,
            quantity,
            price,
            trigger_price,
            working_type: working_type.to_string(),
            close_position,
            reduce_only,
            price_protect,
            activate_price,
            callback_rate,
            trailing,
            status: AlgoStatus::New,
            actual_order_id: None,
            create_time: now,
            update_time: now,
            trigger_time: 0,
            reject_reason: String::new(),
        };
        let view = algo.view(None);
        let ev = self.algo_event(&algo, None, now);
        let acc = self.account_mut(key)?;
        acc.open_algos.insert(algo_id);
        acc.algos.insert(algo_id, algo);
        self.push_user(key, "ALGO_UPDATE", ev);
        Ok(view)
    }

    fn algo_event(&self, a: &AlgoOrder, actual: Option<&Order>, now: i64) -> Value {
        let (ap, aq) = actual.map_or((Decimal::ZERO, Decimal::ZERO), |o| {
            (o.avg_price(), o.executed_qty)
        });
        json!({
            "e": "ALGO_UPDATE", "T": now, "E": now,
            "o": {
                "caid": a.client_algo_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.typ.name(),
                "s": a.symbol, "S": side_name(a.side), "ps": "BOTH", "f": tif_name(a.tif),
                "q": d(a.quantity), "X": a.status.name(),
                "ai": a.actual_order_id.map(|i| i.to_string()).unwrap_or_default(),
                "ap": d(ap), "aq": d(aq), "act": "0", "tp": d(a.trigger_price), "p": d(a.price),
                "V": "NONE", "wt": a.working_type, "pm": "NONE", "cp": a.close_position,
                "pP": a.price_protect, "R": a.reduce_only, "tt": a.trigger_time, "gtd": 0,
                "rm": a.reject_reason
            }
        })
    }

    fn set_algo_status(&mut self, key: &str, algo_id: u64, status: AlgoStatus, now: i64) {
        let Some(acc) = self.accounts.get_mut(key) else {
            return;
        };
        let Some(a) = acc.algos.get_mut(&algo_id) else {
            return;
        };
        if a.status == status {
            return;
        }
        a.status = status;
        a.update_time = now;
        if !matches!(status, AlgoStatus::New | AlgoStatus::Triggered) {
            acc.open_algos.remove(&algo_id);
        }
        let a = a.clone();
        let actual = a.actual_order_id.and_then(|o| acc.orders.get(&o)).cloned();
        let ev = self.algo_event(&a, actual.as_ref(), now);
        self.push_user(key, "ALGO_UPDATE", ev);
    }

    fn find_algo(&self, key: &str, p: &Params) -> Result<Option<u64>, ApiError> {
        let acc = self.account(key)?;
        if let Some(id) = p.int("algoId")? {
            Ok(u64::try_from(id)
                .ok()
                .filter(|id| acc.algos.contains_key(id)))
        } else if let Some(c) = p.get("clientAlgoId") {
            Ok(acc
                .algos
                .values()
                .rev()
                .find(|a| a.client_algo_id == c)
                .map(|a| a.algo_id))
        } else {
            Err(ApiError::bad(
                -1102,
                "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!",
            ))
        }
    }

    fn algo_view(&self, key: &str, id: u64) -> Option<Value> {
        let acc = self.accounts.get(key)?;
        let a = acc.algos.get(&id)?;
        Some(a.view(a.actual_order_id.and_then(|o| acc.orders.get(&o))))
    }

    /// `GET /fapi/v1/algoOrder`.
    pub fn query_algo(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let id = self
            .find_algo(key, p)?
            .ok_or_else(ApiError::no_such_order)?;
        self.algo_view(key, id).ok_or_else(ApiError::no_such_order)
    }

    /// `DELETE /fapi/v1/algoOrder`.
    pub fn cancel_algo(&mut self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        let id = self
            .find_algo(key, p)?
            .ok_or_else(ApiError::unknown_order)?;
        let acc = self.account(key)?;
        if !acc.open_algos.contains(&id)
            || acc
                .algos
                .get(&id)
                .is_some_and(|a| a.status != AlgoStatus::New)
        {
            return Err(ApiError::unknown_order());
        }
        let cid = acc
            .algos
            .get(&id)
            .map(|a| a.client_algo_id.clone())
            .unwrap_or_default();
        self.set_algo_status(key, id, AlgoStatus::Canceled, now);
        Ok(json!({"algoId": id, "clientAlgoId": cid, "code": "200", "msg": "success"}))
    }

    /// `GET /fapi/v1/openAlgoOrders`.
    pub fn open_algos(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.get("symbol");
        Ok(Value::Array(
            acc.open_algos
                .iter()
                .filter_map(|id| acc.algos.get(id))
                .filter(|a| symbol.is_none_or(|s| s == a.symbol))
                .filter_map(|a| self.algo_view(key, a.algo_id))
                .collect(),
        ))
    }

    /// `GET /fapi/v1/allAlgoOrders`.
    pub fn all_algos(&self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.required("symbol")?;
        Ok(Value::Array(
            acc.algos
                .values()
                .filter(|a| a.symbol == symbol)
                .filter_map(|a| self.algo_view(key, a.algo_id))
                .collect(),
        ))
    }

    /// `DELETE /fapi/v1/algoOpenOrders`.
    pub fn cancel_all_algos(&mut self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        let symbol = p.required("symbol")?.to_string();
        self.spec(&symbol)?;
        let ids: Vec<u64> = {
            let acc = self.account(key)?;
            acc.open_algos
                .iter()
                .filter(|id| {
                    acc.algos
                        .get(id)
                        .is_some_and(|a| a.symbol == symbol && a.status == AlgoStatus::New)
                })
                .copied()
                .collect()
        };
        for id in ids {
            self.set_algo_status(key, id, AlgoStatus::Canceled, now);
        }
        Ok(json!({"code": 200, "msg": "The operation of cancel all open order is done."}))
    }

    /// Turn a fired algo order into a plain order and execute it at `price` within `bar`.
    fn trigger_algo(&mut self, key: &str, algo_id: u64, price: Decimal, bar: &Bar, now: i64) {
        let Some(algo) = self
            .accounts
            .get(key)
            .and_then(|a| a.algos.get(&algo_id))
            .cloned()
        else {
            return;
        };
        let position = self
            .accounts
            .get(key)
            .and_then(|a| a.positions.get(&algo.symbol))
            .copied()
            .unwrap_or_default();
        let qty = if algo.close_position {
            position.reduce_only_cap(algo.side)
        } else {
            algo.quantity
        };
        if let Some(acc) = self.accounts.get_mut(key)
            && let Some(a) = acc.algos.get_mut(&algo_id)
        {
            a.trigger_time = now;
        }
        let reduce_only = algo.reduce_only || algo.close_position;
        if qty.is_zero() || (reduce_only && position.reduce_only_cap(algo.side).is_zero()) {
            if let Some(a) = self
                .accounts
                .get_mut(key)
                .and_then(|acc| acc.algos.get_mut(&algo_id))
            {
                a.reject_reason = "Reduce Only reject".into();
            }
            self.set_algo_status(key, algo_id, AlgoStatus::Rejected, now);
            return;
        }
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let typ = if matches!(algo.typ, OrdType::Stop | OrdType::TakeProfit) {
            OrdType::Limit
        } else {
            OrdType::Market
        };
        let order = Order {
            order_id,
            symbol: algo.symbol.clone(),
            client_order_id: algo.client_algo_id.clone(),
            side: algo.side,
            typ,
            orig_type: algo.typ,
            tif: algo.tif,
            price: algo.price,
            orig_qty: qty,
            executed_qty: Decimal::ZERO,
            cum_quote: Decimal::ZERO,
            status: OrderStatus::New,
            reduce_only,
            close_position: algo.close_position,
            stop_price: algo.trigger_price,
            working_type: algo.working_type.clone(),
            time: now,
            update_time: now,
            algo_id: Some(algo_id),
        };
        if let Some(a) = self
            .accounts
            .get_mut(key)
            .and_then(|acc| acc.algos.get_mut(&algo_id))
        {
            a.actual_order_id = Some(order_id);
        }
        self.set_algo_status(key, algo_id, AlgoStatus::Triggered, now);
        self.insert_order(key, order, now);
        let step = self
            .market
            .get(&algo.symbol)
            .map_or(Decimal::ZERO, |m| m.spec.step_size);
        let resting = RestingOrder {
            side: algo.side,
            limit_price: (typ == OrdType::Limit).then_some(algo.price),
            remaining: qty,
        };
        let fill = if typ == OrdType::Limit {
            // The limit order arrives when the price is at the trigger: it takes if it crosses
            // there, otherwise it rests for the next candles.
            let at_trigger = Bar {
                close: bar.clamp(price),
                ..*bar
            };
            self.rules
                .fill
                .on_arrival(&resting, algo.tif, &at_trigger, step)
        } else {
            self.rules.fill.taker_at(&resting, price, bar, step)
        };
        match fill {
            Ok(Some(f)) => self.apply_fill(key, order_id, f, now, "TRADE"),
            Ok(None) => {}
            Err(_) => self.finish_order(key, order_id, OrderStatus::Expired, now),
        }
        if algo.tif == TimeInForce::Ioc {
            self.finish_order(key, order_id, OrderStatus::Expired, now);
        }
    }

    // ---------------------------------------------------------------- market moves

    /// Close one more candle on every symbol: fill resting orders, trigger conditional orders
    /// (stops before take-profits, the conservative intra-candle rule), charge the funding
    /// times the candle's close reached, liquidate, and queue market events. Returns how many
    /// symbols moved.
    pub fn step(&mut self, now: i64) -> usize {
        self.step_symbols(now, None)
    }

    /// [`Engine::step`] restricted to `only` (every symbol when `None`); symbols not named keep
    /// their candle, price and orders as they are.
    pub fn step_symbols(&mut self, now: i64, only: Option<&[String]>) -> usize {
        let symbols: Vec<String> = self
            .market
            .symbols
            .keys()
            .filter(|s| only.is_none_or(|o| o.contains(s)))
            .cloned()
            .collect();
        let mut moved = 0;
        for s in symbols {
            let Some(candle) = self.market.symbols.get_mut(&s).and_then(|m| m.advance()) else {
                continue;
            };
            moved += 1;
            let bar = Bar::from(&candle);
            self.on_bar(&s, &bar, now);
            self.settle_funding(&s, now);
            self.queue_market_events(&s, now);
        }
        self.liquidations(now);
        moved
    }

    fn on_bar(&mut self, symbol: &str, bar: &Bar, now: i64) {
        let step = self
            .market
            .get(symbol)
            .map_or(Decimal::ZERO, |m| m.spec.step_size);
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        for key in keys {
            // Resting orders placed before this candle.
            let ids: Vec<u64> = self.accounts.get(&key).map_or_else(Vec::new, |acc| {
                acc.open_orders
                    .iter()
                    .filter(|id| acc.orders.get(id).is_some_and(|o| o.symbol == symbol))
                    .copied()
                    .collect()
            });
            for id in ids {
                let Some(o) = self.accounts.get(&key).and_then(|a| a.orders.get(&id)) else {
                    continue;
                };
                let resting = RestingOrder {
                    side: o.side,
                    limit_price: (o.typ == OrdType::Limit).then_some(o.price),
                    remaining: o.remaining(),
                };
                if let Ok(Some(f)) = self.rules.fill.on_bar(&resting, bar, step) {
                    self.apply_fill(&key, id, f, now, "TRADE");
                }
            }
            // Conditional orders: stops first, then take-profits, then trailing stops.
            let mut algos: Vec<(u8, u64)> = self.accounts.get(&key).map_or_else(Vec::new, |acc| {
                acc.open_algos
                    .iter()
                    .filter_map(|id| acc.algos.get(id))
                    .filter(|a| a.symbol == symbol && a.status == AlgoStatus::New)
                    .map(|a| {
                        let rank = match a.typ {
                            OrdType::Stop | OrdType::StopMarket => 0,
                            OrdType::TrailingStopMarket => 1,
                            _ => 2,
                        };
                        (rank, a.algo_id)
                    })
                    .collect()
            });
            algos.sort_unstable();
            for (_, id) in algos {
                let fired = {
                    let Some(a) = self
                        .accounts
                        .get_mut(&key)
                        .and_then(|acc| acc.algos.get_mut(&id))
                    else {
                        continue;
                    };
                    if a.status != AlgoStatus::New {
                        continue;
                    }
                    match (a.typ.trigger_kind(), a.trailing.as_mut()) {
                        (Some(kind), _) => {
                            qt_matching::fires_in_bar(kind, a.side, a.trigger_price, bar)
                        }
                        (None, Some(t)) => t.observe_bar(bar),
                        (None, None) => None,
                    }
                };
                if let Some(px) = fired {
                    self.trigger_algo(&key, id, px, bar, now);
                }
            }
        }
    }

    /// Charges every funding time of `symbol` after its funding cursor up to its market time
    /// (a candle's close is the market's "now"): each position open then pays (or earns)
    /// `quantity × mark × rate` — a long pays a positive rate, a short earns it — rounded to
    /// 8 decimals, from the wallet, with an income entry (`FUNDING_FEE`, at server time `now`)
    /// and an `ACCOUNT_UPDATE` with reason `FUNDING_FEE` carrying only the balance (`bc` is the
    /// fee), as Binance sends it for a cross-margin position.
    fn settle_funding(&mut self, symbol: &str, now: i64) {
        let Some(market_now) = self
            .market
            .get(symbol)
            .map(crate::market::SymbolMarket::now_ms)
        else {
            return;
        };
        let from = self
            .funding_cursor
            .get(symbol)
            .copied()
            .unwrap_or(market_now);
        if market_now <= from {
            return;
        }
        self.funding_cursor.insert(symbol.to_string(), market_now);
        let due: Vec<(i64, Decimal)> = self
            .rules
            .funding
            .schedule(symbol)
            .between(from, market_now)
            .collect();
        if due.is_empty() {
            return;
        }
        let mark = self.mark(symbol);
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        for (_, rate) in due {
            for key in &keys {
                let Some(acc) = self.accounts.get_mut(key) else {
                    continue;
                };
                let qty = acc.positions.get(symbol).map_or(Decimal::ZERO, |p| p.qty);
                let amount = -(qty * mark * rate).round_dp(8);
                if amount.is_zero() {
                    continue;
                }
                acc.wallet += amount;
                acc.update_time = now;
                acc.income.push(Income {
                    tran_id: self.next_tran_id,
                    symbol: symbol.to_string(),
                    income_type: "FUNDING_FEE".into(),
                    income: amount,
                    time: now,
                    trade_id: 0,
                });
                self.next_tran_id += 1;
                if acc.income.len() > MAX_INCOME {
                    let n = acc.income.len() - MAX_INCOME;
                    acc.income.drain(..n);
                }
                let wallet = d(acc.wallet);
                self.push_user(
                    key,
                    "ACCOUNT_UPDATE",
                    json!({"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
                        "m": "FUNDING_FEE",
                        "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": d(amount)}],
                        "P": []}}),
                );
            }
        }
    }

    /// The next funding time of `symbol` after its market time, with the rate it will be
    /// charged at (`premiumIndex`'s `nextFundingTime` and `lastFundingRate`, the mark price
    /// stream's `T` and `r`).
    pub fn next_funding(&self, symbol: &str) -> Option<(i64, Decimal)> {
        let m = self.market.get(symbol)?;
        Some(self.rules.funding.schedule(symbol).next_after(m.now_ms()))
    }

    /// `GET /fapi/v1/fundingRate` for one symbol: the funding times from the first candle up
    /// to the market time, each with the rate charged and the mark (the last close at or
    /// before it); in `[start, end]`, the first `limit` from `start`, else the last `limit`.
    pub fn funding_rate_history(
        &self,
        symbol: &str,
        start: Option<i64>,
        end: Option<i64>,
        limit: usize,
    ) -> Option<Vec<Value>> {
        let m = self.market.get(symbol)?;
        let closed = m.closed();
        let first = closed.first()?.open_time;
        let until = end.map_or(m.now_ms(), |e| e.min(m.now_ms()));
        let after = start.map_or(first, |s| s.max(first)).saturating_sub(1);
        let schedule = self.rules.funding.schedule(symbol);
        let row = |(t, rate): (i64, Decimal)| {
            let i = closed.partition_point(|c| c.open_time + m.interval_ms <= t);
            let mark = i
                .checked_sub(1)
                .and_then(|i| closed.get(i))
                .map_or(closed[0].open, |c| c.close);
            json!({"symbol": symbol, "fundingRate": format!("{:.8}", rate),
                "fundingTime": t, "markPrice": format!("{:.8}", mark)})
        };
        let times = schedule.between(after, until);
        Some(if start.is_some() {
            times.take(limit).map(row).collect()
        } else {
            let mut last: std::collections::VecDeque<(i64, Decimal)> =
                std::collections::VecDeque::with_capacity(limit.min(1024));
            for r in times {
                if last.len() == limit {
                    last.pop_front();
                }
                last.push_back(r);
            }
            last.into_iter().map(row).collect()
        })
    }

    /// `GET /fapi/v1/income`: the account's wallet changes, oldest first, filtered by
    /// `symbol`, `incomeType`, `startTime`, `endTime` (the last 7 days when neither time is
    /// sent); the first `limit` (default 100, at most 1000) from `startTime`, else the last.
    pub fn income(&self, key: &str, p: &Params, now: i64) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.get("symbol");
        if let Some(s) = symbol {
            self.spec(s)?;
        }
        let kind = p.get("incomeType");
        let limit = p.int("limit")?.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::invalid("limit"));
        }
        let limit = usize::try_from(limit).unwrap_or(100);
        let (start, end) = (p.int("startTime")?, p.int("endTime")?);
        let (lo, hi) = match (start, end) {
            (None, None) => (now.saturating_sub(INCOME_DEFAULT_WINDOW_MS), i64::MAX),
            (s, e) => (s.unwrap_or(i64::MIN), e.unwrap_or(i64::MAX)),
        };
        let rows = acc.income.iter().filter(|i| {
            symbol.is_none_or(|s| i.symbol == s)
                && kind.is_none_or(|k| i.income_type == k)
                && i.time >= lo
                && i.time <= hi
        });
        let mut rows: Vec<&Income> = rows.collect();
        if start.is_some() {
            rows.truncate(limit);
        } else if rows.len() > limit {
            rows.drain(..rows.len() - limit);
        }
        Ok(Value::Array(
            rows.into_iter()
                .map(|i| {
                    json!({"symbol": i.symbol, "incomeType": i.income_type,
                        "income": format!("{:.8}", i.income), "asset": "USDT",
                        "info": i.income_type, "time": i.time, "tranId": i.tran_id,
                        "tradeId": if i.trade_id == 0 { String::new() } else { i.trade_id.to_string() }})
                })
                .collect(),
        ))
    }

    /// Set a symbol's mark price (test control): MARK_PRICE conditional orders are checked
    /// against it and fill at it; liquidations are checked.
    pub fn set_mark(&mut self, symbol: &str, price: Decimal, now: i64) -> Result<(), ApiError> {
        let m = self
            .market
            .symbols
            .get_mut(symbol)
            .ok_or_else(ApiError::invalid_symbol)?;
        if price <= Decimal::ZERO || price > MAX_PRICE {
            return Err(ApiError::invalid("price"));
        }
        m.mark_override = Some(price);
        let volume = m.current().map_or(Decimal::ZERO, |c| c.volume);
        let bar = bar_at(price, volume);
        let keys: Vec<String> = self.accounts.keys().cloned().collect();
        for key in keys {
            let ids: Vec<(u8, u64)> = self.accounts.get(&key).map_or_else(Vec::new, |acc| {
                acc.open_algos
                    .iter()
                    .filter_map(|id| acc.algos.get(id))
                    .filter(|a| {
                        a.symbol == symbol
                            && a.working_type == "MARK_PRICE"
                            && a.status == AlgoStatus::New
                    })
                    .map(|a| {
                        (
                            u8::from(a.typ.trigger_kind() != Some(TriggerKind::Stop)),
                            a.algo_id,
                        )
                    })
                    .collect()
            });
            let mut ids = ids;
            ids.sort_unstable();
            for (_, id) in ids {
                let fired = {
                    let Some(a) = self
                        .accounts
                        .get_mut(&key)
                        .and_then(|acc| acc.algos.get_mut(&id))
                    else {
                        continue;
                    };
                    match (a.typ.trigger_kind(), a.trailing.as_mut()) {
                        (Some(kind), _) => qt_matching::fires(kind, a.side, a.trigger_price, price)
                            .then_some(price),
                        (None, Some(t)) => t.observe(price),
                        (None, None) => None,
                    }
                };
                if let Some(px) = fired {
                    self.trigger_algo(&key, id, px, &bar, now);
                }
            }
        }
        self.queue_market_events(symbol, now);
        self.liquidations(now);
        Ok(())
    }

    /// Liquidate every account whose margin balance fell to its maintenance margin.
    fn liquidations(&mut self, now: i64) {
        let doomed: Vec<String> = self
            .accounts
            .iter()
            .filter(|(_, acc)| {
                let (upnl, _, _, maint) = self.margins(acc);
                maint > Decimal::ZERO && acc.wallet + upnl <= maint
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            tracing::info!(account = %key, "liquidating account");
            let open: Vec<u64> = self
                .accounts
                .get(&key)
                .map_or_else(Vec::new, |a| a.open_orders.iter().copied().collect());
            for id in open {
                self.finish_order(&key, id, OrderStatus::Canceled, now);
            }
            let positions: Vec<(String, Position)> =
                self.accounts.get(&key).map_or_else(Vec::new, |a| {
                    a.positions
                        .iter()
                        .filter(|(_, p)| !p.is_flat())
                        .map(|(s, p)| (s.clone(), *p))
                        .collect()
                });
            for (symbol, pos) in positions {
                let side = if pos.qty > Decimal::ZERO {
                    Side::Sell
                } else {
                    Side::Buy
                };
                let mark = self.mark(&symbol);
                let order_id = self.next_order_id;
                self.next_order_id += 1;
                let order = Order {
                    order_id,
                    symbol: symbol.clone(),
                    client_order_id: format!("autoclose-{now}"),
                    side,
                    typ: OrdType::Liquidation,
                    orig_type: OrdType::Liquidation,
                    tif: TimeInForce::Ioc,
                    price: mark,
                    orig_qty: pos.qty.abs(),
                    executed_qty: Decimal::ZERO,
                    cum_quote: Decimal::ZERO,
                    status: OrderStatus::New,
                    reduce_only: true,
                    close_position: false,
                    stop_price: Decimal::ZERO,
                    working_type: "MARK_PRICE".into(),
                    time: now,
                    update_time: now,
                    algo_id: None,
                };
                if let Some(acc) = self.accounts.get_mut(&key) {
                    acc.client_ids.insert(
                        format!("{}|{}", order.symbol, order.client_order_id),
                        order_id,
                    );
                    acc.open_orders.insert(order_id);
                    acc.orders.insert(order_id, order);
                }
                let fill = Fill {
                    side,
                    price: mark,
                    qty: pos.qty.abs(),
                    fee: Decimal::ZERO,
                    liquidity: Liquidity::Taker,
                };
                self.apply_fill(&key, order_id, fill, now, "CALCULATED");
            }
            if let Some(acc) = self.accounts.get_mut(&key)
                && acc.wallet < Decimal::ZERO
            {
                acc.wallet = Decimal::ZERO; // the insurance fund takes the rest
            }
        }
    }

    fn queue_market_events(&mut self, symbol: &str, now: i64) {
        let Some(m) = self.market.get(symbol) else {
            return;
        };
        let Some(c) = m.current().copied() else {
            return;
        };
        let lower = symbol.to_ascii_lowercase();
        let interval_ms = m.interval_ms;
        let mark = m.mark_price();
        let tick = m.spec.tick_size;
        let mut intervals = vec![interval_ms];
        for extra in [900_000i64, 3_600_000, 14_400_000] {
            if extra > interval_ms && extra % interval_ms == 0 {
                intervals.push(extra);
            }
        }
        let mut out = Vec::new();
        for iv in intervals {
            let Ok(name) = qt_candles::interval_name(iv) else {
                continue;
            };
            let k = if iv == interval_ms {
                Some(c)
            } else if (c.open_time + interval_ms) % iv == 0 {
                self.market
                    .klines(symbol, iv, None, None, 1)
                    .and_then(|v| v.last().copied())
                    .filter(|k| k.open_time + iv == c.open_time + interval_ms)
            } else {
                None
            };
            if let Some(k) = k {
                out.push(MarketEvent {
                    stream: format!("{lower}@kline_{name}"),
                    payload: json!({"e": "kline", "E": now, "s": symbol, "k": {
                        "t": k.open_time, "T": k.open_time + iv - 1, "s": symbol, "i": name,
                        "f": 0, "L": 0, "o": d(k.open), "c": d(k.close), "h": d(k.high), "l": d(k.low),
                        "v": d(k.volume), "n": k.trades, "x": true, "q": d(k.quote_volume), "V": "0", "Q": "0", "B": "0"}}),
                });
            }
        }
        let (next_time, next_rate) = self
            .next_funding(symbol)
            .unwrap_or((0, self.rules.funding.default_rate));
        let mark_payload = json!({"e": "markPriceUpdate", "E": now, "s": symbol, "p": d(mark),
            "ap": d(mark), "i": d(mark), "P": d(mark), "r": format!("{:.8}", next_rate), "T": next_time});
        out.push(MarketEvent {
            stream: format!("{lower}@markPrice"),
            payload: mark_payload.clone(),
        });
        out.push(MarketEvent {
            stream: format!("{lower}@markPrice@1s"),
            payload: mark_payload,
        });
        out.push(MarketEvent {
            stream: format!("{lower}@bookTicker"),
            payload: json!({"e": "bookTicker", "u": now, "E": now, "T": now, "s": symbol,
                "b": d(c.close - tick), "B": "1", "a": d(c.close + tick), "A": "1"}),
        });
        out.push(MarketEvent {
            stream: format!("{lower}@aggTrade"),
            payload: json!({"e": "aggTrade", "E": now, "s": symbol, "a": now, "p": d(c.close),
                "q": d(c.volume), "nq": d(c.volume), "f": 0, "l": 0, "T": now, "m": false}),
        });
        if let Some(t) = self.ticker_24h(symbol, now) {
            let mut p = json!({"e": "24hrTicker", "E": now, "s": symbol});
            if let (Some(obj), Some(src)) = (p.as_object_mut(), t.as_object()) {
                for (k, short) in [
                    ("priceChange", "p"),
                    ("priceChangePercent", "P"),
                    ("weightedAvgPrice", "w"),
                    ("lastPrice", "c"),
                    ("openPrice", "o"),
                    ("highPrice", "h"),
                    ("lowPrice", "l"),
                    ("volume", "v"),
                    ("quoteVolume", "q"),
                ] {
                    obj.insert(short.into(), src.get(k).cloned().unwrap_or(Value::Null));
                }
            }
            out.push(MarketEvent {
                stream: format!("{lower}@ticker"),
                payload: p,
            });
        }
        self.market_events.extend(out);
    }

    /// `GET /fapi/v1/ticker/24hr` for one symbol.
    pub fn ticker_24h(&self, symbol: &str, now: i64) -> Option<Value> {
        let m = self.market.get(symbol)?;
        let closed = m.closed();
        let per_day = usize::try_from(86_400_000 / m.interval_ms.max(1))
            .unwrap_or(1)
            .max(1);
        let window = &closed[closed.len().saturating_sub(per_day)..];
        let first = window.first()?;
        let last = window.last()?;
        let high = window.iter().map(|c| c.high).max().unwrap_or_default();
        let low = window.iter().map(|c| c.low).min().unwrap_or_default();
        let volume: Decimal = window.iter().map(|c| c.volume).sum();
        let quote: Decimal = window.iter().map(|c| c.volume * c.close).sum();
        let change = last.close - first.open;
        let pct = if first.open.is_zero() {
            Decimal::ZERO
        } else {
            (change / first.open * Decimal::ONE_HUNDRED).round_dp(3)
        };
        let wavg = if volume.is_zero() {
            last.close
        } else {
            (quote / volume).round_dp(8)
        };
        Some(
            json!({"symbol": symbol, "priceChange": d(change), "priceChangePercent": d(pct),
            "weightedAvgPrice": d(wavg), "lastPrice": d(last.close), "lastQty": "0",
            "openPrice": d(first.open), "highPrice": d(high), "lowPrice": d(low),
            "volume": d(volume), "quoteVolume": d(quote.round_dp(8)), "openTime": first.open_time,
            "closeTime": m.now_ms() - 1, "firstId": 0, "lastId": 0, "count": 0, "E": now}),
        )
    }

    // ---------------------------------------------------------------- account views

    pub fn set_leverage(&mut self, key: &str, p: &Params) -> Result<Value, ApiError> {
        let symbol = p.required("symbol")?.to_string();
        let spec = self.spec(&symbol)?;
        let lev = p
            .int("leverage")?
            .ok_or_else(|| ApiError::mandatory("leverage"))?;
        if !(1..=i64::from(spec.max_leverage)).contains(&lev) {
            return Err(ApiError::bad(-4028, format!("Leverage {lev} is not valid")));
        }
        let lev = u32::try_from(lev).unwrap_or(1);
        self.account_mut(key)?.leverage.insert(symbol.clone(), lev);
        Ok(json!({"leverage": lev, "maxNotionalValue": "1000000000", "symbol": symbol}))
    }

    fn position_json(&self, acc: &Account, symbol: &str, v2: bool, now: i64) -> Value {
        let p = acc.positions.get(symbol).copied().unwrap_or_default();
        let mark = self.mark(symbol);
        let lev = self.leverage(acc, symbol);
        let notional = p.qty * mark;
        let im = p.notional(mark) / Decimal::from(lev);
        let mut v = json!({"symbol": symbol, "positionSide": "BOTH", "positionAmt": d(p.qty),
            "entryPrice": d(p.entry_price), "breakEvenPrice": d(p.entry_price), "markPrice": d(mark),
            "unRealizedProfit": d(p.unrealized_pnl(mark).round_dp(8)), "liquidationPrice": d(self.liquidation_price(acc, symbol)),
            "isolatedMargin": "0", "notional": d(notional.round_dp(8)), "marginAsset": "USDT",
            "isolatedWallet": "0", "initialMargin": d(im.round_dp(8)),
            "maintMargin": d((p.notional(mark) * self.rules.maint_margin_rate).round_dp(8)),
            "positionInitialMargin": d(im.round_dp(8)), "openOrderInitialMargin": "0", "adl": 0,
            "bidNotional": "0", "askNotional": "0", "updateTime": now});
        if v2 && let Some(o) = v.as_object_mut() {
            o.insert("leverage".into(), json!(lev.to_string()));
            o.insert("marginType".into(), json!("cross"));
            o.insert("isAutoAddMargin".into(), json!("false"));
            o.insert("maxNotionalValue".into(), json!("1000000000"));
        }
        v
    }

    /// Price at which the account would be liquidated if only `symbol` moved (0 when flat).
    fn liquidation_price(&self, acc: &Account, symbol: &str) -> Decimal {
        let Some(p) = acc.positions.get(symbol).filter(|p| !p.is_flat()) else {
            return Decimal::ZERO;
        };
        // wallet + other upnl + q (P - e) = |q| P mmr  →  P = (q e - W') / (q - |q| mmr)
        let (upnl, _, _, _) = self.margins(acc);
        let mark = self.mark(symbol);
        let other = upnl - p.unrealized_pnl(mark);
        let w = acc.wallet + other;
        let denom = p.qty - p.qty.abs() * self.rules.maint_margin_rate;
        if denom.is_zero() {
            return Decimal::ZERO;
        }
        ((p.qty * p.entry_price - w) / denom)
            .max(Decimal::ZERO)
            .round_dp(8)
    }

    /// `GET /fapi/v2|v3/positionRisk`.
    pub fn position_risk(
        &self,
        key: &str,
        p: &Params,
        v2: bool,
        now: i64,
    ) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let symbol = p.get("symbol");
        if let Some(s) = symbol {
            self.spec(s)?;
        }
        let mut out = Vec::new();
        for s in self.market.symbols.keys() {
            if symbol.is_some_and(|x| x != s) {
                continue;
            }
            let has = acc.positions.get(s).is_some_and(|p| !p.is_flat())
                || acc
                    .open_orders
                    .iter()
                    .any(|id| acc.orders.get(id).is_some_and(|o| &o.symbol == s));
            if v2 || has {
                out.push(self.position_json(acc, s, v2, now));
            }
        }
        Ok(Value::Array(out))
    }

    /// `GET /fapi/v2|v3/balance`.
    pub fn balance(&self, key: &str, now: i64) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let (upnl, _, _, _) = self.margins(acc);
        let avail = self.available(acc).max(Decimal::ZERO).round_dp(8);
        Ok(
            json!([{"accountAlias": "SimAccount", "asset": "USDT", "balance": d(acc.wallet),
            "crossWalletBalance": d(acc.wallet), "crossUnPnl": d(upnl.round_dp(8)),
            "availableBalance": d(avail), "maxWithdrawAmount": d(avail), "marginAvailable": true,
            "updateTime": now}]),
        )
    }

    /// `GET /fapi/v2|v3/account`.
    pub fn account_info(&self, key: &str, v2: bool, now: i64) -> Result<Value, ApiError> {
        let acc = self.account(key)?;
        let (upnl, pos_im, ord_im, maint) = self.margins(acc);
        let avail = self.available(acc).max(Decimal::ZERO).round_dp(8);
        let r = |x: Decimal| d(x.round_dp(8));
        let positions: Vec<Value> = self
            .market
            .symbols
            .keys()
            .filter(|s| v2 || acc.positions.get(*s).is_some_and(|p| !p.is_flat()))
            .map(|s| self.position_json(acc, s, v2, now))
            .collect();
        Ok(json!({
            "feeTier": 0, "canTrade": true, "canDeposit": true, "canWithdraw": true, "updateTime": 0,
            "multiAssetsMargin": false,
            "totalInitialMargin": r(pos_im + ord_im), "totalMaintMargin": r(maint),
            "totalWalletBalance": r(acc.wallet), "totalUnrealizedProfit": r(upnl),
            "totalMarginBalance": r(acc.wallet + upnl), "totalPositionInitialMargin": r(pos_im),
            "totalOpenOrderInitialMargin": r(ord_im), "totalCrossWalletBalance": r(acc.wallet),
            "totalCrossUnPnl": r(upnl), "availableBalance": d(avail), "maxWithdrawAmount": d(avail),
            "assets": [{"asset": "USDT", "walletBalance": r(acc.wallet), "unrealizedProfit": r(upnl),
                "marginBalance": r(acc.wallet + upnl), "maintMargin": r(maint),
                "initialMargin": r(pos_im + ord_im), "positionInitialMargin": r(pos_im),
                "openOrderInitialMargin": r(ord_im), "crossWalletBalance": r(acc.wallet),
                "crossUnPnl": r(upnl), "availableBalance": d(avail), "maxWithdrawAmount": d(avail),
                "marginAvailable": true, "updateTime": now}],
            "positions": positions,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::SimConfig;
    use proptest::prelude::*;

    fn engine() -> Engine {
        let cfg = SimConfig {
            warmup_candles: 50,
            ..SimConfig::default()
        };
        let rules = Rules {
            fill: cfg.fill_model,
            initial_balance: cfg.initial_balance,
            default_leverage: cfg.default_leverage,
            maint_margin_rate: cfg.maint_margin_rate,
            funding: FundingRates::flat(cfg.funding.default_rate, cfg.funding.interval_hours),
        };
        Engine::new(rules, Market::build(&cfg).unwrap(), &["k".to_string()])
    }

    const NAMES: &[&str] = &[
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "timeInForce",
        "reduceOnly",
        "closePosition",
        "newClientOrderId",
        "origClientOrderId",
        "orderId",
        "algoType",
        "triggerPrice",
        "workingType",
        "callbackRate",
        "activatePrice",
        "clientAlgoId",
        "algoId",
        "leverage",
        "limit",
        "positionSide",
        "newOrderRespType",
        "incomeType",
        "startTime",
        "endTime",
    ];
    const VALUES: &[&str] = &[
        "BTCUSDT",
        "ETHUSDT",
        "BUY",
        "SELL",
        "MARKET",
        "LIMIT",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
        "CONDITIONAL",
        "GTC",
        "IOC",
        "FOK",
        "GTX",
        "true",
        "false",
        "MARK_PRICE",
        "RESULT",
        "FUNDING_FEE",
        "0",
        "-1",
        "0.001",
        "0.01",
        "1",
        "5",
        "125",
        "1000",
        "30000",
        "29000.5",
        "31000",
        "2000",
        "9999999",
        "10000001",
        "79228162514264337593543950335",
        "0.0000000000000000000000000001",
        "c1",
        "c2",
        "BOTH",
        "LONG",
        "1000001",
        "2000001",
        "9223372036854775807",
        "-9223372036854775808",
    ];

    fn arb_params() -> impl Strategy<Value = String> {
        let pair = (
            prop_oneof![3 => proptest::sample::select(NAMES).prop_map(str::to_string), 1 => "[a-zA-Z]{0,8}"],
            prop_oneof![4 => proptest::sample::select(VALUES).prop_map(str::to_string), 1 => "\\PC{0,12}"],
        );
        proptest::collection::vec(pair, 0..10).prop_map(|v| {
            v.into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    fn check_invariants(e: &Engine) -> Result<(), TestCaseError> {
        for acc in e.accounts.values() {
            for (id, o) in &acc.orders {
                prop_assert_eq!(
                    o.status.is_open(),
                    acc.open_orders.contains(id),
                    "open index of {}",
                    id
                );
                prop_assert!(o.executed_qty <= o.orig_qty);
            }
            for t in &acc.trades {
                prop_assert!(
                    t.commission > Decimal::ZERO,
                    "fee not charged on trade {}",
                    t.id
                );
                prop_assert!(t.price > Decimal::ZERO && t.qty > Decimal::ZERO);
            }
            for id in &acc.open_algos {
                prop_assert!(
                    acc.algos.get(id).is_some_and(|a| matches!(
                        a.status,
                        AlgoStatus::New | AlgoStatus::Triggered
                    ))
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_requests_never_panic_and_keep_the_books_consistent(
            ops in proptest::collection::vec((0u8..21, arb_params()), 1..40)
        ) {
            let mut e = engine();
            let mut now = 1_700_000_000_000i64;
            for (op, q) in ops {
                now += 1_000;
                let p = Params::new(&q, "");
                let r: Result<Value, ApiError> = match op {
                    0..=3 => e.new_order("k", &p, now),
                    4 => e.query_order("k", &p),
                    5 => e.cancel_order("k", &p, now),
                    6 => e.open_orders("k", &p),
                    7 => e.all_orders("k", &p),
                    8 => e.cancel_all("k", &p, now),
                    9 => e.user_trades("k", &p),
                    10 | 11 => e.new_algo("k", &p, now),
                    12 => e.cancel_algo("k", &p, now),
                    13 => e.query_algo("k", &p),
                    14 => e.set_leverage("k", &p),
                    15 => e.position_risk("k", &p, true, now),
                    16 => e.account_info("k", false, now),
                    17 => { e.step(now); Ok(Value::Null) }
                    18 => {
                        let px = p.decimal("price").ok().flatten().unwrap_or(Decimal::ONE);
                        e.set_mark(p.get("symbol").unwrap_or("BTCUSDT"), px, now).map(|()| Value::Null)
                    }
                    19 => e.income("k", &p, now),
                    _ => e.new_order("nobody", &p, now),
                };
                if let Err(err) = r {
                    prop_assert!(err.code < 0, "{:?}", err);
                    prop_assert!(err.status == 400 || err.status == 401, "{:?}", err);
                }
                e.user_events.clear();
                e.market_events.clear();
                check_invariants(&e)?;
            }
        }
    }

    #[test]
    fn limit_order_then_candles_fill_and_fee_and_pnl_reach_the_wallet() {
        let mut e = engine();
        let last = e.market.get("BTCUSDT").unwrap().last_price();
        let p = Params::new(
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&newOrderRespType=RESULT",
            "",
        );
        let r = e.new_order("k", &p, 1).unwrap();
        assert_eq!(r["status"], "FILLED");
        let acc = &e.accounts["k"];
        let t = &acc.trades[0];
        assert!(t.price >= last);
        assert_eq!(acc.wallet, Decimal::new(10_000, 0) - t.commission);
        let p = Params::new(
            "symbol=BTCUSDT&side=SELL&type=MARKET&quantity=0.01&reduceOnly=true",
            "",
        );
        e.new_order("k", &p, 2).unwrap();
        let acc = &e.accounts["k"];
        let (a, b) = (&acc.trades[0], &acc.trades[1]);
        assert_eq!(b.realized_pnl, (b.price - a.price) * Decimal::new(1, 2));
        assert_eq!(
            acc.wallet,
            Decimal::new(10_000, 0) - a.commission - b.commission + b.realized_pnl
        );
        assert!(acc.positions["BTCUSDT"].is_flat());
    }
}
