//! The route table: every REST endpoint of the exchange (`/fapi/…`, `/futures/data/…`) and of the test control
//! API (`/sim/…`) once, with its gate, weight and request type, and the one [`router`] built
//! from it with the WebSocket and health routes. A request to `/fapi` goes through the layers
//! in this order: [`edge`] (body, endpoint, parameters parsed once into a [`Call`]),
//! [`crate::faults::inject`], [`crate::weight::admit`] (server time, weight, order count),
//! [`crate::auth::check`] (key, signature), then [`dispatch`] runs the endpoint's request.
//! Every refusal is an [`ApiError`], which is the response.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use crate::app::App;
use crate::call::{Call, Endpoint, Gate, Handler};
use crate::error::ApiError;
use crate::params::Params;
use crate::requests::account::{
    AccountInfo, Balance, CommissionRate, GetMultiAssetsMode, GetPositionMode, Income,
    LeverageBrackets, PositionRisk, SetLeverage, SetMarginType, SetMultiAssetsMode,
    SetPositionMode,
};
use crate::requests::algos::{AllAlgos, CancelAlgo, CancelAllAlgos, NewAlgo, OpenAlgos, QueryAlgo};
use crate::requests::control::{
    AutoCloseRequest, DropWebSockets, ExpireListenKeys, GetFaults, GetLimits, SaveSnapshot,
    SetFaults, SetLimits, SetMark, SimBook, SimState, Step,
};
use crate::requests::futures_data::{
    GlobalLongShortAccount, OpenInterest, OpenInterestHist, TakerLongShort, TopLongShortPosition,
};
use crate::requests::listen_key::{CloseListenKey, KeepListenKey, StartListenKey};
use crate::requests::market_data::{
    BookTicker, Depth, ExchangeInfo, FundingRateHistory, Klines, Ping, PremiumIndex, ServerTime,
    Ticker24h, TickerPrice,
};
use crate::requests::orders::{
    AllOrders, BatchCancel, BatchNew, CancelAll, CancelOrder, NewOrder, OpenOrders, QueryOpenOrder,
    QueryOrder, UserTrades,
};
use crate::requests::run;
use crate::ws;

const fn ep(
    method: &'static str,
    path: &'static str,
    gate: Gate,
    weight: u32,
    handler: Handler,
) -> Endpoint {
    Endpoint {
        method,
        path,
        gate,
        weight,
        counts_as_order: false,
        handler,
    }
}

const fn order(path: &'static str, weight: u32, handler: Handler) -> Endpoint {
    Endpoint {
        method: "POST",
        path,
        gate: Gate::Signed,
        weight,
        counts_as_order: true,
        handler,
    }
}

const fn control(method: &'static str, path: &'static str, handler: Handler) -> Endpoint {
    ep(method, path, Gate::Control, 0, handler)
}

use Gate::{ApiKey, Public, Signed};

