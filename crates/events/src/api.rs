//! The JSON portfolio-intelligence's HTTP API serves (`/api/*`, the dashboard's WebSocket), as
//! the types that build it: the service serializes them, `qtctl` and the tests deserialize them,
//! so both sides name the same fields. Money is `Decimal` (a JSON string); ratios and statistics
//! are `f64`. A field added here reaches both sides at once; a field renamed changes what the
//! dashboard page (`dashboard.html`) reads, so it is a change of the wire.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{AlertRaised, PortfolioSnapshot};

/// An open position as the services report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenPosition {
    pub position_id: String,
    pub symbol: String,
    /// `LONG` or `SHORT`.
    pub side: String,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    /// Realized PnL so far (partial closes), before fees.
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    pub leverage: u32,
    pub opened_at: i64,
    pub model_version: String,
}

impl OpenPosition {
    /// Whether it is a long position.
    pub fn is_long(&self) -> bool {
        self.side == "LONG"
    }

    /// Signed quantity: positive long, negative short.
    pub fn signed_qty(&self) -> Decimal {
        if self.is_long() {
            self.quantity
        } else {
            -self.quantity
        }
    }

    /// Unrealized PnL at `mark`.
    pub fn unrealized(&self, mark: Decimal) -> Decimal {
        (mark - self.entry_price) * self.signed_qty()
    }
}

/// A position of a snapshot with its mark and PnL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    #[serde(flatten)]
    pub position: OpenPosition,
    pub mark_price: Decimal,
    pub notional: Decimal,
    pub unrealized_pnl: Decimal,
    /// Unrealized as a fraction of the entry notional.
    pub unrealized_pct: f64,
}

/// The model the signals come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub model: String,
    pub model_version: String,
    /// When it was deployed (or first seen on a signal when no deployment was seen).
    pub since: i64,
    pub last_signal_at: Option<i64>,
}

/// One difference between the exchange and the services' belief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub symbol: String,
    /// Signed quantity the services believe.
    pub believed: Decimal,
    /// Signed quantity the exchange holds.
    pub exchange: Decimal,
}

/// A closed position as portfolio-intelligence keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    pub position_id: String,
    pub symbol: String,
    /// `LONG` or `SHORT`.
    pub side: String,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    pub exit_price: Decimal,
    pub realized_pnl: Decimal,
    pub fees: Decimal,
    /// Realized minus fees.
    pub net_pnl: Decimal,
    /// The model version at entry, `unknown` when the position had no signal.
    pub model_version: String,
    pub opened_at: i64,
    pub closed_at: i64,
    pub reason: String,
}

/// Statistics of a set of closed trades.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TradeStats {
    pub trades: u32,
    pub wins: u32,
    pub losses: u32,
    /// Wins / trades; `None` without trades.
    pub win_rate: Option<f64>,
    /// Sum of the winning net PnLs.
    pub gross_profit: Decimal,
    /// Sum of the losing net PnLs, as a positive amount.
    pub gross_loss: Decimal,
    /// Gross profit / gross loss; `None` when there is no loss.
    pub profit_factor: Option<f64>,
    pub net_pnl: Decimal,
    pub fees: Decimal,
    /// Funding paid (negative) or earned while the group's positions were open; not in
    /// `net_pnl` nor in the win/loss counts (it is filled in by the book, not by
    /// [`trade_stats`]).
    #[serde(default)]
    pub funding: Decimal,
    /// `net_pnl + funding`: the group's PnL after fees and funding.
    #[serde(default)]
    pub total_pnl: Decimal,
    /// Largest fall of the cumulative net PnL (from 0, in closing order).
    pub max_drawdown: Decimal,
    /// Mean / sample standard deviation of the trades' net PnL.
    pub sharpe: Option<f64>,
    /// Mean / downside deviation of the trades' net PnL.
    pub sortino: Option<f64>,
}

/// The largest fall from a peak: amount and fraction of the peak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Drawdown {
    pub amount: Decimal,
    /// `amount / peak` (0 when the peak is not positive).
    pub fraction: f64,
}

/// One consumer group of one stream at one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSample {
    pub stream: String,
    pub group: String,
    pub pending: u64,
    pub lag: u64,
}

/// A service's readiness at one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub name: String,
    pub ready: bool,
    pub detail: String,
}

