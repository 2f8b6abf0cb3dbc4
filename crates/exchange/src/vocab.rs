//! Binance's vocabulary as types: the error codes this system acts on ([`ApiCode`]) and the
//! status words of orders ([`OrderStatus`]), conditional orders ([`AlgoStatus`]) and execution
//! reports ([`ExecutionType`]). Each keeps a value it does not know as `Unknown(raw)`, so a new
//! word from the exchange is carried, logged and matched as "anything else", never lost and
//! never a decoding failure. The services match on these enums, never on numbers or strings
//! from the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a status enum spelled on the wire in upper case, with an `Unknown(String)` case,
/// `parse`/`as_str` and serde both ways. `aliases` are other spellings read as the same word.
macro_rules! wire_words {
    (
        $(#[$meta:meta])*
        $name:ident, default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A word this client does not know, as Binance sent it.
            Unknown(String),
        }

        impl $name {
            /// The word Binance sends for `s`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $text $(| $alias)* => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }

            /// Binance's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(s) => s,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::parse(&String::deserialize(d)?))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

wire_words! {
    /// Order status on `/fapi/v1/order` and in `ORDER_TRADE_UPDATE` (`X`).
    OrderStatus, default New {
        New = "NEW",
        PartiallyFilled = "PARTIALLY_FILLED",
        Filled = "FILLED",
        Canceled = "CANCELED" | "CANCELLED",
        Rejected = "REJECTED",
        Expired = "EXPIRED",
        ExpiredInMatch = "EXPIRED_IN_MATCH",
    }
}

impl OrderStatus {
    /// No further fills can come.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Canceled | Self::Rejected | Self::Expired | Self::ExpiredInMatch
        )
    }

    /// The order ended without (further) fills: cancelled, expired or rejected.
    pub fn ended_unfilled(&self) -> bool {
        matches!(
            self,
            Self::Canceled | Self::Expired | Self::ExpiredInMatch | Self::Rejected
        )
    }
}

wire_words! {
    /// A conditional order's status on the Algo Service (`algoStatus`, `ALGO_UPDATE`'s `X`).
    AlgoStatus, default New {
        /// Waiting for its trigger.
        New = "NEW",
        Canceled = "CANCELED" | "CANCELLED",
        /// The trigger was hit; the order is being placed.
        Triggering = "TRIGGERING",
        /// Placed in the matching engine (its id in `actualOrderId`).
        Triggered = "TRIGGERED",
        /// Its placed order has ended.
        Finished = "FINISHED",
        Rejected = "REJECTED",
        Expired = "EXPIRED",
    }
}

impl AlgoStatus {
    /// The conditional order fired: its fills come on the order it placed.
    pub fn fired(&self) -> bool {
        matches!(self, Self::Triggered | Self::Finished)
    }

    /// It ended without firing: cancelled, expired or rejected.
    pub fn ended_unfired(&self) -> bool {
        matches!(self, Self::Canceled | Self::Expired | Self::Rejected)
    }
}

wire_words! {
    /// Why an `ORDER_TRADE_UPDATE` was sent (`x`).
    ExecutionType, default New {
        New = "NEW",
        Canceled = "CANCELED" | "CANCELLED",
        /// A liquidation or ADL fill is being computed.
        Calculated = "CALCULATED",
        Expired = "EXPIRED",
        /// A fill.
        Trade = "TRADE",
        Amendment = "AMENDMENT",
    }
}

/// Declares the error codes by name, with `Unknown(i64)` for every other one.
macro_rules! api_codes {
    ( $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),+ $(,)? ) => {
        /// A Binance error code (`{"code": -2013, "msg": …}`) by what it means. Only the codes
        /// this system acts on are named; any other is kept as [`ApiCode::Unknown`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ApiCode {
            $( $(#[$vmeta])* $variant, )+
            /// A code this client gives no meaning to, as sent.
            Unknown(i64),
        }

        impl ApiCode {
            /// The code's meaning.
            pub fn from_code(code: i64) -> Self {
                match code {
                    $( $code => Self::$variant, )+
                    other => Self::Unknown(other),
                }
            }

            /// The number Binance sends.
            pub fn code(self) -> i64 {
                match self {
                    $( Self::$variant => $code, )+
                    Self::Unknown(c) => c,
                }
            }
        }
    };
}

api_codes! {
    /// -1000: an unknown error while processing the request (outcome unknown).
    UnknownError = -1000,
    /// -1001: internal error; unable to process the request.
    Disconnected = -1001,
    /// -1003: too many requests (request weight).
    TooManyRequests = -1003,
    /// -1006: an unexpected answer from the message bus (outcome unknown).
    UnexpectedResponse = -1006,
    /// -1007: timeout waiting for the backend (outcome unknown).
    Timeout = -1007,
    /// -1008: the server is overloaded; try again.
    ServerBusy = -1008,
    /// -1013: a filter refused the quantity or price.
    FilterFailure = -1013,
    /// -1015: too many new orders (order rate).
    TooManyOrders = -1015,
    /// -1021: the timestamp is outside the recvWindow.
    InvalidTimestamp = -1021,
    /// -1022: the signature is not valid.
    InvalidSignature = -1022,
    /// -1111: precision is over the maximum for the asset.
    BadPrecision = -1111,
    /// -1125: the listenKey does not exist.
    InvalidListenKey = -1125,
    /// -2011: cancel refused (unknown order).
    CancelRejected = -2011,
    /// -2013: the order does not exist.
    NoSuchOrder = -2013,
    /// -2018: the balance is insufficient.
    BalanceInsufficient = -2018,
    /// -2019: the margin is insufficient.
    MarginInsufficient = -2019,
    /// -2021: the order would trigger immediately.
    WouldImmediatelyTrigger = -2021,
    /// -2022: a reduce-only order was refused.
    ReduceOnlyRejected = -2022,
    /// -4014: the price is not a multiple of the tick size.
    PriceNotOnTick = -4014,
    /// -4023: the quantity is not a multiple of the step size.
    QtyNotOnStep = -4023,
    /// -4046: no need to change the margin type.
    NoNeedToChangeMarginType = -4046,
    /// -4059: the account is already in the position mode asked for.
    NoNeedToChangePositionSide = -4059,
    /// -4120: the order type must go to the algo endpoint.
    AlgoEndpointRequired = -4120,
    /// -4164: the order's notional is below the minimum.
    MinNotional = -4164,
    /// -5028: the timestamp is outside the matching engine's recvWindow.
    MeRecvWindow = -5028,
}

impl ApiCode {
    /// "Send status unknown; execution status unknown": the request may have taken effect.
    pub fn outcome_unknown(self) -> bool {
        matches!(
            self,
            Self::UnknownError | Self::UnexpectedResponse | Self::Timeout
        )
    }

    /// A definite failure that passes later (throttling, load, a clock out of step).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::TooManyRequests
                | Self::ServerBusy
                | Self::InvalidTimestamp
                | Self::MeRecvWindow
                | Self::Disconnected
        )
    }

    /// The order's quantity or price breaks the symbol's filters (the filters may be stale).
    pub fn filter_refusal(self) -> bool {
        matches!(
            self,
            Self::BadPrecision
                | Self::PriceNotOnTick
                | Self::QtyNotOnStep
                | Self::MinNotional
                | Self::FilterFailure
        )
    }

    /// The exchange's request or order-rate limits were hit.
    pub fn rate_limited(self) -> bool {
        matches!(self, Self::TooManyRequests | Self::TooManyOrders)
    }
}

