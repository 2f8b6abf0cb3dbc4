//! The HTTP API: JSON endpoints, a WebSocket pushing the dashboard's state, the control
//! endpoints behind a bearer token, and the dashboard page itself.
//!
//! Control endpoints only publish commands on `qt:control`; the services that own the effect
//! carry them out.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use qt_events::{
    CloseAll, Event, ResumeTrading, RetrainNow, SetKillSwitch, api, ids::new_event_id,
};
use serde::Deserialize;

use crate::alerts::ratio;
use crate::app::Shared;

const DASHBOARD: &str = include_str!("dashboard.html");

/// The routes, served next to `/health/*` and `/metrics`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/api/portfolio", get(portfolio))
        .route("/api/positions", get(positions))
        .route("/api/trades", get(trades))
        .route("/api/metrics", get(metrics))
        .route("/api/alerts", get(alerts))
        .route("/api/streams", get(streams))
        .route("/api/dashboard", get(dashboard_json))
        .route("/ws", get(ws))
        .route("/api/control/kill-switch", post(kill_switch))
        .route("/api/control/resume", post(resume))
        .route("/api/control/close-all", post(close_all))
        .route("/api/control/retrain", post(retrain))
        .with_state(shared)
}

type S = State<Arc<Shared>>;

fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    ApiError(code, msg.into()).into_response()
}

/// A refusal: its status and the message sent as `{"error": …}`.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(api::ApiErrorBody { error: self.1 })).into_response()
    }
}

async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

async fn portfolio(State(sh): S) -> Response {
    let now = sh.now();
    let st = sh.state();
    let r = st.book.report(now);
    axum::Json(api::PortfolioResponse {
        snapshot: r.snapshot,
        realized_pnl_total: r.realized_pnl_total,
        unrealized_by_symbol: r.unrealized_by_symbol,
        long_share: r.long_share,
        diversification: r.diversification,
        model: r.model,
        exchange_synced_at: r.exchange_synced_at,
        kill_switch: st.kill_switch,
        drawdown_breaker: st.drawdown_breaker.clone(),
        drift: st.confirmed_drift.clone(),
    })
    .into_response()
}

