//! Context history in files, and reading it back aligned by publication time.
//!
//! Format (one CSV file per series, in one folder):
//! - name: `<metric>.csv` for market-wide series (`fear_greed.csv`), `<metric>-<SYMBOL>.csv`
//!   per symbol (`funding_rate-BTCUSDT.csv`);
//! - header `published_at,as_of,value,label`; `published_at` and `as_of` in ms since the epoch
//!   (UTC); `value` a decimal; `label` free text without commas (may be empty);
//! - `as_of` is the time the provider says the value describes; `published_at` the earliest
//!   time the system could have known it (see [`published_at`]). Rows sorted by `published_at`.
//!
//! [`ContextHistory::value_at`] answers with the last value *published* at or before a time, and
//! only if it is younger than the caller's limit: a gap stays a gap (`None`), never a zero and
//! never a value from later.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

/// One row of a history file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub published_at: i64,
    pub as_of: i64,
    pub value: Decimal,
    pub label: Option<String>,
}

/// A history file or folder that cannot be read, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Row {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The delay after `as_of` at which a value counts as published. Conservative on purpose:
/// - Binance's funding rate is settled at its funding time: published 1 minute after it;
/// - Binance's per-period statistics (`open_interest*`, `*_long_short_*`, `taker_*`) cover the
///   period that starts at their timestamp: published 1 minute after the period ends;
/// - the fear & greed index is stamped with its day's 00:00 UTC and updated during that day:
///   published a full day after its stamp;
/// - anything else: 1 minute after `as_of`.
pub fn published_at(metric: &str, as_of: i64, period_ms: i64) -> i64 {
    const MINUTE: i64 = 60_000;
    match metric {
        "funding_rate" => as_of + MINUTE,
        "fear_greed" => as_of + 86_400_000,
        m if m.starts_with("open_interest")
            || m.contains("long_short")
            || m.starts_with("taker_") =>
        {
            as_of + period_ms + MINUTE
        }
        _ => as_of + MINUTE,
    }
}

/// The file name of a series.
pub fn file_name(metric: &str, symbol: Option<&str>) -> String {
    match symbol {
        Some(s) => format!("{metric}-{s}.csv"),
        None => format!("{metric}.csv"),
    }
}

/// Writes `rows` (sorted here by publication time) to `dir/<file_name>`.
pub fn write_series(
    dir: &Path,
    metric: &str,
    symbol: Option<&str>,
    rows: &[HistoryRow],
) -> Result<PathBuf, HistoryError> {
    let path = dir.join(file_name(metric, symbol));
    let io = |source| HistoryError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| (r.published_at, r.as_of));
    rows.dedup_by_key(|r| r.as_of);
    let mut s = String::from("published_at,as_of,value,label\n");
    for r in &rows {
        let label = r
            .label
            .as_deref()
            .unwrap_or("")
            .replace([',', '\n', '\r', '"'], " ");
        let _ = writeln!(s, "{},{},{},{}", r.published_at, r.as_of, r.value, label);
    }
    std::fs::write(&path, s).map_err(io)?;
    Ok(path)
}

/// Reads one history file.
pub fn read_series(path: &Path) -> Result<Vec<HistoryRow>, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, reason: String| HistoryError::Row {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || (i == 0 && line.starts_with("published_at")) {
            continue;
        }
        let mut f = line.splitn(4, ',');
        let mut next = |what: &str| {
            f.next()
                .map(str::trim)
                .ok_or_else(|| bad(n, format!("no {what} column")))
        };
        let published_at = next("published_at")?
            .parse::<i64>()
            .map_err(|e| bad(n, format!("published_at: {e}")))?;
        let as_of = next("as_of")?
            .parse::<i64>()
            .map_err(|e| bad(n, format!("as_of: {e}")))?;
        let value = next("value")?
            .parse::<Decimal>()
            .map_err(|e| bad(n, format!("value: {e}")))?;
        let label = f
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string);
        if published_at < as_of {
            return Err(bad(n, "published before the time it describes".into()));
        }
        out.push(HistoryRow {
            published_at,
            as_of,
            value,
            label,
        });
    }
    out.sort_by_key(|r| (r.published_at, r.as_of));
    Ok(out)
}

/// Every series of a history folder, by metric and symbol.
#[derive(Debug, Clone, Default)]
pub struct ContextHistory {
    series: BTreeMap<(String, Option<String>), Vec<HistoryRow>>,
}