/// A fill as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillView {
    pub ts: i64,
    pub symbol: String,
    pub side: String,
    pub kind: String,
    pub quantity: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub reduce_only: bool,
    pub client_order_id: String,
}

/// A refused intent or order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectionView {
    pub ts: i64,
    pub symbol: String,
    pub reason: String,
    pub message: String,
    pub exchange_code: Option<i64>,
}

/// An alert seen on `qt:alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: String,
    pub ts: i64,
    #[serde(flatten)]
    pub alert: AlertRaised,
    /// Whether it was delivered to the channels (false: throttled or none configured).
    pub delivered: bool,
}

/// The drawdown breaker as last seen: execution's trip and resume alerts, and operators'
/// `ResumeTrading` commands, the newest one winning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerView {
    /// Whether entries are stopped by it.
    pub tripped: bool,
    /// When that was seen to change (the event's time, ms).
    pub since: i64,
    /// What the event said.
    pub message: String,
}

/// One stream's length and groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamView {
    pub stream: String,
    pub length: u64,
    pub groups: Vec<GroupSample>,
}

/// `GET /api/portfolio`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioResponse {
    pub snapshot: PortfolioSnapshot,
    /// Net of fees and funding.
    pub realized_pnl_total: Decimal,
    pub unrealized_by_symbol: BTreeMap<String, Decimal>,
    pub long_share: f64,
    pub diversification: f64,
    pub model: Option<ModelInfo>,
    pub exchange_synced_at: Option<i64>,
    /// The kill switch as last seen on `qt:control` (`None`: never seen).
    pub kill_switch: Option<bool>,
    pub drawdown_breaker: Option<BreakerView>,
    /// Confirmed differences between the exchange and the services' belief.
    pub drift: Vec<Drift>,
}

/// `GET /api/positions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionsResponse {
    pub positions: Vec<PositionView>,
}

/// `GET /api/trades`: the newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TradesResponse {
    pub trades: Vec<ClosedTrade>,
    pub fills: Vec<FillView>,
    pub rejections: Vec<RejectionView>,
}

/// `GET /api/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsResponse {
    pub totals: TradeStats,
    pub by_symbol: BTreeMap<String, TradeStats>,
    pub by_model_version: BTreeMap<String, TradeStats>,
    pub max_drawdown: Drawdown,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub realized_pnl_total: Decimal,
    pub diversification: f64,
    pub long_share: f64,
    /// `(ts, equity)`, oldest first.
    pub equity_curve: Vec<(i64, Decimal)>,
}

/// `GET /api/alerts`: the newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsResponse {
    pub alerts: Vec<AlertView>,
    /// Alerts held back by de-duplication or throttling.
    pub suppressed: u64,
}

/// `GET /api/streams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamsResponse {
    pub streams: Vec<StreamView>,
    pub dead_letters: u64,
    pub services: Vec<ServiceHealth>,
}

/// The trade metrics of the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardMetrics {
    pub totals: TradeStats,
    pub max_drawdown: Drawdown,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub diversification: f64,
    pub by_model_version: BTreeMap<String, TradeStats>,
    #[serde(default)]
    pub by_symbol: BTreeMap<String, TradeStats>,
    /// Closed trades' net PnL by the UTC hour they closed in (0–23, every hour listed).
    #[serde(default)]
    pub by_hour_utc: Vec<PnlBucket>,
    /// Closed trades' net PnL by the UTC weekday they closed on (0 = Monday … 6 = Sunday).
    #[serde(default)]
    pub by_weekday_utc: Vec<PnlBucket>,
}

/// Closed trades grouped by a time bucket (an hour of the day, a weekday).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PnlBucket {
    pub bucket: u32,
    /// `00`–`23`, or `Mon`–`Sun`.
    pub label: String,
    pub trades: u32,
    /// Net of fees (funding is not attributed to a close time).
    pub net_pnl: Decimal,
}

/// A limit's use: the value, the limit and `value / max` (0 without a limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitUse<V> {
    pub value: V,
    pub max: V,
    pub ratio: f64,
}

/// The long share against the largest fraction one side may hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongShortUse {
    pub long_share: f64,
    pub max_side_fraction: Decimal,
}

