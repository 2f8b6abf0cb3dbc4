//! Operator commands on the control stream; every service reads them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Turn the kill switch on (no new entries; exits still allowed) or off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetKillSwitch {
    pub command_id: String,
    pub enabled: bool,
    pub reason: String,
    pub requested_by: String,
}

/// Resume entries after the drawdown breaker tripped: execution clears the halt and measures
/// the drawdown again from the current equity. It does nothing when the breaker has not tripped,
/// and it is not the kill switch (`SetKillSwitch` turns that off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResumeTrading {
    pub command_id: String,
    /// Why, for the audit trail.
    pub reason: String,
    pub requested_by: String,
}

/// Close every position at market and cancel every entry order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CloseAll {
    pub command_id: String,
    pub reason: String,
    pub requested_by: String,
}

/// Ask clm to retrain now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainNow {
    pub command_id: String,
    pub reason: String,
    pub requested_by: String,
}

/// Ask a service (or all, when `service` is empty) to reload its configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReloadConfig {
    pub command_id: String,
    #[serde(default)]
    pub service: Option<String>,
    pub requested_by: String,
}
