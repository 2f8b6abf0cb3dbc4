//! `clm` binary: loads config, opens the database, seeds candles from the kline files, then runs
//! the scheduler and the stream handlers until shutdown. The service is the `clm` library.

use std::process::ExitCode;

use anyhow::Context;
use clm::{CONSUMES, Clm, Db, Inbox, PRODUCES, Settings, routes, run_scheduler};

fn main() -> ExitCode {
    // Before anything else: glibc reads its tunables when the process starts (see
    // `clm::memory`). Returns only when the setting is in force or cannot be.
    let restart = clm::memory::restart_with_fixed_mmap_threshold();
    // Values that parse but cannot work exit with code 2 like any bad setting.
    let prepare = |config: &qt_runtime::Config<Settings>| config.service.validate();
    qt_runtime::run_with("clm", prepare, |mut service, ()| async move {
        match &restart {
            Ok(()) => tracing::info!(
                tunables = ?std::env::var("GLIBC_TUNABLES").ok(),
                "fixed malloc mmap threshold: training memory is given back after each run"
            ),
            Err(e) => tracing::warn!(error = %e,
                "cannot restart with a fixed malloc mmap threshold; training memory may stay held"),
        }
        service.groups(CONSUMES).produces(PRODUCES);
        let settings = service.config.service.clone();
        let db = Db::open(&settings.database_url())
            .await
            .context("cannot open the database")?;
        let clm = Clm::new(
            db,
            service.bus.clone(),
            service.bus.clock().clone(),
            settings,
        );
        if let Some(dir) = clm.settings.seed_dir.clone() {
            if dir.is_dir() {
                clm.seed(&dir).await.context("cannot seed candles")?;
            } else {
                tracing::warn!(dir = %dir.display(), "no seed directory; starting without history");
            }
        }
        clm.prune()
            .await
            .context("cannot write the registry index")?;
        service.routes(routes(clm.clone()));
        service.spawn(run_scheduler(clm.clone(), service.shutdown.clone()));
        for stream in CONSUMES {
            let cfg = service.consumer_config(*stream);
            service.consume(cfg, Inbox(clm.clone()));
        }
        Ok(service)
    })
}
