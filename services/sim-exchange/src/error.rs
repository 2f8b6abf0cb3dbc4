//! The one error type of the API, and the response it is: an HTTP status plus Binance's
//! `{"code": -NNNN, "msg": "..."}`. Every refusal of every layer (gate, weight, faults,
//! parameters, the exchange's rules) is one of these.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {msg}")]
pub struct ApiError {
    pub status: u16,
    pub code: i64,
    pub msg: String,
}

impl ApiError {
    pub fn new(status: u16, code: i64, msg: impl Into<String>) -> Self {
        Self {
            status,
            code,
            msg: msg.into(),
        }
    }
    /// A 400 with a business code.
    pub fn bad(code: i64, msg: impl Into<String>) -> Self {
        Self::new(400, code, msg)
    }
    pub fn mandatory(name: &str) -> Self {
        Self::bad(
            -1102,
            format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        )
    }
    pub fn invalid(name: &str) -> Self {
        Self::bad(
            -1130,
            format!("Data sent for parameter '{name}' is not valid."),
        )
    }
    pub fn not_required(name: &str) -> Self {
        Self::bad(-1106, format!("Parameter '{name}' sent when not required."))
    }
    pub fn no_such_order() -> Self {
        Self::bad(-2013, "Order does not exist.")
    }
    pub fn unknown_order() -> Self {
        Self::bad(-2011, "Unknown order sent.")
    }
    pub fn invalid_symbol() -> Self {
        Self::bad(-1121, "Invalid symbol.")
    }
    /// A key that is not one of the configured accounts.
    pub fn unknown_key() -> Self {
        Self::new(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        )
    }
    /// A path (or method) the exchange does not serve.
    pub fn not_found() -> Self {
        Self::new(404, -1000, "Not found")
    }
    /// A request that reached a handler without passing through the request pipeline.
    pub fn internal() -> Self {
        Self::new(
            500,
            -1000,
            "An unknown error occurred while processing the request.",
        )
    }
    pub fn body(&self) -> String {
        serde_json::json!({"code": self.code, "msg": self.msg}).to_string()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}
