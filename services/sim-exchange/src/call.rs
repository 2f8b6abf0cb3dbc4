//! A request on its way through the layers: the endpoint it reached ([`Endpoint`], one row of
//! the route table in `routes.rs`, with its [`Gate`]) and what was sent ([`Call`]). The
//! middleware (`faults`, `weight`, `auth`) and the requests read it; it imports none of them.

use axum::body::Bytes;
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::params::Params;

/// What a request needs before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Market data: nothing.
    Public,
    /// A known `X-MBX-APIKEY` (listenKey).
    ApiKey,
    /// A known key and a valid signature with a fresh `timestamp`.
    Signed,
    /// The test control API: served only when it is on; no key, weight or faults.
    Control,
}

/// What runs a request: parses it from the call, applies it, answers the JSON.
pub(crate) type Handler = fn(&App, &Call) -> Result<Value, ApiError>;

/// One endpoint.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub gate: Gate,
    /// Request weight (before the parameter-dependent rules of `limits::request_weight`).
    pub weight: u32,
    /// Counts against the account's order limits (and may have its answer lost by a fault).
    pub counts_as_order: bool,
    pub handler: Handler,
}

/// One request on its way through the layers: its endpoint, what was sent (kept as sent for
/// the signature), the parameters parsed once, the server time it runs at and the account it
/// acts for.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub endpoint: &'static Endpoint,
    pub query: String,
    pub body: Bytes,
    pub params: Params,
    /// Server time, read when the request is admitted (after any injected latency).
    pub now: i64,
    /// The caller's API key once the gate passed; empty for public endpoints.
    pub account: String,
}

impl Call {
    /// The body as text (empty when it is not UTF-8).
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}
