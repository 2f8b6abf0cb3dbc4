//! The `exit-brain` binary: loads its config, starts telemetry and runs [`exit_brain::build`]
//! until SIGTERM/SIGINT. It never places an order itself; see the library's docs.

use std::process::ExitCode;

fn main() -> ExitCode {
    // A bad exchange setting (`QT_EXCHANGE=bogus`, an unreadable secret file) is a bad
    // setting like any other: exit code 2 with its name.
    if let Err(e) = qt_exchange::ExchangeConfig::from_env() {
        eprintln!("exit-brain: {e}");
        return ExitCode::from(2);
    }
    qt_runtime::run::<exit_brain::Settings, _, _>("exit-brain", exit_brain::build)
}
