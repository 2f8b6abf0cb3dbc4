//! `qtctl context fetch`: market-context history into files for training and backtests
//! (`qt_context::history`'s format, documented in docs/arch/context.md).
//!
//! Binance's positioning history comes through the exchange client of `QT_EXCHANGE` /
//! `QT_EXCHANGE_REST_URL` (or `--rest-url`), paced within Binance's published limits; the fear &
//! greed history from `--fear-greed-url` when given (nothing outside the machine is asked
//! otherwise).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use qt_context::fetch::{FetchPlan, fetch_binance, fetch_fear_greed};
use qt_context::num::date_ms;
use qt_context::sources::fear_greed::FearGreed;
use qt_events::clock::system;
use qt_exchange::market_data::DataPeriod;
use qt_exchange::{BinanceClient, ExchangeConfig};

#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Downloads funding, open interest, long/short and taker history (Binance) and the fear &
    /// greed history into CSV files, one per series.
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// First day (UTC), `YYYY-MM-DD`.
    #[arg(long)]
    pub from: String,
    /// Last day (UTC, included), `YYYY-MM-DD`.
    #[arg(long)]
    pub to: String,
    /// Folder the files go to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Futures symbols.
    #[arg(long, value_delimiter = ',', default_value = "BTCUSDT,ETHUSDT")]
    pub symbols: Vec<String>,
    /// Period of Binance's statistics (5m 15m 30m 1h 2h 4h 6h 12h 1d).
    #[arg(long, default_value = "1h")]
    pub period: String,
    /// Binance REST base URL; default from `QT_EXCHANGE` / `QT_EXCHANGE_REST_URL`.
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Skip Binance's data.
    #[arg(long)]
    pub no_binance: bool,
    /// alternative.me's base URL (e.g. `https://api.alternative.me`): fetch the fear & greed
    /// history too.
    #[arg(long)]
    pub fear_greed_url: Option<String>,
}

pub fn run(cmd: ContextCommand, json: bool) -> anyhow::Result<()> {
    let ContextCommand::Fetch(a) = cmd;
    let from_ms =
        date_ms(&a.from).with_context(|| format!("--from {:?} is not YYYY-MM-DD", a.from))?;
    let to_ms = date_ms(&a.to).with_context(|| format!("--to {:?} is not YYYY-MM-DD", a.to))?
        + 86_400_000
        - 1;
    anyhow::ensure!(from_ms <= to_ms, "--from is after --to");
    let period = DataPeriod::parse(&a.period).with_context(|| {
        format!(
            "--period {:?}: one of 5m 15m 30m 1h 2h 4h 6h 12h 1d",
            a.period
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let written = rt.block_on(async {
        let clock = system();
        let mut written = Vec::new();
        if !a.no_binance {
            let mut cfg = ExchangeConfig::from_env().context("exchange settings")?;
            if let Some(u) = &a.rest_url {
                cfg.rest_url = u.clone();
            }
            let client = BinanceClient::new(cfg, clock.clone()).context("exchange client")?;
            let plan = FetchPlan {
                from_ms,
                to_ms,
                symbols: a.symbols.clone(),
                period,
                out: a.out.clone(),
            };
            written.extend(fetch_binance(&client, &plan, &clock).await?);
        }
        if let Some(url) = &a.fear_greed_url {
            let fg = FearGreed::new(url, Duration::from_secs(30))?;
            written.extend(fetch_fear_greed(&fg, from_ms, to_ms, &a.out).await?);
        }
        anyhow::Ok(written)
    })?;
    for (path, rows) in &written {
        if json {
            println!("{}", serde_json::json!({"file": path, "rows": rows}));
        } else {
            println!("{rows:>8}  {}", path.display());
        }
    }
    Ok(())
}
