//! The HTTP API: JSON endpoints, a WebSocket pushing the dashboard's state, the control
//! endpoints behind a bearer token, and the dashboard page itself.
//!
//! Control endpoints only publish commands; the services that own the effect carry them out:
//! the kill switch, resume, close-all and retrain on `qt:control`, closing one position as a
//! `ClosePosition` intent on `qt:intents` (execution closes it at market, reduce-only), a
//! rollback as `ModelRolledBack` on `qt:models` (trading-bot loads it, clm records it), each
//! with its reason and who asked in the published event.

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
    CloseAll, ClosePosition, Event, ModelArtifactRef, ModelRolledBack, ResumeTrading, RetrainNow,
    SetKillSwitch, api, ids::new_event_id,
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
        .route("/api/control/close-position", post(close_position))
        .route("/api/control/rollback", post(rollback))
        .route("/api/models", get(models))
        .route("/reports/latest", get(latest_report))
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
    let (by_hour_utc, by_weekday_utc) = crate::metrics::pnl_by_time(&st.book.trades);
    let pause = st
        .pause
        .clone()
        .filter(|p| crate::app::pause_active(p, now));
    // The entries' pause as the decisions see it: the daily-loss pause, else the breaker.
    let entries_paused = pause.clone().or_else(|| {
        st.drawdown_breaker
            .as_ref()
            .filter(|b| b.tripped)
            .map(|b| api::PauseView {
                reason: "DRAWDOWN_BREAKER".into(),
                since: b.since,
                until: None,
                message: b.message.clone(),
            })
    });
    let traded = crate::charts::traded_symbols(&st.book.positions, &st.book.trades);
    let (buy_and_hold_symbols, buy_and_hold) = st.charts.buy_and_hold(&traded, &r.equity_curve);
    let long_short = crate::charts::long_short(&r.positions);
    let positions = &st.book.positions;
    let decisions = st.decisions.view(
        now,
        st.kill_switch_state.as_ref(),
        entries_paused.as_ref(),
        &|sym| positions.contains_key(sym),
    );
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
            by_symbol: r.by_symbol,
            by_hour_utc,
            by_weekday_utc,
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
        kill_switch_state: st.kill_switch_state.clone(),
        drawdown_breaker: st.drawdown_breaker.clone(),
        pause,
        drift: st.confirmed_drift.clone(),
        exchange_synced_at: r.exchange_synced_at,
        last_sync_error: st.last_sync_error.clone(),
        decisions,
        models: st.models.clone(),
        controls_enabled: !sh.settings.api_token.is_empty(),
        charts: st.charts.view(&st.book.positions, &st.book.trades),
        buy_and_hold,
        buy_and_hold_symbols,
        long_short,
        exchange_api: st.exchange_api.clone(),
        context: st.context.clone(),
        latest_report: st.latest_report.as_ref().map(|(v, _)| v.clone()),
    }
}

/// `GET /reports/latest`: the newest walk-forward report clm wrote, as it is (one
/// self-contained page).
async fn latest_report(State(sh): S) -> Response {
    let found = sh.state().latest_report.clone();
    let Some((_, path)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "clm has written no walk-forward report yet",
        );
    };
    match tokio::fs::read_to_string(&path).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => error(
            StatusCode::NOT_FOUND,
            format!("cannot read {}: {e}", path.display()),
        ),
    }
}

/// `GET /api/models`: the registry's cards and clm's schedule, read now.
async fn models(State(sh): S) -> Response {
    sh.observe().await;
    axum::Json(sh.state().models.clone()).into_response()
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClosePositionBody {
    symbol: String,
    #[serde(default)]
    reason: String,
}

/// Closes one open position: publishes a `ClosePosition` intent on `qt:intents` (execution
/// closes it at market, reduce-only, and cancels its protective orders as for any close). The
/// symbol must be a position the book holds.
async fn close_position(State(sh): S, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&sh, &headers) {
        return *r;
    }
    let b: ClosePositionBody = match parse(&body, None) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let symbol = b.symbol.trim().to_uppercase();
    if !sh.state().book.positions.contains_key(&symbol) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no open position in {symbol:?}"),
        );
    }
    let id = new_event_id();
    let cmd = ClosePosition {
        intent_id: format!("pi-close-{symbol}-{id}"),
        symbol,
        reason: format!(
            "operator via the API: {}",
            reason_or(b.reason, "close one position")
        ),
        position_side: None,
    };
    publish_command(&sh, id, Event::ClosePosition(cmd)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: String,
    reason: String,
}

/// Rolls back to a version of clm's registry: publishes `ModelRolledBack` on `qt:models` with
/// its artifact (path and SHA-256), as `qtctl models rollback` does. The version must be in the
/// registry, not the champion, with its artifact file present; the reason is required.
async fn rollback(State(sh): S, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&sh, &headers) {
        return *r;
    }
    let b: RollbackBody = match parse(&body, None) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    if b.reason.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "a reason is required to roll back");
    }
    let dir = sh.settings.models_dir();
    let path = dir.join("registry.json");
    let index: serde_json::Value = match std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the registry {}: {e}", path.display()),
            );
        }
    };
    let Some(row) = index["models"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["version"] == b.version.as_str()))
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("version {:?} is not in the registry", b.version),
        );
    };
    let champion = index["champion"].as_str().unwrap_or_default().to_owned();
    if champion == b.version {
        return error(
            StatusCode::CONFLICT,
            format!("{} is already the deployed model", b.version),
        );
    }
    let text = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
    let artifact = ModelArtifactRef {
        model_version: b.version.clone(),
        model: text("kind"),
        artifact_uri: text("artifact_uri"),
        sha256: text("sha256"),
    };
    if !std::path::Path::new(&artifact.artifact_uri).is_file() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "the artifact {} of {} is missing",
                artifact.artifact_uri, b.version
            ),
        );
    }
    let id = new_event_id();
    let cmd = ModelRolledBack {
        from_version: champion,
        artifact,
        reason: format!("operator via the API: {}", reason_or(b.reason, "rollback")),
        rolled_back_at: sh.now(),
    };
    publish_command(&sh, id, Event::ModelRolledBack(cmd)).await
}
