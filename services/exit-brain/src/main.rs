//! The `exit-brain` binary: loads its config, starts telemetry and runs [`exit_brain::build`]
//! until SIGTERM/SIGINT. It never places an order itself; see the library's docs.

use std::process::ExitCode;

fn main() -> ExitCode {
    qt_runtime::run::<exit_brain::Settings, _, _>("exit-brain", exit_brain::build)
}
