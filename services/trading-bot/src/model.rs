//! Loading models: the configured starting model, and artifacts named by `ModelDeployed` /
//! `ModelRolledBack` (checked against their SHA-256 before use).

use std::path::{Path, PathBuf};

use qt_events::ModelArtifactRef;
use qt_models::{
    Model, ModelArtifact, ModelError, MomentumConfig, MomentumModel, NoModel, build_model,
};
use sha2::{Digest, Sha256};

use crate::settings::{ModelChoice, Settings};

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read artifact {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact {path} has sha256 {found}, the deployment says {expected}")]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("unsupported artifact uri {0:?} (a file path or file:// uri is expected)")]
    Uri(String),
    #[error("artifact is a {found} model, the configuration asks for {expected}")]
    Kind { expected: String, found: String },
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl LoadError {
    /// Only an I/O failure may heal (a shared volume not mounted yet).
    pub fn is_retryable(&self) -> bool {
        matches!(self, LoadError::Io { .. })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(bytes: &[u8]) -> Result<Box<dyn Model>, LoadError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ModelError::Format(format!("artifact is not UTF-8: {e}")))?;
    let artifact = ModelArtifact::from_json(text)?;
    // An artifact trained with the funding inputs (`funding_features`) loads: the bot feeds
    // them live from the exchange's funding history (`crate::funding`); only an exchange that
    // refuses funding rates makes the bot refuse it (`TradingBot`'s swap).
    Ok(build_model(&artifact)?)
}

/// The model to start with, from the settings.
pub fn starting_model(settings: &Settings) -> Result<Box<dyn Model>, LoadError> {
    match (&settings.model_artifact, settings.model) {
        (None, ModelChoice::None) => Ok(Box::new(NoModel)),
        (None, _) => Ok(Box::new(MomentumModel::new(
            MomentumConfig::default(),
            "momentum-default",
        )?)),
        (Some(path), choice) => {
            let model = parse(&read(path)?)?;
            let expected = match choice {
                ModelChoice::None => NoModel::NAME,
                ModelChoice::Momentum => "momentum",
                ModelChoice::Gbdt => "gbdt",
                ModelChoice::Ensemble => "ensemble",
                ModelChoice::Temporal => "temporal",
            };
            if model.name() != expected {
                return Err(LoadError::Kind {
                    expected: expected.into(),
                    found: model.name().into(),
                });
            }
            Ok(model)
        }
    }
}

/// The model an artifact reference points to, after checking its SHA-256 (when given).
pub fn load_ref(artifact: &ModelArtifactRef) -> Result<Box<dyn Model>, LoadError> {
    let uri = artifact.artifact_uri.as_str();
    let path = PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri));
    if uri.is_empty() || (uri.contains(':') && !uri.starts_with("file://")) {
        return Err(LoadError::Uri(uri.chars().take(200).collect()));
    }
    let bytes = read(&path)?;
    if !artifact.sha256.is_empty() {
        let found = hex::encode(Sha256::digest(&bytes));
        if !found.eq_ignore_ascii_case(&artifact.sha256) {
            return Err(LoadError::Checksum {
                path,
                expected: artifact.sha256.clone(),
                found,
            });
        }
    }
    parse(&bytes)
}

