//! A service's life: connect, create its groups, serve health and metrics, run its consumers,
//! trim the command streams it produces, and stop cleanly on SIGTERM or SIGINT.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use qt_bus::{Bus, BusConfig, Consumer, ConsumerConfig, ConsumerHandle, Handler};
use qt_events::clock::SharedClock;
use qt_events::{Retention, Stream, StreamNames};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{CommonConfig, Config};

/// Everything a service's app is built from.
/// How long shutdown waits for the service's tasks before it exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

pub struct Service<S> {
    pub name: &'static str,
    /// The consumer group of this service (and shard): see [`Service::group`].
    group: String,
    pub config: Config<S>,
    pub bus: Bus,
    /// Cancelled on SIGTERM/SIGINT: long-running tasks watch it.
    pub shutdown: CancellationToken,
    tracker: TaskTracker,
    groups: Vec<Stream>,
    produces: Vec<Stream>,
    consumers: Vec<ConsumerHandle>,
    pending: Vec<Box<dyn FnOnce(CancellationToken) -> tokio::task::JoinHandle<()> + Send>>,
    routes: Router,
    metrics: PrometheusHandle,
    groups_ready: Arc<AtomicBool>,
}

impl<S> std::fmt::Debug for Service<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Service<S> {
    /// Builds the service's parts from its config: the bus (connected lazily) and the metrics
    /// recorder.
    pub fn new(name: &'static str, config: Config<S>, clock: SharedClock) -> anyhow::Result<Self> {
        let names = StreamNames::new(config.common.stream_prefix.clone());
        let bus = Bus::connect(
            BusConfig::new(config.common.redis_url.clone(), names, name)
                .with_sentinels(
                    config.common.sentinels(),
                    config.common.redis_master_name.clone(),
                )
                .with_cluster(config.common.cluster_nodes()),
            clock,
        )?;
        let group = group_name(name, config.common.shard());
        let metrics = PrometheusBuilder::new().install_recorder()?;
        Ok(Self {
            name,
            group,
            config,
            bus,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            groups: Vec::new(),
            produces: Vec::new(),
            consumers: Vec::new(),
            pending: Vec::new(),
            routes: Router::new(),
            metrics,
            groups_ready: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The consumer group this instance reads in: the service name, or `<service>-shard<i>`
    /// for shard i > 0 of a sharded service (`QT_SHARD`). Every shard sees every fact of the
    /// streams it consumes (a group shared by the shards would split them); shard 0 keeps the
    /// unsharded group, so going from one instance to several adds groups and moves none.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This instance's consumer name: `<service>-<instance>`, stable across restarts.
    pub fn consumer_name(&self) -> String {
        format!("{}-{}", self.name, self.config.common.instance)
    }

    /// Creates the service's group on these streams at start, whether or not it consumes them
    /// yet, so nothing published before its handlers exist is missed.
    pub fn groups(&mut self, streams: &[Stream]) -> &mut Self {
        for s in streams {
            if !self.groups.contains(s) {
                self.groups.push(*s);
            }
        }
        self
    }

    /// Declares the streams this service publishes; command streams among them are trimmed
    /// periodically (never below an unacknowledged entry).
    pub fn produces(&mut self, streams: &[Stream]) -> &mut Self {
        self.produces.extend_from_slice(streams);
        self
    }

    /// The consumer config this service uses for `stream` (group: [`Service::group`]).
    pub fn consumer_config(&self, stream: Stream) -> ConsumerConfig {
        ConsumerConfig::new(stream, self.group.clone(), self.consumer_name())
    }

    /// Runs `handler` on `stream` in this service's group.
    pub fn consume<H: Handler>(&mut self, cfg: ConsumerConfig, handler: H) -> &mut Self {
        self.groups(&[cfg.stream]);
        let consumer = Consumer::new(self.bus.clone(), cfg, handler);
        self.start(consumer)
    }

    /// Runs `handler` on `stream` in this service's group, handling the entries of up to
    /// `lanes` different symbols at once (see [`Consumer::laned`]).
    pub fn consume_laned<H: Handler + Clone>(
        &mut self,
        cfg: ConsumerConfig,
        handler: H,
        lanes: usize,
    ) -> &mut Self {
        self.groups(&[cfg.stream]);
        let consumer = Consumer::laned(self.bus.clone(), cfg, handler, lanes);
        self.start(consumer)
    }

    fn start<H: Handler>(&mut self, consumer: Consumer<H>) -> &mut Self {
        self.consumers.push(consumer.handle());
        let tracker = self.tracker.clone();
        self.pending
            .push(Box::new(move |token| tracker.spawn(consumer.run(token))));
        self
    }

    /// Adds HTTP routes next to the health and metrics routes.
    pub fn routes(&mut self, router: Router) -> &mut Self {
        self.routes = std::mem::take(&mut self.routes).merge(router);
        self
    }

    /// Spawns a background task that the shutdown waits for.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.tracker.spawn(fut);
    }

    /// Runs until SIGTERM/SIGINT (or `shutdown` is cancelled), then stops consumers after their
    /// batch in flight and waits for every task.
    pub async fn run(mut self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.config.common.http_addr)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on QT_HTTP_ADDR {}: {e}",
                    self.config.common.http_addr
                )
            })?;
        let health = Health {
            bus: self.bus.clone(),
            consumers: self.consumers.clone(),
            groups_ready: self.groups_ready.clone(),
            metrics: self.metrics.clone(),
        };
        let app = Router::new()
            .route("/health/live", get(|| async { "ok" }))
            .route("/health/ready", get(ready))
            .route("/metrics", get(metrics))
            .with_state(health)
            .merge(std::mem::take(&mut self.routes));
        let token = self.shutdown.clone();
        tracing::info!(service = self.name, http = %self.config.common.http_addr, redis = %crate::config::redact_url(&self.config.common.redis_url), prefix = %self.config.common.stream_prefix, "starting");
        let server_token = token.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(server_token.cancelled_owned())
                .await
        });

        spawn_signal_handler(token.clone());
        self.spawn_group_creation(token.clone());
        self.spawn_housekeeping(token.clone());
        for start in self.pending.drain(..) {
            start(token.clone());
        }
        token.cancelled().await;
        tracing::info!(service = self.name, "shutting down");
        self.tracker.close();
        // Below a supervisor's usual grace period (Docker gives 10 s before SIGKILL); what is
        // cut short here is repeated after the restart, as after a crash.
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = self.name,
                grace_s = SHUTDOWN_GRACE.as_secs(),
                "tasks did not finish within the grace period"
            );
        }
        server.await??;
        tracing::info!(service = self.name, "stopped");
        Ok(())
    }

    fn spawn_group_creation(&self, token: CancellationToken) {
        let bus = self.bus.clone();
        let streams = self.groups.clone();
        let group = self.group.clone();
        let ready = self.groups_ready.clone();
        self.tracker.spawn(async move {
            let mut attempt = 0u32;
            loop {
                let mut ok = true;
                for s in &streams {
                    if let Err(e) = bus.ensure_group(*s, &group).await {
                        tracing::warn!(error = %e, stream = %s, "cannot create consumer group yet");
                        ok = false;
                        break;
                    }
                }
                if ok {
                    ready.store(true, Ordering::Relaxed);
                    tracing::info!(groups = ?streams.iter().map(|s| s.suffix()).collect::<Vec<_>>(), %group, "consumer groups ready");
                    return;
                }
                attempt += 1;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(25)))) => {}
                    () = token.cancelled() => return,
                }
            }
        });
    }

    /// Metrics upkeep, stream stats gauges and trimming, once a minute (stats every 10 s).
    fn spawn_housekeeping(&self, token: CancellationToken) {
        let bus = self.bus.clone();
        let metrics = self.metrics.clone();
        let trim: Vec<Stream> = self
            .produces
            .iter()
            .copied()
            .filter(|s| matches!(s.retention(), Retention::KeepUnacked { .. }))
            .collect();
        let watched: Vec<Stream> = self.groups.clone();
        let group = self.group.clone();
        self.tracker.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = token.cancelled() => return,
                }
                metrics.run_upkeep();
                for s in &watched {
                    if let Ok(st) = bus.stats(*s).await {
                        metrics::gauge!("qt_stream_length", "stream" => s.suffix()).set(st.length as f64);
                        if let Some(g) = st.groups.iter().find(|g| g.name == group) {
                            metrics::gauge!("qt_bus_pending", "stream" => s.suffix(), "group" => group.clone()).set(g.pending as f64);
                            metrics::gauge!("qt_bus_lag", "stream" => s.suffix(), "group" => group.clone()).set(g.lag.unwrap_or(0) as f64);
                        }
                    }
                }
                if n.is_multiple_of(6) {
                    for s in &trim {
                        match bus.trim(*s).await {
                            Ok(0) => {}
                            Ok(k) => tracing::info!(stream = %s, trimmed = k, "trimmed acknowledged entries"),
                            Err(e) => tracing::warn!(stream = %s, error = %e, "trim failed"),
                        }
                    }
                }
                n += 1;
            }
        });
    }
}

