use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One field of a stream entry, as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RawField {
    pub name: String,
    #[serde(with = "serde_bytes")]
    #[schemars(with = "Vec<u8>")]
    pub value: Vec<u8>,
}

/// An entry that could not be handled: it is copied here whole, with the reason, and acknowledged
/// on its own stream. `qtctl dlq replay` puts `fields` back on `stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeadLettered {
    /// The stream key it came from.
    pub stream: String,
    /// Its entry id there.
    pub entry_id: String,
    pub group: String,
    pub consumer: String,
    /// Why: `undecodable: …`, `unknown type …`, `future version …`, `failed N times: …`, …
    pub reason: String,
    pub deliveries: u64,
    /// The original entry's fields, unchanged.
    pub fields: Vec<RawField>,
}
