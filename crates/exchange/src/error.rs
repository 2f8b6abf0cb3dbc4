//! Every failure of a call, classified by what the caller may do next.
//!
//! - [`ErrorClass::Rejected`]: a definite no. Nothing happened on the exchange; resending the
//!   same request gets the same answer (-2019 margin, -1111 precision, -4164 min notional, -2022
//!   reduce-only, -4120 wrong endpoint, a local refusal before sending, …).
//! - [`ErrorClass::Unknown`]: the request may have taken effect (timeout after sending, 5xx,
//!   -1007, -1006, an unreadable 2xx). For an order: resolve it with
//!   [`crate::resolve_unknown_order`] before doing anything else.
//! - [`ErrorClass::Retryable`]: a definite failure that will pass later (-1021 after the clock
//!   resync the client already did, 429/418/-1003 after the limiter's wait, -1008, a connection
//!   that never opened, 503 "Service Unavailable.").
//!
//! What a code means is [`ApiCode`]'s to say (`crate::vocab`).
//!
//! No variant ever carries an API key or secret: messages come from the exchange's answer or from
//! the transport error, and the request URL (which carries the signature) is stripped.

use crate::vocab::ApiCode;

/// What a caller may do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A definite no: do not resend unchanged.
    Rejected,
    /// May have taken effect: query before resending.
    Unknown,
    /// Did not take effect and will likely pass later: resend (the client already waits out
    /// bans and resyncs the clock).
    Retryable,
}

/// Why the client refused to send a request at all (nothing left the process).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("notional {notional} is below the symbol's minimum {min} (and not reduce-only)")]
    MinNotional { notional: String, min: String },
    #[error("quantity {qty} rounds below the symbol's minimum {min}")]
    QtyBelowMin { qty: String, min: String },
    #[error("quantity {qty} is above the symbol's maximum {max}")]
    QtyAboveMax { qty: String, max: String },
    #[error("price {price} is outside [{min}, {max}]")]
    PriceOutOfRange {
        price: String,
        min: String,
        max: String,
    },
    #[error("client order id {0:?} does not match ^[.A-Z:/a-z0-9_-]{{1,36}}$")]
    InvalidClientOrderId(String),
    #[error("symbol {0} is not in exchangeInfo")]
    UnknownSymbol(String),
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    #[error("no API key/secret configured for a signed endpoint")]
    MissingCredentials,
}

/// The timestamp and recvWindow a signed request was sent with: after server time passes
/// `timestamp_ms + recv_window_ms`, that request can no longer be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub timestamp_ms: i64,
    pub recv_window_ms: u64,
}

impl Fence {
    /// The server time after which the original request is provably dead.
    pub fn expires_at_ms(&self) -> i64 {
        self.timestamp_ms
            .saturating_add(i64::try_from(self.recv_window_ms).unwrap_or(i64::MAX))
    }
}

/// Any failure of an exchange call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The client refused before anything was sent.
    #[error("refused before sending: {0}")]
    Refused(#[from] Refusal),
    /// The exchange answered with an error code (HTTP status and Binance code/msg).
    #[error("exchange error {code} (http {status}): {msg}")]
    Api {
        status: u16,
        code: i64,
        msg: String,
        /// When the failed request was signed: its timestamp and recvWindow.
        fence: Option<Fence>,
    },
    /// 429 or 418: every request is held back until `retry_after_ms` has passed.
    #[error("rate limited (http {status}), all requests wait {retry_after_ms} ms")]
    RateLimited { status: u16, retry_after_ms: u64 },
    /// The request may have been processed: timeout, connection lost after sending, 5xx.
    #[error("outcome unknown: {reason}")]
    Unknown {
        reason: String,
        fence: Option<Fence>,
    },
    /// The connection could not be opened: nothing was sent.
    #[error("could not connect: {0}")]
    Connect(String),
    /// A 2xx answer that could not be read as the expected type.
    #[error("unreadable answer from {path}: {reason}")]
    Decode {
        path: String,
        reason: String,
        fence: Option<Fence>,
    },
}

impl ExchangeError {
    /// What the caller may do next.
    pub fn class(&self) -> ErrorClass {
        match self {
            ExchangeError::Refused(_) => ErrorClass::Rejected,
            ExchangeError::Api {
                status, code, msg, ..
            } => classify(*status, *code, msg),
            ExchangeError::RateLimited { .. } | ExchangeError::Connect(_) => ErrorClass::Retryable,
            ExchangeError::Unknown { .. } | ExchangeError::Decode { .. } => ErrorClass::Unknown,
        }
    }

