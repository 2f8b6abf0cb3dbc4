//! `execution` is the only service that places orders on the exchange.
//!
//! It consumes intents, checks them against the risk guard, places them with the order protocol
//! (client order id from the intent id, SENDING recorded before the request, unknown outcomes
//! resolved by query), and publishes order and position facts. It never decides what to trade.
//!
//! This build starts, connects, creates its consumer groups (so no intent published before its
//! handlers run is missed), serves `/health/*` and `/metrics` and stops cleanly.

use std::process::ExitCode;

use qt_events::Stream;
use serde::{Deserialize, Serialize};

/// Settings of its own: the `[execution]` table or `QT_EXECUTION__*` variables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {}

fn main() -> ExitCode {
    qt_runtime::run::<Settings, _, _>("execution", |mut service| async move {
        service
            .groups(&[Stream::Intents, Stream::Portfolio, Stream::Control])
            .produces(&[Stream::Orders, Stream::Positions, Stream::Alerts]);
        Ok(service)
    })
}
