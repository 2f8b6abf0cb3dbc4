//! The model registry on disk: artifacts as `<dir>/<version>.json` (every service reads them at
//! the same path, checked by SHA-256) and `registry.json`, the index `qtctl models` reads.

use std::path::{Path, PathBuf};

use qt_events::ModelArtifactRef;
use qt_models::{ModelArtifact, ModelError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::ModelRow;

/// The index file's name inside the artifacts directory.
pub const INDEX_FILE: &str = "registry.json";

/// `registry.json`: every kept version, newest first, and the champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub champion: Option<String>,
    pub models: Vec<ModelRow>,
}

/// Hex SHA-256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Saves an artifact as `<dir>/<version>.json`; returns its absolute path and SHA-256.
///
/// # Errors
/// The directory or file cannot be written or read back.
pub fn write_artifact(
    dir: &Path,
    artifact: &ModelArtifact,
) -> Result<(PathBuf, String), ModelError> {
    let io = |source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let dir = std::fs::canonicalize(dir).map_err(io)?;
    let path = dir.join(format!("{}.json", artifact.version));
    artifact.save(&path)?;
    let bytes = std::fs::read(&path).map_err(io)?;
    Ok((path, sha256_hex(&bytes)))
}

/// Writes `registry.json` (temp file + rename).
///
/// # Errors
/// The file cannot be written.
pub fn write_index(dir: &Path, index: &Index) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{INDEX_FILE}.tmp"));
    let text = serde_json::to_string_pretty(index).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join(INDEX_FILE))
}

/// The wire reference of a registry row.
pub fn artifact_ref(row: &ModelRow) -> ModelArtifactRef {
    ModelArtifactRef {
        model_version: row.version.clone(),
        model: row.kind.clone(),
        artifact_uri: row.artifact_uri.clone(),
        sha256: row.sha256.clone(),
    }
}

/// The rows to drop so that at most `keep` remain, never the champion (`rows` newest first).
pub fn to_prune(rows: &[ModelRow], keep: usize) -> Vec<ModelRow> {
    let mut kept = 0;
    let mut out = Vec::new();
    for r in rows {
        if r.status == "champion" {
            continue;
        }
        // The champion always takes one of the places.
        let champion_slot = usize::from(rows.iter().any(|x| x.status == "champion"));
        if kept + champion_slot < keep {
            kept += 1;
        } else {
            out.push(r.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: &str, status: &str) -> ModelRow {
        ModelRow {
            version: v.into(),
            kind: "gbdt".into(),
            created_at: 0,
            artifact_uri: String::new(),
            sha256: String::new(),
            status: status.into(),
            deployed_at: None,
            metadata: serde_json::Value::Null,
        }
    }

    #[test]
    fn pruning_keeps_the_newest_and_always_the_champion() {
        let mut rows: Vec<_> = (0..13)
            .rev()
            .map(|i| row(&format!("v{i:02}"), "retired"))
            .collect();
        rows[12].status = "champion".into(); // the oldest is the champion
        let dropped: Vec<_> = to_prune(&rows, 10).into_iter().map(|r| r.version).collect();
        assert_eq!(dropped, ["v03", "v02", "v01"]);
        assert!(!dropped.contains(&"v00".to_string()));
        assert!(to_prune(&rows[..5], 10).is_empty());
    }
}