/// How much of each risk limit is in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsUse {
    pub positions: LimitUse<u64>,
    pub exposure: LimitUse<Decimal>,
    pub daily_loss: LimitUse<Decimal>,
    pub long_short: LongShortUse,
}

/// The model the signals come from, with its age.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardModel {
    pub model: String,
    pub model_version: String,
    pub since: i64,
    pub age_hours: f64,
    pub last_signal_at: Option<i64>,
}

/// `GET /api/dashboard` and every message of `/ws`: everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub now: i64,
    pub snapshot: PortfolioSnapshot,
    pub positions: Vec<PositionView>,
    pub realized_pnl_total: Decimal,
    pub metrics: DashboardMetrics,
    pub equity_curve: Vec<(i64, Decimal)>,
    pub limits: LimitsUse,
    /// The newest 20, newest first.
    pub trades: Vec<ClosedTrade>,
    pub fills: Vec<FillView>,
    pub rejections: Vec<RejectionView>,
    pub model: Option<DashboardModel>,
    pub services: Vec<ServiceHealth>,
    pub streams: Vec<StreamView>,
    pub dead_letters: u64,
    /// The newest 30, newest first.
    pub alerts: Vec<AlertView>,
    pub kill_switch: Option<bool>,
    /// The kill switch with when, why and by whom it was set (`None` only until the control
    /// stream could be read).
    #[serde(default)]
    pub kill_switch_state: Option<KillSwitchView>,
    pub drawdown_breaker: Option<BreakerView>,
    /// The pause of every entry execution announced and that still lasts.
    #[serde(default)]
    pub pause: Option<PauseView>,
    pub drift: Vec<Drift>,
    pub exchange_synced_at: Option<i64>,
    pub last_sync_error: Option<String>,
    /// Per symbol, the latest signal and why it did or did not trade (by symbol).
    #[serde(default)]
    pub decisions: Vec<DecisionView>,
    /// The model registry's cards and clm's schedule.
    #[serde(default)]
    pub models: ModelsView,
    /// Whether the control endpoints are enabled (an `api_token` is configured).
    #[serde(default)]
    pub controls_enabled: bool,
    /// Per symbol traded or seen on `market`: its last candles with the entries, exits,
    /// stops and targets drawn on them.
    #[serde(default)]
    pub charts: Vec<SymbolChart>,
    /// Buy-and-hold of the symbols traded that have candles, equal weight, from the same
    /// candles, on the equity curve's times (from the first time each of them has a closed
    /// candle), starting at the equity of that time.
    #[serde(default)]
    pub buy_and_hold: Vec<(i64, Decimal)>,
    /// The symbols `buy_and_hold` holds.
    #[serde(default)]
    pub buy_and_hold_symbols: Vec<String>,
    /// The open positions' long and short sides.
    #[serde(default)]
    pub long_short: LongShortBalance,
    /// The exchange API as each service that calls it reports it on its `/metrics`.
    #[serde(default)]
    pub exchange_api: Vec<ExchangeApiView>,
    /// The market-context sources as trading-bot's `/health/context` reports them.
    #[serde(default)]
    pub context: ContextView,
    /// The model version of the newest walk-forward report clm wrote (served at
    /// `/reports/latest`), when there is one.
    #[serde(default)]
    pub latest_report: Option<String>,
}

/// One closed candle of a chart (its open time, ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandleBar {
    pub t: i64,
    pub o: Decimal,
    pub h: Decimal,
    pub l: Decimal,
    pub c: Decimal,
}

/// An entry or an exit drawn on a chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartMark {
    pub ts: i64,
    pub price: Decimal,
    /// `entry` or `exit`.
    pub kind: String,
    /// `LONG` or `SHORT`: the position's side.
    pub side: String,
    /// The exit's reason, the entry's model version.
    pub label: String,
}

/// A stop or target of a position, as exit-brain asked for it (`ProtectPosition`), from when
/// it was asked until it was replaced or the position closed (`to: None`: still in place).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartLevel {
    /// `stop`, `take_profit` or `trailing` (its activation price).
    pub kind: String,
    /// The leg's name (`stop`, `tp1`, …).
    pub leg: String,
    pub price: Decimal,
    pub from: i64,
    pub to: Option<i64>,
}

