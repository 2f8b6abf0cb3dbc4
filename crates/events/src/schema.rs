//! JSON Schema of every event payload, generated from the Rust types (`cargo xtask schemas`
//! writes them to `proto-schemas/`; a test fails when the checked-in files are stale).

use schemars::generate::SchemaSettings;

use crate::EVENT_TYPES;

/// `(file name, pretty JSON)` for every event type, plus `index.json` listing type, version and
/// stream of each.
pub fn json_schemas() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut index = Vec::new();
    for t in EVENT_TYPES {
        let mut generator = SchemaSettings::draft2020_12().into_generator();
        let mut schema = (t.schema)(&mut generator);
        let defs = generator.take_definitions(true);
        if let Some(obj) = schema.as_object_mut() {
            obj.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
            obj.insert("title".into(), t.name.into());
            obj.insert("x-qt-version".into(), t.version.into());
            obj.insert("x-qt-stream".into(), t.stream.suffix().into());
            if !defs.is_empty() {
                obj.insert("$defs".into(), serde_json::Value::Object(defs));
            }
        }
        let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
        out.push((format!("{}.json", t.name), text));
        index.push(
            serde_json::json!({ "type": t.name, "v": t.version, "stream": t.stream.suffix() }),
        );
    }
    let envelope = serde_json::json!({
        "description": "Every stream entry has the fields id (event id), type, v (schema version), ts (ms since epoch), src (service), corr (correlation id), traceparent (W3C, optional), sym (symbol, optional) and data (the payload as MessagePack with named fields, described by <type>.json).",
        "events": index,
    });
    out.push((
        "index.json".into(),
        serde_json::to_string_pretty(&envelope).unwrap_or_default() + "\n",
    ));
    out
}
