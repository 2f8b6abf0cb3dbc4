//! The bot's task: universe, warm-up over REST, market streams, gap filling, publishing, and the
//! commands from the [`Inbox`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use qt_bus::Bus;
use qt_candles::Candle;
use qt_events::clock::SharedClock;
use qt_events::{CandleClosed, Envelope, Event, Stream};
use qt_exchange::ws::{MarketEvent, MarketStream, StreamHandle, spawn_market_streams};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig, Kline};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::decisions::{CandleOutcome, Core, CoreConfig};
use crate::funding::FundingFollower;
use crate::inbox::{Command, Inbox, Request};
use crate::model::starting_model;
use crate::settings::Settings;
use qt_runtime::Shard;

/// The streams whose facts the bot consumes (each in its own consumer group, named after the
/// service).
pub const CONSUMES: [Stream; 5] = [
    Stream::Positions,
    Stream::Orders,
    Stream::Models,
    Stream::Control,
    Stream::Portfolio,
];

/// The streams it publishes.
pub const PRODUCES: [Stream; 4] = [
    Stream::Market,
    Stream::Signals,
    Stream::Intents,
    Stream::Alerts,
];

/// The trading bot: build it, give [`TradingBot::inbox`] to a consumer of each of
/// [`CONSUMES`], then [`TradingBot::run`] it until shutdown.
#[derive(Debug)]
pub struct TradingBot {
    settings: Settings,
    exchange: BinanceClient,
    exchange_config: ExchangeConfig,
    bus: Bus,
    core: Core,
    tx: mpsc::Sender<Request>,
    rx: mpsc::Receiver<Request>,
    ready: Arc<AtomicBool>,
    stats: Arc<BotStats>,
    /// Per symbol, the open time of the last candle a previous run published (read at start).
    published: HashMap<String, i64>,
    /// The `models` entry of the model running now (`None`: the configured one). A model
    /// event at or before it — the group replaying what `restore` already applied — is
    /// not applied again, so a start never runs an older model for a candle.
    model_entry: Option<(u64, u64)>,
    /// The slice of the universe this instance decides (`QT_SHARD`; all by default).
    shard: Shard,
    /// The funding rates of the symbols it decides, for a model trained with them.
    funding: FundingFollower,
}

/// Counters of what the bot did since it started (also exported as metrics).
#[derive(Debug, Default)]
pub struct BotStats {
    /// Closed candles published as they arrived on the stream.
    pub candles_live: AtomicU64,
    /// Closed candles published after fetching them over REST (reconnect or gap).
    pub candles_from_rest: AtomicU64,
    pub signals: AtomicU64,
    pub intents: AtomicU64,
    /// Market stream (re)connections.
    pub connects: AtomicU64,
}

fn kline_to_event(symbol: &str, interval: &str, k: &Kline) -> CandleClosed {
    CandleClosed {
        symbol: symbol.to_owned(),
        interval: interval.to_owned(),
        open_time: k.open_time,
        close_time: k.close_time,
        open: k.open,
        high: k.high,
        low: k.low,
        close: k.close,
        volume: k.volume,
        quote_volume: k.quote_volume,
        trades: k.trades,
    }
}

async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = token.cancelled() => false,
    }
}

impl TradingBot {
    /// Validates the settings, loads the starting model and builds the exchange client.
    /// `src` is the service name written in envelopes; `clock` is the decisions' clock.
    pub fn new(
        settings: Settings,
        exchange_config: ExchangeConfig,
        bus: Bus,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let interval_ms = settings.validate()?;
        let model = starting_model(&settings)?;
        let exchange = BinanceClient::new(exchange_config.clone(), clock.clone())?;
        let minutes = |m: u64| i64::try_from(m.saturating_mul(60_000)).unwrap_or(i64::MAX);
        let core = Core::new(
            CoreConfig {
                src: bus.src().to_owned(),
                interval: settings.interval.clone(),
                interval_ms,
                min_confidence: settings.min_confidence,
                sizing: settings.sizing.clone(),
                sizing_stop_fraction: settings.sizing_stop_fraction,
                cooldown_ms: minutes(settings.cooldown_minutes),
                pending_timeout_ms: i64::try_from(settings.pending_timeout_seconds)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
                mark_price_min_interval_ms: i64::try_from(settings.mark_price_min_interval_ms)
                    .unwrap_or(i64::MAX),
            },
            clock,
            model,
        );
        let (tx, rx) = mpsc::channel(256);
        Ok(Self {
            settings,
            exchange,
            exchange_config,
            bus,
            core,
            tx,
            rx,
            ready: Arc::new(AtomicBool::new(false)),
            stats: Arc::new(BotStats::default()),
            published: HashMap::new(),
            model_entry: None,
            shard: Shard::ALL,
            funding: FundingFollower::default(),
        })
    }