async fn positions(State(sh): S) -> Response {
    let now = sh.now();
    let r = sh.state().book.report(now);
    axum::Json(api::PositionsResponse {
        positions: r.positions,
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<usize>,
}

/// The newest `n` of a list kept oldest first, newest first.
fn newest<'a, T: Clone + 'a>(list: impl DoubleEndedIterator<Item = &'a T>, n: usize) -> Vec<T> {
    list.rev().take(n).cloned().collect()
}

async fn trades(State(sh): S, Query(q): Query<Limit>) -> Response {
    let n = q.limit.unwrap_or(50).min(1000);
    let st = sh.state();
    axum::Json(api::TradesResponse {
        trades: newest(st.book.trades.iter(), n),
        fills: newest(st.fills.iter(), n),
        rejections: newest(st.rejections.iter(), n),
    })
    .into_response()
}

async fn metrics(State(sh): S) -> Response {
    let now = sh.now();
    let r = sh.state().book.report(now);
    axum::Json(api::MetricsResponse {
        totals: r.totals,
        by_symbol: r.by_symbol,
        by_model_version: r.by_model_version,
        max_drawdown: r.max_drawdown,
        sharpe: r.sharpe,
        sortino: r.sortino,
        realized_pnl_total: r.realized_pnl_total,
        diversification: r.diversification,
        long_share: r.long_share,
        equity_curve: r.equity_curve,
    })
    .into_response()
}

async fn alerts(State(sh): S) -> Response {
    let st = sh.state();
    axum::Json(api::AlertsResponse {
        alerts: newest(st.alerts.iter(), usize::MAX),
        suppressed: st.engine.suppressed,
    })
    .into_response()
}

async fn streams(State(sh): S) -> Response {
    sh.observe().await;
    let st = sh.state();
    axum::Json(api::StreamsResponse {
        streams: st.streams.clone(),
        dead_letters: st.dead_letters,
        services: st.services.clone(),
    })
    .into_response()
}

/// Everything the dashboard shows, in one document.
pub fn dashboard_state(sh: &Shared) -> api::Dashboard {
    let now = sh.now();
    let st = sh.state();
    let r = st.book.report(now);
    let l = &sh.settings.limits;
    // The day's loss as a positive amount; zero (not "-0") without a loss.
    let loss_today = if r.snapshot.daily_pnl < rust_decimal::Decimal::ZERO {
        -r.snapshot.daily_pnl
    } else {
        rust_decimal::Decimal::ZERO
    };
    let max_positions = l.max_concurrent_positions as u64;
    let limits = api::LimitsUse {
        positions: api::LimitUse {
            value: u64::from(r.snapshot.open_positions),
            max: max_positions,
            ratio: if max_positions > 0 {
                f64::from(r.snapshot.open_positions) / max_positions as f64
            } else {
                0.0
            },
        },
        exposure: api::LimitUse {
            value: r.snapshot.gross_exposure,
            max: l.max_gross_exposure,
            ratio: ratio(r.snapshot.gross_exposure, l.max_gross_exposure),
        },
        daily_loss: api::LimitUse {
            value: loss_today,
            max: l.max_daily_loss,
            ratio: ratio(loss_today, l.max_daily_loss),
        },
        long_short: api::LongShortUse {
            long_share: r.long_share,
            max_side_fraction: l.max_side_fraction,
        },
    };
    api::Dashboard {
        now,
        snapshot: r.snapshot,
        positions: r.positions,
        realized_pnl_total: r.realized_pnl_total,
        metrics: api::DashboardMetrics {
            totals: r.totals,
            max_drawdown: r.max_drawdown,
            sharpe: r.sharpe,
            sortino: r.sortino,
            diversification: r.diversification,
            by_model_version: r.by_model_version,
        },
        equity_curve: r.equity_curve,
        limits,
        trades: newest(st.book.trades.iter(), 20),
        fills: newest(st.fills.iter(), 20),
        rejections: newest(st.rejections.iter(), 20),
        model: r.model.map(|m| api::DashboardModel {
            age_hours: (now - m.since) as f64 / 3_600_000.0,
            model: m.model,
            model_version: m.model_version,
            since: m.since,
            last_signal_at: m.last_signal_at,
        }),
        services: st.services.clone(),
        streams: st.streams.clone(),
        dead_letters: st.dead_letters,
        alerts: newest(st.alerts.iter(), 30),
        kill_switch: st.kill_switch,
        drawdown_breaker: st.drawdown_breaker.clone(),
        drift: st.confirmed_drift.clone(),
        exchange_synced_at: r.exchange_synced_at,
        last_sync_error: st.last_sync_error.clone(),
    }
}

async fn dashboard_json(State(sh): S) -> Response {
    axum::Json(dashboard_state(&sh)).into_response()
}

async fn ws(State(sh): S, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| push_updates(sh, socket))
}

/// Sends the dashboard state at once, then after every change (at most twice a second).
async fn push_updates(sh: Arc<Shared>, mut socket: WebSocket) {
    let mut rx = sh.subscribe();
    loop {
        let Ok(text) = serde_json::to_string(&dashboard_state(&sh)) else {
            return;
        };
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Checks `Authorization: Bearer <api_token>` within the control requests' rate limit; `Err`
/// is the answer to send.
fn authorize(sh: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if let Err(wait_ms) = sh.control_call(sh.now()) {
        let secs = (wait_ms + 999) / 1000;
        let msg = format!(
            "more than {} control requests in a minute: retry in {secs} s",
            sh.settings.control_per_minute
        );
        let mut r = ApiError(StatusCode::TOO_MANY_REQUESTS, msg).into_response();
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(Box::new(r));
    }
    let token = sh.settings.api_token.expose();
    if token.trim().is_empty() {
        return Err(Box::new(
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "control endpoints are disabled: no api_token is configured".into(),
            )
            .into_response(),
        ));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let refused = |why: &str| {
        Err(Box::new(
            ApiError(StatusCode::UNAUTHORIZED, why.into()).into_response(),
        ))
    };
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => refused("wrong bearer token"),
        None => refused("missing Authorization: Bearer <token>"),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KillSwitchBody {
    enabled: bool,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    reason: String,
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, empty_ok: Option<T>) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return empty_ok
            .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "a JSON body is required".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

async fn publish_command(sh: &Shared, command_id: String, event: Event) -> Response {
    let env = sh.bus.envelope(event).with_id(command_id);
    match sh.bus.publish(&env).await {
        Ok(entry) => (
            StatusCode::ACCEPTED,
            axum::Json(api::CommandAccepted {
                command_id: env.id.clone(),
                entry_id: entry.to_string(),
                kind: env.type_name().to_owned(),
            }),
        )
            .into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot publish the command: {e}"),
        ),
    }
}

fn reason_or(r: String, default: &str) -> String {
    if r.trim().is_empty() {
        default.to_owned()
    } else {
        r.chars().take(500).collect()
    }
}

async fn kill_switch(State(sh): S, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&sh, &headers) {
        return *r;
    }
    let b: KillSwitchBody = match parse(&body, None) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let id = new_event_id();
    let cmd = SetKillSwitch {
        command_id: id.clone(),
        enabled: b.enabled,
        reason: reason_or(b.reason, "operator via the API"),
        requested_by: "portfolio-intelligence-api".into(),
    };
    publish_command(&sh, id, Event::SetKillSwitch(cmd)).await
}

/// Resumes entries after the drawdown breaker tripped: publishes `ResumeTrading` (execution
/// carries it out). The reason is required: it is the audit trail of the decision.
async fn resume(State(sh): S, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&sh, &headers) {
        return *r;
    }
    let b: ResumeBody = match parse(&body, None) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    if b.reason.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "a reason is required to resume after the drawdown breaker",
        );
    }
    let id = new_event_id();
    let cmd = ResumeTrading {
        command_id: id.clone(),
        reason: reason_or(b.reason, "operator via the API"),
        requested_by: "portfolio-intelligence-api".into(),
    };
    publish_command(&sh, id, Event::ResumeTrading(cmd)).await
}

async fn close_all(State(sh): S, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&sh, &headers) {
        return *r;
    }
    let b: ReasonBody = match parse(&body, Some(ReasonBody::default())) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let id = new_event_id();
    let cmd = CloseAll {
        command_id: id.clone(),
        reason: reason_or(b.reason, "operator via the API"),
        requested_by: "portfolio-intelligence-api".into(),
    };
    publish_command(&sh, id, Event::CloseAll(cmd)).await
}

async fn retrain(State(sh): S, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&sh, &headers) {
        return *r;
    }
    let b: ReasonBody = match parse(&body, Some(ReasonBody::default())) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let id = new_event_id();
    let cmd = RetrainNow {
        command_id: id.clone(),
        reason: reason_or(b.reason, "operator via the API"),
        requested_by: "portfolio-intelligence-api".into(),
    };
    publish_command(&sh, id, Event::RetrainNow(cmd)).await
}
