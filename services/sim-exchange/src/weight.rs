//! Request-weight and order-count accounting as middleware on the exchange API: each request
//! is charged its weight (as Binance weighs it) and, for an order, one order of its account
//! against the [`crate::limits::RateLimiter`]; past a limit it is refused, else the used
//! counts go on the response (`X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S/1M`). It also
//! reads the server time the rest of the request runs at.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::call::{Call, Endpoint};
use crate::error::ApiError;
use crate::limits::set_header;

/// The weight of a request, as Binance counts it: the endpoint's, or one that depends on the
/// query's `limit` and on whether a `symbol` was sent.
pub(crate) fn request_weight(endpoint: &Endpoint, call: &Call) -> u32 {
    let q = |name| call.params.query_int(name).unwrap_or(500);
    match endpoint.path {
        "/fapi/v1/klines" => match q("limit") {
            ..100 => 1,
            100..500 => 2,
            500..=1000 => 5,
            _ => 10,
        },
        "/fapi/v1/openOrders" if !call.params.query_has("symbol") => 40,
        "/fapi/v1/ticker/24hr"
        | "/fapi/v1/ticker/price"
        | "/fapi/v2/ticker/price"
        | "/fapi/v1/ticker/bookTicker"
            if !call.params.query_has("symbol") =>
        {
            endpoint.weight.max(5)
        }
        "/fapi/v1/depth" => match q("limit") {
            ..=50 => 2,
            51..=100 => 5,
            101..=500 => 10,
            _ => 20,
        },
        _ => endpoint.weight,
    }
}

/// Middleware: read the server time for the request, count its weight (and the order), refuse
/// it past a limit, and put the used counts on the response.
pub(crate) async fn admit(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = app.now();
    let api_key = req
        .headers()
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some(call) = req.extensions_mut().get_mut::<Call>() else {
        return ApiError::internal().into_response();
    };
    call.now = now;
    let endpoint = call.endpoint;
    let weight = request_weight(endpoint, call);
    let (used, orders) =
        match app
            .limits
            .count(addr.ip(), &api_key, weight, endpoint.counts_as_order, now)
        {
            Ok(v) => v,
            Err(refused) => return *refused,
        };
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    set_header(h, "X-MBX-USED-WEIGHT-1M", used);
    if let Some((n10, n60)) = orders {
        set_header(h, "X-MBX-ORDER-COUNT-10S", n10);
        set_header(h, "X-MBX-ORDER-COUNT-1M", n60);
    }
    resp
}