    /// Runs as `shard` of the universe (`QT_SHARD=i/N`): it decides, and publishes the
    /// candles, mark prices, signals and intents of, only the symbols that shard owns (see
    /// [`shard_universe`]); every instance still learns every fact.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// A handler for one of [`CONSUMES`].
    pub fn inbox(&self) -> Inbox {
        Inbox::new(self.tx.clone())
    }

    /// True once every symbol is warmed up and the market streams have connected (and the
    /// candles missed meanwhile were handled); false again while the universe changes.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// What the bot has done so far.
    pub fn stats(&self) -> Arc<BotStats> {
        self.stats.clone()
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(model = %self.core.model_name(), version = %self.core.model_version(), "trading bot starting");
        if let Err(e) = self.exchange.sync_time().await {
            tracing::warn!(error = %e, "cannot sync time with the exchange yet");
        }
        self.restore().await;
        if self.core.model_name() == qt_models::NoModel::NAME {
            tracing::warn!(
                "no validated model: trading nothing until clm deploys one (every signal is \
                 HOLD from model none)"
            );
        }
        self.seed_positions().await;
        self.published = self.last_published().await;
        let Some(universe) = self.resolve_universe(&shutdown).await else {
            return;
        };
        let (mut market, mut handle) = self.subscribe(&universe);
        self.set_universe(&universe, &shutdown).await;
        self.check_funding_model(&shutdown).await;
        let refresh =
            Duration::from_secs(self.settings.universe_refresh_minutes.saturating_mul(60));
        let mut universe_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
        let mut current = universe;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                req = self.rx.recv() => {
                    let Some((cmd, done)) = req else { break };
                    let _ = done.send(self.apply(cmd));
                }
                ev = market.recv() => {
                    let Some(ev) = ev else {
                        tracing::warn!("market streams ended: resubscribing");
                        (market, handle) = self.subscribe(&current);
                        continue;
                    };
                    self.on_market(ev, &shutdown).await;
                }
                _ = universe_tick.tick(), if self.settings.top_n > 0 => {
                    if let Some(next) = self.resolve_universe(&shutdown).await
                        && next != current
                    {
                        tracing::info!(from = ?current, to = ?next, "universe changed");
                        self.ready.store(false, Ordering::Relaxed);
                        handle.shutdown().await;
                        (market, handle) = self.subscribe(&next);
                        self.set_universe(&next, &shutdown).await;
                        current = next;
                    }
                }
            }
        }
        handle.shutdown().await;
        tracing::info!("trading bot stopped");
    }

    fn apply(&mut self, cmd: Command) -> Result<(), String> {
        match cmd {
            Command::Fact(env) => self.core.on_fact(&env),
            Command::Swap(model, entry_id) => {
                let entry = qt_bus::parse_entry_id(&entry_id);
                if entry.is_some() && entry <= self.model_entry {
                    tracing::info!(entry_id, version = %model.version(), "model event older than the running model's: not applied");
                } else if let Some(why) =
                    self.funding_refusal(model.funding_inputs(), model.version())
                {
                    tracing::error!(version = %model.version(), "{why}; the running model stays");
                    return Err(why);
                } else {
                    self.core.swap_model(model);
                    self.model_entry = entry;
                }
            }
        }
        Ok(())
    }

    /// Why `model` cannot run here: it was trained with the funding inputs and the exchange
    /// refuses funding rates for every symbol (its inputs would read as missing on every
    /// candle, which is not what it was trained and validated on).
    fn funding_refusal(&self, needs_funding: bool, version: &str) -> Option<String> {
        if !needs_funding {
            return None;
        }
        self.funding.unavailable().map(|e| {
            format!(
                "model {version} was trained with funding inputs, and the exchange gives no \
                 funding rates (GET /fapi/v1/fundingRate refused: {e})"
            )
        })
    }

    /// After the first warm-up: a starting (or restored) model that needs funding rates the
    /// exchange refuses is replaced by model `none`, with an alert, rather than run blind.
    async fn check_funding_model(&mut self, shutdown: &CancellationToken) {
        let running = self.core.model_version();
        let Some(why) = self.funding_refusal(self.core.model_uses_funding(), &running) else {
            return;
        };
        tracing::error!(
            "{why}: trading nothing (model none) until a model that can run is deployed"
        );
        self.core.swap_model(Box::new(qt_models::NoModel));
        let alert = self
            .bus
            .envelope(Event::AlertRaised(qt_events::AlertRaised {
                rule: "funding_unavailable".into(),
                key: running,
                severity: qt_events::Severity::Critical,
                message: format!("trading-bot: {why}"),
                service: self.bus.src().to_owned(),
                details: Default::default(),
            }));
        self.publish(&[alert], shutdown).await;
    }

    /// Positions open on the exchange (when the client has credentials), which is the truth
    /// for what the streams' tails said: the bot must not send an entry on an open position
    /// after a restart, nor wait forever on one that is gone.
    async fn seed_positions(&mut self) {
        if self.exchange_config.api_key.is_none() {
            return;
        }
        match self.exchange.positions(None).await {
            Ok(ps) => {
                let open: Vec<String> = ps
                    .iter()
                    .filter(|p| !p.position_amt.is_zero())
                    .map(|p| p.symbol.clone())
                    .collect();
                tracing::info!(open = ?open, "positions open on the exchange");
                self.core.reconcile_positions(&open);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read positions at start; relying on the positions stream")
            }
        }
    }

    /// What the previous run knew and the streams still hold: the model last deployed or rolled
    /// back to (`models`), the kill switch (`control`), this service's open intents younger
    /// than the pending timeout (`intents`), then the recent facts of `orders` and `positions`
    /// (outcomes of those intents, positions and cooldowns), so a restart neither reverts the
    /// model, nor forgets the pause or a cooldown, nor sends a second entry while the first is
    /// in flight.
    async fn restore(&mut self) {
        let tail = |stream: Stream| {
            let key = self.bus.key(stream);
            let bus = self.bus.clone();
            async move {
                match bus.last(&key, 2_000).await {
                    Ok(entries) => entries
                        .iter()
                        .filter_map(|e| Envelope::from_fields(e.field_pairs()).ok())
                        .collect(),
                    Err(e) => {
                        tracing::warn!(stream = %stream, error = %e, "cannot read the stream's tail at start");
                        Vec::new()
                    }
                }
            }
        };
        let models = match self.bus.last(&self.bus.key(Stream::Models), 2_000).await {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the models stream's tail at start");
                Vec::new()
            }
        };
        let deployed = models.iter().rev().find_map(|raw| {
            let e = Envelope::from_fields(raw.field_pairs()).ok()?;
            match e.event {
                Event::ModelDeployed(d) => Some((d.artifact, raw.id.clone())),
                Event::ModelRolledBack(r) => Some((r.artifact, raw.id.clone())),
                _ => None,
            }
        });
        if let Some((artifact, entry_id)) = deployed {
            let a = artifact.clone();
            match tokio::task::spawn_blocking(move || crate::model::load_ref(&a)).await {
                Ok(Ok(model)) => {
                    self.core.swap_model(model);
                    self.model_entry = qt_bus::parse_entry_id(&entry_id);
                }
                Ok(Err(e)) => {
                    tracing::warn!(version = %artifact.model_version, error = %e, "cannot load the last deployed model; running the configured one")
                }
                Err(e) => tracing::warn!(error = %e, "model loading task failed"),
            }
        }
        if let Some(p) = tail(Stream::Portfolio)
            .await
            .iter()
            .rev()
            .find(|e| matches!(e.event, Event::PortfolioSnapshot(_)))
        {
            self.core.on_fact(p);
        }
        let control: Vec<Envelope> = tail(Stream::Control).await;
        if let Some(k) = control
            .iter()
            .rev()
            .find(|e| matches!(e.event, Event::SetKillSwitch(_)))
        {
            self.core.on_fact(k);
        }
        let now = self.bus.clock().now_ms();
        let timeout_ms = i64::try_from(self.settings.pending_timeout_seconds)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let intents: Vec<Envelope> = tail(Stream::Intents).await;
        for e in intents.iter().filter(|e| e.src == self.bus.src()) {
            if let Event::OpenPosition(o) = &e.event
                && now.saturating_sub(e.ts) < timeout_ms
            {
                tracing::info!(symbol = %o.symbol, intent_id = %o.intent_id, "intent of the previous run still pending");
                self.core.restore_pending(&o.symbol, &o.intent_id, e.ts);
            }
        }
        let mut breaker_refused_at = None;
        for stream in [Stream::Orders, Stream::Positions] {
            for e in tail(stream).await {
                if let Event::OrderRejected(r) = &e.event
                    && r.reason == qt_events::RejectReason::DrawdownBreaker
                {
                    breaker_refused_at = Some(e.ts);
                }
                self.core.on_fact(&e);
            }
        }
        // An operator's resume after the last breaker refusal ends that pause (one in the same
        // millisecond counts as after: at worst one entry is refused again and the pause is
        // learnt again).
        if let Some(refused) = breaker_refused_at
            && let Some(resume) = control
                .iter()
                .rev()
                .find(|e| matches!(e.event, Event::ResumeTrading(_)) && e.ts >= refused)
        {
            self.core.on_fact(resume);
        }
    }

    /// Per symbol, the open time of the last candle this service published a signal for, from
    /// the tail of `signals`, so that a restart publishes the candles that closed while it was
    /// down (under the same deterministic ids) instead of skipping them.
    async fn last_published(&self) -> HashMap<String, i64> {
        let mut last = HashMap::new();
        let key = self.bus.key(Stream::Signals);
        match self.bus.last(&key, 5_000).await {
            Ok(entries) => {
                for e in &entries {
                    if let Ok(env) = Envelope::from_fields(e.field_pairs())
                        && env.src == self.bus.src()
                        && let Event::SignalGenerated(s) = env.event
                    {
                        let t = last.entry(s.symbol).or_insert(s.candle_open_time);
                        *t = (*t).max(s.candle_open_time);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the last signals: candles missed while down are not republished");
            }
        }
        last
    }

    /// This shard's part ([`shard_universe`]) of the configured symbols, or of the top N by
    /// 24h quote volume. Retries until it has an answer (`None` only on shutdown).
    async fn resolve_universe(&self, shutdown: &CancellationToken) -> Option<BTreeSet<String>> {
        let all = self.resolve_all(shutdown).await?;
        let mine = shard_universe(&all, self.shard);
        if self.shard.count > 1 {
            let owned = mine.iter().filter(|s| self.shard.owns(s)).count();
            tracing::info!(shard = %self.shard, universe = all.len(), owned, followed = mine.len() - owned, "shard of the universe");
            if owned == 0 {
                tracing::warn!(shard = %self.shard, "this shard owns none of the universe's symbols");
            }
        }
        Some(mine)
    }

    /// The configured symbols, or the top N by 24h quote volume, for every shard.
    async fn resolve_all(&self, shutdown: &CancellationToken) -> Option<BTreeSet<String>> {
        if self.settings.top_n == 0 {
            return Some(self.settings.symbols.iter().cloned().collect());
        }
        let mut attempt = 0u32;
        loop {
            match self.exchange.tickers_24h().await {
                Ok(t) => {
                    return Some(top_by_quote_volume(
                        &t,
                        &self.settings.quote_asset,
                        self.settings.top_n,
                    ));
                }
                Err(e) => tracing::warn!(error = %e, attempt, "cannot read 24h tickers"),
            }
            attempt = attempt.saturating_add(1);
            if !sleep_or_cancel(Duration::from_millis(500u64 << attempt.min(6)), shutdown).await {
                return None;
            }
        }
    }

    fn subscribe(
        &self,
        universe: &BTreeSet<String>,
    ) -> (mpsc::Receiver<MarketEvent>, StreamHandle) {
        let mut streams = Vec::with_capacity(universe.len() * 2);
        for s in universe {
            streams.push(MarketStream::Kline {
                symbol: s.clone(),
                interval: self.settings.interval.clone(),
            });
            if !self.shard.owns(s) {
                // A reference followed for the market factor: another shard publishes it.
                continue;
            }
            streams.push(MarketStream::MarkPrice {
                symbol: s.clone(),
                every_second: true,
            });
        }
        spawn_market_streams(&self.exchange_config, &streams, 1024)
    }

    /// Makes the core's symbols equal `universe`: removes the others, adds and warms up the new.
    async fn set_universe(&mut self, universe: &BTreeSet<String>, shutdown: &CancellationToken) {
        for s in self.core.symbols() {
            if !universe.contains(&s) {
                self.core.remove_symbol(&s);
                self.funding.remove(&s);
            }
        }
        // The market factor's references first: the others' history then reads their values
        // as the batch path does.
        let (references, others): (Vec<&String>, Vec<&String>) = universe
            .iter()
            .partition(|s| qt_features::MarketFactor::is_reference(s));
        for s in references.into_iter().chain(others) {
            if self.core.last_open_time(s).is_none() {
                self.warm_up(s, shutdown).await;
            }
        }
    }

    /// Loads the symbol's filters and the candles its features need, over REST, retrying.
    async fn warm_up(&mut self, symbol: &str, shutdown: &CancellationToken) {
        let need = self.core.warmup_candles() + self.settings.warmup_extra_candles;
        let limit = u16::try_from(need.min(1500)).unwrap_or(1500);
        // After a restart, start far enough before the last published candle to warm up on
        // candles already published, then publish the ones after it.
        let published = self.published.remove(symbol);
        let start = published.map(|p| {
            p.saturating_sub(
                i64::try_from(need)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(self.core.interval_ms()),
            )
        });
        let mut attempt = 0u32;
        loop {
            let r = async {
                let f = self.exchange.symbol_filters(symbol).await?;
                let k = self
                    .exchange
                    .klines(
                        symbol,
                        &self.settings.interval,
                        start,
                        None,
                        Some(if start.is_some() { 1500 } else { limit }),
                    )
                    .await?;
                Ok::<_, qt_exchange::ExchangeError>((f, k))
            }
            .await;
            match r {
                Ok((f, klines)) => {
                    // Entries are market orders: sized to `MARKET_LOT_SIZE`.
                    self.core.add_symbol(symbol, f.for_market_orders());
                    let now = self.exchange.server_now_ms();
                    let closed: Vec<CandleClosed> = klines
                        .iter()
                        .filter(|k| k.close_time < now)
                        .map(|k| kline_to_event(symbol, &self.settings.interval, k))
                        .collect();
                    // The funding history the warm-up candles and the next ones read (the
                    // symbols this shard decides only).
                    if self.shard.owns(symbol) {
                        self.funding.add(symbol);
                    }
                    // Fetched only for a model that reads them; a funding model deployed later
                    // has them fetched before its first live decision (`on_candle`).
                    if self.shard.owns(symbol)
                        && self.core.model_uses_funding()
                        && let (Some(first), Some(last)) = (closed.first(), closed.last())
                    {
                        let interval = self.core.interval_ms();
                        self.fetch_funding(
                            &[symbol.to_owned()],
                            first.open_time.saturating_add(interval),
                            last.open_time.saturating_add(interval),
                        )
                        .await;
                    }
                    let (history, missed): (Vec<_>, Vec<_>) = match published {
                        Some(p) => closed.into_iter().partition(|c| c.open_time <= p),
                        None => {
                            // A first start: only the last `need` candles, all history.
                            let skip = closed.len().saturating_sub(need);
                            (closed.into_iter().skip(skip).collect(), Vec::new())
                        }
                    };
                    let mut fed = 0usize;
                    for c in &history {
                        if self.core.warm(symbol, &Candle::from(c)) {
                            fed += 1;
                        }
                    }
                    tracing::info!(
                        symbol,
                        candles = fed,
                        need = self.core.warmup_candles(),
                        missed = missed.len(),
                        "warmed up"
                    );
                    for c in &missed {
                        self.handle_candle(c, false, shutdown).await;
                    }
                    return;
                }
                Err(e) if e.class() == qt_exchange::ErrorClass::Rejected => {
                    // An unknown or delisted symbol: retrying cannot help. Trade the others.
                    tracing::error!(symbol, error = %e, "symbol refused by the exchange: left out of the universe");
                    let alert = self
                        .bus
                        .envelope(Event::AlertRaised(qt_events::AlertRaised {
                            rule: "symbol_refused".into(),
                            key: symbol.to_owned(),
                            severity: qt_events::Severity::Warning,
                            message: format!("trading-bot cannot trade {symbol}: {e}"),
                            service: self.bus.src().to_owned(),
                            details: Default::default(),
                        }));
                    self.publish(&[alert], shutdown).await;
                    return;
                }
                Err(e) => tracing::warn!(symbol, error = %e, attempt, "warm-up failed, retrying"),
            }
            attempt = attempt.saturating_add(1);
            if !sleep_or_cancel(Duration::from_millis(500u64 << attempt.min(6)), shutdown).await {
                return;
            }
        }
    }

    async fn on_market(&mut self, ev: MarketEvent, shutdown: &CancellationToken) {
        match ev {
            MarketEvent::Connected { path } => {
                tracing::info!(path, "market stream (re)connected: fetching missed candles");
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
                for s in self.core.symbols() {
                    self.catch_up(&s, None, shutdown).await;
                }
                self.ready.store(true, Ordering::Relaxed);
            }
            MarketEvent::Kline(k) => {
                let Some(c) = k.to_candle_closed() else {
                    return;
                };
                let interval = self.core.interval_ms();
                if let Some(last) = self.core.last_open_time(&c.symbol)
                    && c.open_time > last.saturating_add(interval)
                {
                    self.catch_up(&c.symbol, Some(c.open_time), shutdown).await;
                }
                self.handle_candle(&c, true, shutdown).await;
            }
            MarketEvent::MarkPrice(m) => {
                if let Some(env) = self.core.on_mark(m.to_mark_price_updated()) {
                    self.publish(&[env], shutdown).await;
                }
            }
            MarketEvent::AggTrade(_) | MarketEvent::BookTicker(_) => {}
        }
    }

    /// Fetches the closed candles after the last one seen (and before `before`) over REST and
    /// handles them in order, so a reconnect gap skips no candle and doubles none.
    async fn catch_up(&mut self, symbol: &str, before: Option<i64>, shutdown: &CancellationToken) {
        let interval = self.core.interval_ms();
        loop {
            let Some(last) = self.core.last_open_time(symbol) else {
                return;
            };
            let start = last.saturating_add(interval);
            let end = before.map(|b| b - 1);
            let klines = match self
                .exchange
                .klines(
                    symbol,
                    &self.settings.interval,
                    Some(start),
                    end,
                    Some(1500),
                )
                .await
            {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(symbol, error = %e, "cannot fetch missed candles");
                    return;
                }
            };
            let now = self.exchange.server_now_ms();
            let closed: Vec<&Kline> = klines
                .iter()
                .filter(|k| k.open_time >= start && k.close_time < now)
                .collect();
            if closed.is_empty() {
                return;
            }
            tracing::info!(symbol, candles = closed.len(), "filling a gap from REST");
            let full = klines.len() >= 1500;
            for k in closed {
                let c = kline_to_event(symbol, &self.settings.interval, k);
                self.handle_candle(&c, false, shutdown).await;
            }
            if !full || shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// One closed candle: the root span of the trace that follows it (signal, intent, order,
    /// fill, protection), whose `traceparent` the candle's envelopes carry when traces are
    /// exported.
    async fn handle_candle(&mut self, c: &CandleClosed, live: bool, shutdown: &CancellationToken) {
        if !self.shard.owns(&c.symbol) {
            // A market reference another shard decides: it only feeds the market factor.
            self.core.warm(&c.symbol, &Candle::from(c));
            return;
        }
        let span = tracing::info_span!("candle", symbol = %c.symbol, open_time = c.open_time, live);
        self.handle_candle_in(c, live, shutdown)
            .instrument(span)
            .await;
    }

    async fn handle_candle_in(
        &mut self,
        c: &CandleClosed,
        live: bool,
        shutdown: &CancellationToken,
    ) {
        // Funding rates due by this candle's close are fetched before it is decided (those of
        // every symbol due then, at once: their candles of the same close follow).
        let close = c.open_time.saturating_add(self.core.interval_ms());
        // Only for a model that reads them: every other model sees them as missing, and the
        // exchange's funding-rate limit (500 requests per 5 min per IP) is not spent on them.
        if self.core.model_uses_funding()
            && self.funding.due(&c.symbol, close)
            && self.core.last_open_time(&c.symbol) < Some(c.open_time)
        {
            let due = self.funding.due_at(close);
            self.fetch_funding(&due, close, close).await;
        }
        let (outcome, mut envs) = self.core.on_candle(c, live);
        let traceparent = qt_bus::trace::current_traceparent();
        for env in &mut envs {
            if env.traceparent.is_none() {
                env.traceparent.clone_from(&traceparent);
            }
        }
        let (signal, intent) = match outcome {
            CandleOutcome::Ignored | CandleOutcome::Duplicate => return,
            CandleOutcome::Warming => (false, false),
            CandleOutcome::Signalled { intent } => (true, intent),
        };
        let source = if live { "stream" } else { "rest" };
        metrics::counter!("qt_trading_bot_candles_total", "source" => source).increment(1);
        if live {
            self.stats.candles_live.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.candles_from_rest.fetch_add(1, Ordering::Relaxed);
        }
        if signal {
            metrics::counter!("qt_trading_bot_signals_total").increment(1);
            self.stats.signals.fetch_add(1, Ordering::Relaxed);
        }
        if intent {
            metrics::counter!("qt_trading_bot_intents_total").increment(1);
            self.stats.intents.fetch_add(1, Ordering::Relaxed);
            tracing::info!(symbol = %c.symbol, open_time = c.open_time, "open intent sent");
        }
        self.publish(&envs, shutdown).await;
    }

    /// Fetches the funding rates of `symbols` since the last one each knows (else
    /// [`crate::funding::HISTORY_MS`] before `first_close`), at once, and hands the new ones to
    /// the features; `close` is the market time of the fetch.
    async fn fetch_funding(&mut self, symbols: &[String], first_close: i64, close: i64) {
        let mut tasks = tokio::task::JoinSet::new();
        for s in symbols {
            let client = self.exchange.clone();
            let since = self.funding.since(s, first_close);
            let symbol = s.clone();
            tasks.spawn(async move {
                let r = crate::funding::fetch(&client, &symbol, since).await;
                (symbol, r)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let Ok((symbol, result)) = done else {
                tracing::warn!("a funding fetch task failed");
                continue;
            };
            let rates = self.funding.fetched(&symbol, close, result);
            if !rates.is_empty() {
                tracing::debug!(symbol, rates = rates.len(), "funding rates fetched");
                self.core.funding_fetched(&symbol, &rates);
            }
        }
    }

    /// Publishes, retrying until Redis takes it (or shutdown): a candle is never dropped.
    async fn publish(&self, envs: &[Envelope], shutdown: &CancellationToken) {
        let mut attempt = 0u32;
        loop {
            match self.bus.publish_all(envs).await {
                Ok(_) => return,
                Err(e) => tracing::error!(error = %e, attempt, "cannot publish, retrying"),
            }
            attempt = attempt.saturating_add(1);
            if !sleep_or_cancel(Duration::from_millis(200u64 << attempt.min(5)), shutdown).await {
                return;
            }
        }
    }
}

/// `GET /health/market`: 200 once the universe is warmed up and the market streams connected,
/// 503 before; the body holds the counters of [`BotStats`].
pub fn routes(ready: Arc<AtomicBool>, stats: Arc<BotStats>) -> axum::Router {
    use axum::http::StatusCode;
    axum::Router::new().route(
        "/health/market",
        axum::routing::get(move || {
            let ready = ready.load(Ordering::Relaxed);
            let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let body = serde_json::json!({
                "ready": ready,
                "candles_live": n(&stats.candles_live),
                "candles_from_rest": n(&stats.candles_from_rest),
                "signals": n(&stats.signals),
                "intents": n(&stats.intents),
                "connects": n(&stats.connects),
            });
            let code = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            async move { (code, axum::Json(body)) }
        }),
    )
}

/// What the instance running as `shard` follows of the universe `all`: the symbols it owns
/// (it decides them), and the market factor's references (`BTCUSDT`, `ETHUSDT`) that are in
/// `all` but owned by another shard — it warms its features on their candles without
/// publishing or deciding them, so every symbol's features, and so its decisions, are the
/// same whatever the number of shards.
pub fn shard_universe(all: &BTreeSet<String>, shard: Shard) -> BTreeSet<String> {
    all.iter()
        .filter(|s| shard.owns(s) || qt_features::MarketFactor::is_reference(s))
        .cloned()
        .collect()
}

/// The `n` symbols quoted in `quote` with the largest 24h quote volume.
pub fn top_by_quote_volume(
    tickers: &[qt_exchange::Ticker24h],
    quote: &str,
    n: usize,
) -> BTreeSet<String> {
    let mut t: Vec<&qt_exchange::Ticker24h> = tickers
        .iter()
        .filter(|t| t.symbol.ends_with(quote) && t.symbol.len() > quote.len())
        .collect();
    t.sort_by(|a, b| {
        b.quote_volume
            .cmp(&a.quote_volume)
            .then(a.symbol.cmp(&b.symbol))
    });
    t.into_iter().take(n).map(|t| t.symbol.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn shards_split_the_universe_and_each_follows_the_references() {
        let all: BTreeSet<String> = (0..40)
            .map(|i| format!("S{i}USDT"))
            .chain(["BTCUSDT".to_owned(), "ETHUSDT".to_owned()])
            .collect();
        assert_eq!(shard_universe(&all, Shard::ALL), all);
        let n = 3;
        let mut owners = std::collections::HashMap::new();
        for index in 0..n {
            let shard = Shard { index, count: n };
            let mine = shard_universe(&all, shard);
            assert!(mine.contains("BTCUSDT") && mine.contains("ETHUSDT"));
            for s in mine.iter().filter(|s| shard.owns(s)) {
                assert!(owners.insert(s.clone(), index).is_none(), "{s} owned twice");
            }
        }
        assert_eq!(owners.len(), all.len(), "every symbol has an owner");
        // A reference outside the universe is not followed.
        let small: BTreeSet<String> = ["S1USDT".to_owned()].into();
        assert!(
            shard_universe(&small, Shard { index: 0, count: 2 }).len()
                + shard_universe(&small, Shard { index: 1, count: 2 }).len()
                == 1
        );
    }

    #[test]
    fn the_universe_is_the_top_n_by_quote_volume_in_the_quote_asset() {
        let t = |s: &str, q: i64| qt_exchange::Ticker24h {
            symbol: s.into(),
            price_change: Decimal::ZERO,
            price_change_percent: Decimal::ZERO,
            last_price: Decimal::ZERO,
            open_price: Decimal::ZERO,
            high_price: Decimal::ZERO,
            low_price: Decimal::ZERO,
            volume: Decimal::ZERO,
            quote_volume: Decimal::from(q),
            open_time: 0,
            close_time: 0,
            count: 0,
        };
        let ts = [
            t("BTCUSDT", 900),
            t("ETHUSDT", 500),
            t("ETHBTC", 10_000),
            t("SOLUSDT", 700),
            t("USDT", 1),
        ];
        let top = top_by_quote_volume(&ts, "USDT", 2);
        assert_eq!(
            top.into_iter().collect::<Vec<_>>(),
            vec!["BTCUSDT", "SOLUSDT"]
        );
    }
}