impl ContextHistory {
    /// Reads every `*.csv` of `dir` (a missing folder is an empty history).
    pub fn load(dir: &Path) -> Result<Self, HistoryError> {
        let mut h = Self::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(h),
            Err(source) => {
                return Err(HistoryError::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        for e in entries {
            let e = e.map_err(|source| HistoryError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = e.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".csv"))
            else {
                continue;
            };
            let (metric, symbol) = match stem.split_once('-') {
                Some((m, s)) => (m.to_string(), Some(s.to_string())),
                None => (stem.to_string(), None),
            };
            h.series.insert((metric, symbol), read_series(&path)?);
        }
        Ok(h)
    }

    /// A history from rows in memory (tests, or a caller that built them).
    pub fn insert(&mut self, metric: &str, symbol: Option<&str>, mut rows: Vec<HistoryRow>) {
        rows.sort_by_key(|r| (r.published_at, r.as_of));
        self.series
            .insert((metric.to_string(), symbol.map(str::to_string)), rows);
    }

    /// The series held, as `(metric, symbol)`.
    pub fn series(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.series.keys().map(|(m, s)| (m.as_str(), s.as_deref()))
    }

    /// The rows of one series.
    pub fn rows(&self, metric: &str, symbol: Option<&str>) -> &[HistoryRow] {
        self.series
            .get(&(metric.to_string(), symbol.map(str::to_string)))
            .map_or(&[], Vec::as_slice)
    }

    /// The value of a series known at `t`: the last row published at or before `t`, if it was
    /// published no more than `max_age_ms` before `t`. `None` when there is none (missing is
    /// missing: never zero, never a later row).
    pub fn value_at(
        &self,
        metric: &str,
        symbol: Option<&str>,
        t: i64,
        max_age_ms: i64,
    ) -> Option<Decimal> {
        let rows = self.rows(metric, symbol);
        let n = rows.partition_point(|r| r.published_at <= t);
        let r = rows.get(n.checked_sub(1)?)?;
        (t - r.published_at <= max_age_ms).then_some(r.value)
    }
}

/// One context feature: a series and how old its value may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    pub metric: String,
    /// The series is per symbol (`funding_rate-BTCUSDT`) rather than market-wide (`fear_greed`).
    pub per_symbol: bool,
    /// A value published longer ago than this is missing.
    pub max_age_ms: i64,
}

impl FeatureSpec {
    pub fn new(metric: &str, per_symbol: bool, max_age_ms: i64) -> Self {
        Self {
            metric: metric.to_string(),
            per_symbol,
            max_age_ms,
        }
    }
}

impl ContextHistory {
    /// The context features of `symbol` known at `t` (e.g. a candle's close time), one per
    /// spec: `None` where the value is missing or too old (the caller decides what missing
    /// means; it is never zero here).
    pub fn features_at(&self, symbol: &str, t: i64, specs: &[FeatureSpec]) -> Vec<Option<f64>> {
        use rust_decimal::prelude::ToPrimitive;
        specs
            .iter()
            .map(|s| {
                let sym = s.per_symbol.then_some(symbol);
                self.value_at(&s.metric, sym, t, s.max_age_ms)
                    .and_then(|v| v.to_f64())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: i64, v: i64) -> HistoryRow {
        HistoryRow {
            published_at: p,
            as_of: p - 10,
            value: Decimal::from(v),
            label: None,
        }
    }

    #[test]
    fn a_value_is_known_only_from_its_publication_and_only_while_young() {
        let mut h = ContextHistory::default();
        h.insert("fear_greed", None, vec![row(1_000, 40), row(2_000, 60)]);
        assert_eq!(
            h.value_at("fear_greed", None, 999, 500),
            None,
            "before publication"
        );
        assert_eq!(
            h.value_at("fear_greed", None, 1_000, 500),
            Some(Decimal::from(40))
        );
        assert_eq!(
            h.value_at("fear_greed", None, 1_999, 1_000),
            Some(Decimal::from(40))
        );
        assert_eq!(
            h.value_at("fear_greed", None, 1_600, 500),
            None,
            "too old: missing, not zero"
        );
        assert_eq!(
            h.value_at("fear_greed", None, 2_000, 500),
            Some(Decimal::from(60))
        );
        assert_eq!(
            h.value_at("funding_rate", Some("BTCUSDT"), 2_000, 500),
            None
        );
    }

    #[test]
    fn files_round_trip_and_a_bad_row_names_its_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let rows = vec![
            HistoryRow {
                published_at: 86_400_000,
                as_of: 0,
                value: "40".parse().expect("d"),
                label: Some("Fear, a lot".into()),
            },
            row(90_000_000, 55),
        ];
        let p = write_series(dir.path(), "fear_greed", None, &rows).expect("write");
        let back = read_series(&p).expect("read");
        assert_eq!(back[0].label.as_deref(), Some("Fear  a lot"));
        assert_eq!(back[1], rows[1]);
        let h = ContextHistory::load(dir.path()).expect("load");
        assert_eq!(h.rows("fear_greed", None).len(), 2);
        std::fs::write(
            dir.path().join("x-BTCUSDT.csv"),
            "published_at,as_of,value,label\n5,1,abc,\n",
        )
        .expect("w");
        let e = ContextHistory::load(dir.path()).expect_err("bad value");
        assert!(e.to_string().contains("x-BTCUSDT.csv:2: value"), "{e}");
    }
}
