//! The bus behind Redis Sentinel, against real servers: a primary, its replica and three
//! Sentinels (Debian's redis-server in sentinel mode), all on loopback. The primary is
//! SIGKILLed while a consumer runs; the Sentinels promote the replica, and the bus follows:
//! publishing goes on to the new master and the consumer resumes its group there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use qt_bus::{Bus, BusConfig, Consumer, ConsumerConfig};
use qt_events::clock::system;
use qt_events::{Stream, StreamNames};
use qt_testkit::free_port;
use tokio_util::sync::CancellationToken;

/// A `redis-server` process on a TCP port of its own, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_server(dir: &Path, args: &[&str]) -> Proc {
    let log = std::fs::File::create(dir.join("log")).unwrap();
    Proc(
        Command::new("redis-server")
            .args(args)
            .current_dir(dir)
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test.sh installs it)"),
    )
}

fn data_server(root: &Path, name: &str, port: u16, replica_of: Option<u16>) -> Proc {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let port = port.to_string();
    let mut args = vec![
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--appendonly",
        "yes",
        "--save",
        "",
    ];
    let primary;
    if let Some(p) = replica_of {
        primary = p.to_string();
        args.extend(["--replicaof", "127.0.0.1", &primary]);
    }
    redis_server(&dir, &args)
}

fn sentinel(root: &Path, n: usize, port: u16, primary: u16) -> Proc {
    let dir = root.join(format!("sentinel-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    // Sentinel rewrites its file, so each has its own.
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor qt 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds qt 1000\nsentinel failover-timeout qt 10000\n\
             sentinel parallel-syncs qt 1\n"
        ),
    )
    .unwrap();
    redis_server(&dir, &[conf.to_str().unwrap(), "--sentinel"])
}

/// One command over TCP through the redis crate, independent of the bus.
async fn cmd(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await
}

async fn master_port(sentinel_port: u16) -> Option<u16> {
    match cmd(
        sentinel_port,
        &["SENTINEL", "get-master-addr-by-name", "qt"],
    )
    .await
    {
        Ok(redis::Value::Array(v)) => match v.get(1) {
            Some(redis::Value::BulkString(p)) => std::str::from_utf8(p).ok()?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn fast(stream: Stream) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(stream, "g", "g-1");
    c.block = Duration::from_millis(200);
    c.janitor_interval = Duration::from_millis(200);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_follows_a_sentinel_failover_and_the_consumer_resumes_on_the_new_master() {
    let root = tempfile::tempdir().unwrap();
    let (p_primary, p_replica) = (free_port(), free_port());
    let primary = data_server(root.path(), "primary", p_primary, None);
    let _replica = data_server(root.path(), "replica", p_replica, Some(p_primary));
    let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let _sentinels: Vec<Proc> = sentinel_ports
        .iter()
        .enumerate()
        .map(|(n, p)| sentinel(root.path(), n, *p, p_primary))
        .collect();
    eventually(
        20,
        "the sentinels see the primary and its replica",
        || async {
            matches!(
                cmd(sentinel_ports[0], &["SENTINEL", "replicas", "qt"]).await,
                Ok(redis::Value::Array(v)) if !v.is_empty()
            ) && master_port(sentinel_ports[2]).await == Some(p_primary)
        },
    )
    .await;

    // QT_REDIS_URL names neither server: with Sentinels it gives only credentials and the db.
    let nodes: Vec<String> = sentinel_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let cfg = BusConfig::new("redis://127.0.0.1:1/0", StreamNames::new("t:"), "test")
        .with_sentinels(nodes, "qt");
    let bus = Bus::connect(cfg, system()).unwrap();
    let rec = Recorder::default();
    let stop = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(bus.clone(), fast(Stream::Alerts), rec.clone()).run(stop.clone()),
    );
    for i in 0..20 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    eventually(20, "20 handled on the first master", || async {
        rec.keys().len() == 20
    })
    .await;
    // Replication is asynchronous: wait until the replica has every write, so this test is
    // about following the failover, not about what an asynchronous replica may lose.
    eventually(20, "the replica has every write", || async {
        cmd(p_primary, &["WAIT", "1", "200"]).await == Ok(redis::Value::Int(1))
    })
    .await;

    drop(primary); // SIGKILL
    eventually(30, "the sentinels promote the replica", || async {
        master_port(sentinel_ports[1]).await == Some(p_replica)
    })
    .await;
    for i in 20..40 {
        bus.publish(&bus.envelope(alert(i))).await.unwrap();
    }
    eventually(
        30,
        "all 40 handled, the last 20 on the new master",
        || async {
            let mut keys: Vec<usize> = rec.keys().iter().map(|k| k.parse().unwrap()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys == (0..40).collect::<Vec<_>>()
        },
    )
    .await;
    // The entries are on the new master, and its group has acknowledged them.
    let len = cmd(p_replica, &["XLEN", "t:alerts"]).await.unwrap();
    assert_eq!(len, redis::Value::Int(40));
    eventually(10, "nothing pending on the new master", || async {
        let s = bus.stats(Stream::Alerts).await.unwrap();
        s.groups[0].pending == 0
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}
