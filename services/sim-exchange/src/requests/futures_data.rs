//! Futures data that carries positioning: `GET /fapi/v1/openInterest` and the
//! `/futures/data/*` statistics (`openInterestHist`, `topLongShortPositionRatio`,
//! `globalLongShortAccountRatio`, `takerlongshortRatio`), computed from the simulator's own
//! state — its accounts' positions and fills — since a replay has no other market participants.
//!
//! - open interest: the sum of the accounts' long quantities (one side, as Binance counts it);
//! - top-trader position ratio: total long quantity / total short quantity;
//! - global account ratio: accounts net long / accounts net short;
//! - taker buy/sell: the accounts' bought / sold quantity in each period (taker fills).
//!
//! The simulator keeps no history of these: a statistics request answers at most one row, the
//! current period (started at the last period boundary at or before server time, the clock its
//! fills are stamped with) when the
//! requested window covers it. A ratio with nothing on one side is not a number: no row.

use qt_events::{Decimal, Side};
use serde_json::Value;

use super::{Args, Request, known_symbol};
use crate::app::App;
use crate::error::ApiError;
use crate::exchange::Exchange;
use crate::views;

const PERIODS: [(&str, i64); 9] = [
    ("5m", 300_000),
    ("15m", 900_000),
    ("30m", 1_800_000),
    ("1h", 3_600_000),
    ("2h", 7_200_000),
    ("4h", 14_400_000),
    ("6h", 21_600_000),
    ("12h", 43_200_000),
    ("1d", 86_400_000),
];

/// `GET /fapi/v1/openInterest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenInterest {
    symbol: String,
}

impl Request for OpenInterest {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            symbol: known_symbol(a)?,
        })
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let p = Positioning::of(ex, &self.symbol, i64::MIN, i64::MAX);
            Ok(views::futures_data::open_interest(
                &self.symbol,
                p.long_qty,
                now,
            ))
        })
    }
}

/// Which `/futures/data/*` statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    OpenInterest,
    TopPosition,
    GlobalAccount,
    Taker,
}

/// A `/futures/data/*` request: symbol, period, window, limit (default 30, at most 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FuturesData<const S: u8> {
    symbol: String,
    period_ms: i64,
    start: Option<i64>,
    end: Option<i64>,
}

/// `openInterestHist`.
pub(crate) type OpenInterestHist = FuturesData<0>;
/// `topLongShortPositionRatio`.
pub(crate) type TopLongShortPosition = FuturesData<1>;
/// `globalLongShortAccountRatio`.
pub(crate) type GlobalLongShortAccount = FuturesData<2>;
/// `takerlongshortRatio`.
pub(crate) type TakerLongShort = FuturesData<3>;

fn stat(s: u8) -> Stat {
    match s {
        0 => Stat::OpenInterest,
        1 => Stat::TopPosition,
        2 => Stat::GlobalAccount,
        _ => Stat::Taker,
    }
}

impl<const S: u8> Request for FuturesData<S> {
    fn parse(a: &Args<'_>) -> Result<Self, ApiError> {
        let symbol = known_symbol(a)?;
        let period = a.params.required("period")?;
        let period_ms = PERIODS
            .iter()
            .find(|(p, _)| *p == period)
            .map(|(_, ms)| *ms)
            .ok_or_else(|| ApiError::bad(-1120, "Invalid period."))?;
        a.params.count("limit", 30, 500)?;
        Ok(Self {
            symbol,
            period_ms,
            start: a.params.int("startTime")?,
            end: a.params.int("endTime")?,
        })
    }

    fn apply(self, app: &App, _: &str, now: i64) -> Result<Value, ApiError> {
        app.read(|ex| {
            let start = now - now.rem_euclid(self.period_ms);
            let covered =
                self.start.is_none_or(|s| s <= start) && self.end.is_none_or(|e| e >= start);
            let mut rows = Vec::new();
            if covered {
                let p = Positioning::of(ex, &self.symbol, start, now);
                let mark = ex.mark(&self.symbol);
                let sym = self.symbol.as_str();
                let row = match stat(S) {
                    Stat::OpenInterest => Some(views::futures_data::open_interest_hist(
                        sym,
                        p.long_qty,
                        p.long_qty * mark,
                        start,
                    )),
                    Stat::TopPosition => ratio(p.long_qty, p.short_qty)
                        .map(|(r, l, s)| views::futures_data::long_short(sym, r, l, s, start)),
                    Stat::GlobalAccount => ratio(p.long_accounts, p.short_accounts)
                        .map(|(r, l, s)| views::futures_data::long_short(sym, r, l, s, start)),
                    Stat::Taker => (!p.sold.is_zero()).then(|| {
                        views::futures_data::taker(p.bought / p.sold, p.bought, p.sold, start)
                    }),
                };
                rows.extend(row);
            }
            Ok(Value::Array(rows))
        })
    }
}

/// `long / short`, `long / (long + short)`, `short / (long + short)`; `None` when a side is 0.
fn ratio(long: Decimal, short: Decimal) -> Option<(Decimal, Decimal, Decimal)> {
    if long.is_zero() || short.is_zero() {
        return None;
    }
    let total = long + short;
    Some((
        (long / short).round_dp(4),
        (long / total).round_dp(4),
        (short / total).round_dp(4),
    ))
}

/// What the accounts hold of one symbol now, and what they traded in a window.
#[derive(Debug, Default)]
struct Positioning {
    long_qty: Decimal,
    short_qty: Decimal,
    long_accounts: Decimal,
    short_accounts: Decimal,
    bought: Decimal,
    sold: Decimal,
}

impl Positioning {
    fn of(ex: &Exchange, symbol: &str, from: i64, to: i64) -> Self {
        let mut p = Self::default();
        for (_, acc) in ex.accounts() {
            let (mut long, mut short) = (Decimal::ZERO, Decimal::ZERO);
            for (_, pos) in acc.legs_of(symbol) {
                if pos.qty > Decimal::ZERO {
                    long += pos.qty;
                } else {
                    short -= pos.qty;
                }
            }
            if long > Decimal::ZERO {
                p.long_qty += long;
                p.long_accounts += Decimal::ONE;
            }
            if short > Decimal::ZERO {
                p.short_qty += short;
                p.short_accounts += Decimal::ONE;
            }
            for t in acc
                .trades
                .iter()
                .filter(|t| t.symbol == symbol && !t.maker && t.time >= from && t.time <= to)
            {
                match t.side {
                    Side::Buy => p.bought += t.qty,
                    Side::Sell => p.sold += t.qty,
                }
            }
        }
        p
    }
}
