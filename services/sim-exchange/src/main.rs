//! The `sim-exchange` binary: parses flags, environment and an optional TOML config file, starts
//! logging, and serves the simulator until SIGINT/SIGTERM. It must never print an API secret.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use figment::providers::Format;
use sim_exchange::{Faults, MarketSource, SimConfig, parse_api_keys};

#[derive(Debug, Parser)]
#[command(
    name = "sim-exchange",
    about = "Binance USDⓈ-M futures compatible simulated exchange"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Kline file or folder to replay; a seeded random walk when absent.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Symbols to serve, comma separated (default: all in --data, or BTCUSDT,ETHUSDT).
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// Replay speed (×N real time); 0 = only stepped through POST /sim/step.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Folder of Binance `SYMBOL-fundingRate.csv` files. Default: a `funding` folder beside
    /// the kline files of --data (in their folder, or beside it), when there is one.
    #[arg(long)]
    funding: Option<PathBuf>,
    /// Funding rate per interval where no history covers the time (default 0.0001).
    #[arg(long)]
    funding_rate: Option<rust_decimal::Decimal>,
    /// Hours between funding times where no history covers the time (default 8).
    #[arg(long)]
    funding_interval_hours: Option<u32>,
    /// Folder for the state snapshot (survives restarts).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Seed of the random walk and of the fault injection.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// TOML config file: keys = ["key:secret"], initial_balance, warmup_candles, taker_fee,
    /// funding_rate, funding_interval_hours, ...
    #[arg(long)]
    config: Option<PathBuf>,
    /// API keys as key:secret[,key:secret…].
    #[arg(long, env = "SIM_API_KEYS", hide_env_values = true)]
    api_keys: Option<String>,
    /// Candles already closed at start (klines history).
    #[arg(long)]
    warmup_candles: Option<usize>,
    /// Fault: added latency per request, ms.
    #[arg(long, env = "SIM_FAULT_LATENCY_MS", default_value_t = 0)]
    fault_latency_ms: u64,
    /// Fault: share of requests answered 503.
    #[arg(long, env = "SIM_FAULT_ERROR_RATE", default_value_t = 0.0)]
    fault_error_rate: f64,
    /// Fault: share of order placements executed with the response lost.
    #[arg(long, env = "SIM_FAULT_LOSE_RATE", default_value_t = 0.0)]
    fault_lose_rate: f64,
    /// Fault: how long a lost response is held, ms.
    #[arg(long, env = "SIM_FAULT_LOST_MS", default_value_t = 10_000)]
    fault_lost_ms: u64,
    /// Disable the rate limits (benchmarks).
    #[arg(long)]
    no_rate_limits: bool,
    /// Disable the /sim control API.
    #[arg(long)]
    no_control: bool,
}

#[derive(Debug, Default, serde::Deserialize)]
struct FileConfig {
    #[serde(default)]
    keys: Vec<String>,
    initial_balance: Option<rust_decimal::Decimal>,
    warmup_candles: Option<usize>,
    default_leverage: Option<u32>,
    maker_fee: Option<rust_decimal::Decimal>,
    taker_fee: Option<rust_decimal::Decimal>,
    slippage: Option<rust_decimal::Decimal>,
    max_volume_share: Option<rust_decimal::Decimal>,
    funding_rate: Option<rust_decimal::Decimal>,
    funding_interval_hours: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let file: FileConfig = match &args.config {
        Some(path) => figment::Figment::new()
            .merge(figment::providers::Toml::file(path))
            .extract()
            .with_context(|| format!("reading config file {}", path.display()))?,
        None => FileConfig::default(),
    };
    let mut keys = Vec::new();
    for pair in &file.keys {
        keys.extend(
            parse_api_keys(pair)
                .map_err(anyhow::Error::msg)
                .context("config keys")?,
        );
    }
    if let Some(env) = &args.api_keys {
        keys.extend(
            parse_api_keys(env)
                .map_err(anyhow::Error::msg)
                .context("SIM_API_KEYS")?,
        );
    }
    if keys.is_empty() {
        tracing::warn!(
            "no API keys configured (SIM_API_KEYS or config keys): signed endpoints will refuse every request"
        );
    }
    let mut cfg = SimConfig {
        keys,
        source: args
            .data
            .clone()
            .map_or(MarketSource::Synthetic, MarketSource::Files),
        symbols: args
            .symbols
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect(),
        speed: args.speed.max(0.0),
        seed: args.seed,
        state_dir: args.state_dir.clone(),
        control_api: !args.no_control,
        faults: Faults {
            latency_ms: args.fault_latency_ms,
            error_rate: args.fault_error_rate,
            lose_response_rate: args.fault_lose_rate,
            lost_response_ms: args.fault_lost_ms,
            ..Faults::default()
        },
        ..SimConfig::default()
    };
    if let Some(w) = args.warmup_candles.or(file.warmup_candles) {
        cfg.warmup_candles = w;
    }
    if let Some(b) = file.initial_balance {
        cfg.initial_balance = b;
    }
    if let Some(l) = file.default_leverage {
        cfg.default_leverage = l;
    }
    if let Some(x) = file.maker_fee {
        cfg.fill_model.maker_fee = x;
    }
    if let Some(x) = file.taker_fee {
        cfg.fill_model.taker_fee = x;
    }
    if let Some(x) = file.slippage {
        cfg.fill_model.slippage = x;
    }
    if let Some(x) = file.max_volume_share {
        cfg.fill_model.max_volume_share = x;
    }
    cfg.funding.dir = args.funding.clone().or_else(|| {
        args.data
            .as_deref()
            .and_then(sim_exchange::funding_dir_beside)
    });
    if let Some(r) = args.funding_rate.or(file.funding_rate) {
        cfg.funding.default_rate = r;
    }
    if let Some(h) = args.funding_interval_hours.or(file.funding_interval_hours) {
        cfg.funding.interval_hours = h.max(1);
    }
    if args.no_rate_limits {
        cfg.limits = sim_exchange::Limits::unlimited();
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // Tests and scripts read this line to find the port when --listen ends in :0.
    println!("sim-exchange listening on {addr}");
    tracing::info!(%addr, config = ?cfg, "sim-exchange starting");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        stop.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        stop.cancel();
    });
    sim_exchange::serve(cfg, listener, shutdown)
        .await
        .context("serving")?;
    tracing::info!("sim-exchange stopped, state saved");
    Ok(())
}
