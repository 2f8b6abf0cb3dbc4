//! Position sides (`positionSide`) and the account's position mode. In one-way mode an
//! account holds one net position per symbol (`BOTH`); in hedge mode (`dualSidePosition`) a
//! LONG and a SHORT position per symbol, kept apart: an order names the side it trades
//! (`positionSide`, required), opens with BUY LONG / SELL SHORT and closes with SELL LONG /
//! BUY SHORT (`reduceOnly` is not accepted there: closing is by side), as Binance documents it.
//!
//! Positions live in `Account::positions` under [`position_key`]: the symbol for `BOTH` (so a
//! snapshot from before hedge mode reads as it was), `SYMBOL:LONG` / `SYMBOL:SHORT` for legs.

use qt_events::Side;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Binance's `positionSide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PosSide {
    /// One-way mode's net position.
    #[default]
    Both,
    Long,
    Short,
}

impl PosSide {
    pub fn name(self) -> &'static str {
        match self {
            PosSide::Both => "BOTH",
            PosSide::Long => "LONG",
            PosSide::Short => "SHORT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BOTH" => PosSide::Both,
            "LONG" => PosSide::Long,
            "SHORT" => PosSide::Short,
            _ => return None,
        })
    }

    /// Whether an order of `side` on this position side closes it (hedge mode: SELL LONG,
    /// BUY SHORT), so that it may only reduce, as a reduce-only order does in one-way mode.
    pub fn closes(self, side: Side) -> bool {
        matches!(
            (self, side),
            (PosSide::Long, Side::Sell) | (PosSide::Short, Side::Buy)
        )
    }
}

/// The key of a position in `Account::positions`.
pub fn position_key(symbol: &str, side: PosSide) -> String {
    match side {
        PosSide::Both => symbol.to_string(),
        s => format!("{symbol}:{}", s.name()),
    }
}

/// The symbol and side of a key of `Account::positions`.
pub fn split_key(key: &str) -> (&str, PosSide) {
    match key.split_once(':') {
        Some((symbol, side)) => (symbol, PosSide::parse(side).unwrap_or_default()),
        None => (key, PosSide::Both),
    }
}

/// The sides an account of that mode holds positions on.
pub fn sides_of_mode(dual: bool) -> &'static [PosSide] {
    if dual {
        &[PosSide::Long, PosSide::Short]
    } else {
        &[PosSide::Both]
    }
}

/// `-4061`: the order's `positionSide` does not match the account's position mode.
pub fn side_mismatch() -> ApiError {
    ApiError::bad(
        -4061,
        "Order's position side does not match user's setting.",
    )
}

/// The position side an order trades, checked against the account's mode as Binance checks
/// it: in one-way mode `positionSide` absent or `BOTH`; in hedge mode `LONG` or `SHORT`, and
/// no `reduceOnly` (`-1106`).
///
/// # Errors
/// `-4061` for a side the mode does not have, `-1106` for `reduceOnly` in hedge mode.
pub fn order_side(
    dual: bool,
    asked: Option<PosSide>,
    reduce_only: bool,
) -> Result<PosSide, ApiError> {
    match (dual, asked) {
        (false, None | Some(PosSide::Both)) => Ok(PosSide::Both),
        (false, Some(_)) | (true, None | Some(PosSide::Both)) => Err(side_mismatch()),
        (true, Some(_)) if reduce_only => Err(ApiError::not_required("reduceonly")),
        (true, Some(s)) => Ok(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_both_is_the_bare_symbol() {
        for s in [PosSide::Both, PosSide::Long, PosSide::Short] {
            assert_eq!(split_key(&position_key("BTCUSDT", s)), ("BTCUSDT", s));
        }
        assert_eq!(position_key("BTCUSDT", PosSide::Both), "BTCUSDT");
    }

    #[test]
    fn the_mode_decides_which_sides_an_order_may_name() {
        assert_eq!(order_side(false, None, true).unwrap(), PosSide::Both);
        assert_eq!(
            order_side(false, Some(PosSide::Long), false)
                .unwrap_err()
                .code,
            -4061
        );
        assert_eq!(order_side(true, None, false).unwrap_err().code, -4061);
        assert_eq!(
            order_side(true, Some(PosSide::Both), false)
                .unwrap_err()
                .code,
            -4061
        );
        assert_eq!(
            order_side(true, Some(PosSide::Short), true)
                .unwrap_err()
                .code,
            -1106
        );
        assert_eq!(
            order_side(true, Some(PosSide::Short), false).unwrap(),
            PosSide::Short
        );
    }
}
