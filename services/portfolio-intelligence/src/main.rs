//! `portfolio-intelligence` binary: loads config, opens the database, connects the exchange,
//! then runs the stream handlers, the periodic sync/snapshot/alert loop and the HTTP API until
//! shutdown. The service itself is the `portfolio_intelligence` library. It never places an
//! order.

use std::process::ExitCode;

use anyhow::Context;
use portfolio_intelligence::app::{GROUPS, PRODUCES};
use portfolio_intelligence::{Db, Intake, Intel, Settings, Shared, api, run_periodic};
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig};

fn main() -> ExitCode {
    qt_exchange::install_crypto_provider();
    // A bad exchange setting (`QT_EXCHANGE=bogus`, an unreadable secret file) is a bad
    // setting like any other: exit code 2 with its name.
    let prepare = |_: &qt_runtime::Config<Settings>| ExchangeConfig::from_env();
    qt_runtime::run_with(
        "portfolio-intelligence",
        prepare,
        |mut service, xcfg| async move {
            service.groups(GROUPS).produces(PRODUCES);
            let settings = service.config.service.clone();
            let db = Db::open(&settings.database_url())
                .await
                .context("cannot open the database")?;
            let client = BinanceClient::new(xcfg, service.bus.clock().clone())
                .context("cannot build the exchange client")?;
            if let Err(e) = client.sync_time().await {
                tracing::warn!(error = %e, "cannot sync time with the exchange yet");
            }
            let shared = Shared::load(
                db,
                service.bus.clone(),
                service.bus.clock().clone(),
                settings,
            )
            .await
            .context("cannot load the portfolio's state")?;
            if let Err(e) = shared.restore_control().await {
                tracing::warn!(error = %e, "cannot read the kill switch and the drawdown breaker from the streams yet");
            }
            let intel = Intel::new(shared.clone(), client);
            service.spawn(run_periodic(intel, service.shutdown.clone()));
            for s in GROUPS {
                let cfg = service.consumer_config(*s);
                service.consume(cfg, Intake(shared.clone()));
            }
            service.routes(api::router(shared));
            Ok(service)
        },
    )
}