/// Every endpoint.
#[rustfmt::skip]
pub(crate) static ROUTES: &[Endpoint] = &[
    ep("GET",    "/fapi/v1/ping",               Public, 1,  run::<Ping>),
    ep("GET",    "/fapi/v1/time",               Public, 1,  run::<ServerTime>),
    ep("GET",    "/fapi/v1/exchangeInfo",       Public, 1,  run::<ExchangeInfo>),
    ep("GET",    "/fapi/v1/klines",             Public, 5,  run::<Klines>),
    ep("GET",    "/fapi/v1/depth",              Public, 5,  run::<Depth>),
    ep("GET",    "/fapi/v1/ticker/24hr",        Public, 1,  run::<Ticker24h>),
    ep("GET",    "/fapi/v1/ticker/price",       Public, 1,  run::<TickerPrice>),
    ep("GET",    "/fapi/v2/ticker/price",       Public, 1,  run::<TickerPrice>),
    ep("GET",    "/fapi/v1/ticker/bookTicker",  Public, 1,  run::<BookTicker>),
    ep("GET",    "/fapi/v1/premiumIndex",       Public, 1,  run::<PremiumIndex>),
    ep("GET",    "/fapi/v1/fundingRate",        Public, 1,  run::<FundingRateHistory>),
    ep("GET",    "/fapi/v1/openInterest",       Public, 1,  run::<OpenInterest>),
    ep("GET",    "/futures/data/openInterestHist",              Public, 0, run::<OpenInterestHist>),
    ep("GET",    "/futures/data/topLongShortPositionRatio",     Public, 0, run::<TopLongShortPosition>),
    ep("GET",    "/futures/data/globalLongShortAccountRatio",   Public, 0, run::<GlobalLongShortAccount>),
    ep("GET",    "/futures/data/takerlongshortRatio",           Public, 0, run::<TakerLongShort>),
    ep("GET",    "/fapi/v1/income",             Signed, 30, run::<Income>),
    ep("POST",   "/fapi/v1/listenKey",          ApiKey, 1,  run::<StartListenKey>),
    ep("PUT",    "/fapi/v1/listenKey",          ApiKey, 1,  run::<KeepListenKey>),
    ep("DELETE", "/fapi/v1/listenKey",          ApiKey, 1,  run::<CloseListenKey>),
    order(       "/fapi/v1/order",                      0,  run::<NewOrder>),
    ep("GET",    "/fapi/v1/order",              Signed, 1,  run::<QueryOrder>),
    ep("DELETE", "/fapi/v1/order",              Signed, 1,  run::<CancelOrder>),
    ep("GET",    "/fapi/v1/openOrder",          Signed, 1,  run::<QueryOpenOrder>),
    ep("GET",    "/fapi/v1/openOrders",         Signed, 1,  run::<OpenOrders>),
    ep("GET",    "/fapi/v1/allOrders",          Signed, 5,  run::<AllOrders>),
    ep("DELETE", "/fapi/v1/allOpenOrders",      Signed, 1,  run::<CancelAll>),
    ep("GET",    "/fapi/v1/userTrades",         Signed, 5,  run::<UserTrades>),
    order(       "/fapi/v1/algoOrder",                  0,  run::<NewAlgo>),
    order(       "/fapi/v1/batchOrders",                5,  run::<BatchNew>),
    ep("DELETE", "/fapi/v1/batchOrders",        Signed, 1,  run::<BatchCancel>),
    ep("GET",    "/fapi/v1/algoOrder",          Signed, 1,  run::<QueryAlgo>),
    ep("DELETE", "/fapi/v1/algoOrder",          Signed, 1,  run::<CancelAlgo>),
    ep("GET",    "/fapi/v1/openAlgoOrders",     Signed, 1,  run::<OpenAlgos>),
    ep("GET",    "/fapi/v1/allAlgoOrders",      Signed, 5,  run::<AllAlgos>),
    ep("DELETE", "/fapi/v1/algoOpenOrders",     Signed, 1,  run::<CancelAllAlgos>),
    ep("GET",    "/fapi/v2/balance",            Signed, 5,  run::<Balance>),
    ep("GET",    "/fapi/v3/balance",            Signed, 5,  run::<Balance>),
    ep("GET",    "/fapi/v2/account",            Signed, 5,  run::<AccountInfo<true>>),
    ep("GET",    "/fapi/v3/account",            Signed, 5,  run::<AccountInfo<false>>),
    ep("GET",    "/fapi/v2/positionRisk",       Signed, 5,  run::<PositionRisk<true>>),
    ep("GET",    "/fapi/v3/positionRisk",       Signed, 5,  run::<PositionRisk<false>>),
    ep("POST",   "/fapi/v1/leverage",           Signed, 1,  run::<SetLeverage>),
    ep("POST",   "/fapi/v1/marginType",         Signed, 1,  run::<SetMarginType>),
    ep("GET",    "/fapi/v1/positionSide/dual",  Signed, 30, run::<GetPositionMode>),
    ep("POST",   "/fapi/v1/positionSide/dual",  Signed, 1,  run::<SetPositionMode>),
    ep("GET",    "/fapi/v1/multiAssetsMargin",  Signed, 30, run::<GetMultiAssetsMode>),
    ep("POST",   "/fapi/v1/multiAssetsMargin",  Signed, 1,  run::<SetMultiAssetsMode>),
    ep("GET",    "/fapi/v1/leverageBracket",    Signed, 1,  run::<LeverageBrackets>),
    ep("GET",    "/fapi/v1/commissionRate",     Signed, 20, run::<CommissionRate>),
    control("POST", "/sim/step",              run::<Step>),
    control("GET",  "/sim/state",             run::<SimState>),
    control("GET",  "/sim/book",              run::<SimBook>),
    control("POST", "/sim/mark",              run::<SetMark>),
    control("GET",  "/sim/faults",            run::<GetFaults>),
    control("POST", "/sim/faults",            run::<SetFaults>),
    control("GET",  "/sim/limits",            run::<GetLimits>),
    control("POST", "/sim/limits",            run::<SetLimits>),
    control("POST", "/sim/ws/drop",           run::<DropWebSockets>),
    control("POST", "/sim/listenKey/expire",  run::<ExpireListenKeys>),
    control("POST", "/sim/snapshot",          run::<SaveSnapshot>),
    control("POST", "/sim/autoclose",         run::<AutoCloseRequest>),
];

static BY_METHOD_AND_PATH: LazyLock<HashMap<(&'static str, &'static str), &'static Endpoint>> =
    LazyLock::new(|| ROUTES.iter().map(|e| ((e.method, e.path), e)).collect());

/// The endpoint of `method` and `path`, if the exchange serves it.
pub(crate) fn find(method: &str, path: &str) -> Option<&'static Endpoint> {
    BY_METHOD_AND_PATH.get(&(method, path)).copied()
}

