//! `execution` binary: loads config, opens the database, connects the exchange, reconciles,
//! then runs its handlers until shutdown. The service itself is the `execution` library.

use std::process::ExitCode;

use anyhow::Context;
use execution::{
    ControlHandler, Db, Execution, IntentHandler, PortfolioHandler, Settings, app, run_periodic,
    run_user_stream,
};
use qt_events::Stream;
use qt_exchange::{BinanceClient, Exchange, ExchangeConfig};

/// Intents read per batch and lane (see where the intents consumer is built).
const INTENTS_PER_LANE: usize = 8;

fn main() -> ExitCode {
    qt_exchange::install_crypto_provider();
    // A bad setting — one that does not parse, a value that cannot work, `QT_EXCHANGE=bogus`,
    // an unreadable secret file — exits with code 2 and its name. The config is loaded once.
    let prepare = |config: &qt_runtime::Config<Settings>| {
        config.service.validate()?;
        let xcfg = ExchangeConfig::from_env().map_err(|e| e.to_string())?;
        app::supported_exchange(&xcfg)?;
        Ok::<_, String>(xcfg)
    };
    qt_runtime::run_with::<Settings, _, _, _, _, _>(
        "execution",
        prepare,
        |mut service, xcfg| async move {
            service.groups(app::GROUPS).produces(app::PRODUCES);
            let settings = service.config.service.clone();
            let db = Db::open(&settings.database_url())
                .await
                .context("cannot open the database")?;
            let client = BinanceClient::new(xcfg.clone(), service.bus.clock().clone())
                .context("cannot build the exchange client")?;
            if let Err(e) = client.sync_time().await {
                tracing::warn!(error = %e, "cannot sync time with the exchange yet");
            }
            app::refuse_other_account_modes(&client, xcfg.account_modes).await?;
            let ex = Execution::new(
                db,
                client,
                service.bus.clone(),
                service.bus.clock().clone(),
                settings,
                xcfg.recv_window_ms,
                xcfg.resolve_margin_ms,
            )
            .await
            .context("cannot load execution's state")?;
            service.spawn(run_user_stream(ex.clone(), xcfg, service.shutdown.clone()));
            // Reconcile before the first intent is taken.
            ex.reconcile()
                .await
                .map_err(|e| anyhow::anyhow!("first reconciliation failed: {e}"))?;
            service.spawn(run_periodic(ex.clone(), service.shutdown.clone()));
            let lanes = ex.settings.intent_lanes;
            let mut intents = service.consumer_config(Stream::Intents);
            // Small batches of intents: a batch is acknowledged once all its lanes are done, and
            // after a crash its unacknowledged entries are read again one at a time, so a large
            // batch would hold a stop intent behind hundreds of entries after each restart.
            intents.batch_size = lanes * INTENTS_PER_LANE;
            let control = service.consumer_config(Stream::Control);
            let portfolio = service.consumer_config(Stream::Portfolio);
            service
                .consume_laned(intents, IntentHandler(ex.clone()), lanes)
                .consume(control, ControlHandler(ex.clone()))
                .consume(portfolio, PortfolioHandler(ex));
            Ok(service)
        },
    )
}
