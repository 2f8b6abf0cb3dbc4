//! The clm service: collects data from the streams, runs the schedule, trains and gates,
//! keeps the registry, publishes deployments and alerts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qt_bus::{Bus, Delivery, Handler, HandlerError, Outcome};
use qt_candles::Candle;
use qt_events::clock::SharedClock;
use qt_events::ids::derived_event_id;
use qt_events::{
    AlertRaised, CandleClosed, Event, ModelDeployed, PositionSide, SignalAction, Stream,
};
use qt_models::dataset::Series;
use qt_models::{ModelArtifact, SignalMix};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cycle::{CycleInput, CycleReport, Evidence, run_cycle};
use crate::db::{Db, ModelRow};
use crate::monitor::{Observation, assess};
use crate::registry::{Index, artifact_ref, to_prune, write_artifact, write_index};
use crate::settings::Settings;

/// Streams clm reads (group `clm`).
pub const CONSUMES: &[Stream] = &[
    Stream::Market,
    Stream::Signals,
    Stream::Positions,
    Stream::Control,
    Stream::Models,
];
/// Streams clm writes.
pub const PRODUCES: &[Stream] = &[Stream::Models, Stream::Alerts];

const SCHEDULE: &str = "schedule";
const OUTBOX: &str = "outbox";

/// A run that started and has not finished: resumed (same version) after a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub version: String,
    pub started_at: i64,
    /// `schedule`, or the command id of a retrain request.
    pub trigger: String,
}

/// What the last run came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastResult {
    pub run_id: String,
    pub version: String,
    pub finished_at: i64,
    /// `promoted`, `rejected` or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// The scheduler's persisted state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// When the next scheduled run is due (ms); 0 = as soon as there is data.
    pub next_run_at: i64,
    /// Newest candle time the last finished run trained on.
    pub last_data_end: i64,
    /// Close time after which closed trades count as new samples.
    pub last_run_at: i64,
    /// Command id of a retrain request not yet served.
    pub requested: Option<String>,
    pub in_progress: Option<RunRecord>,
    pub last_result: Option<LastResult>,
    pub runs: u64,
}

/// The status `/health/clm` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub schedule: Schedule,
    pub champion: Option<String>,
    pub new_samples: u64,
}

/// The service.
#[derive(Debug)]
pub struct Clm {
    pub db: Db,
    pub bus: Bus,
    pub clock: SharedClock,
    pub settings: Settings,
    pub status: Mutex<Status>,
    pub wake: Notify,
    /// Serializes read-modify-write of the persisted schedule (a request arriving while a run
    /// trains must not be overwritten by the run's final save).
    schedule_lock: tokio::sync::Mutex<()>,
    alerted: Mutex<BTreeMap<(String, String), i64>>,
    last_monitor: Mutex<i64>,
}

fn transient(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Transient(e.to_string())
}

