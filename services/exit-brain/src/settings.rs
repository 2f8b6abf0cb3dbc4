//! [`Settings`]: the `[exit_brain]` table of the config file or `QT_EXIT_BRAIN__*` variables.

use qt_exits::ExitConfig;
use serde::{Deserialize, Serialize};

/// exit-brain's own settings. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A position whose stop has not been confirmed by an `OrderAccepted` this many seconds after
    /// its protect intent was sent is closed at market, with an alert. Default 30.
    pub watchdog_secs: u64,
    /// How often the watchdog looks, ms. Default 500.
    pub watchdog_tick_ms: u64,
    /// Candle interval whose closes feed the volatility estimate. Default `5m`.
    pub volatility_interval: String,
    /// Closes in the volatility window (288 × 5m = 24 h). Default 288.
    pub volatility_window: usize,
    /// Check stored plans against the exchange (positions, open algo orders) before consuming.
    /// Default true; the exchange is configured by `QT_EXCHANGE*` as for every service.
    pub check_exchange_on_start: bool,
    /// How long the start-up check keeps retrying an unreachable exchange before giving up (the
    /// process then exits and its supervisor restarts it). Default 60.
    pub exchange_check_timeout_secs: u64,
    /// The SQLite file used when `QT_DATABASE_URL` is not set. Default `data/state/exit-brain.db`.
    pub sqlite_path: String,
    /// The shape of every exit plan and how profiles learn.
    pub exits: ExitConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            watchdog_secs: 30,
            watchdog_tick_ms: 500,
            volatility_interval: "5m".into(),
            volatility_window: 288,
            check_exchange_on_start: true,
            exchange_check_timeout_secs: 60,
            sqlite_path: "data/state/exit-brain.db".into(),
            exits: ExitConfig::default(),
        }
    }
}