/// Hex SHA-256 of a file's bytes, as `ModelArtifactRef::sha256` carries it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A temporal model trained for tests on the last 4,000 candles of BTCUSDT and ETHUSDT of
/// the repo's futures data (one epoch), saved as `<version>.json` in `dir`.
#[cfg(test)]
pub(crate) fn temporal_artifact(dir: &Path, version: &str) -> (PathBuf, ModelArtifact) {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/futures/5m");
    let series: Vec<qt_models::dataset::Series> = ["BTCUSDT", "ETHUSDT"]
        .iter()
        .map(|s| {
            let mut candles = qt_candles::read_klines(data.join(format!("{s}-5m.csv.gz")))
                .expect("the repo's futures candles");
            let n = candles.len();
            candles.drain(..n - 4000);
            qt_models::dataset::Series {
                symbol: s.to_string(),
                interval_ms: 300_000,
                candles,
            }
        })
        .collect();
    let mut cfg = qt_models::train::TrainConfig::new(qt_models::ModelKind::Temporal, version);
    cfg.temporal.epochs = 1;
    cfg.threads = 1;
    // The configured exits only: the tests here need a temporal model, not an exit choice.
    cfg.exit_grid = qt_models::ExitGrid::base_only();
    let (artifact, _) = qt_models::train::train(&series, &cfg).expect("trains");
    let path = dir.join(format!("{version}.json"));
    artifact.save(&path).expect("saved");
    (path, artifact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_momentum(dir: &Path, version: &str) -> (PathBuf, String) {
        let a = ModelArtifact::momentum(
            &MomentumConfig {
                buy_threshold: 0.02,
                sell_threshold: -0.02,
            },
            version,
        )
        .expect("valid momentum");
        let path = dir.join(format!("{version}.json"));
        a.save(&path).expect("saved");
        let sha = sha256_hex(&std::fs::read(&path).expect("readable"));
        (path, sha)
    }

    #[test]
    fn a_deployed_artifact_loads_only_with_the_right_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, sha) = write_momentum(dir.path(), "m-7");
        let mut r = ModelArtifactRef {
            model_version: "m-7".into(),
            model: "momentum".into(),
            artifact_uri: path.display().to_string(),
            sha256: sha,
        };
        let m = load_ref(&r).expect("loads");
        assert_eq!(m.version(), "m-7");
        r.sha256 = "00".repeat(32);
        assert!(matches!(load_ref(&r), Err(LoadError::Checksum { .. })));
        r.artifact_uri = "db:models/7".into();
        assert!(matches!(load_ref(&r), Err(LoadError::Uri(_))));
        r.artifact_uri = dir.path().join("missing.json").display().to_string();
        let e = load_ref(&r).expect_err("missing file");
        assert!(e.is_retryable());
    }

    #[test]
    fn the_starting_model_is_none_unless_momentum_or_an_artifact_of_the_configured_kind_is_given() {
        let m = starting_model(&Settings::default()).expect("default");
        assert_eq!((m.name(), m.version()), ("none", "none"));
        let s = Settings {
            model: ModelChoice::Momentum,
            ..Settings::default()
        };
        let m = starting_model(&s).expect("momentum");
        assert_eq!((m.name(), m.version()), ("momentum", "momentum-default"));
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = write_momentum(dir.path(), "m-8");
        let s = Settings {
            model: ModelChoice::Gbdt,
            model_artifact: Some(path),
            ..Settings::default()
        };
        assert!(matches!(starting_model(&s), Err(LoadError::Kind { .. })));
    }

    #[test]
    fn an_ensemble_artifact_starts_as_the_configured_ensemble() {
        let dir = tempfile::tempdir().expect("tempdir");
        let member = ModelArtifact::momentum(&MomentumConfig::default(), "m-1").expect("valid");
        let e = ModelArtifact::ensemble(&qt_models::EnsembleConfig::default(), vec![member], "e-1")
            .expect("valid ensemble");
        let path = dir.path().join("e-1.json");
        e.save(&path).expect("saved");
        let s = Settings {
            model: ModelChoice::Ensemble,
            model_artifact: Some(path),
            ..Settings::default()
        };
        let m = starting_model(&s).expect("loads");
        assert_eq!((m.name(), m.version()), ("ensemble", "e-1"));
    }

    #[test]
    fn a_temporal_artifact_starts_as_configured_and_loads_when_deployed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = temporal_artifact(dir.path(), "t-1");
        let s = Settings {
            model: ModelChoice::Temporal,
            model_artifact: Some(path.clone()),
            ..Settings::default()
        };
        let m = starting_model(&s).expect("loads");
        assert_eq!((m.name(), m.version()), ("temporal", "t-1"));
        let s = Settings {
            model: ModelChoice::Gbdt,
            ..s
        };
        assert!(matches!(starting_model(&s), Err(LoadError::Kind { .. })));
        let sha = sha256_hex(&std::fs::read(&path).expect("readable"));
        let r = ModelArtifactRef {
            model_version: "t-1".into(),
            model: "temporal".into(),
            artifact_uri: format!("file://{}", path.display()),
            sha256: sha,
        };
        let m = load_ref(&r).expect("a deployed temporal model loads");
        assert_eq!((m.name(), m.version()), ("temporal", "t-1"));
    }
}
