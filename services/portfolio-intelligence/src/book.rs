//! What the services believe (positions from `qt:positions`, marks from `qt:market`, closed
//! trades, funding fees, the deployed model) and what the exchange says (the last sync), and
//! the snapshot and metrics computed from both. Pure: time comes in as arguments.
//!
//! Funding fees (`FundingFeeCharged`) count in the day's realized PnL (so in the daily PnL
//! execution's daily-loss check reads), in the realized total and in the per-symbol and
//! per-model figures (`funding`, `total_pnl`); the equity gets them from the exchange's wallet
//! at the next sync (before the first sync, from the wallet computed from the facts).

use std::collections::{BTreeMap, VecDeque};

use qt_events::{
    FundingFeeCharged, MarkPriceUpdated, PortfolioSnapshot, PositionChanged, PositionClosed,
    PositionOpened, PositionSide,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::metrics::{self, ClosedTrade, Drawdown, TradeStats};

pub use qt_events::api::{Drift, ModelInfo, OpenPosition, PositionView};

const DAY_MS: i64 = 86_400_000;

/// A funding fee as the book keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundingCharge {
    /// `SYMBOL|tran_id`: one per exchange transaction.
    pub key: String,
    pub symbol: String,
    /// Signed: negative paid, positive earned.
    pub amount: Decimal,
    /// Exchange time (ms).
    pub time: i64,
    pub position_id: Option<String>,
    /// The model version of the position it was charged on (`unknown` without one).
    pub model_version: String,
}

impl FundingCharge {
    /// The key of a fact: the same exchange transaction, however often it is delivered.
    pub fn key_of(f: &FundingFeeCharged) -> String {
        format!("{}|{}", f.symbol, f.tran_id)
    }
}

/// A position as the exchange reports it at the last sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangePosition {
    pub symbol: String,
    /// Signed: positive long, negative short.
    pub amount: Decimal,
    pub entry_price: Decimal,
    pub mark_price: Decimal,
    pub unrealized_pnl: Decimal,
}

/// The last sync with the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeView {
    pub synced_at: i64,
    /// Wallet balance of the quote asset.
    pub wallet_balance: Decimal,
    pub available_balance: Decimal,
    pub positions: BTreeMap<String, ExchangePosition>,
}

/// Everything the API, the dashboard and the alert rules read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub snapshot: PortfolioSnapshot,
    pub positions: Vec<PositionView>,
    /// Net of fees and funding.
    pub realized_pnl_total: Decimal,
    /// Funding paid (negative) or earned, of the fees kept.
    pub funding_total: Decimal,
    /// `long_exposure / gross_exposure` (0.5 when flat).
    pub long_share: f64,
    pub diversification: f64,
    pub totals: TradeStats,
    pub by_symbol: BTreeMap<String, TradeStats>,
    pub by_model_version: BTreeMap<String, TradeStats>,
    pub unrealized_by_symbol: BTreeMap<String, Decimal>,
    pub max_drawdown: Drawdown,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    /// `(ts, equity)` of the kept snapshots, oldest first.
    pub equity_curve: Vec<(i64, Decimal)>,
    pub model: Option<ModelInfo>,
    pub exchange_synced_at: Option<i64>,
}

/// The portfolio's state.
#[derive(Debug, Clone)]
pub struct Book {
    pub positions: BTreeMap<String, OpenPosition>,
    pub marks: BTreeMap<String, Decimal>,
    pub trades: Vec<ClosedTrade>,
    /// Funding fees, oldest first.
    pub funding: Vec<FundingCharge>,
    pub exchange: Option<ExchangeView>,
    pub equity: VecDeque<(i64, Decimal)>,
    pub model: Option<ModelInfo>,
    /// Balance used before the first sync.
    pub initial_balance: Decimal,
    max_equity_points: usize,
}

