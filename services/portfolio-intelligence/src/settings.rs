//! portfolio-intelligence's own settings: the `[portfolio_intelligence]` table or
//! `QT_PORTFOLIO_INTELLIGENCE__*` variables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A secret string (token, webhook URL): never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "string_or_number")] String);

/// A string that may have been written as a number (an environment variable such as a
/// Telegram chat id `-100123` is read as one).
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        I(i64),
        U(u64),
        F(f64),
    }
    Ok(match Text::deserialize(d)? {
        Text::S(s) => s,
        Text::I(i) => i.to_string(),
        Text::U(u) => u.to_string(),
        Text::F(f) => f.to_string(),
    })
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// The limits shown as gauges and used by the alert rules (set them like execution's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_concurrent_positions: usize,
    pub max_gross_exposure: Decimal,
    pub max_daily_loss: Decimal,
    /// Largest share of the gross exposure on one side.
    pub max_side_fraction: Decimal,
}

impl Default for Limits {
    fn default() -> Self {
        // The same defaults as qt-risk's RiskLimits.
        Self {
            max_concurrent_positions: 8,
            max_gross_exposure: Decimal::from(20_000),
            max_daily_loss: Decimal::from(150),
            max_side_fraction: Decimal::new(6, 1),
        }
    }
}

/// Alert rules and delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// The same (rule, key) is raised (and delivered) at most once per window.
    #[serde(with = "humantime_serde")]
    pub throttle: Duration,
    /// Share of the daily loss limit at which `daily_loss_near_limit` fires.
    pub daily_loss_fraction: Decimal,
    #[serde(with = "humantime_serde")]
    pub model_max_age: Duration,
    pub win_rate_min: f64,
    /// N of "win rate over the last N trades".
    pub win_rate_trades: usize,
    pub exchange_errors_per_minute: u32,
    /// Consecutive growing samples of pending + lag before `consumer_lag_growing`.
    pub lag_growth_samples: usize,
    /// Alerts older than this when they are read (a replay after a first start or a long
    /// outage) are listed but not delivered.
    #[serde(with = "humantime_serde")]
    pub deliver_max_age: Duration,
    /// Generic webhook: the alert as JSON is POSTed here.
    pub webhook_url: Secret,
    /// Discord webhook URL.
    pub discord_webhook_url: Secret,
    pub telegram_bot_token: Secret,
    #[serde(deserialize_with = "string_or_number")]
    pub telegram_chat_id: String,
    pub telegram_api_base: String,
    /// A market-context source not fresh (stale, failing, held on a 429, breaker open) for
    /// this long raises `context_source_down`.
    #[serde(with = "humantime_serde")]
    pub context_down_after: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            throttle: Duration::from_secs(15 * 60),
            daily_loss_fraction: Decimal::new(8, 1),
            model_max_age: Duration::from_secs(3 * 86_400),
            win_rate_min: 0.55,
            win_rate_trades: 20,
            exchange_errors_per_minute: 10,
            lag_growth_samples: 3,
            deliver_max_age: Duration::from_secs(10 * 60),
            webhook_url: Secret::default(),
            discord_webhook_url: Secret::default(),
            telegram_bot_token: Secret::default(),
            telegram_chat_id: String::new(),
            telegram_api_base: "https://api.telegram.org".into(),
            context_down_after: Duration::from_secs(15 * 60),
        }
    }
}

