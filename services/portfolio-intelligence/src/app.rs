//! The service's state: what it holds (`Shared`), how each consumed event changes it, the
//! snapshots and the alerts. The exchange sync and the periodic loop are in [`crate::sync`];
//! the kill switch, pause and breaker as read from the streams in [`crate::control_state`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use qt_bus::{Bus, Delivery, Handler, HandlerError, Outcome};
use qt_events::clock::SharedClock;
use qt_events::{
    AlertRaised, Envelope, Event, PortfolioSnapshot, RejectReason, Stream, ids::derived_event_id,
};
use qt_exchange::{ApiCode, ExchangeError};
use qt_store::StoreError;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tokio::sync::watch;

use crate::alerts::{
    AlertEngine, DeliveryGate, GroupSample, Notifier, Observations, ServiceHealth,
};
use crate::book::{Book, Drift};
use crate::charts::Charts;
use crate::db::Db;
use crate::settings::Settings;
use qt_events::api::{ContextView, ExchangeApiView};

/// Streams it keeps a group on.
pub const GROUPS: &[Stream] = &[
    Stream::Intents,
    Stream::Orders,
    Stream::Positions,
    Stream::Market,
    Stream::Signals,
    Stream::Models,
    Stream::Control,
    Stream::Alerts,
];
/// Streams it publishes.
/// `intents` and `models` carry two operator commands: closing one position
/// (`ClosePosition`, as exit-brain sends it) and rolling back a model (`ModelRolledBack`, as
/// `qtctl models rollback` sends it).
pub const PRODUCES: &[Stream] = &[
    Stream::Portfolio,
    Stream::Alerts,
    Stream::Control,
    Stream::Intents,
    Stream::Models,
];

/// How long a daily-loss pause whose refusal does not say when it ends is shown (trading-bot
/// holds entries as long, then one entry finds out).
pub const PAUSE_RECHECK_MS: i64 = 15 * 60_000;

const RECENT: usize = 200;

pub use qt_events::api::{
    AlertView, BreakerView, FillView, KillSwitchView, ModelsView, PauseView, RejectionView,
    StreamView,
};

pub use crate::control_state::{breaker_from_event, kill_switch_never_set, pause_active};
use crate::control_state::{kill_switch_of, merge_breaker, merge_pause, pause_of};
use crate::decisions::{Decisions, reason_code};
pub use crate::sync::{Intel, run_periodic};
use crate::sync::{http_client, poll_services};

/// Everything that changes at run time.
#[derive(Debug)]
pub struct State {
    pub book: Book,
    pub engine: AlertEngine,
    pub gate: DeliveryGate,
    pub alerts: VecDeque<AlertView>,
    pub fills: VecDeque<FillView>,
    pub rejections: VecDeque<RejectionView>,
    pub exchange_errors: VecDeque<i64>,
    pub rate_limits: Vec<(i64, String)>,
    pub streams: Vec<StreamView>,
    pub dead_letters: u64,
    pub services: Vec<ServiceHealth>,
    /// Consecutive syncs that showed a difference, per symbol.
    pub drift_counts: BTreeMap<String, u32>,
    pub confirmed_drift: Vec<Drift>,
    pub kill_switch: Option<bool>,
    /// The kill switch with when and why; `None` until the control stream was read.
    pub kill_switch_state: Option<KillSwitchView>,
    /// The newest daily-loss pause announced (shown while it lasts).
    pub pause: Option<PauseView>,
    /// Per symbol, the latest signal and the facts about its entry.
    pub decisions: Decisions,
    /// clm's registry and schedule, as last read.
    pub models: ModelsView,
    /// The drawdown breaker, when an event about it has been seen.
    pub drawdown_breaker: Option<BreakerView>,
    pub last_snapshot: Option<PortfolioSnapshot>,
    pub last_sync_error: Option<String>,
    /// Candles, stops and targets per symbol for the charts.
    pub charts: Charts,
    /// The exchange API as the services report it, as last read.
    pub exchange_api: Vec<ExchangeApiView>,
    /// The market-context sources as last read from trading-bot.
    pub context: ContextView,
    /// The newest walk-forward report clm wrote: its version and file.
    pub latest_report: Option<(String, std::path::PathBuf)>,
}