impl Book {
    pub fn new(initial_balance: Decimal, max_equity_points: usize) -> Self {
        Self {
            positions: BTreeMap::new(),
            marks: BTreeMap::new(),
            trades: Vec::new(),
            funding: Vec::new(),
            exchange: None,
            equity: VecDeque::new(),
            model: None,
            initial_balance,
            max_equity_points: max_equity_points.max(2),
        }
    }

    /// Whether this position id is already closed (a late redelivery must not revive it).
    fn is_closed(&self, position_id: &str) -> bool {
        self.trades.iter().any(|t| t.position_id == position_id)
    }

    pub fn on_opened(&mut self, p: &PositionOpened) {
        if self.is_closed(&p.position_id) {
            return;
        }
        self.positions.insert(
            p.symbol.clone(),
            OpenPosition {
                position_id: p.position_id.clone(),
                symbol: p.symbol.clone(),
                side: side_text(p.side).into(),
                quantity: p.quantity,
                entry_price: p.entry_price,
                realized_pnl: Decimal::ZERO,
                fees: Decimal::ZERO,
                leverage: p.leverage,
                opened_at: p.opened_at,
                model_version: p
                    .signal
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |s| s.model_version.clone()),
            },
        );
    }

    pub fn on_changed(&mut self, p: &PositionChanged) {
        if self.is_closed(&p.position_id) {
            return;
        }
        let pos = self
            .positions
            .entry(p.symbol.clone())
            .or_insert_with(|| OpenPosition {
                position_id: p.position_id.clone(),
                symbol: p.symbol.clone(),
                side: side_text(p.side).into(),
                quantity: p.quantity,
                entry_price: p.entry_price,
                realized_pnl: Decimal::ZERO,
                fees: Decimal::ZERO,
                leverage: 1,
                opened_at: p.ts,
                model_version: "unknown".into(),
            });
        if pos.position_id != p.position_id {
            return;
        }
        pos.side = side_text(p.side).into();
        pos.quantity = p.quantity;
        pos.entry_price = p.entry_price;
        pos.realized_pnl = p.realized_pnl;
        pos.fees = p.fees;
    }

    /// Records the closed trade (once per position id) and removes the open position. Returns
    /// the trade when it was new.
    pub fn on_closed(&mut self, p: &PositionClosed) -> Option<ClosedTrade> {
        if self
            .positions
            .get(&p.symbol)
            .is_some_and(|o| o.position_id == p.position_id)
        {
            self.positions.remove(&p.symbol);
        }
        if self.is_closed(&p.position_id) {
            return None;
        }
        let t = ClosedTrade {
            position_id: p.position_id.clone(),
            symbol: p.symbol.clone(),
            side: side_text(p.side).into(),
            quantity: p.max_quantity,
            entry_price: p.entry_price,
            exit_price: p.exit_price,
            realized_pnl: p.realized_pnl,
            fees: p.fees,
            net_pnl: p.net_pnl,
            model_version: p
                .signal
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), |s| s.model_version.clone()),
            opened_at: p.opened_at,
            closed_at: p.closed_at,
            reason: p.reason.clone(),
        };
        self.trades.push(t.clone());
        Some(t)
    }

    /// Records a funding fee once per exchange transaction; returns it when it was new.
    pub fn on_funding(&mut self, f: &FundingFeeCharged) -> Option<FundingCharge> {
        let c = self.funding_charge(f);
        self.add_funding(c.clone()).then_some(c)
    }

    /// The fee as the book keeps it, attributed to the model version of its position.
    pub fn funding_charge(&self, f: &FundingFeeCharged) -> FundingCharge {
        let model_version = self
            .positions
            .values()
            .find(|p| Some(&p.position_id) == f.position_id.as_ref())
            .map(|p| p.model_version.clone())
            .or_else(|| {
                self.trades
                    .iter()
                    .find(|t| Some(&t.position_id) == f.position_id.as_ref())
                    .map(|t| t.model_version.clone())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        FundingCharge {
            key: FundingCharge::key_of(f),
            symbol: f.symbol.clone(),
            amount: f.amount,
            time: f.time,
            position_id: f.position_id.clone(),
            model_version,
        }
    }

    /// Adds a fee unless one with its key is kept already; true when added.
    pub fn add_funding(&mut self, c: FundingCharge) -> bool {
        if self.funding.iter().any(|k| k.key == c.key) {
            return false;
        }
        self.funding.push(c);
        true
    }

    fn funding_sum(&self) -> Decimal {
        self.funding.iter().map(|c| c.amount).sum()
    }

    pub fn on_mark(&mut self, m: &MarkPriceUpdated) {
        self.marks.insert(m.symbol.clone(), m.mark_price);
    }

    pub fn on_price(&mut self, symbol: &str, price: Decimal) {
        self.marks.insert(symbol.to_owned(), price);
    }

    /// A model seen on a signal or a deployment.
    pub fn on_model(&mut self, model: &str, version: &str, at: i64, deployed: bool) {
        match &mut self.model {
            Some(m) if m.model_version == version => {
                if deployed {
                    m.since = at;
                } else {
                    m.last_signal_at = Some(at);
                }
            }
            _ => {
                self.model = Some(ModelInfo {
                    model: model.to_owned(),
                    model_version: version.to_owned(),
                    since: at,
                    last_signal_at: (!deployed).then_some(at),
                });
            }
        }
    }

    pub fn on_sync(&mut self, view: ExchangeView) {
        for p in view.positions.values() {
            if p.mark_price > Decimal::ZERO {
                self.marks.insert(p.symbol.clone(), p.mark_price);
            }
        }
        self.exchange = Some(view);
    }

    fn mark_of(&self, p: &OpenPosition) -> Decimal {
        self.marks.get(&p.symbol).copied().unwrap_or(p.entry_price)
    }

    /// The wallet balance: the exchange's at the last sync, else the initial balance plus the
    /// net realized PnL of the trades seen and the funding.
    pub fn wallet_balance(&self) -> Decimal {
        match &self.exchange {
            Some(x) => x.wallet_balance,
            None => {
                self.initial_balance
                    + self.trades.iter().map(|t| t.net_pnl).sum::<Decimal>()
                    + self.funding_sum()
            }
        }
    }

    /// The snapshot at `now`.
    pub fn snapshot(&self, now: i64) -> PortfolioSnapshot {
        let (mut long, mut short, mut upnl) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for p in self.positions.values() {
            let mark = self.mark_of(p);
            let notional = p.quantity * mark;
            if p.is_long() {
                long += notional;
            } else {
                short += notional;
            }
            upnl += p.unrealized(mark);
        }
        let day_start = now - now.rem_euclid(DAY_MS);
        let realized_today: Decimal = self
            .trades
            .iter()
            .filter(|t| t.closed_at >= day_start)
            .map(|t| t.net_pnl)
            .chain(
                self.funding
                    .iter()
                    .filter(|c| c.time >= day_start)
                    .map(|c| c.amount),
            )
            .sum();
        let wallet = self.wallet_balance();
        PortfolioSnapshot {
            ts: now,
            equity: wallet + upnl,
            wallet_balance: wallet,
            unrealized_pnl: upnl,
            realized_pnl_today: realized_today,
            daily_pnl: realized_today + upnl,
            gross_exposure: long + short,
            net_exposure: long - short,
            long_exposure: long,
            short_exposure: short,
            open_positions: u32::try_from(self.positions.len()).unwrap_or(u32::MAX),
        }
    }

    /// Takes a snapshot at `now` and appends its equity to the curve.
    pub fn record(&mut self, now: i64) -> PortfolioSnapshot {
        let s = self.snapshot(now);
        self.push_equity(now, s.equity);
        s
    }

    pub fn push_equity(&mut self, ts: i64, equity: Decimal) {
        self.equity.push_back((ts, equity));
        while self.equity.len() > self.max_equity_points {
            self.equity.pop_front();
        }
    }

    /// The full report at `now` (the snapshot is not recorded).
    pub fn report(&self, now: i64) -> Report {
        let snapshot = self.snapshot(now);
        let positions: Vec<PositionView> = self
            .positions
            .values()
            .map(|p| {
                let mark = self.mark_of(p);
                let u = p.unrealized(mark);
                let entry_notional = p.quantity * p.entry_price;
                PositionView {
                    position: p.clone(),
                    mark_price: mark,
                    notional: p.quantity * mark,
                    unrealized_pnl: u,
                    unrealized_pct: if entry_notional > Decimal::ZERO {
                        rust_decimal::prelude::ToPrimitive::to_f64(&(u / entry_notional))
                            .unwrap_or(0.0)
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        let notionals: Vec<Decimal> = positions.iter().map(|p| p.notional).collect();
        let unrealized_by_symbol = positions
            .iter()
            .map(|p| (p.position.symbol.clone(), p.unrealized_pnl))
            .collect();
        let curve: Vec<(i64, Decimal)> = self.equity.iter().copied().collect();
        let eq: Vec<Decimal> = curve.iter().map(|(_, e)| *e).collect();
        let rets = metrics::returns(&eq);
        let long_share = if snapshot.gross_exposure > Decimal::ZERO {
            rust_decimal::prelude::ToPrimitive::to_f64(
                &(snapshot.long_exposure / snapshot.gross_exposure),
            )
            .unwrap_or(0.5)
        } else {
            0.5
        };
        let funding_total = self.funding_sum();
        let mut totals = metrics::trade_stats(&self.trades);
        add_funding(&mut totals, funding_total);
        let mut by_symbol = metrics::stats_by(&self.trades, |t| &t.symbol);
        let mut by_model_version = metrics::stats_by(&self.trades, |t| &t.model_version);
        for c in &self.funding {
            add_funding(by_symbol.entry(c.symbol.clone()).or_default(), c.amount);
            add_funding(
                by_model_version.entry(c.model_version.clone()).or_default(),
                c.amount,
            );
        }
        Report {
            realized_pnl_total: self.trades.iter().map(|t| t.net_pnl).sum::<Decimal>()
                + funding_total,
            funding_total,
            long_share,
            diversification: metrics::diversification(&notionals),
            totals,
            by_symbol,
            by_model_version,
            unrealized_by_symbol,
            max_drawdown: metrics::max_drawdown(&eq),
            sharpe: metrics::sharpe(&rets),
            sortino: metrics::sortino(&rets),
            equity_curve: curve,
            model: self.model.clone(),
            exchange_synced_at: self.exchange.as_ref().map(|x| x.synced_at),
            positions,
            snapshot,
        }
    }

    /// Symbols where the exchange's position differs from the believed one (needs a sync).
    pub fn drift(&self) -> Vec<Drift> {
        let Some(x) = &self.exchange else {
            return Vec::new();
        };
        let mut symbols: Vec<&String> = self.positions.keys().collect();
        symbols.extend(x.positions.keys());
        symbols.sort();
        symbols.dedup();
        symbols
            .into_iter()
            .filter_map(|s| {
                let believed = self
                    .positions
                    .get(s)
                    .map_or(Decimal::ZERO, OpenPosition::signed_qty);
                let exchange = x.positions.get(s).map_or(Decimal::ZERO, |p| p.amount);
                (believed != exchange).then(|| Drift {
                    symbol: s.clone(),
                    believed,
                    exchange,
                })
            })
            .collect()
    }
}

/// Adds funding to a group's statistics.
fn add_funding(s: &mut TradeStats, amount: Decimal) {
    s.funding += amount;
    s.total_pnl = s.net_pnl + s.funding;
}

fn side_text(s: PositionSide) -> &'static str {
    match s {
        PositionSide::Long => "LONG",
        PositionSide::Short => "SHORT",
    }
}
