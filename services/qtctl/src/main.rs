//! `qtctl`, the operator CLI of Quantum Trader.
//!
//! Stream inspection (`streams`, `tail`) and operations (`kill-switch`, `resume`, `close-all`,
//! `retrain`, `dlq`) go through `qt-bus`, the only crate that touches Redis; the trading-brain commands
//! (`features`, `train`, `backtest`, `goal`) run the same pure libraries as the services;
//! `context fetch` downloads market-context history into files. It never places an order for
//! the system: operations are commands on the `control` stream that the services carry out.
//! `models list|show` read clm's registry index; `models rollback` publishes on `models`.
//! `doctor` checks an exchange account end to end (clock, keys, modes, filters, one tiny order
//! and its stop, then everything cancelled and closed); see [`doctor`].
//! Exit codes: 0 success, 1 failure (Redis unreachable, bad stream name, …), 2 bad usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod context;
mod doctor;
mod models;
mod ops;
mod portfolio;
mod streams;

/// Operate a Quantum Trader deployment.
#[derive(Debug, Parser)]
#[command(name = "qtctl", version, about)]
struct Cli {
    /// Redis URL of the deployment.
    #[arg(
        long,
        env = "QT_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    redis_url: String,
    /// Redis Sentinel nodes, `host:port` separated by commas: qtctl then asks them for the
    /// master named by --redis-master-name, and --redis-url gives only the credentials, the
    /// database and TLS (empty: --redis-url is the server).
    #[arg(
        long,
        env = "QT_REDIS_SENTINELS",
        default_value = "",
        value_parser = parse_nodes,
        global = true
    )]
    redis_sentinels: Nodes,
    /// The name the Sentinels monitor the master under.
    #[arg(
        long,
        env = "QT_REDIS_MASTER_NAME",
        default_value = "qt",
        global = true
    )]
    redis_master_name: String,
    /// Redis Cluster seed nodes, `host:port` separated by commas: qtctl then follows the
    /// cluster's slot map, --prefix must carry a hash tag (`qt:{main}:`), and --redis-url gives
    /// only the credentials and TLS (empty: not a cluster).
    #[arg(
        long,
        env = "QT_REDIS_CLUSTER",
        default_value = "",
        value_parser = parse_nodes,
        global = true,
        conflicts_with = "redis_sentinels"
    )]
    redis_cluster: Nodes,
    /// Stream key prefix.
    #[arg(long, env = "QT_STREAM_PREFIX", default_value = "qt:", global = true)]
    prefix: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every stream with its length, consumer groups, pending entries and lag.
    Streams,
    /// Every service's readiness, the streams' length, pending entries and lag, dead letters.
    Status(portfolio::StatusArgs),
    /// Open positions with their mark and PnL (from portfolio-intelligence).
    Positions(portfolio::ApiArgs),
    /// The latest closed trades (from portfolio-intelligence).
    Trades(portfolio::TradesArgs),
    /// Equity, PnL today and in total, exposure and trade statistics (from portfolio-intelligence).
    Pnl(portfolio::ApiArgs),
    /// Prints a stream's entries decoded to JSON, one per line.
    Tail(streams::TailArgs),
    /// Turns the kill switch on (no new entries; exits still allowed) or off.
    KillSwitch(ops::KillSwitchArgs),
    /// Resumes entries after the drawdown breaker stopped them (the peak starts again from the
    /// current equity).
    Resume(ops::ResumeArgs),
    /// Closes every position at market and cancels entry orders.
    CloseAll(ops::ReasonArgs),
    /// Asks clm to retrain now.
    Retrain(ops::ReasonArgs),
    /// Dead letters: list, replay onto their stream, or purge.
    #[command(subcommand)]
    Dlq(ops::DlqCommand),
    /// Writes every candle of a kline file with its features to CSV.
    Features(qt_features::cli::FeaturesArgs),
    /// Trains a model on kline files; writes the artifact and a JSON report.
    Train(qt_models::cli::TrainArgs),
    /// Backtests a strategy over kline files; writes trades, equity curve, metrics and a chart.
    Backtest(qt_backtest::cli::BacktestArgs),
    /// Walk-forward: trains fold by fold and trades each test window, against buy-and-hold,
    /// momentum and random entries, with every cost and the deflated Sharpe ratio.
    Walkforward(qt_backtest::cli::WalkForwardArgs),
    /// Says whether a profit target is realistic from a backtest's figures.
    Goal(qt_backtest::cli::GoalArgs),
    /// Market context history: `fetch --from --to --out DIR` (funding, open interest, long/short
    /// and taker ratios, fear & greed) into CSV files.
    #[command(subcommand)]
    Context(context::ContextCommand),
    /// clm's model registry: list, show VERSION, rollback VERSION.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Checks an exchange account end to end: clock offset, keys, position and multi-assets
    /// modes against the configuration, the symbol's filters, one tiny order and its stop, then
    /// everything cancelled and closed; prints a pass/fail table (exit 1 on a failure).
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Doctor(args) = &cli.command {
        return doctor::main(args, cli.json);
    }
    let result = match cli.command {
        // The brain commands are CPU work on files: no Redis, no async runtime.
        Command::Features(a) => qt_features::cli::run(&a),
        Command::Train(a) => qt_models::cli::run(&a),
        Command::Backtest(a) => qt_backtest::cli::run_backtest(a),
        Command::Walkforward(a) => qt_backtest::cli::run_walkforward(a),
        Command::Goal(a) => qt_backtest::cli::run_goal(a),
        Command::Context(c) => context::run(c, cli.json),
        Command::Models(m) if !matches!(m, models::ModelsCommand::Rollback(_)) => {
            models::offline(&m, cli.json)
        }
        command => {
            let redis = streams::RedisTarget {
                url: cli.redis_url,
                sentinels: cli.redis_sentinels.0,
                master_name: cli.redis_master_name,
                cluster: cli.redis_cluster.0,
            };
            online(&redis, &cli.prefix, cli.json, command)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qtctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The nodes of `--redis-sentinels` or `--redis-cluster`.
#[derive(Debug, Clone)]
struct Nodes(Vec<String>);

/// `host:port` nodes separated by commas, blanks ignored; anything else is refused by clap
/// (exit 2, naming the option).
fn parse_nodes(s: &str) -> Result<Nodes, String> {
    let mut nodes = Vec::new();
    for node in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let ok = node
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(format!(
                "expected host:port nodes separated by commas, got {node:?}"
            ));
        }
        nodes.push(node.to_string());
    }
    Ok(Nodes(nodes))
}

