//! The exchange: accounts, orders, conditional (algo) orders, positions, fills through
//! `qt-matching`, funding at each funding time of the replay clock, liquidation, the income
//! history, listenKeys, and the user-data and market events all of these produce.
//!
//! Its API is small: place and cancel orders and algo orders, set leverage, move the market
//! (a candle, a mark price), listenKeys, and reads for the views. It knows nothing of HTTP or
//! of request parameters (requests are parsed before they reach it); everything here is
//! synchronous and deterministic given the market and the time passed in. The app holds it
//! behind one lock, calls in, then publishes the events the call queued.
//!
//! - `book.rs`: the records (orders, algo orders, trades, income, accounts).
//! - `orders.rs`, `algos.rs`: placing, finding, cancelling, triggering.
//! - `matching.rs`: fills, candles and mark moves.
//! - `margin.rs`: margins, liquidation price, liquidations.
//! - `funding.rs`: funding fees and the funding-rate history.
//! - `market_events.rs`: the market-stream messages of a closed candle.
//! - `sides.rs`: position sides and the account's position mode (one-way, hedge).
//! - `events.rs`: the JSON of the user-data and market-stream events.

mod algos;
pub mod book;
mod events;
mod funding;
mod margin;
mod market_events;
mod matching;
mod orders;
pub mod sides;

use std::collections::BTreeMap;

use qt_events::Decimal;
use qt_matching::FillModel;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use algos::{AlgoRef, AlgoTicket, Trailing};
use book::{Account, ListenKey, Order};
pub use margin::{AutoClose, Margins};
pub use orders::{OrderRef, OrderTicket};

use crate::error::ApiError;
use crate::funding::FundingRates;
use crate::market::{Market, MarketCursor};

const MAX_CLOSED_ORDERS: usize = 20_000;
/// `MAX_NUM_ORDERS` and `MAX_NUM_ALGO_ORDERS` of exchangeInfo, per symbol.
pub const MAX_OPEN_ORDERS: usize = 200;
pub const MAX_OPEN_ALGOS: usize = 10;
/// `PRICE_FILTER.maxPrice` of every symbol (also bounds notional arithmetic).
pub const MAX_PRICE: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);
const MAX_TRADES: usize = 20_000;
/// Income entries kept per account.
pub const MAX_INCOME: usize = 20_000;

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
    /// [`Exchange::funding_settled_until`]). Absent in snapshots written before funding
    /// existed.
    #[serde(default)]
    pub funding_cursor: BTreeMap<String, i64>,
    #[serde(default)]
    pub next_tran_id: u64,
}

/// Exchange parameters that do not change at run time.
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
pub struct Exchange {
    rules: Rules,
    market: Market,
    accounts: BTreeMap<String, Account>,
    next_order_id: u64,
    next_algo_id: u64,
    next_trade_id: u64,
    listen_keys: BTreeMap<String, ListenKey>,
    /// Per symbol, the market time up to which funding has been settled: every funding time
    /// at or before it has been charged (or fell before the simulation started). Saved in
    /// the snapshot with the wallets, so a restart neither charges a time twice nor skips one.
    funding_cursor: BTreeMap<String, i64>,
    next_tran_id: u64,
    user_events: Vec<UserEvent>,
    market_events: Vec<MarketEvent>,
}

impl Exchange {
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

    /// The events queued since the last call: user data, then market streams.
    pub fn take_events(&mut self) -> (Vec<UserEvent>, Vec<MarketEvent>) {
        (
            std::mem::take(&mut self.user_events),
            std::mem::take(&mut self.market_events),
        )
    }

    // ------------------------------------------------------------------------- reads

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn market(&self) -> &Market {
        &self.market
    }

    /// Every account by API key.
    pub fn accounts(&self) -> impl Iterator<Item = (&String, &Account)> {
        self.accounts.iter()
    }

    /// The account of API key `key`.
    ///
    /// # Errors
    /// `-2015` when there is none.
    pub fn account(&self, key: &str) -> Result<&Account, ApiError> {
        self.accounts.get(key).ok_or_else(ApiError::unknown_key)
    }

    fn account_mut(&mut self, key: &str) -> Result<&mut Account, ApiError> {
        self.accounts.get_mut(key).ok_or_else(ApiError::unknown_key)
    }

    /// The mark price of `symbol` (0 for an unknown one).
    pub fn mark(&self, symbol: &str) -> Decimal {
        self.market
            .get(symbol)
            .map_or(Decimal::ZERO, |m| m.mark_price())
    }