/// One symbol's chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolChart {
    pub symbol: String,
    pub interval: String,
    /// Oldest first.
    pub candles: Vec<CandleBar>,
    /// Entries and exits within the candles' span.
    pub marks: Vec<ChartMark>,
    /// Stops and targets that overlap the candles' span.
    pub levels: Vec<ChartLevel>,
}

/// The open positions' sides: notional (at the mark) and count of each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LongShortBalance {
    pub long_notional: Decimal,
    pub short_notional: Decimal,
    /// Long minus short.
    pub net_notional: Decimal,
    pub long_positions: u32,
    pub short_positions: u32,
    /// Long notional over the gross (0.5 without a position).
    pub long_share: f64,
}

/// The exchange API as one service reports it on its `/metrics` (the `qt_exchange_*` series
/// of `qt-exchange`): the request weight used in the current minute as the exchange's last
/// answer said, the 429 and 418 answers counted since the service started, the latency of its
/// REST requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeApiView {
    pub service: String,
    /// `X-MBX-USED-WEIGHT-1M` of the last answer (the IP's weight this minute).
    pub weight_used_1m: Option<f64>,
    /// The weight one IP may use per minute (the exchange's published limit, a setting).
    pub weight_limit_1m: u32,
    /// 429 answers (rate limited) since the service started.
    pub rate_limited_429: u64,
    /// 418 answers (banned) since the service started.
    pub banned_418: u64,
    /// REST requests timed since the service started.
    pub requests: u64,
    /// Median and 99th percentile of their latency, ms (`None` before the first request).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Why the service's metrics could not be read, when they could not.
    pub error: Option<String>,
}

/// One request of a market-context source: the age of its cached values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextRequestHealth {
    /// `global`, `fng`, `funding_rate:BTCUSDT`, …
    pub request: String,
    /// When its cached values were fetched (ms); `None`: never.
    pub fetched_at: Option<i64>,
    pub age_ms: Option<i64>,
    /// `FRESH`, `STALE` or `MISSING` (stale values are served as missing).
    pub freshness: String,
    /// Its values when fresh: name → value (as text).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// One market-context source's health (trading-bot's `/health/context`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextSourceHealth {
    pub source: String,
    /// `fresh`, `failing` (its last request failed, its values still fresh), `stale`
    /// (a value older than the source's limit or never fetched), `held` (every instance holds
    /// off the provider: a 429's `Retry-After` or a backoff), `breaker_open` or `half_open`.
    #[serde(default)]
    pub state: String,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub consecutive_failures: u32,
    /// `closed`, `open`, `half_open`.
    pub breaker: String,
    /// When the open breaker lets one trial request through (ms).
    #[serde(default)]
    pub breaker_open_until_ms: Option<i64>,
    /// How long every instance still holds off the provider (`Retry-After` or backoff), ms.
    pub held_for_ms: Option<u64>,
    /// Until when (ms).
    #[serde(default)]
    pub held_until_ms: Option<i64>,
    pub upstream_requests: u64,
    /// The age of its oldest value (ms); `None` when a request was never fetched.
    #[serde(default)]
    pub oldest_value_age_ms: Option<i64>,
    /// How long it has not been `fresh` (ms); `None` while it is.
    #[serde(default)]
    pub unhealthy_for_ms: Option<i64>,
    #[serde(default)]
    pub requests: Vec<ContextRequestHealth>,
}

/// trading-bot's `GET /health/context`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextHealth {
    /// trading-bot's clock when it answered (ms).
    pub now: i64,
    pub sources: Vec<ContextSourceHealth>,
}

/// The market-context sources as the dashboard shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextView {
    /// When trading-bot's health was last read (this service's clock, ms).
    pub read_at: Option<i64>,
    pub sources: Vec<ContextSourceHealth>,
    /// Why it could not be read (no trading-bot configured, unreachable, no context task).
    pub error: Option<String>,
}

/// The answer of a control endpoint: the command published on `qt:control`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandAccepted {
    pub command_id: String,
    /// The stream entry's id.
    pub entry_id: String,
    /// The command's type name (`SetKillSwitch`, …).
    #[serde(rename = "type")]
    pub kind: String,
}

/// A refusal of the API (4xx/5xx).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: String,
}