    /// True when resending later is safe and sensible.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// True when the request may have taken effect.
    pub fn is_unknown_outcome(&self) -> bool {
        self.class() == ErrorClass::Unknown
    }

    /// Binance's error code as sent, when the exchange answered with one (to record or
    /// report; to decide on it, match [`api_code`](Self::api_code)).
    pub fn code(&self) -> Option<i64> {
        match self {
            ExchangeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// What Binance's error code means, when the exchange answered with one.
    pub fn api_code(&self) -> Option<ApiCode> {
        self.code().map(ApiCode::from_code)
    }

    /// The exchange answered that the order does not exist (`-2013`).
    pub fn is_no_such_order(&self) -> bool {
        self.api_code() == Some(ApiCode::NoSuchOrder)
    }

    /// The signed request's timestamp and recvWindow, when known.
    pub fn fence(&self) -> Option<Fence> {
        match self {
            ExchangeError::Api { fence, .. }
            | ExchangeError::Unknown { fence, .. }
            | ExchangeError::Decode { fence, .. } => *fence,
            _ => None,
        }
    }
}

/// Classifies an error answer from its HTTP status, Binance code and message.
pub fn classify(status: u16, code: i64, msg: &str) -> ErrorClass {
    let code = ApiCode::from_code(code);
    if status == 429 || status == 418 || code.retryable() {
        return ErrorClass::Retryable;
    }
    if code.outcome_unknown() {
        return ErrorClass::Unknown;
    }
    if status >= 500 {
        // Binance: "Service Unavailable." and "Internal error; unable to process your request."
        // are definite failures; any other 5xx (notably "Unknown error, please check your
        // request or try again later.") may have executed.
        let m = msg.trim();
        if m.starts_with("Service Unavailable")
            || m.starts_with("Internal error; unable to process")
        {
            return ErrorClass::Retryable;
        }
        return ErrorClass::Unknown;
    }
    if status == 408 {
        return ErrorClass::Unknown;
    }
    ErrorClass::Rejected
}

/// Strips the URL (it carries the signature and the query) from a transport error's text.
pub(crate) fn transport_reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64, msg: &str) -> ExchangeError {
        ExchangeError::Api {
            status,
            code,
            msg: msg.into(),
            fence: None,
        }
    }

    #[test]
    fn business_rejections_are_definite() {
        for code in [
            -2019, -1111, -4164, -2022, -4120, -1022, -2021, -4014, -4023, -4116, -2013,
        ] {
            assert_eq!(api(400, code, "x").class(), ErrorClass::Rejected, "{code}");
        }
        assert_eq!(
            ExchangeError::Refused(Refusal::MissingCredentials).class(),
            ErrorClass::Rejected
        );
    }

    #[test]
    fn may_have_succeeded_answers_are_unknown() {
        assert_eq!(
            api(400, -1007, "Timeout waiting").class(),
            ErrorClass::Unknown
        );
        assert_eq!(api(400, -1006, "unexpected").class(), ErrorClass::Unknown);
        assert_eq!(
            api(
                503,
                0,
                "Unknown error, please check your request or try again later."
            )
            .class(),
            ErrorClass::Unknown
        );
        assert_eq!(api(502, 0, "").class(), ErrorClass::Unknown);
        assert_eq!(api(408, 0, "").class(), ErrorClass::Unknown);
        let timeout = ExchangeError::Unknown {
            reason: "timed out".into(),
            fence: None,
        };
        assert!(timeout.is_unknown_outcome());
    }

    #[test]
    fn clock_throttle_and_ban_answers_are_retryable() {
        assert_eq!(api(400, -1021, "Timestamp").class(), ErrorClass::Retryable);
        assert_eq!(api(429, -1003, "Too many").class(), ErrorClass::Retryable);
        assert_eq!(api(418, -1003, "banned").class(), ErrorClass::Retryable);
        assert_eq!(api(400, -1008, "throttled").class(), ErrorClass::Retryable);
        assert_eq!(
            api(503, 0, "Service Unavailable.").class(),
            ErrorClass::Retryable
        );
        assert_eq!(
            api(
                503,
                0,
                "Internal error; unable to process your request. Please try again."
            )
            .class(),
            ErrorClass::Retryable
        );
        assert!(ExchangeError::Connect("refused".into()).is_retryable());
    }

    #[test]
    fn fence_expires_after_recv_window() {
        let f = Fence {
            timestamp_ms: 1_000,
            recv_window_ms: 5_000,
        };
        assert_eq!(f.expires_at_ms(), 6_000);
    }
}
