use std::path::PathBuf;

/// What can go wrong reading or transforming candles.
#[derive(Debug, thiserror::Error)]
pub enum CandleError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of a kline file is malformed (1-based line number).
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A kline file name does not look like `BTCUSDT-5m.csv[.gz]`.
    #[error("kline file name {0:?} is not SYMBOL-INTERVAL.csv[.gz]")]
    FileName(String),
    /// An interval name such as `5m` could not be parsed.
    #[error("unknown interval {0:?}")]
    Interval(String),
    /// A request that makes no sense (e.g. resampling 5m into 7m).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl CandleError {
    /// Whether trying again could succeed. Only I/O errors may be transient (a file being
    /// written, a network filesystem); a malformed file stays malformed.
    pub fn is_retryable(&self) -> bool {
        match self {
            CandleError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}
