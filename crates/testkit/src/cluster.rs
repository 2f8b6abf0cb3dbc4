//! [`RedisCluster`]: a real Redis Cluster of Debian's `redis-server` processes in cluster mode
//! on loopback ports, its slots assigned by `redis-cli --cluster create`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis Cluster of `masters` masters without replicas, each its own `redis-server` on
/// 127.0.0.1 with `appendonly yes`. Dropping it kills every node.
#[derive(Debug)]
pub struct RedisCluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    children: Vec<Child>,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl RedisCluster {
    /// Starts the nodes, creates the cluster and waits until every node reports
    /// `cluster_state:ok` (at most 30 s).
    pub fn start(masters: usize) -> Self {
        Self::start_with_replicas(masters, 0)
    }

    /// As [`RedisCluster::start`], with `replicas` replicas per master (`redis-cli --cluster
    /// create --cluster-replicas`), each taking over its master's slots when the master is
    /// gone for the node timeout (2 s).
    pub fn start_with_replicas(masters: usize, replicas: usize) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("qt-redis-cluster-")
            .tempdir()
            .unwrap();
        let mut c = Self {
            dir,
            ports: Vec::new(),
            children: Vec::new(),
        };
        for n in 0..masters * (1 + replicas) {
            let (port, bus_port) = (crate::free_port(), crate::free_port());
            let node_dir = c.dir.path().join(format!("node-{n}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            c.children.push(spawn_node(&node_dir, port, bus_port));
            c.ports.push(port);
        }
        for p in c.ports.clone() {
            wait(10, &format!("redis-server on port {p}"), || {
                c.cli(p, &["PING"]).trim() == "PONG"
            });
        }
        let nodes = c.nodes();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli on PATH (Debian's redis-tools; scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for p in c.ports.clone() {
            wait(30, &format!("cluster_state:ok on port {p}"), || {
                c.cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
        }
        if replicas > 0 {
            wait(30, "every replica linked to its master", || {
                let nodes = c.cli(c.ports[0], &["CLUSTER", "NODES"]);
                nodes.lines().filter(|l| l.contains("slave")).count() == masters * replicas
                    && c.ports.iter().all(|&p| {
                        let info = c.cli(p, &["INFO", "replication"]);
                        !info.contains("role:slave") || info.contains("master_link_status:up")
                    })
            });
        }
        c
    }

    /// Kills the node on `port` (SIGKILL, as a crash), leaving the others running.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).unwrap();
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }

    /// `127.0.0.1:<port>` of every node, for `QT_REDIS_CLUSTER`.
    pub fn nodes(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Runs `redis-cli -p <port> <args>` against one node (no redirection) and returns its
    /// output, for fixtures that must not depend on the code under test.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The port of the master that owns `key`'s slot, as the first node sees it.
    pub fn owner_of(&self, key: &str) -> u16 {
        let port = self.owner_seen_by(self.ports[0], key);
        assert_ne!(port, 0, "no master owns the slot of {key}");
        port
    }

    /// The port of the master that owns `key`'s slot, as the node on `port` sees it (`0` when
    /// that node does not answer).
    pub fn owner_seen_by(&self, port: u16, key: &str) -> u16 {
        let Ok(slot) = self
            .cli(port, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse::<u16>()
        else {
            return 0;
        };
        // `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots>…`
        let nodes = self.cli(port, &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let Some(addr) = f.get(1) else { continue };
            if f.get(2)
                .is_some_and(|flags| flags.split(',').any(|x| x == "fail"))
            {
                continue;
            }
            let owns = f.iter().skip(8).any(|r| match r.split_once('-') {
                Some((a, b)) => {
                    a.parse::<u16>().is_ok_and(|a| a <= slot)
                        && b.parse::<u16>().is_ok_and(|b| slot <= b)
                }
                None => r.parse::<u16>().is_ok_and(|s| s == slot),
            });
            if owns {
                let port = addr.split('@').next().and_then(|a| a.rsplit_once(':'));
                return port.and_then(|(_, p)| p.parse().ok()).unwrap_or(0);
            }
        }
        0
    }
}

fn spawn_node(dir: &Path, port: u16, bus_port: u16) -> Child {
    let bin = crate::redis::which("redis-server").unwrap_or_else(|| {
        panic!("redis-server is not on PATH: install Debian's redis-server (scripts/test.sh does)")
    });
    let log = std::fs::File::create(dir.join("log")).unwrap();
    Command::new(bin)
        .args(["--port", &port.to_string()])
        .args(["--cluster-port", &bus_port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", "2000"])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .args(["--save", ""])
        .current_dir(dir)
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
