//! `clm` (continuous learning) retrains the models on fresh candles and trade outcomes and
//! deploys a new one only when it beats the model trading now.
//!
//! It consumes market data, signals, order and position facts and operator commands, and
//! publishes model deployments. It never trades.
//!
//! This build starts, connects, creates its consumer groups, serves `/health/*` and `/metrics`
//! and stops cleanly.

use std::process::ExitCode;

use qt_events::Stream;
use serde::{Deserialize, Serialize};

/// Settings of its own: the `[clm]` table or `QT_CLM__*` variables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {}

fn main() -> ExitCode {
    qt_runtime::run::<Settings, _, _>("clm", |mut service| async move {
        service
            .groups(&[
                Stream::Market,
                Stream::Signals,
                Stream::Orders,
                Stream::Positions,
                Stream::Control,
            ])
            .produces(&[Stream::Models, Stream::Alerts]);
        Ok(service)
    })
}