fn ms_to_stamp(ms: i64) -> String {
    qt_backtest::dates::format_datetime(ms)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

impl Clm {
    /// Builds the service on an open database.
    pub fn new(db: Db, bus: Bus, clock: SharedClock, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            db,
            bus,
            clock,
            settings,
            status: Mutex::new(Status::default()),
            wake: Notify::new(),
            schedule_lock: tokio::sync::Mutex::new(()),
            alerted: Mutex::new(BTreeMap::new()),
            last_monitor: Mutex::new(i64::MIN),
        })
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The persisted schedule.
    ///
    /// # Errors
    /// A database error.
    pub async fn schedule(&self) -> anyhow::Result<Schedule> {
        Ok(self.db.get_state(SCHEDULE).await?.unwrap_or_default())
    }

    async fn save_schedule(&self, s: &Schedule) -> anyhow::Result<()> {
        self.db.put_state(SCHEDULE, s).await?;
        let champion = self.champion().await?.map(|r| r.version);
        let new_samples = self.new_samples(s).await?;
        if let Ok(mut st) = self.status.lock() {
            st.schedule = s.clone();
            st.champion = champion;
            st.new_samples = new_samples;
        }
        metrics::gauge!("clm_next_run_ms").set(s.next_run_at as f64);
        metrics::gauge!("clm_runs").set(s.runs as f64);
        if let Some(r) = &s.last_result {
            metrics::gauge!("clm_last_run_finished_ms").set(r.finished_at as f64);
            metrics::gauge!("clm_last_run_promoted")
                .set(f64::from(u8::from(r.outcome == "promoted")));
        }
        Ok(())
    }

    /// Loads candle files (`SYMBOL-<interval>.csv[.gz]`) of the configured interval: the last
    /// `window_days` of each. Returns the candles added.
    ///
    /// # Errors
    /// A file that cannot be read or a database error.
    pub async fn seed(&self, dir: &Path) -> anyhow::Result<u64> {
        let interval = self.settings.interval_ms();
        let mut added = 0;
        for file in qt_candles::list_kline_files(dir)? {
            if file.interval_ms != interval {
                continue;
            }
            let symbol = file.symbol;
            let candles = qt_candles::read_klines(&file.path)?;
            let Some(last) = candles.last() else { continue };
            let from = last.open_time - i64::from(self.settings.window_days) * 86_400_000;
            let start = candles.partition_point(|c| c.open_time < from);
            added += self.db.insert_candles(&symbol, &candles[start..]).await?;
        }
        tracing::info!(added, dir = %dir.display(), "seeded candles");
        Ok(added)
    }

    /// The current champion's registry row.
    ///
    /// # Errors
    /// A database error.
    pub async fn champion(&self) -> anyhow::Result<Option<ModelRow>> {
        Ok(self
            .db
            .models()
            .await?
            .into_iter()
            .find(|m| m.status == "champion"))
    }

    async fn new_samples(&self, s: &Schedule) -> anyhow::Result<u64> {
        Ok(self.db.count_candles_after(s.last_data_end).await?
            + self.db.count_trades_after(s.last_run_at).await?)
    }

    /// Asks for a run at the next tick (the `RetrainNow` command).
    ///
    /// # Errors
    /// A database error.
    pub async fn request(&self, command_id: &str) -> anyhow::Result<()> {
        let _guard = self.schedule_lock.lock().await;
        let mut s = self.schedule().await?;
        if s.requested.is_none() {
            s.requested = Some(command_id.to_string());
            self.save_schedule(&s).await?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// One look at the schedule: publishes a pending deployment, runs a cycle when one is due
    /// (or resumes an interrupted one), then monitors. Returns the report of a run that ran.
    ///
    /// # Errors
    /// A database, file or Redis error (the run is retried at the next tick).
    pub async fn tick(&self) -> anyhow::Result<Option<CycleReport>> {
        self.flush_outbox().await?;
        let now = self.now();
        let guard = self.schedule_lock.lock().await;
        let mut s = self.schedule().await?;
        let run = match s.in_progress.clone() {
            Some(r) => {
                tracing::warn!(run = %r.run_id, version = %r.version, "resuming an interrupted run");
                Some(r)
            }
            None => {
                let samples = self.new_samples(&s).await?;
                let due = now >= s.next_run_at && samples >= self.settings.min_new_samples;
                match (&s.requested, due) {
                    (Some(cmd), _) => Some((cmd.clone(), "request")),
                    (None, true) => Some(("schedule".to_string(), "schedule")),
                    (None, false) => None,
                }
                .map(|(trigger, _)| RunRecord {
                    run_id: format!("run-{now}"),
                    // Unique: the run counter is persisted and only grows.
                    version: format!(
                        "{}-{}-r{}",
                        kind_name(&self.settings),
                        ms_to_stamp(now),
                        s.runs + 1
                    ),
                    started_at: now,
                    trigger,
                })
            }
        };
        let mut report = None;
        if let Some(run) = run {
            s.in_progress = Some(run.clone());
            self.save_schedule(&s).await?;
            drop(guard);
            // New samples are counted from the data this run can see.
            let data_end = self.db.last_candle_time().await?;
            let result = self.run(&run).await;
            let now = self.now();
            let (outcome, detail) = match &result {
                Ok(r) if r.decision.promote => ("promoted", String::new()),
                Ok(r) => ("rejected", r.decision.why_not()),
                Err(e) => ("failed", format!("{e:#}")),
            };
            metrics::counter!("clm_runs_total", "outcome" => outcome).increment(1);
            tracing::info!(run = %run.run_id, version = %run.version, outcome, detail, "run finished");
            let _guard = self.schedule_lock.lock().await;
            // Requests may have arrived while it trained.
            s.requested = self.schedule().await?.requested;
            s.in_progress = None;
            if s.requested.as_deref() == Some(run.trigger.as_str()) {
                s.requested = None;
            }
            s.runs += 1;
            s.last_run_at = now;
            // A failed run (no data yet, a broken file) is tried again sooner than a period.
            s.next_run_at = now
                + if result.is_err() {
                    self.settings
                        .period_ms()
                        .min(self.settings.retry_failed_minutes * 60_000)
                } else {
                    self.settings.period_ms()
                };
            if let Some(end) = data_end {
                s.last_data_end = end;
                // Keep two windows of candles: the table does not grow without bound.
                let keep_ms = 2 * i64::from(self.settings.window_days) * 86_400_000;
                let pruned = self.db.prune_candles(end - keep_ms).await?;
                if pruned > 0 {
                    tracing::info!(pruned, "old candles deleted");
                }
            }
            s.last_result = Some(LastResult {
                run_id: run.run_id.clone(),
                version: run.version.clone(),
                finished_at: now,
                outcome: outcome.into(),
                detail,
            });
            self.save_schedule(&s).await?;
            self.flush_outbox().await?;
            report = result.ok();
        } else {
            self.save_schedule(&s).await?;
        }
        self.monitor().await?;
        Ok(report)
    }

    async fn load_series(&self, now: i64) -> anyhow::Result<Vec<Series>> {
        let interval = self.settings.interval_ms();
        let end = self.db.last_candle_time().await?.unwrap_or(now) + 1;
        let from = end - i64::from(self.settings.window_days) * 86_400_000;
        let mut out = Vec::new();
        for symbol in self.db.symbols().await? {
            let candles = self.db.candles(&symbol, from, end).await?;
            if !candles.is_empty() {
                out.push(Series {
                    symbol,
                    interval_ms: interval,
                    candles,
                });
            }
        }
        Ok(out)
    }

    async fn evidence(&self) -> anyhow::Result<Vec<Evidence>> {
        // Trades carry their signal as JSON; joined here (no JSON functions on either database).
        let trades = sqlx::query(
            "SELECT symbol, side, net_pnl, signal FROM clm_trades WHERE signal IS NOT NULL",
        )
        .fetch_all(self.db.store.pool())
        .await?;
        let mut out = Vec::new();
        for t in &trades {
            use sqlx::Row;
            let signal: String = t.try_get("signal")?;
            let Ok(sig) = serde_json::from_str::<qt_events::SignalRef>(&signal) else {
                continue;
            };
            let row = sqlx::query("SELECT candle_time FROM clm_signals WHERE event_id = $1")
                .bind(&sig.signal_id)
                .fetch_optional(self.db.store.pool())
                .await?;
            let Some(row) = row else { continue };
            let candle_time: i64 = row.try_get("candle_time")?;
            let side: String = t.try_get("side")?;
            let pnl = qt_store::row_dec(t, "net_pnl")?;
            let label = if pnl <= rust_decimal::Decimal::ZERO {
                SignalAction::Hold
            } else if side == format!("{:?}", PositionSide::Long).to_uppercase() {
                SignalAction::Buy
            } else {
                SignalAction::Sell
            };
            out.push(Evidence {
                symbol: t.try_get("symbol")?,
                candle_time,
                label,
            });
        }
        Ok(out)
    }

    /// Trains, evaluates and gates one run; records the decision and the registry row, and
    /// queues the deployment when promoted. Idempotent per run id.
    async fn run(&self, run: &RunRecord) -> anyhow::Result<CycleReport> {
        let series = self.load_series(run.started_at).await?;
        anyhow::ensure!(!series.is_empty(), "no candles to train on");
        let evidence = self.evidence().await?;
        let champion_row = self.champion().await?.filter(|c| c.version != run.version);
        let champion = match &champion_row {
            Some(row) => match ModelArtifact::load(&row.artifact_uri) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!(version = %row.version, error = %e, "champion artifact unreadable; judged on minimums only");
                    None
                }
            },
            None => None,
        };
        let settings = self.settings.clone();
        let version = run.version.clone();
        // Every earlier decision tried the exit grid too: each of its plans is a trial.
        let prior_trials = usize::try_from(self.db.count_decisions().await?)
            .unwrap_or(0)
            .saturating_mul(self.settings.exit_plans());
        let (artifact, report) = tokio::task::spawn_blocking(move || {
            run_cycle(CycleInput {
                version,
                series,
                evidence,
                champion: champion.as_ref(),
                settings: &settings,
                prior_trials,
            })
        })
        .await??;
        // Artifacts are megabytes of JSON: written and hashed off the async threads.
        let dir = self.settings.artifacts_dir.clone();
        let (path, sha) =
            tokio::task::spawn_blocking(move || write_artifact(&dir, &artifact)).await??;
        let now = self.now();
        let promote = report.decision.promote;
        let metadata = serde_json::to_value(&report)?;
        self.db
            .upsert_model(&ModelRow {
                version: run.version.clone(),
                kind: kind_name(&self.settings).into(),
                created_at: run.started_at,
                artifact_uri: path.display().to_string(),
                sha256: sha,
                status: if promote { "challenger" } else { "rejected" }.into(),
                deployed_at: None,
                metadata: metadata.clone(),
            })
            .await?;
        self.db
            .insert_decision(
                &run.run_id,
                now,
                &run.version,
                champion_row.as_ref().map(|c| c.version.as_str()),
                promote,
                &metadata,
            )
            .await?;
        if promote {
            let row = self
                .db
                .model(&run.version)
                .await?
                .ok_or_else(|| anyhow::anyhow!("registry row vanished"))?;
            let mut m = BTreeMap::new();
            m.insert("oos_net_pnl".into(), decimal_f64(report.challenger.net_pnl));
            m.insert(
                "oos_max_drawdown_pct".into(),
                report.challenger.max_drawdown_pct,
            );
            m.insert("oos_win_rate".into(), report.challenger.win_rate);
            m.insert("oos_trades".into(), report.challenger.trades as f64);
            let deployed = ModelDeployed {
                artifact: artifact_ref(&row),
                metrics: m,
                deployed_at: now,
            };
            // Champion first, then the outbox: a crash between them republishes the same id.
            self.db.set_champion(&run.version, now).await?;
            self.db.put_state(OUTBOX, &Some(deployed)).await?;
        }
        self.prune().await?;
        Ok(report)
    }

    /// Publishes a queued deployment (its event id is derived from the version, so a repeat
    /// after a crash is the same event) and clears the outbox.
    async fn flush_outbox(&self) -> anyhow::Result<()> {
        let pending: Option<Option<ModelDeployed>> = self.db.get_state(OUTBOX).await?;
        if let Some(Some(d)) = pending {
            let id = derived_event_id(&["clm", "deployed", &d.artifact.model_version]);
            let env = self
                .bus
                .envelope(Event::ModelDeployed(d.clone()))
                .with_id(id);
            self.bus.publish(&env).await?;
            tracing::info!(version = %d.artifact.model_version, "model deployed");
            self.db
                .put_state::<Option<ModelDeployed>>(OUTBOX, &None)
                .await?;
        }
        Ok(())
    }

    /// Drops versions beyond `keep_versions` (artifacts, walk-forward reports and rows; never
    /// the champion) and rewrites `registry.json`.
    ///
    /// # Errors
    /// A database or file error.
    pub async fn prune(&self) -> anyhow::Result<()> {
        let rows = self.db.models().await?;
        for r in to_prune(&rows, self.settings.keep_versions) {
            if let Err(e) = std::fs::remove_file(&r.artifact_uri)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(version = %r.version, error = %e, "cannot remove an old artifact");
            }
            // Its walk-forward report goes with it (`cycle::write_report`).
            let report = self.settings.artifacts_dir.join("reports").join(&r.version);
            if let Err(e) = std::fs::remove_dir_all(&report)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(version = %r.version, error = %e, "cannot remove an old report");
            }
            self.db.delete_model(&r.version).await?;
        }
        self.write_index().await
    }

    async fn write_index(&self) -> anyhow::Result<()> {
        let models = self.db.models().await?;
        let champion = models
            .iter()
            .find(|m| m.status == "champion")
            .map(|m| m.version.clone());
        let dir = self.settings.artifacts_dir.clone();
        tokio::task::spawn_blocking(move || write_index(&dir, &Index { champion, models }))
            .await??;
        Ok(())
    }

    /// A deployment or rollback seen on `models` (clm's own, or an operator's through qtctl):
    /// the named version becomes the champion when it is in the registry. Events apply in the
    /// stream's order, the last one winning, as trading-bot applies them.
    async fn on_models(&self, version: &str, at: i64) -> anyhow::Result<()> {
        match self.db.model(version).await? {
            Some(row) if row.status != "champion" => {
                self.db.set_champion(version, at).await?;
                tracing::warn!(version, "champion changed from the models stream");
                self.write_index().await?;
                // Only the status's champion: the schedule is the scheduler's to write (a
                // save here could put back a schedule older than a run it is recording).
                let champion = self.champion().await?.map(|r| r.version);
                if let Ok(mut st) = self.status.lock() {
                    st.champion = champion;
                }
            }
            Some(_) => {}
            None => tracing::warn!(version, "a model not in the registry was deployed"),
        }
        Ok(())
    }

    /// Checks the champion against its training and backtest figures; publishes alerts
    /// (each rule and version at most once every 6 hours).
    async fn monitor(&self) -> anyhow::Result<()> {
        let now = self.now();
        {
            let Ok(mut last) = self.last_monitor.lock() else {
                return Ok(());
            };
            if now.saturating_sub(*last)
                < i64::try_from(self.settings.monitor.every_seconds * 1000).unwrap_or(i64::MAX)
            {
                return Ok(());
            }
            *last = now;
        }
        let Some(ch) = self.champion().await? else {
            return Ok(());
        };
        let meta = &ch.metadata;
        let training_mix: SignalMix =
            serde_json::from_value(meta["challenger"]["signal_mix"].clone()).unwrap_or_default();
        let trained_until = meta["oos_end_ms"].as_i64().unwrap_or(ch.created_at);
        let backtest_win_rate = meta["challenger"]["win_rate"].as_f64().unwrap_or(0.0);
        let since = ch.deployed_at.unwrap_or(ch.created_at);
        let o = Observation {
            version: ch.version.clone(),
            trained_until_ms: trained_until,
            now_ms: now,
            training_mix,
            live_mix: self
                .db
                .signal_mix(&ch.version, since.min(trained_until))
                .await?,
            backtest_win_rate,
            live: self.db.live_results(&ch.version).await?,
        };
        metrics::gauge!("clm_model_age_hours").set((now - trained_until) as f64 / 3_600_000.0);
        let mut out: Vec<AlertRaised> = Vec::new();
        for a in assess(&self.settings.monitor, &o) {
            let key = (a.rule.clone(), a.key.clone());
            let Ok(mut seen) = self.alerted.lock() else {
                continue;
            };
            if seen.get(&key).is_some_and(|&t| now - t < 6 * 3_600_000) {
                continue;
            }
            seen.insert(key, now);
            out.push(a);
        }
        for a in out {
            tracing::warn!(rule = %a.rule, message = %a.message, "alert");
            self.bus
                .publish(&self.bus.envelope(Event::AlertRaised(a)))
                .await?;
        }
        Ok(())
    }
}

