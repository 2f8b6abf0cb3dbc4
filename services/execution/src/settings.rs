//! execution's own settings: the `[execution]` table or `QT_EXECUTION__*` variables.

use std::path::PathBuf;
use std::time::Duration;

use qt_risk::RiskLimits;
use serde::{Deserialize, Serialize};

/// Settings of the execution service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Database URL; empty means `QT_DATABASE_URL`, else a SQLite file at `sqlite_path`.
    pub database_url: String,
    /// The default SQLite file.
    pub sqlite_path: PathBuf,
    /// The risk guard's limits.
    pub limits: RiskLimits,
    /// How often orders, conditional orders and positions are reconciled with the exchange.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: Duration,
    /// How often live orders are polled (fallback for fills missed by the user data stream).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Sends of one order with an unknown outcome before the handler gives up for now (the
    /// intent stays pending and is resumed from its SENDING record).
    pub max_sends: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            sqlite_path: PathBuf::from("data/state/execution.db"),
            limits: RiskLimits::default(),
            reconcile_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(15),
            max_sends: 3,
        }
    }
}

impl Settings {
    /// The database URL to open.
    #[must_use]
    pub fn database_url(&self) -> String {
        if self.database_url.trim().is_empty() {
            qt_store::url_from_env(&self.sqlite_path)
        } else {
            self.database_url.clone()
        }
    }
}
