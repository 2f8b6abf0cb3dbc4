//! `trading-bot` turns market data into features and model signals and sends entry intents.
//!
//! It publishes closed candles and mark prices to `market`, every model decision to `signals`
//! and open intents to `intents`; it reads model deployments from `models` and operator commands
//! from `control`. It never places an order: only execution does.
//!
//! This build starts, connects, creates its consumer groups, serves `/health/*` and `/metrics`
//! and stops cleanly; the market data, model and intent logic is built on top of this backbone.

use std::process::ExitCode;

use qt_events::Stream;
use serde::{Deserialize, Serialize};

/// Settings of its own: the `[trading_bot]` table or `QT_TRADING_BOT__*` variables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {}

fn main() -> ExitCode {
    qt_runtime::run::<Settings, _, _>("trading-bot", |mut service| async move {
        service
            .groups(&[Stream::Models, Stream::Control])
            .produces(&[Stream::Market, Stream::Signals, Stream::Intents]);
        Ok(service)
    })
}
