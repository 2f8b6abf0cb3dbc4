//! [`Connection`]: one connection type over a single Redis server and a Redis Cluster, so the
//! publisher, the consumers and the stores send the same commands to either.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to Redis, to a single server or to a Redis Cluster (where it routes each
/// command, and each pipeline or `MULTI`, to the master of its keys' slot, and follows `MOVED`
/// and `ASK` by itself). Cheap to clone: clones share the underlying connection.
#[derive(Clone)]
pub struct Connection(Kind);

#[derive(Clone)]
enum Kind {
    /// The bus's shared connection to a single server (reconnects by itself).
    Node(ConnectionManager),
    /// A dedicated connection to a single server.
    Direct(MultiplexedConnection),
    /// The bus's shared connection to a cluster, opened on first use.
    Cluster(Arc<LazyCluster>),
    /// A dedicated connection to a cluster.
    ClusterDirect(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Kind::Node(_) => "Connection(node)",
            Kind::Direct(_) => "Connection(node, dedicated)",
            Kind::Cluster(_) => "Connection(cluster)",
            Kind::ClusterDirect(_) => "Connection(cluster, dedicated)",
        })
    }
}

/// A cluster connection made when a command first needs it and made again after a failed
/// attempt, so a service can start while the cluster is down (as with a single server).
pub(crate) struct LazyCluster {
    client: ClusterClient,
    config: ClusterConfig,
    conn: tokio::sync::OnceCell<ClusterConnection>,
}

impl LazyCluster {
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        self.conn
            .get_or_try_init(|| {
                self.client
                    .get_async_connection_with_config(self.config.clone())
            })
            .await
            .cloned()
    }
}

/// Timeouts of a cluster connection whose replies may take up to `response`.
pub(crate) fn cluster_config(response: Duration) -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(response)
}

impl Connection {
    pub(crate) fn node(c: ConnectionManager) -> Self {
        Self(Kind::Node(c))
    }

    pub(crate) fn direct(c: MultiplexedConnection) -> Self {
        Self(Kind::Direct(c))
    }

    pub(crate) fn cluster(client: ClusterClient, config: ClusterConfig) -> Self {
        Self(Kind::Cluster(Arc::new(LazyCluster {
            client,
            config,
            conn: tokio::sync::OnceCell::new(),
        })))
    }

    pub(crate) fn cluster_direct(c: ClusterConnection) -> Self {
        Self(Kind::ClusterDirect(c))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Kind::Node(c) => c.req_packed_command(cmd),
            Kind::Direct(c) => c.req_packed_command(cmd),
            Kind::ClusterDirect(c) => c.req_packed_command(cmd),
            Kind::Cluster(lazy) => Box::pin(async move {
                let mut c = lazy.get().await?;
                c.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Kind::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Direct(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::ClusterDirect(c) => c.req_packed_commands(pipeline, offset, count),
            Kind::Cluster(lazy) => Box::pin(async move {
                let mut c = lazy.get().await?;
                c.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Kind::Node(c) => c.get_db(),
            Kind::Direct(c) => c.get_db(),
            // A cluster has database 0 only.
            Kind::Cluster(_) | Kind::ClusterDirect(_) => 0,
        }
    }
}
