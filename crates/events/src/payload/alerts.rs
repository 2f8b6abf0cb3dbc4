use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Something a person should know about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertRaised {
    /// The rule that fired, e.g. `daily_loss_near_limit`; with `key`, what de-duplication uses.
    pub rule: String,
    /// What the alert is about within the rule (a symbol, a stream, a service); may be empty.
    #[serde(default)]
    pub key: String,
    pub severity: Severity,
    pub message: String,
    /// The service that raised it.
    pub service: String,
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

/// The `rule` of alerts that another service acts on (the others are for people only).
pub mod alert_rules {
    /// execution: the drawdown breaker tripped; entries are refused until `ResumeTrading`.
    pub const DRAWDOWN_BREAKER_TRIPPED: &str = "drawdown_breaker_tripped";
    /// execution: an operator's `ResumeTrading` cleared a tripped drawdown breaker.
    pub const DRAWDOWN_BREAKER_RESUMED: &str = "drawdown_breaker_resumed";
}