/// The whole HTTP and WebSocket surface of `app`, built once.
pub(crate) fn router(app: Arc<App>) -> Router {
    let fapi = any(dispatch)
        .layer(from_fn_with_state(app.clone(), crate::auth::check))
        .layer(from_fn_with_state(app.clone(), crate::weight::admit))
        .layer(from_fn_with_state(app.clone(), crate::faults::inject))
        .layer(from_fn_with_state(app.clone(), edge));
    let mut r = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route(
            "/health/ready",
            get(|| async { axum::Json(json!({"status": "ready"})) }),
        )
        .route("/fapi/{*rest}", fapi.clone())
        .route("/futures/data/{*rest}", fapi)
        .route("/private/ws", get(ws::private_raw))
        .route("/private/ws/{key}", get(ws::private_path))
        .route("/private/stream", get(ws::private_combined));
    // Market streams under Binance's current (`/market`, `/public`) and legacy paths.
    for prefix in ["", "/market", "/public"] {
        r = r
            .route(&format!("{prefix}/ws"), get(ws::raw_root))
            .route(&format!("{prefix}/ws/{{*streams}}"), get(ws::raw_streams))
            .route(&format!("{prefix}/stream"), get(ws::combined));
    }
    if app.control_api {
        r = r.route("/sim/{*rest}", any(control_api));
    }
    r.with_state(app)
}

/// The body of `req` (refused as axum refuses an unreadable body) and the endpoint of its
/// method and path among those of `control` or not (Binance's 404 otherwise).
async fn read_request(
    req: Request,
    control: bool,
) -> Result<(axum::http::request::Parts, Bytes, &'static Endpoint), Response> {
    let (parts, body) = req.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(IntoResponse::into_response)?;
    let endpoint = find(parts.method.as_str(), parts.uri.path())
        .filter(|e| (e.gate == Gate::Control) == control)
        .ok_or_else(|| ApiError::not_found().into_response())?;
    Ok((parts, bytes, endpoint))
}

/// Outermost layer of `/fapi`: read the body, find the endpoint and parse the parameters
/// (query, then `x-www-form-urlencoded` body) once.
async fn edge(req: Request, next: Next) -> Response {
    let (parts, body, endpoint) = match read_request(req, false).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    // The caller's trace (its `traceparent` header) goes on through this request.
    let span = tracing::info_span!("request", method = %parts.method, path = %parts.uri.path());
    qt_runtime::telemetry::continue_trace(
        &span,
        parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    let query = parts.uri.query().unwrap_or("").to_string();
    let params = Params::new(&query, std::str::from_utf8(&body).unwrap_or(""));
    let mut req = Request::from_parts(parts, Body::empty());
    req.extensions_mut().insert(Call {
        endpoint,
        query,
        body,
        params,
        now: 0,
        account: String::new(),
    });
    tracing::Instrument::instrument(next.run(req), span).await
}

/// Innermost: run the endpoint's request.
async fn dispatch(State(app): State<Arc<App>>, mut req: Request) -> Response {
    let Some(call) = req.extensions_mut().remove::<Call>() else {
        return ApiError::internal().into_response();
    };
    answer((call.endpoint.handler)(&app, &call))
}

/// `/sim/…`: parameters from the query only (a JSON body is the request's own), no gate,
/// weight or faults.
async fn control_api(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body, endpoint) = match read_request(req, true).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let query = parts.uri.query().unwrap_or("").to_string();
    let call = Call {
        endpoint,
        params: Params::new(&query, ""),
        query,
        body,
        now: app.now(),
        account: String::new(),
    };
    answer((endpoint.handler)(&app, &call))
}

fn answer(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{ApiKey, SimConfig};

    #[test]
    fn every_endpoint_is_in_the_table_once() {
        assert_eq!(BY_METHOD_AND_PATH.len(), ROUTES.len());
        for e in ROUTES {
            assert!(std::ptr::eq(find(e.method, e.path).unwrap(), e));
            assert_eq!(e.gate == Gate::Control, e.path.starts_with("/sim/"));
            assert!(!e.counts_as_order || (e.method == "POST" && e.gate == Gate::Signed));
        }
        assert!(find("HEAD", "/fapi/v1/ping").is_none());
    }

    /// The server built from the table answers every endpoint in it (a refusal at worst),
    /// and Binance's 404 for a path or method that is not in it.
    #[tokio::test]
    async fn the_served_router_answers_every_endpoint_of_the_table_and_only_those() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let app = App::new(SimConfig {
            keys: vec![ApiKey {
                key: "k".into(),
                secret: "s".into(),
            }],
            warmup_candles: 20,
            ..SimConfig::default()
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(crate::server::run(Arc::new(app), listener, stop.clone()));
        let http = reqwest::Client::new();
        let send = |method: &str, path: &str| {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            http.request(m, format!("{base}{path}")).send()
        };
        for e in ROUTES {
            let r = send(e.method, e.path).await.unwrap();
            assert_ne!(r.status(), 404, "{} {}", e.method, e.path);
        }
        for (method, path) in [
            ("GET", "/fapi/v1/nothing"),
            ("PATCH", "/fapi/v1/order"),
            ("GET", "/sim/nothing"),
            ("DELETE", "/sim/state"),
        ] {
            let r = send(method, path).await.unwrap();
            assert_eq!(r.status(), 404, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], -1000, "{method} {path}");
        }
        stop.cancel();
        server.await.unwrap().unwrap();
    }
}
