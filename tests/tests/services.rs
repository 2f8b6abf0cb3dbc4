//! Every service binary: starts, creates its groups, serves health and metrics, survives a Redis
//! restart, stops cleanly on SIGTERM, and refuses bad configuration with exit code 2.

#![allow(clippy::unwrap_used)]

use qt_e2e::{free_port, http_get};
use qt_testkit::{ChildService, RedisServer, SimExchange, bin_path, wait_for};

const SERVICES: [(&str, &[&str]); 5] = [
    ("trading-bot", &["models", "control", "portfolio"]),
    ("execution", &["intents", "portfolio", "control"]),
    ("exit-brain", &["market", "orders", "positions", "control"]),
    (
        "portfolio-intelligence",
        &[
            "orders",
            "positions",
            "market",
            "signals",
            "alerts",
            "control",
        ],
    ),
    (
        "clm",
        &["market", "signals", "positions", "control", "models"],
    ),
];

/// The simulated exchange the services talk to, as a process of its own (stepped by tests only).
fn sim() -> (SimExchange, String) {
    let sim = SimExchange::builder()
        .key("e2e-key", "e2e-secret")
        .symbols(&["BTCUSDT", "ETHUSDT"])
        .start();
    let addr = sim.addr().to_owned();
    (sim, addr)
}

fn spawn(
    name: &str,
    redis: &RedisServer,
    sim: &str,
    addr: &str,
    dir: &std::path::Path,
) -> ChildService {
    let rest = format!("http://{sim}");
    let ws = format!("ws://{sim}");
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    ChildService::spawn(
        bin_path(name),
        &[],
        &[
            ("QT_REDIS_URL", &redis.url()),
            ("QT_HTTP_ADDR", addr),
            ("QT_STREAM_PREFIX", "e2e:"),
            ("QT_LOG_FORMAT", "json"),
            ("QT_EXCHANGE", "paper"),
            ("QT_EXCHANGE_REST_URL", &rest),
            ("QT_EXCHANGE_WS_URL", &ws),
            ("QT_API_KEY", "e2e-key"),
            ("QT_API_SECRET", "e2e-secret"),
        ],
        dir.join(format!("{name}.log")),
    )
}

fn wait_ready(addr: &str, secs: u64) {
    wait_for(secs, &format!("{addr}/health/ready to answer 200"), || {
        http_get(addr, "/health/ready")
            .filter(|(s, _)| *s == 200)
            .map(|_| ())
    });
}

#[test]
fn every_service_starts_creates_its_groups_serves_health_and_stops_cleanly() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_addr) = sim();
    let mut running = Vec::new();
    for (name, _) in SERVICES {
        let addr = format!("127.0.0.1:{}", free_port());
        running.push((
            name,
            addr.clone(),
            spawn(name, &redis, &sim_addr, &addr, dir.path()),
        ));
    }
    for (name, addr, child) in &running {
        wait_for(30, &format!("{name} to be ready"), || {
            http_get(addr, "/health/ready")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
                .or_else(|| {
                    assert!(
                        !child.output().contains("panicked"),
                        "{name}: {}",
                        child.output()
                    );
                    None
                })
        });
        assert_eq!(http_get(addr, "/health/live").unwrap().0, 200, "{name}");
        let (status, metrics) = http_get(addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        assert!(
            metrics.contains("qt_bus_pending") || metrics.contains("# TYPE"),
            "{name}: {metrics}"
        );
    }
    for (name, streams) in SERVICES {
        for s in streams {
            let groups = redis.raw(&["XINFO", "GROUPS", &format!("e2e:{s}")]);
            assert!(
                groups.contains(name),
                "{name} has no group on {s}: {groups}"
            );
        }
    }
    for (name, _, child) in &mut running {
        let status = child.terminate(15);
        assert!(
            status.success(),
            "{name} exited with {status}: {}",
            child.output()
        );
        assert!(
            child.output().contains("\"stopped\""),
            "{name}: {}",
            child.output()
        );
    }
}

#[test]
fn a_service_rides_out_a_redis_restart_and_is_ready_again() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_addr) = sim();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = spawn("execution", &redis, &sim_addr, &addr, dir.path());
    wait_ready(&addr, 30);
    redis.kill();
    wait_for(10, "readiness to report redis down", || {
        http_get(&addr, "/health/ready")
            .filter(|(s, b)| *s == 503 && b.contains("\"redis\":false"))
            .map(|_| ())
    });
    assert!(
        child.is_running(),
        "a redis outage must not kill the service"
    );
    redis.restart();
    wait_ready(&addr, 30);
    assert!(child.terminate(15).success());
}

