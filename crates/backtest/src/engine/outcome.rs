//! What a run produces: trades, the equity curve, refusals and learned profiles.

use std::collections::BTreeMap;

use qt_events::PositionSide;
use qt_exits::SymbolProfile;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why a position ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The initial stop.
    Stop,
    /// The stop after it moved to break-even.
    BreakEven,
    /// The trailing stop.
    Trailing,
    /// The last take-profit leg.
    TakeProfit,
    /// The time stop.
    TimeStop,
    /// The deciding model signalled the other side (exits with `close_on_flip`): closed at
    /// the next candle's open.
    SignalFlip,
    /// Still open when the data ended: closed at the last close.
    EndOfData,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Stop => "stop",
            ExitReason::BreakEven => "break_even",
            ExitReason::Trailing => "trailing",
            ExitReason::TakeProfit => "take_profit",
            ExitReason::TimeStop => "time_stop",
            ExitReason::SignalFlip => "signal_flip",
            ExitReason::EndOfData => "end_of_data",
        }
    }
}

/// One closed position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub symbol: String,
    pub side: PositionSide,
    pub entry_time: i64,
    pub exit_time: i64,
    pub entry_price: Decimal,
    /// Average exit price over every leg and stop.
    pub exit_price: Decimal,
    pub qty: Decimal,
    /// PnL before fees.
    pub gross_pnl: Decimal,
    /// Entry and exit fees.
    pub fees: Decimal,
    /// Funding paid over the trade's life (negative: earned).
    #[serde(default)]
    pub funding: Decimal,
    /// Gross PnL minus fees and funding.
    pub net_pnl: Decimal,
    pub legs_hit: usize,
    pub exit_reason: ExitReason,
    /// The stop placed at the entry (before any move to break-even or trailing); zero when
    /// unknown (a trade read from an older file, buy-and-hold).
    #[serde(default)]
    pub stop_price: Decimal,
    /// The take-profit legs' prices placed at the entry, nearest first.
    #[serde(default)]
    pub targets: Vec<Decimal>,
}

/// One point of the equity curve: equity (realized + unrealized at close) after a candle time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    pub time_ms: i64,
    pub equity: Decimal,
    /// Gross notional held at that time.
    pub exposure: Decimal,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestOutcome {
    pub trades: Vec<Trade>,
    pub equity: Vec<EquityPoint>,
    /// Candles processed (warm-up included).
    pub candles: u64,
    /// Entries the risk guard or sizing refused, by reason code.
    pub rejections: BTreeMap<String, u64>,
    /// Learned profiles at the end of the run.
    pub profiles: BTreeMap<String, SymbolProfile>,
    pub initial_equity: Decimal,
    pub leverage: u32,
    /// When the drawdown breaker stopped entries (ms); nobody resumes in a backtest.
    pub breaker_tripped_at: Option<i64>,
}
