//! `trading-bot` turns market data into features and model signals and sends entry intents.
//!
//! It picks its universe (configured symbols, or the top N by 24h quote volume, refreshed every
//! 15 minutes), warms each symbol's features up from REST klines, follows the exchange's kline
//! and mark-price WebSocket streams (a reconnect gap is filled from REST, so no candle is skipped
//! or doubled), publishes every closed candle (`CandleClosed`, id derived from symbol, interval
//! and open time) and throttled mark prices to `market`, runs the configured model on each
//! closed candle and publishes every decision to `signals`, and sends an `OpenPosition` to
//! `intents` when the confidence reaches the threshold and the symbol has no position, no
//! pending intent and no cooldown (intent id derived from symbol and candle open time, sized
//! with `qt-risk` and rounded to the exchange's filters). It learns positions and intent
//! outcomes from `positions` and `orders`, swaps its model on `models` between two candles, and
//! pauses entries on `SetKillSwitch` from `control`. It hosts the market-context task
//! ([`context`]): sentiment and positioning published on `context`. It follows its symbols'
//! funding rates ([`funding`]) for a model trained with the funding inputs.
//!
//! It never places an order (only execution does), never overrides the risk guard, and never
//! re-implements features, models or sizing: those are `qt-features`, `qt-models`, `qt-risk`.

mod app;
pub mod context;
pub mod decisions;
pub mod funding;
pub mod gate;
mod inbox;
pub mod model;
pub mod settings;

pub use app::{
    BotStats, CONSUMES, PRODUCES, TradingBot, routes, shard_universe, top_by_quote_volume,
};
pub use inbox::{Command, Inbox};
pub use settings::{ModelChoice, Settings};
