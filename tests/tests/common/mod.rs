//! The paper stack of `scripts/run.sh` for e2e tests: redis-server, the sim-exchange binary
//! (stepped by the test) on the repo's candles, and trading-bot, execution and exit-brain as
//! processes with run.sh's paper defaults plus the test's overrides.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use qt_e2e::{free_port, http_get, http_post, paper_defaults, repo_root, stream_entries};
use std::collections::BTreeMap;

use qt_events::{Decimal, Envelope, Event};
use qt_exchange::Exchange;
use qt_testkit::{ChildService, Fsync, RedisServer, SimExchange, bin_path, wait_for};

pub struct Stack {
    pub redis: RedisServer,
    pub dir: tempfile::TempDir,
    pub sim: SimExchange,
    pub sim_addr: String,
    pub prefix: String,
    pub services: Vec<(&'static str, String, ChildService)>,
}

fn ready(addr: &str) -> Option<()> {
    http_get(addr, "/health/ready")
        .filter(|(s, _)| *s == 200)
        .map(|_| ())
}

impl Stack {
    /// Starts everything and waits until each service is ready.
    pub fn start(tag: &str, overrides: &[(&str, &str)]) -> Self {
        let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
        let warmup = paper_defaults(&script)
            .into_iter()
            .find(|(k, _)| k == "SIM_WARMUP_CANDLES")
            .map(|(_, v)| v)
            .expect("run.sh sets SIM_WARMUP_CANDLES");
        let data = repo_root().join("data/klines/5m");
        let data = data.to_str().unwrap().to_owned();
        Self::start_with(
            tag,
            &["--data", &data, "--warmup-candles", &warmup],
            &["trading-bot", "execution", "exit-brain"],
            overrides,
        )
    }