fn online(
    redis: &streams::RedisTarget,
    prefix: &str,
    json: bool,
    command: Command,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let ctx = streams::Ctx::new(redis, prefix, json).await?;
        match command {
            Command::Streams => ctx.streams().await,
            Command::Status(args) => portfolio::status(&ctx, args).await,
            Command::Positions(args) => portfolio::positions(&ctx, args).await,
            Command::Trades(args) => portfolio::trades(&ctx, args).await,
            Command::Pnl(args) => portfolio::pnl(&ctx, args).await,
            Command::Tail(args) => ctx.tail(args).await,
            Command::KillSwitch(args) => ops::kill_switch(&ctx, args).await,
            Command::Resume(args) => ops::resume(&ctx, args).await,
            Command::CloseAll(args) => ops::close_all(&ctx, args).await,
            Command::Retrain(args) => ops::retrain(&ctx, args).await,
            Command::Dlq(cmd) => ops::dlq(&ctx, cmd).await,
            Command::Models(models::ModelsCommand::Rollback(args)) => {
                models::rollback(&ctx, args).await
            }
            Command::Models(_) | Command::Doctor(_) => Ok(()),
            Command::Features(_)
            | Command::Train(_)
            | Command::Backtest(_)
            | Command::Walkforward(_)
            | Command::Goal(_)
            | Command::Context(_) => Ok(()),
        }
    })
}
