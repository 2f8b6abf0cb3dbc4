use std::path::Path;

use qt_features::FEATURE_NAMES;
use serde::{Deserialize, Serialize};

use crate::{
    EnsembleConfig, EnsembleModel, GbdtModel, LabelConfig, Model, ModelError, MomentumConfig,
    MomentumModel,
};

/// Version of the artifact file layout.
pub const ARTIFACT_FORMAT: u32 = 2;

/// Model family stored in an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Momentum,
    Gbdt,
    Ensemble,
    Temporal,
    /// Time-series momentum on hourly closes ([`crate::trend`]): a rule, nothing fitted.
    Trend,
    /// The gbdt as a meta-labeler on the trend rule ([`crate::meta`]).
    Meta,
}

impl ModelKind {
    /// A fixed rule (nothing fitted, no validation trades to choose exits by).
    pub fn is_rule(self) -> bool {
        matches!(self, ModelKind::Momentum | ModelKind::Trend)
    }

    /// The kind's name, as in configurations and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Momentum => "momentum",
            ModelKind::Gbdt => "gbdt",
            ModelKind::Ensemble => "ensemble",
            ModelKind::Temporal => "temporal",
            ModelKind::Trend => "trend",
            ModelKind::Meta => "meta",
        }
    }
}

/// The data a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRange {
    /// First and last candle open time of the training rows, ms since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    pub symbols: Vec<String>,
    /// Interval name, e.g. `5m`.
    pub interval: String,
    pub train_rows: usize,
    pub test_rows: usize,
}

/// A model and its metadata, saved and loaded as one JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: u32,
    pub version: String,
    pub kind: ModelKind,
    /// The features the model reads, in order; must equal this build's
    /// [`qt_features::FEATURE_NAMES`].
    pub feature_names: Vec<String>,
    #[serde(default)]
    pub training_range: Option<TrainingRange>,
    /// Evaluation metrics on the held-out test set (see `metrics::Evaluation`).
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The exits, horizon and costs the labels were made with.
    #[serde(default)]
    pub labeling: Option<LabelConfig>,
    /// The model itself: thresholds (momentum), boosters (gbdt), members (ensemble).
    pub params: serde_json::Value,
    /// The model was trained with the funding inputs filled from a funding history
    /// ([`qt_features::context`]): whoever runs it must give it the same history, or its
    /// funding inputs read as missing. Absent (false) in artifacts trained without.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub funding_features: bool,
}

impl ModelArtifact {
    fn base(kind: ModelKind, version: &str, params: serde_json::Value) -> Self {
        ModelArtifact {
            format: ARTIFACT_FORMAT,
            version: version.to_string(),
            kind,
            feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            training_range: None,
            metrics: serde_json::Value::Null,
            labeling: None,
            params,
            funding_features: false,
        }
    }

    pub fn momentum(config: &MomentumConfig, version: &str) -> Result<Self, ModelError> {
        config.validate()?;
        let params = serde_json::to_value(config).map_err(|e| ModelError::Format(e.to_string()))?;
        Ok(Self::base(ModelKind::Momentum, version, params))
    }

    pub fn trend(config: &crate::TrendConfig, version: &str) -> Result<Self, ModelError> {
        config.validate()?;
        let params = serde_json::to_value(config).map_err(|e| ModelError::Format(e.to_string()))?;
        Ok(Self::base(ModelKind::Trend, version, params))
    }

    pub fn meta(model: &crate::MetaModel) -> Result<Self, ModelError> {
        Ok(Self::base(
            ModelKind::Meta,
            model.version(),
            model.to_params_json()?,
        ))
    }

    pub fn gbdt(model: &GbdtModel) -> Result<Self, ModelError> {
        Ok(Self::base(
            ModelKind::Gbdt,
            model.version(),
            model.to_params_json()?,
        ))
    }

    pub fn temporal(model: &crate::TemporalModel) -> Result<Self, ModelError> {
        Ok(Self::base(
            ModelKind::Temporal,
            model.version(),
            model.to_params_json()?,
        ))
    }

    pub fn ensemble(
        config: &EnsembleConfig,
        members: Vec<ModelArtifact>,
        version: &str,
    ) -> Result<Self, ModelError> {
        let params = serde_json::json!({ "config": config, "members": members });
        Ok(Self::base(ModelKind::Ensemble, version, params))
    }

    /// The exits the model was trained for and should trade with (its labels' exits).
    pub fn exits(&self) -> Option<&qt_exits::ExitConfig> {
        self.labeling.as_ref().map(|l| &l.exits)
    }

    /// Checks the format version and that the feature list is this build's.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.format != ARTIFACT_FORMAT {
            return Err(ModelError::Format(format!(
                "artifact format {} is not supported (expected {ARTIFACT_FORMAT})",
                self.format
            )));
        }
        if self.version.is_empty() {
            return Err(ModelError::Format("artifact has no version".to_string()));
        }
        if self
            .feature_names
            .iter()
            .map(String::as_str)
            .ne(FEATURE_NAMES)
        {
            return Err(ModelError::FeatureMismatch {
                expected: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
                found: self.feature_names.clone(),
            });
        }
        Ok(())
    }

    pub fn to_json(&self) -> Result<String, ModelError> {
        serde_json::to_string(self).map_err(|e| ModelError::Format(e.to_string()))
    }

    /// Parses and validates an artifact.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let a: ModelArtifact =
            serde_json::from_str(text).map_err(|e| ModelError::Format(e.to_string()))?;
        a.validate()?;
        Ok(a)
    }

    /// Writes the artifact as one file (via a temporary file and a rename, so a reader never
    /// sees half a model).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_json()?).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads and validates an artifact file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text)
    }
}