/// Settings of portfolio-intelligence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Database URL; empty means `QT_DATABASE_URL`, else a SQLite file at `sqlite_path`.
    pub database_url: String,
    pub sqlite_path: PathBuf,
    /// How often positions and balances are read from the exchange.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// How often a snapshot is taken, stored and published, and the alert rules run.
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// Stored snapshots older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub snapshot_retention: Duration,
    /// Consecutive syncs that must show the same difference before drift is alerted.
    pub drift_confirmations: u32,
    /// Quote asset of the wallet balance.
    pub quote_asset: String,
    /// Balance assumed before the first sync.
    pub initial_balance: Decimal,
    /// Equity points kept in memory for the curve and the ratios.
    pub equity_points: usize,
    /// Closed trades kept in memory (and loaded at start).
    pub trades_kept: usize,
    pub limits: Limits,
    pub alerts: AlertSettings,
    /// Bearer token of the control endpoints; empty disables them.
    pub api_token: Secret,
    /// Control requests (authorized or not) answered per minute; past it, 429 with
    /// `Retry-After` (default 30), so a token cannot be guessed nor a command flooded.
    pub control_per_minute: u32,
    /// Services whose readiness is polled: name → base URL (e.g. `http://execution:8082`).
    /// By default the five services on `scripts/run.sh`'s ports (127.0.0.1:8081–8085); a
    /// `QT_PORTFOLIO_INTELLIGENCE__SERVICES__<NAME>` variable replaces one (its name is read
    /// in lower case: `trading_bot`), an empty URL leaves it out. The `clm` entry is also
    /// where clm's schedule (`/health/clm`) is read.
    pub services: BTreeMap<String, String>,
    /// clm's artifacts directory, where its `registry.json` (the model cards) is read. Empty:
    /// `QT_CLM__ARTIFACTS_DIR` (what clm itself reads; `scripts/run.sh` exports it), else
    /// clm's default `data/models`.
    pub models_dir: PathBuf,
    /// Candles kept per symbol for the dashboard's charts (restored from `qt:market` at start).
    pub chart_candles: usize,
    /// The request weight one IP may use per minute on the exchange (Binance USDⓈ-M publishes
    /// 2400), shown beside the weight used.
    pub exchange_weight_limit: u32,
}

/// The services of `scripts/run.sh` and their ports, in its order (8081 + index).
pub const RUN_SH_SERVICES: [&str; 5] = [
    "trading_bot",
    "execution",
    "exit_brain",
    "portfolio_intelligence",
    "clm",
];

/// `scripts/run.sh`'s service URLs: 127.0.0.1, ports 8081–8085.
#[must_use]
pub fn default_services() -> BTreeMap<String, String> {
    RUN_SH_SERVICES
        .iter()
        .zip(8081..)
        .map(|(n, port)| ((*n).to_owned(), format!("http://127.0.0.1:{port}")))
        .collect()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            sqlite_path: PathBuf::from("data/state/portfolio-intelligence.db"),
            sync_interval: Duration::from_secs(30),
            snapshot_interval: Duration::from_secs(10),
            snapshot_retention: Duration::from_secs(30 * 86_400),
            drift_confirmations: 2,
            quote_asset: "USDT".into(),
            initial_balance: Decimal::from(10_000),
            equity_points: 2_000,
            trades_kept: 5_000,
            limits: Limits::default(),
            alerts: AlertSettings::default(),
            api_token: Secret::default(),
            control_per_minute: 30,
            services: default_services(),
            models_dir: PathBuf::new(),
            chart_candles: 120,
            exchange_weight_limit: 2400,
        }
    }
}

impl Settings {
    /// The services to poll, named as people write them (`trading-bot`), without those
    /// whose URL is empty.
    #[must_use]
    pub fn polled_services(&self) -> BTreeMap<String, String> {
        self.services
            .iter()
            .filter(|(_, url)| !url.trim().is_empty())
            .map(|(n, url)| (n.replace('_', "-"), url.trim().to_owned()))
            .collect()
    }

    /// The directory of clm's `registry.json`.
    #[must_use]
    pub fn models_dir(&self) -> PathBuf {
        if !self.models_dir.as_os_str().is_empty() {
            return self.models_dir.clone();
        }
        match std::env::var_os("QT_CLM__ARTIFACTS_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from("data/models"),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let mut s = Settings {
            api_token: Secret::new("tok-123"),
            ..Settings::default()
        };
        s.alerts.telegram_bot_token = Secret::new("bot-secret");
        s.alerts.webhook_url = Secret::new("https://hooks.example/secret-path");
        let d = format!("{s:?}");
        assert!(!d.contains("tok-123") && !d.contains("bot-secret") && !d.contains("secret-path"));
    }
}
