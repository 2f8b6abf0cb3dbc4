//! Runs `qtctl backtest` / `qtctl goal` / `qtctl walkforward` without qtctl (a release build
//! of this example needs far fewer crates than qtctl's), e.g.
//! `cargo run --release -p qt-backtest --example backtest -- backtest data/klines/5m --out /tmp/bt`
//! and `cargo run --release -p qt-backtest --example backtest -- goal --target 1500 --report /tmp/bt`.
//! It must never hold logic of its own: it parses arguments and calls the library.

use clap::{Parser, Subcommand};
use qt_backtest::cli::{
    BacktestArgs, GoalArgs, WalkForwardArgs, run_backtest, run_goal, run_walkforward,
};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Backtest(Box<BacktestArgs>),
    Goal(GoalArgs),
    Walkforward(Box<WalkForwardArgs>),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Backtest(a) => run_backtest(*a),
        Command::Goal(a) => run_goal(a),
        Command::Walkforward(a) => run_walkforward(*a),
    }
}
