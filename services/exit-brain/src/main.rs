//! The `exit-brain` binary: loads its config, starts telemetry and runs [`exit_brain::build`]
//! until SIGTERM/SIGINT. It never places an order itself; see the library's docs.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A bad exchange setting (`QT_EXCHANGE=bogus`, an unreadable secret file) is a bad
    // setting like any other: exit code 2 with its name.
    let prepare =
        |_: &qt_runtime::Config<exit_brain::Settings>| qt_exchange::ExchangeConfig::from_env();
    qt_runtime::run_with("exit-brain", prepare, exit_brain::build)
}
