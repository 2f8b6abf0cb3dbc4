//! `portfolio-intelligence` syncs with the exchange, computes PnL and risk metrics, serves the
//! dashboard and delivers alerts.
//!
//! It consumes order, position, market and signal events and alerts, and publishes portfolio
//! snapshots. It never places an order and never changes a position.
//!
//! This build starts, connects, creates its consumer groups, serves `/health/*` and `/metrics`
//! and stops cleanly.

use std::process::ExitCode;

use qt_events::Stream;
use serde::{Deserialize, Serialize};

/// Settings of its own: the `[portfolio_intelligence]` table or `QT_PORTFOLIO_INTELLIGENCE__*` variables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {}

fn main() -> ExitCode {
    qt_runtime::run::<Settings, _, _>("portfolio-intelligence", |mut service| async move {
        service
            .groups(&[
                Stream::Orders,
                Stream::Positions,
                Stream::Market,
                Stream::Signals,
                Stream::Alerts,
                Stream::Control,
            ])
            .produces(&[Stream::Portfolio, Stream::Alerts, Stream::Control]);
        Ok(service)
    })
}
