use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The portfolio at one moment, published by portfolio-intelligence. Execution reads the daily
/// PnL from here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PortfolioSnapshot {
    pub ts: i64,
    pub equity: Decimal,
    pub wallet_balance: Decimal,
    pub unrealized_pnl: Decimal,
    /// Realized PnL (net of fees) since 00:00 UTC.
    pub realized_pnl_today: Decimal,
    /// Realized today plus unrealized now.
    pub daily_pnl: Decimal,
    pub gross_exposure: Decimal,
    pub net_exposure: Decimal,
    pub long_exposure: Decimal,
    pub short_exposure: Decimal,
    pub open_positions: u32,
}
