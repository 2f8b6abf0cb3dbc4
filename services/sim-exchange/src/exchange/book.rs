//! The exchange's records: order types and statuses, plain and conditional (algo) orders,
//! trades, income entries, accounts and listenKeys, as the exchange keeps them (and as the
//! snapshot stores them). Their wire shapes are in `views`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use qt_events::{Decimal, Side};
use qt_matching::{Position, TimeInForce, TrailingStop, TriggerKind};
use serde::{Deserialize, Serialize};

use super::sides::{PosSide, position_key};

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
    pub fn is_conditional(self) -> bool {
        matches!(
            self,
            OrdType::Stop
                | OrdType::StopMarket
                | OrdType::TakeProfit
                | OrdType::TakeProfitMarket
                | OrdType::TrailingStopMarket
        )
    }
    pub fn trigger_kind(self) -> Option<TriggerKind> {
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
    /// The position side it trades (`BOTH` in one-way mode).
    #[serde(default)]
    pub position_side: PosSide,
}

impl Order {
    pub fn avg_price(&self) -> Decimal {
        if self.executed_qty.is_zero() {
            Decimal::ZERO
        } else {
            (self.cum_quote / self.executed_qty).round_dp(8)
        }
    }
    pub fn remaining(&self) -> Decimal {
        self.orig_qty - self.executed_qty
    }
    /// Whether it may only reduce its position: reduce-only, or closing a hedge-mode side.
    pub fn reduces(&self) -> bool {
        self.reduce_only || self.position_side.closes(self.side)
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
    /// The position side it trades (`BOTH` in one-way mode).
    #[serde(default)]
    pub position_side: PosSide,
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
    #[serde(default)]
    pub position_side: PosSide,
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
    /// Hedge mode (`dualSidePosition`): set by `POST /fapi/v1/positionSide/dual`. In hedge
    /// mode the account's positions are LONG and SHORT legs per symbol (see `sides`).
    #[serde(default)]
    pub dual_side_position: bool,
    /// Multi-assets margin mode, set by `POST /fapi/v1/multiAssetsMargin` (reported only: the
    /// wallet holds USDT alone, so margin is the same in both modes).
    #[serde(default)]
    pub multi_assets_margin: bool,
}

impl Account {
    /// The position of `symbol` on `side` (flat when there is none).
    pub fn position(&self, symbol: &str, side: PosSide) -> Position {
        self.positions
            .get(&position_key(symbol, side))
            .copied()
            .unwrap_or_default()
    }

    /// The sides of `symbol` with their positions, flat ones included, for the account's mode.
    pub fn legs_of<'a>(
        &'a self,
        symbol: &'a str,
    ) -> impl Iterator<Item = (PosSide, Position)> + 'a {
        super::sides::sides_of_mode(self.dual_side_position)
            .iter()
            .map(move |s| (*s, self.position(symbol, *s)))
    }

    /// The ids of the open orders of `symbol`, in id order.
    pub fn open_orders_of<'a>(&'a self, symbol: &'a str) -> impl Iterator<Item = u64> + 'a {
        self.open_orders
            .iter()
            .filter(move |id| self.orders.get(id).is_some_and(|o| o.symbol == symbol))
            .copied()
    }

    /// The open algo orders of `symbol`, in id order.
    pub fn open_algos_of<'a>(
        &'a self,
        symbol: &'a str,
    ) -> impl Iterator<Item = &'a AlgoOrder> + 'a {
        self.open_algos
            .iter()
            .filter_map(|id| self.algos.get(id))
            .filter(move |a| a.symbol == symbol)
    }
}

/// A listenKey: owner and expiry on the server clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenKey {
    pub account: String,
    pub expires_at: i64,
}
