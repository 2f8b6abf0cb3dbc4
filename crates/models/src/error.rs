use std::path::PathBuf;

/// What can go wrong building, loading, saving or training a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An artifact file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An artifact is not valid JSON of the expected shape.
    #[error("invalid artifact: {0}")]
    Format(String),
    /// The artifact was trained on other features than this build computes.
    #[error("feature list mismatch: artifact has {found:?}, this build computes {expected:?}")]
    FeatureMismatch {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// Parameters out of range (thresholds, windows, split sizes).
    #[error("invalid parameters: {0}")]
    Params(String),
    /// Not enough data to train or evaluate.
    #[error("not enough data: {0}")]
    Data(String),
    /// The gradient-boosting library failed.
    #[error("gbdt: {0}")]
    Gbdt(String),
}

impl ModelError {
    /// Whether trying again could succeed: only some I/O failures are transient.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}