/// What the handlers, the tasks and the HTTP API share.
#[derive(Debug)]
pub struct Shared {
    pub db: Db,
    pub bus: Bus,
    pub clock: SharedClock,
    pub settings: Settings,
    pub notifier: Notifier,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    /// Times (clock ms) of the control requests of the last minute.
    control_calls: Mutex<VecDeque<i64>>,
}

/// Errors of the service's operations.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("exchange: {0}")]
    Exchange(#[from] ExchangeError),
    #[error("bus: {0}")]
    Bus(#[from] qt_bus::BusError),
}

impl AppError {
    pub fn is_retryable(&self) -> bool {
        match self {
            AppError::Store(e) => e.is_retryable(),
            AppError::Exchange(e) => e.is_retryable(),
            AppError::Bus(e) => e.is_retryable(),
        }
    }
}

impl Shared {
    /// Counts a control request at `now`: `Err(ms to wait)` when the last minute already had
    /// `control_per_minute` of them.
    pub fn control_call(&self, now: i64) -> Result<(), i64> {
        let mut calls = self
            .control_calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while calls.front().is_some_and(|t| *t <= now - 60_000) {
            calls.pop_front();
        }
        let limit = usize::try_from(self.settings.control_per_minute).unwrap_or(usize::MAX);
        if calls.len() >= limit {
            return Err(calls.front().map_or(60_000, |t| t + 60_000 - now).max(1));
        }
        calls.push_back(now);
        Ok(())
    }

    /// Builds the state from the database (open positions, trades, model, equity curve).
    pub async fn load(
        db: Db,
        bus: Bus,
        clock: SharedClock,
        settings: Settings,
    ) -> Result<Arc<Self>, AppError> {
        let mut book = Book::new(settings.initial_balance, settings.equity_points);
        for p in db.positions().await? {
            book.positions.insert(p.symbol.clone(), p);
        }
        book.trades = db.trades(settings.trades_kept).await?;
        book.funding = db.funding(settings.trades_kept).await?;
        book.model = db.model().await?;
        let saved_kill = db.kill_switch().await?;
        for (ts, e) in db.equity_curve(settings.equity_points).await? {
            book.push_equity(ts, e);
        }
        let state = State {
            book,
            engine: AlertEngine::new(settings.alerts.clone()),
            gate: DeliveryGate::new(settings.alerts.throttle),
            alerts: VecDeque::new(),
            fills: VecDeque::new(),
            rejections: VecDeque::new(),
            exchange_errors: VecDeque::new(),
            rate_limits: Vec::new(),
            streams: Vec::new(),
            dead_letters: 0,
            services: Vec::new(),
            drift_counts: BTreeMap::new(),
            confirmed_drift: Vec::new(),
            kill_switch: saved_kill.as_ref().map(|k| k.enabled),
            kill_switch_state: saved_kill,
            pause: None,
            decisions: Decisions::default(),
            models: ModelsView::default(),
            drawdown_breaker: None,
            last_snapshot: None,
            last_sync_error: None,
            charts: Charts::new(settings.chart_candles),
            exchange_api: Vec::new(),
            context: ContextView::default(),
            latest_report: None,
        };
        Ok(Arc::new(Self {
            db,
            bus,
            clock,
            notifier: Notifier::new(&settings.alerts),
            settings,
            state: Mutex::new(state),
            version: watch::channel(0).0,
            control_calls: Mutex::new(VecDeque::new()),
        }))
    }

    /// The last entries of a stream, decoded, oldest first.
    async fn tail(&self, stream: Stream, n: usize) -> Result<Vec<Envelope>, AppError> {
        let key = self.bus.key(stream);
        Ok(self
            .bus
            .last(&key, n)
            .await?
            .iter()
            .filter_map(|e| Envelope::from_fields(e.field_pairs()).ok())
            .collect())
    }

    /// Reads, from the tails of the streams (the groups only see what was published after
    /// they were created): the kill switch's last setting (`qt:control`; off when it holds
    /// none, as execution starts), the drawdown breaker's last state (`qt:control`,
    /// `qt:alerts`, `qt:orders`), the last daily-loss pause (`qt:orders`), and each symbol's
    /// latest decision (`qt:signals`, `qt:intents`, `qt:orders`, `qt:positions`).
    pub async fn restore_control(&self) -> Result<(), AppError> {
        let control = self.tail(Stream::Control, 1000).await?;
        let alerts = self.tail(Stream::Alerts, 1000).await?;
        let orders = self.tail(Stream::Orders, 1000).await?;
        let market = self.tail(Stream::Market, 5000).await?;
        let mut facts = self.tail(Stream::Signals, 1000).await?;
        facts.extend(self.tail(Stream::Intents, 500).await?);
        facts.extend(self.tail(Stream::Positions, 500).await?);
        let seen = control.iter().rev().find_map(kill_switch_of);
        let save = {
            let mut st = self.state();
            // The stream's newest command, unless what is known (stored, or applied since) is
            // newer; nothing anywhere: off, as execution starts.
            let mut save = None;
            match seen {
                Some(k)
                    if st.kill_switch_state.as_ref().is_none_or(|c| {
                        c.since.unwrap_or(i64::MIN) < k.since.unwrap_or(i64::MIN)
                    }) =>
                {
                    st.kill_switch = Some(k.enabled);
                    st.kill_switch_state = Some(k.clone());
                    save = Some(k);
                }
                _ if st.kill_switch_state.is_none() => {
                    st.kill_switch = Some(false);
                    st.kill_switch_state = Some(kill_switch_never_set());
                }
                _ => {}
            }
            for seen in control
                .iter()
                .chain(&alerts)
                .chain(&orders)
                .filter_map(breaker_from_event)
            {
                merge_breaker(&mut st.drawdown_breaker, seen);
            }
            for p in orders.iter().filter_map(pause_of) {
                merge_pause(&mut st.pause, p);
            }
            for env in facts.iter().chain(&orders) {
                st.decisions.on_event(env);
            }
            for env in market.iter().chain(&facts) {
                st.charts.on_event(env);
            }
            save
        };
        if let Some(k) = save {
            self.db.save_kill_switch(&k).await?;
        }
        self.changed();
        Ok(())
    }

    /// The state, locked (never held across an await).
    pub fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Tells WebSocket clients that something changed.
    pub fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub(crate) fn note_exchange_error(&self, e: &ExchangeError) {
        let now = self.now();
        let mut st = self.state();
        st.exchange_errors.push_back(now);
        while st.exchange_errors.len() > 1000 {
            st.exchange_errors.pop_front();
        }
        if let ExchangeError::RateLimited { status, .. } = e {
            st.rate_limits
                .push((now, format!("http {status} on the portfolio sync")));
        }
        st.last_sync_error = Some(e.to_string());
    }

    /// Takes a snapshot, stores it and publishes it to `qt:portfolio`.
    pub async fn snapshot(&self) -> Result<PortfolioSnapshot, AppError> {
        let now = self.now();
        let (snap, report) = {
            let mut st = self.state();
            let snap = st.book.record(now);
            let report = st.book.report(now);
            st.last_snapshot = Some(snap.clone());
            (snap, report)
        };
        let f = |d: Decimal| d.to_f64().unwrap_or(f64::NAN);
        metrics::gauge!("qt_portfolio_equity").set(f(snap.equity));
        metrics::gauge!("qt_portfolio_daily_pnl").set(f(snap.daily_pnl));
        metrics::gauge!("qt_portfolio_unrealized_pnl").set(f(snap.unrealized_pnl));
        metrics::gauge!("qt_portfolio_gross_exposure").set(f(snap.gross_exposure));
        metrics::gauge!("qt_portfolio_net_exposure").set(f(snap.net_exposure));
        metrics::gauge!("qt_portfolio_open_positions").set(f64::from(snap.open_positions));
        // The stored report leaves out the curve: it is the snapshots' own equity column.
        let mut json = serde_json::to_value(&report).unwrap_or(serde_json::Value::Null);
        if let Some(o) = json.as_object_mut() {
            o.remove("equity_curve");
        }
        self.db.save_snapshot(&snap, &json).await?;
        let keep = i64::try_from(self.settings.snapshot_retention.as_millis()).unwrap_or(i64::MAX);
        self.db.prune_snapshots(now.saturating_sub(keep)).await?;
        let env = self
            .bus
            .envelope(Event::PortfolioSnapshot(snap.clone()))
            .with_id(derived_event_id(&["portfolio", &now.to_string()]));
        self.bus.publish(&env).await?;
        self.changed();
        Ok(snap)
    }

    /// Reads every stream's stats, the dead letters and the services' readiness.
    pub async fn observe(&self) {
        let mut streams = Vec::new();
        let mut dead = None;
        for s in Stream::ALL {
            match self.bus.stats(s).await {
                Ok(st) => {
                    if s == Stream::Dlq {
                        dead = Some(st.length);
                    }
                    streams.push(StreamView {
                        stream: s.suffix().into(),
                        length: st.length,
                        groups: st
                            .groups
                            .iter()
                            .map(|g| GroupSample {
                                stream: s.suffix().into(),
                                group: g.name.clone(),
                                pending: g.pending,
                                lag: g.lag.unwrap_or(0),
                            })
                            .collect(),
                    });
                }
                Err(e) => tracing::warn!(stream = %s, error = %e, "cannot read stream stats"),
            }
        }
        let polled = self.settings.polled_services();
        let services = poll_services(&polled).await;
        let dir = self.settings.models_dir();
        let (mut models, latest_report) = tokio::task::spawn_blocking(move || {
            let mut v = ModelsView::default();
            crate::models::read_registry(&dir, &mut v);
            (v, crate::models::latest_report(&dir))
        })
        .await
        .unwrap_or_default();
        match polled.get("clm") {
            Some(base) => match crate::models::fetch_schedule(&http_client(), base).await {
                Ok(s) => models.schedule = Some(s),
                Err(e) => models.schedule_error = Some(e),
            },
            None => models.schedule_error = Some("no clm service configured".into()),
        }
        let http = http_client();
        let exchange_api =
            crate::exchange_api::poll(&http, &polled, self.settings.exchange_weight_limit).await;
        let context = self.read_context(&http, polled.get("trading-bot")).await;
        let mut st = self.state();
        st.exchange_api = exchange_api;
        st.latest_report = latest_report;
        st.context = context;
        st.models = models;
        if !streams.is_empty() {
            st.streams = streams;
        }
        if let Some(d) = dead {
            st.dead_letters = d;
        }
        st.services = services;
    }

    /// trading-bot's `/health/context`: each market-context source's health.
    async fn read_context(&self, http: &reqwest::Client, base: Option<&String>) -> ContextView {
        let now = self.now();
        let Some(base) = base else {
            return ContextView {
                read_at: Some(now),
                sources: Vec::new(),
                error: Some("no trading-bot service configured".into()),
            };
        };
        let url = format!("{}/health/context", base.trim_end_matches('/'));
        let read = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r
                .json::<qt_events::api::ContextHealth>()
                .await
                .map_err(|e| format!("unreadable answer: {}", e.without_url())),
            Ok(r) if r.status().as_u16() == 404 => {
                Err("trading-bot runs no context task (disabled or no source)".into())
            }
            Ok(r) => Err(format!("/health/context answered {}", r.status().as_u16())),
            Err(e) => Err(format!("unreachable: {}", e.without_url())),
        };
        match read {
            Ok(h) => ContextView {
                read_at: Some(now),
                sources: h.sources,
                error: None,
            },
            Err(e) => ContextView {
                read_at: Some(now),
                sources: Vec::new(),
                error: Some(e),
            },
        }
    }

    /// Runs the alert rules and publishes what they raise to `qt:alerts`.
    pub async fn evaluate_alerts(&self) -> Result<Vec<AlertRaised>, AppError> {
        let now = self.now();
        let raised = {
            let mut st = self.state();
            let st = &mut *st;
            let snap = st.book.snapshot(now);
            let groups: Vec<GroupSample> = st
                .streams
                .iter()
                .flat_map(|s| s.groups.iter().cloned())
                .collect();
            let errors: Vec<i64> = st.exchange_errors.iter().copied().collect();
            let obs = Observations {
                now,
                open_positions: snap.open_positions,
                max_positions: self.settings.limits.max_concurrent_positions,
                daily_pnl: snap.daily_pnl,
                max_daily_loss: self.settings.limits.max_daily_loss,
                model: st.book.model.as_ref(),
                trades: &st.book.trades,
                exchange_errors: &errors,
                rate_limits: &st.rate_limits,
                groups: &groups,
                dead_letters: st.dead_letters,
                services: &st.services,
                drift: &st.confirmed_drift,
                context: &st.context.sources,
                context_read_ago_ms: st.context.read_at.map_or(0, |t| now - t),
            };
            let raised = st.engine.evaluate(&obs);
            st.rate_limits.clear();
            raised
        };
        if !raised.is_empty() {
            let envs: Vec<Envelope> = raised
                .iter()
                .map(|a| {
                    self.bus
                        .envelope(Event::AlertRaised(a.clone()))
                        .with_id(derived_event_id(&[
                            "alert",
                            &a.rule,
                            &a.key,
                            &now.to_string(),
                        ]))
                })
                .collect();
            self.bus.publish_all(&envs).await?;
        }
        Ok(raised)
    }

    /// Applies one event from any consumed stream. Idempotent.
    pub async fn apply(&self, env: &Envelope) -> Result<(), AppError> {
        match &env.event {
            Event::PositionOpened(p) => {
                let pos = {
                    let mut st = self.state();
                    st.decisions.on_event(env);
                    st.book.on_opened(p);
                    st.book.positions.get(&p.symbol).cloned()
                };
                self.db.save_position(&p.symbol, pos.as_ref()).await?;
            }
            Event::PositionChanged(p) => {
                let pos = {
                    let mut st = self.state();
                    st.book.on_changed(p);
                    st.book.positions.get(&p.symbol).cloned()
                };
                self.db.save_position(&p.symbol, pos.as_ref()).await?;
            }
            Event::PositionClosed(p) => {
                let (trade, pos) = {
                    let mut st = self.state();
                    st.charts.on_event(env);
                    let t = st.book.on_closed(p);
                    let keep = self.settings.trades_kept.max(1);
                    let excess = st.book.trades.len().saturating_sub(keep);
                    st.book.trades.drain(..excess);
                    (t, st.book.positions.get(&p.symbol).cloned())
                };
                if let Some(t) = trade {
                    self.db.save_trade(&t).await?;
                }
                self.db.save_position(&p.symbol, pos.as_ref()).await?;
            }
            Event::FundingFeeCharged(f) => {
                // Stored first, once per exchange transaction: only a fee new to the table
                // enters the book, so no redelivery, replay or restart counts it twice.
                let charge = self.state().book.funding_charge(f);
                if self.db.save_funding(&charge).await? {
                    let mut st = self.state();
                    st.book.add_funding(charge);
                    let keep = self.settings.trades_kept.max(1);
                    let excess = st.book.funding.len().saturating_sub(keep);
                    st.book.funding.drain(..excess);
                }
            }
            Event::OrderFilled(f) | Event::OrderPartiallyFilled(f) => {
                let mut st = self.state();
                push_bounded(
                    &mut st.fills,
                    FillView {
                        ts: f.trade_time,
                        symbol: f.symbol.clone(),
                        side: format!("{:?}", f.side).to_uppercase(),
                        kind: format!("{:?}", f.kind),
                        quantity: f.last_qty,
                        price: f.last_price,
                        fee: f.fee,
                        reduce_only: f.reduce_only,
                        client_order_id: f.client_order_id.clone(),
                    },
                );
            }
            Event::OrderRejected(r) => {
                let mut st = self.state();
                st.decisions.on_event(env);
                if let Some(p) = pause_of(env) {
                    merge_pause(&mut st.pause, p);
                }
                if let Some(seen) = breaker_from_event(env) {
                    merge_breaker(&mut st.drawdown_breaker, seen);
                }
                let reason = reason_code(r.reason);
                if r.exchange_code.is_some() || r.reason == RejectReason::ExchangeError {
                    st.exchange_errors.push_back(env.ts);
                }
                if r.exchange_code
                    .map(ApiCode::from)
                    .is_some_and(ApiCode::rate_limited)
                {
                    st.rate_limits
                        .push((env.ts, format!("{} {}", r.symbol, r.message)));
                }
                push_bounded(
                    &mut st.rejections,
                    RejectionView {
                        ts: env.ts,
                        symbol: r.symbol.clone(),
                        reason,
                        message: r.message.clone(),
                        exchange_code: r.exchange_code,
                    },
                );
            }
            Event::MarkPriceUpdated(m) => self.state().book.on_mark(m),
            Event::CandleClosed(c) => {
                let mut st = self.state();
                st.charts.on_event(env);
                if !st.book.marks.contains_key(&c.symbol) {
                    st.book.on_price(&c.symbol, c.close);
                }
            }
            Event::ProtectPosition(_) => self.state().charts.on_event(env),
            Event::OpenPosition(_) => {
                if !self.state().decisions.on_event(env) {
                    return Ok(());
                }
            }
            Event::SignalGenerated(s) => {
                let m = {
                    let mut st = self.state();
                    st.decisions.on_event(env);
                    let known = st
                        .book
                        .model
                        .as_ref()
                        .is_some_and(|m| m.model_version == s.model_version);
                    st.book.on_model(&s.model, &s.model_version, env.ts, false);
                    (!known).then(|| st.book.model.clone()).flatten()
                };
                if let Some(m) = m {
                    self.db.save_model(&m).await?;
                }
            }
            Event::ModelDeployed(d) => {
                let m = {
                    let mut st = self.state();
                    st.book.on_model(
                        &d.artifact.model,
                        &d.artifact.model_version,
                        d.deployed_at,
                        true,
                    );
                    st.book.model.clone()
                };
                if let Some(m) = m {
                    self.db.save_model(&m).await?;
                }
            }
            Event::ModelRolledBack(r) => {
                let m = {
                    let mut st = self.state();
                    st.book.on_model(
                        &r.artifact.model,
                        &r.artifact.model_version,
                        r.rolled_back_at,
                        true,
                    );
                    st.book.model.clone()
                };
                if let Some(m) = m {
                    self.db.save_model(&m).await?;
                }
            }
            Event::SetKillSwitch(k) => {
                let newer = {
                    let mut st = self.state();
                    let newer = st
                        .kill_switch_state
                        .as_ref()
                        .is_none_or(|c| c.since.unwrap_or(i64::MIN) <= env.ts);
                    if newer {
                        st.kill_switch = Some(k.enabled);
                        st.kill_switch_state = kill_switch_of(env);
                    }
                    newer.then(|| st.kill_switch_state.clone()).flatten()
                };
                if let Some(k) = newer {
                    self.db.save_kill_switch(&k).await?;
                }
            }
            Event::ResumeTrading(_) => {
                if let Some(seen) = breaker_from_event(env) {
                    merge_breaker(&mut self.state().drawdown_breaker, seen);
                }
            }
            Event::AlertRaised(a) => {
                let deliver = {
                    let now = self.now();
                    let mut st = self.state();
                    if st.alerts.iter().any(|v| v.id == env.id) {
                        return Ok(());
                    }
                    let max_age = i64::try_from(self.settings.alerts.deliver_max_age.as_millis())
                        .unwrap_or(i64::MAX);
                    let fresh = now.saturating_sub(env.ts) <= max_age;
                    self.notifier.configured() && fresh && st.gate.admit(&env.id, a, now)
                };
                if deliver {
                    for e in self.notifier.deliver(a, env.ts).await {
                        tracing::warn!(error = %e, rule = %a.rule, "alert delivery failed");
                    }
                }
                let mut st = self.state();
                if let Some(seen) = breaker_from_event(env) {
                    merge_breaker(&mut st.drawdown_breaker, seen);
                }
                push_bounded(
                    &mut st.alerts,
                    AlertView {
                        id: env.id.clone(),
                        ts: env.ts,
                        alert: a.clone(),
                        delivered: deliver,
                    },
                );
            }
            _ => return Ok(()),
        }
        self.changed();
        Ok(())
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T) {
    q.push_back(v);
    while q.len() > RECENT {
        q.pop_front();
    }
}

/// The handler of every consumed stream.
#[derive(Debug, Clone)]
pub struct Intake(pub Arc<Shared>);

impl Handler for Intake {
    async fn handle(&mut self, delivery: &Delivery) -> Result<Outcome, HandlerError> {
        match self.0.apply(&delivery.envelope).await {
            Ok(()) => Ok(Outcome::done()),
            Err(e) if e.is_retryable() => Err(HandlerError::Transient(e.to_string())),
            Err(e) => Err(HandlerError::Permanent(e.to_string())),
        }
    }
}