/// The kill switch as the service knows it: the newest `SetKillSwitch` on `qt:control`, or
/// off when the stream holds none (execution starts with it off and only that command turns
/// it on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillSwitchView {
    pub enabled: bool,
    /// When it was last set (the command's time, ms); `None`: never set on the stream.
    pub since: Option<i64>,
    pub reason: String,
    pub requested_by: String,
}

/// A pause of every entry that execution announced by refusing one: the daily-loss pause
/// (with its end) or the drawdown breaker (until an operator resumes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseView {
    /// `DAILY_LOSS_PAUSE` or `DRAWDOWN_BREAKER` (the refusal's reason code).
    pub reason: String,
    /// When the refusal that announced it was published (ms).
    pub since: i64,
    /// When it ends (ms); `None`: until an operator resumes.
    pub until: Option<i64>,
    pub message: String,
}

/// The latest decision of the model on one symbol and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionView {
    pub symbol: String,
    /// `BUY`, `SELL` or `HOLD`.
    pub action: String,
    /// The model's confidence in the action (0 to 1), as the signal carries it.
    pub confidence: f64,
    /// The expected net return after every cost (a fraction of the notional), when the model
    /// prices its trades: of the side taken, or on HOLD of the better side, which fell short
    /// of the model's margin. `None`: the model does not price (momentum) or an older signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_return: Option<f64>,
    pub model: String,
    pub model_version: String,
    /// Open time of the candle it decided on (ms).
    pub candle_open_time: i64,
    /// When the signal was published (ms).
    pub ts: i64,
    /// `traded`, `pending`, `refused`, `no_edge`, `no_model`, `kill_switch`, `paused`,
    /// `position_open` or `no_intent`.
    pub outcome: String,
    /// Why, in words (the refusal's reason code and message when risk refused it).
    pub why: String,
}

/// One criterion of clm's promotion gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheckView {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// A model's out-of-sample backtest on the gate's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardBacktest {
    pub net_pnl: Decimal,
    pub max_drawdown_pct: f64,
    pub trades: u64,
    pub win_rate: f64,
}

/// The walk-forward of a model's training recipe against its baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardWalkForward {
    pub folds: u64,
    pub strategy_return: f64,
    pub strategy_trades: u64,
    pub strategy_max_drawdown_pct: f64,
    pub strategy_sharpe: Option<f64>,
    pub momentum_return: f64,
    pub buy_and_hold_return: f64,
    pub random_median_return: f64,
    pub random_p95_return: f64,
    /// Deflated Sharpe probability and the trials it counted.
    pub dsr: Option<f64>,
    pub trials: u64,
    pub verdict: String,
}

/// A version of clm's registry with the gate's card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub version: String,
    pub kind: String,
    /// `champion`, `challenger`, `rejected` or `retired`.
    pub status: String,
    pub created_at: i64,
    pub deployed_at: Option<i64>,
    /// The gate's answer; `None` when the registry holds no decision for it.
    pub promoted: Option<bool>,
    /// The failed checks joined (`name: detail; …`), empty when promoted.
    pub reason: String,
    pub checks: Vec<GateCheckView>,
    pub backtest: Option<CardBacktest>,
    pub walkforward: Option<CardWalkForward>,
    /// Why the walk-forward could not run, when it could not.
    pub walkforward_error: Option<String>,
}

/// clm's last run as its `/health/clm` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainResult {
    pub version: String,
    pub finished_at: i64,
    /// `promoted`, `rejected` or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// clm's schedule: the next retrain and the run in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainSchedule {
    /// When the next scheduled run is due (ms); 0: as soon as there is data.
    pub next_run_at: i64,
    /// The version being trained now.
    pub in_progress: Option<String>,
    /// A retrain request not yet served.
    pub requested: bool,
    pub last_result: Option<RetrainResult>,
    pub runs: u64,
}

/// The model registry and clm's schedule as the service last read them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelsView {
    /// The registry file read (clm's `registry.json`).
    pub registry: String,
    pub champion: Option<String>,
    /// Newest first.
    pub cards: Vec<ModelCard>,
    /// Why the registry could not be read, when it could not.
    pub registry_error: Option<String>,
    pub schedule: Option<RetrainSchedule>,
    /// Why clm's schedule could not be read, when it could not.
    pub schedule_error: Option<String>,
}
