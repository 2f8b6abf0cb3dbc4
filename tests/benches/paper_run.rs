//! Paper-run benchmark: tick-to-order latency and memory per service.
//!
//! Starts redis-server (`appendfsync everysec`, as `deploy/redis.conf`), the sim-exchange
//! binary (the repo's six symbols, stepped by this bench), and trading-bot, execution and
//! exit-brain (release binaries) with `scripts/run.sh`'s paper defaults, plus a cooldown of 0
//! and tight exits so that positions open and close all the time.
//! Execution reaches the simulator through a byte-for-byte TCP relay in this process that notes
//! when each entry order's request line arrives, with its client order id. A Redis reader notes
//! when each `CandleClosed` becomes readable on `qt:market`. Each entry order is matched with the
//! candle that caused it (the `OpenPosition` on `qt:intents` whose client order id it carries has
//! that candle's event id as its `corr`). Tick-to-order = the order's arrival − its candle's
//! (both `Instant`s in this process). The run stays under the exchange's order-rate budget (an
//! entry the budget holds back measures the budget, up to its 10 s window): one take-profit leg
//! and a candle every 200 ms; the intents it deferred are printed. Memory: VmRSS / VmHWM of each service
//! from /proc at the end. Run: `cargo bench -p qt-e2e --bench paper_run` (STEPS, STEP_MS env).
//! It never asserts a time; it prints figures. With `BENCH_KEEP=1` the services log at `info`,
//! the run's directory is kept (its path is printed) and `samples.tsv` in it lists every sample
//! (wall-clock ms of the order's arrival, symbol, latency in ms) to read against the logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qt_e2e::{free_port, http_get, http_post, paper_defaults, repo_root, stream_entries};
use qt_testkit::{ChildService, Fsync, RedisServer, SimExchange, bin_path, wait_for};

/// When something was seen, and its id (an order's client order id, a candle's event id).
type Arrivals = Arc<Mutex<Vec<(Instant, String)>>>;

/// Relays every connection to `upstream`, noting entry orders (`POST /fapi/v1/order?` without
/// `reduceOnly=true`) as they arrive.
fn relay(listener: TcpListener, upstream: String, arrivals: Arrivals) {
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&buf[..n]);
                    for line in text.split("\r\n") {
                        if let Some(q) = line.strip_prefix("POST /fapi/v1/order?")
                            && !q.contains("reduceOnly=true")
                            && let Some(coid) = q
                                .split(['&', ' '])
                                .find_map(|kv| kv.strip_prefix("newClientOrderId="))
                        {
                            arrivals.lock().unwrap().push((at, coid.to_owned()));
                        }
                    }
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Both);
            });
        }
    });
}

/// Notes when each `CandleClosed` becomes readable on the market stream, by event id.
fn watch_market(url: String, key: String, seen: Arrivals) {
    std::thread::spawn(move || {
        let client = redis::Client::open(url).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut last = "$".to_owned();
        loop {
            let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(&key)
                .arg(&last)
                .query(&mut con)
                .ok();
            let at = Instant::now();
            let Some(reply) = reply else { continue };
            for k in reply.keys {
                for entry in k.ids {
                    last = entry.id.clone();
                    let pairs: Vec<(&[u8], &[u8])> = entry
                        .map
                        .iter()
                        .filter_map(|(k, v)| match v {
                            redis::Value::BulkString(b) => Some((k.as_bytes(), b.as_slice())),
                            _ => None,
                        })
                        .collect();
                    if let Ok(env) = qt_events::Envelope::from_fields(pairs)
                        && env.type_name() == "CandleClosed"
                    {
                        seen.lock().unwrap().push((at, env.id));
                    }
                }
            }
        }
    });
}

fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo test --all-targets` and nextest's listing run bench targets too: only a real
    // `cargo bench` (which passes --bench) starts the minute-long run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("paper_run: run it with `cargo bench -p qt-e2e --bench paper_run`");
        return;
    }
    let steps: usize = std::env::var("STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let step_ms: u64 = std::env::var("STEP_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let script = std::fs::read_to_string(repo_root().join("scripts/run.sh")).unwrap();
    let defaults = paper_defaults(&script);
    let warmup = defaults
        .iter()
        .find(|(k, _)| k == "SIM_WARMUP_CANDLES")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "400".into());

    let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
    let redis = RedisServer::start_with(Fsync::EverySec, None);
    let dir = tempfile::tempdir().unwrap();
    let mut sim = SimExchange::builder()
        .key("paper-key", "paper-secret")
        .data(repo_root().join("data/klines/5m"))
        .warmup_candles(warmup.parse().unwrap())
        .args(&["--no-rate-limits"])
        .start_in(tempfile::tempdir_in(dir.path()).unwrap());
    let sim_addr = sim.addr().to_owned();

    let arrivals: Arrivals = Arc::default();
    let relay_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay_listener.local_addr().unwrap().to_string();
    relay(relay_listener, sim_addr.clone(), arrivals.clone());

    let url = redis.url();
    let candles: Arrivals = Arc::default();
    watch_market(url.clone(), "qt:market".into(), candles.clone());

    let mut services = Vec::new();
    for name in ["trading-bot", "execution", "exit-brain"] {
        let addr = format!("127.0.0.1:{}", free_port());
        let db = dir.path().join(format!("{name}.db"));
        let rest = if name == "execution" {
            format!("http://{relay_addr}")
        } else {
            format!("http://{sim_addr}")
        };
        let ws = format!("ws://{sim_addr}");
        let mut env: Vec<(String, String)> = defaults
            .iter()
            .filter(|(k, _)| k.starts_with("QT_"))
            .cloned()
            .collect();
        env.extend(
            [
                ("QT_REDIS_URL", url.as_str()),
                ("QT_HTTP_ADDR", addr.as_str()),
                ("QT_LOG_FORMAT", "json"),
                ("QT_LOG_LEVEL", if keep { "info" } else { "warn" }),
                ("QT_EXCHANGE", "paper"),
                ("QT_EXCHANGE_REST_URL", rest.as_str()),
                ("QT_EXCHANGE_WS_URL", ws.as_str()),
                ("QT_API_KEY", "paper-key"),
                ("QT_API_SECRET", "paper-secret"),
                ("QT_EXECUTION__SQLITE_PATH", db.to_str().unwrap()),
                ("QT_EXIT_BRAIN__SQLITE_PATH", db.to_str().unwrap()),
                // Many entries all run long: the momentum rule (the default model, none, trades
                // nothing), no cooldown, tight exits, no daily-loss pause and
                // the drawdown breaker at its loosest (the tight exits lose the default daily
                // limit within seconds, and a paused run measures refusals, not orders).
                ("QT_TRADING_BOT__MODEL", "momentum"),
                ("QT_TRADING_BOT__COOLDOWN_MINUTES", "0"),
                ("QT_EXECUTION__LIMITS__COOLDOWN_MINUTES", "0"),
                ("QT_EXECUTION__LIMITS__MAX_DAILY_LOSS", "1000000"),
                ("QT_EXECUTION__LIMITS__MAX_DRAWDOWN_PCT", "1"),
                ("QT_EXIT_BRAIN__EXITS__STOP_PCT", "0.3"),
                ("QT_EXIT_BRAIN__EXITS__LOW_VOL_TARGETS_PCT", "[0.3]"),
                ("QT_EXIT_BRAIN__EXITS__HIGH_VOL_TARGETS_PCT", "[0.3]"),
                ("QT_EXIT_BRAIN__EXITS__LEG_FRACTIONS", "[1]"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let env_ref: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let child = ChildService::spawn(
            bin_path(name),
            &[],
            &env_ref,
            dir.path().join(format!("{name}.log")),
        );
        services.push((name, addr, child));
    }
    for (name, addr, _) in &services {
        wait_for(60, &format!("{name} ready"), || {
            http_get(addr, "/health/ready")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        });
    }

    let started = Instant::now();
    for _ in 0..steps {
        let _ = http_post(&sim_addr, "/sim/step?candles=1");
        std::thread::sleep(Duration::from_millis(step_ms));
    }
    std::thread::sleep(Duration::from_secs(1));
    let elapsed = started.elapsed();

    let candles: HashMap<String, Instant> = candles
        .lock()
        .unwrap()
        .iter()
        .map(|(t, id)| (id.clone(), *t))
        .collect();
    let arrivals = arrivals.lock().unwrap().clone();
    // Entry order (client order id) -> the candle behind its intent -> (candle seen, symbol).
    let causes: HashMap<String, (Instant, String)> = stream_entries(&url, "qt:intents")
        .into_iter()
        .filter_map(|env| match &env.event {
            qt_events::Event::OpenPosition(o) => candles.get(&env.corr).map(|t0| {
                (
                    qt_events::ids::client_order_id(&o.intent_id, "entry"),
                    (*t0, o.symbol.clone()),
                )
            }),
            _ => None,
        })
        .collect();
    let mut latencies = Vec::new();
    let mut unmatched = 0;
    let mut samples = String::from("arrival_unix_ms\tsymbol\tlatency_ms\n");
    let (now, now_wall) = (Instant::now(), std::time::SystemTime::now());
    for (at, coid) in &arrivals {
        // A candle the reader noted only after the order arrived has no usable time.
        let Some((t0, sym)) = causes.get(coid).filter(|(t0, _)| t0 <= at) else {
            unmatched += 1;
            continue;
        };
        latencies.push(*at - *t0);
        let wall = (now_wall - (now - *at))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        samples.push_str(&format!(
            "{}\t{sym}\t{:.3}\n",
            wall.as_millis(),
            (*at - *t0).as_secs_f64() * 1e3
        ));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "paper run: {steps} candles x 6 symbols stepped every {step_ms} ms in {:.1} s; {} \
         candles on market, {} entry orders at the simulator ({unmatched} without a candle \
         seen before them)",
        elapsed.as_secs_f64(),
        candles.len(),
        arrivals.len()
    );
    println!(
        "tick-to-order (candle readable on qt:market -> entry order at the simulator): n={} \
         p50={:.3} ms p90={:.3} ms p99={:.3} ms max={:.3} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    // Entries the order-rate budget held back measure the budget, not the path: say how many.
    let deferred: f64 = services
        .iter()
        .find(|(name, _, _)| *name == "execution")
        .and_then(|(_, addr, _)| http_get(addr, "/metrics"))
        .and_then(|(_, body)| {
            body.lines()
                .find_map(|l| l.strip_prefix("execution_intents_deferred_total "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0);
    println!("intents deferred by the order-rate budget: {deferred}");
    let mut per: HashMap<&str, (u64, u64)> = HashMap::new();
    for (name, _, child) in &services {
        if let Some(pid) = child.pid() {
            per.insert(name, rss_kb(pid));
        }
    }
    for (name, _, _) in &services {
        let (rss, hwm) = per.get(name).copied().unwrap_or_default();
        println!(
            "memory {name}: VmRSS {:.1} MB, peak VmHWM {:.1} MB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    for (_, _, child) in &mut services {
        child.terminate(15);
    }
    if keep {
        std::fs::write(dir.path().join("samples.tsv"), samples).unwrap();
        sim.keep_folder();
        println!("kept: {}", dir.keep().display());
    }
}