fn decimal_f64(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

fn kind_name(s: &Settings) -> &'static str {
    s.kind.name()
}

/// The scheduler loop: a tick every `tick_seconds` or when a retrain request arrives.
pub async fn run_scheduler(clm: Arc<Clm>, shutdown: CancellationToken) {
    let every = Duration::from_secs(clm.settings.tick_seconds.max(1));
    loop {
        if let Err(e) = clm.tick().await {
            tracing::error!(error = %format!("{e:#}"), "scheduler tick failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
            () = clm.wake.notified() => {}
        }
    }
}

/// The handler of every stream clm reads.
#[derive(Debug, Clone)]
pub struct Inbox(pub Arc<Clm>);

impl Handler for Inbox {
    async fn handle(&mut self, d: &Delivery) -> Result<Outcome, HandlerError> {
        let clm = &self.0;
        match &d.envelope.event {
            // Candles of other intervals are not this model's.
            Event::CandleClosed(c)
                if qt_candles::parse_interval(&c.interval).ok()
                    == Some(clm.settings.interval_ms()) =>
            {
                clm.db
                    .insert_candles(&c.symbol, &[candle_of(c)])
                    .await
                    .map_err(transient)?;
            }
            Event::SignalGenerated(s) => clm
                .db
                .insert_signal(&d.envelope.id, s)
                .await
                .map_err(transient)?,
            Event::PositionClosed(p) => clm.db.insert_trade(p).await.map_err(transient)?,
            Event::RetrainNow(r) => {
                tracing::info!(by = %r.requested_by, reason = %r.reason, "retrain requested");
                clm.request(&r.command_id).await.map_err(transient)?;
            }
            Event::ModelDeployed(m) => clm
                .on_models(&m.artifact.model_version, m.deployed_at)
                .await
                .map_err(transient)?,
            Event::ModelRolledBack(m) => clm
                .on_models(&m.artifact.model_version, m.rolled_back_at)
                .await
                .map_err(transient)?,
            _ => {}
        }
        Ok(Outcome::done())
    }
}

fn candle_of(c: &CandleClosed) -> Candle {
    Candle::from(c)
}

/// The `/health/clm` route: the schedule (next run, last result, run in progress), the
/// champion and the new samples counted.
pub fn routes(clm: Arc<Clm>) -> axum::Router {
    axum::Router::new().route(
        "/health/clm",
        axum::routing::get(move || {
            let body = clm
                .status
                .lock()
                .map(|s| serde_json::to_value(&*s).unwrap_or_default())
                .unwrap_or_default();
            async move { axum::Json(body) }
        }),
    )
}
