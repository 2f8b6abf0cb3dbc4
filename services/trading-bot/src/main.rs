//! `trading-bot` binary: loads its config, builds the bot and runs it until SIGTERM/SIGINT.
//! Everything else is in the library (`trading_bot`), so tests run the same code. It never
//! places an order.

use std::process::ExitCode;

use anyhow::Context;
use qt_exchange::ExchangeConfig;
use trading_bot::{CONSUMES, PRODUCES, Settings, TradingBot, routes};

fn main() -> ExitCode {
    qt_exchange::install_crypto_provider();
    // A bad exchange setting (`QT_EXCHANGE=bogus`, an unreadable secret file) is a bad
    // setting like any other: exit code 2 with its name.
    if let Err(e) = qt_exchange::ExchangeConfig::from_env() {
        eprintln!("trading-bot: {e}");
        return ExitCode::from(2);
    }
    // Values that parse but cannot work (an unknown interval, gbdt without an artifact) exit
    // with code 2 like any bad setting; qt-runtime then loads the same config again.
    if let Ok(config) = qt_runtime::Config::<Settings>::load("trading-bot")
        && let Err(e) = config.service.validate()
    {
        eprintln!("trading-bot: {e}");
        return ExitCode::from(2);
    }
    qt_runtime::run::<Settings, _, _>("trading-bot", |mut service| async move {
        let exchange = ExchangeConfig::from_env().context("exchange configuration")?;
        let bot = TradingBot::new(
            service.config.service.clone(),
            exchange,
            service.bus.clone(),
            service.bus.clock().clone(),
        )
        .context("trading-bot settings")?;
        service
            .groups(&CONSUMES)
            .produces(&PRODUCES)
            .routes(routes(bot.readiness(), bot.stats()));
        for stream in CONSUMES {
            let cfg = service.consumer_config(stream);
            service.consume(cfg, bot.inbox());
        }
        service.spawn(bot.run(service.shutdown.clone()));
        Ok(service)
    })
}
