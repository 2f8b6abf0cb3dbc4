//! Paper mode as `scripts/run.sh` starts it: the real sim-exchange binary replaying the repo's
//! candles with run.sh's warm-up, and trading-bot, execution and exit-brain as processes with
//! run.sh's paper defaults (read from the script itself). The only difference is time: the sim
//! is stepped as fast as the services keep up instead of replaying at 60×.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use qt_e2e::{free_port, http_get, http_post, paper_defaults, repo_root, stream_entries};
use qt_testkit::{ChildService, RedisServer, SimExchange, bin_path, wait_for};

fn ready(addr: &str) -> Option<()> {
    http_get(addr, "/health/ready")
        .filter(|(s, _)| *s == 200)
        .map(|_| ())
}

#[test]
fn docker_compose_runs_with_the_same_paper_defaults_as_run_sh() {
    let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
    let compose = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let lines: Vec<String> = compose.lines().map(|l| l.trim().replace('"', "")).collect();
    let get = |k: &str| {
        paper_defaults(&script)
            .into_iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v)
            .unwrap()
    };
    for (k, v) in paper_defaults(&script) {
        if k.starts_with("QT_") {
            let line = format!("{k}: {v}");
            assert!(lines.contains(&line), "docker-compose.yml lacks {line:?}");
        }
    }
    // The simulator's replay speed and warm-up, on its command line.
    for (flag, k) in [
        ("--speed", "SIM_SPEED"),
        ("--warmup-candles", "SIM_WARMUP_CANDLES"),
    ] {
        let arg = format!("\"{flag}\", \"{}\"", get(k));
        assert!(compose.contains(&arg), "docker-compose.yml lacks {arg}");
    }
}

