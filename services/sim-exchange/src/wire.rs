//! Binance's wire spelling of values shared by the REST views and the stream events:
//! decimals without exponent or trailing zeros (or with 8 places), sides, time in force.

use qt_events::{Decimal, Side};
use qt_matching::TimeInForce;

/// A decimal as Binance writes it: no exponent, no trailing zeros.
pub fn d(x: Decimal) -> String {
    x.normalize().to_string()
}

/// A decimal with 8 places (rates, funding marks, income).
pub(crate) fn d8(x: Decimal) -> String {
    format!("{x:.8}")
}

pub(crate) fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "BUY",
        Side::Sell => "SELL",
    }
}

pub(crate) fn tif_name(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::Gtx => "GTX",
    }
}