/// The group of `service` as shard `shard`: see [`Service::group`].
pub fn group_name(service: &str, shard: crate::config::Shard) -> String {
    if shard.index == 0 {
        service.to_owned()
    } else {
        format!("{service}-shard{}", shard.index)
    }
}

#[derive(Clone)]
struct Health {
    bus: Bus,
    consumers: Vec<ConsumerHandle>,
    groups_ready: Arc<AtomicBool>,
    metrics: PrometheusHandle,
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    redis: bool,
    groups: bool,
    consumers: bool,
}

async fn ready(State(h): State<Health>) -> impl IntoResponse {
    let redis = h.bus.reachable(Duration::from_millis(500)).await;
    let groups = h.groups_ready.load(Ordering::Relaxed);
    let consumers = h.consumers.iter().all(ConsumerHandle::is_ready);
    let r = Readiness {
        ready: redis && groups && consumers,
        redis,
        groups,
        consumers,
    };
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(r))
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        h.metrics.render(),
    )
}

fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            () = term => tracing::info!("SIGTERM received"),
            () = token.cancelled() => {}
        }
        token.cancel();
    });
}

/// The whole life of a service binary: loads its config (exit code 2 with a message naming the
/// setting when it is bad), starts telemetry, builds the app with `build`, runs it until shutdown.
pub fn run<S, F, Fut>(name: &'static str, build: F) -> ExitCode
where
    S: DeserializeOwned + Serialize + Default + Send + Sync + 'static,
    F: FnOnce(Service<S>) -> Fut,
    Fut: Future<Output = anyhow::Result<Service<S>>>,
{
    run_with::<S, (), std::convert::Infallible, _, _, _>(
        name,
        |_| Ok(()),
        |service, ()| build(service),
    )
}

/// [`run`] for a service that needs more than its config before it starts: `prepare` reads it
/// once from the loaded config and the environment — the exchange's settings, checks of values
/// that parse but cannot work — and an error there exits with code 2 and the message, like a
/// bad setting; `build` gets the service and what `prepare` made. The config is loaded once.
pub fn run_with<S, X, E, P, F, Fut>(name: &'static str, prepare: P, build: F) -> ExitCode
where
    S: DeserializeOwned + Serialize + Default + Send + Sync + 'static,
    E: std::fmt::Display,
    P: FnOnce(&Config<S>) -> Result<X, E>,
    F: FnOnce(Service<S>, X) -> Fut,
    Fut: Future<Output = anyhow::Result<Service<S>>>,
{
    let config = match load_or_exit::<S>(name) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let extra = match prepare(&config) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let common = config.common.clone();
    run_main(name, &common, async move {
        let service = Service::new(name, config, qt_events::clock::system())?;
        build(service, extra).await?.run().await
    })
}

/// Loads a binary's layered config; a bad setting is printed (naming it) and becomes exit code 2.
pub fn load_or_exit<S: DeserializeOwned + Serialize + Default>(
    name: &str,
) -> Result<Config<S>, ExitCode> {
    Config::<S>::load(name).map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })
}

/// A start refused because the world disagrees with a setting (the exchange account's modes
/// are not the configured ones): like a bad setting, it exits with code 2 and its message,
/// since restarting cannot help until the setting or the world is changed. Return it (or
/// wrap it in context) from a service's build.
#[derive(Debug)]
pub struct StartRefused(pub String);

impl std::fmt::Display for StartRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartRefused {}

/// Runs a binary's main future on a multi-threaded runtime with the telemetry of `common`
/// (the same tracing setup for every binary): exit code 0 when it returns `Ok`, 2 with the
/// message on stderr when it fails with a [`StartRefused`], 1 with the error logged otherwise.
pub fn run_main<Fut>(name: &str, common: &CommonConfig, main: Fut) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let _telemetry = match crate::telemetry::init(name, common) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{name}: cannot start telemetry: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        match main.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.downcast_ref::<StartRefused>().is_some() => {
                tracing::error!(error = %format!("{e:#}"), "{name} refused to start");
                eprintln!("{name}: {e:#}");
                ExitCode::from(2)
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "{name} failed");
                ExitCode::FAILURE
            }
        }
    });
    // Dropping the runtime would wait for blocking work (clm's training) to end; that work is
    // repeated after a restart, so the process exits without it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}
