//! `exit-brain` protects every open position with a stop on the exchange and manages its
//! volatility-adaptive take-profit ladder, break-even and trailing stops.
//!
//! It consumes market data, order and position facts, and sends protect/reduce/close intents to
//! execution. It never places an order itself.
//!
//! This build starts, connects, creates its consumer groups, serves `/health/*` and `/metrics`
//! and stops cleanly.

use std::process::ExitCode;

use qt_events::Stream;
use serde::{Deserialize, Serialize};

/// Settings of its own: the `[exit_brain]` table or `QT_EXIT_BRAIN__*` variables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {}

fn main() -> ExitCode {
    qt_runtime::run::<Settings, _, _>("exit-brain", |mut service| async move {
        service
            .groups(&[
                Stream::Market,
                Stream::Orders,
                Stream::Positions,
                Stream::Control,
            ])
            .produces(&[Stream::Intents, Stream::Alerts]);
        Ok(service)
    })
}