    /// The account's leverage on `symbol` (at least 1).
    pub fn leverage(&self, acc: &Account, symbol: &str) -> u32 {
        acc.leverage
            .get(symbol)
            .copied()
            .unwrap_or(self.rules.default_leverage)
            .max(1)
    }

    /// One order of an account.
    pub fn order(&self, key: &str, id: u64) -> Option<&Order> {
        self.accounts.get(key)?.orders.get(&id)
    }

    /// The market time up to which funding of `symbol` has been charged.
    pub fn funding_settled_until(&self, symbol: &str) -> i64 {
        self.funding_cursor.get(symbol).copied().unwrap_or(0)
    }

    // ------------------------------------------------------------------------- account

    /// Set the account's leverage on `symbol` (the caller checked the symbol's bounds).
    ///
    /// # Errors
    /// `-2015` for an unknown account.
    pub fn set_leverage(&mut self, key: &str, symbol: &str, leverage: u32) -> Result<(), ApiError> {
        self.account_mut(key)?
            .leverage
            .insert(symbol.to_string(), leverage);
        Ok(())
    }

    /// Switch the account to hedge mode (`true`) or one-way mode, as Binance does: not to
    /// the mode it is in (`-4059`), not with an open order (`-4067`) or a position (`-4068`).
    ///
    /// # Errors
    /// Those, and `-2015` for an unknown account.
    pub fn set_position_mode(&mut self, key: &str, dual: bool) -> Result<(), ApiError> {
        let acc = self.account_mut(key)?;
        if acc.dual_side_position == dual {
            return Err(ApiError::bad(-4059, "No need to change position side."));
        }
        if !acc.open_orders.is_empty() || !acc.open_algos.is_empty() {
            return Err(ApiError::bad(
                -4067,
                "Position side cannot be changed if there exists open orders.",
            ));
        }
        if acc.positions.values().any(|p| !p.is_flat()) {
            return Err(ApiError::bad(
                -4068,
                "Position side cannot be changed if there exists position.",
            ));
        }
        acc.dual_side_position = dual;
        Ok(())
    }

    /// Switch the account's multi-assets margin mode; to the mode it is in is `-4171`.
    ///
    /// # Errors
    /// That, and `-2015` for an unknown account.
    pub fn set_multi_assets_margin(&mut self, key: &str, on: bool) -> Result<(), ApiError> {
        let acc = self.account_mut(key)?;
        if acc.multi_assets_margin == on {
            return Err(ApiError::bad(
                -4171,
                "Adjusted asset mode is currently set and does not need to be adjusted",
            ));
        }
        acc.multi_assets_margin = on;
        Ok(())
    }

    // ------------------------------------------------------------------------- listenKeys

    /// The live listenKey of `account` (expiring after `now`), `wanted` if one is named.
    pub fn live_listen_key(&self, account: &str, wanted: Option<&str>, now: i64) -> Option<String> {
        self.listen_keys
            .iter()
            .find(|(k, v)| {
                v.account == account && v.expires_at > now && wanted.is_none_or(|x| x == k.as_str())
            })
            .map(|(k, _)| k.clone())
    }

    /// The account of a listenKey that has not expired at `now`.
    pub fn listen_key_account(&self, key: &str, now: i64) -> Option<&str> {
        self.listen_keys
            .get(key)
            .filter(|v| v.expires_at > now)
            .map(|v| v.account.as_str())
    }

    /// Create or extend `key` for `account` until `expires_at`; with `prune_at`, forget every
    /// key expired by then.
    pub fn put_listen_key(
        &mut self,
        key: &str,
        account: &str,
        expires_at: i64,
        prune_at: Option<i64>,
    ) {
        self.listen_keys.insert(
            key.to_string(),
            ListenKey {
                account: account.to_string(),
                expires_at,
            },
        );
        if let Some(now) = prune_at {
            self.listen_keys.retain(|_, v| v.expires_at > now);
        }
    }

    pub fn remove_listen_key(&mut self, key: &str) {
        self.listen_keys.remove(key);
    }

    /// Expire every listenKey now; how many there were.
    pub fn expire_listen_keys(&mut self) -> usize {
        self.listen_keys.values_mut().for_each(|v| v.expires_at = 0);
        self.listen_keys.len()
    }

    // ------------------------------------------------------------------------- internals

    fn push_user(&mut self, key: &str, kind: &'static str, payload: Value) {
        self.user_events.push(UserEvent {
            account: key.to_string(),
            kind,
            payload,
        });
    }

    /// Forget the oldest closed orders, trades and income entries past what is kept.
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
}
