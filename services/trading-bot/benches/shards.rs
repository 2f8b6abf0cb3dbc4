//! Many symbols, replayed fast, through trading-bot shards, execution and exit-brain as real
//! processes: how many symbols one trading-bot core carries, and the lag and CPU of each
//! service. Not part of the test suite; it prints figures (docs/PERFORMANCE.md records them).
//!
//! ```text
//! cargo build --release -p trading-bot -p execution -p exit-brain -p sim-exchange
//! cargo bench -p trading-bot --bench shards
//! ```
//!
//! Settings (environment): `QT_BENCH_SYMBOLS` (300: BTCUSDT, ETHUSDT and synthetic
//! `S001USDT`…), `QT_BENCH_SHARDS` (1), `QT_BENCH_STEPS` (60 candle closes),
//! `QT_BENCH_PERIOD_MS` (1000: one close of every symbol each second, i.e. a 5m candle
//! replayed at 300×). The simulator (random walk, no rate limits) is stepped by the bench, so
//! each close's time is known: a close's lag is from the step request to the last signal of
//! that close readable in Redis. trading-bot runs the momentum model, so intents reach
//! execution (its risk guard refuses most: one position per symbol, eight at most).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qt_bus::{Bus, BusConfig};
use qt_events::{Envelope, Event, Stream, StreamNames};
use qt_testkit::{ChildService, Fsync, RedisServer, SimExchange, bin_path, free_port, http_get};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User and system CPU time of a process, in seconds (`/proc/<pid>/stat`, 100 ticks a second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the state (field 3).
    (ticks(11) + ticks(12)) / 100.0
}

