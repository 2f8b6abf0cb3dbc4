//! Wiring: the database, the brain, the start-up check against the exchange, one consumer per
//! stream sharing the brain, and the watchdog task.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use qt_bus::{Bus, Delivery, Handler, HandlerError, Outcome};
use qt_events::{Event, PositionOpened, Stream};
use qt_exchange::{
    AccountModes, BinanceClient, Exchange, ExchangeConfig, ModesError, check_account_modes,
};
use qt_runtime::Service;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::brain::{Brain, BrainConfig};
use crate::reconcile;
use crate::settings::Settings;
use crate::sql::SqlStore;
use crate::store::PlanStore;

/// The brain shared by the consumers and the watchdog.
pub type Shared<S> = Arc<Mutex<Brain<S>>>;

/// A consumer's handler: hands every entry to the shared brain. With an exchange, a position of
/// a symbol whose volatility window is still empty (after a start) first loads the symbol's
/// recent klines, so its ladder adapts from the first trade.
#[derive(Debug)]
pub struct BrainHandler<S, E> {
    brain: Shared<S>,
    exchange: Option<Arc<E>>,
}

impl<S, E> BrainHandler<S, E> {
    pub fn new(brain: Shared<S>, exchange: Option<Arc<E>>) -> Self {
        Self { brain, exchange }
    }
}

/// How long a kline request may delay a protect intent.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(3);

impl<S: PlanStore, E: Exchange + 'static> BrainHandler<S, E> {
    async fn warm_up(&self, symbol: &str) {
        let Some(ex) = &self.exchange else { return };
        let (interval, limit) = {
            let b = self.brain.lock().await;
            if !b.needs_history(symbol) {
                return;
            }
            let (i, n) = b.history_wanted();
            (i.to_owned(), u16::try_from(n + 1).unwrap_or(1500).min(1500))
        };
        let fetched = tokio::time::timeout(
            HISTORY_TIMEOUT,
            ex.klines(symbol, &interval, None, None, Some(limit)),
        )
        .await;
        match fetched {
            Ok(Ok(klines)) => {
                let now = ex.server_now_ms();
                // The last kline may still be open: only closed candles count.
                let closes: Vec<_> = klines
                    .iter()
                    .filter(|k| k.close_time < now)
                    .map(|k| (k.open_time, k.close))
                    .collect();
                self.brain.lock().await.warm(symbol, &closes);
                tracing::info!(
                    symbol,
                    candles = closes.len(),
                    "volatility history loaded from the exchange"
                );
            }
            Ok(Err(e)) => tracing::warn!(symbol, error = %e, "cannot load volatility history"),
            Err(_) => tracing::warn!(symbol, "volatility history timed out"),
        }
    }
}

impl<S: PlanStore, E: Exchange + 'static> Handler for BrainHandler<S, E> {
    async fn handle(&mut self, delivery: &Delivery) -> Result<Outcome, HandlerError> {
        let env = &delivery.envelope;
        let span = tracing::info_span!("handle", event_id = %env.id, corr = %env.corr, kind = env.type_name());
        let source = format!("{}/{}", delivery.stream.suffix(), delivery.entry_id);
        let result = async {
            if let Event::PositionOpened(PositionOpened { symbol, .. }) = &env.event {
                self.warm_up(symbol).await;
            }
            let mut brain = self.brain.lock().await;
            brain.handle(env, &source).await
        }
        .instrument(span)
        .await;
        match result {
            Ok(out) => {
                if !out.is_empty() {
                    log_outputs(&out);
                }
                Ok(Outcome::publish(out))
            }
            Err(e) if e.is_retryable() => Err(HandlerError::Transient(e.to_string())),
            Err(e) => Err(HandlerError::Permanent(e.to_string())),
        }
    }
}

/// One log line per event the brain is about to publish.
fn log_outputs(out: &[qt_events::Envelope]) {
    for e in out {
        tracing::info!(event_id = %e.id, kind = e.type_name(), symbol = ?e.sym, "publishing");
    }
}

/// Runs the watchdog every `tick` until `shutdown`.
pub async fn watchdog<S: PlanStore>(
    brain: Shared<S>,
    bus: Bus,
    tick: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let mut b = brain.lock().await;
        let commit = b.watchdog(bus.clock().now_ms());
        if commit.outputs.is_empty() {
            continue;
        }
        // Publish first: the ids are deterministic, so a crash before the commit only repeats
        // the same intents, which execution drops.
        if let Err(e) = bus.publish_all(&commit.outputs).await {
            tracing::warn!(error = %e, "watchdog cannot publish yet");
            continue;
        }
        if let Err(e) = b.apply(commit).await {
            tracing::warn!(error = %e, "watchdog cannot record what it did");
        }
    }
}