#[test]
fn run_sh_paper_defaults_are_parsed_from_the_script() {
    let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
    let defaults = paper_defaults(&script);
    let get = |n: &str| {
        defaults
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert!(get("SIM_WARMUP_CANDLES").is_some(), "{defaults:?}");
    assert!(get("QT_TRADING_BOT__SYMBOLS").is_some(), "{defaults:?}");
    assert!(
        defaults.iter().all(|(k, v)| !k.is_empty() && !v.is_empty()),
        "{defaults:?}"
    );
}

/// The paper stack with run.sh's defaults plus `extra`.
struct Paper {
    _redis: RedisServer,
    _dir: tempfile::TempDir,
    _sim: SimExchange,
    sim_addr: String,
    url: String,
    prefix: String,
    services: Vec<(&'static str, String, ChildService)>,
}

impl Paper {
    fn step(&self) {
        let (status, body) = http_post(&self.sim_addr, "/sim/step?candles=1").unwrap();
        assert_eq!(status, 200, "{body}");
        std::thread::sleep(Duration::from_millis(150));
    }

    fn count(&self, stream: &str, type_name: &str) -> usize {
        stream_entries(&self.url, &format!("{}{stream}", self.prefix))
            .iter()
            .filter(|e| e.type_name() == type_name)
            .count()
    }

    fn log(&self, name: &str) -> String {
        self.services
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, c)| c.output())
            .unwrap()
    }

    fn logs(&self) -> String {
        self.services
            .iter()
            .map(|(n, _, c)| format!("--- {n}\n{}\n", tail(&c.output(), 4000)))
            .collect()
    }

    fn stop(mut self) {
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

fn start_paper(extra: &[(&str, &str)]) -> Paper {
    let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
    let defaults = paper_defaults(&script);
    let default = |n: &str| {
        defaults
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{n} is not among run.sh's paper defaults: {defaults:?}"))
    };
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("paper{}:", std::process::id());

    let sim = SimExchange::builder()
        .key("paper-key", "paper-secret")
        .data(repo_root().join("data/klines/5m"))
        .warmup_candles(default("SIM_WARMUP_CANDLES").parse().unwrap())
        .start_in(tempfile::tempdir_in(dir.path()).unwrap());
    let sim_addr = sim.addr().to_owned();

    let rest = format!("http://{sim_addr}");
    let ws = format!("ws://{sim_addr}");
    let url = redis.url();
    let mut services = Vec::new();
    for name in ["trading-bot", "execution", "exit-brain"] {
        let addr = format!("127.0.0.1:{}", free_port());
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let db = sub.join(format!("{name}.db"));
        let mut env: Vec<(String, String)> = defaults
            .iter()
            .filter(|(k, _)| k.starts_with("QT_"))
            .cloned()
            .collect();
        env.extend(
            [
                ("QT_REDIS_URL", url.as_str()),
                ("QT_HTTP_ADDR", addr.as_str()),
                ("QT_STREAM_PREFIX", prefix.as_str()),
                ("QT_LOG_FORMAT", "json"),
                ("QT_EXCHANGE", "paper"),
                ("QT_EXCHANGE_REST_URL", rest.as_str()),
                ("QT_EXCHANGE_WS_URL", ws.as_str()),
                ("QT_API_KEY", "paper-key"),
                ("QT_API_SECRET", "paper-secret"),
                ("QT_EXECUTION__SQLITE_PATH", db.to_str().unwrap()),
                ("QT_EXIT_BRAIN__SQLITE_PATH", db.to_str().unwrap()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        for (k, v) in extra {
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
        services.push((name, addr, child));
    }
    for (name, addr, child) in &services {
        wait_for(60, &format!("{name} to be ready"), || {
            assert!(
                !child.output().contains("panicked"),
                "{name}: {}",
                child.output()
            );
            ready(addr)
        });
    }

    Paper {
        _redis: redis,
        _dir: dir,
        _sim: sim,
        sim_addr,
        url,
        prefix,
        services,
    }
}

#[test]
fn the_default_paper_configuration_trades_nothing_without_a_validated_model_and_says_so() {
    let paper = start_paper(&[]);
    for _ in 0..20 {
        paper.step();
    }
    let signals = stream_entries(&paper.url, &format!("{}signals", paper.prefix));
    assert!(!signals.is_empty(), "no signal\n{}", paper.logs());
    for e in &signals {
        let qt_events::Event::SignalGenerated(s) = &e.event else {
            panic!("{e:?}")
        };
        assert_eq!(s.model, "none", "{s:?}");
        assert_eq!(s.action, qt_events::SignalAction::Hold, "{s:?}");
    }
    assert_eq!(paper.count("intents", "OpenPosition"), 0);
    assert!(
        paper.log("trading-bot").contains("no validated model"),
        "{}",
        paper.logs()
    );
    paper.stop();
}

#[test]
fn the_paper_stack_trading_the_momentum_rule_fills_an_order_and_closes_a_position() {
    // The machinery, with a model that trades (momentum loses out of sample: not a default).
    let paper = start_paper(&[("QT_TRADING_BOT__MODEL", "momentum")]);
    // Step candles while the services keep up, until a fill and a close have been published.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut steps = 0;
    let (mut filled, mut closed) = (0, 0);
    while Instant::now() < deadline && (filled == 0 || closed == 0) {
        paper.step();
        steps += 1;
        filled = paper.count("orders", "OrderFilled");
        closed = paper.count("positions", "PositionClosed");
    }
    let logs = paper.logs();
    let signal_count = stream_entries(&paper.url, &format!("{}signals", paper.prefix)).len();
    assert!(
        filled >= 1 && closed >= 1,
        "after {steps} candles: {signal_count} signals, {filled} OrderFilled, {closed} \
         PositionClosed\n{logs}"
    );
    // A person following execution's log sees the order, its fill and the exit.
    let execution_log = paper.log("execution");
    for line in [
        "order accepted",
        "OrderFilled",
        "position opened",
        "position closed",
    ] {
        assert!(
            execution_log.contains(line),
            "execution's log has no {line:?}\n{logs}"
        );
    }
    // The exchange secret signs every order and never reaches a log line.
    for (name, _, child) in &paper.services {
        assert!(
            !child.output().contains("paper-secret"),
            "{name} logged the API secret"
        );
    }
    paper.stop();
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