/// Ready, and for trading-bot warmed up with its market streams connected.
fn ready(name: &str, addr: &str) -> bool {
    let ok = |path| http_get(addr, path).is_some_and(|(status, _)| status == 200);
    ok("/health/ready") && (!name.starts_with("trading-bot") || ok("/health/market"))
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    // The other services' binaries are not built by `cargo bench -p trading-bot`.
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let missing: Vec<&str> = ["trading-bot", "execution", "exit-brain", "sim-exchange"]
        .into_iter()
        .filter(|b| !target.join(b).is_file())
        .collect();
    if !missing.is_empty() {
        println!(
            "skipped: {missing:?} not built in {} (cargo build --release -p trading-bot -p \
             execution -p exit-brain -p sim-exchange)",
            target.display()
        );
        return;
    }
    let n_symbols = usize::try_from(env_or("QT_BENCH_SYMBOLS", 300)).unwrap();
    let shards = u32::try_from(env_or("QT_BENCH_SHARDS", 1)).unwrap();
    let steps = env_or("QT_BENCH_STEPS", 60);
    let period = Duration::from_millis(env_or("QT_BENCH_PERIOD_MS", 1000));
    let mut symbols: Vec<String> = vec!["BTCUSDT".into(), "ETHUSDT".into()];
    symbols.extend((1..=n_symbols.saturating_sub(2)).map(|i| format!("S{i:03}USDT")));
    println!(
        "{} symbols, {shards} trading-bot shard(s), {steps} closes every {} ms",
        symbols.len(),
        period.as_millis()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let redis = RedisServer::start_with(Fsync::EverySec, None);
    let sym_refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let sim = SimExchange::builder()
        .key("paper-key", "paper-secret")
        .symbols(&sym_refs)
        .warmup_candles(400)
        .args(&["--no-rate-limits"])
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("qt.toml");
    std::fs::write(
        &config,
        format!(
            "[trading_bot]\nsymbols = [{}]\nmodel = \"momentum\"\n",
            symbols
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    let url = redis.url();
    let (rest, ws) = (sim.rest_url(), sim.ws_url());
    let db = dir.path().join("state.db");
    let spawn = |name: &str, extra: &[(&str, &str)]| {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut env = vec![
            ("QT_CONFIG", config.to_str().unwrap()),
            ("QT_REDIS_URL", url.as_str()),
            ("QT_HTTP_ADDR", addr.as_str()),
            ("QT_LOG_FORMAT", "json"),
            ("QT_LOG_LEVEL", "warn"),
            ("QT_EXCHANGE", "paper"),
            ("QT_EXCHANGE_REST_URL", rest.as_str()),
            ("QT_EXCHANGE_WS_URL", ws.as_str()),
            ("QT_API_KEY", "paper-key"),
            ("QT_API_SECRET", "paper-secret"),
            ("QT_EXECUTION__SQLITE_PATH", db.to_str().unwrap()),
            ("QT_EXIT_BRAIN__SQLITE_PATH", db.to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        let child = ChildService::spawn(
            bin_path(name),
            &[],
            &env,
            dir.path().join(format!("{name}-{addr}.log")),
        );
        (addr, child)
    };
    let mut services: Vec<(String, String, ChildService)> = Vec::new();
    for i in 0..shards {
        let shard = format!("{i}/{shards}");
        let instance = format!("s{i}");
        let (addr, child) = spawn(
            "trading-bot",
            &[
                ("QT_SHARD", shard.as_str()),
                ("QT_INSTANCE", instance.as_str()),
            ],
        );
        services.push((format!("trading-bot {shard}"), addr, child));
    }
    for name in ["execution", "exit-brain"] {
        let (addr, child) = spawn(name, &[]);
        services.push((name.to_owned(), addr, child));
    }
    let started = Instant::now();
    for (name, addr, child) in &services {
        while !ready(name, addr) {
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{name} never ready: {}",
                child.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!(
        "all ready (warm-up of {} symbols over REST) in {:.1} s",
        symbols.len(),
        started.elapsed().as_secs_f64()
    );

    let _runtime = rt.enter();
    let bus = Bus::connect(
        BusConfig::new(url.clone(), StreamNames::default(), "bench"),
        qt_events::clock::system(),
    )
    .unwrap();
    let signals_key = bus.key(Stream::Signals);
    let before_signals = rt
        .block_on(bus.last(&signals_key, 1))
        .unwrap()
        .last()
        .map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
    let cpu0: Vec<f64> = services
        .iter()
        .map(|(_, _, c)| cpu_seconds(c.pid().unwrap()))
        .collect();
    let t0 = Instant::now();
    // Each close: when it was asked for, and the lag of each group after it.
    let mut step_at: Vec<i64> = Vec::new();
    let mut max_lag: BTreeMap<String, u64> = BTreeMap::new();
    for k in 0..steps {
        let due = t0 + period * u32::try_from(k).unwrap();
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        step_at.push(now_ms());
        sim.step(1);
        for stream in [Stream::Market, Stream::Intents, Stream::Positions] {
            if let Ok(st) = rt.block_on(bus.stats(stream)) {
                for g in st.groups {
                    let m = max_lag
                        .entry(format!("{}/{}", stream.suffix(), g.name))
                        .or_default();
                    *m = (*m).max(g.lag.unwrap_or(0) + g.pending);
                }
            }
        }
    }
    // Let the last close be handled.
    let want = symbols.len() * usize::try_from(steps).unwrap();
    // Until every signal is there, or none came for 10 s.
    let (mut seen, mut last_new, mut done_at) = (0, Instant::now(), t0.elapsed());
    let signals = loop {
        let es = rt
            .block_on(bus.range(&signals_key, &format!("({before_signals}"), "+", 1_000_000))
            .unwrap();
        if es.len() > seen {
            (seen, last_new, done_at) = (es.len(), Instant::now(), t0.elapsed());
        }
        if es.len() >= want || last_new.elapsed() > Duration::from_secs(10) {
            break es;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let window = done_at.as_secs_f64();
    let cpu: Vec<f64> = services
        .iter()
        .zip(&cpu0)
        .map(|((_, _, c), c0)| cpu_seconds(c.pid().unwrap()) - c0)
        .collect();

    // Group the signals by candle (all symbols close together), in close order.
    let mut by_candle: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut per_symbol: BTreeMap<String, usize> = BTreeMap::new();
    for e in &signals {
        let Ok(env) = Envelope::from_fields(e.field_pairs()) else {
            continue;
        };
        if let Event::SignalGenerated(s) = env.event {
            *per_symbol.entry(s.symbol.clone()).or_default() += 1;
            let at = qt_bus::parse_entry_id(&e.id).map_or(0, |(ms, _)| i64::try_from(ms).unwrap());
            by_candle.entry(s.candle_open_time).or_default().push(at);
        }
    }
    let mut burst: Vec<i64> = Vec::new();
    let mut each: Vec<i64> = Vec::new();
    for ((_, ats), asked) in by_candle.iter().zip(&step_at) {
        burst.push(ats.iter().max().unwrap() - asked);
        each.extend(ats.iter().map(|a| a - asked));
    }
    burst.sort_unstable();
    each.sort_unstable();
    println!(
        "signals: {} of {want} ({} closes seen) in {window:.1} s",
        signals.len(),
        by_candle.len()
    );
    let short: Vec<String> = symbols
        .iter()
        .filter(|s| per_symbol.get(*s).copied().unwrap_or(0) < usize::try_from(steps).unwrap())
        .cloned()
        .collect();
    if !short.is_empty() {
        println!("symbols with fewer signals than closes: {short:?}");
    }
    println!(
        "lag from close to signal, each symbol: p50 {} ms, p99 {} ms, max {} ms",
        pct(&each, 0.5),
        pct(&each, 0.99),
        each.last().copied().unwrap_or(0)
    );
    println!(
        "lag from close to the last symbol's signal: p50 {} ms, p99 {} ms, max {} ms",
        pct(&burst, 0.5),
        pct(&burst, 0.99),
        burst.last().copied().unwrap_or(0)
    );
    println!("{:<24} {:>10} {:>12}", "service", "cpu s", "% of a core");
    for ((name, _, _), c) in services.iter().zip(&cpu) {
        println!("{name:<24} {c:>10.2} {:>11.1}%", c / window * 100.0);
    }
    let bot_cpu: f64 = cpu.iter().take(usize::try_from(shards).unwrap()).sum();
    #[allow(clippy::cast_precision_loss)]
    let per_candle = bot_cpu / signals.len().max(1) as f64;
    println!(
        "trading-bot: {:.0} µs of CPU per candle; one core: {:.0} symbols at 1m, {:.0} at 5m \
         (CPU only, at 100% of the core)",
        per_candle * 1e6,
        60.0 / per_candle,
        300.0 / per_candle
    );
    println!("largest backlog seen per group (lag + pending, sampled at each close):");
    for (g, l) in &max_lag {
        println!("  {g:<40} {l}");
    }
    for (_, _, mut c) in services {
        c.terminate(10);
    }
}
