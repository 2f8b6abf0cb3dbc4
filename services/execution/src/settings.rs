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
    /// How long an intent may wait for the exchange's order-rate budget (counted from the
    /// intent's time) before what it still lacks is refused `RATE_LIMITED`: an entry (a signal
    /// that old is stale), or a protect intent's take-profit legs (the stop goes first and
    /// has the last share of the budget). Below the bus's 60 s `poison_min_age`: a deferred
    /// intent is read again until then and must get its answer before it could be taken for
    /// poison.
    #[serde(with = "humantime_serde")]
    pub order_budget_max_wait: Duration,
    /// How many intents of different symbols are handled at once (those of one symbol always
    /// one after another, in the stream's order), so that an entry never waits for another
    /// symbol's protective orders. 1 handles every intent in turn.
    pub intent_lanes: usize,
}

/// The longest `order_budget_max_wait` allowed (the bus dead-letters entries older than 60 s that
/// keep coming back).
pub const ORDER_BUDGET_MAX_WAIT_LIMIT: Duration = Duration::from_secs(50);

/// The most intent lanes (`intent_lanes`).
pub const INTENT_LANES_LIMIT: usize = 64;

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            sqlite_path: PathBuf::from("data/state/execution.db"),
            limits: RiskLimits::default(),
            reconcile_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(15),
            max_sends: 3,
            order_budget_max_wait: Duration::from_secs(30),
            intent_lanes: 4,
        }
    }
}

impl Settings {
    /// Checks values that parse but cannot work; the error names the setting.
    ///
    /// # Errors
    /// The first bad setting, as `QT_EXECUTION__…` with the reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.order_budget_max_wait > ORDER_BUDGET_MAX_WAIT_LIMIT {
            return Err(format!(
                "bad setting QT_EXECUTION__ORDER_BUDGET_MAX_WAIT (file key execution.order_budget_max_wait): \
                 {:?} is above the {:?} a deferred intent may wait",
                self.order_budget_max_wait, ORDER_BUDGET_MAX_WAIT_LIMIT
            ));
        }
        if !(1..=INTENT_LANES_LIMIT).contains(&self.intent_lanes) {
            return Err(format!(
                "bad setting QT_EXECUTION__INTENT_LANES (file key execution.intent_lanes): {} is \
                 not between 1 and {INTENT_LANES_LIMIT}",
                self.intent_lanes
            ));
        }
        if let Err(e) = self.limits.validate() {
            let field = e.field();
            return Err(format!(
                "bad setting QT_EXECUTION__LIMITS__{} (file key execution.limits.{field}): {e}",
                field.to_uppercase()
            ));
        }
        if self.max_sends == 0 {
            return Err(
                "bad setting QT_EXECUTION__MAX_SENDS (file key execution.max_sends): must be at \
                 least 1"
                    .into(),
            );
        }
        Ok(())
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
    fn the_defaults_are_valid_and_a_bad_value_names_its_setting() {
        assert_eq!(Settings::default().validate(), Ok(()));
        let s = Settings {
            order_budget_max_wait: Duration::from_secs(90),
            ..Settings::default()
        };
        let e = s.validate().unwrap_err();
        assert!(e.contains("QT_EXECUTION__ORDER_BUDGET_MAX_WAIT"), "{e}");
        let s = Settings {
            max_sends: 0,
            ..Settings::default()
        };
        assert!(
            s.validate()
                .unwrap_err()
                .contains("QT_EXECUTION__MAX_SENDS")
        );
        let s = Settings {
            limits: qt_risk::RiskLimits {
                max_drawdown_pct: rust_decimal::Decimal::from(10),
                ..qt_risk::RiskLimits::default()
            },
            ..Settings::default()
        };
        let e = s.validate().unwrap_err();
        assert!(
            e.contains("QT_EXECUTION__LIMITS__MAX_DRAWDOWN_PCT")
                && e.contains("execution.limits.max_drawdown_pct"),
            "{e}"
        );
        for lanes in [0, INTENT_LANES_LIMIT + 1] {
            let s = Settings {
                intent_lanes: lanes,
                ..Settings::default()
            };
            assert!(
                s.validate()
                    .unwrap_err()
                    .contains("QT_EXECUTION__INTENT_LANES")
            );
        }
    }
}
