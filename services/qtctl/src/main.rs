//! `qtctl`, the operator CLI of Quantum Trader.
//!
//! It inspects the streams (`streams`, `tail`) through `qt-bus`, the only crate that touches
//! Redis. It never changes a stream except through the commands made for it.
//! Exit codes: 0 success, 1 failure (Redis unreachable, bad stream name), 2 bad usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Prints a stream's entries decoded to JSON, one per line.
    Tail(streams::TailArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qtctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let ctx = streams::Ctx::new(&cli.redis_url, &cli.prefix, cli.json)?;
        match cli.command {
            Command::Streams => ctx.streams().await,
            Command::Tail(args) => ctx.tail(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qtctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
