use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a model artifact is and how to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelArtifactRef {
    pub model_version: String,
    /// Model family: `momentum`, `gbdt`, `ensemble`.
    pub model: String,
    /// A path on the shared volume or a `db:` reference.
    pub artifact_uri: String,
    /// Hex SHA-256 of the artifact bytes.
    pub sha256: String,
}

/// clm promoted a model; trading-bot switches to it without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelDeployed {
    pub artifact: ModelArtifactRef,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    pub deployed_at: i64,
}

/// An operator or clm rolled back to an earlier model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelRolledBack {
    pub from_version: String,
    pub artifact: ModelArtifactRef,
    pub reason: String,
    pub rolled_back_at: i64,
}
