//! What the guard is asked and what it answers: intents, decisions and reason codes.

use qt_events::{
    ClosePosition, OpenPosition, OrderKind, PositionSide, ReducePosition, RejectReason,
};
use rust_decimal::Decimal;

/// What an intent asks for, as far as risk is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum IntentKind {
    /// Open or add to a position.
    Open {
        side: PositionSide,
        qty: Decimal,
        /// Price the intent was sized with; its notional is counted at it.
        reference_price: Decimal,
        /// Limit price for a `LIMIT` entry.
        limit_price: Option<Decimal>,
        leverage: u32,
    },
    /// Reduce a position (reduce-only).
    Reduce { qty: Decimal },
    /// Close a whole position.
    Close,
    /// Place or replace protective orders (stop, take-profits, trailing).
    Protect,
    /// Cancel an order.
    Cancel,
}

/// An intent as the guard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskIntent {
    pub intent_id: String,
    pub symbol: String,
    pub kind: IntentKind,
}

impl RiskIntent {
    /// True for intents that can only lower exposure; they pass even with the kill switch on.
    pub fn is_exit(&self) -> bool {
        !matches!(self.kind, IntentKind::Open { .. })
    }
}

impl From<&OpenPosition> for RiskIntent {
    fn from(o: &OpenPosition) -> Self {
        Self {
            intent_id: o.intent_id.clone(),
            symbol: o.symbol.clone(),
            kind: IntentKind::Open {
                side: o.side,
                qty: o.quantity,
                reference_price: o.reference_price,
                limit_price: if o.order_type == OrderKind::Limit {
                    o.limit_price
                } else {
                    None
                },
                leverage: o.leverage,
            },
        }
    }
}

impl From<&ReducePosition> for RiskIntent {
    fn from(r: &ReducePosition) -> Self {
        Self {
            intent_id: r.intent_id.clone(),
            symbol: r.symbol.clone(),
            kind: IntentKind::Reduce { qty: r.quantity },
        }
    }
}

impl From<&ClosePosition> for RiskIntent {
    fn from(c: &ClosePosition) -> Self {
        Self {
            intent_id: c.intent_id.clone(),
            symbol: c.symbol.clone(),
            kind: IntentKind::Close,
        }
    }
}

/// The guard's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// Refused, with the wire reason code and a human-readable message.
    Reject(RejectReason, String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The reason code of a refusal.
    pub fn reason(&self) -> Option<RejectReason> {
        match self {
            Decision::Allow => None,
            Decision::Reject(r, _) => Some(*r),
        }
    }
}

/// Builds refusals; the message is only formatted when someone will read it (the backtester
/// checks millions of intents and only counts reason codes).
#[derive(Clone, Copy)]
pub(super) struct Rejector {
    pub(super) with_message: bool,
}

impl Rejector {
    pub(super) fn reject(self, reason: RejectReason, message: &dyn Fn() -> String) -> Decision {
        Decision::Reject(
            reason,
            if self.with_message {
                message()
            } else {
                String::new()
            },
        )
    }
}

/// The wire code of a reason (`MAX_GROSS_EXPOSURE`, …), without going through serde.
pub fn reason_code(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::KillSwitch => "KILL_SWITCH",
        RejectReason::CloseOnly => "CLOSE_ONLY",
        RejectReason::MaxNotionalPerTrade => "MAX_NOTIONAL_PER_TRADE",
        RejectReason::MaxDailyLoss => "MAX_DAILY_LOSS",
        RejectReason::DailyLossPause => "DAILY_LOSS_PAUSE",
        RejectReason::MaxSymbolNotional => "MAX_SYMBOL_NOTIONAL",
        RejectReason::MaxGrossExposure => "MAX_GROSS_EXPOSURE",
        RejectReason::MaxConcurrentPositions => "MAX_CONCURRENT_POSITIONS",
        RejectReason::SideImbalance => "SIDE_IMBALANCE",
        RejectReason::LeverageCap => "LEVERAGE_CAP",
        RejectReason::Cooldown => "COOLDOWN",
        RejectReason::ExchangeFilter => "EXCHANGE_FILTER",
        RejectReason::MinNotional => "MIN_NOTIONAL",
        RejectReason::Precision => "PRECISION",
        RejectReason::MarginInsufficient => "MARGIN_INSUFFICIENT",
        RejectReason::ReduceOnlyRejected => "REDUCE_ONLY_REJECTED",
        RejectReason::WouldImmediatelyTrigger => "WOULD_IMMEDIATELY_TRIGGER",
        RejectReason::NoPosition => "NO_POSITION",
        RejectReason::DuplicateIntent => "DUPLICATE_INTENT",
        RejectReason::InvalidIntent => "INVALID_INTENT",
        RejectReason::ExchangeError => "EXCHANGE_ERROR",
        RejectReason::Superseded => "SUPERSEDED",
        RejectReason::RateLimited => "RATE_LIMITED",
        RejectReason::DrawdownBreaker => "DRAWDOWN_BREAKER",
        RejectReason::Other => "OTHER",
    }
}