#[test]
fn a_bad_config_value_exits_2_with_a_message_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 5] = [
        ("QT_LOG_FORMAT", "xml", "QT_LOG_FORMAT"),
        ("QT_HTTP_ADDR", "not-an-address", "QT_HTTP_ADDR"),
        ("QT_REDIS_URL", "http://127.0.0.1:6379", "QT_REDIS_URL"),
        ("QT_LOG_LEVEL", "info,=[", "QT_LOG_LEVEL"),
        ("QT_CONFIG", "/nonexistent/qt.toml", "QT_CONFIG"),
    ];
    for (name, _) in SERVICES {
        for (var, value, named) in cases {
            let log = dir.path().join(format!("{name}-{var}.log"));
            let mut child = ChildService::spawn(bin_path(name), &[], &[(var, value)], log);
            let status = child.wait_exit(10);
            assert_eq!(
                status.code(),
                Some(2),
                "{name} with {var}={value}: {}",
                child.output()
            );
            assert!(
                child.output().contains(named),
                "{name} with {var}={value}: {}",
                child.output()
            );
        }
    }
    // The exchange's settings too, in every service that talks to it (clm does not).
    for (name, _) in SERVICES.iter().filter(|(n, _)| *n != "clm") {
        let log = dir.path().join(format!("{name}-exchange.log"));
        let mut child = ChildService::spawn(bin_path(name), &[], &[("QT_EXCHANGE", "bogus")], log);
        assert_eq!(
            child.wait_exit(10).code(),
            Some(2),
            "{name}: {}",
            child.output()
        );
        assert!(
            child.output().contains("QT_EXCHANGE"),
            "{name}: {}",
            child.output()
        );
    }
    // A setting of the service's own section is checked too.
    let mut child = ChildService::spawn(
        bin_path("execution"),
        &[],
        &[("QT_EXECUTION__NO_SUCH_SETTING", "1")],
        dir.path().join("own.log"),
    );
    assert_eq!(child.wait_exit(10).code(), Some(2), "{}", child.output());
    assert!(
        child.output().contains("no_such_setting"),
        "{}",
        child.output()
    );
}

/// The value of an unlabelled gauge in a Prometheus text page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn portfolio_metrics_carry_the_values_the_api_shows_and_the_exchange_weight_used() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_addr) = sim();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = spawn(
        "portfolio-intelligence",
        &redis,
        &sim_addr,
        &addr,
        dir.path(),
    );
    wait_ready(&addr, 30);
    // The first snapshot follows the first exchange sync.
    let page = wait_for(40, "a snapshot's gauges on /metrics", || {
        let (_, page) = http_get(&addr, "/metrics")?;
        gauge(&page, "qt_portfolio_equity").map(|_| page)
    });
    let (_, body) = http_get(&addr, "/api/portfolio").unwrap();
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let equity: f64 = api["snapshot"]["equity"]
        .as_str()
        .map_or_else(|| api["snapshot"]["equity"].as_f64(), |s| s.parse().ok())
        .unwrap();
    assert!(equity > 0.0, "{api}");
    assert_eq!(gauge(&page, "qt_portfolio_equity"), Some(equity), "{page}");
    assert_eq!(
        gauge(&page, "qt_portfolio_open_positions"),
        api["snapshot"]["open_positions"].as_f64(),
        "{page}"
    );
    assert_eq!(gauge(&page, "qt_portfolio_gross_exposure"), Some(0.0));
    // The sync's requests reported the weight they used.
    assert!(
        gauge(&page, "qt_exchange_used_weight_1m").is_some_and(|w| w > 0.0),
        "{page}"
    );
    assert!(child.terminate(15).success(), "{}", child.output());
}

/// The simulator reads its configuration the way the services do (qt-runtime's loader): a bad
/// setting of any layer — the shared `QT_*` ones, its `[sim_exchange]` settings, its `--config`
/// file, its keys, a flag — exits with code 2 and a message naming it.
#[test]
fn a_bad_sim_exchange_setting_exits_2_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("sim.toml");
    std::fs::write(&bad_file, "taker_fee = \"a lot\"\n").unwrap();
    let bad_file = bad_file.to_str().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 6] = [
        (&[], &[("QT_LOG_FORMAT", "xml")], "QT_LOG_FORMAT"),
        (&[], &[("QT_CONFIG", "/nonexistent/qt.toml")], "QT_CONFIG"),
        (
            &[],
            &[("QT_SIM_EXCHANGE__INITIAL_BALANCE", "rich")],
            "INITIAL_BALANCE",
        ),
        (&["--config", bad_file], &[], "taker_fee"),
        (&[], &[("SIM_API_KEYS", "no-secret-here")], "SIM_API_KEYS"),
        (&["--speed", "fast"], &[], "--speed"),
    ];
    for (i, (args, env, named)) in cases.into_iter().enumerate() {
        let mut args = args.to_vec();
        args.extend(["--listen", "127.0.0.1:0"]);
        let log = dir.path().join(format!("sim-{i}.log"));
        let mut child = ChildService::spawn(bin_path("sim-exchange"), &args, env, log);
        let status = child.wait_exit(10);
        assert_eq!(
            status.code(),
            Some(2),
            "{args:?} {env:?}: {}",
            child.output()
        );
        assert!(
            child.output().contains(named),
            "{args:?} {env:?}: {}",
            child.output()
        );
    }
}
