//! Fault injection, as middleware on the exchange API: added latency (for every request, or
//! for the requests of one path), 503s for requests that
//! are not executed, and order placements that are executed but whose answer is lost (a 503
//! `-1007` after a delay), each by the settings of `/sim/faults` (or `--fault-*`), counted in
//! [`crate::app::FaultCounts`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::app::{App, lock};
use crate::call::Call;
use crate::error::ApiError;

/// What the fault settings decide for one request.
struct Decision {
    latency_ms: u64,
    fail: bool,
    lose: bool,
    lost_ms: u64,
}

fn decide(app: &App, path: &str, order: bool) -> Decision {
    let mut f = lock(&app.faults);
    let mut rng = lock(&app.rng);
    let fail = if f.fail_next > 0 {
        f.fail_next -= 1;
        true
    } else {
        f.error_rate > 0.0 && rng.random_bool(f.error_rate.clamp(0.0, 1.0))
    };
    let lose = order
        && !fail
        && if f.lose_next > 0 {
            f.lose_next -= 1;
            true
        } else {
            f.lose_response_rate > 0.0 && rng.random_bool(f.lose_response_rate.clamp(0.0, 1.0))
        };
    Decision {
        latency_ms: f
            .latency_ms
            .saturating_add(f.path_latency_ms.get(path).copied().unwrap_or(0)),
        fail,
        lose,
        lost_ms: f.lost_response_ms,
    }
}

/// Middleware: delay, fail or lose the answer of the request as the fault settings say.
pub(crate) async fn inject(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let order = req
        .extensions()
        .get::<Call>()
        .is_some_and(|c| c.endpoint.counts_as_order);
    let d = decide(&app, req.uri().path(), order);
    if d.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(d.latency_ms)).await;
    }
    if d.fail {
        app.fault_counts.errors.fetch_add(1, Ordering::Relaxed);
        return ApiError::new(503, -1001, "Service Unavailable.").into_response();
    }
    let resp = next.run(req).await;
    if !d.lose {
        return resp;
    }
    // Executed, but the answer never comes back in time.
    app.fault_counts
        .lost_responses
        .fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(d.lost_ms)).await;
    ApiError::new(
        503,
        -1007,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    )
    .into_response()
}