impl From<i64> for ApiCode {
    fn from(code: i64) -> Self {
        Self::from_code(code)
    }
}

impl std::fmt::Display for ApiCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl<'de> Deserialize<'de> for ApiCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_code(i64::deserialize(d)?))
    }
}

impl Serialize for ApiCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.code())
    }
}

/// An order the exchange placed itself to close a position, known by the client order id
/// Binance gives it (`ORDER_TRADE_UPDATE`'s `c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeClose {
    /// A liquidation: `autoclose-…`.
    Liquidation,
    /// An auto-deleveraging against a liquidated counterparty: `adl_autoclose`.
    Adl,
    /// The settlement of a delisted or delivered contract: `settlement_autoclose-…`.
    Settlement,
}

impl ExchangeClose {
    /// What the exchange did, by the order's client id (`None` for any other order).
    pub fn of_client_order_id(client_order_id: &str) -> Option<Self> {
        if client_order_id.starts_with("adl_autoclose") {
            Some(Self::Adl)
        } else if client_order_id.starts_with("settlement_autoclose") {
            Some(Self::Settlement)
        } else if client_order_id.starts_with("autoclose") {
            Some(Self::Liquidation)
        } else {
            None
        }
    }

    /// `liquidation`, `adl` or `settlement` (a closed position's reason).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Liquidation => "liquidation",
            Self::Adl => "adl",
            Self::Settlement => "settlement",
        }
    }
}

