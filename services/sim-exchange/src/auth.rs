//! API-key and signature checks, as middleware on the exchange API. An endpoint's [`Gate`]
//! says what it needs: nothing, a known `X-MBX-APIKEY`, or also a valid signature (hex
//! HMAC-SHA256 of the query string followed by the body, as sent) with a `timestamp` inside
//! `recvWindow` and not 1 s ahead of the server clock. The caller's account is set on the
//! [`Call`] for the request to act on. Secrets never leave this check.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::call::{Call, Gate};
use crate::error::ApiError;
use crate::sign;

fn api_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::new(401, -2014, "API-key format invalid."))
}

/// The account the request acts for (empty for public endpoints).
fn authenticate(app: &App, headers: &HeaderMap, call: &Call) -> Result<String, ApiError> {
    let gate = call.endpoint.gate;
    if gate == Gate::Public || gate == Gate::Control {
        return Ok(String::new());
    }
    let key = api_key(headers)?;
    let Some(secret) = app.secrets.get(key) else {
        return Err(ApiError::unknown_key());
    };
    if gate == Gate::Signed {
        let p = &call.params;
        let ts = p
            .int("timestamp")?
            .ok_or_else(|| ApiError::mandatory("timestamp"))?;
        let recv = p.int("recvWindow")?.unwrap_or(5_000);
        if !(1..=60_000).contains(&recv) {
            return Err(ApiError::bad(-1131, "recvWindow must be less than 60000"));
        }
        let (q, qs) = sign::strip_signature(&call.query);
        let (b, bs) = sign::strip_signature(call.body_str());
        let Some(sig) = qs.or(bs) else {
            return Err(ApiError::mandatory("signature"));
        };
        if !sign::verify(secret, &format!("{q}{b}"), &sig) {
            return Err(ApiError::bad(
                -1022,
                "Signature for this request is not valid.",
            ));
        }
        let now = call.now;
        if ts >= now.saturating_add(1_000) {
            return Err(ApiError::bad(
                -1021,
                "Timestamp for this request was 1000ms ahead of the server's time.",
            ));
        }
        if now.saturating_sub(ts) > recv {
            return Err(ApiError::bad(
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
            ));
        }
    }
    Ok(key.to_string())
}

/// Middleware: refuse the request unless its key (and signature) pass its endpoint's gate.
pub(crate) async fn check(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Some(call) = parts.extensions.get_mut::<Call>() else {
        return ApiError::internal().into_response();
    };
    match authenticate(&app, &parts.headers, call) {
        Ok(account) => call.account = account,
        Err(e) => return e.into_response(),
    }
    next.run(Request::from_parts(parts, body)).await
}
