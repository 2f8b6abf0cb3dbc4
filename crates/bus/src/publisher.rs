//! The publishing side of the bus and the stream administration every service shares.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use qt_events::clock::SharedClock;
use qt_events::{Envelope, Event, Retention, Stream, StreamNames};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Value};

use crate::BusError;
use crate::conn::{Connection, cluster_config};
use crate::error::backoff;
use crate::raw::{self, RawEntry};
use crate::stats::StreamStats;

/// Where the bus connects and who it publishes as.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `redis://host:port/db`, `rediss://…` or `unix:///path/redis.sock`.
    pub url: String,
    pub names: StreamNames,
    /// The service name written in every envelope's `src`.
    pub src: String,
    /// How long a publish keeps retrying while Redis is unreachable before it gives up.
    pub retry_for: Duration,
    /// Redis Sentinel nodes (`host:port` or `redis://host:port`); empty: `url` is the server.
    /// With Sentinels, the bus connects to the master they name for `master_name` and follows
    /// a failover; `url` then gives only the credentials, the database and TLS.
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the master under (`QT_REDIS_MASTER_NAME`).
    pub master_name: String,
    /// Redis Cluster seed nodes (`host:port`); empty: not a cluster. With a cluster, every
    /// key must live in one slot, so the prefix must carry a hash tag (`qt:{main}:`); `url`
    /// then gives only the credentials and TLS.
    pub cluster: Vec<String>,
}

impl BusConfig {
    pub fn new(url: impl Into<String>, names: StreamNames, src: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            names,
            src: src.into(),
            retry_for: Duration::from_secs(30),
            sentinels: Vec::new(),
            master_name: String::new(),
            cluster: Vec::new(),
        }
    }

    /// Connect to the Redis Cluster these seed nodes belong to.
    pub fn with_cluster(mut self, nodes: Vec<String>) -> Self {
        self.cluster = nodes;
        self
    }

    /// Connect through these Sentinels to the master they monitor as `master_name`.
    pub fn with_sentinels(
        mut self,
        sentinels: Vec<String>,
        master_name: impl Into<String>,
    ) -> Self {
        self.sentinels = sentinels;
        self.master_name = master_name.into();
        self
    }
}

/// Where the bus's commands go: one server, or a cluster.
// Made once and kept behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Server {
    Node(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// The server the bus talks to now: a client for its address and the shared connection to it.
struct Link {
    server: Server,
    conn: Connection,
}

/// How the bus finds its server when Redis Sentinel names it.
struct SentinelTarget {
    sentinel: tokio::sync::Mutex<redis::sentinel::Sentinel>,
    master_name: String,
    node: redis::sentinel::SentinelNodeConnectionInfo,
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

fn link(client: redis::Client) -> Result<Link, BusError> {
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config())?;
    Ok(Link {
        server: Server::Node(client),
        conn: Connection::node(conn),
    })
}

fn cluster_link(client: redis::cluster::ClusterClient) -> Link {
    let conn = Connection::cluster(client.clone(), cluster_config(Duration::from_secs(5)));
    Link {
        server: Server::Cluster(client),
        conn,
    }
}

/// The cluster client for these seed nodes, with the credentials and TLS of `QT_REDIS_URL`.
fn cluster_client(
    nodes: &[String],
    url: &redis::Client,
    names: &StreamNames,
) -> Result<redis::cluster::ClusterClient, BusError> {
    if names.hash_tag().is_none() {
        return Err(BusError::Config(format!(
            "QT_STREAM_PREFIX: {:?} has no hash tag, but QT_REDIS_CLUSTER is set: a handler's \
             outputs and its acknowledgement go in one MULTI, which Redis Cluster allows only \
             within one slot; use a prefix such as \"qt:{{main}}:\"",
            names.prefix()
        )));
    }
    let info = url.get_connection_info();
    if info.redis_settings().db() != 0 {
        return Err(BusError::Config(
            "QT_REDIS_URL: a Redis Cluster has database 0 only".into(),
        ));
    }
    let tls = match info.addr() {
        redis::ConnectionAddr::TcpTls { insecure, .. } => Some(if *insecure {
            redis::TlsMode::Insecure
        } else {
            redis::TlsMode::Secure
        }),
        _ => None,
    };
    let scheme = if tls.is_some() { "rediss" } else { "redis" };
    let seeds: Vec<String> = nodes.iter().map(|n| format!("{scheme}://{n}")).collect();
    let mut b = redis::cluster::ClusterClientBuilder::new(seeds)
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(5));
    if let Some(u) = info.redis_settings().username() {
        b = b.username(u);
    }
    if let Some(p) = info.redis_settings().password() {
        b = b.password(p);
    }
    if let Some(t) = tls {
        b = b.tls(t);
    }
    b.build()
        .map_err(|e| BusError::Config(format!("QT_REDIS_CLUSTER: {e}")))
}