/// Checks the account's position and multi-assets modes against the configuration (a
/// mismatch refuses the start, exit 2, as execution does: in hedge mode a plan is kept per
/// side, so a plan and the exchange's positions would not meet), reads the filters of every
/// symbol and checks stored plans against the exchange, publishing what must be done,
/// retrying an unreachable exchange until `timeout`.
async fn check_exchange<S: PlanStore, E: Exchange>(
    brain: &Shared<S>,
    bus: &Bus,
    ex: &E,
    want: AccountModes,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut wait = Duration::from_millis(200);
    loop {
        let checked = match check_account_modes(ex, want).await {
            Ok(_) => check_once(brain, bus, ex).await,
            Err(ModesError::Mismatch(m)) => return Err(qt_runtime::StartRefused(m).into()),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        match checked {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() + wait < deadline => {
                tracing::warn!(error = %format!("{e:#}"), "start-up check against the exchange failed, retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.context("start-up check against the exchange")),
        }
    }
}

async fn check_once<S: PlanStore, E: Exchange>(
    brain: &Shared<S>,
    bus: &Bus,
    ex: &E,
) -> anyhow::Result<()> {
    let info = ex.exchange_info().await.context("exchange info")?;
    let mut b = brain.lock().await;
    for s in &info.symbols {
        b.set_filters(&s.symbol, s.filters);
    }
    let symbols: BTreeSet<String> = b.plans().map(|t| t.symbol.clone()).collect();
    if symbols.is_empty() {
        return Ok(());
    }
    let view = reconcile::exchange_view(ex, &symbols)
        .await
        .context("positions and open algo orders")?;
    let commit = b.check_against(&view);
    tracing::info!(
        plans = symbols.len(),
        intents = commit.outputs.len(),
        "stored plans checked against the exchange"
    );
    if !commit.outputs.is_empty() {
        bus.publish_all(&commit.outputs)
            .await
            .context("publishing the start-up intents")?;
    }
    b.apply(commit).await.context("recording the check")?;
    Ok(())
}

/// Builds exit-brain into `service`: opens its database (`QT_DATABASE_URL`, else the SQLite
/// file of `sqlite_path`), loads the plans, checks them against the exchange (unless
/// disabled), then registers its consumers and the watchdog.
pub async fn build(
    mut service: Service<Settings>,
    ex_cfg: ExchangeConfig,
) -> anyhow::Result<Service<Settings>> {
    let settings = service.config.service.clone();
    let clock = service.bus.clock().clone();
    let url = qt_store::url_from_env(Path::new(&settings.sqlite_path));
    let store = SqlStore::connect(&url, clock.now_ms())
        .await
        .context("opening the database")?;
    let cfg = BrainConfig {
        exits: settings.exits.clone(),
        hedge: ex_cfg.account_modes.position_mode.dual_side(),
        watchdog_ms: i64::try_from(settings.watchdog_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        volatility_interval: settings.volatility_interval.clone(),
        volatility_window: settings.volatility_window,
    };
    let brain = Brain::load(store, clock.clone(), cfg)
        .await
        .context("loading the plans")?;
    tracing::info!(plans = brain.plans().count(), "plans loaded");
    let brain: Shared<SqlStore> = Arc::new(Mutex::new(brain));
    let exchange = if settings.check_exchange_on_start {
        let modes = ex_cfg.account_modes;
        let ex = BinanceClient::new(ex_cfg, clock.clone()).context("exchange client")?;
        check_exchange(
            &brain,
            &service.bus,
            &ex,
            modes,
            Duration::from_secs(settings.exchange_check_timeout_secs),
        )
        .await?;
        Some(Arc::new(ex))
    } else {
        tracing::warn!("the exchange is not used: no start-up check, no volatility history");
        None
    };
    for stream in [
        Stream::Positions,
        Stream::Orders,
        Stream::Market,
        Stream::Control,
        Stream::Signals,
    ] {
        let cfg = service.consumer_config(stream);
        service.consume(cfg, BrainHandler::new(brain.clone(), exchange.clone()));
    }
    service.produces(&[Stream::Intents, Stream::Alerts]);
    service.spawn(watchdog(
        brain,
        service.bus.clone(),
        Duration::from_millis(settings.watchdog_tick_ms.max(10)),
        service.shutdown.clone(),
    ));
    Ok(service)
}
