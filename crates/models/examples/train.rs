//! Stand-in for `qtctl train` until the lead wires it into qtctl:
//! `cargo run --release -p qt-models --example train -- --out model.json --report report.json`.

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    train: qt_models::cli::TrainArgs,
}

fn main() -> anyhow::Result<()> {
    qt_models::cli::run(&Cli::parse().train)
}
