//! The `sim-exchange` binary: parses flags, loads its settings through qt-runtime's loader (as
//! every binary does) plus an optional `--config` TOML file, starts qt-runtime's telemetry, and
//! serves the simulator until SIGINT/SIGTERM. A bad setting exits with code 2 naming it. It must
//! never print an API secret.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sim_exchange::{Faults, MarketSource, Settings, SimConfig, parse_api_keys};

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

fn main() -> ExitCode {
    // A bad flag or flag value: clap prints it and exits with code 2.
    let args = Args::parse();
    // The layered config every binary reads (`QT_CONFIG`, `QT_*`): logging, and the
    // `[sim_exchange]` settings; then the `--config` file. A bad setting exits with code 2.
    let config = match qt_runtime::load_or_exit::<Settings>("sim-exchange") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let settings = match &args.config {
        None => config.service.clone(),
        Some(path) => match qt_runtime::load_toml_file::<Settings>(path) {
            Ok(file) => config.service.clone().then(file),
            Err(e) => {
                eprintln!("sim-exchange: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let cfg = match sim_config(&args, &settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sim-exchange: {e}");
            return ExitCode::from(2);
        }
    };
    qt_runtime::run_main("sim-exchange", &config.common, serve(args.listen, cfg))
}

/// The simulator's config: its defaults, then `settings`, then the flags.
fn sim_config(args: &Args, settings: &Settings) -> Result<SimConfig, String> {
    let mut cfg = SimConfig {
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
    settings.apply(&mut cfg)?;
    if let Some(env) = &args.api_keys {
        cfg.keys
            .extend(parse_api_keys(env).map_err(|e| format!("bad setting SIM_API_KEYS: {e}"))?);
    }
    if let Some(w) = args.warmup_candles {
        cfg.warmup_candles = w;
    }
    cfg.funding.dir = args.funding.clone().or_else(|| {
        args.data
            .as_deref()
            .and_then(sim_exchange::funding_dir_beside)
    });
    if let Some(r) = args.funding_rate {
        cfg.funding.default_rate = r;
    }
    if let Some(h) = args.funding_interval_hours {
        cfg.funding.interval_hours = h.max(1);
    }
    if args.no_rate_limits {
        cfg.limits = sim_exchange::Limits::unlimited();
    }
    Ok(cfg)
}

/// Binds `listen` and serves the simulator until SIGINT/SIGTERM (the state is saved then).
async fn serve(listen: String, cfg: SimConfig) -> anyhow::Result<()> {
    if cfg.keys.is_empty() {
        tracing::warn!(
            "no API keys configured (SIM_API_KEYS or config keys): signed endpoints will refuse every request"
        );
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
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