/// A model built from an artifact that records the exits it was trained for, or that was
/// trained with the funding inputs: it answers [`Model::exits`] and [`Model::funding_inputs`]
/// from the artifact and forwards everything else.
#[derive(Debug)]
struct FromArtifact {
    model: Box<dyn Model>,
    exits: Option<qt_exits::ExitConfig>,
    funding: bool,
}

impl Model for FromArtifact {
    fn name(&self) -> &str {
        self.model.name()
    }
    fn version(&self) -> &str {
        self.model.version()
    }
    fn predict(
        &mut self,
        features: &qt_features::FeatureVector,
        candle: &qt_candles::Candle,
    ) -> crate::Signal {
        self.model.predict(features, candle)
    }
    fn predict_for(
        &mut self,
        symbol: &str,
        features: &qt_features::FeatureVector,
        candle: &qt_candles::Candle,
    ) -> crate::Signal {
        self.model.predict_for(symbol, features, candle)
    }
    fn signal_mix(&self) -> Option<crate::SignalMix> {
        self.model.signal_mix()
    }
    fn exits(&self) -> Option<&qt_exits::ExitConfig> {
        self.exits.as_ref().or_else(|| self.model.exits())
    }
    fn memory(&self) -> usize {
        self.model.memory()
    }
    fn funding_inputs(&self) -> bool {
        self.funding || self.model.funding_inputs()
    }
}

/// Builds the model an artifact describes (validating it first). When the artifact records
/// the exits its labels were made with, the model carries them ([`Model::exits`]): the
/// backtester and trading-bot trade it with those exits. When it was trained with the funding
/// inputs, the model says so ([`Model::funding_inputs`]).
pub fn build_model(artifact: &ModelArtifact) -> Result<Box<dyn Model>, ModelError> {
    let model = build_bare(artifact)?;
    let exits = match &artifact.labeling {
        Some(l) => {
            l.exits
                .validate()
                .map_err(|e| ModelError::Format(format!("the artifact's exits: {e}")))?;
            Some(l.exits.clone())
        }
        None => None,
    };
    Ok(if exits.is_none() && !artifact.funding_features {
        model
    } else {
        Box::new(FromArtifact {
            model,
            exits,
            funding: artifact.funding_features,
        })
    })
}

fn build_bare(artifact: &ModelArtifact) -> Result<Box<dyn Model>, ModelError> {
    artifact.validate()?;
    let bad = |e: serde_json::Error| ModelError::Format(e.to_string());
    Ok(match artifact.kind {
        ModelKind::Momentum => {
            let cfg: MomentumConfig =
                serde_json::from_value(artifact.params.clone()).map_err(bad)?;
            Box::new(MomentumModel::new(cfg, artifact.version.clone())?)
        }
        ModelKind::Gbdt => Box::new(GbdtModel::from_params_json(
            &artifact.params,
            &artifact.version,
        )?),
        ModelKind::Temporal => Box::new(crate::TemporalModel::from_params_json(
            &artifact.params,
            &artifact.version,
        )?),
        ModelKind::Trend => {
            let cfg: crate::TrendConfig =
                serde_json::from_value(artifact.params.clone()).map_err(bad)?;
            Box::new(crate::TrendModel::new(cfg, artifact.version.clone())?)
        }
        ModelKind::Meta => Box::new(crate::MetaModel::from_params_json(
            &artifact.params,
            &artifact.version,
        )?),
        ModelKind::Ensemble => {
            let cfg: EnsembleConfig =
                serde_json::from_value(artifact.params["config"].clone()).map_err(bad)?;
            let members: Vec<ModelArtifact> =
                serde_json::from_value(artifact.params["members"].clone()).map_err(bad)?;
            let members =
                crate::stack::ensemble_members(&artifact.params, &members, &artifact.version)?;
            Box::new(EnsembleModel::new(cfg, members, artifact.version.clone())?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_built_from_an_artifact_trained_with_funding_inputs_says_so() {
        let mut a = ModelArtifact::momentum(&MomentumConfig::default(), "m-1").expect("valid");
        let plain = build_model(&a).expect("builds");
        assert!(!plain.funding_inputs());
        assert!(plain.exits().is_none());
        a.funding_features = true;
        let funded = build_model(&a).expect("builds");
        assert!(funded.funding_inputs());
        assert_eq!((funded.name(), funded.version()), ("momentum", "m-1"));
        assert!(funded.exits().is_none(), "no labelling: the caller's exits");
        // Through the file format too.
        let back = ModelArtifact::from_json(&a.to_json().expect("json")).expect("reads");
        assert!(build_model(&back).expect("builds").funding_inputs());
    }
}
