//! `trading-bot` binary: loads its config, builds the bot and runs it until SIGTERM/SIGINT.
//! Everything else is in the library (`trading_bot`), so tests run the same code. It never
//! places an order.

use std::process::ExitCode;

use anyhow::Context;
use qt_exchange::ExchangeConfig;
use trading_bot::{CONSUMES, PRODUCES, Settings, TradingBot, routes};

fn main() -> ExitCode {
    qt_exchange::install_crypto_provider();
    // Values that parse but cannot work (an unknown interval, gbdt without an artifact) and a
    // bad exchange setting (`QT_EXCHANGE=bogus`, an unreadable secret file) exit with code 2
    // and their name, like any bad setting.
    let prepare = |config: &qt_runtime::Config<Settings>| -> Result<ExchangeConfig, String> {
        config.service.validate().map_err(|e| e.to_string())?;
        ExchangeConfig::from_env().map_err(|e| e.to_string())
    };
    qt_runtime::run_with("trading-bot", prepare, |mut service, exchange| async move {
        let bot_exchange = exchange.clone();
        let bot = TradingBot::new(
            service.config.service.clone(),
            exchange,
            service.bus.clone(),
            service.bus.clock().clone(),
        )
        .context("trading-bot settings")?
        .with_shard(service.config.common.shard());
        // The market context is one per deployment: shard 0 fetches and publishes it for the
        // whole universe; the other shards neither fetch nor publish it.
        let ctx = trading_bot::context::context_hub(
            &service.config.service.context,
            &service.config.service.symbols,
            &bot_exchange,
            &service.bus,
            service.bus.clock().clone(),
        )
        .context("trading-bot context settings")?
        .filter(|_| service.config.common.shard().index == 0);
        let context_routes =
            trading_bot::context::context_routes(ctx.clone(), service.bus.clock().clone());
        service
            .groups(&CONSUMES)
            .produces(&PRODUCES)
            .routes(routes(bot.readiness(), bot.stats()).merge(context_routes));
        for stream in CONSUMES {
            let cfg = service.consumer_config(stream);
            service.consume(cfg, bot.inbox());
        }
        if let Some(hub) = ctx {
            let task = trading_bot::context::publisher(
                &service.config.service.context,
                hub,
                &service.bus,
                service.shutdown.clone(),
            );
            service.spawn(task);
        }
        service.spawn(bot.run(service.shutdown.clone()));
        Ok(service)
    })
}