    /// Starts the sim with `sim_args` (plus listen address and `--speed 0`) and `services`.
    pub fn start_with(
        tag: &str,
        sim_args: &[&str],
        services: &[&'static str],
        overrides: &[(&str, &str)],
    ) -> Self {
        Self::start_opts(tag, sim_args, services, overrides, Fsync::Always)
    }

    /// [`Stack::start_with`] with Redis's AOF fsync policy.
    pub fn start_opts(
        tag: &str,
        sim_args: &[&str],
        services: &[&'static str],
        overrides: &[(&str, &str)],
        fsync: Fsync,
    ) -> Self {
        Self::start_full(tag, sim_args, &[], services, overrides, fsync)
    }

    /// [`Stack::start_opts`] with environment variables for the simulator's process.
    pub fn start_full(
        tag: &str,
        sim_args: &[&str],
        sim_env: &[(&str, &str)],
        services: &[&'static str],
        overrides: &[(&str, &str)],
        fsync: Fsync,
    ) -> Self {
        let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
        let defaults = paper_defaults(&script);
        let redis = RedisServer::start_with(fsync, None);
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("{tag}{}:", std::process::id());
        let mut sim = SimExchange::builder()
            .key("paper-key", "paper-secret")
            .args(sim_args);
        for (k, v) in sim_env {
            sim = sim.env(k, v);
        }
        let sim = sim.start_in(tempfile::tempdir_in(dir.path()).unwrap());
        let sim_addr = sim.addr().to_owned();
        let mut stack = Self {
            redis,
            dir,
            sim,
            sim_addr,
            prefix,
            services: Vec::new(),
        };
        for name in services {
            let child = stack.spawn(name, &defaults, overrides);
            stack.services.push(child);
        }
        for (name, addr, child) in &stack.services {
            wait_for(60, &format!("{name} to be ready"), || {
                assert!(
                    !child.output().contains("panicked"),
                    "{name}: {}",
                    child.output()
                );
                ready(addr)
            });
        }
        stack
    }

    fn spawn(
        &self,
        name: &'static str,
        defaults: &[(String, String)],
        overrides: &[(&str, &str)],
    ) -> (&'static str, String, ChildService) {
        let addr = format!("127.0.0.1:{}", free_port());
        let sub = self.dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let db = self.db_path(name);
        let rest = format!("http://{}", self.sim_addr);
        let ws = format!("ws://{}", self.sim_addr);
        let url = self.redis.url();
        let mut env: Vec<(String, String)> = defaults
            .iter()
            .filter(|(k, _)| k.starts_with("QT_"))
            .cloned()
            .collect();
        env.extend(
            [
                ("QT_REDIS_URL", url.as_str()),
                ("QT_HTTP_ADDR", addr.as_str()),
                ("QT_STREAM_PREFIX", self.prefix.as_str()),
                ("QT_LOG_FORMAT", "json"),
                ("QT_EXCHANGE", "paper"),
                ("QT_EXCHANGE_REST_URL", rest.as_str()),
                ("QT_EXCHANGE_WS_URL", ws.as_str()),
                ("QT_API_KEY", "paper-key"),
                ("QT_API_SECRET", "paper-secret"),
                ("QT_EXECUTION__SQLITE_PATH", db.to_str().unwrap()),
                ("QT_EXIT_BRAIN__SQLITE_PATH", db.to_str().unwrap()),
                // The machinery under test needs a model that trades; the paper default is
                // none (nothing validated, nothing traded).
                ("QT_TRADING_BOT__MODEL", "momentum"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        for (k, v) in overrides {
            env.retain(|(e, _)| e != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let env_ref: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let child = ChildService::spawn(
            bin_path(name),
            &[],
            &env_ref,
            sub.join(format!("{name}.log")),
        );
        (name, addr, child)
    }

    /// Waits until every service answers ready.
    pub fn wait_ready(&self, secs: u64) {
        for (name, addr, _) in &self.services {
            wait_for(secs, &format!("{name} to be ready"), || ready(addr));
        }
    }

    /// The paper data and warm-up of run.sh as sim arguments.
    pub fn paper_sim_args() -> Vec<String> {
        let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
        let warmup = paper_defaults(&script)
            .into_iter()
            .find(|(k, _)| k == "SIM_WARMUP_CANDLES")
            .map(|(_, v)| v)
            .expect("run.sh sets SIM_WARMUP_CANDLES");
        let data = repo_root().join("data/klines/5m");
        vec![
            "--data".into(),
            data.to_str().unwrap().to_owned(),
            "--warmup-candles".into(),
            warmup,
        ]
    }

    /// The envelopes of one of the system's streams (`orders`, `positions`, ...).
    pub fn stream(&self, name: &str) -> Vec<Envelope> {
        stream_entries(&self.redis.url(), &format!("{}{name}", self.prefix))
    }

    /// Publishes envelopes on their streams in one transaction (as a service's publish_all).
    pub fn publish_all(&self, envs: &[Envelope]) {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for e in envs {
            let key = format!("{}{}", self.prefix, e.event.stream().suffix());
            let mut cmd = redis::cmd("XADD");
            cmd.arg(key).arg("*");
            for (k, v) in e.to_fields() {
                cmd.arg(k).arg(v);
            }
            pipe.add_command(cmd).ignore();
        }
        pipe.query::<()>(&mut con).unwrap();
    }

    /// Closes one more candle on every symbol.
    pub fn step(&self) {
        let (status, body) = http_post(&self.sim_addr, "/sim/step?candles=1").unwrap();
        assert_eq!(status, 200, "{body}");
    }

    /// Closes one more candle on `symbols` only.
    pub fn step_symbols(&self, symbols: &[String]) {
        let path = format!("/sim/step?candles=1&symbols={}", symbols.join(","));
        let (status, body) = http_post(&self.sim_addr, &path).unwrap();
        assert_eq!(status, 200, "{body}");
    }

    /// The SQLite file of a service of the stack.
    pub fn db_path(&self, service: &str) -> std::path::PathBuf {
        self.dir.path().join(service).join(format!("{service}.db"))
    }

    /// (lag, pending) of `group` on one of the system's streams.
    pub fn group_backlog(&self, stream: &str, group: &str) -> (u64, u64) {
        let client = redis::Client::open(self.redis.url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(format!("{}{stream}", self.prefix))
            .query(&mut con)
            .unwrap();
        let int = |v: Option<&redis::Value>| match v {
            Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => u64::MAX,
        };
        groups
            .iter()
            .find(|g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == group.as_bytes()))
            .map_or((u64::MAX, u64::MAX), |g| (int(g.get("lag")), int(g.get("pending"))))
    }

    /// The open positions as the `positions` stream tells them: the last fact per symbol.
    pub fn stream_positions(&self) -> BTreeMap<String, Decimal> {
        let mut open = BTreeMap::new();
        for e in self.stream("positions") {
            match e.event {
                Event::PositionOpened(p) => {
                    open.insert(p.symbol, p.quantity);
                }
                Event::PositionChanged(p) => {
                    open.insert(p.symbol, p.quantity);
                }
                Event::PositionClosed(p) => {
                    open.remove(&p.symbol);
                }
                _ => {}
            }
        }
        open
    }

    /// The last few thousand bytes of every service's log, for failure messages.
    pub fn logs(&self) -> String {
        self.services
            .iter()
            .map(|(n, _, c)| {
                let out = c.output();
                let mut start = out.len().saturating_sub(3000);
                while !out.is_char_boundary(start) {
                    start += 1;
                }
                format!("--- {n}\n{}\n", &out[start..])
            })
            .collect()
    }

    /// A `qt-exchange` client on the simulator with the stack's account.
    pub fn exchange(&self) -> qt_exchange::BinanceClient {
        let cfg = qt_exchange::ExchangeConfig::for_mode(qt_exchange::Mode::Paper)
            .with_urls(
                format!("http://{}", self.sim_addr),
                format!("ws://{}", self.sim_addr),
            )
            .with_credentials("paper-key", "paper-secret");
        qt_exchange::BinanceClient::new(cfg, qt_events::clock::system()).unwrap()
    }

    /// Stops every service with SIGTERM and checks none panicked.
    pub fn stop(&mut self) {
        for (name, _, child) in &mut self.services {
            assert!(
                !child.output().contains("panicked"),
                "{name}: {}",
                child.output()
            );
            assert!(child.terminate(15).success(), "{name}: {}", child.output());
        }
    }
}

impl Drop for Stack {
    /// `QT_E2E_KEEP=1` keeps the stack's folder (service logs and databases) for a post-mortem.
    fn drop(&mut self) {
        if std::env::var_os("QT_E2E_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            self.sim.keep_folder();
            eprintln!("stack folder kept: {}", self.dir.path().display());
        }
    }
}

/// The exchange's open positions: size by symbol.
pub fn exchange_positions(
    rt: &tokio::runtime::Runtime,
    ex: &impl Exchange,
) -> BTreeMap<String, Decimal> {
    rt.block_on(ex.positions(None))
        .unwrap()
        .into_iter()
        .filter(|p| !p.position_amt.is_zero())
        .map(|p| (p.symbol, p.position_amt.abs()))
        .collect()
}

/// The symbols whose open position has neither its stop resting on the exchange nor a market
/// close working: a stop that would have fired at once (the market moved past it) is replaced
/// by a market close, which the simulator fills over the next candles when it exceeds their
/// volume share. Read from the simulator's book (`GET /sim/book`), which costs no request
/// weight: a watcher on the account's API would eat the weight the services share with it on
/// the simulator's one IP.
pub fn unprotected(sim_addr: &str) -> Vec<String> {
    let (status, body) = http_get(sim_addr, "/sim/book").expect("the simulator answers");
    assert_eq!(status, 200, "{body}");
    let book: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = |a: &serde_json::Value, k: &str| a[k].as_array().cloned().unwrap_or_default();
    let mut bare = Vec::new();
    for a in book["accounts"].as_array().into_iter().flatten() {
        let (algos, orders) = (list(a, "openAlgoOrders"), list(a, "openOrders"));
        for p in list(a, "positions") {
            let amt: Decimal = p["positionAmt"].as_str().unwrap().parse().unwrap();
            let symbol = p["symbol"].as_str().unwrap();
            let close = if amt > Decimal::ZERO { "SELL" } else { "BUY" };
            let stop = algos.iter().any(|o| {
                o["symbol"] == symbol && o["orderType"] == "STOP_MARKET" && o["side"] == close
            });
            let closing = orders
                .iter()
                .any(|o| o["symbol"] == symbol && o["reduceOnly"] == true && o["side"] == close);
            if !stop && !closing {
                bare.push(symbol.to_owned());
            }
        }
    }
    bare
}

/// Waits up to `within` for every open position to have its stop on the exchange (or a market
/// close working); fails with `context()` (logs, backlog) otherwise.
pub fn assert_protected_within(
    sim_addr: &str,
    within: std::time::Duration,
    context: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let bare = unprotected(sim_addr);
        if bare.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stop on the exchange for {bare:?} after {within:?}\n{}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// One stretch in which a symbol held a position without a stop (or a market close working).
#[derive(Debug, Clone)]
pub struct Bare {
    pub symbol: String,
    /// When it was first seen bare (UTC, as the services' logs print it).
    pub from: String,
    pub lasted: std::time::Duration,
}

/// Watches the exchange from a thread of its own while a test runs, and measures every stretch
/// in which a symbol holds a position without a stop (or a market close working).
pub struct StopWatch {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Bare>>,
}

/// `HH:MM:SS.mmm` (UTC) of a moment.
fn utc_clock(t: std::time::SystemTime) -> String {
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600 % 24,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

impl StopWatch {
    /// Starts sampling the simulator's book every 100 ms.
    pub fn start(sim_addr: String) -> Self {
        use std::sync::atomic::Ordering;
        use std::time::{Duration, Instant, SystemTime};
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            let mut open: BTreeMap<String, (Instant, SystemTime)> = BTreeMap::new();
            let mut stretches = Vec::new();
            let close = |s: String, since: (Instant, SystemTime), at: Instant| Bare {
                symbol: s,
                from: utc_clock(since.1),
                lasted: at - since.0,
            };
            while !flag.load(Ordering::Relaxed) {
                let at = (Instant::now(), SystemTime::now());
                let bare = unprotected(&sim_addr);
                for s in &bare {
                    open.entry(s.clone()).or_insert(at);
                }
                for s in open.keys().cloned().collect::<Vec<_>>() {
                    if !bare.contains(&s) {
                        let since = open.remove(&s).unwrap();
                        stretches.push(close(s, since, at.0));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let end = Instant::now();
            stretches.extend(open.into_iter().map(|(s, since)| close(s, since, end)));
            stretches
        });
        Self { done, thread }
    }

    /// Stops sampling; returns every unprotected stretch seen, longest first.
    pub fn finish(self) -> Vec<Bare> {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut v = self.thread.join().unwrap();
        v.sort_by_key(|b| std::cmp::Reverse(b.lasted));
        v
    }
}