/// `host:port` as `redis://host:port`; a URL as given.
fn sentinel_url(node: &str) -> String {
    if node.contains("://") {
        node.to_owned()
    } else {
        format!("redis://{node}")
    }
}

/// A cheap-to-clone handle on Redis streams: publishing and acknowledging share one
/// auto-reconnecting connection; every blocking reader opens its own.
#[derive(Clone)]
pub struct Bus {
    link: Arc<RwLock<Arc<Link>>>,
    /// `None`: the server of `QT_REDIS_URL`.
    sentinel: Option<Arc<SentinelTarget>>,
    cfg: Arc<BusConfig>,
    clock: SharedClock,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("src", &self.cfg.src)
            .field("prefix", &self.cfg.names.prefix())
            .finish()
    }
}

impl Bus {
    /// Builds the bus. It connects lazily, so a service can start (and report not ready) while
    /// Redis is still down; every command reconnects as needed.
    ///
    /// With Sentinels configured it starts on the address of `QT_REDIS_URL` (no Sentinel is
    /// asked before the first command) and asks them for the master before its first dedicated
    /// connection and whenever a command fails as if the server had gone or been demoted.
    pub fn connect(cfg: BusConfig, clock: SharedClock) -> Result<Self, BusError> {
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| BusError::Config(format!("QT_REDIS_URL: {e}")))?;
        if !cfg.cluster.is_empty() {
            if !cfg.sentinels.is_empty() {
                return Err(BusError::Config(
                    "QT_REDIS_CLUSTER and QT_REDIS_SENTINELS are both set: a cluster fails \
                     over by itself"
                        .into(),
                ));
            }
            let cluster = cluster_client(&cfg.cluster, &client, &cfg.names)?;
            return Ok(Self {
                link: Arc::new(RwLock::new(Arc::new(cluster_link(cluster)))),
                sentinel: None,
                cfg: Arc::new(cfg),
                clock,
            });
        }
        let sentinel = if cfg.sentinels.is_empty() {
            None
        } else {
            if cfg.master_name.is_empty() {
                return Err(BusError::Config(
                    "QT_REDIS_MASTER_NAME: empty, but QT_REDIS_SENTINELS is set".into(),
                ));
            }
            let nodes: Vec<String> = cfg.sentinels.iter().map(|n| sentinel_url(n)).collect();
            let sentinel = redis::sentinel::Sentinel::build(nodes)
                .map_err(|e| BusError::Config(format!("QT_REDIS_SENTINELS: {e}")))?;
            let info = client.get_connection_info();
            let mut node = redis::sentinel::SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(info.redis_settings().clone());
            if let redis::ConnectionAddr::TcpTls { insecure, .. } = info.addr() {
                node = node.set_tls_mode(if *insecure {
                    redis::TlsMode::Insecure
                } else {
                    redis::TlsMode::Secure
                });
            }
            Some(Arc::new(SentinelTarget {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master_name: cfg.master_name.clone(),
                node,
            }))
        };
        Ok(Self {
            link: Arc::new(RwLock::new(Arc::new(link(client)?))),
            sentinel,
            cfg: Arc::new(cfg),
            clock,
        })
    }

    fn current(&self) -> Arc<Link> {
        self.link
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// With Sentinels: asks them which server is the master now and, when it moved (a
    /// failover), points every later command and connection at it. Without: nothing.
    pub async fn follow_master(&self) -> Result<(), BusError> {
        let Some(SentinelTarget {
            sentinel,
            master_name,
            node,
        }) = self.sentinel.as_deref()
        else {
            return Ok(());
        };
        let client = {
            let mut s = sentinel.lock().await;
            // Bounded: a Sentinel that does not answer must not hold a retry loop forever.
            match tokio::time::timeout(
                Duration::from_secs(5),
                s.async_master_for(master_name, Some(node)),
            )
            .await
            {
                Ok(r) => r?,
                Err(_) => {
                    return Err(BusError::Unavailable(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "no sentinel answered within 5 s",
                    ))));
                }
            }
        };
        let now = client.get_connection_info().addr().to_string();
        let was = match &self.current().server {
            Server::Node(c) => c.get_connection_info().addr().to_string(),
            Server::Cluster(_) => String::new(),
        };
        if now != was {
            tracing::warn!(from = %was, to = %now, master = %master_name, "redis master moved (sentinel failover); following it");
            let fresh = Arc::new(link(client)?);
            *self
                .link
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        }
        Ok(())
    }

    pub fn names(&self) -> &StreamNames {
        &self.cfg.names
    }

    pub fn key(&self, stream: Stream) -> String {
        self.cfg.names.key(stream)
    }

    pub fn src(&self) -> &str {
        &self.cfg.src
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The shared auto-reconnecting connection (for stores built on the bus).
    pub fn connection(&self) -> Connection {
        self.current().conn.clone()
    }

    /// Whether the bus talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.current().server, Server::Cluster(_))
    }

    /// A new dedicated connection whose replies may take up to `response_timeout` (for
    /// blocking reads, which would hold up every other command on a shared connection).
    pub async fn dedicated(&self, response_timeout: Duration) -> Result<Connection, BusError> {
        // A dedicated connection is opened at start and after a failure: the moment to check
        // where the master is.
        if let Err(e) = self.follow_master().await {
            tracing::warn!(error = %e, "asking the sentinels for the master failed");
        }
        match &self.current().server {
            Server::Node(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(response_timeout));
                Ok(Connection::direct(
                    client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                ))
            }
            Server::Cluster(client) => Ok(Connection::cluster_direct(
                client
                    .get_async_connection_with_config(cluster_config(response_timeout))
                    .await?,
            )),
        }
    }

    /// A new envelope from this service, stamped by the bus's clock.
    pub fn envelope(&self, event: Event) -> Envelope {
        Envelope::new(event, &self.cfg.src, self.clock.as_ref())
            .with_traceparent(crate::trace::current_traceparent())
    }

    /// The `XADD` of an envelope to its stream, with the stream's retention.
    pub(crate) fn xadd(&self, env: &Envelope) -> redis::Cmd {
        xadd_cmd(&self.cfg.names, env.event.stream(), &env.to_fields(), &[])
    }

    /// Appends an envelope to its stream and returns the entry id. Retries while Redis is
    /// unreachable, for up to `retry_for`. A retry after a lost reply may append the entry twice:
    /// consumers drop duplicates by event id.
    pub async fn publish(&self, env: &Envelope) -> Result<String, BusError> {
        let cmd = self.xadd(env);
        let v: Value = self
            .retrying(|mut c| {
                let cmd = cmd.clone();
                async move { cmd.query_async(&mut c).await.map_err(BusError::from) }
            })
            .await?;
        raw::string(v)
    }

    /// Appends many envelopes in one round trip (not atomic; see [`Bus::publish`]).
    pub async fn publish_all(&self, envs: &[Envelope]) -> Result<Vec<String>, BusError> {
        let mut pipe = redis::pipe();
        for e in envs {
            pipe.add_command(self.xadd(e));
        }
        let v: Vec<Value> = self
            .retrying(|mut c| {
                let pipe = pipe.clone();
                async move { pipe.query_async(&mut c).await.map_err(BusError::from) }
            })
            .await?;
        v.into_iter().map(raw::string).collect()
    }

    /// Like [`Bus::publish_all`], but first asks, in the same round trip, whether the entry
    /// `prior` is still on stream key `key` (the last entry this process appended there).
    /// Returns whether it is, and the new entry ids. Because the check and the appends travel
    /// together, a retry after Redis restarted checks again on the server the appends reach:
    /// a tail that Redis lost (`appendfsync everysec` and a crash) is never hidden by entries
    /// appended after the restart.
    pub async fn publish_all_after(
        &self,
        envs: &[Envelope],
        key: &str,
        prior: &str,
    ) -> Result<(bool, Vec<String>), BusError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(key)
            .arg(prior)
            .arg(prior)
            .arg("COUNT")
            .arg(1);
        for e in envs {
            pipe.add_command(self.xadd(e));
        }
        let mut v: Vec<Value> = self
            .retrying(|mut c| {
                let pipe = pipe.clone();
                async move { pipe.query_async(&mut c).await.map_err(BusError::from) }
            })
            .await?;
        if v.is_empty() {
            return Err(BusError::Protocol("empty pipeline reply".into()));
        }
        let present = !raw::entries(v.remove(0))?.is_empty();
        let ids = v.into_iter().map(raw::string).collect::<Result<_, _>>()?;
        Ok((present, ids))
    }

    /// Runs `f` on the shared connection, retrying transient failures with backoff.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T, BusError>
    where
        F: FnMut(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, BusError>>,
    {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            match f(self.connection()).await {
                Err(e) if e.is_retryable() && start.elapsed() < self.cfg.retry_for => {
                    tracing::warn!(error = %e, attempt, "redis command failed, retrying");
                    tokio::time::sleep(backoff(attempt, Duration::from_secs(2))).await;
                    if let Err(e) = self.follow_master().await {
                        tracing::warn!(error = %e, "asking the sentinels for the master failed");
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), BusError> {
        let mut c = self.connection();
        let _: Value = redis::cmd("PING").query_async(&mut c).await?;
        Ok(())
    }

    /// Whether Redis answers within `timeout`, without retrying (for readiness probes).
    pub async fn reachable(&self, timeout: Duration) -> bool {
        matches!(tokio::time::timeout(timeout, self.ping()).await, Ok(Ok(())))
    }

    /// Creates `group` on `stream` from the beginning (`0`, `MKSTREAM`); an existing group is fine.
    pub async fn ensure_group(&self, stream: Stream, group: &str) -> Result<(), BusError> {
        let key = self.key(stream);
        self.retrying(|mut c| {
            let key = key.clone();
            async move { ensure_group(&mut c, &key, group).await }
        })
        .await
    }

    /// Entries of a stream key between two ids (inclusive), at most `count`.
    pub async fn range(
        &self,
        key: &str,
        start: &str,
        end: &str,
        count: usize,
    ) -> Result<Vec<RawEntry>, BusError> {
        let cmd = redis::cmd("XRANGE")
            .arg(key)
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count)
            .to_owned();
        raw::entries(self.query(cmd).await?)
    }

    /// The last `count` entries of a stream key, oldest first.
    pub async fn last(&self, key: &str, count: usize) -> Result<Vec<RawEntry>, BusError> {
        let cmd = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .to_owned();
        let mut es = raw::entries(self.query(cmd).await?)?;
        es.reverse();
        Ok(es)
    }

    /// Entries after `after` (exclusive) on a stream key, waiting up to `block` for the first
    /// (`XREAD`, no group: for people following a stream). `conn` is a dedicated connection.
    pub async fn read_after(
        conn: &mut Connection,
        key: &str,
        after: &str,
        block: Duration,
        count: usize,
    ) -> Result<Vec<RawEntry>, BusError> {
        let v: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg("STREAMS")
            .arg(key)
            .arg(after)
            .query_async(conn)
            .await?;
        raw::read_reply(v)
    }

    /// Appends raw fields to a stream key (used to replay dead letters unchanged).
    pub async fn append_raw(
        &self,
        key: &str,
        fields: &[(String, Vec<u8>)],
    ) -> Result<String, BusError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(key).arg("*");
        for (k, v) in fields {
            cmd.arg(k.as_str()).arg(v.as_slice());
        }
        let mut c = self.connection();
        let v: Value = cmd.query_async(&mut c).await?;
        raw::string(v)
    }

    /// Deletes entries from a stream key; returns how many were deleted.
    pub async fn delete(&self, key: &str, ids: &[String]) -> Result<u64, BusError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut c = self.connection();
        let n: u64 = redis::cmd("XDEL")
            .arg(key)
            .arg(ids)
            .query_async(&mut c)
            .await?;
        Ok(n)
    }

    /// Length, groups, pending and lag of a stream.
    pub async fn stats(&self, stream: Stream) -> Result<StreamStats, BusError> {
        self.key_stats(&self.key(stream)).await
    }

    /// Length, groups, pending and lag of any stream key.
    pub async fn key_stats(&self, key: &str) -> Result<StreamStats, BusError> {
        self.retrying(|mut c| async move { crate::stats::stream_stats(&mut c, key).await })
            .await
    }

    /// Runs one command on the shared connection, retrying while Redis is unreachable.
    async fn query(&self, cmd: redis::Cmd) -> Result<Value, BusError> {
        self.retrying(|mut c| {
            let cmd = cmd.clone();
            async move { cmd.query_async(&mut c).await.map_err(BusError::from) }
        })
        .await
    }

    /// Applies a `KeepUnacked` stream's retention: deletes entries older than its minimum age,
    /// but never one that a group has not delivered and acknowledged, and nothing while the
    /// stream has no group. Returns how many entries were trimmed. `MaxLen` streams are trimmed
    /// on every append and return 0 here.
    pub async fn trim(&self, stream: Stream) -> Result<u64, BusError> {
        let Retention::KeepUnacked { min_age } = stream.retention() else {
            return Ok(0);
        };
        let key = self.key(stream);
        let stats = self.stats(stream).await?;
        let mut floor: Option<(u64, u64)> = None;
        if stats.groups.is_empty() {
            return Ok(0);
        }
        let mut c = self.connection();
        for g in &stats.groups {
            let v: Value = redis::cmd("XPENDING")
                .arg(&key)
                .arg(&g.name)
                .query_async(&mut c)
                .await?;
            let summary = raw::list(v)?;
            let pending = summary.first().and_then(raw::int).unwrap_or(0);
            let group_floor = if pending > 0 {
                summary
                    .get(1)
                    .cloned()
                    .map(raw::string)
                    .transpose()?
                    .and_then(|s| raw::parse_id(&s))
            } else {
                raw::parse_id(&g.last_delivered_id)
            };
            // A group that has delivered nothing yet needs everything.
            let group_floor = group_floor.unwrap_or((0, 0));
            floor = Some(floor.map_or(group_floor, |f: (u64, u64)| f.min(group_floor)));
        }
        let age_cut = u64::try_from(self.clock.now_ms())
            .unwrap_or(0)
            .saturating_sub(u64::try_from(min_age.as_millis()).unwrap_or(u64::MAX));
        let (ms, seq) = floor.unwrap_or((0, 0)).min((age_cut, 0));
        if (ms, seq) == (0, 0) {
            return Ok(0);
        }
        let n: u64 = redis::cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg(format!("{ms}-{seq}"))
            .query_async(&mut c)
            .await?;
        Ok(n)
    }
}

/// The `XADD` command for `fields` on `stream`, with its retention and extra plain fields.
pub(crate) fn xadd_cmd(
    names: &StreamNames,
    stream: Stream,
    fields: &[(&'static str, Vec<u8>)],
    extra: &[(&str, &str)],
) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(names.key(stream));
    if let Retention::MaxLen(n) = stream.retention() {
        cmd.arg("MAXLEN").arg("~").arg(n);
    }
    cmd.arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(v.as_slice());
    }
    for (k, v) in extra {
        cmd.arg(*k).arg(*v);
    }
    cmd
}

pub(crate) async fn ensure_group<C: redis::aio::ConnectionLike + Send>(
    c: &mut C,
    key: &str,
    group: &str,
) -> Result<(), BusError> {
    let r: Result<Value, redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(c)
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}