/// Whether a client order id is one the exchange gave an order it placed itself to close a
/// position (see [`ExchangeClose`]).
pub fn is_exchange_close_order_id(client_order_id: &str) -> bool {
    ExchangeClose::of_client_order_id(client_order_id).is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn api_codes_round_trip_and_keep_unknown_ones() {
        for (n, c) in [
            (-2013, ApiCode::NoSuchOrder),
            (-4164, ApiCode::MinNotional),
            (-2021, ApiCode::WouldImmediatelyTrigger),
            (-2011, ApiCode::CancelRejected),
            (-1021, ApiCode::InvalidTimestamp),
            (-1007, ApiCode::Timeout),
            (-4046, ApiCode::NoNeedToChangeMarginType),
            (-4059, ApiCode::NoNeedToChangePositionSide),
        ] {
            assert_eq!(ApiCode::from_code(n), c);
            assert_eq!(c.code(), n);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, n.to_string());
            assert_eq!(serde_json::from_str::<ApiCode>(&json).unwrap(), c);
        }
        assert_eq!(ApiCode::from_code(-9999), ApiCode::Unknown(-9999));
        assert_eq!(ApiCode::Unknown(-9999).code(), -9999);
        assert_eq!(
            serde_json::from_str::<ApiCode>("-9999").unwrap(),
            ApiCode::Unknown(-9999)
        );
        assert!(serde_json::from_str::<ApiCode>("\"x\"").is_err());
    }

    #[test]
    fn exchange_close_orders_are_known_by_their_client_id() {
        assert!(is_exchange_close_order_id("autoclose-1597307316020"));
        assert!(is_exchange_close_order_id("adl_autoclose"));
        assert!(is_exchange_close_order_id(
            "settlement_autoclose-1597307316020"
        ));
        assert!(!is_exchange_close_order_id("qt-abc"));
        let kind = ExchangeClose::of_client_order_id;
        assert_eq!(
            kind("autoclose-1597307316020"),
            Some(ExchangeClose::Liquidation)
        );
        assert_eq!(kind("adl_autoclose"), Some(ExchangeClose::Adl));
        assert_eq!(
            kind("settlement_autoclose-1"),
            Some(ExchangeClose::Settlement)
        );
        assert_eq!(kind("x-autoclose"), None);
    }

    #[test]
    fn api_codes_say_what_a_caller_may_do() {
        assert!(ApiCode::Timeout.outcome_unknown() && !ApiCode::Timeout.retryable());
        assert!(ApiCode::InvalidTimestamp.retryable());
        assert!(ApiCode::MinNotional.filter_refusal());
        assert!(ApiCode::TooManyOrders.rate_limited());
        let none = ApiCode::Unknown(-7);
        assert!(
            !none.outcome_unknown()
                && !none.retryable()
                && !none.filter_refusal()
                && !none.rate_limited()
        );
    }

    #[test]
    fn status_words_parse_serialize_and_keep_unknown_ones() {
        for (s, v) in [
            ("NEW", AlgoStatus::New),
            ("TRIGGERED", AlgoStatus::Triggered),
            ("TRIGGERING", AlgoStatus::Triggering),
            ("FINISHED", AlgoStatus::Finished),
            ("EXPIRED", AlgoStatus::Expired),
            ("CANCELED", AlgoStatus::Canceled),
        ] {
            let parsed: AlgoStatus = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(parsed, v);
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(AlgoStatus::parse("CANCELLED"), AlgoStatus::Canceled);
        assert_eq!(
            AlgoStatus::parse("PAUSED"),
            AlgoStatus::Unknown("PAUSED".into())
        );
        assert_eq!(AlgoStatus::parse("PAUSED").as_str(), "PAUSED");
        assert!(AlgoStatus::Finished.fired() && AlgoStatus::Expired.ended_unfired());
        assert!(!AlgoStatus::parse("PAUSED").fired() && !AlgoStatus::New.ended_unfired());

        for (s, v) in [
            ("NEW", OrderStatus::New),
            ("PARTIALLY_FILLED", OrderStatus::PartiallyFilled),
            ("FILLED", OrderStatus::Filled),
            ("EXPIRED_IN_MATCH", OrderStatus::ExpiredInMatch),
        ] {
            let parsed: OrderStatus = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(parsed, v);
            assert_eq!(v.as_str(), s);
        }
        assert_eq!(
            OrderStatus::parse("NEW_INSURANCE"),
            OrderStatus::Unknown("NEW_INSURANCE".into())
        );
        assert!(OrderStatus::Filled.is_final() && !OrderStatus::Unknown("X".into()).is_final());
        assert!(OrderStatus::Rejected.ended_unfilled() && !OrderStatus::Filled.ended_unfilled());

        assert_eq!(ExecutionType::parse("TRADE"), ExecutionType::Trade);
        assert_eq!(ExecutionType::parse("AMENDMENT").as_str(), "AMENDMENT");
        assert_eq!(
            ExecutionType::parse("ADL"),
            ExecutionType::Unknown("ADL".into())
        );
        assert_eq!(ExecutionType::default(), ExecutionType::New);
    }
}
