//! Orders per second the simulator sustains on loopback, with N concurrent signed clients, and
//! the p50 / p99 latency of `POST /fapi/v1/order` (market orders, RESULT responses, alternating
//! BUY/SELL so the position stays near flat). The server runs in-process on the same machine as
//! the clients, so both share the CPU: the figures are a floor for a dedicated host.
//!
//! `cargo bench -p sim-exchange --bench orders` (env: BENCH_SECS=5, BENCH_CLIENTS=1,8,32,
//! BENCH_STATE=1 to also measure with snapshots to a temp folder).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use sim_exchange::{ApiKey, Limits, MarketSource, SimConfig};
use tokio_util::sync::CancellationToken;

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";

struct Outcome {
    orders: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

async fn run_case(clients: usize, secs: u64, state_dir: Option<std::path::PathBuf>) -> Outcome {
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/klines/5m/BTCUSDT-5m.csv.gz");
    let cfg = SimConfig {
        keys: vec![ApiKey {
            key: KEY.into(),
            secret: SECRET.into(),
        }],
        source: MarketSource::Files(data),
        symbols: vec!["BTCUSDT".into()],
        speed: 0.0,
        limits: Limits::unlimited(),
        initial_balance: Decimal::new(1_000_000_000, 0),
        state_dir,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = tokio::spawn(sim_exchange::serve(cfg, listener, stop.clone()));
    let base = format!("http://{addr}");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
            let (mut lat, mut errors, mut i) = (Vec::new(), 0usize, 0u64);
            while Instant::now() < deadline {
                i += 1;
                let side = if i % 2 == 0 { "SELL" } else { "BUY" };
                let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
                let q = format!("symbol=BTCUSDT&side={side}&type=MARKET&quantity=0.004&newClientOrderId=b{c}-{i}&newOrderRespType=RESULT&timestamp={ts}");
                let sig = sim_exchange::sign::sign(SECRET, &q);
                let t0 = Instant::now();
                let r = http.post(format!("{base}/fapi/v1/order?{q}&signature={sig}")).header("X-MBX-APIKEY", KEY).send().await;
                let ok = match r {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                lat.push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies_us.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    server.await.unwrap().unwrap();
    latencies_us.sort_unstable();
    Outcome {
        orders: latencies_us.len(),
        errors,
        elapsed,
        latencies_us,
    }
}

fn pct(v: &[u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    #[allow(clippy::cast_precision_loss)]
    let ms = v[i.min(v.len() - 1)] as f64 / 1000.0;
    ms
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let clients: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,8,32".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let with_state = std::env::var("BENCH_STATE").is_ok_and(|v| v == "1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "sim-exchange order throughput, {secs} s per case, server and clients in one process on loopback"
    );
    println!(
        "{:>8} {:>9} {:>10} {:>8} {:>9} {:>9} {:>7}",
        "clients", "state", "orders", "orders/s", "p50 ms", "p99 ms", "errors"
    );
    for &n in &clients {
        let mut modes = vec![false];
        if with_state {
            modes.push(true);
        }
        for snap in modes {
            let dir = snap.then(|| tempfile::tempdir().unwrap());
            let o = rt.block_on(run_case(
                n,
                secs,
                dir.as_ref().map(|d| d.path().to_path_buf()),
            ));
            #[allow(clippy::cast_precision_loss)]
            let rate = o.orders as f64 / o.elapsed.as_secs_f64();
            println!(
                "{:>8} {:>9} {:>10} {:>8.0} {:>9.2} {:>9.2} {:>7}",
                n,
                if snap { "snapshot" } else { "memory" },
                o.orders,
                rate,
                pct(&o.latencies_us, 0.50),
                pct(&o.latencies_us, 0.99),
                o.errors
            );
        }
    }
}
